"""Domain randomization: what is drawn, from which range, at every reset (seeded).

Physics factors are drawn once per episode and multiply the robot's nominal values; the
observation noise, action delay and control-period jitter act on every step. A field left at
its default changes nothing, so ``Randomization()`` is the nominal simulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bremen_robot.config.loading import load_yaml_model, validate_model
from bremen_robot.errors import ConfigError
from sim.backends.base import PhysicsScales, RobotBackend
from sim.errors import SimError

Range = tuple[float, float]
MAX_ACTION_DELAY = 1000  # control steps: the longest task episode (locomotion, 1000 steps)


def _check_range(name: str, value: Range, allow_zero: bool = False) -> Range:
    low, high = value
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} range [{low}, {high}] must be finite numbers")
    if low > high:
        raise ValueError(f"{name} range [{low}, {high}] is empty; write [low, high] with low <= high")
    if low < 0 or (low == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} range [{low}, {high}] has a negative or zero factor; use factors {bound}")
    return (float(low), float(high))


class Randomization(BaseModel):
    """Seeded domain randomization of one simulated robot (YAML: ``configs/sim/*.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    link_mass: Range = Field(
        default=(1.0, 1.0),
        description="factor on every link's mass (and inertia), drawn per link per episode",
    )
    friction: Range = Field(
        default=(1.0, 1.0), description="factor on all sliding friction, drawn once per episode"
    )
    joint_damping: Range = Field(
        default=(1.0, 1.0), description="factor on every joint's damping, drawn per joint per episode"
    )
    actuator_gain: Range = Field(
        default=(1.0, 1.0),
        description="factor on each actuator's output (torque robots: gear; velocity robots: "
        "commanded speed), drawn per actuator per episode",
    )
    obs_noise_std: float = Field(
        default=0.0,
        ge=0.0,
        allow_inf_nan=False,
        description="std of Gaussian noise added to every observation entry the policy sees",
    )
    action_delay: tuple[int, int] = Field(
        default=(0, 0),
        description="commands act k control steps late, k drawn uniformly from [min, max] per episode",
    )
    control_period_jitter: float = Field(
        default=0.0,
        ge=0.0,
        lt=0.5,
        description="each control period lasts dt * (1 + u), u ~ U(-j, j) drawn per step (fraction, < 0.5)",
    )

    @field_validator("link_mass", "friction", "joint_damping", "actuator_gain")
    @classmethod
    def _factor_range(cls, v: Range, info: Any) -> Range:
        return _check_range(info.field_name, v, allow_zero=info.field_name == "joint_damping")

    @field_validator("action_delay")
    @classmethod
    def _delay_range(cls, v: tuple[int, int]) -> tuple[int, int]:
        low, high = v
        if low > high:
            raise ValueError(f"action_delay range [{low}, {high}] is empty; write [min, max] with min <= max")
        if low < 0:
            raise ValueError(f"action_delay range [{low}, {high}] is negative; delays are >= 0 control steps")
        if high > MAX_ACTION_DELAY:
            # the delay queue holds one command per step of delay: a typo's billion steps would
            # fill the memory at the first reset instead of failing here
            raise ValueError(
                f"action_delay range [{low}, {high}] is longer than any episode; delays are at most "
                f"{MAX_ACTION_DELAY} control steps (a robot's latency is a few)"
            )
        return (int(low), int(high))

    @property
    def is_nominal(self) -> bool:
        return self == Randomization()


def load_randomization(source: Randomization | dict[str, Any] | str | Path | None) -> Randomization:
    """A :class:`Randomization` from a model, a mapping or a YAML path (``None``: nominal)."""
    if source is None:
        return Randomization()
    if isinstance(source, Randomization):
        return source
    try:
        if isinstance(source, dict):
            return validate_model(Randomization, source, "randomization")
        return load_yaml_model(Randomization, Path(source))
    except ConfigError as exc:
        raise SimError(str(exc).replace("Value error, ", "")) from None


def draw_scales(cfg: Randomization, backend: RobotBackend, rng: np.random.Generator) -> PhysicsScales:
    """One episode's physics factors (always the same number of draws, whatever the ranges)."""
    return PhysicsScales(
        link_mass=rng.uniform(*cfg.link_mass, size=len(backend.body_names)),
        friction=float(rng.uniform(*cfg.friction)),
        joint_damping=rng.uniform(*cfg.joint_damping, size=len(backend.joint_names)),
        actuator_gain=rng.uniform(*cfg.actuator_gain, size=len(backend.actuated_joint_names)),
    )


def draw_delay(cfg: Randomization, rng: np.random.Generator) -> int:
    return int(rng.integers(cfg.action_delay[0], cfg.action_delay[1] + 1))


DEFAULT_RANDOMIZATION = Randomization(
    link_mass=(0.8, 1.2),
    friction=(0.7, 1.3),
    joint_damping=(0.7, 1.3),
    actuator_gain=(0.85, 1.15),
    obs_noise_std=0.01,
    action_delay=(0, 1),
    control_period_jitter=0.05,
)
"""``bremen sim2real`` without ``--randomization`` (= configs/sim/randomization-default.yaml)."""
