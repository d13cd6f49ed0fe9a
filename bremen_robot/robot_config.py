"""Robot configuration (``configs/robots/*.yaml``): what the robot side must agree on.

Shared by the collect graph (joint order, control rate, safety limits), the registry (trusted
operator keys) and the campaign (simulator or hardware). Relative paths are resolved against
the YAML file's folder.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bremen_robot.config.loading import load_yaml_model
from bremen_robot.errors import ConfigError
from bremen_robot.reset_config import ResetConfig, check_reset_limits, refuse_unactuated_base


class RobotConfig(BaseModel):
    """One robot: a simulator model or a real machine."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf or NaN is never a setting

    name: str = Field(description="robot name; policy manifests must carry the same name")
    simulated: bool = Field(description="true for a simulator; --auto-approve is refused otherwise")
    task: str = Field(description="default task in bremen_robot.tasks, e.g. 'halfcheetah'")
    joints: list[str] = Field(min_length=1, description="actuated joints, in command order")
    floating_base: bool = Field(False, description="true if the base pose comes from 'odom'")
    control_rate_hz: float = Field(gt=0, le=2000, description="policy rate in Hz")
    sim_model: str | None = Field(None, description="sim/ robot name when simulated, e.g. 'halfcheetah'")
    safety: Path | None = Field(None, description="safety limits YAML (configs/safety/...)")
    trusted_operator_keys: list[Path] = Field(
        default_factory=list, description="PEM Ed25519 public keys of operators allowed to approve"
    )
    trust_fix: str | None = Field(
        None,
        description="set only in a generated config (a campaign workspace's robot.yaml, rewritten on "
        "every start): how to change this robot's trusted keys instead of editing the file; "
        "'{operator}' stands for the operator's name",
    )
    reset: ResetConfig | None = Field(
        None,
        description="scripted reset between episodes on hardware (docs/hardware.md); absent: the "
        "operator starts each episode. Refused for robots whose base is not actuated",
    )
    source: Path | None = Field(None, exclude=True, description="file this config was read from")

    @model_validator(mode="after")
    def _reset_fits(self) -> RobotConfig:
        if self.reset is None:
            return self
        why = refuse_unactuated_base(self.name, self.floating_base, self.task, list(self.joints))
        if why:
            raise ValueError(f"reset: {why}")
        if len(self.reset.home) != len(self.joints):
            raise ValueError(
                f"reset.home has {len(self.reset.home)} entries for {len(self.joints)} joints; "
                "give one per joint in the order of joints"
            )
        return self

    @field_validator("joints")
    @classmethod
    def _unique_joints(cls, v: list[str]) -> list[str]:
        dup = sorted({j for j in v if v.count(j) > 1})
        if dup:
            raise ValueError(f"joint names must be unique; '{dup[0]}' appears twice")
        return v

    def how_to_trust(self, operator: str = "NAME") -> str:
        """The fix a refusal names: the command for a generated config, else the file to edit."""
        if self.trust_fix:
            return self.trust_fix.replace("{operator}", operator)
        where = f" in {self.source}" if self.source else " in the robot config"
        return f"add {operator}'s .pub (bremen operator init {operator}) to trusted_operator_keys{where}"


def joint_order_problem(robot: RobotConfig, task_name: str) -> str | None:
    """Why the robot's joints are not the task's actions in the task's order, or None.

    Policies act in the task's order and bags and datasets store commands as sent, so any other
    order (sim_bridge alone maps it) would mislabel every logged action, silently.
    """
    from bremen_robot.tasks import get_task

    task = get_task(task_name)
    want = list(task.action_names)
    if list(robot.joints) == want:
        return None
    if sorted(robot.joints) == sorted(want):
        what = f"the actions of task '{task.name}' in another order (the task's: {want})"
    else:
        what = f"not the actions of task '{task.name}' ({want})"
    return (
        f"joints {list(robot.joints)} are {what}; policies act and datasets store commands in the "
        "task's order: list the joints so, and map them to your controller's order in its driver"
    )


def load_robot_config(path: Path) -> RobotConfig:
    """Load a robot config and resolve its relative paths against the file's folder."""
    cfg = load_yaml_model(RobotConfig, Path(path))
    base = Path(path).resolve().parent
    cfg.source = Path(path).resolve()
    if cfg.safety is not None and not cfg.safety.is_absolute():
        cfg.safety = (base / cfg.safety).resolve()
    cfg.trusted_operator_keys = [
        k if k.is_absolute() else (base / k).resolve() for k in cfg.trusted_operator_keys
    ]
    if cfg.reset is not None:
        if not cfg.reset.limits.is_absolute():
            cfg.reset.limits = (base / cfg.reset.limits).resolve()
        _check_reset(cfg, Path(path))
    return cfg


def _check_reset(cfg: RobotConfig, path: Path) -> None:
    """The reset's own limits file exists, loads, and lies within the robot's limits."""
    import safety

    if cfg.reset is None:
        return
    if cfg.safety is None:
        raise ConfigError(
            f"{path}: reset: needs the robot's safety limits; set safety: configs/safety/<robot>.yaml"
        )
    try:
        robot = safety.load_limits(cfg.safety, joint_names=list(cfg.joints))
        own = safety.load_limits(cfg.reset.limits, joint_names=list(cfg.joints))
        check_reset_limits(cfg.reset, robot, own)
    except (safety.SafetyConfigError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
