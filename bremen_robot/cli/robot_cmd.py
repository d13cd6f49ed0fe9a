"""``bremen robot join``: a robot PC joins the lab's Ray cluster offering its robot (docs/cluster.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "robot",
        help="robot PC side of a fleet campaign: join the workstation's Ray cluster",
        description="Robot PC commands for a campaign on a Ray cluster (docs/cluster.md).",
    )
    rsub = p.add_subparsers(dest="robot_action", metavar="ACTION", required=True)
    j = rsub.add_parser(
        "join",
        help="check the robot config, safety limits and trusted keys, then 'ray start --address HEAD'",
        description="Checks the robot config, its safety limits and its trusted operator keys here, then "
        "starts a Ray node (Ray's own 'ray start') that offers only this robot (resource robot:NAME = 1, "
        "no CPUs or GPUs to other work). Needs RAY_AUTH_MODE=token and the head's token.",
    )
    j.add_argument("--address", required=True, help="the head's address, HOST:PORT (ray start --head)")
    j.add_argument("--robot", type=Path, required=True, help="robot config YAML (configs/robots/<name>.yaml)")
    j.add_argument("--name", help="robot node name used in a campaign's fleet (default: the config's name)")
    j.add_argument(
        "--workspace-dir",
        type=Path,
        default=None,
        help="where this node keeps bags, shards and its registry (default ~/.bremen/robot-nodes/NAME)",
    )
    j.add_argument("--node-ip-address", help="this PC's address on the lab network (ray start's option)")
    j.add_argument(
        "--ros-domain-id", type=int, help="ROS_DOMAIN_ID of this robot's graph (default: inherited)"
    )
    j.add_argument("--object-store-mb", type=int, help="Ray object store size in MiB (default: Ray's)")
    j.add_argument("--block", action="store_true", help="stay in the foreground (ray start --block)")
    j.add_argument("--dry-run", action="store_true", help="check and print the ray start command only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bremen_robot.cluster.join import join
    from bremen_robot.cluster.ray_env import auth_summary

    out = join(
        args.address,
        args.robot,
        name=args.name,
        node_dir=args.workspace_dir,
        node_ip=args.node_ip_address,
        ros_domain_id=args.ros_domain_id,
        object_store_mb=args.object_store_mb,
        block=args.block,
        dry_run=args.dry_run,
    )
    verb = "would join" if args.dry_run else "joined"
    print(
        f"robot {out['robot']} checked ({out['robot_config']}); {verb} {args.address} as robot node "
        f"'{out['name']}' (resource robot:{out['name']}, no CPUs/GPUs offered), {auth_summary()}; "
        f"node folder {out['node_dir']}"
    )
    if args.dry_run:
        print(" ".join(out["command"]))
    return 0
