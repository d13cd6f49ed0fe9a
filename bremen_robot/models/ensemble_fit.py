"""Fitting the dynamics ensemble: pure loss functions plus a small loop with early stopping.

Each member sees its own shuffle of the training rows every epoch. Holdout MSE (normalized
units) is tracked per member; each member's best weights are restored at the end (the original
code kept the last weights; see docs/algorithm.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bremen_robot.config.train import EnsembleConfig
from bremen_robot.data.dataset import Dataset
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.models.subnormal import zero_subnormal_


def member_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-member mean squared error: ``(E, B, D), (E, B, D) -> (E,)``."""
    return ((pred - target) ** 2).mean(dim=(1, 2))


def member_weight_l2(model: DynamicsEnsemble) -> torch.Tensor:
    """Per-member sum of squared weights over all layers: ``(E,)``."""
    total = torch.zeros(model.members, device=model.in_mean.device)
    for layer in model.linear_layers():
        total = total + (layer.weight**2).sum(dim=(1, 2))
    return total


def ensemble_loss(
    model: DynamicsEnsemble, z_in: torch.Tensor, z_target: torch.Tensor, weight_decay: float
) -> torch.Tensor:
    """Training loss summed over members (each member's gradient is its own): scalar."""
    per_member = member_mse(model(z_in), z_target) + weight_decay * member_weight_l2(model)
    return per_member.sum()


@dataclass
class FitHistory:
    """Per-epoch figures of one fit (for the training report)."""

    train_mse: list[float] = field(default_factory=list)
    holdout_mse: list[list[float]] = field(default_factory=list)  # epochs x E
    best_holdout_mse: list[float] = field(default_factory=list)  # E
    best_epoch: list[int] = field(default_factory=list)  # E
    epochs: int = 0
    flops: float = 0.0


def _tensors(
    model: DynamicsEnsemble, data: Dataset, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    obs = torch.as_tensor(data.obs, device=device)
    act = torch.as_tensor(data.actions, device=device)
    nxt = torch.as_tensor(data.next_obs, device=device)
    return model.normalize_inputs(obs, act), model.normalize_targets(obs, nxt)


@torch.no_grad()
def holdout_mse(
    model: DynamicsEnsemble, z_in: torch.Tensor, z_target: torch.Tensor, chunk: int = 8192
) -> torch.Tensor:
    """Per-member holdout MSE ``(E,)``; every member sees all holdout rows."""
    total = torch.zeros(model.members, device=z_in.device)
    for i in range(0, len(z_in), chunk):
        zi = z_in[i : i + chunk].expand(model.members, -1, -1)  # (B, in) -> (E, B, in)
        zt = z_target[i : i + chunk].expand(model.members, -1, -1)
        total += member_mse(model(zi), zt) * len(zi[0])
    return total / max(len(z_in), 1)


def fit_ensemble(
    model: DynamicsEnsemble,
    train: Dataset,
    holdout: Dataset,
    cfg: EnsembleConfig,
    generator: torch.Generator,
    on_epoch: Callable[[int, float, list[float]], None] | None = None,
) -> FitHistory:
    """Fit (or re-fit, keeping current weights) ``model`` on ``train``; early-stop on ``holdout``.

    The normalizer is recomputed from ``train`` before fitting, so re-fits across deployments
    see the statistics of all data so far. Subnormal weights are zeroed before every epoch and
    at the end (:mod:`bremen_robot.models.subnormal`).
    """
    device = next(model.parameters()).device
    model.set_normalizer(train.obs, train.actions, train.next_obs)
    z_in, z_tgt = _tensors(model, train, device)
    h_in, h_tgt = _tensors(model, holdout, device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    E, N = model.members, len(z_in)
    bs = min(cfg.batch_size, N)
    hist = FitHistory()
    best = holdout_mse(model, h_in, h_tgt).clone()
    best_state = [p.detach().clone() for p in model.parameters()]
    best_epoch = [0] * E
    stale = 0
    flops_per_row = 3 * model.flops_per_row()  # forward + backward ~ 3x forward
    for epoch in range(1, cfg.max_epochs + 1):
        zero_subnormal_(model.parameters())  # weight decay breeds them; each costs 10-50x per use
        perm = torch.argsort(torch.rand(E, N, generator=generator, device=device), dim=1)  # (E, N)
        total = 0.0
        n_batches = 0
        for i in range(0, N - bs + 1, bs):
            idx = perm[:, i : i + bs]  # (E, bs)
            loss = ensemble_loss(
                model, z_in[idx], z_tgt[idx], cfg.weight_decay
            )  # (N, in)[(E, bs)] -> (E, bs, in)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) / E
            n_batches += 1
        hist.flops += flops_per_row * E * bs * n_batches
        h = holdout_mse(model, h_in, h_tgt)
        hist.train_mse.append(total / max(n_batches, 1))
        hist.holdout_mse.append(h.tolist())
        improved = h < best * (1 - cfg.min_improvement)
        with torch.no_grad():
            for m in torch.nonzero(improved).flatten().tolist():
                best[m] = h[m]
                best_epoch[m] = epoch
                for saved, p in zip(best_state, model.parameters()):
                    saved[m] = p[m]
        stale = 0 if bool(improved.any()) else stale + 1
        hist.epochs = epoch
        if on_epoch is not None:
            on_epoch(epoch, hist.train_mse[-1], h.tolist())
        if stale >= cfg.patience:
            break
    with torch.no_grad():  # restore each member's best weights
        for saved, p in zip(best_state, model.parameters()):
            p.copy_(saved)
    zero_subnormal_(model.parameters())  # a best state saved before an epoch's cleaning
    hist.best_holdout_mse = best.tolist()
    hist.best_epoch = best_epoch
    return hist
