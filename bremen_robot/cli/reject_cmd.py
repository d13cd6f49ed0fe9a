"""``bremen reject ID --reason TEXT``: refuse a candidate (or withdraw an undeployed approval)."""

from __future__ import annotations

import argparse

from bremen_robot.cli.policies_cmd import add_registry_options, open_registry


def _run(args: argparse.Namespace) -> int:
    with open_registry(args, write=True) as reg:
        rec = reg.reject(args.id, args.reason, args.operator)
    print(f"rejected policy {rec.id}: {args.reason.strip()}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reject", help="reject a candidate with a reason")
    p.add_argument("id", help="policy id or unique prefix")
    p.add_argument("--reason", required=True, help="why; recorded in the audit log")
    p.add_argument("--operator", help="who rejects (default: your login name)")
    add_registry_options(p)
    p.set_defaults(func=_run)
