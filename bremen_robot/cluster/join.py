"""``bremen robot join``: check a robot PC locally, then join the Ray cluster offering only it.

The node is started with Ray's own CLI (``ray start --address HEAD``, a subprocess) so that it
is an ordinary Ray node the user can inspect and stop with ``ray status`` / ``ray stop``. It
offers one custom resource, ``robot:<name>`` = 1, and no CPUs or GPUs to the cluster
(``--num-cpus 0 --num-gpus 0``): the only work Ray can place on it is work that asks for this
robot, i.e. a collection, and a collection runs only a policy that a trusted operator signed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bremen_robot.cluster.node import NODE_FILE
from bremen_robot.cluster.ray_env import NODE_DIR_ENV, robot_resource
from bremen_robot.errors import BremenError, ConfigError
from bremen_robot.robot_config import RobotConfig, load_robot_config

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def check_robot(path: Path) -> RobotConfig:
    """The robot config, its safety limits and its trusted operator keys, all loadable here."""
    from bremen_robot.registry.signing import load_public_key
    from safety.limits import load_limits

    robot = load_robot_config(path)
    if robot.safety is None:
        raise ConfigError(
            f"{path}: safety: no limits file; a robot node runs every action through the safety shield, "
            "add configs/safety/<robot>.yaml (docs/safety.md)"
        )
    try:
        load_limits(robot.safety, robot.joints)
    except (OSError, ValueError) as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None
    if not robot.trusted_operator_keys:
        raise ConfigError(
            f"{path}: trusted_operator_keys: empty, so this robot could only ever run the random policy; "
            f"{robot.how_to_trust()}"
        )
    for key in robot.trusted_operator_keys:
        load_public_key(Path(key))  # one line naming the key file when missing or broken
    return robot


def ray_start_command(
    address: str,
    name: str,
    *,
    node_ip: str | None = None,
    object_store_mb: int | None = None,
    block: bool = False,
) -> list[str]:
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray_bin is None:
        raise BremenError("the 'ray' command is not installed; install the cluster extra (docs/cluster.md)")
    cmd = [
        ray_bin,
        "start",
        "--address",
        address,
        "--num-cpus",
        "0",
        "--num-gpus",
        "0",
        "--resources",
        json.dumps({robot_resource(name): 1}),
        "--disable-usage-stats",
        "--include-log-monitor=false",
    ]
    if node_ip:
        cmd += ["--node-ip-address", node_ip]
    if object_store_mb:
        cmd += ["--object-store-memory", str(int(object_store_mb) * 1024 * 1024)]
    if block:
        cmd.append("--block")
    return cmd


def join(
    address: str,
    robot_path: Path,
    *,
    name: str | None = None,
    node_dir: Path | None = None,
    node_ip: str | None = None,
    ros_domain_id: int | None = None,
    object_store_mb: int | None = None,
    block: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Check, write ``<node dir>/node.json`` and start the Ray node; returns what was done."""
    robot = check_robot(robot_path)
    name = name or robot.name
    if not _NAME_RE.match(name):
        raise ConfigError(f"--name '{name}': use letters, digits, '.', '_' or '-' (at most 63)")
    d = Path(node_dir or Path.home() / ".bremen" / "robot-nodes" / name).resolve()
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        raise BremenError(
            "RAY_AUTH_MODE is not 'token': a robot PC joins only a cluster with Ray's token authentication "
            "on; set RAY_AUTH_MODE=token and the head's token (RAY_AUTH_TOKEN_PATH), see docs/cluster.md"
        )
    env = dict(os.environ, **{NODE_DIR_ENV: str(d)})
    if ros_domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(ros_domain_id)
    cmd = ray_start_command(address, name, node_ip=node_ip, object_store_mb=object_store_mb, block=block)
    info = {"name": name, "robot": robot.name, "robot_config": str(robot.source), "address": address}
    if dry_run:
        return {**info, "node_dir": str(d), "command": cmd}
    d.mkdir(parents=True, exist_ok=True)
    (d / NODE_FILE).write_text(json.dumps(info, indent=1))
    proc = subprocess.run(cmd, env=env, capture_output=not block, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()
        why = next((ln for ln in reversed(tail) if ln.strip()), f"exit code {proc.returncode}")
        raise BremenError(f"ray start --address {address} failed: {why.strip()[:300]}")
    return {**info, "node_dir": str(d), "command": cmd}
