"""Start the bremen collect graph: ``ros2 launch bremen collect.launch.py config:=C policy:=P sim:=S``.

Arguments: ``config`` (collect config YAML; default: the package's config/halfcheetah.yaml),
``policy`` (registry id, artifact folder, or ``random``), ``sim`` (mujoco | pybullet | none;
default: the config's), ``episodes`` / ``steps`` (a budget: the runner starts episodes itself
until it is used up; 0 = call bremen/start_episode yourself), ``out`` (bag folder), and
``workspace`` (registry). The processes and their nodes come from
``bremen_robot.ros.graph.collect_processes``, the function ``bremen collect`` uses, so both
start the same graph.

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


def processes_from_arguments(args: dict[str, str]) -> list[Any]:
    """Launch arguments (strings) -> process specs, through the function bremen collect uses."""
    from bremen_robot.ros.graph import collect_processes

    return collect_processes(
        args.get("config") or default_config(),
        policy=args.get("policy") or "random",
        sim=args.get("sim") or None,
        episodes=int(args.get("episodes") or 0),
        steps=int(args.get("steps") or 0),
        out=args.get("out") or "",
        workspace=args.get("workspace") or "",
    )


def node_kwargs(proc: Any, params_dir: Path) -> dict[str, Any]:
    """The ``launch_ros.actions.Node`` arguments of one process spec (nothing added, nothing
    dropped). A single node keeps its name; several nodes in one process (lockstep simulation)
    run the ``composed`` executable with a parameters file (written under ``params_dir``)
    holding one section per node name, the file ``bremen collect`` writes."""
    first = proc.nodes[0]
    kwargs: dict[str, Any] = {
        "package": first.package,
        "executable": proc.executable,
        "remappings": [tuple(r) for r in first.remappings],
        "output": "screen",
    }
    if len(proc.nodes) == 1:
        kwargs["name"] = first.name
        kwargs["parameters"] = [dict(first.parameters)]
    else:
        kwargs["arguments"] = [n.executable for n in proc.nodes]
        kwargs["parameters"] = [str(proc.write_params(params_dir / f"{proc.name}.yaml"))]
    return kwargs


def _launch_setup(context: Any, *args: Any, **kwargs: Any) -> list[Any]:
    import tempfile

    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    try:  # this launch's own log folder (~/.ros/log/<run>), which ROS's log rotation owns
        from launch.logging import launch_config

        params_dir = Path(launch_config.log_dir) / "bremen_params"
    except Exception:
        params_dir = Path(tempfile.mkdtemp(prefix="bremen_launch_"))
    return [Node(**node_kwargs(proc, params_dir)) for proc in processes_from_arguments(values)]


def generate_launch_description() -> Any:
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_launch_setup)])
