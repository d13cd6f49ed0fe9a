"""``bremen reject ID --reason TEXT``: refuse a candidate (or withdraw an undeployed approval)."""

from __future__ import annotations

import argparse

from bremen_robot.cli.common import terminal_safe
from bremen_robot.cli.policies_cmd import add_registry_options, open_registry


def _run(args: argparse.Namespace) -> int:
    with open_registry(args, write=True) as reg:
        rec = reg.reject(args.id, args.reason, args.operator)
        who = reg.audit(rec.id)[-1].actor
        campaign = (reg.workspace / "campaign.json").is_file()
    # unsigned by design (only approvals run a policy): say so, so nobody reads the name as verified
    then = "; a campaign waiting for it trains another candidate" if campaign else ""
    print(
        f"rejected policy {rec.id} as {terminal_safe(who)} (unsigned: the name is recorded as given): "
        f"{terminal_safe(args.reason.strip())}{then}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reject",
        help="reject a candidate with a reason (no key: a rejection can only stop a policy)",
        description="Reject a candidate, or withdraw an approval before deployment. Not signed: a "
        "rejection can only stop a policy, never run one; --operator is recorded as given. A campaign "
        "waiting for the candidate keeps its training aside and trains another (docs/registry.md).",
    )
    p.add_argument("id", help="policy id or unique prefix")
    p.add_argument("--reason", required=True, help="why; recorded in the audit log")
    p.add_argument("--operator", help="who rejects, recorded as given (default: your login name)")
    add_registry_options(p)
    p.set_defaults(func=_run)
