"""The explaining path by value: which limit changed a joint, its detail, and the command sent.

Written against the mutants `make mutate` left alive in safety/explain.py (docs/testing.md,
Mutation testing): the per-joint stages of the position, effort and velocity interfaces, the
thresholds past which the position limits are computed exactly, and the details each stage
writes. Every expectation is worked out by hand from the limits written in the test; all go
through ``SafetyShield.filter``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from safety import Intervention, JointState, SafetyShield, ShieldOutput, parse_limits
from safety.shield import ShieldState


def _shield(
    iface: str,
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    box: tuple[float, float] = (-1.0, 1.0),
    period: float = 0.01,
    state: ShieldState | None = None,
    **top: Any,
) -> SafetyShield:
    """Joints 'a' and 'b' with the limits given, sharing one command box."""
    data: dict[str, Any] = {
        "robot": "explain",
        "command_interface": iface,
        "safe_command": "hold" if iface == "position" else "zero",
        "command_box": {"min": box[0], "max": box[1]},
        "joints": {"a": a, "b": b},
        "timing": {"control_period": period, "max_observation_age": 2.0 * period},
        **top,
    }
    return SafetyShield(parse_limits(data), state=state)


def _step(
    sh: SafetyShield, action: tuple[float, float], pos: tuple[float, float], vel=(0.0, 0.0), t: float = 0.0
) -> ShieldOutput:
    js = JointState(("a", "b"), np.array(pos, dtype=float), np.array(vel, dtype=float), t)
    return sh.filter(js, np.array(action, dtype=float), t)


def _what(out: ShieldOutput) -> list[tuple[str, str | None, str]]:
    return [(iv.reason, iv.joint, iv.detail) for iv in out.interventions]


def _values(ivs: tuple[Intervention, ...]) -> list[float | None]:
    """Requested, sent, requested, sent, ... of each intervention in turn."""
    return [x for iv in ivs for x in (iv.requested, iv.sent)]


HARD = {"min": -1.0, "max": 1.0}
SOFT = {"min": -1.0, "max": 1.0, "soft_min": -0.8, "soft_max": 0.8}


# --- position interface ------------------------------------------------------------------


def test_position_command_below_the_range_names_the_soft_or_the_hard_minimum() -> None:
    sh = _shield("position", {"position": SOFT}, {"position": HARD}, box=(-2.0, 2.0))
    out = _step(sh, (-0.95, -1.5), (0.0, 0.0))
    assert out.command.tolist() == [-0.8, -1.0]
    assert _what(out) == [
        ("soft_limit", "a", "position min -0.8"),  # a soft margin: the soft limit binds
        ("position_limit", "b", "position min -1"),  # none: the hard limit itself
    ]
    assert _values(out.interventions) == [-0.95, -0.8, -1.5, -1.0]


def test_position_acceleration_limit_bounds_the_change_of_the_step() -> None:
    # 100 rad/s^2 at 100 Hz: the per-step displacement may change by 100 * 0.01^2 = 0.01
    sh = _shield("position", {"position": HARD, "acceleration": 100.0}, {"position": HARD})
    sent, details = [], []
    for k, target in enumerate([0.5, 0.5, 0.5, -0.5]):
        out = _step(sh, (target, 0.0), (0.0, 0.0), t=0.01 * k)  # the robot does not follow
        assert [(iv.reason, iv.joint) for iv in out.interventions] == [("rate_limit", "a")]
        sent.append(out.command[0])
        details.append(out.interventions[0].detail)
    # from rest at 0 (the measured position): displacements 0.01, 0.02, 0.03, each 0.01 more
    # than the step before (the first one's from the measured 0 counts: until 2026-12-07 the
    # second step forgot it and moved 0.01 again); then it cannot even reverse: 0.03 - 0.01.
    # The centre is last + (last - prev): 0, 0.01 + 0.01, 0.03 + 0.02, 0.06 + 0.03
    assert sent == pytest.approx([0.01, 0.03, 0.06, 0.08], abs=1e-12)
    assert details == [
        "acceleration: within 0.01 of 0",
        "acceleration: within 0.01 of 0.02",
        "acceleration: within 0.01 of 0.05",
        "acceleration: within 0.01 of 0.09",
    ]


def test_position_velocity_and_max_step_details_name_their_centre() -> None:
    # a: 2 rad/s at 100 Hz = 0.02 from the last command (none yet: the measured 0.1);
    # b: at most 0.05 from the measured position
    sh = _shield("position", {"position": HARD, "velocity": 2.0}, {"position": HARD}, max_step={"b": 0.05})
    out = _step(sh, (0.5, 0.5), (0.1, 0.1))
    assert out.command.tolist() == pytest.approx([0.12, 0.15], abs=1e-12)
    assert _what(out) == [
        ("velocity_limit", "a", "velocity: within 0.02 of last 0.1"),
        ("max_step", "b", "within 0.05 of measured position 0.1"),
    ]


# --- effort interface: smoothness against safety ------------------------------------------


def test_a_hard_limit_overriding_a_smoothness_limit_is_recorded_on_the_joint_with_a_note() -> None:
    # a: 10 (units/s) at 100 Hz = 0.1 per step; b: max_step 0.1. Both were last sent toward
    # the hard limit they are now beyond, so zeroing the outward command breaks the ramp.
    state = ShieldState(last_command=[-0.9, 0.9])
    sh = _shield(
        "effort",
        {"position": HARD, "acceleration": 10.0},
        {"position": HARD},
        max_step={"b": 0.1},
        state=state,
    )
    out = _step(sh, (-0.9, 0.9), (-1.02, 1.02))
    assert out.command.tolist() == [0.0, 0.0]
    lo = "at/beyond hard min -1 (q=-1.02); outward command zeroed"
    hi = "at/beyond hard max 1 (q=1.02); outward command zeroed"
    note = "; overrides a smoothness limit"
    assert _what(out) == [
        ("position_limit", "a", lo),
        ("rate_limit", "a", "rate: within 0.1 of last command -0.9"),
        ("position_limit", "a", lo + note),
        ("position_limit", "b", hi),
        ("max_step", "b", "within 0.1 of last command 0.9"),
        ("position_limit", "b", hi + note),
    ]
    assert _values(out.interventions) == pytest.approx(
        [-0.9, 0.0, 0.0, -0.8, -0.8, 0.0, 0.9, 0.0, 0.0, 0.8, 0.8, 0.0], abs=1e-12
    )


def test_rate_and_max_step_hold_a_falling_command_within_reach_of_the_last_one() -> None:
    state = ShieldState(last_command=[0.5, 0.5])
    sh = _shield("effort", {"acceleration": 10.0}, {}, max_step={"b": 0.1}, state=state)
    out = _step(sh, (-1.0, -1.0), (0.0, 0.0))
    assert out.command.tolist() == pytest.approx([0.4, 0.4], abs=1e-12)
    assert _what(out) == [
        ("rate_limit", "a", "rate: within 0.1 of last command 0.5"),
        ("max_step", "b", "within 0.1 of last command 0.5"),
    ]


# --- effort interface: position and velocity limits ---------------------------------------


def test_effort_exactly_at_a_hard_limit_is_zeroed_outward_and_just_inside_it_is_not() -> None:
    sh = _shield("effort", {"position": HARD}, {"position": HARD})
    out = _step(sh, (-0.5, 0.5), (-1.0, 1.0))
    assert out.command.tolist() == [0.0, 0.0]
    assert _what(out) == [
        ("position_limit", "a", "at/beyond hard min -1 (q=-1); outward command zeroed"),
        ("position_limit", "b", "at/beyond hard max 1 (q=1); outward command zeroed"),
    ]
    # a billionth inside, with no soft margin, the whole command is allowed (no crossing
    # bound on effort: that belongs to the velocity interface)
    out = _step(sh, (-1.0, 1.0), (-1.0 + 1e-9, 1.0 - 1e-9), t=0.01)
    assert out.command.tolist() == [-1.0, 1.0] and out.interventions == ()


def test_effort_soft_margin_scales_the_effort_limited_command() -> None:
    # a: effort 50 at 100 per command unit -> |command| <= 0.5; at -0.9, halfway through the
    # lower soft margin [-1, -0.8], the outward command is scaled to 0.5 * 0.1 / 0.2 = 0.25
    a = {"position": SOFT, "effort": 50.0, "effort_per_command": 100.0}
    sh = _shield("effort", a, {"position": SOFT})
    out = _step(sh, (-1.0, 0.0), (-0.9, 0.0))
    assert out.command.tolist() == pytest.approx([-0.25, 0.0], abs=1e-12)
    assert _what(out) == [
        ("effort_limit", "a", "effort limit ±0.5 (command units)"),
        ("soft_limit", "a", "in the soft margin below -0.8 (q=-0.9); outward command scaled down"),
    ]
    assert _values(out.interventions) == pytest.approx([-1.0, -0.5, -0.5, -0.25], abs=1e-12)


def test_effort_velocity_limit_zeroes_torque_only_along_an_overspeed() -> None:
    sh = _shield("effort", {"position": SOFT, "velocity": 0.5}, {"position": SOFT, "velocity": 0.5})
    # over speed both ways: torque along the motion is zeroed
    out = _step(sh, (0.5, -0.5), (0.0, 0.0), vel=(3.0, -3.0))
    assert out.command.tolist() == [0.0, 0.0]
    assert _what(out) == [
        ("velocity_limit", "a", "velocity 3 > limit 0.5; torque along it zeroed"),
        ("velocity_limit", "b", "velocity -3 < -0.5; torque along it zeroed"),
    ]
    # braking torque is allowed; past the box only the box clips it
    out = _step(sh, (-1.5, 1.5), (0.0, 0.0), vel=(3.0, -3.0), t=0.01)
    assert out.command.tolist() == [-1.0, 1.0]
    assert [(iv.reason, iv.joint) for iv in out.interventions] == [("clipped_box", "a"), ("clipped_box", "b")]
    # exactly at the speed limit is not over it, also where the position limits are computed
    out = _step(sh, (1.5, -1.5), (-0.9, 0.9), vel=(0.5, -0.5), t=0.02)
    assert out.command.tolist() == [1.0, -1.0]
    assert [(iv.reason, iv.joint) for iv in out.interventions] == [("clipped_box", "a"), ("clipped_box", "b")]
    # in a soft margin, at rest, a command away from the limit is only clipped by the box
    # (the velocity limit is no static bound on effort)
    out = _step(sh, (-1.5, 1.5), (0.9, -0.9), t=0.03)
    assert out.command.tolist() == [-1.0, 1.0]
    assert [(iv.reason, iv.joint) for iv in out.interventions] == [("clipped_box", "a"), ("clipped_box", "b")]


def test_effort_at_exactly_the_soft_limit_passes_the_full_command() -> None:
    # the margin's scale is (q - min) / (soft_min - min) = 1 there; computed as
    # -0.1 * 0.7 / 0.7 in floats it would come out one ulp short of -0.1
    soft = {"min": -1.0, "max": 1.0, "soft_min": -0.3, "soft_max": 0.3}
    sh = _shield("effort", {"position": soft}, {"position": soft}, box=(-0.1, 0.1))
    out = _step(sh, (-0.1, 0.1), (-0.3, 0.3))
    assert out.command.tolist() == [-0.1, 0.1] and out.interventions == ()


def test_soft_margins_far_from_zero_are_still_seen() -> None:
    # a range [1000, 1004] with soft range [1001, 1003]: 1e-7 into a margin (of width 1), the
    # outward command is scaled to 1 - 1e-7
    lim = {"position": {"min": 1000.0, "max": 1004.0, "soft_min": 1001.0, "soft_max": 1003.0}}
    sh = _shield("effort", lim, dict(lim))
    out = _step(sh, (-1.0, 1.0), (1001.0 - 1e-7, 1003.0 + 1e-7))
    assert out.command.tolist() == pytest.approx([-(1.0 - 1e-7), 1.0 - 1e-7], abs=1e-12)
    assert [(iv.reason, iv.joint) for iv in out.interventions] == [("soft_limit", "a"), ("soft_limit", "b")]


# --- velocity interface ---------------------------------------------------------------------


def test_velocity_soft_margin_scales_the_speed_limited_command() -> None:
    # a: 2 rad/s at -0.9 (halfway through the margin [-1, -0.8]): -2 scaled to -1
    sh = _shield("velocity", {"position": SOFT, "velocity": 2.0}, {"velocity": 2.0}, box=(-3.0, 3.0))
    out = _step(sh, (-3.0, -2.5), (-0.9, 0.0))
    assert out.command.tolist() == pytest.approx([-1.0, -2.0], abs=1e-12)
    assert _what(out) == [
        ("velocity_limit", "a", "velocity limit ±2"),
        ("soft_limit", "a", "in the soft margin below -0.8 (q=-0.9); outward command scaled down"),
        ("velocity_limit", "b", "velocity limit ±2"),
    ]


def test_velocity_slows_so_one_long_period_cannot_cross_a_hard_limit() -> None:
    # a period of 2 s: from -9, at most (-10 - -9) / 2 = -0.5 keeps the joint inside [-10, 10]
    lim = {"position": {"min": -10.0, "max": 10.0}}
    sh = _shield("velocity", lim, dict(lim), period=2.0)
    out = _step(sh, (-1.0, 1.0), (-9.0, 9.0))
    assert out.command.tolist() == [-0.5, 0.5]
    assert _what(out) == [
        ("position_limit", "a", "would cross hard min -10 within one control period (q=-9)"),
        ("position_limit", "b", "would cross hard max 10 within one control period (q=9)"),
    ]


def test_where_the_soft_and_the_crossing_bound_are_equal_the_soft_margin_is_named() -> None:
    # period 0.5 s, at -0.75: crossing bound (-1 - -0.75) / 0.5 = -0.5, soft bound
    # -1 * 0.25 / 0.5 = -0.5; a tie goes to the soft margin (the crossing one must be tighter)
    soft = {"min": -1.0, "max": 1.0, "soft_min": -0.5, "soft_max": 0.5}
    sh = _shield("velocity", {"position": soft}, {"position": soft}, period=0.5)
    out = _step(sh, (-1.0, 1.0), (-0.75, 0.75))
    assert out.command.tolist() == [-0.5, 0.5]
    assert _what(out) == [
        ("soft_limit", "a", "in the soft margin below -0.5 (q=-0.75); outward command scaled down"),
        ("soft_limit", "b", "in the soft margin above 0.5 (q=0.75); outward command scaled down"),
    ]


# Found by a search over random limits, each a position q where the exact crossing bound
# (hard - q) / period is tighter than the speed limit (by about 1e-15 relative) although q is
# past hard - speed * period in floats. The fast path's thresholds are moved 1e-9 * (1 + |t|)
# toward the middle so that such a q still gets the exact bound: "ulp" one ulp (about 1e-12)
# past the unmoved threshold; "edge" exactly on the moved one, with limits of order 6e7 where
# the rounding of hard - speed * period is as large as that move.
ULP_CASES = [
    # side, hard limit, box (speed limit), period, q
    ("min", -7.571790498095206, 10208.929118370786, 0.8027194735804342, 8187.334417220468),
    ("max", 5.118192438851869, 13161.283852558792, 0.6226551095628355, -8189.822446763721),
    ("min", -60300077.1548543, 3.8569048168278837, 15634318.1992318, 0.01558267426721155),
    ("max", 60300077.1548543, 3.8569048168278837, 15634318.1992318, -0.01558267426721155),
    # hard limit and speed * period both large and nearly cancelling: the threshold is near 0,
    # the rounding is of the order of the operands (the move once scaled with the threshold only)
    ("min", -899623595.1081078, 27627742.28716031, 32.56232759399211, -0.07120501887966167),
    ("max", 899623595.1081078, 27627742.28716031, 32.56232759399211, 0.07120501887966167),
]


@pytest.mark.parametrize(
    ("side", "hard", "speed", "period", "q"),
    ULP_CASES,
    ids=["ulp-min", "ulp-max", "edge-min", "edge-max", "cancel-min", "cancel-max"],
)
def test_a_crossing_bound_one_ulp_inside_the_speed_limit_still_applies(
    side: str, hard: float, speed: float, period: float, q: float
) -> None:
    exact = (Fraction(hard) - Fraction(q)) / Fraction(period)
    sign = -1.0 if side == "min" else 1.0
    assert abs(exact) < Fraction(speed)  # the premise, in exact arithmetic
    span = 3.0 * speed * period  # the other hard limit, far from q
    lim = {
        "position": {"min": hard, "max": hard + span} if side == "min" else {"min": hard - span, "max": hard}
    }
    sh = _shield("velocity", lim, dict(lim), box=(-speed, speed), period=period)
    out = _step(sh, (sign * speed, 0.0), (q, q))
    cmd = out.command[0]
    assert abs(cmd) < speed
    assert abs(cmd - float(exact)) <= 4 * math.ulp(speed)
    assert [(iv.reason, iv.joint) for iv in out.interventions] == [("position_limit", "a")]
