"""Ray, as the cluster layer: import it lazily, name a robot's resource, connect a driver."""

from __future__ import annotations

import os
from typing import Any

from bremen_robot.errors import BremenError

RESOURCE_PREFIX = "robot:"
NODE_DIR_ENV = "BREMEN_NODE_DIR"  # set by `bremen robot join` for the node's Ray workers
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BremenError(
            "ray is not installed; install the cluster extra (pip install -e '.[cluster]' or "
            "scripts/install.sh) on the workstation and on every robot PC"
        ) from None
    return ray


def robot_resource(node_name: str) -> str:
    """The Ray custom resource a robot node offers (amount 1): work for that robot asks for it."""
    return f"{RESOURCE_PREFIX}{node_name}"


def auth_summary(env: dict[str, str] | None = None) -> str:
    """How this process authenticates to the cluster, for messages (never the token itself)."""
    e = os.environ if env is None else env
    mode = e.get("RAY_AUTH_MODE", "")
    if mode.lower() != "token":
        return "token authentication OFF (set RAY_AUTH_MODE=token; docs/cluster.md)"
    where = "RAY_AUTH_TOKEN" if e.get("RAY_AUTH_TOKEN") else e.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token")
    return f"token authentication on (token from {where})"


def connect(address: str) -> Any:
    """``ray.init`` as a driver of a running cluster (``auto``: the one started on this machine)."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BremenError(
            f"--cluster {address}: cannot connect to a Ray cluster ({first}); start it with "
            "'ray start --head' (docs/cluster.md) and use the same RAY_AUTH_MODE/token as the head"
        ) from None
    return ray


def robot_nodes(ray: Any) -> dict[str, str]:
    """``robot node name -> Ray node id`` of the live nodes that offer a robot."""
    out: dict[str, str] = {}
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        for res in node.get("Resources", {}):
            if res.startswith(RESOURCE_PREFIX):
                out[res[len(RESOURCE_PREFIX) :]] = str(node.get("NodeID", ""))
    return out


def cluster_gpus(ray: Any) -> float:
    return float(ray.cluster_resources().get("GPU", 0.0))
