"""Trainer compute figures (DESIGN.md §5), all measured side by side in one run.

* fp32 matmul peak of this machine (large square ``torch.mm``);
* ensemble fit FLOP/s (paper sizes: 5 x 2 x 1024, batch 1000) / peak;
* imagined rollout FLOP/s (dynamics + policy) / peak, and its throughput against a reference
  written the way the anchors do it (a Python list of member modules, every member run on
  the batch, a numpy round trip per step, one member picked per row);
* seconds per TRPO iteration for the ``cpu`` and ``paper`` presets, and the resulting estimate
  of one deployment's training time;
* the trainer's ensemble fit on weights aged by weight decay (30 % subnormal) against fresh
  ones: about 1 since the trainer flushes subnormals, 12-15x before (docs/performance.md).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from bremen_robot.config.train import EnsembleConfig, TrainConfig, load_train_config
from bremen_robot.data.dataset import Dataset
from bremen_robot.imagination.model_env import ModelEnv, imagine
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.models.ensemble_fit import ensemble_loss, fit_ensemble
from bremen_robot.models.subnormal import flush_denormals
from bremen_robot.policy.gaussian import GaussianPolicy, reset_log_std
from bremen_robot.tasks import HALFCHEETAH

TITLE = "trainer compute"
ORDER = 10


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / _best_time(lambda: torch.mm(a, b), repeats) / 1e9


def ensemble_fit_gflops(steps: int) -> float:
    task = HALFCHEETAH
    model = DynamicsEnsemble(task.obs_dim, task.action_dim, 5, (1024, 1024))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n, bs = 20_000, 1000
    z_in, z_tgt = torch.randn(n, task.obs_dim + task.action_dim), torch.randn(n, task.obs_dim)
    gen = torch.Generator().manual_seed(0)

    def run() -> None:
        perm = torch.argsort(torch.rand(5, n, generator=gen), dim=1)
        for i in range(steps):
            idx = perm[:, (i * bs) % n : (i * bs) % n + bs]
            loss = ensemble_loss(model, z_in[idx], z_tgt[idx], 1e-4)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    seconds = _best_time(run, 2)
    return 3 * model.flops_per_row() * 5 * bs * steps / seconds / 1e9


def ensemble_fit_subnormal_slowdown(rows: int, subnormal_fraction: float = 0.3) -> float:
    """One epoch of the trainer's :func:`fit_ensemble` (inside its :func:`flush_denormals`) on a
    ``cpu``-preset ensemble (5 x 2 x 256) whose weights are ``subnormal_fraction`` subnormal, as
    a Walker2d ensemble's were after 7 warm-started deployments, divided by the same epoch on the
    fresh weights: what aged weights cost, 1 when the trainer handles them."""
    task = HALFCHEETAH
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(rows, task.obs_dim)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(rows, task.action_dim)).astype(np.float32)
    cols: dict[str, np.ndarray] = {
        "obs": obs,
        "actions": act,
        "rewards": np.zeros(rows),
        "next_obs": obs + 0.1 * act[:, :1],  # (N, D) + (N, 1) -> (N, D)
    }
    data = Dataset.from_columns(task.name, cols)
    train, holdout = data.split_by_episode(0.15)  # one long episode: split by time
    cfg = EnsembleConfig(members=5, hidden=[256, 256], batch_size=256, max_epochs=1, patience=2)
    fresh = DynamicsEnsemble(task.obs_dim, task.action_dim, 5, (256, 256))
    aged = copy.deepcopy(fresh)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in aged.linear_layers():
            mask = torch.rand(layer.weight.shape, generator=gen) < subnormal_fraction
            layer.weight[mask] *= 1e-39  # |w| <= 1 / sqrt(in) <= 1: below float32's smallest normal

    def epoch(model: DynamicsEnsemble) -> float:
        m = copy.deepcopy(model)  # a fit cleans its model: every repeat starts from the same weights
        t = time.perf_counter()
        with flush_denormals():
            fit_ensemble(m, train, holdout, cfg, torch.Generator().manual_seed(0))
        return time.perf_counter() - t

    epoch(fresh)  # warm-up
    return min(epoch(aged) for _ in range(2)) / min(epoch(fresh) for _ in range(2))


def _policy_flops_per_row(policy: GaussianPolicy) -> int:
    dims = [policy.obs_dim, *policy.hidden, 2 * policy.action_dim]
    return 2 * sum(i * o for i, o in zip(dims[:-1], dims[1:]))


def rollout_figures(horizon: int, n_rollouts: int = 200) -> dict[str, float]:
    """Our batched imagination vs the anchors' way, same model sizes, same batch."""
    task = HALFCHEETAH
    gen = torch.Generator().manual_seed(0)
    model = DynamicsEnsemble(task.obs_dim, task.action_dim, 5, (1024, 1024))
    policy = GaussianPolicy(task.obs_dim, task.action_low, task.action_high, (200, 200))
    reset_log_std(policy, -1.0)
    env = ModelEnv(model, task, gen)
    seconds = _best_time(lambda: imagine(env, policy, n_rollouts, horizon, gen), 2)
    steps = n_rollouts * horizon
    flops = steps * (model.flops_per_row() + _policy_flops_per_row(policy))

    # The reference: separate member modules, all run on the batch, numpy between every call.
    members = []
    for m in range(5):
        layers: list[nn.Module] = []
        for i, layer in enumerate(model.linear_layers()):
            lin = nn.Linear(layer.weight.shape[1], layer.weight.shape[2])
            with torch.no_grad():
                lin.weight.copy_(layer.weight[m].T)
                lin.bias.copy_(layer.bias[m, 0])
            layers += [lin] + ([nn.ReLU()] if i < len(model.layers) - 1 else [])
        members.append(nn.Sequential(*layers))
    mu_x = model.in_mean.numpy()
    sd_x = model.in_std.numpy()
    rng = np.random.default_rng(0)

    def naive() -> None:
        obs = task.sample_reset(n_rollouts, rng)
        assert obs is not None
        for _ in range(horizon):
            with torch.no_grad():
                mean, log_std = policy(torch.from_numpy(obs))
            act = (mean + torch.randn(mean.shape) * log_std.exp()).numpy().clip(-1, 1)
            x = (np.concatenate([obs, act], axis=1) - mu_x) / sd_x
            with torch.no_grad():
                preds = np.stack([m(torch.from_numpy(x.astype(np.float32))).numpy() for m in members])
            pick = rng.integers(0, 5, size=n_rollouts)
            nxt = obs + preds[pick, np.arange(n_rollouts)]
            task.reward(obs, act, nxt)
            obs = nxt.astype(np.float32)

    naive_seconds = _best_time(naive, 2)
    return {
        "rollout_steps_per_s": steps / seconds,
        "rollout_gflops": flops / seconds / 1e9,
        "rollout_naive_steps_per_s": steps / naive_seconds,
        "rollout_vs_naive": naive_seconds / seconds,
    }


def trpo_iteration_seconds(cfg: TrainConfig) -> float:
    """One TRPO iteration (imagine + GAE + update + baseline fit) at the preset's sizes."""
    from bremen_robot.progress import Reporter
    from bremen_robot.trainer import run_trpo

    task = HALFCHEETAH
    gen = torch.Generator().manual_seed(0)
    model = DynamicsEnsemble(task.obs_dim, task.action_dim, cfg.ensemble.members, cfg.ensemble.hidden)
    policy = GaussianPolicy(task.obs_dim, task.action_low, task.action_high, cfg.bc.hidden)
    reset_log_std(policy, -1.0)
    env = ModelEnv(model, task, gen)
    one = cfg.model_copy(update={"trpo": cfg.trpo.model_copy(update={"iterations": 1})})
    return _best_time(lambda: run_trpo(policy, env, one, gen, None, Reporter(False)), 1)


def ensemble_step_seconds(cfg: TrainConfig) -> float:
    task = HALFCHEETAH
    model = DynamicsEnsemble(task.obs_dim, task.action_dim, cfg.ensemble.members, cfg.ensemble.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    E, bs = cfg.ensemble.members, cfg.ensemble.batch_size
    z_in, z_tgt = torch.randn(E, bs, task.obs_dim + task.action_dim), torch.randn(E, bs, task.obs_dim)

    def step() -> None:
        for _ in range(5):
            loss = ensemble_loss(model, z_in, z_tgt, 1e-4)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return _best_time(step, 2) / 5


def bc_step_seconds(cfg: TrainConfig) -> float:
    task = HALFCHEETAH
    policy = GaussianPolicy(task.obs_dim, task.action_low, task.action_high, cfg.bc.hidden)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    obs, act = torch.randn(cfg.bc.batch_size, task.obs_dim), torch.rand(cfg.bc.batch_size, task.action_dim)

    def step() -> None:
        for _ in range(20):
            loss = ((policy.sample(obs) - act) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return _best_time(step, 2) / 20


def deployment_hours(cfg: TrainConfig, trpo_s: float, samples: int = 200_000) -> float:
    """Upper-bound estimate: every ensemble epoch run (no early stop) on one deployment's samples."""
    ens = ensemble_step_seconds(cfg) * (samples / cfg.ensemble.batch_size) * cfg.ensemble.max_epochs
    return (ens + bc_step_seconds(cfg) * cfg.bc.steps + trpo_s * cfg.trpo.iterations) / 3600


def run(quick: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    peak = matmul_peak_gflops(repeats=3 if quick else 10)
    out["matmul_peak_gflops"] = peak
    fit = ensemble_fit_gflops(steps=5 if quick else 20)
    out["ensemble_fit_gflops"] = fit
    out["ensemble_fit_peak_ratio"] = fit / peak
    out["ensemble_fit_subnormal_slowdown"] = ensemble_fit_subnormal_slowdown(rows=2_000 if quick else 10_000)
    roll = rollout_figures(horizon=25 if quick else 250)
    out.update(roll)
    out["rollout_peak_ratio"] = roll["rollout_gflops"] / peak
    for preset in ("cpu", "paper"):
        cfg = load_train_config(f"halfcheetah-{preset}")
        if quick and preset == "paper":  # measure at 1/5 of the batch, scale linearly (stated in the key)
            small = cfg.trpo.model_copy(update={"steps_per_iteration": cfg.trpo.steps_per_iteration // 5})
            seconds = 5 * trpo_iteration_seconds(cfg.model_copy(update={"trpo": small}))
        else:
            seconds = trpo_iteration_seconds(cfg)
        out[f"trpo_iter_seconds_{preset}"] = seconds
        out[f"deployment_hours_{preset}"] = deployment_hours(cfg, seconds)
    return out
