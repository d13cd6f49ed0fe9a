"""``bremen review ID``: print a candidate's training report and write its plots as PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from bremen_robot.cli.policies_cmd import add_registry_options, open_registry


def _run(args: argparse.Namespace) -> int:
    from bremen_robot.registry.review import render_text, write_plots

    with open_registry(args) as reg:
        rec = reg.get(args.id)
        print(render_text(rec))
        from bremen_robot.registry.shadow_runs import review_lines

        print("\n".join(["", *review_lines(reg, rec.sha256)]))
        if args.no_plots:
            return 0
        out = args.out if args.out is not None else reg.workspace / "reviews" / rec.id
        files = write_plots(rec, out)
    print("")
    if files:
        print("plots:")
        for f in files:
            print(f"  {f}")
    else:
        print("plots: none (the report has no curves)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "review",
        help="print a policy's training report and write its plots",
        description="Print what an operator needs before approving: curves, holdout error per member, "
        "imagined vs real return, KL to the behavior policy, ensemble disagreement, evaluation "
        "and safety interventions. Plots go to --out as PNG.",
    )
    p.add_argument("id", help="policy id or unique prefix (see 'bremen policies')")
    p.add_argument("--out", type=Path, help="folder for the PNG plots (default: <workspace>/reviews/<id>)")
    p.add_argument("--no-plots", action="store_true", help="print the report only")
    add_registry_options(p)
    p.set_defaults(func=_run)
