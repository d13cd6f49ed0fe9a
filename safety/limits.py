"""Safety limits: pydantic models read from YAML (``configs/safety/*.yaml``).

One model per concern: the command box, position limits, per-joint limits, the state
envelope, timing, and the out-of-distribution gate. Every contradiction is rejected when the
file is loaded, with one line naming the joint, the field and the fix (see
:func:`load_limits`). The shield (:mod:`safety.shield`) turns a validated
:class:`SafetyLimits` into plain per-joint numbers once, at construction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from safety.errors import SafetyConfigError
from safety.misspelling import describe_misspelling
from safety.strict_text import DuplicateKeyError, json_loads_unique, yaml_load_unique

CommandInterface = Literal["effort", "velocity", "position"]
SafeCommandMode = Literal["zero", "hold"]

_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def _fmt(x: float) -> str:
    return repr(float(x))


def _not_bool(v: Any) -> Any:
    # YAML 1.1 reads yes/no/on/off as booleans, and pydantic would take True as 1.0: a limit
    # nobody meant. Strings such as "1e-3" (PyYAML's reading of 1e-3) are still parsed.
    if isinstance(v, bool):
        raise ValueError(f"must be a number, got {v!r} (a yes/no value); write a number")
    return v


Num = Annotated[float, BeforeValidator(_not_bool)]
"""A float that refuses booleans."""


class CommandBox(BaseModel):
    """The range the actuator accepts, in command units (MuJoCo ``ctrlrange``, rad/s, rad)."""

    model_config = _CONFIG

    min: Num = Field(description="lowest command the actuator accepts")
    max: Num = Field(description="highest command the actuator accepts")

    @model_validator(mode="after")
    def _ordered(self) -> CommandBox:
        if self.min > self.max:
            raise ValueError(f"min {_fmt(self.min)} > max {_fmt(self.max)}; swap them")
        if self.min == self.max:
            raise ValueError(f"min equals max ({_fmt(self.min)}); give a range with min < max")
        return self


class PositionLimits(BaseModel):
    """Hard joint range and an optional soft range inside it.

    Between a soft and a hard limit, motion toward the hard limit is scaled down linearly,
    reaching zero at the hard limit (as ros2_control's soft limiter does).
    """

    model_config = _CONFIG

    min: Num = Field(description="hard lower limit (rad or m)")
    max: Num = Field(description="hard upper limit (rad or m)")
    soft_min: Num | None = Field(None, description="soft lower limit, in [min, max]; default min")
    soft_max: Num | None = Field(None, description="soft upper limit, in [min, max]; default max")
    unit: Literal["rad", "m"] = Field(
        "rad",
        description="'rad' (revolute) or 'm' (prismatic); a bound beyond two turns (4π) in 'rad' is "
        "refused as degrees by 'bremen safety check' and 'bremen collect': a linear axis longer than "
        "12.6 m says 'm'",
    )

    @model_validator(mode="after")
    def _consistent(self) -> PositionLimits:
        lo, hi = self.min, self.max
        if lo > hi:
            raise ValueError(f"min {_fmt(lo)} > max {_fmt(hi)}; swap them")
        if lo == hi:
            raise ValueError(f"min equals max ({_fmt(lo)}); give a range with min < max")
        if self.soft_min is not None and not lo <= self.soft_min <= hi:
            raise ValueError(
                f"soft_min {_fmt(self.soft_min)} is outside the hard range [{_fmt(lo)}, {_fmt(hi)}]; "
                "put it inside, or remove it"
            )
        if self.soft_max is not None and not lo <= self.soft_max <= hi:
            raise ValueError(
                f"soft_max {_fmt(self.soft_max)} is outside the hard range [{_fmt(lo)}, {_fmt(hi)}]; "
                "put it inside, or remove it"
            )
        if self.soft_lo >= self.soft_hi:
            raise ValueError(
                f"soft_min {_fmt(self.soft_lo)} >= soft_max {_fmt(self.soft_hi)}; "
                "lower soft_min or raise soft_max"
            )
        return self

    @property
    def soft_lo(self) -> float:
        return self.min if self.soft_min is None else self.soft_min

    @property
    def soft_hi(self) -> float:
        return self.max if self.soft_max is None else self.soft_max


class JointLimits(BaseModel):
    """Limits of one actuated joint. Absent fields mean 'no limit of this kind'."""

    model_config = _CONFIG

    position: PositionLimits | None = Field(None, description="hard and soft joint range")
    velocity: Num | None = Field(None, gt=0, description="maximum joint speed |qdot| (rad/s or m/s)")
    acceleration: Num | None = Field(
        None,
        gt=0,
        description="maximum command rate |command - last command| / control_period, in command "
        "units per second (joint acceleration for velocity commands)",
    )
    effort: Num | None = Field(None, gt=0, description="maximum |effort| (N·m or N); effort interface only")
    effort_per_command: Num = Field(
        1.0, gt=0, description="effort per unit of command (a MuJoCo motor's gear); effort interface only"
    )
    command: CommandBox | None = Field(None, description="this joint's command box; default: command_box")


class Bound(BaseModel):
    """A closed interval on one observed value; either side may be absent."""

    model_config = _CONFIG

    min: Num | None = Field(None, description="lowest allowed value; null for none")
    max: Num | None = Field(None, description="highest allowed value; null for none")

    @model_validator(mode="after")
    def _ordered(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("neither min nor max is set; give at least one, or remove the entry")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {_fmt(self.min)} > max {_fmt(self.max)}; swap them")
        return self


class Envelope(BaseModel):
    """Observation bounds beyond which the robot is stopped (the e-stop latches).

    ``positions`` and ``velocities`` name joints in the joint state (any joint it carries,
    actuated or not, e.g. a planar robot's ``rootz``); ``extras`` name values passed to
    ``SafetyShield.filter(..., extras={...})`` such as ``body_height`` or ``tilt``.
    """

    model_config = _CONFIG

    positions: dict[str, Bound] = Field(default_factory=dict, description="joint position bounds by name")
    velocities: dict[str, Bound] = Field(default_factory=dict, description="joint velocity bounds by name")
    extras: dict[str, Bound] = Field(default_factory=dict, description="bounds on named extra observations")


class Timing(BaseModel):
    """Control timing the limits are stated against."""

    model_config = _CONFIG

    control_period: Num = Field(gt=0, description="expected seconds between commands")
    max_observation_age: Num = Field(
        gt=0, description="seconds after its stamp an observation may still be acted on (watchdog)"
    )
    max_clock_skew: Num = Field(
        0.0, ge=0, description="seconds an observation stamp may lie ahead of 'now' before it counts as bad"
    )


class OodGate(BaseModel):
    """Out-of-distribution gate on the dynamics ensemble's disagreement."""

    model_config = _CONFIG

    threshold: Num = Field(gt=0, description="disagreement above which the fallback is used")
    fallback: Literal["policy", "safe"] = Field(
        "safe",
        description="'policy': the injected fallback policy's action (e.g. BC); 'safe': the safe command",
    )


class SafetyLimits(BaseModel):
    """Everything the shield enforces for one robot. Joints are listed in command order."""

    model_config = _CONFIG

    robot: str = Field(min_length=1, description="robot name, as in configs/robots")
    command_interface: CommandInterface = Field(
        description="what a command means: 'effort' (normalized torque, e.g. MuJoCo ctrl), "
        "'velocity' or 'position'"
    )
    safe_command: SafeCommandMode = Field(
        description="what is sent when the shield stops the robot: 'zero' (zero effort or velocity) "
        "or 'hold' (hold the current position; position interface)"
    )
    command_box: CommandBox | None = Field(None, description="default command box for every joint")
    max_step: float | dict[str, float] | None = Field(
        None,
        description="largest change per control step: of the command (effort, velocity) or from the "
        "measured position (position; LeRobot's max_relative_target). A number, or one per joint",
    )
    joints: dict[str, JointLimits] = Field(min_length=1, description="limits per joint, in command order")
    envelope: Envelope = Field(
        default_factory=Envelope, description="state envelope; leaving it latches the e-stop"
    )
    timing: Timing = Field(description="control period and watchdog")
    ood: OodGate | None = Field(
        None,
        description="out-of-distribution gate; off when absent. Needs an ood_score injected through "
        "the Python API (SafetyShield refuses the section without one; bremen's nodes inject none)",
    )

    @field_validator("max_step", mode="plain")
    @classmethod
    def _max_step_type(cls, v: Any) -> float | dict[str, float] | None:
        def number(x: Any, where: str) -> float:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise ValueError(f"{where}must be a number, got {x!r}; give a positive number")
            try:
                return float(x)
            except OverflowError:  # an int past float's range: pydantic passes this one through
                raise ValueError(f"{where}is too large to be a number; give a positive number") from None

        if v is None:
            return None
        if isinstance(v, Mapping):
            return {str(k): number(x, f"entry '{k}' ") for k, x in v.items()}
        return number(v, "")

    @model_validator(mode="after")
    def _cross_checks(self) -> SafetyLimits:
        iface = self.command_interface
        allowed = {"effort": "zero", "velocity": "zero", "position": "hold"}[iface]
        if self.safe_command != allowed:
            raise ValueError(
                f"safe_command: '{self.safe_command}' does not fit command_interface '{iface}'; "
                f"use '{allowed}'"
            )
        # a per-joint mapping, or one step for every joint (name None; "" is a mapping's key)
        steps = list(self.max_step.items()) if isinstance(self.max_step, dict) else [(None, self.max_step)]
        for name, step in steps:
            where = "max_step" if name is None else f"max_step.{name or repr(name)}"
            if name is not None and name not in self.joints:
                raise ValueError(
                    f"{where}: unknown joint (the joints are {', '.join(self.joints)}); "
                    "fix the name or remove it"
                )
            if step is not None and not (math.isfinite(step) and step > 0):
                raise ValueError(f"{where}: must be a finite number > 0, got {step!r}; give a positive step")
        for name, jl in self.joints.items():
            where = f"joints.{name}"
            box = jl.command or self.command_box
            if box is None:
                raise ValueError(f"{where}.command: no command box; set command_box or {where}.command")
            if iface != "effort" and jl.effort is not None:
                raise ValueError(f"{where}.effort: only enforced for command_interface 'effort'; remove it")
            if iface != "effort" and jl.effort_per_command != 1.0:
                raise ValueError(
                    f"{where}.effort_per_command: only used for command_interface 'effort'; remove it"
                )
            if iface == "position":
                if jl.position is None:
                    raise ValueError(f"{where}.position: required for command_interface 'position'; add it")
                p = jl.position
                if box.max < p.soft_lo or box.min > p.soft_hi:
                    raise ValueError(
                        f"{where}.command: box [{_fmt(box.min)}, {_fmt(box.max)}] does not overlap the soft "
                        f"range [{_fmt(p.soft_lo)}, {_fmt(p.soft_hi)}]; fix one of them"
                    )
            elif not box.min <= 0.0 <= box.max:
                raise ValueError(
                    f"{where}.command: box [{_fmt(box.min)}, {_fmt(box.max)}] excludes the safe command 0; "
                    "widen it to include 0"
                )
        return self

    @property
    def joint_names(self) -> list[str]:
        """Joint names in command order."""
        return list(self.joints)

    def box(self, name: str) -> CommandBox:
        """The command box of joint ``name`` (its own, else the default)."""
        box = self.joints[name].command or self.command_box
        if box is None:  # the validator refuses this; an explicit check survives python -O
            raise ValueError(f"joint '{name}': no command box; add command_box or joints.{name}.command")
        return box

    def step(self, name: str) -> float | None:
        """The max_step of joint ``name``, or None."""
        if isinstance(self.max_step, dict):
            return self.max_step.get(name)
        return self.max_step


# --- loading ---------------------------------------------------------------------------


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(exc: ValidationError, source: str) -> str:
    """The first error as one line, ``<source>: <field.path>: <problem>; <fix>``."""
    misspelled = describe_misspelling(exc, source)
    if misspelled is not None:
        return misspelled
    errors = exc.errors()
    err = errors[0]
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    got = _short(err.get("input"))
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        msg = "unknown field; remove it or check its spelling"
    elif kind == "missing":
        msg = "required field is missing; add it"
    elif kind == "greater_than":
        msg = f"must be > {ctx.get('gt'):g}, got {got}; give a positive number"
    elif kind == "greater_than_equal":
        msg = f"must be >= {ctx.get('ge'):g}, got {got}; give a non-negative number"
    elif kind == "too_short":
        msg = f"needs at least {ctx.get('min_length')} entry; add one"
    elif kind == "string_too_short":
        msg = "must not be empty; write a name"
    elif kind == "finite_number":
        msg = "must be a finite number; leave the field out (or null) for no limit"
    elif kind in ("float_parsing", "float_type"):
        msg = f"must be a number, got {got}; write a number such as 0.5"
    elif kind == "literal_error":
        msg = f"must be {ctx.get('expected')}, got {got}; use one of these"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        msg = f"must be a mapping of field: value, got {got}; write it as one (see docs/safety.md)"
    elif kind == "string_type":
        msg = f"must be text, got {got}; write a name"
    elif kind == "value_error":
        msg = str(ctx.get("error", err["msg"]))
    else:
        msg = f"{err['msg']}, got {got}; see docs/safety.md for this field"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    # Validators on the top-level model name the field path in their own message.
    head = f"{source}: {loc}: " if loc else f"{source}: "
    return (head + msg + more).replace("\n", " ")


def parse_limits(
    data: Any, source: str = "<limits>", joint_names: Sequence[str] | None = None
) -> SafetyLimits:
    """Validate a mapping as :class:`SafetyLimits`; errors are one :class:`SafetyConfigError` line.

    With ``joint_names`` (the robot's actuated joints, in command order), a joint the robot
    does not have, or a robot joint without limits, is an error, and the returned limits list
    the joints in ``joint_names`` order.
    """
    if not isinstance(data, Mapping):
        raise SafetyConfigError(
            f"{source}: top level must be a mapping of field: value; write the limits as in docs/safety.md"
        )
    try:
        limits = SafetyLimits.model_validate(dict(data))
    except ValidationError as exc:
        raise SafetyConfigError(_describe(exc, source)) from None
    if joint_names is None:
        return limits
    names = [str(n) for n in joint_names]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SafetyConfigError(
            f"{source}: robot joint '{dup[0]}' is listed twice; list each robot joint once"
        )
    for name in limits.joints:
        if name not in names:
            raise SafetyConfigError(
                f"{source}: joints.{name}: unknown joint for this robot (its joints are "
                f"{', '.join(names)}); fix the name or remove it"
            )
    for name in names:
        if name not in limits.joints:
            raise SafetyConfigError(
                f"{source}: joints: no limits for robot joint '{name}'; add joints.{name}"
            )
    return limits.model_copy(update={"joints": {n: limits.joints[n] for n in names}})


def load_limits(path: str | Path, joint_names: Sequence[str] | None = None) -> SafetyLimits:
    """Read a limits file (YAML, or JSON by extension) and validate it (see :func:`parse_limits`).

    Raises :class:`SafetyConfigError` with one line such as
    ``configs/safety/x.yaml: joints.bthigh.position: min 1 > max 0.5; swap them``.
    """
    path = Path(path)
    source = str(path)
    if path.is_dir():
        raise SafetyConfigError(f"{source}: is a directory; pass a limits file")
    if not path.is_file():
        raise SafetyConfigError(f"{source}: file not found; pass an existing limits file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SafetyConfigError(
            f"{source}: cannot be read ({exc.strerror or exc}); check its permissions"
        ) from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is fine
    except UnicodeDecodeError as exc:
        raise SafetyConfigError(f"{source}: is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if path.suffix.lower() == ".json":
        try:
            data = json_loads_unique(text)
        except json.JSONDecodeError as exc:
            raise SafetyConfigError(
                f"{source}: line {exc.lineno} is not valid JSON; fix the syntax"
            ) from None
        except DuplicateKeyError as exc:
            raise SafetyConfigError(f"{source}: {exc}") from None
    else:
        # PyYAML is the one import outside numpy/pydantic, and only here: a robot that must run
        # the shield alone can keep its limits as JSON.
        import yaml

        try:
            data = yaml_load_unique(text)
        except DuplicateKeyError as exc:
            raise SafetyConfigError(f"{source}: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise SafetyConfigError(f"{source}:{where} is not valid YAML; fix the syntax") from None
    if data is None:
        raise SafetyConfigError(f"{source}: file is empty; write the limits (see docs/safety.md)")
    return parse_limits(data, source, joint_names)
