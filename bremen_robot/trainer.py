"""One deployment's offline training: fit ensemble -> clone behavior -> TRPO from BC -> export.

Wiring only; the maths lives in ``models``, ``policy``, ``rl`` and ``imagination``.
Outputs in ``out_dir``::

    policy.pt, manifest.json   the BREMEN candidate (frozen artifact)
    bc/                        the behavior-cloned policy as an artifact (baseline, OOD fallback)
    ensemble.pt                dynamics ensemble weights, for re-fitting at the next deployment
    report.json, report.png    training curves and figures for operator review
    snapshots/<name>/          with ``selection.enabled``: BC and TRPO snapshots as artifacts;
                               policy.pt is then the one the offline selection chose
"""

from __future__ import annotations

import io
import json
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bremen_robot.config.train import TrainConfig
from bremen_robot.data.dataset import Dataset
from bremen_robot.errors import ArtifactError, BremenError, TaskError
from bremen_robot.fsutil import atomic_write_bytes
from bremen_robot.imagination.model_env import ModelEnv, imagine
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.models.ensemble_fit import FitHistory, fit_ensemble
from bremen_robot.models.subnormal import flush_denormals
from bremen_robot.policy.artifact import MANIFEST_FILE, PolicyManifest, export_policy
from bremen_robot.policy.bc import new_bc_policy, train_bc
from bremen_robot.policy.gaussian import GaussianPolicy, reset_log_std
from bremen_robot.progress import Reporter
from bremen_robot.review_figures import policy_figures, spread_rows
from bremen_robot.rl.behavior import ANCHOR_ROWS, BehaviorAnchor, evenly_spaced
from bremen_robot.rl.gae import gae
from bremen_robot.rl.trpo import trpo_step
from bremen_robot.rl.value import LinearBaseline, MLPBaseline, ValueBaseline
from bremen_robot.selection import (
    SNAPSHOTS_DIR,
    Selection,
    SnapshotKeeper,
    add_snapshot_figures,
    export_snapshots,
    load_deployed,
    offline_selection,
)
from bremen_robot.tasks import Task, get_task
from bremen_robot.workspace_lock import folder_lock

ENSEMBLE_FILE = "ensemble.pt"


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BremenError("device 'cuda' requested but no CUDA GPU is visible; use device: auto or cpu")
    return torch.device(name)


@dataclass
class TrainResult:
    out_dir: Path
    manifest: PolicyManifest
    report: dict[str, Any]


def save_ensemble(model: DynamicsEnsemble, path: Path) -> None:
    meta = {
        "obs_dim": model.obs_dim,
        "action_dim": model.action_dim,
        "members": model.members,
        "hidden": model.hidden,
    }
    buf = io.BytesIO()  # torch.save on a full disk raises a bare RuntimeError; ours names the file
    torch.save({"meta": meta, "state": model.state_dict()}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_ensemble(path: Path, device: torch.device) -> DynamicsEnsemble:
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
        meta = blob["meta"]
        model = DynamicsEnsemble(meta["obs_dim"], meta["action_dim"], meta["members"], meta["hidden"]).to(
            device
        )
        model.load_state_dict(blob["state"])
    # UnpicklingError: a file that is no torch save at all (an image, a dataset)
    except (OSError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ArtifactError(
            f"cannot load ensemble '{path}' ({type(exc).__name__}); train without --init-ensemble"
        ) from None
    return model


def _init_ensemble(cfg: TrainConfig, task: Task, device: torch.device, init: Path | None) -> DynamicsEnsemble:
    if init is None:
        return DynamicsEnsemble(task.obs_dim, task.action_dim, cfg.ensemble.members, cfg.ensemble.hidden).to(
            device
        )
    model = load_ensemble(init, device)
    want = (task.obs_dim, task.action_dim, cfg.ensemble.members, tuple(cfg.ensemble.hidden))
    have = (model.obs_dim, model.action_dim, model.members, model.hidden)
    if want != have:
        raise ArtifactError(
            f"ensemble '{init}' has shape {have} but the config needs {want}; drop --init-ensemble"
        )
    return model


def fit_dynamics(
    cfg: TrainConfig,
    task: Task,
    data: Dataset,
    gen: torch.Generator,
    device: torch.device,
    init_ensemble: Path | None,
    reporter: Reporter,
) -> tuple[DynamicsEnsemble, FitHistory]:
    """A new (or, with ``init_ensemble``, re-fit) ensemble on ``data``, held out by episode."""
    train_set, holdout = data.split_by_episode(cfg.ensemble.holdout_fraction)
    ensemble = _init_ensemble(cfg, task, device, init_ensemble)
    with reporter.stage("fit dynamics ensemble", cfg.ensemble.max_epochs) as stage:
        hist = fit_ensemble(
            ensemble,
            train_set,
            holdout,
            cfg.ensemble,
            gen,
            on_epoch=lambda e, tr, h: stage.advance(1, f"train {tr:.4f} holdout {np.mean(h):.4f}"),
        )
    return ensemble, hist


def training_task(config_task: str | None, data_task: str) -> Task:
    """The config's task, else the data's. A config naming another task than the data's is
    refused: tasks of the same sizes (HalfCheetah and Walker2d: 17 observations, 6 actions) pass
    every size check, so the data would be scored with another robot's reward and termination."""
    task = get_task(config_task or data_task)
    if config_task is not None and data_task and _known_task_name(data_task) not in (None, task.name):
        raise BremenError(
            f"the config trains task '{task.name}' but the data was recorded for '{data_task}'; "
            f"use a {data_task} preset or set task: {data_task}"
        )
    return task


def _known_task_name(name: str) -> str | None:
    """``name``'s registered task, or None when no task of that name is registered."""
    try:
        return get_task(name).name
    except TaskError:
        return None  # data of a task this install does not know: only its sizes can be checked


def _make_baseline(
    cfg: TrainConfig, obs_dim: int, generator: torch.Generator, device: torch.device
) -> ValueBaseline:
    if cfg.trpo.value == "linear":
        return LinearBaseline()
    return MLPBaseline(obs_dim, cfg.trpo.value_hidden, cfg.trpo.value_epochs, generator).to(device)


def behavior_data(cfg: TrainConfig, data: Dataset) -> Dataset:
    """The data BC clones: the latest deployment's (paper) or all of it (``bc.data``)."""
    return data.latest_deployment() if cfg.bc.data == "latest" else data


def clone_behavior(
    cfg: TrainConfig,
    bc_data: Dataset,
    task: Task,
    gen: torch.Generator,
    device: torch.device,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[GaussianPolicy, list[float]]:
    """A freshly initialized BC policy trained on ``bc_data``, and its loss curve."""
    low, high = np.asarray(task.action_low), np.asarray(task.action_high)
    bc = new_bc_policy(bc_data, low, high, cfg.bc).to(device)
    return bc, train_bc(bc, bc_data, cfg.bc, gen, on_step=on_step)


def model_env_for(
    cfg: TrainConfig, task: Task, ensemble: DynamicsEnsemble, data: Dataset, gen: torch.Generator
) -> ModelEnv:
    """The imagined environment as ``cfg.imagination`` asks for it (start states, penalty)."""
    use_reset = cfg.imagination.start_states in ("auto", "reset") and task.reset_fn is not None
    if cfg.imagination.start_states == "reset" and task.reset_fn is None:
        raise BremenError(
            f"task '{task.name}' has no known reset distribution; set imagination.start_states: dataset"
        )
    return ModelEnv(
        ensemble,
        task,
        gen,
        start_states=data.obs,
        use_reset_distribution=use_reset,
        uncertainty_penalty=penalty_weight(cfg, ensemble, behavior_data(cfg, data)),
    )


@torch.no_grad()
def penalty_weight(cfg: TrainConfig, ensemble: DynamicsEnsemble, behavior: Dataset) -> float:
    """The lambda ModelEnv subtracts per unit of disagreement: ``uncertainty_penalty`` itself, or
    divided by the ensemble's mean disagreement on (at most 5,000 evenly spaced rows of) the
    behavior data when ``penalty_units`` is ``behavior``."""
    im = cfg.imagination
    if not im.uncertainty_penalty or im.penalty_units == "absolute":
        return im.uncertainty_penalty
    if len(behavior) == 0:
        raise BremenError("imagination.penalty_units: behavior needs behavior data; the dataset is empty")
    return im.uncertainty_penalty / max(float(behavior_disagreement(ensemble, behavior).mean()), 1e-8)


@torch.no_grad()
def behavior_disagreement(
    ensemble: DynamicsEnsemble, behavior: Dataset, rows: int = ANCHOR_ROWS
) -> torch.Tensor:
    """The ensemble's disagreement on at most ``rows`` evenly spaced rows of ``behavior``: ``(N,)``."""
    idx = evenly_spaced(len(behavior), rows)
    dev = next(ensemble.parameters()).device
    obs = torch.as_tensor(behavior.obs[idx], dtype=torch.float32, device=dev)  # (N, D)
    act = torch.as_tensor(behavior.actions[idx], dtype=torch.float32, device=dev)  # (N, A)
    return ensemble.disagreement(obs, act).cpu()


def trpo_start_policy(bc: GaussianPolicy, cfg: TrainConfig) -> GaussianPolicy:
    """TRPO starts from a copy of the BC policy, with its log-std reset if the preset says so."""
    policy = bc.clone()
    if cfg.trpo.init_log_std is not None:
        reset_log_std(policy, cfg.trpo.init_log_std)
    return policy


def run_trpo(
    policy: GaussianPolicy,
    env: ModelEnv,
    cfg: TrainConfig,
    generator: torch.Generator,
    bc_policy: GaussianPolicy | None,
    reporter: Reporter,
    on_iteration: Callable[[int, GaussianPolicy, dict[str, list[float]]], None] | None = None,
    anchor: BehaviorAnchor | None = None,
) -> dict[str, list[float]]:
    """``cfg.trpo.iterations`` TRPO updates on fresh imagined batches; returns per-iteration stats.

    ``on_iteration(i, policy, stats)`` runs after update ``i`` (0-based) with the stats so far,
    e.g. to evaluate the policy in a real environment while it trains (``benchmarks/trpo_probe.py``).
    The stats also hold ``terminated_fraction``, the share of imagined steps that ended a rollout
    early, and, with ``anchor``, ``behavior_shift`` (:class:`BehaviorAnchor`) after every update.
    """
    tc = cfg.trpo
    baseline = _make_baseline(cfg, env.ensemble.obs_dim, generator, env.device)
    stats: dict[str, list[float]] = {
        k: []
        for k in (
            "imagined_return",
            "kl",
            "surrogate",
            "step_fraction",
            "log_std",
            "terminated_fraction",
        )
    }
    if anchor is not None:
        stats["behavior_shift"] = []
    with reporter.stage("TRPO in imagination", tc.iterations) as stage:
        for it in range(tc.iterations):
            batch = imagine(env, policy, tc.n_rollouts, tc.horizon, generator)
            T, B, D = batch.obs.shape
            obs, nxt = batch.obs.reshape(T * B, D), batch.next_obs.reshape(T * B, D)  # (T, B, D) -> (T*B, D)
            t_flat = batch.timesteps.reshape(T * B)
            values = baseline.predict(obs, t_flat).reshape(T, B)  # (T*B,) -> (T, B)
            next_values = baseline.predict(nxt, t_flat + 1).reshape(T, B)
            adv, targets = gae(
                batch.rewards, values, next_values, batch.terminals, batch.dones, tc.gamma, tc.gae_lambda
            )
            adv_flat = adv.reshape(T * B)
            adv_flat = (adv_flat - adv_flat.mean()) / (adv_flat.std() + 1e-8)
            A = batch.actions.shape[-1]
            step = trpo_step(
                policy,
                obs,
                batch.actions.reshape(T * B, A),
                adv_flat,
                batch.mean.reshape(T * B, A),
                batch.log_std.reshape(T * B, A),
                tc,
                bc_policy=bc_policy,
                generator=generator,
            )
            baseline.fit(obs, t_flat, targets.reshape(T * B))
            ret = float(batch.episode_returns().mean())
            for key, val in (
                ("imagined_return", ret),
                ("kl", step.kl),
                ("surrogate", step.surrogate_after),
                ("step_fraction", step.step_fraction),
                ("log_std", float(batch.log_std.mean())),
                ("terminated_fraction", float(batch.terminals.float().mean())),
            ):
                stats[key].append(val)
            if anchor is not None:
                stats["behavior_shift"].append(anchor.shift(policy))
            stage.advance(1, f"imagined return {ret:9.2f}  kl {step.kl:.4f}")
            if on_iteration is not None:
                on_iteration(it, policy, stats)
    return stats


def train(
    cfg: TrainConfig,
    data: Dataset,
    out_dir: Path,
    *,
    robot: str | None = None,
    init_ensemble: Path | None = None,
    reporter: Reporter | None = None,
    deployed: Path | None = None,
) -> TrainResult:
    """Train one deployment's candidate policy from ``data`` and export it to ``out_dir``.

    ``deployed`` is the artifact of the policy that collected the latest data; with
    ``selection.enabled`` the snapshots are scored against it (docs/algorithm.md, "Selection").
    Runs with subnormal floats flushed to zero (:func:`~bremen_robot.models.subnormal.flush_denormals`).
    Holds ``out_dir``'s lock (:mod:`bremen_robot.workspace_lock`) while it writes, so a library
    caller is refused like ``bremen train`` when another process writes there.
    """
    with folder_lock(out_dir, "output folder"), flush_denormals():
        return _train(
            cfg,
            data,
            Path(out_dir),
            robot=robot,
            init_ensemble=init_ensemble,
            reporter=reporter,
            deployed=deployed,
        )


def _train(
    cfg: TrainConfig,
    data: Dataset,
    out_dir: Path,
    *,
    robot: str | None,
    init_ensemble: Path | None,
    reporter: Reporter | None,
    deployed: Path | None,
) -> TrainResult:
    reporter = reporter or Reporter(enabled=False)
    if (out_dir / MANIFEST_FILE).exists():
        raise BremenError(
            f"'{out_dir}' already holds an artifact; choose a new --out (nothing was overwritten)"
        )
    task = training_task(cfg.task, data.task)
    data.validate(task)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    t0 = time.perf_counter()
    timing: dict[str, float] = {}

    # 1. dynamics ensemble on all data so far
    ensemble, hist = fit_dynamics(cfg, task, data, gen, device, init_ensemble, reporter)
    timing["ensemble_s"] = time.perf_counter() - t0

    # 2. behavior cloning, re-initialized every deployment
    t1 = time.perf_counter()
    bc_data = behavior_data(cfg, data)
    with reporter.stage("behavior cloning", cfg.bc.steps) as stage:
        bc, bc_losses = clone_behavior(
            cfg, bc_data, task, gen, device, on_step=lambda s, loss: stage.advance(1000, f"loss {loss:.4f}")
        )
    timing["bc_s"] = time.perf_counter() - t1

    # 3. TRPO in imagination, starting from the BC policy (implicit behavior regularization)
    t2 = time.perf_counter()
    env = model_env_for(cfg, task, ensemble, data, gen)
    policy = trpo_start_policy(bc, cfg)
    bc.requires_grad_(False)
    anchor = BehaviorAnchor.from_data(bc, bc_data.obs, bc_data.actions)
    keeper = (
        SnapshotKeeper(bc, cfg.selection.snapshot_every, cfg.trpo.iterations)
        if cfg.selection.enabled
        else None
    )
    trpo_stats = run_trpo(policy, env, cfg, gen, bc, reporter, anchor=anchor, on_iteration=keeper)
    timing["trpo_s"] = time.perf_counter() - t2

    # 3b. choose among BC and the TRPO snapshots by a pessimistic offline estimate
    selection: Selection | None = None
    if keeper is not None:
        t3 = time.perf_counter()
        with reporter.stage("candidate selection", 1) as stage:
            ref = load_deployed(deployed, task) if deployed is not None else None
            selection, chosen = offline_selection(
                cfg.selection,
                cfg.trpo.horizon,
                ensemble,
                task,
                bc_data.obs,
                keeper.snapshots,
                ref,
                gen,
                behavior_actions=bc_data.actions,
            )
            policy = chosen.policy
            stage.advance(1, f"chose {chosen.name}")
        timing["selection_s"] = time.perf_counter() - t3

    # 4. figures for review, then export
    obs_t = torch.as_tensor(data.obs, device=device)

    def figures_of(p: GaussianPolicy) -> dict[str, float]:
        rollouts = min(cfg.trpo.n_rollouts, 256)
        return policy_figures(p, bc, anchor, env, ensemble, obs_t, rollouts, cfg.trpo.horizon, gen)

    figures = figures_of(policy)
    with torch.no_grad():  # the data's own disagreement, to compare the policy's with
        rows = spread_rows(len(data), 4096, device)  # all deployments, not deployment 1's first rows
        act_t = torch.as_tensor(data.actions, device=device)
        data_dis = ensemble.disagreement(obs_t[rows], act_t[rows])
    if selection is not None and keeper is not None:
        add_snapshot_figures(selection, keeper.snapshots, figures, figures_of)
    report: dict[str, Any] = {
        "task": task.name,
        "config": cfg.model_dump(mode="json"),
        "data": {
            "digest": data.digest(),
            "transitions": len(data),
            "episodes": len(data.episode_keys()),
            "deployments": data.deployments(),
            "behavior_return_mean": float(np.mean(data.episode_returns())),
        },
        "ensemble": asdict(hist),
        "bc": {"loss": bc_losses, "transitions": len(bc_data)},
        "trpo": trpo_stats,
        "kl_to_bc": figures["kl_to_bc"],
        "behavior_shift": figures["behavior_shift"],
        "disagreement": {
            "policy_imagined": figures["policy_imagined_disagreement"],
            "dataset": float(data_dis.mean()),
            "behavior": float(behavior_disagreement(ensemble, bc_data).mean()),
        },
        "uncertainty_penalty_weight": env.uncertainty_penalty,
        "imagined_return_final": figures["imagined_return_final"],
        **({"selection": selection.to_dict()} if selection is not None else {}),
        "timing": {
            **timing,
            "total_s": time.perf_counter() - t0,
            "device": str(device),
            "subnormal_flush": True,  # times before 2026-12-06 lack it: 10-20x slower fits
        },
    }
    metrics = {
        "imagined_return": report["imagined_return_final"],
        "kl_to_bc": report["kl_to_bc"],
        "ensemble_holdout_mse": float(np.mean(hist.best_holdout_mse)),
    }
    if selection is not None:
        metrics |= {"selected_snapshot": selection.chosen, "beats_deployed_offline": selection.beats_deployed}
    common: dict[str, Any] = dict(
        robot=robot or task.name,
        task=task.name,
        observation_names=list(task.obs_names),
        action_names=list(task.action_names),
        control_rate_hz=1.0 / task.dt,
        data_digests=[data.digest()],
    )
    export_policy(bc, out_dir / "bc", kind="bc", config=cfg.bc.model_dump(mode="json"), **common)  #
    if selection is not None and keeper is not None:
        export_snapshots(selection, keeper.snapshots, out_dir / SNAPSHOTS_DIR, **common)
    save_ensemble(ensemble, out_dir / ENSEMBLE_FILE)
    atomic_write_bytes(out_dir / "report.json", json.dumps(report, indent=1).encode())
    from bremen_robot.report_plots import plot_training_report

    plot_training_report(report, out_dir / "report.png")
    # the manifest goes last: its presence marks a complete artifact
    manifest = export_policy(
        policy, out_dir, kind="bremen", config=cfg.model_dump(mode="json"), metrics=metrics, **common
    )  #
    return TrainResult(out_dir, manifest, report)
