"""``bremen review ID``: the verdict and the training report in the terminal, plus one
self-contained HTML page (and the curves as PNG) in ``<workspace>/reviews/<id>/``."""

from __future__ import annotations

import argparse
from pathlib import Path

from bremen_robot.cli.policies_cmd import add_registry_options, open_registry


def _run(args: argparse.Namespace) -> int:
    from bremen_robot.cli.common import terminal_safe
    from bremen_robot.registry.page import decide_lines
    from bremen_robot.registry.reviewing import make_review
    from bremen_robot.registry.sessions import sessions
    from bremen_robot.registry.shadow_runs import review_lines

    with open_registry(args) as reg:
        rec = reg.get(args.id)
        policies = reg.policies()
        workspace = reg.workspace
        shadow = review_lines(reg, rec.sha256)
        fleet = sessions(reg, rec.sha256)
    out = args.out if args.out is not None else workspace / "reviews" / rec.id
    review = make_review(
        rec,
        policies,
        workspace,
        out,
        plots=not args.no_plots,
        video=not args.no_video,
        sessions=fleet,
        shadow=shadow,
    )
    print(terminal_safe(review.text))
    print("")
    if review.plots:
        print("plots:")
        for f in review.plots:
            print(f"  {f}")
    elif not args.no_plots:
        print("plots: none (the report has no curves)")
    if review.video_reason:
        print(review.video_reason)
    print(f"review page: {review.page} (open it in a browser; it signs nothing)")
    for line in decide_lines(rec, workspace):
        print(terminal_safe(line))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "review",
        help="print a policy's verdict and training report; write its review page",
        description="Print what an operator needs before approving: the verdict against the policy "
        "deployed now (simulated return and success, safety interventions, behavior shift, model "
        "disagreement, selection checks, red flags), then the training report. Writes one "
        "self-contained HTML page (verdict, video, curves, lineage, approve/reject commands) and "
        "the curves as PNG to --out.",
    )
    p.add_argument("id", help="policy id or unique prefix (see 'bremen policies')")
    p.add_argument(
        "--out",
        type=Path,
        help="folder for review.html and the PNG plots (default: <workspace>/reviews/<id>)",
    )
    p.add_argument("--no-plots", action="store_true", help="no PNG files and no curves on the page (faster)")
    p.add_argument("--no-video", action="store_true", help="no simulation video on the page (faster)")
    add_registry_options(p)
    p.set_defaults(func=_run)
