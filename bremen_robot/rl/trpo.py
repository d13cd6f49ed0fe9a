"""One TRPO update (Schulman et al. 2015) on a flat batch; pure apart from the policy's weights.

Shapes: N samples, D observation size, A action size. ``old_mean``/``old_log_std`` are the
policy's outputs when the batch was collected (``N x A``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from bremen_robot.config.train import TRPOConfig
from bremen_robot.policy.gaussian import GaussianPolicy, gaussian_kl, gaussian_log_prob
from bremen_robot.rl.cg import conjugate_gradient


@dataclass
class TRPOStats:
    """What one update did (for the report and tests)."""

    surrogate_before: float
    surrogate_after: float
    kl: float
    step_fraction: float  # 0 when the line search rejected every step
    expected_improvement: float


def surrogate_loss(
    policy: GaussianPolicy,
    obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    old_log_prob: torch.Tensor,
) -> torch.Tensor:
    """``-mean(pi(a|s) / pi_old(a|s) * A)``: scalar to minimize."""
    ratio = (policy.log_prob(obs, actions) - old_log_prob).exp()
    return -(ratio * advantages).mean()


def mean_kl(
    policy: GaussianPolicy, obs: torch.Tensor, old_mean: torch.Tensor, old_log_std: torch.Tensor
) -> torch.Tensor:
    """``mean_s KL(pi_old(.|s) || pi(.|s))``: scalar."""
    mean, log_std = policy(obs)
    return gaussian_kl(old_mean, old_log_std, mean, log_std).mean()


def _flat_grad(y: torch.Tensor, params: list[torch.Tensor], create_graph: bool = False) -> torch.Tensor:
    grads = torch.autograd.grad(y, params, create_graph=create_graph, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]
    )


def trpo_step(
    policy: GaussianPolicy,
    obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    old_mean: torch.Tensor,
    old_log_std: torch.Tensor,
    cfg: TRPOConfig,
    bc_policy: GaussianPolicy | None = None,
    generator: torch.Generator | None = None,
) -> TRPOStats:
    """Natural-gradient step within ``KL <= cfg.max_kl``, found by CG and backtracking."""
    params: list[torch.Tensor] = [p for p in policy.parameters() if p.requires_grad]
    old_log_prob = gaussian_log_prob(old_mean, old_log_std, actions)
    bc_out = None
    if bc_policy is not None and cfg.bc_kl_coef > 0:
        with torch.no_grad():
            bc_out = bc_policy(obs)

    def loss_fn() -> torch.Tensor:
        loss = surrogate_loss(policy, obs, actions, advantages, old_log_prob)
        if bc_out is not None:  # explicit behavior regularization alpha * KL(pi || pi_BC)
            mean, log_std = policy(obs)
            loss = loss + cfg.bc_kl_coef * gaussian_kl(mean, log_std, bc_out[0], bc_out[1]).mean()
        return loss

    if cfg.fvp_subsample < 1.0:
        n = max(1, int(len(obs) * cfg.fvp_subsample))
        sub = torch.randperm(len(obs), generator=generator, device=obs.device)[:n]
        fvp_obs, fvp_mean, fvp_log_std = obs[sub], old_mean[sub], old_log_std[sub]
    else:
        fvp_obs, fvp_mean, fvp_log_std = obs, old_mean, old_log_std

    loss = loss_fn()
    g = _flat_grad(loss, params)
    kl_grad = _flat_grad(mean_kl(policy, fvp_obs, fvp_mean, fvp_log_std), params, create_graph=True)

    # Fisher-vector product by double backprop; the graph of kl_grad is kept across CG iterations
    def fvp_retained(v: torch.Tensor) -> torch.Tensor:
        grads = torch.autograd.grad((kl_grad * v).sum(), params, retain_graph=True, allow_unused=True)
        flat = torch.cat(
            [(gr if gr is not None else torch.zeros_like(p)).reshape(-1) for gr, p in zip(grads, params)]
        )
        return flat + cfg.cg_damping * v

    step_dir = conjugate_gradient(fvp_retained, -g.detach(), cfg.cg_iters)
    shs = 0.5 * torch.dot(step_dir, fvp_retained(step_dir))
    before = float(loss.detach())
    if not torch.isfinite(shs) or shs <= 0:
        return TRPOStats(before, before, 0.0, 0.0, 0.0)
    full_step = step_dir * torch.sqrt(2 * cfg.max_kl / (2 * shs))  # so that 0.5 s^T F s = max_kl
    expected = float(-torch.dot(g, full_step))
    old_params = parameters_to_vector(params).detach().clone()
    with torch.no_grad():
        for k in range(cfg.line_search_steps):
            frac = 0.5**k
            vector_to_parameters(old_params + frac * full_step, params)
            new_loss = float(loss_fn())
            kl = float(mean_kl(policy, obs, old_mean, old_log_std))
            improvement = before - new_loss
            if (
                kl <= cfg.max_kl
                and improvement > 0
                and improvement / (expected * frac + 1e-12) > cfg.accept_ratio
            ):
                return TRPOStats(before, new_loss, kl, frac, expected)
        vector_to_parameters(old_params, params)
    return TRPOStats(before, before, 0.0, 0.0, expected)
