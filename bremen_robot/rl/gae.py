"""Generalized advantage estimation on time-major batches.

Shapes: T steps x B parallel rollouts. ``terminals[t]`` means ``s_{t+1}`` is a failure state
(no bootstrap); ``dones[t]`` means the trajectory segment ends after step t (terminal, time
limit or reset), so advantages do not flow across it. ``next_values[t] = V(s_{t+1})``.
"""

from __future__ import annotations

import torch


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminals: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets, both ``(T, B)``.

    ``delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminal_t) - V(s_t)``
    ``A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}``; targets are ``A_t + V(s_t)``.
    """
    not_terminal = 1.0 - terminals.float()
    not_done = 1.0 - dones.float()
    deltas = rewards + gamma * next_values * not_terminal - values
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * lam * not_done[t] * running
        adv[t] = running
    return adv, adv + values
