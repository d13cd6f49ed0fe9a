"""The ROS 2 side of bremen-robot (DESIGN.md §3 "ROS 2 graph", "Launch", "Trajectory logs").

Three nodes run the collect graph: ``policy_runner`` (frozen policy -> safety shield ->
``bremen/command``), ``sim_bridge`` (a ``sim/`` backend wrapped as a robot) and
``trajectory_logger`` (rosbag2/MCAP, one folder per deployment). :func:`graph.node_specs` turns
one collect config into the node list that both ``ros2 launch bremen collect.launch.py`` and
``bremen collect`` start.

rclpy is imported only inside this package and only lazily (:func:`require_rclpy`): the
config, node-spec, bag-format and ingest code import without a ROS install. The ROS 2 wheels
from PyPI (``ros-kilted-*``) need no sourced setup script; :func:`apply_ros_env` sets the two
variables the graph relies on when the user has not:

* ``RMW_IMPLEMENTATION=rmw_fastrtps_cpp``: the middleware the ``ros`` extra installs;
* ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``: discovery stays on this machine (set ``SUBNET``
  yourself when the robot's driver runs on another computer).

``AMENT_PREFIX_PATH`` is not needed: the wheels locate their type supports without the ament
index (checked: ``rclpy.init()``, publishers, services and serialization work without it).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from types import ModuleType

from bremen_robot.errors import BremenError

ROS_ENV_DEFAULTS: dict[str, str] = {
    "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
    "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
}


class RosUnavailableError(BremenError):
    """rclpy (the ``ros`` extra) is not importable here."""


def apply_ros_env(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set :data:`ROS_ENV_DEFAULTS` where unset (before rclpy loads); returns what it set.

    ``ROS_LOCALHOST_ONLY`` (the pre-Jazzy spelling) counts as a choice of discovery range.
    """
    env = os.environ if environ is None else environ
    added: dict[str, str] = {}
    for key, value in ROS_ENV_DEFAULTS.items():
        if key == "ROS_AUTOMATIC_DISCOVERY_RANGE" and env.get("ROS_LOCALHOST_ONLY"):
            continue
        if not env.get(key):
            env[key] = value
            added[key] = value
    return added


def rclpy_status() -> tuple[bool, str]:
    """``(True, '')`` when rclpy imports, else ``(False, why)`` for skip messages and errors."""
    apply_ros_env()
    try:
        import rclpy  # noqa: F401
    except Exception as exc:  # ImportError, or OSError from a missing shared library
        return False, f"rclpy is not importable ({type(exc).__name__}: {exc}); install the 'ros' extra"
    return True, ""


def require_rclpy() -> ModuleType:
    """Import rclpy after :func:`apply_ros_env`, or raise a one-line :class:`RosUnavailableError`."""
    ok, why = rclpy_status()
    if not ok:
        raise RosUnavailableError(why + " (pip install -e '.[ros]') or source a ROS 2 kilted install")
    import rclpy

    return rclpy


__all__ = ["ROS_ENV_DEFAULTS", "RosUnavailableError", "apply_ros_env", "rclpy_status", "require_rclpy"]
