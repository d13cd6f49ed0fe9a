"""``bremen train``: one deployment's offline training from logged data to a frozen artifact."""

from __future__ import annotations

import argparse
from pathlib import Path

from bremen_robot.cli.common import load_datasets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fit ensemble, clone behavior, TRPO in imagination; write a frozen policy artifact",
        description="Train a BREMEN candidate policy from datasets (.npz) and export it "
        "(policy.pt + manifest.json + report.json/png + ensemble.pt) to --out.",
    )
    p.add_argument("--config", required=True, help="preset name (e.g. halfcheetah-cpu) or YAML path")
    p.add_argument("--data", required=True, nargs="+", help="one or more .npz datasets (merged)")
    p.add_argument(
        "--out", required=True, type=Path, help="new directory for the artifact (must not exist or be empty)"
    )
    p.add_argument("--robot", default=None, help="robot name for the manifest (default: the task name)")
    p.add_argument(
        "--init-ensemble", type=Path, default=None, help="ensemble.pt of the previous deployment to re-fit"
    )
    p.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default=None, help="override the config's device"
    )
    p.add_argument("--threads", type=int, default=None, help="override torch thread count")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bremen_robot.cli.common import check_new_folder
    from bremen_robot.errors import BremenError
    from bremen_robot.policy.manifest import MANIFEST_FILE
    from bremen_robot.workspace_lock import folder_lock

    if (args.out / MANIFEST_FILE).is_file():
        raise BremenError(
            f"'{args.out}' already holds an artifact; choose a new --out (nothing was overwritten)"
        )
    check_new_folder(args.out, "--out", "artifacts are never overwritten")
    with folder_lock(args.out, "--out folder"):
        check_new_folder(args.out, "--out", "artifacts are never overwritten")
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from bremen_robot.config.train import SEED_MAX, SEED_MIN, load_train_config
    from bremen_robot.errors import ConfigError
    from bremen_robot.progress import Reporter
    from bremen_robot.trainer import train

    cfg = load_train_config(args.config)
    # model_copy below does not validate: check the overrides as the config file's fields are
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1 (got {args.threads})")
    if args.seed is not None and not SEED_MIN <= args.seed <= SEED_MAX:
        raise ConfigError(
            f"--seed must be from {SEED_MIN} to {SEED_MAX} (got {args.seed}); pass e.g. --seed 0"
        )
    overrides = {
        k: v
        for k, v in (("device", args.device), ("threads", args.threads), ("seed", args.seed))
        if v is not None
    }
    cfg = cfg.model_copy(update=overrides)
    data = load_datasets(args.data)
    result = train(
        cfg,
        data,
        args.out,
        robot=args.robot,
        init_ensemble=args.init_ensemble,
        reporter=Reporter(enabled=None if not args.quiet else False),
    )
    rep = result.report
    print(f"artifact   {result.out_dir}  sha256 {result.manifest.policy_sha256[:12]}")
    print(
        f"data       {rep['data']['transitions']} transitions, {rep['data']['episodes']} episodes, "
        f"deployments {rep['data']['deployments']}"
    )
    best = rep["ensemble"]["best_holdout_mse"]
    print(f"ensemble   best holdout MSE {sum(best) / len(best):.4f} after {rep['ensemble']['epochs']} epochs")
    print(
        f"policy     imagined return {rep['imagined_return_final']:.1f}, KL to BC {rep['kl_to_bc']:.3f}, "
        f"mean action {rep['behavior_shift']:.2f} noise std from BC's"
    )
    print(f"time       {rep['timing']['total_s']:.0f} s on {rep['timing']['device']}")
    return 0
