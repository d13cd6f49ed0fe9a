"""``bremen retire ID``: take an approved or deployed policy out of service for good."""

from __future__ import annotations

import argparse

from bremen_robot.cli.policies_cmd import add_registry_options, open_registry


def _run(args: argparse.Namespace) -> int:
    with open_registry(args, write=True) as reg:
        rec = reg.retire(args.id, args.operator, args.note)
    print(f"retired policy {rec.id}; robots will refuse it from now on")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("retire", help="retire an approved or deployed policy")
    p.add_argument("id", help="policy id or unique prefix")
    p.add_argument("--note", default="", help="why; recorded in the audit log")
    p.add_argument("--operator", help="who retires it (default: your login name)")
    add_registry_options(p)
    p.set_defaults(func=_run)
