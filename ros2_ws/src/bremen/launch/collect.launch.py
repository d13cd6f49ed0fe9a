"""Start the bremen collect graph: ``ros2 launch bremen collect.launch.py config:=C policy:=P sim:=S``.

Arguments: ``config`` (collect config YAML; default: the package's config/halfcheetah.yaml),
``policy`` (registry id, artifact folder, or ``random``), ``sim`` (mujoco | pybullet | none;
default: the config's), ``episodes`` / ``steps`` (a budget: the runner starts episodes itself
until it is used up; 0 = call bremen/start_episode yourself), ``out`` (bag folder), and
``workspace`` (registry). The processes and their nodes come from
``bremen_robot.ros.graph.collect_processes``, the function ``bremen collect`` uses, so both
start the same graph.

``policy_runner`` is a lifecycle node (docs/ros.md "Lifecycle"): as its own process it is a
``launch_ros.actions.LifecycleNode``, and this file emits ``configure`` when it starts and
``activate`` once it reached ``inactive``. Sharing a process with sim_bridge (lockstep
simulation, ``composed``) it cannot be a LifecycleNode action (that renames every node of the
process), so ``python -m bremen_robot.ros.lifecycle_client up`` drives the same two transitions.

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


def runs_the_runner_alone(proc: Any) -> bool:
    """Whether this process is policy_runner by itself (a LifecycleNode action)."""
    return len(proc.nodes) == 1 and proc.nodes[0].executable == "policy_runner"


def _runner_transitions(node: Any) -> list[Any]:
    """configure at start, activate once inactive: the events launch_ros sends a LifecycleNode."""
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch.events import matches_action
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    def change(transition: int) -> Any:
        return EmitEvent(
            event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition)
        )

    activate = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="inactive",
            entities=[change(Transition.TRANSITION_ACTIVATE)],
        )
    )
    return [activate, change(Transition.TRANSITION_CONFIGURE)]


def _launch_setup(context: Any, *args: Any, **kwargs: Any) -> list[Any]:
    import sys
    import tempfile

    from launch.actions import ExecuteProcess
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode, Node

    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    try:  # this launch's own log folder (~/.ros/log/<run>), which ROS's log rotation owns
        from launch.logging import launch_config

        params_dir = Path(launch_config.log_dir) / "bremen_params"
    except Exception:
        params_dir = Path(tempfile.mkdtemp(prefix="bremen_launch_"))
    actions: list[Any] = []
    for proc in processes_from_arguments(values):
        kwargs = node_kwargs(proc, params_dir)
        if runs_the_runner_alone(proc):
            node = LifecycleNode(namespace="", **kwargs)
            actions += [node, *_runner_transitions(node)]
        else:
            actions.append(Node(**kwargs))
            if any(n.executable == "policy_runner" for n in proc.nodes):
                up = [sys.executable, "-m", "bremen_robot.ros.lifecycle_client", "up", "policy_runner"]
                actions.append(ExecuteProcess(cmd=up, output="screen"))
    return actions


def generate_launch_description() -> Any:
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_launch_setup)])
