"""``bremen collect``: run the ROS 2 collect graph (no ROS install needed) into a rosbag2 folder."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "collect",
        help="collect trajectories with the ROS 2 graph (policy_runner, sim_bridge, trajectory_logger)",
        description=(
            "Start the collect graph described by a collect config (the same nodes as "
            "'ros2 launch bremen collect.launch.py'), each node its own process over DDS; stop when "
            "the budget is used up or on Ctrl-C, and print a summary. --policy needs an approved, "
            "signed policy in the registry; --random (the first deployment) needs no approval."
        ),
    )
    p.add_argument(
        "--config", required=True, help="collect config YAML, e.g. configs/collect/halfcheetah.yaml"
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--policy", help="registry id (or unique prefix) or artifact folder of an approved policy"
    )
    who.add_argument("--random", action="store_true", help="uniform random actions (first deployment)")
    p.add_argument(
        "--shadow",
        metavar="CANDIDATE",
        help="also run this registered policy (approval not needed: it moves nothing) in shadow beside "
        "the acting one: it publishes only bremen/shadow/*, is logged in the same bag and recorded "
        "as a shadow run, not a deployment (docs/ros.md, Shadow mode)",
    )
    p.add_argument(
        "--sim",
        choices=["mujoco", "pybullet", "none"],
        help="override the config's simulator; none = real robot",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--episodes", type=int, default=0, metavar="N", help="stop after N episodes")
    budget.add_argument("--steps", type=int, default=0, metavar="N", help="stop after N control steps")
    p.add_argument("--out", required=True, help="rosbag2 folder to create (must not exist or be empty)")
    p.add_argument(
        "--workspace",
        help="registry workspace (default: $BREMEN_WORKSPACE or ./bremen_ws); whom the robot trusts "
        "comes from its robot config, not from the workspace's 'bremen trust' (that is its campaign's)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print each process's command line and its nodes' parameters; start nothing",
    )
    p.add_argument(
        "--timeout", type=float, default=0.0, metavar="S", help="give up after S seconds (0: never)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bremen_robot.errors import ConfigError

    for name in ("episodes", "steps"):
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name} must be a positive count, got {getattr(args, name)}")
    if args.dry_run:
        return _collect(args)
    from pathlib import Path

    from bremen_robot.cli.common import check_new_folder
    from bremen_robot.workspace_lock import folder_lock

    check_new_folder(Path(args.out), "--out", "bags are never overwritten")
    with folder_lock(args.out, "--out folder"):
        return _collect(args)


def _collect(args: argparse.Namespace) -> int:
    import math

    from bremen_robot.errors import BremenError
    from bremen_robot.ros.collect import collect

    if not (math.isfinite(args.timeout) and args.timeout >= 0):  # -1 or nan never gave up
        raise BremenError(f"--timeout must be seconds >= 0 (0: never give up; got {args.timeout})")

    result = collect(
        args.config,
        policy=args.policy,
        random=args.random,
        sim=args.sim,
        episodes=args.episodes,
        steps=args.steps,
        out=args.out,
        workspace=args.workspace,
        timeout_s=args.timeout,
        dry_run=args.dry_run,
        shadow=args.shadow,
    )
    if args.dry_run:
        import shlex
        from pathlib import Path

        for proc in result.processes:  # one command line per process, its nodes' parameters above it
            for node in proc.nodes:
                print(f"# {node.name}: {node.parameters}")
            print(shlex.join(proc.command(Path(args.out) / "params" / f"{proc.name}.yaml")))
        return 0
    print(result.summary())
    if result.interrupted:
        return 130
    return 0 if all(c == 0 for c in result.exit_codes.values()) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
