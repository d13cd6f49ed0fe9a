"""Gaussian MLP policy of BREMEN (DESIGN.md §4), used for behavior cloning and TRPO alike.

``mean = tanh(mu) * scale + center`` keeps the mean inside the action box; the log-std is a
state-dependent head squashed to [-5, 0]: ``log_std = -5 + 2.5 * (tanh(x) + 1)``.
Observation normalization (dataset z-score) lives inside the module, so the exported file
needs nothing but raw observations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

LOG_STD_MIN = -5.0
LOG_STD_MAX = 0.0


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, out_init_std: float | None = None) -> nn.Sequential:
    """ReLU MLP; the last layer optionally starts small (BREMEN initializes it with std 0.01)."""
    layers: list[nn.Module] = []
    last = in_dim
    for h in hidden:
        layers += [nn.Linear(last, h), nn.ReLU()]
        last = h
    out = nn.Linear(last, out_dim)
    if out_init_std is not None:
        nn.init.normal_(out.weight, std=out_init_std)
        nn.init.zeros_(out.bias)
    layers.append(out)
    return nn.Sequential(*layers)


class GaussianPolicy(nn.Module):
    """pi(a | s) = N(mean(s), diag(exp(log_std(s))^2)).

    Shapes: ``obs`` is ``B x D_obs``; ``mean`` and ``log_std`` are ``B x D_act``.
    """

    obs_mean: torch.Tensor
    obs_std: torch.Tensor
    act_center: torch.Tensor
    act_scale: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        action_low: Sequence[float] | np.ndarray,
        action_high: Sequence[float] | np.ndarray,
        hidden: Sequence[int] = (200, 200),
    ) -> None:
        super().__init__()
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32))
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32))
        self.obs_dim = obs_dim
        self.action_dim = int(low.shape[0])
        self.hidden = tuple(int(h) for h in hidden)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        self.register_buffer("act_center", (high + low) / 2)
        self.register_buffer("act_scale", (high - low) / 2)
        self.net = mlp(obs_dim, self.hidden, 2 * self.action_dim, out_init_std=0.01)

    def set_obs_normalizer(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Store the dataset z-score; ``std`` is floored so constant features stay finite."""
        self.obs_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.obs_std.copy_(torch.as_tensor(np.maximum(std, 1e-6), dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = (obs - self.obs_mean) / self.obs_std
        mu_raw, ls_raw = self.net(z).chunk(2, dim=-1)  # (B, 2A) -> 2 x (B, A)
        mean = torch.tanh(mu_raw) * self.act_scale + self.act_center
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(ls_raw) + 1.0)
        return mean, log_std

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterized sample ``mean + exp(log_std) * eps``, ``B x D_act``."""
        mean, log_std = self(obs)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + eps * log_std.exp()

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Log-density of ``actions`` (``B x D_act``), summed over action dims: ``B``."""
        mean, log_std = self(obs)
        return gaussian_log_prob(mean, log_std, actions)

    def clone(self) -> GaussianPolicy:
        """A deep copy with the same weights and normalizer (TRPO starts from the BC policy)."""
        twin = GaussianPolicy(self.obs_dim, [0.0] * self.action_dim, [0.0] * self.action_dim, self.hidden)
        twin.load_state_dict(self.state_dict())
        return twin.to(self.obs_mean.device)


@torch.no_grad()
def reset_log_std(policy: GaussianPolicy, log_std: float) -> None:
    """Make the log-std head output ``log_std`` everywhere (state-independent to start).

    Zeroes the head's weights and sets its bias to the tanh-preimage of ``log_std``; the mean
    head is untouched, so the policy's mean actions do not change.
    """
    if not LOG_STD_MIN < log_std < LOG_STD_MAX:
        raise ValueError(f"log_std {log_std} must lie strictly inside ({LOG_STD_MIN}, {LOG_STD_MAX})")
    out = policy.net[-1]
    assert isinstance(out, nn.Linear)
    a = policy.action_dim
    raw = float(np.arctanh((log_std - LOG_STD_MIN) / (0.5 * (LOG_STD_MAX - LOG_STD_MIN)) - 1.0))
    out.weight[a:] = 0.0
    out.bias[a:] = raw


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Diagonal Gaussian log-density, ``B x D -> B``."""
    var = (2 * log_std).exp()
    per_dim = -0.5 * (x - mean) ** 2 / var - log_std - 0.5 * np.log(2 * np.pi)
    return per_dim.sum(-1)


def gaussian_kl(
    mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor, log_std_q: torch.Tensor
) -> torch.Tensor:
    """KL(p || q) of diagonal Gaussians, ``B x D -> B``."""
    var_p, var_q = (2 * log_std_p).exp(), (2 * log_std_q).exp()
    per_dim = log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5
    return per_dim.sum(-1)
