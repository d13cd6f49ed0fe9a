"""``bremen safety check``: load a limits file as the shield would, and say so in one line."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "safety",
        help="check a safety limits file before the robot uses it",
        description="Safety limits commands (docs/safety.md).",
    )
    ssub = p.add_subparsers(dest="safety_action", metavar="ACTION", required=True)
    c = ssub.add_parser(
        "check",
        help="load a limits file; print a one-line summary, or its first problem and the fix",
        description="Loads the limits as the safety shield does and prints what they cover, or the "
        "first problem and its fix in one line (exit 2).",
    )
    c.add_argument("limits", type=Path, help="safety limits YAML or JSON (configs/safety/<robot>.yaml)")
    c.add_argument(
        "--robot",
        type=Path,
        default=None,
        help="robot config YAML: also check the limits list exactly its joints",
    )
    c.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    from bremen_robot.errors import ConfigError
    from bremen_robot.limits_fit import degrees_problem, robot_problem
    from safety import SafetyConfigError, load_limits

    joints, robot = None, None
    if args.robot is not None:
        from bremen_robot.robot_config import load_robot_config

        robot = load_robot_config(args.robot)
        joints = list(robot.joints)
    try:
        limits = load_limits(args.limits, joints)
    except SafetyConfigError as exc:  # a ValueError, not a BremenError: safety imports nothing of ours
        raise ConfigError(str(exc)) from None
    why = degrees_problem(limits, args.limits)
    if why is None and robot is not None:
        why = robot_problem(limits, args.limits, robot, args.robot)
    if why is not None:
        raise ConfigError(why)
    names = limits.joint_names
    matched = (
        f"; its joints, name and rate match {args.robot}, which uses this file"
        if args.robot is not None
        else ""
    )
    print(
        f"{args.limits}: ok: robot {limits.robot}, {len(names)} joint(s) ({', '.join(names)}), "
        f"{limits.command_interface} commands, safe command {limits.safe_command}, "
        f"control period {limits.timing.control_period:g} s{matched}{_ood_note(limits)}"
    )
    return 0


def _ood_note(limits: object) -> str:
    """Without --robot the file may be for the Python API, where an ood_score is injected."""
    ood = getattr(limits, "ood", None)
    if ood is None:
        return ""
    return (
        f"; its ood gate (threshold {ood.threshold:g}, fallback {ood.fallback}) runs only through the "
        "Python API with an ood_score: bremen's nodes refuse the file"
    )
