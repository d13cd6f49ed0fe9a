"""The collect config (``configs/collect/<name>.yaml``): one description of the collect graph.

Read by ``bremen collect`` and by ``ros2 launch bremen collect.launch.py config:=...``; both
turn it into node specs with :func:`bremen_robot.ros.graph.node_specs`. Paths in the file
(``robot``) resolve against the file's folder; ``out_dir`` and ``workspace`` against the
current directory (they are outputs, like every other ``--out``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bremen_robot.config.loading import load_yaml_model
from bremen_robot.errors import ConfigError
from bremen_robot.ros.topics import DEFAULT_LOG_TOPICS, MSG_TYPES

SimName = Literal["mujoco", "pybullet", "none"]
Mode = Literal["lockstep", "realtime"]


class CollectConfig(BaseModel):
    """How one deployment collects data: robot, simulator, timing, exploration, logging."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf or NaN is never a setting

    robot: Path = Field(description="robot config YAML (configs/robots/...), relative to this file")
    task: str | None = Field(None, description="task in bremen_robot.tasks; default: the robot config's task")
    sim: SimName = Field(
        "mujoco", description="mujoco | pybullet: sim_bridge runs the robot; none: a real robot's driver"
    )
    mode: Mode = Field(
        "lockstep",
        description="lockstep: one physics step per command, /clock, as fast as the graph goes; "
        "realtime: wall-clock paced like hardware (the only mode with sim: none)",
    )
    episode_steps: int | None = Field(
        None, gt=0, description="time limit of an episode in control steps; default: the task's"
    )
    control_rate_hz: float | None = Field(
        None, gt=0, le=2000, description="policy rate; default: the policy manifest's, else the robot's"
    )
    noise_sigma: float = Field(
        0.1, ge=0, description="std of the Gaussian exploration noise added to the policy mean"
    )
    seed: int = Field(0, ge=0, description="seeds exploration noise, random actions and simulator resets")
    out_dir: Path = Field(Path("bags"), description="folder for bags named by deployment (without --out)")
    workspace: Path | None = Field(
        None, description="registry workspace (default: $BREMEN_WORKSPACE or ./bremen_ws)"
    )
    log_topics: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LOG_TOPICS),
        description=f"topics trajectory_logger records; known: {', '.join(MSG_TYPES)}",
    )
    remappings: dict[str, str] = Field(
        default_factory=dict,
        description="topic remappings for every node, e.g. {bremen/command: /fwd_controller/commands}",
    )
    observation_timeout_s: float | None = Field(
        None, gt=0, description="watchdog age limit in s; default: the safety limits' max_observation_age"
    )
    lockstep_resend_s: float = Field(
        0.5, gt=0, description="lockstep: sim_bridge re-sends the last state if no command came this long"
    )
    auto_start: bool = Field(
        False, description="policy_runner starts episodes by itself (for ros2 launch without an operator)"
    )
    max_episodes: int = Field(0, ge=0, description="stop collecting after this many episodes (0: no limit)")
    max_steps: int = Field(0, ge=0, description="stop collecting after this many control steps (0: no limit)")
    compose_lockstep: bool = Field(
        True,
        description="lockstep simulation: run sim_bridge and policy_runner in one process (same nodes "
        "and topics, no inter-process hop per step; several times faster on small machines). "
        "false: every node its own process",
    )
    runner_realtime_priority: int = Field(
        0,
        ge=0,
        le=98,
        description="policy_runner's SCHED_FIFO priority (1-98; 0: normal scheduling). Needs rtprio "
        "rights (limits.conf or CAP_SYS_NICE); without them the runner warns and runs unprioritized",
    )
    stop_grace_s: float = Field(
        0.5,
        description="on every exit (Ctrl-C, SIGTERM, a crashed node, an error) policy_runner sends the "
        "safe command (zero or hold, per the safety limits) and keeps sending it at the control rate "
        "this long before it exits (0.1-10 s; the driver's own command timeout is the second line "
        "of defence, docs/ros.md)",
    )
    executor: Literal["events", "single"] = Field(
        "events", description="rclpy executor: events (fast, rclpy.experimental) or single (classic)"
    )
    source: Path | None = Field(None, exclude=True, description="file this config was read from")

    @field_validator("log_topics")
    @classmethod
    def _known_topics(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in MSG_TYPES]
        if unknown:
            raise ValueError(f"unknown topic '{unknown[0]}'; known topics: {', '.join(MSG_TYPES)}")
        if len(set(v)) != len(v):
            raise ValueError("topics must be listed once each")
        return v

    @field_validator("stop_grace_s")
    @classmethod
    def _grace_in_range(cls, v: float) -> float:
        if not 0.1 <= v <= 10.0:  # also refuses NaN
            raise ValueError(
                f"{v} s is outside 0.1-10 s; set it so the driver surely receives the safe command "
                "(0.5 s is the default), and keep it short enough that a stop is prompt"
            )
        return v

    @model_validator(mode="after")
    def _mode_fits_sim(self) -> CollectConfig:
        if self.sim == "none" and self.mode == "lockstep":
            raise ValueError("mode: lockstep needs a simulator; use mode: realtime with sim: none")
        if self.runner_realtime_priority and self.mode == "lockstep":
            raise ValueError(
                "runner_realtime_priority applies to mode: realtime (lockstep has no deadlines, and a "
                "FIFO simulator would starve the logger); set it to 0 or use mode: realtime"
            )
        return self


def config_root() -> Path:
    """The repository's ``configs/`` folder (next to the ``bremen_robot`` package)."""
    return Path(__file__).resolve().parents[2] / "configs"


def load_collect_config(path: Path | str) -> CollectConfig:
    """Load ``path``; a relative ``robot`` path resolves against the file's folder, and a bare
    robot name (``robot: halfcheetah``) against ``configs/robots/``. One-line errors."""
    path = Path(path)
    cfg = load_yaml_model(CollectConfig, path)
    if not cfg.robot.suffix and len(cfg.robot.parts) == 1:
        cfg.robot = config_root() / "robots" / f"{cfg.robot}.yaml"
    elif not cfg.robot.is_absolute():
        cfg.robot = (path.resolve().parent / cfg.robot).resolve()
    if not cfg.robot.is_file():
        raise ConfigError(
            f"{path}: robot: file '{cfg.robot}' not found; point it at configs/robots/<robot>.yaml"
        )
    cfg.source = path.resolve()
    return cfg


def with_overrides(cfg: CollectConfig, *, sim: str | None = None, mode: str | None = None) -> CollectConfig:
    """A copy with ``sim``/``mode`` replaced (CLI and launch arguments), validated again.

    ``sim: none`` implies realtime mode.
    """
    data = cfg.model_dump()
    if sim:
        data["sim"] = sim
        if sim == "none" and not mode:
            data["mode"] = "realtime"
    if mode:
        data["mode"] = mode
    from bremen_robot.config.loading import validate_model

    out = validate_model(CollectConfig, data, str(cfg.source or "collect config"))
    out.source = cfg.source
    return out
