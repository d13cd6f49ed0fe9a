"""Batched dynamics-model ensemble (DESIGN.md §4).

K deterministic MLPs stored as one ``(E, in, out)`` weight tensor per layer, so all members run
in one batched matmul (``baddbmm``), never a Python loop over members. Inputs ``(s, a)`` are
z-scored with dataset statistics; the network predicts the z-scored state change ``s' - s``,
which is un-normalized and added to ``s``.

Shapes: E members, B batch rows, D observation size, A action size, H hidden units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class BatchedLinear(nn.Module):
    """E independent linear layers: ``(E, B, in) -> (E, B, out)``."""

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default init, per member
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)  # (E, B, in) @ (E, in, out) + (E, 1, out)

    def forward_member(self, x: torch.Tensor, member: int) -> torch.Tensor:
        """One member on ``(B, in) -> (B, out)``: a plain matmul on that member's slice."""
        return torch.addmm(self.bias[member, 0], x, self.weight[member])


class DynamicsEnsemble(nn.Module):
    """Ensemble of MLP dynamics models predicting ``s'`` from ``(s, a)``."""

    in_mean: torch.Tensor
    in_std: torch.Tensor
    delta_mean: torch.Tensor
    delta_std: torch.Tensor
    layers: nn.ModuleList

    def __init__(self, obs_dim: int, action_dim: int, members: int = 5, hidden: Sequence[int] = (1024, 1024)):
        super().__init__()
        self.obs_dim, self.action_dim, self.members = obs_dim, action_dim, members
        self.hidden = tuple(int(h) for h in hidden)
        dims = [obs_dim + action_dim, *self.hidden, obs_dim]
        self.layers = nn.ModuleList(BatchedLinear(members, i, o) for i, o in zip(dims[:-1], dims[1:]))
        self.register_buffer("in_mean", torch.zeros(obs_dim + action_dim))
        self.register_buffer("in_std", torch.ones(obs_dim + action_dim))
        self.register_buffer("delta_mean", torch.zeros(obs_dim))
        self.register_buffer("delta_std", torch.ones(obs_dim))

    def linear_layers(self) -> list[BatchedLinear]:
        """The batched layers, input to output."""
        return [layer for layer in self.layers if isinstance(layer, BatchedLinear)]

    # ------------------------------------------------------------ normalizer
    def set_normalizer(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> None:
        """Fit input and target z-scores on data (N x D, N x A, N x D); std floored at 1e-6."""
        x = np.concatenate([obs, actions], axis=1)  # (N, D), (N, A) -> (N, D + A)
        delta = next_obs - obs
        for buf, arr in (
            (self.in_mean, x.mean(0)),
            (self.in_std, np.maximum(x.std(0), 1e-6)),
            (self.delta_mean, delta.mean(0)),
            (self.delta_std, np.maximum(delta.std(0), 1e-6)),
        ):
            buf.copy_(torch.as_tensor(arr, dtype=torch.float32))

    def normalize_inputs(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``(..., D), (..., A) -> (..., D + A)`` z-scored network input."""
        return (torch.cat([obs, actions], dim=-1) - self.in_mean) / self.in_std

    def normalize_targets(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """``(..., D) -> (..., D)`` z-scored state change."""
        return (next_obs - obs - self.delta_mean) / self.delta_std

    # --------------------------------------------------------------- forward
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Normalized ``(E, B, D + A) -> (E, B, D)`` normalized delta, all members at once."""
        *hidden, last = self.linear_layers()
        h = z
        for layer in hidden:
            h = torch.relu(layer(h))
        return last(h)

    def predict(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Every member's next state: ``(B, D), (B, A) -> (E, B, D)``."""
        z = self.normalize_inputs(obs, actions).expand(self.members, -1, -1)  # (B, D+A) -> (E, B, D+A)
        return obs + self(z) * self.delta_std + self.delta_mean  # (B, D) + (E, B, D) -> (E, B, D)

    def predict_member(self, obs: torch.Tensor, actions: torch.Tensor, member: int) -> torch.Tensor:
        """One member's next state: ``(B, D), (B, A) -> (B, D)`` (imagination's hot path)."""
        *hidden, last = self.linear_layers()
        h = self.normalize_inputs(obs, actions)
        for layer in hidden:
            h = torch.relu(layer.forward_member(h, member))
        delta = last.forward_member(h, member)
        return obs + delta * self.delta_std + self.delta_mean

    def flops_per_row(self) -> int:
        """Multiply-adds x 2 of one member's forward pass on one row."""
        dims = [self.obs_dim + self.action_dim, *self.hidden, self.obs_dim]
        return 2 * sum(i * o for i, o in zip(dims[:-1], dims[1:]))

    def normalized_deltas(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Every member's normalized state change: ``(B, D), (B, A) -> (E, B, D)``."""
        return self(self.normalize_inputs(obs, actions).expand(self.members, -1, -1))

    @staticmethod
    def spread(deltas: torch.Tensor) -> torch.Tensor:
        """Disagreement of normalized deltas: mean over D of the std across members, ``(E, B, D) -> (B,)``."""
        return deltas.std(dim=0).mean(dim=-1)

    def disagreement(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Ensemble disagreement per row, ``B``: the :meth:`spread` of every member's prediction.

        Measured in normalized delta units so every observation entry counts alike.
        """
        return self.spread(self.normalized_deltas(obs, actions))
