"""State-value baselines for advantage estimation.

``LinearBaseline`` is rllab's linear feature baseline that BREMEN published with: features
``[o, o^2, t, t^2, t^3, 1]`` (o clipped to +-10, t = step / 100) fit by ridge regression each
iteration. ``MLPBaseline`` is a small ReLU network fit with Adam. Shapes: N samples x D.
"""

from __future__ import annotations

from typing import Protocol

import torch

from bremen_robot.policy.gaussian import mlp


class ValueBaseline(Protocol):
    def predict(self, obs: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...
    def fit(self, obs: torch.Tensor, t: torch.Tensor, targets: torch.Tensor) -> None: ...


def linear_features(obs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(N, D), (N,) -> (N, 2D + 4)``."""
    o = obs.clamp(-10, 10)
    al = (t.float() / 100.0).unsqueeze(-1)  # (N,) -> (N, 1)
    return torch.cat([o, o * o, al, al**2, al**3, torch.ones_like(al)], dim=-1)


class LinearBaseline:
    def __init__(self, reg: float = 1e-5) -> None:
        self.reg = reg
        self.coef: torch.Tensor | None = None

    def predict(self, obs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.coef is None:
            return torch.zeros(obs.shape[0], device=obs.device, dtype=obs.dtype)
        return linear_features(obs, t) @ self.coef

    def fit(self, obs: torch.Tensor, t: torch.Tensor, targets: torch.Tensor) -> None:
        X = linear_features(obs, t).double()
        XtX, Xty = X.T @ X, X.T @ targets.double()
        eye = torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
        reg = self.reg
        for _ in range(5):  # raise the ridge until the solve is finite (collinear features)
            coef = torch.linalg.solve(XtX + reg * eye, Xty)
            if torch.isfinite(coef).all():
                self.coef = coef.to(obs.dtype)
                return
            reg *= 10


class MLPBaseline:
    def __init__(
        self, obs_dim: int, hidden: list[int], epochs: int, generator: torch.Generator, lr: float = 1e-3
    ):
        self.net = mlp(obs_dim + 1, hidden, 1)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.epochs, self.generator = epochs, generator
        self.fitted = False

    def to(self, device: torch.device) -> MLPBaseline:
        self.net.to(device)
        return self

    def _inputs(self, obs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.cat([obs.clamp(-10, 10), (t.float() / 100.0).unsqueeze(-1)], dim=-1)

    @torch.no_grad()
    def predict(self, obs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            return torch.zeros(obs.shape[0], device=obs.device, dtype=obs.dtype)
        return self.net(self._inputs(obs, t)).squeeze(-1)

    def fit(self, obs: torch.Tensor, t: torch.Tensor, targets: torch.Tensor) -> None:
        x = self._inputs(obs, t)
        n, bs = len(x), 4096
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=self.generator, device=x.device)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                loss = ((self.net(x[idx]).squeeze(-1) - targets[idx]) ** 2).mean()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
        self.fitted = True
