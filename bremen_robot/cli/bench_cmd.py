"""``bremen bench``: measure, print ratios taken in one run, optionally write flat JSON."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from types import ModuleType
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure performance figures (ratios in one run); --json to save",
        description="Benchmarks are not tests: they measure and print. Sections: trainer compute, "
        "simulation backends, safety shield, ROS graph (where installed); with --cluster also fleet "
        "collection on a local Ray cluster.",
    )
    p.add_argument("--quick", action="store_true", help="smaller measurements (about 2 minutes in all)")
    p.add_argument(
        "--cluster",
        action="store_true",
        help="also start a local Ray cluster (head + 2 robot nodes on loopback) and measure fleet "
        "collection (minutes; needs the cluster, ros and sim extras; never with --quick)",
    )
    p.add_argument("--json", type=Path, default=None, help="write the figures as flat JSON keys")
    p.add_argument(
        "--only", nargs="*", default=None, help="run only sections whose module name contains these"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice); 1 is steadier on a shared machine",
    )
    p.set_defaults(func=run)


def _name(mod: ModuleType) -> str:
    return mod.__name__.rsplit(".", 1)[-1]


def _check_only(only: list[str], names: list[str]) -> None:
    """Refuse an ``--only`` word that is part of no section name, before anything runs."""
    from bremen_robot.errors import BremenError

    for word in only:
        if not any(word in name for name in names):
            raise BremenError(
                f"--only {word!r}: no bench section by that name; "
                f"pass one of {', '.join(names)} (or a part of one)"
            )


def run(args: argparse.Namespace) -> int:
    import torch

    from bremen_robot.bench import sections
    from bremen_robot.cli.common import check_report_file

    if args.json:  # before minutes of measuring: a wrong --json must not cost them, nor replace a file
        check_report_file(args.json, "--json")
    if args.threads is not None:  # 0 was ignored, a negative count torch's internal error
        if args.threads < 1:
            from bremen_robot.errors import BremenError

            raise BremenError(f"--threads must be at least 1 (got {args.threads})")
        torch.set_num_threads(args.threads)
    mods = sections()
    if args.only:  # a typo ran nothing and exited 0, leaving an empty --json behind
        _check_only(args.only, [_name(m) for m in mods])

    results: dict[str, Any] = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "quick": bool(args.quick),
    }
    for mod in mods:
        name = _name(mod)
        if args.only and not any(o in name for o in args.only):
            continue
        opt_in = getattr(mod, "OPT_IN", None)
        if opt_in and (not getattr(args, opt_in, False) or args.quick):
            why = "not with --quick" if args.quick and getattr(args, opt_in, False) else f"needs --{opt_in}"
            print(f"== {mod.TITLE}: not run ({why})")
            continue
        t = time.perf_counter()
        try:
            figures = mod.run(quick=args.quick)
        except ImportError as exc:  # a section whose extra is not installed
            print(f"== {mod.TITLE}: skipped ({exc})")
            continue
        print(f"== {mod.TITLE} ({time.perf_counter() - t:.0f} s)")
        for key, val in figures.items():
            shown = (
                json.dumps(val)
                if isinstance(val, dict)
                else (f"{val:.4g}" if isinstance(val, float) else val)
            )
            print(f"  {key:32s} {shown}")
        results.update(figures)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True))
        print(f"wrote {args.json}")
    return 0
