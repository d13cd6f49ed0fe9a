"""Command-line arguments of ``benchmarks/reproduce.py`` (its ``--help`` is the reference)."""

from __future__ import annotations

import argparse
from pathlib import Path

from reproduce_common import (
    METHODS,
    TD3BC_PYTHON,
    TD3BC_STEPS,
    TD3BC_STEPS_FOR,
    parse_overrides,
    td3bc_steps_for,
)

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/reproduce.py",
        description="Run BREMEN (without and with candidate selection), recursive BC and recursive "
        "TD3+BC campaigns for several seeds at equal "
        "deployments and samples, then aggregate per-deployment mean ± std across seeds into "
        "benchmarks/results/<name>.json and .png. Re-running the same command resumes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="campaign seeds")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to run")
    p.add_argument("--campaign", default="halfcheetah-cpu", help="BREMEN campaign preset or YAML path")
    p.add_argument(
        "--bc-campaign",
        default=None,
        help="recursive-BC campaign preset or YAML; none means '<campaign name>-bc' if that preset "
        "exists, else the campaign itself with TRPO off and a token ensemble",
    )
    p.add_argument("--deployments", type=int, default=None, help="override the number of deployments K")
    p.add_argument("--steps-per-deployment", type=int, default=None, help="override samples per deployment")
    p.add_argument(
        "--eval-episodes", type=int, default=None, help="override evaluation episodes per candidate"
    )
    p.add_argument(
        "--train-override",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override training-config fields of bremen, bremen_select and bc (dotted keys, YAML "
        "values), e.g. trpo.iterations=2 ensemble.max_epochs=2 bc.steps=100; bc keeps "
        "trpo.iterations=0, bremen_select keeps selection.enabled=true and, on HalfCheetah, trains with "
        "selection.max_action_shift=0.6 unless this sets it (null: no limit, the rule before 2026-12-05; "
        "other robots have no limit unless this sets one)",
    )
    p.add_argument(
        "--campaign-override",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override campaign fields of every method (dotted keys, YAML values), e.g. "
        "exploration_sigma=0.2 selection.twin_episodes=2; selection.* acts on bremen_select only, "
        "which runs with selection.twin=true unless overridden; the seed comes from --seeds",
    )
    p.add_argument(
        "--td3bc-steps",
        type=int,
        default=None,
        help="TD3+BC gradient steps per deployment (re-trained from scratch on all data so far); "
        f"default {TD3BC_STEPS:,}, or the campaign's own budget "
        f"({', '.join(f'{c} {n:,}' for c, n in TD3BC_STEPS_FOR.items())})",
    )
    p.add_argument(
        "--td3bc-seconds",
        choices=["bremen", "none"],
        default="bremen",
        help="bremen (default): at each deployment TD3+BC also trains at least BREMEN's training "
        "seconds there (from <results-dir>/<campaign>.json: the longest BREMEN or selection training "
        "with subnormals flushed, else BREMEN's mean; their 3 seeds must be complete); "
        "none: --td3bc-steps only (a smoke run, or a budget by steps)",
    )
    p.add_argument(
        "--td3bc-seconds-from",
        type=Path,
        default=None,
        metavar="FILE",
        help="the results file --td3bc-seconds bremen reads BREMEN's and selection's times from; "
        "none means <results-dir>/<campaign>.json (a rerun of BREMEN under another --name, whose "
        "seeds recorded their times, passes its own file)",
    )
    p.add_argument("--td3bc-device", default="cpu", help="torch device for d3rlpy (cpu, cuda:0)")
    p.add_argument(
        "--td3bc-python", type=Path, default=TD3BC_PYTHON, help="python of the d3rlpy venv (setup_d3rlpy.sh)"
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="(method, seed) runs at once, each a Ray task with one CPU; without --cluster, Ray is "
        "started on this machine with this many CPUs",
    )
    p.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help="run on this running Ray cluster (HOST:PORT, or 'auto' for the one started on this "
        "machine; token as in docs/cluster.md); --out must be a filesystem its CPU nodes share",
    )
    p.add_argument(
        "--name", default=None, help="results name; none means the campaign's, '-smoke' if overridden"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="workspaces root; none means benchmarks/runs/<name>"
    )
    p.add_argument("--results-dir", type=Path, default=HERE / "results", help="where <name>.json/.png go")
    p.add_argument("--aggregate-only", action="store_true", help="do not run; aggregate existing workspaces")
    p.add_argument(
        "--carry-from",
        type=Path,
        nargs="+",
        default=[],
        help="other results files whose records (same settings only) join this one, e.g. a method "
        "run under another --name",
    )
    args = p.parse_args(argv)
    for flag in ("deployments", "steps_per_deployment", "eval_episodes", "td3bc_steps", "jobs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if len(set(args.seeds)) != len(args.seeds):
        p.error("--seeds has duplicates")
    try:
        args.overrides = parse_overrides(args.train_override)
        args.campaign_overrides = parse_overrides(
            args.campaign_override, "--campaign-override", "selection.twin_episodes=2"
        )
    except ValueError as exc:
        p.error(str(exc))
    if "seed" in args.campaign_overrides:
        p.error("--campaign-override seed: the seed of each run comes from --seeds; use --seeds")
    args.overridden = bool(
        args.overrides
        or args.campaign_overrides
        or args.deployments
        or args.steps_per_deployment
        or args.eval_episodes
        or (args.td3bc_steps is not None and args.td3bc_steps != td3bc_steps_for(args.campaign))
        or (args.td3bc_seconds != "bremen" and "td3bc" in args.methods)
    )
    if args.td3bc_steps is None:
        args.td3bc_steps = td3bc_steps_for(args.campaign)
    return args
