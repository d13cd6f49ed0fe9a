"""One description of the collect graph: collect config -> node specs (DESIGN.md §3 "Launch").

``ros2_ws/src/bremen/launch/collect.launch.py`` maps each :class:`NodeSpec` to a
``launch_ros.actions.Node``; ``bremen collect`` runs each as its own process
(:meth:`NodeSpec.command`). Both call :func:`node_specs`, so they start the same graph.
Parameters are flat ROS parameters (str, bool, int, float, list of str); "no value" is spelled
``''`` or ``0`` because ROS parameters have no null.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bremen_robot.errors import ConfigError
from bremen_robot.robot_config import joint_order_problem, load_robot_config
from bremen_robot.ros.config import CollectConfig
from bremen_robot.ros.topics import COMMAND, JOINT_STATES, SHADOW_TOPICS

PACKAGE = "bremen"
EXECUTABLES = ("sim_bridge", "policy_runner", "trajectory_logger", "reset_node")
COMPOSED = "composed"  # the executable that runs several nodes in one process
RANDOM_POLICY = "random"

ParamValue = str | bool | int | float | list[str]


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph: what ``launch_ros.actions.Node`` takes, and nothing else."""

    package: str
    executable: str
    name: str
    parameters: dict[str, ParamValue] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()

    @property
    def module(self) -> str:
        """The Python module whose ``main`` the console script calls."""
        return f"bremen_robot.ros.{self.executable}"

    def params_document(self) -> dict[str, dict[str, dict[str, ParamValue]]]:
        """A ROS 2 parameters file's content for this node (``--params-file``)."""
        return {"/**": {"ros__parameters": dict(self.parameters)}}

    def write_params(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.params_document(), sort_keys=True))
        return path

    def command(self, params_file: Path, python: str = sys.executable) -> list[str]:
        """argv that runs this node as its own process without a ROS install."""
        argv = [python, "-m", self.module, "--ros-args", "-r", f"__node:={self.name}"]
        argv += ["--params-file", str(params_file)]
        for src, dst in self.remappings:
            argv += ["-r", f"{src}:={dst}"]
        return argv


@dataclass(frozen=True)
class ProcessSpec:
    """The nodes one process runs: a single node, or several on one executor (``composed``)."""

    nodes: tuple[NodeSpec, ...]

    def __post_init__(self) -> None:
        if len({n.remappings for n in self.nodes}) > 1:  # one process has one set of -r arguments
            raise ConfigError(f"nodes {[n.name for n in self.nodes]} in one process need the same remappings")

    @property
    def name(self) -> str:
        return "+".join(n.name for n in self.nodes)

    @property
    def executable(self) -> str:
        return self.nodes[0].executable if len(self.nodes) == 1 else COMPOSED

    def params_document(self) -> dict[str, dict[str, dict[str, ParamValue]]]:
        """One parameters section per node name (a single node keeps the ``/**`` section)."""
        if len(self.nodes) == 1:
            return self.nodes[0].params_document()
        return {f"/{n.name}": {"ros__parameters": dict(n.parameters)} for n in self.nodes}

    def write_params(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.params_document(), sort_keys=True))
        return path

    def command(self, params_file: Path, python: str = sys.executable) -> list[str]:
        """argv that runs this process without a ROS install."""
        if len(self.nodes) == 1:
            return self.nodes[0].command(params_file, python)
        argv = [
            python,
            "-m",
            f"bremen_robot.ros.{COMPOSED}",
            *(n.executable for n in self.nodes),
            "--ros-args",
        ]
        argv += ["--params-file", str(params_file)]
        for src, dst in self.nodes[0].remappings:  # the same for every node (node_specs)
            argv += ["-r", f"{src}:={dst}"]
        return argv


def process_specs(cfg: CollectConfig, specs: list[NodeSpec]) -> list[ProcessSpec]:
    """How the nodes map to processes: in lockstep simulation with ``compose_lockstep``,
    sim_bridge and policy_runner share one; otherwise every node is its own."""
    by_name = {s.name: s for s in specs}
    pair = [by_name.get("sim_bridge"), by_name.get("policy_runner")]
    if cfg.mode == "lockstep" and cfg.compose_lockstep and all(pair):
        rest = [ProcessSpec((s,)) for s in specs if s.name not in ("sim_bridge", "policy_runner")]
        return [ProcessSpec(tuple(s for s in pair if s is not None)), *rest]
    return [ProcessSpec((s,)) for s in specs]


def node_specs(
    cfg: CollectConfig,
    *,
    policy: str,
    bag: str | Path = "",
    shadow: str = "",
) -> list[NodeSpec]:
    """The nodes that collect with ``cfg``.

    ``policy`` is a registry id, an artifact folder, or ``random`` (uniform actions, no
    approval). ``bag`` is the rosbag2 folder to write (must not exist); ``''`` lets the logger
    name one under ``cfg.out_dir``. ``shadow``: a registered candidate that runs beside it as
    ``shadow_runner`` (docs/ros.md "Shadow mode"), whose topics the logger records too.
    """
    if not policy:
        raise ConfigError("no policy given; pass a registry id or artifact folder, or 'random'")
    robot = load_robot_config(cfg.robot)
    task = cfg.task or robot.task
    why = joint_order_problem(robot, task)
    if why:
        raise ConfigError(f"robot config {cfg.robot}: {why}")
    common: dict[str, ParamValue] = {
        "robot_config": str(cfg.robot),
        "task": task,
        "mode": cfg.mode,
        "executor": cfg.executor,
    }
    remap = tuple(sorted(cfg.remappings.items()))
    # hardware with a scripted reset: reset_node moves the robot to each start pose and starts
    # the episode; the runner waits for its reset event and is quiet in between
    resets = cfg.sim == "none" and robot.reset is not None
    specs: list[NodeSpec] = []
    if cfg.sim != "none":
        if not robot.simulated or not robot.sim_model:
            raise ConfigError(
                f"{cfg.source or 'collect config'}: sim: {cfg.sim} but robot '{robot.name}' "
                "has no sim_model; use sim: none for a real robot"
            )
        specs.append(
            NodeSpec(
                PACKAGE,
                "sim_bridge",
                "sim_bridge",
                {
                    **common,
                    "use_sim_time": False,  # it is the clock
                    "backend": cfg.sim,
                    "sim_model": robot.sim_model,
                    "seed": int(cfg.seed),
                    "episode_steps": int(cfg.episode_steps or 0),
                    "lockstep_resend_s": float(cfg.lockstep_resend_s),
                },
                remap,
            )
        )
    specs.append(
        NodeSpec(
            PACKAGE,
            "policy_runner",
            "policy_runner",
            {
                **common,
                # lockstep: the runner's time is the sim time of the states it acts on (the
                # same value /clock carries), so it needs no /clock callback per step
                "use_sim_time": False,
                "policy": str(policy),
                "workspace": str(cfg.workspace or ""),
                "noise_sigma": float(cfg.noise_sigma),
                "seed": int(cfg.seed),
                "control_rate_hz": float(cfg.control_rate_hz or 0.0),
                "episode_steps": int(cfg.episode_steps or 0),
                "observation_timeout_s": float(cfg.observation_timeout_s or 0.0),
                "wait_for_reset": cfg.sim != "none" or resets,
                "auto_start": bool(cfg.auto_start) and not resets,
                "idle_commands": not resets,
                "max_episodes": int(cfg.max_episodes),
                "max_steps": int(cfg.max_steps),
                "realtime_priority": int(cfg.runner_realtime_priority),
                "stop_grace_s": float(cfg.stop_grace_s),
                # auto_start waits until these many readers are matched (discovery done)
                "ready_command_subscribers": int(cfg.sim != "none") + int(COMMAND in cfg.log_topics),
                "ready_state_subscribers": 1 + int(JOINT_STATES in cfg.log_topics) + int(bool(shadow)),
            },
            remap,
        )
    )
    if shadow:
        specs.append(shadow_spec(specs[-1], shadow))
    if resets:
        specs.append(
            NodeSpec(
                PACKAGE,
                "reset_node",
                "reset_node",
                {
                    **common,
                    "use_sim_time": False,
                    "seed": int(cfg.seed),
                    "control_rate_hz": float(cfg.control_rate_hz or 0.0),
                    "stop_grace_s": float(cfg.stop_grace_s),
                    "ready_command_subscribers": int(COMMAND in cfg.log_topics),
                    "wait_for_logger": JOINT_STATES in cfg.log_topics,
                },
                remap,
            )
        )
    if cfg.log_topics:
        specs.append(
            NodeSpec(
                PACKAGE,
                "trajectory_logger",
                "trajectory_logger",
                {
                    **common,
                    # stamps are the logger's receive time: /clock would only cost a callback per step
                    "use_sim_time": False,
                    "bag": str(bag),
                    "out_dir": str(cfg.out_dir),
                    "topics": list(cfg.log_topics)
                    + [t for t in SHADOW_TOPICS if shadow and t not in cfg.log_topics],
                },
                remap,
            )
        )
    return specs


def shadow_spec(runner: NodeSpec, candidate: str) -> NodeSpec:
    """The shadow runner beside ``runner``: the same robot, timing and remappings; the candidate's
    mean action (no noise), no budget of its own, no start-up wait, normal scheduling."""
    params = dict(runner.parameters)
    params.update(
        policy=str(candidate),
        shadow=True,
        noise_sigma=0.0,
        auto_start=False,
        max_episodes=0,
        max_steps=0,
        ready_command_subscribers=0,
        ready_state_subscribers=0,
        realtime_priority=0,
    )
    return NodeSpec(runner.package, runner.executable, "shadow_runner", params, runner.remappings)


def stand_in_spec(cfg: CollectConfig, backend: str = "mujoco") -> NodeSpec:
    """sim_bridge as the robot's driver for a hardware graph (``sim: none``): realtime, never
    teleporting (``hardware_stand_in``), so scripted resets can be rehearsed without the robot."""
    robot = load_robot_config(cfg.robot)
    if not robot.sim_model:
        raise ConfigError(f"robot '{robot.name}' has no sim_model; no simulator can stand in for it")
    params: dict[str, ParamValue] = {
        "robot_config": str(cfg.robot),
        "task": cfg.task or robot.task,
        "mode": "realtime",
        "executor": cfg.executor,
        "use_sim_time": False,
        "backend": backend,
        "sim_model": robot.sim_model,
        "seed": int(cfg.seed),
        "hardware_stand_in": True,
    }
    return NodeSpec(PACKAGE, "sim_bridge", "sim_bridge", params, tuple(sorted(cfg.remappings.items())))


def effective_config(
    config: str | Path | CollectConfig,
    *,
    sim: str | None = None,
    episodes: int = 0,
    steps: int = 0,
    workspace: str | Path = "",
) -> CollectConfig:
    """The config after the command-line / launch arguments: ``sim``, budgets, workspace.

    A budget (``episodes``/``steps`` here or ``max_episodes``/``max_steps`` in the file) makes
    ``policy_runner`` start episodes itself until it is used up.
    """
    from bremen_robot.ros.config import load_collect_config, with_overrides

    cfg = config if isinstance(config, CollectConfig) else load_collect_config(config)
    cfg = with_overrides(cfg, sim=sim or None)
    upd: dict[str, object] = {}
    if episodes:
        upd["max_episodes"] = int(episodes)
    if steps:
        upd["max_steps"] = int(steps)
    if workspace:
        upd["workspace"] = Path(workspace)
    cfg = cfg.model_copy(update=upd)
    if cfg.max_episodes or cfg.max_steps:
        cfg = cfg.model_copy(update={"auto_start": True})
    return cfg


def collect_processes(
    config: str | Path | CollectConfig,
    *,
    policy: str,
    sim: str | None = None,
    episodes: int = 0,
    steps: int = 0,
    out: str | Path = "",
    workspace: str | Path = "",
    shadow: str = "",
) -> list[ProcessSpec]:
    """What ``bremen collect`` and ``collect.launch.py`` both start: arguments -> the nodes
    (:func:`node_specs`) grouped into processes (:func:`process_specs`)."""
    cfg = effective_config(config, sim=sim, episodes=episodes, steps=steps, workspace=workspace)
    return process_specs(cfg, node_specs(cfg, policy=policy, bag=out, shadow=shadow))


def collect_specs(config: str | Path | CollectConfig, **arguments: Any) -> list[NodeSpec]:
    """The nodes of :func:`collect_processes` (same arguments), in :func:`node_specs` order."""
    return [node for proc in collect_processes(config, **arguments) for node in proc.nodes]


__all__ = [
    "EXECUTABLES",
    "PACKAGE",
    "RANDOM_POLICY",
    "NodeSpec",
    "ProcessSpec",
    "collect_processes",
    "collect_specs",
    "effective_config",
    "node_specs",
    "process_specs",
    "shadow_spec",
    "stand_in_spec",
]
