"""Start the bremen collect graph: ``ros2 launch bremen collect.launch.py config:=C policy:=P sim:=S``.

Arguments: ``config`` (collect config YAML; default: the package's config/halfcheetah.yaml),
``policy`` (registry id, artifact folder, or ``random``), ``sim`` (mujoco | pybullet | none;
default: the config's), ``episodes`` / ``steps`` (a budget: the runner starts episodes itself
until it is used up; 0 = call bremen/start_episode yourself), ``out`` (bag folder), and
``workspace`` (registry). The nodes come from ``bremen_robot.ros.graph.collect_specs``, the
function ``bremen collect`` uses, so both start the same graph.

launch and launch_ros are imported only inside the functions ros2 launch calls, so this file
also imports where they are absent (the parity test of ``bremen collect`` loads it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ARGUMENTS: dict[str, tuple[str, str]] = {
    "config": ("", "collect config YAML (default: share/bremen/config/halfcheetah.yaml)"),
    "policy": ("random", "registry id or artifact folder of an approved policy, or 'random'"),
    "sim": ("", "mujoco | pybullet | none (real robot); default: the config's"),
    "episodes": ("0", "stop after this many episodes (0: no episode budget)"),
    "steps": ("0", "stop after this many control steps (0: no step budget)"),
    "out": ("", "rosbag2 folder to create (default: named by time under the config's out_dir)"),
    "workspace": ("", "registry workspace (default: $BREMEN_WORKSPACE or ./bremen_ws)"),
}


def default_config() -> Path:
    # source tree: ros2_ws/src/bremen/launch/ ; installed: share/bremen/launch/
    cand = Path(__file__).resolve().parent.parent / "config" / "halfcheetah.yaml"
    if cand.is_file():
        return cand
    from bremen_robot.ros.config import config_root

    return config_root() / "collect" / "halfcheetah.yaml"


def specs_from_arguments(args: dict[str, str]) -> list[Any]:
    """Launch arguments (strings) -> node specs, through the function bremen collect uses."""
    from bremen_robot.ros.graph import collect_specs

    return collect_specs(
        args.get("config") or default_config(),
        policy=args.get("policy") or "random",
        sim=args.get("sim") or None,
        episodes=int(args.get("episodes") or 0),
        steps=int(args.get("steps") or 0),
        out=args.get("out") or "",
        workspace=args.get("workspace") or "",
    )


def node_kwargs(spec: Any) -> dict[str, Any]:
    """The ``launch_ros.actions.Node`` arguments of one spec (nothing added, nothing dropped)."""
    return {
        "package": spec.package,
        "executable": spec.executable,
        "name": spec.name,
        "parameters": [dict(spec.parameters)],
        "remappings": [tuple(r) for r in spec.remappings],
        "output": "screen",
    }


def _launch_setup(context: Any, *args: Any, **kwargs: Any) -> list[Any]:
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    return [Node(**node_kwargs(spec)) for spec in specs_from_arguments(values)]


def generate_launch_description() -> Any:
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_launch_setup)])
