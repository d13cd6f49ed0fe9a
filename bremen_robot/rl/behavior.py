"""How far TRPO has moved the policy from the behavior policy, in the behavior's own noise.

BREMEN keeps TRPO near the data implicitly: it starts from the cloned behavior policy and takes
KL-bounded steps, and over many steps those add up. KL(pi || pi_BC) does not show how far: BC's
log-std sits at its floor, so any mean change reads as thousands. This module reports a figure
an operator can read: the RMS of the mean-action change on states of the behavior data, in units
of the logged actions' RMS distance from BC's mean (the exploration noise, plus BC's fit error).
A shift of 1 means the policy acts, on average, one noise standard deviation away from what was
deployed. It is a diagnostic: in our HalfCheetah probes no single value separated safe updates
from the ones that flipped the robot (docs/results.md, Diagnosis). Shapes: N states, D
observation, A action.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bremen_robot.policy.gaussian import GaussianPolicy

NOISE_FLOOR = 1e-3  # a dimension the behavior never varied still gets a finite scale
ANCHOR_ROWS = 5000  # evenly spaced states: enough for a stable mean, cheap every iteration


def evenly_spaced(n: int, rows: int) -> np.ndarray:
    """Indices of at most ``rows`` evenly spaced rows out of ``n``: a fixed subsample, no generator."""
    return np.linspace(0, n - 1, min(n, rows)).astype(np.int64)


def action_noise(actions: torch.Tensor, bc_mean: torch.Tensor) -> torch.Tensor:
    """RMS distance of the logged actions from BC's mean, per dimension: ``(N, A), (N, A) -> (A,)``.

    Around BC's mean, not the residuals' own mean, so a biased BC (e.g. actions clipped at the
    box edge that tanh never reaches) widens the unit instead of hiding.
    """
    if actions.shape[0] == 0:
        raise ValueError("no behavior data to measure the action noise on")
    return (actions - bc_mean).pow(2).mean(dim=0).sqrt().clamp_min(NOISE_FLOOR)


def mean_shift(mean: torch.Tensor, bc_mean: torch.Tensor, noise: torch.Tensor) -> float:
    """RMS over states and dimensions of ``(mean - bc_mean) / noise``: ``(N, A), (N, A), (A,) -> float``."""
    return float(((mean - bc_mean) / noise).pow(2).mean().sqrt())


@dataclass
class BehaviorAnchor:
    """BC's mean action on behavior-data states, and the behavior's noise around it."""

    obs: torch.Tensor  # (N, D)
    bc_mean: torch.Tensor  # (N, A)
    noise: torch.Tensor  # (A,)

    @classmethod
    @torch.no_grad()
    def from_data(
        cls, bc: GaussianPolicy, obs: np.ndarray, actions: np.ndarray, rows: int = ANCHOR_ROWS
    ) -> BehaviorAnchor:
        """Anchor on at most ``rows`` evenly spaced rows of the behavior data (no generator draw)."""
        idx = evenly_spaced(len(obs), rows)
        dev = next(bc.parameters()).device
        o = torch.as_tensor(obs[idx], dtype=torch.float32, device=dev)  # (N, D)
        a = torch.as_tensor(actions[idx], dtype=torch.float32, device=dev)  # (N, A)
        m = bc(o)[0]
        return cls(o, m, action_noise(a, m))

    @torch.no_grad()
    def shift(self, policy: GaussianPolicy) -> float:
        """:func:`mean_shift` of ``policy``'s mean action from BC's on the anchor states."""
        return mean_shift(policy(self.obs)[0], self.bc_mean, self.noise)
