"""Where does a deployment's ensemble doubt? A diagnosis tool, not a test.

Given a finished campaign workspace, it prints two things the diagnosis in docs/results.md uses:

* **Per deployment j**: deployment j's ensemble (``d<j>/train/ensemble.pt``) on deployment j's
  own behavior data (5,000 evenly spaced rows), mean and 99th percentile. The mean is the unit of
  ``imagination.penalty_units: behavior``.
* **Along real trajectories** (``--ensemble K --policies J...``): each candidate of deployment J
  runs its mean action in the real simulator; deployment K's ensemble scores every real step.
  It prints the mean and max disagreement over the first ``--steps`` steps, the first step where
  the root pitch passes ``--flip-angle`` (HalfCheetah: observation 1), and, per observation
  dimension, the ratio of each policy's mean spread to the first policy's.

    python benchmarks/disagreement_probe.py benchmarks/runs/halfcheetah-cpu-penalty30/bremen/seed0 \\
        --ensemble 3 --policies 2 3 --json /tmp/disagreement.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bremen_robot.campaign.workspace import Workspace
from bremen_robot.data.dataset import Dataset
from bremen_robot.data.real_rollout import make_env, rollout
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.policy.artifact import load_artifact
from bremen_robot.tasks import get_task
from bremen_robot.trainer import behavior_disagreement, load_ensemble


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workspace", type=Path, help="a campaign workspace with trained deployments")
    p.add_argument("--ensemble", type=int, default=None, help="score with deployment K's ensemble")
    p.add_argument("--policies", type=int, nargs="*", default=[], help="candidates of these deployments")
    p.add_argument("--steps", type=int, default=50, help="window at the start of each episode")
    p.add_argument("--episodes", type=int, default=1, help="real episodes per policy")
    p.add_argument("--env", default="sim:halfcheetah/mujoco", help="real environment spec")
    p.add_argument("--task", default="halfcheetah", help="task whose rewards and limits the rollout uses")
    p.add_argument("--pitch-index", type=int, default=1, help="observation entry holding the root pitch")
    p.add_argument("--flip-angle", type=float, default=math.pi / 2, help="|pitch| past this is a flip, rad")
    p.add_argument("--seed", type=int, default=0, help="first episode's reset seed")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = p.parse_args(argv)
    if args.policies and args.ensemble is None:
        p.error("--policies needs --ensemble K: the deployment whose ensemble scores the trajectories")
    if args.steps < 1 or args.episodes < 1:
        p.error("--steps and --episodes must be 1 or more")
    return args


def trained_deployments(ws: Workspace) -> list[int]:
    """Deployments 1, 2, ... whose ensemble and data both exist, stopping at the first gap."""
    out, k = [], 1
    while (ws.train_dir(k) / "ensemble.pt").is_file() and ws.data(k).is_file():
        out.append(k)
        k += 1
    return out


def per_deployment(ws: Workspace) -> list[dict[str, float]]:
    rows = []
    for k in trained_deployments(ws):
        ens = load_ensemble(ws.train_dir(k) / "ensemble.pt", torch.device("cpu"))
        u = behavior_disagreement(ens, Dataset.load(ws.data(k)).latest_deployment()).numpy()
        rows.append({"deployment": k, "mean": float(u.mean()), "p99": float(np.quantile(u, 0.99))})
    return rows


@torch.no_grad()
def spread_per_dim(ens: DynamicsEnsemble, data: Dataset) -> np.ndarray:
    """Std across members of each normalized delta entry, per row: ``(B, D)``."""
    obs = torch.as_tensor(data.obs, dtype=torch.float32)  # (B, D)
    act = torch.as_tensor(data.actions, dtype=torch.float32)  # (B, A)
    return ens.normalized_deltas(obs, act).std(dim=0).numpy()  # (E, B, D) -> (B, D)


def along_trajectory(
    ens: DynamicsEnsemble, data: Dataset, steps: int, pitch: int, flip: float
) -> dict[str, Any]:
    per_dim = spread_per_dim(ens, data)  # (B, D)
    episodes = []
    window = []
    for ep in np.unique(data.episode_ids):
        rows = np.flatnonzero(data.episode_ids == ep)
        flipped = np.flatnonzero(np.abs(data.obs[rows, pitch]) > flip)
        u = per_dim[rows].mean(axis=1)  # (T, D) -> (T,)
        episodes.append(
            {
                "return": float(data.rewards[rows].sum()),
                "first_flip_step": int(flipped[0]) if flipped.size else None,
                "window_mean": float(u[:steps].mean()),
                "window_max": float(u[:steps].max()),
            }
        )
        window.append(per_dim[rows[:steps]])
    dims = np.concatenate(window).mean(axis=0)  # (episodes * steps, D) -> (D,)
    return {"episodes": episodes, "window_per_dim": dims.tolist()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    ws = Workspace(args.workspace)
    if not trained_deployments(ws):
        raise SystemExit(
            f"{args.workspace}: no deployment has data.npz and train/ensemble.pt; pass a campaign workspace"
        )
    out: dict[str, Any] = {"workspace": str(args.workspace), "per_deployment": per_deployment(ws)}
    print("behavior data under its own deployment's ensemble:")
    for row in out["per_deployment"]:
        print(f"  d{row['deployment']}: mean {row['mean']:.4f}  p99 {row['p99']:.4f}")
    if args.policies:
        task = get_task(args.task)
        env, _ = make_env(args.env)
        ens = load_ensemble(ws.train_dir(args.ensemble) / "ensemble.pt", torch.device("cpu"))
        out["ensemble"], out["policies"] = args.ensemble, {}
        print(f"real trajectories under deployment {args.ensemble}'s ensemble (first {args.steps} steps):")
        for j in args.policies:
            policy = load_artifact(ws.train_dir(j))
            data = rollout(env, task, policy.act, episodes=args.episodes, seed=args.seed)
            res = along_trajectory(ens, data, args.steps, args.pitch_index, args.flip_angle)
            out["policies"][str(j)] = res
            for e in res["episodes"]:
                print(
                    f"  candidate d{j}: return {e['return']:9.1f}  mean {e['window_mean']:.4f}  "
                    f"max {e['window_max']:.4f}  first flip at step {e['first_flip_step']}"
                )
        ref = np.asarray(out["policies"][str(args.policies[0])]["window_per_dim"])
        for j in args.policies[1:]:
            ratio = np.asarray(out["policies"][str(j)]["window_per_dim"]) / np.maximum(ref, 1e-12)
            out["policies"][str(j)]["ratio_to_first"] = ratio.tolist()
            print(
                f"  d{j} / d{args.policies[0]} per dimension: min {ratio.min():.2f}  "
                f"median {np.median(ratio):.2f}  max {ratio.max():.2f}"
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
