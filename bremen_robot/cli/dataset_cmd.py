"""``bremen dataset``: inspect, merge, convert, collect (Gymnasium) and ingest (rosbag2) datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bremen_robot.errors import DatasetError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dataset",
        help="inspect, merge, convert, collect or ingest datasets",
        description="Work with the trainer's .npz datasets.",
    )
    ds = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    ds.required = True

    q = ds.add_parser(
        "inspect", help="print size, episodes, returns, digest", description="Summarize datasets."
    )
    q.add_argument("paths", nargs="+", type=Path)
    q.set_defaults(func=inspect)

    q = ds.add_parser(
        "merge",
        help="merge datasets of one task into one file",
        description="Concatenate datasets; episode ids are renumbered, deployment ids kept.",
    )
    q.add_argument("inputs", nargs="+", type=Path)
    q.add_argument("--out", required=True, type=Path, help="new .npz (never overwrites)")
    q.set_defaults(func=merge_cmd)

    q = ds.add_parser(
        "convert",
        help="convert a D4RL-style .npz into this project's format",
        description="Reads observations/actions/rewards/next_observations/terminals[/timeouts] arrays.",
    )
    q.add_argument("source", type=Path)
    q.add_argument("--task", required=True, help="task the data belongs to")
    q.add_argument("--deployment", type=int, default=1, help="deployment id to record")
    q.add_argument("--out", required=True, type=Path)
    q.set_defaults(func=convert)

    q = ds.add_parser(
        "collect",
        help="collect a dataset by stepping an environment directly (no ROS)",
        description="Real rollouts in 'point', a Gymnasium id or 'sim:<robot>/<backend>'.",
    )
    q.add_argument("--env", required=True)
    q.add_argument("--steps", type=int, required=True)
    q.add_argument("--policy", default="random", help="'random' or an artifact directory")
    q.add_argument(
        "--noise", type=float, default=0.1, help="Gaussian exploration sigma for an artifact policy"
    )
    q.add_argument("--deployment", type=int, default=1)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", required=True, type=Path)
    q.set_defaults(func=collect)

    q = ds.add_parser(
        "ingest",
        help="turn rosbag2 deployment logs into a dataset (no ROS needed)",
        description="Reads bags written by trajectory_logger with the rosbags library.",
    )
    q.add_argument("bags", nargs="+", type=Path)
    q.add_argument("--task", default=None, help="task (default: from the bag's episode metadata)")
    q.add_argument(
        "--include-incomplete",
        action="store_true",
        help="also keep episodes the logger marked incomplete (interrupted)",
    )
    q.add_argument("--out", required=True, type=Path)
    q.set_defaults(func=ingest)


def _check_deployment(deployment: int) -> None:
    """Deployment ids are 1-based and stored as int64; anything else would be written as data."""
    if not 1 <= deployment < 2**63:
        raise DatasetError(
            f"--deployment {deployment}: not a deployment number; pass 1 for the first deployment, "
            "2 for the next, ..."
        )


def inspect(args: argparse.Namespace) -> int:
    from bremen_robot.data.dataset import Dataset

    for path in args.paths:
        d = Dataset.load(path)
        rets = d.episode_returns()
        print(
            f"{path}: task {d.task}, {len(d)} transitions, {len(rets)} episodes, "
            f"deployments {d.deployments()}"
        )
        print(
            f"  obs {d.obs_dim}  action {d.action_dim}  terminals {int(d.terminals.sum())}  "
            f"timeouts {int(d.timeouts.sum())}  interventions {int(d.interventions.sum())}"
        )
        print(f"  return {rets.mean():.1f} ± {rets.std():.1f} (min {rets.min():.1f}, max {rets.max():.1f})")
        print(f"  digest {d.digest()}")
    return 0


def merge_cmd(args: argparse.Namespace) -> int:
    from bremen_robot.cli.common import load_datasets

    merged = load_datasets(args.inputs)
    out = merged.save(args.out)
    print(f"wrote {out}: {len(merged)} transitions, digest {merged.digest()[:12]}")
    return 0


def convert(args: argparse.Namespace) -> int:
    from bremen_robot.data.dataset import Dataset
    from bremen_robot.tasks import get_task

    task = get_task(args.task)
    _check_deployment(args.deployment)
    try:
        with np.load(args.source, allow_pickle=False) as z:
            src = {k: z[k] for k in z.files}
    except Exception as exc:
        raise DatasetError(
            f"cannot read '{args.source}' as .npz ({type(exc).__name__}); pass a numpy .npz"
        ) from None
    names = {
        "obs": "observations",
        "actions": "actions",
        "rewards": "rewards",
        "next_obs": "next_observations",
        "terminals": "terminals",
        "timeouts": "timeouts",
    }
    missing = [v for k, v in names.items() if v not in src and k != "timeouts"]
    if missing:
        raise DatasetError(
            f"'{args.source}' lacks array(s) {', '.join(missing)}; D4RL-style keys are required"
        )
    cols = {k: src[v] for k, v in names.items() if v in src}
    for key, arr in cols.items():  # text or object arrays would only fail deep inside, as a crash
        if arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
            raise DatasetError(
                f"'{args.source}': array {names[key]} holds {arr.dtype} values, not numbers; "
                "D4RL-style arrays are numeric"
            )
    if len(cols["obs"]) == 0:
        raise DatasetError(
            f"'{args.source}' holds no transitions (observations is empty); pass a file with data"
        )
    ends = cols["terminals"].astype(bool) | cols.get("timeouts", np.zeros(len(cols["obs"]), bool)).astype(
        bool
    )
    cols["episode_ids"] = np.concatenate([[0], np.cumsum(ends[:-1])])
    cols["deployment_ids"] = np.full(len(cols["obs"]), args.deployment)
    d = Dataset.from_columns(task.name, cols, meta={"source": str(args.source)})
    d.validate(task)
    print(f"wrote {d.save(args.out)}: {len(d)} transitions")
    return 0


def _refuse_existing_out(out: Path) -> None:
    """Before the work: ``--out`` is a folder, or the file it names (``.npz`` appended) exists."""
    from bremen_robot.data.dataset import Dataset

    if out.is_dir():
        raise DatasetError(f"--out '{out}' is a folder; give a file name, e.g. '{out / 'data.npz'}'")
    if Dataset.npz_path(out).exists():
        raise DatasetError(
            f"'{Dataset.npz_path(out)}' already exists; choose another --out (nothing was written)"
        )


def collect(args: argparse.Namespace) -> int:
    from bremen_robot.data.real_rollout import make_env, noisy_policy, rollout, uniform_policy
    from bremen_robot.policy.artifact import load_artifact

    _refuse_existing_out(args.out)
    if args.steps < 1:
        raise DatasetError(f"--steps must be at least 1 (got {args.steps})")
    if args.seed < 0:  # numpy's generators take no negative seed
        raise DatasetError(f"--seed must be 0 or more (got {args.seed})")
    if not (np.isfinite(args.noise) and args.noise >= 0):  # NaN would be written as actions
        raise DatasetError(f"--noise must be a finite sigma of 0 or more, like 0.1 (got {args.noise})")
    _check_deployment(args.deployment)
    env, task = make_env(args.env)
    rng = np.random.default_rng(args.seed)
    if args.policy == "random":
        act, sha = uniform_policy(task, rng), "random"
    else:
        frozen = load_artifact(Path(args.policy))
        task.check_obs_dim(
            frozen.obs_dim, f"policy '{args.policy}'", "pass the --env the policy was trained for"
        )
        act, sha = noisy_policy(frozen.act, task, args.noise, rng), frozen.sha256
    d = rollout(
        env, task, act, steps=args.steps, seed=args.seed, deployment_id=args.deployment, policy_sha256=sha
    )
    env.close()
    print(
        f"wrote {d.save(args.out)}: {len(d)} transitions, return {d.episode_returns().mean():.1f} per episode"
    )
    return 0


def ingest(args: argparse.Namespace) -> int:
    from bremen_robot.data.bag_ingest import ingest_dataset

    _refuse_existing_out(args.out)
    import sys

    from bremen_robot.ros.bagfile import wait_until_unwritten

    for bag in args.bags:  # a live logger (a running collection, or one outliving a killed one)
        if not wait_until_unwritten(bag, 0.0):  # would still add episodes: read it when closed
            raise DatasetError(
                f"{bag}: a trajectory_logger is still writing this bag; wait until it closes it "
                "(its collection ends, or the logger exits after a killed one), then ingest"
            )
    d = ingest_dataset(args.bags, args.task, include_incomplete=args.include_incomplete)
    for bag in d.meta["bags"]:
        for line in bag.get("warnings", []):
            print(f"warning: {line}", file=sys.stderr)
    episodes = len(d.episode_keys())
    print(f"wrote {d.save(args.out)}: {len(d)} transitions, {episodes} episodes from {len(args.bags)} bag(s)")
    return 0
