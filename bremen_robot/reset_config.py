"""The ``reset`` section of a robot config: how the robot is brought to an episode's start pose.

A reset is a small, declared joint-space motion at a low speed, run between episodes on
hardware (``sim: none``) by ``reset_node`` through a safety shield built from the reset's own
limits file (tighter than the robot's; :func:`check_reset_limits`). Robots whose base is not
actuated (HalfCheetah, Hopper, Walker2d, Ant) cannot be reset by their joints and refuse the
section (:func:`refuse_unactuated_base`). Pure data and checks; no ROS.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from safety import Bound, SafetyLimits


class StartBox(BaseModel):
    """A box of start poses: each reset draws one uniformly (seeded by the reset's number)."""

    # its own model: ResetConfig's allow_inf_nan does not reach it, and a NaN corner slipped to
    # the order check ("swap them"), an infinite one of an unlimited joint to the draw
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    low: list[float] = Field(
        min_length=1, description="lowest start position per joint (rad), robot joint order"
    )
    high: list[float] = Field(
        min_length=1, description="highest start position per joint (rad), robot joint order"
    )

    @model_validator(mode="after")
    def _ordered(self) -> StartBox:
        if len(self.low) != len(self.high):
            raise ValueError(
                f"low has {len(self.low)} entries but high has {len(self.high)}; give one per joint"
            )
        bad = [k for k, (lo, hi) in enumerate(zip(self.low, self.high, strict=True)) if not lo <= hi]
        if bad:
            raise ValueError(f"entry {bad[0]}: low {self.low[bad[0]]} > high {self.high[bad[0]]}; swap them")
        return self


class ResetConfig(BaseModel):
    """The scripted reset between episodes (docs/hardware.md, docs/ros.md "Resets")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    home: list[float] = Field(
        min_length=1, description="start pose (rad), one entry per robot joint in command order"
    )
    poses: list[list[float]] = Field(
        default_factory=list,
        description="optional set of start poses, used in turn (reset k takes poses[(k-1) % n]); "
        "replaces home as the target",
    )
    box: StartBox | None = Field(
        None, description="optional box of start poses, one drawn uniformly per reset; replaces home"
    )
    max_speed: float = Field(gt=0, description="speed limit of the reset motion per joint (rad/s)")
    max_acceleration: float = Field(
        gt=0, description="acceleration limit of the reset motion per joint (rad/s^2)"
    )
    gain: float = Field(
        2.0,
        gt=0,
        description="feedback gain (1/s) pulling the joints onto the planned path (velocity interface)",
    )
    position_tolerance: float = Field(gt=0, description="arrived when every joint is this close (rad)")
    velocity_tolerance: float = Field(gt=0, description="still when every joint is this slow (rad/s)")
    settle_s: float = Field(
        0.2, ge=0, description="arrived and still must hold this long (s) before the episode starts"
    )
    timeout_s: float = Field(gt=0, description="a reset not done within this (s) stops the collection")
    limits: Path = Field(
        description="safety limits YAML of the reset motion (configs/safety/...), relative to the "
        "robot config; must lie within the robot's own limits"
    )

    @model_validator(mode="after")
    def _poses_fit(self) -> ResetConfig:
        n = len(self.home)
        if self.poses and self.box is not None:
            raise ValueError("poses and box are both set; give one way to choose start poses")
        for k, pose in enumerate(self.poses):
            if len(pose) != n:
                raise ValueError(f"poses[{k}] has {len(pose)} entries, home has {n}; give one per joint")
        if self.box is not None and len(self.box.low) != n:
            raise ValueError(
                f"box has {len(self.box.low)} entries per side, home has {n}; give one per joint"
            )
        return self

    @field_validator("poses")
    @classmethod
    def _finite(cls, v: list[list[float]]) -> list[list[float]]:
        for k, pose in enumerate(v):
            if not all(math.isfinite(x) for x in pose):
                raise ValueError(f"poses[{k}] is not finite; give numbers in rad")
        return v

    def candidate_poses(self) -> list[list[float]]:
        """Home and every pose a reset may target (for a box: its two corners bound them all)."""
        if self.box is not None:
            return [self.home, self.box.low, self.box.high]
        return [self.home, *self.poses]


def refuse_unactuated_base(name: str, floating_base: bool, task: str, joints: list[str]) -> str | None:
    """Why a robot's joints cannot reset it (one line), or None when they can.

    A base is unactuated when it is floating (pose from ``odom``) or when the task observes
    joints the robot cannot command (the planar root joints ``rootz``/``rooty``).
    """
    from bremen_robot.errors import TaskError
    from bremen_robot.tasks import get_task

    base: list[str] = []
    try:
        t = get_task(task)
        base = [n[5:] for n in t.obs_names if n.startswith("qpos.") and n[5:] not in joints]
    except TaskError:
        pass  # an unknown task is reported where it is used
    if not floating_base and not base:
        return None
    what = "a floating base" if floating_base else f"an unactuated base ({', '.join(base[:3])})"
    return (
        f"robot '{name}' has {what}: its joints cannot move it back to a start pose; remove the "
        "reset section (episodes start when the operator calls bremen/start_episode)"
    )


def _bound_within(own: Bound, robot: Bound) -> bool:
    """Whether ``own`` stops no later than ``robot`` on either side (a side the robot bounds
    must be bounded as tightly or tighter)."""
    if robot.min is not None and (own.min is None or own.min < robot.min):
        return False
    return not (robot.max is not None and (own.max is None or own.max > robot.max))


def _past(x: float, bound: float) -> str:
    """``x`` as short as it reads differently from ``bound`` (0.4 x 0.05 next to 0.02:
    0.020000000000000004, the float the motion computes)."""
    return f"{x:g}" if f"{x:g}" != f"{bound:g}" else repr(x)


def check_reset_limits(
    reset: ResetConfig, robot: SafetyLimits, own: SafetyLimits, where: str = "reset"
) -> None:
    """Raise ValueError (one line, naming the fix) unless the reset's limits lie within the
    robot's and the reset motion fits inside them (so the shield never has to intervene)."""

    def fail(msg: str) -> None:
        raise ValueError(f"{where}: {msg}")

    if own.joint_names != robot.joint_names:
        fail(
            f"limits list joints {own.joint_names}, the robot's limits {robot.joint_names}; "
            "list the same joints"
        )
    if own.command_interface != robot.command_interface:
        fail(
            f"limits command_interface '{own.command_interface}' differs from the robot's "
            f"'{robot.command_interface}'; use the same"
        )
    if own.command_interface == "effort":
        fail(
            "a reset needs command_interface velocity or position (effort has no position servo); "
            "remove the reset section"
        )
    if own.timing.control_period != robot.timing.control_period:
        fail(
            f"limits timing.control_period {own.timing.control_period} differs from the robot's "
            f"{robot.timing.control_period}; use the same"
        )
    if own.timing.max_observation_age > robot.timing.max_observation_age:
        fail("limits timing.max_observation_age exceeds the robot's; make it at most the robot's")
    if len(reset.home) != len(robot.joint_names):
        fail(f"home has {len(reset.home)} entries for {len(robot.joint_names)} joints; give one per joint")
    for name in robot.joint_names:
        r, o = robot.joints[name], own.joints[name]
        j = f"limits joints.{name}"
        for kind in ("velocity", "acceleration"):
            rv, ov = getattr(r, kind), getattr(o, kind)
            if rv is not None and (ov is None or ov > rv):
                fail(f"{j}.{kind} {ov} is not within the robot's {rv}; set it at most {rv}")
        rb, ob = robot.box(name), own.box(name)
        if ob.min < rb.min or ob.max > rb.max:
            fail(f"{j}.command [{ob.min}, {ob.max}] is outside the robot's [{rb.min}, {rb.max}]; narrow it")
        if r.position is not None:
            if o.position is None:
                fail(f"{j}.position is missing; copy the robot's range or narrow it")
            else:
                rp, op = r.position, o.position
                if op.min < rp.min or op.max > rp.max or op.soft_lo < rp.soft_lo or op.soft_hi > rp.soft_hi:
                    fail(f"{j}.position is outside the robot's range; narrow it to within it")
        rs, os_ = robot.step(name), own.step(name)
        if rs is not None and os_ is None:
            fail(f"limits max_step for {name} is missing; the robot's is {rs}: set it at most {rs}")
        if rs is not None and os_ is not None and os_ > rs:
            fail(f"limits max_step for {name} {os_} is not within the robot's {rs}; set it at most {rs}")
        period = own.timing.control_period
        if own.command_interface == "position" and os_ is None:
            # the shield bounds a position command only by the box and soft range: one bad
            # target would jump across the range in a single period
            fail(
                f"limits max_step for {name} is missing; a position reset needs it: set it to at least "
                f"max_speed x control_period = {reset.max_speed * period:g}"
            )
        # compared as the motion and the shield compute them, in floats: 0.4 x 0.05 is
        # 0.020000000000000004, past a max_step of 0.02, and the shield counts even that excess
        # (until 2026-12-07 a 1e-9 tolerance accepted it, and every such reset then failed)
        if own.command_interface == "position" and os_ is not None and reset.max_speed * period > os_:
            fail(
                f"max_speed {reset.max_speed} moves {_past(reset.max_speed * period, os_)} per control "
                f"period, more than limits max_step for {name} {os_}; lower max_speed or raise max_step"
            )
        if o.velocity is not None and reset.max_speed > o.velocity:
            fail(f"max_speed {reset.max_speed} exceeds {j}.velocity {o.velocity}; lower max_speed")
        if own.command_interface == "velocity" and (reset.max_speed > ob.max or -reset.max_speed < ob.min):
            fail(f"max_speed {reset.max_speed} exceeds {j}.command [{ob.min}, {ob.max}]; lower max_speed")
        # the shield limits acceleration on both interfaces (a position command's change of step)
        if o.acceleration is not None and reset.max_acceleration > o.acceleration:
            fail(
                f"max_acceleration {reset.max_acceleration} exceeds {j}.acceleration {o.acceleration}; "
                "lower max_acceleration"
            )
        if own.command_interface == "velocity" and os_ is not None and reset.max_acceleration * period > os_:
            fail(
                f"max_acceleration {reset.max_acceleration} changes the command by "
                f"{_past(reset.max_acceleration * period, os_)} per control period, more than limits "
                f"max_step for {name} {os_}; lower max_acceleration or raise max_step"
            )
    # between episodes the runner's shield is idle: the reset's envelope alone stops a pushed
    # arm, so it must stop it wherever the robot's would (extras are not checked: the robots
    # that need them have unactuated bases and no reset)
    for kind in ("positions", "velocities"):
        ours = getattr(own.envelope, kind)
        for joint, rb in getattr(robot.envelope, kind).items():
            e = f"limits envelope.{kind}.{joint}"
            ob = ours.get(joint)
            if ob is None:
                fail(f"{e} is missing; the robot's is [{rb.min}, {rb.max}]: copy it or narrow it")
            elif not _bound_within(ob, rb):
                fail(f"{e} [{ob.min}, {ob.max}] is not within the robot's [{rb.min}, {rb.max}]; narrow it")
    for k, name in enumerate(robot.joint_names):
        p = own.joints[name].position
        if p is None:
            continue
        for pose in reset.candidate_poses():
            if not p.soft_lo <= pose[k] <= p.soft_hi:
                fail(
                    f"start pose {name} = {pose[k]} is outside the reset limits' soft range "
                    f"[{p.soft_lo}, {p.soft_hi}]; move the pose inside it"
                )


__all__ = ["ResetConfig", "StartBox", "check_reset_limits", "refuse_unactuated_base"]
