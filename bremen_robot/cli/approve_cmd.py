"""``bremen approve ID --operator NAME``: sign and record an operator's approval."""

from __future__ import annotations

import argparse
from pathlib import Path

from bremen_robot.cli.policies_cmd import add_registry_options, open_registry


def _run(args: argparse.Namespace) -> int:
    from bremen_robot.campaign.trust import check_approver_trusted, workspace_robot

    with open_registry(args, write=True) as reg:
        # a campaign workspace knows its robot: refuse an approval it could never deploy, before
        # anything is signed (a candidate is approved once; an untrusted approval would strand it)
        rec = reg.approve(
            args.id,
            args.operator,
            args.key,
            args.note,
            before_signing=lambda key: check_approver_trusted(reg.workspace, args.operator, key),
        )
        robot = workspace_robot(reg.workspace)
    assert rec.approval is not None
    trust = (
        f"robot '{robot.name}' of this workspace trusts this key"
        if robot is not None
        else f"robots must trust this key: 'bremen trust add {args.operator} --workspace W' for a "
        "campaign, trusted_operator_keys in the robot config otherwise"
    )
    print(
        f"approved policy {rec.id} as {rec.approval.operator} at {rec.approval.time} "
        f"(key {rec.approval.key_fingerprint[:12]}); {trust}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "approve",
        help="approve a reviewed candidate, signed with your operator key",
        description="Sign (artifact sha256, manifest digest, operator, time, note) with the operator's "
        "Ed25519 key and mark the candidate approved.",
    )
    p.add_argument("id", help="policy id or unique prefix")
    p.add_argument("--operator", required=True, help="your operator name (see 'bremen operator init')")
    p.add_argument("--key", type=Path, help="private key (default: <operator dir>/<NAME>.key)")
    p.add_argument("--note", default="", help="what you checked; signed with the approval")
    add_registry_options(p)
    p.set_defaults(func=_run)
