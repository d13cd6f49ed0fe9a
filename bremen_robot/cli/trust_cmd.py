"""``bremen trust add|remove|list``: which operators a campaign workspace's robot trusts."""

from __future__ import annotations

import argparse
from pathlib import Path


def _workspace(args: argparse.Namespace) -> Path:
    from bremen_robot.registry import default_workspace
    from bremen_robot.registry.store import check_workspace

    # a file here: 'list' said "has not started a campaign yet", exit 0
    return check_workspace(Path(args.workspace) if args.workspace is not None else default_workspace())


def _add(args: argparse.Namespace) -> int:
    from bremen_robot.campaign.trust import add_operator

    ws = _workspace(args)
    copy, fp, new = add_operator(ws, args.name, args.pub)
    state = "now trusts" if new else "already trusted"
    print(
        f"workspace {ws} {state} operator {args.name} (key {fp[:12]}, copy {copy}); "
        "a running campaign uses it from its next deployment"
    )
    return 0


def _remove(args: argparse.Namespace) -> int:
    from bremen_robot.campaign.trust import remove_operator

    ws = _workspace(args)
    remove_operator(ws, args.name)
    print(
        f"workspace {ws} no longer trusts operator {args.name}; approvals signed with that key "
        "stop verifying at the next deployment (they stay in the registry, for the record)"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from bremen_robot.campaign.trust import ROBOT_FILE, trust_table

    ws = _workspace(args)
    rows = trust_table(ws)
    if not (ws / ROBOT_FILE).is_file():
        print(f"{ws} has not started a campaign yet: the robot config's own keys are added at its start")
    if not rows:
        print(f"{ws}: trusts no operator keys; add one with 'bremen trust add NAME --workspace {ws}'")
        return 0
    width = max(len(r[0]) for r in rows)
    for name, fp, where in rows:
        print(f"{name.ljust(width)}  {fp}  {where}")
    return 0


_ACTIONS = {"add": _add, "remove": _remove, "list": _list}


def _main(args: argparse.Namespace) -> int:
    return _ACTIONS[args.trust_action](args)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "trust",
        help="choose which operators' approvals a campaign workspace's robot accepts",
        description="A campaign's robot trusts the keys in its robot config (trusted_operator_keys) plus "
        "the keys added here, copied to <workspace>/trusted_operators/<NAME>.pub. The campaign "
        "generates <workspace>/robot.yaml from both on every start and before each deployment; do "
        "not edit that file. For a robot outside a campaign (bremen collect, ros2 launch, even with "
        "--workspace), list keys in its robot config: only a campaign adds this workspace's keys.",
    )
    sub = p.add_subparsers(dest="trust_action", metavar="ACTION")
    sub.required = True
    add = sub.add_parser("add", help="trust operator NAME's public key (copied into the workspace)")
    remove = sub.add_parser("remove", help="stop trusting NAME (the original key file is untouched)")
    show = sub.add_parser("list", help="every key the workspace's robot trusts, with where it comes from")
    for s in (add, remove):
        s.add_argument("name", help="operator name, as in 'bremen operator init NAME'")
    add.add_argument(
        "--pub",
        type=Path,
        help="public key to trust (default: <operator dir>/NAME.pub; $BREMEN_OPERATOR_DIR or "
        "~/.config/bremen/operators)",
    )
    for s in (add, remove, show):
        s.add_argument(
            "--workspace",
            type=Path,
            default=None,
            help="campaign workspace (default: $BREMEN_WORKSPACE or ./bremen_ws)",
        )
    p.set_defaults(func=_main)
