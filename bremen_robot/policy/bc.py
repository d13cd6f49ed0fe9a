"""Behavior cloning (DESIGN.md §4): MSE between the dataset action and a reparameterized sample."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from bremen_robot.config.train import BCConfig
from bremen_robot.data.dataset import Dataset
from bremen_robot.policy.gaussian import GaussianPolicy


def bc_loss(
    policy: GaussianPolicy, obs: torch.Tensor, actions: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """``(B, D), (B, A) -> scalar``: MSE of a reparameterized sample against the logged action."""
    return F.mse_loss(policy.sample(obs, generator), actions)


def new_bc_policy(data: Dataset, low: np.ndarray, high: np.ndarray, cfg: BCConfig) -> GaussianPolicy:
    """A freshly initialized policy whose observation normalizer is fit on ``data``."""
    policy = GaussianPolicy(data.obs_dim, low, high, cfg.hidden)
    policy.set_obs_normalizer(data.obs.mean(0), data.obs.std(0))
    return policy


def train_bc(
    policy: GaussianPolicy,
    data: Dataset,
    cfg: BCConfig,
    generator: torch.Generator,
    on_step: Callable[[int, float], None] | None = None,
    log_every: int = 1000,
) -> list[float]:
    """``cfg.steps`` Adam steps on random minibatches; returns the loss every ``log_every`` steps."""
    device = policy.obs_mean.device
    obs = torch.as_tensor(data.obs, device=device)
    act = torch.as_tensor(data.actions, device=device)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    losses: list[float] = []
    running = 0.0
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(len(obs), (min(cfg.batch_size, len(obs)),), generator=generator, device=device)
        loss = bc_loss(policy, obs[idx], act[idx], generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += float(loss.detach())
        if step % log_every == 0 or step == cfg.steps:
            n = log_every if step % log_every == 0 else step % log_every
            losses.append(running / n)
            running = 0.0
            if on_step is not None:
                on_step(step, losses[-1])
    return losses
