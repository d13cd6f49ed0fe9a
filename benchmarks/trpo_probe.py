"""Replay one deployment's TRPO with real evaluations along the way (a diagnosis tool, not a test).

Given a finished campaign workspace and a deployment k, it rebuilds that deployment's training
inputs: the data of deployments 1..k, the ensemble saved at ``d<k>/train/ensemble.pt`` (or, with
``--refit``, a fresh one fitted on that data), and a fresh BC policy on deployment k's data. It
runs TRPO in imagination with the workspace's training preset plus ``--train-override``
overrides, and every ``--every`` iterations runs the policy's mean action in the real
simulator. The output pairs imagined and real return per iteration, which shows where (and
whether) the policy starts to exploit the learned models.

    python benchmarks/trpo_probe.py benchmarks/runs/halfcheetah-cpu/bremen/seed2 --deployment 3 \\
        --train-override trpo.init_log_std=null --json /tmp/probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from reproduce import apply_overrides, parse_overrides  # benchmarks/ is on sys.path when run as a script

from bremen_robot.campaign.workspace import Workspace
from bremen_robot.config.train import TrainConfig
from bremen_robot.data.dataset import Dataset, merge
from bremen_robot.data.real_rollout import make_env, rollout
from bremen_robot.policy.gaussian import GaussianPolicy
from bremen_robot.progress import Reporter
from bremen_robot.rl.behavior import BehaviorAnchor
from bremen_robot.tasks import get_task
from bremen_robot.trainer import (
    behavior_data,
    clone_behavior,
    fit_dynamics,
    load_ensemble,
    model_env_for,
    run_trpo,
    trpo_start_policy,
)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer; give 1 or more")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workspace", type=Path, help="a finished campaign workspace")
    p.add_argument("--deployment", type=int, required=True, help="replay the training of deployment k")
    p.add_argument(
        "--train-override",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="training-config overrides as in reproduce.py, e.g. trpo.max_kl=0.01",
    )
    p.add_argument(
        "--refit",
        action="store_true",
        help="fit a fresh ensemble on deployments 1..k with the (overridden) ensemble settings "
        "instead of loading d<k>/train/ensemble.pt, e.g. with --train-override ensemble.hidden=[512,512]",
    )
    p.add_argument("--every", type=_positive, default=10, help="real evaluation every N TRPO iterations")
    p.add_argument("--episodes", type=int, default=1, help="real episodes per evaluation")
    p.add_argument("--env", default="sim:halfcheetah/mujoco", help="real environment spec")
    p.add_argument("--seed", type=int, default=0, help="seed for BC, TRPO and evaluation")
    p.add_argument("--json", type=Path, default=None, help="write the curves here")
    return p.parse_args(argv)


def real_return(policy: GaussianPolicy, env: Any, task: Any, episodes: int, seed: int) -> float:
    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            mean, _ = policy(torch.as_tensor(obs, dtype=torch.float32)[None])
        return mean[0].numpy()

    data = rollout(env, task, act, episodes=episodes, seed=seed)
    return float(np.mean(data.episode_returns()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ws = Workspace(args.workspace)
    k = args.deployment
    report = json.loads((ws.train_dir(k) / "report.json").read_text())
    try:
        overrides = parse_overrides(args.train_override)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    cfg = apply_overrides(TrainConfig.model_validate(report["config"]), overrides)
    cfg = cfg.model_copy(update={"seed": args.seed})
    torch.set_num_threads(cfg.threads or 1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    task = get_task(cfg.task or report["task"])
    data: Dataset = merge([Dataset.load(ws.data(j)) for j in range(1, k + 1)])
    if args.refit:
        t_fit = time.perf_counter()
        ensemble, hist = fit_dynamics(
            cfg, task, data, gen, torch.device("cpu"), None, Reporter(enabled=False)
        )
        print(
            f"refit {cfg.ensemble.members} x {cfg.ensemble.hidden}: {hist.epochs} epochs, holdout "
            f"{np.mean(hist.best_holdout_mse):.4f} ({time.perf_counter() - t_fit:.0f} s)",
            flush=True,
        )
    else:
        ensemble = load_ensemble(ws.train_dir(k) / "ensemble.pt", torch.device("cpu"))
    env, _ = make_env(args.env)

    bc_data = behavior_data(cfg, data)
    bc, _ = clone_behavior(cfg, bc_data, task, gen, torch.device("cpu"))
    anchor = BehaviorAnchor.from_data(bc, bc_data.obs, bc_data.actions)
    bc.requires_grad_(False)
    policy = trpo_start_policy(bc, cfg)
    model_env = model_env_for(cfg, task, ensemble, data, gen)

    real: dict[int, float] = {0: real_return(bc, env, task, args.episodes, args.seed)}
    print(f"BC real return {real[0]:9.1f}", flush=True)
    scale = task.max_episode_steps / cfg.trpo.horizon  # imagined episodes are shorter than real ones
    t0 = time.perf_counter()

    def on_iteration(it: int, pol: GaussianPolicy, stats: dict[str, list[float]]) -> None:
        if (it + 1) % args.every == 0:
            real[it + 1] = real_return(pol, env, task, args.episodes, args.seed)
            print(
                f"iter {it + 1:4d}  imagined x{scale:.0f} {stats['imagined_return'][-1] * scale:9.1f}  "
                f"real {real[it + 1]:9.1f}  log_std {stats['log_std'][-1]:.2f}  "
                f"ended {stats['terminated_fraction'][-1]:.4f}  shift {stats['behavior_shift'][-1]:.2f}  "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

    stats = run_trpo(
        policy, model_env, cfg, gen, bc, Reporter(enabled=False), on_iteration=on_iteration, anchor=anchor
    )
    final = real_return(policy, env, task, args.episodes, args.seed)
    print(f"returned policy: real {final:9.1f} after {len(stats['imagined_return'])} iterations", flush=True)
    out = {
        "workspace": str(args.workspace),
        "deployment": k,
        "overrides": args.train_override,
        "refit": args.refit,
        "stats": stats,
    }
    out["real_return"] = real
    out["behavior_noise"] = anchor.noise.tolist()
    out["final_real_return"] = final
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
