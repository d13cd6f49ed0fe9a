"""Inputs an adversarial pass found to slip through (issue 15, items 1-4), and their class:
every comparison a NaN or an infinity can defeat, and every stop that must send what it says."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples
from test_safety_shield import js, limits_dict, shield_for, step

from safety import JointState, SafetyShield, load_limits, parse_limits

ROOT = Path(__file__).resolve().parents[2]
INF, NAN = math.inf, math.nan
HOPPER = ("thigh_joint", "leg_joint", "foot_joint")


def hopper_state(rootz: float, rooty: float = 0.0, stamp: float = 100.0) -> JointState:
    names = (*HOPPER, "rootz", "rooty")
    return JointState(names, np.array([-1.3, -1.3, 0.0, rootz, rooty]), np.zeros(5), stamp)


# --- 1. a non-finite value on a one-sided envelope bound ---------------------------------------


def test_issue_example_inf_rootz_on_the_shipped_hopper_sends_the_safe_command() -> None:
    lim = load_limits(ROOT / "configs/safety/hopper.yaml", joint_names=list(HOPPER))
    sh = SafetyShield(lim)
    out = sh.filter(hopper_state(INF), np.array([0.1, 0.1, 0.1]), 100.0)
    assert out.safe
    assert [(iv.reason, iv.joint) for iv in out.interventions] == [("nan_observation", None)]
    np.testing.assert_array_equal(out.command, [0.0, 0.0, 0.0])
    assert not sh.state.estop_latched  # a sensor glitch stops without latching
    # after an operator e-stop, that observation must not clear the latch
    sh.estop("operator")
    sh.filter(hopper_state(INF, stamp=100.008), np.array([0.1, 0.1, 0.1]), 100.008)
    res = sh.reset_estop(100.008)
    assert not res.ok and "not usable" in res.message
    # a finite, healthy state clears it
    sh.filter(hopper_state(1.2, stamp=100.016), np.array([0.1, 0.1, 0.1]), 100.016)
    assert sh.reset_estop(100.016).ok


@pytest.mark.parametrize(
    ("bound", "value"),
    [({"min": 0.5}, INF), ({"max": 0.5}, -INF), ({"min": 0.5}, NAN), ({"max": 0.5}, NAN)],
    ids=["min-only+inf", "max-only-inf", "min-only-nan", "max-only-nan"],
)
@pytest.mark.parametrize("where", ["positions", "velocities", "extras"])
def test_non_finite_value_on_a_one_sided_bound_is_a_nan_observation(
    bound: dict[str, float], value: float, where: str
) -> None:
    """A one-sided bound leaves the other side at infinity, where `lo <= inf <= inf` holds."""
    names = ("a", "b", "root")
    key = "body" if where == "extras" else "root"
    sh = shield_for("effort", envelope={where: {key: bound}})
    pos, vel = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    extras = None
    if where == "extras":
        extras = {"body": value}
    else:
        (pos if where == "positions" else vel)[2] = value
    state = JointState(names, np.array(pos), np.array(vel), 1.0)
    out = sh.filter(state, np.array([0.1, 0.1]), 1.001, extras=extras)
    assert out.safe and [iv.reason for iv in out.interventions] == ["nan_observation"]
    np.testing.assert_array_equal(out.command, [0.0, 0.0])
    sh.estop("operator")
    assert not sh.reset_estop(1.001).ok


@settings(max_examples=examples(150), deadline=None)
@given(
    st.sampled_from(["positions", "velocities", "extras"]),
    st.sampled_from([{"min": -0.5}, {"max": 0.5}, {"min": -0.5, "max": 0.5}]),
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([INF, -INF, NAN, 1e308, -1e308, 5e-324, 0.5, -0.5]),
    ),
)
def test_any_envelope_value_is_inside_outside_or_not_finite_never_a_pass_for_inf(
    where: str, bound: dict[str, float], value: float
) -> None:
    """The class: every float against every bound shape. Expectation written from the doc:
    non-finite -> nan_observation; finite outside -> envelope; finite inside -> passes."""
    key = "body" if where == "extras" else "root"
    sh = shield_for("effort", envelope={where: {key: bound}})
    pos, vel = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    extras = {"body": value} if where == "extras" else None
    if where != "extras":
        (pos if where == "positions" else vel)[2] = value
    out = sh.filter(
        JointState(("a", "b", "root"), np.array(pos), np.array(vel), 1.0), [0.1, 0.1], 1.001, extras=extras
    )
    lo, hi = bound.get("min", -INF), bound.get("max", INF)
    if not math.isfinite(value):
        expected = ["nan_observation"]
    elif not lo <= value <= hi:
        expected = ["envelope"]
    else:
        expected = []
    assert [iv.reason for iv in out.interventions] == expected
    assert out.safe == bool(expected)


# --- 2. a non-finite OOD score -----------------------------------------------------------------


@pytest.mark.parametrize("score", [-INF, NAN, INF])
@pytest.mark.parametrize("fallback", ["safe", "policy"])
def test_non_finite_ood_score_switches_to_the_fallback(score: float, fallback: str) -> None:
    lim = parse_limits(limits_dict("effort", ood={"threshold": 0.5, "fallback": fallback}))
    fb = np.array([-0.05, 0.05])
    sh = SafetyShield(
        lim, ood_score=lambda o, a: score, fallback_policy=(lambda o: fb) if fallback == "policy" else None
    )
    out = step(sh, np.array([0.3, 0.3]))
    ood = out.interventions[0]
    assert ood.reason == "ood" and ood.requested is None and "not finite" in ood.detail
    if fallback == "safe":
        assert out.safe
        np.testing.assert_array_equal(out.command, [0.0, 0.0])
    else:
        assert not out.safe
        np.testing.assert_array_equal(out.command, fb)


def test_finite_score_at_the_threshold_passes() -> None:
    lim = parse_limits(limits_dict("effort", ood={"threshold": 0.5}))
    sh = SafetyShield(lim, ood_score=lambda o, a: 0.5)
    out = step(sh, np.array([0.3, 0.3]))
    assert out.interventions == ()
    np.testing.assert_array_equal(out.command, [0.3, 0.3])


# --- 3. safe_command() is what a stop sends --------------------------------------------------


def panda_position_limits() -> dict[str, Any]:
    """Panda joint 4 as a position-interface joint: its range [-3.0718, -0.0698] excludes 0."""
    joint = {"position": {"min": -3.0718, "max": -0.0698}, "command": {"min": -3.0718, "max": -0.0698}}
    return {
        "robot": "panda4",
        "command_interface": "position",
        "safe_command": "hold",
        "joints": {"panda_joint4": joint},
        "timing": {"control_period": 0.05, "max_observation_age": 0.25},
    }


def test_safe_command_on_a_fresh_hold_shield_is_what_a_stop_sends() -> None:
    sh = SafetyShield(parse_limits(panda_position_limits()))
    before = sh.safe_command()
    np.testing.assert_allclose(before, [0.5 * (-3.0718 - 0.0698)])  # the middle of the range
    assert sh.state.hold_target is None  # asking does not latch anything
    sh.estop("operator")
    out = sh.watchdog(1.0)  # nothing observed yet: a stop
    assert out is not None and out.safe
    np.testing.assert_array_equal(out.command, before)
    np.testing.assert_array_equal(sh.safe_command(), out.command)


def test_safe_command_after_commands_but_no_accepted_observation_is_the_last_command() -> None:
    sh = shield_for("position")
    sh.state.last_command = [0.25, -0.4]  # e.g. resumed from a saved state
    np.testing.assert_array_equal(sh.safe_command(), [0.25, -0.4])
    out = sh.watchdog(5.0)
    assert out is not None
    np.testing.assert_array_equal(out.command, [0.25, -0.4])


# --- 4. hold only ever targets an accepted measurement ------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "now"),
    [(0.9, 1.05), (1.5, 1.05), (NAN, 1.05)],
    ids=["out-of-order", "future", "nan-stamp"],
)
def test_hold_target_comes_from_the_last_accepted_observation_not_a_rejected_one(
    stamp: float, now: float
) -> None:
    sh = shield_for("position")
    assert not sh.filter(js(pos=(0.3, -0.2), stamp=1.0), np.array([0.3, -0.2]), 1.001).safe
    out = sh.filter(js(pos=(0.7, 0.6), stamp=stamp), np.array([0.3, -0.2]), now)  # rejected
    assert out.safe and out.interventions[0].reason == "stale_observation"
    np.testing.assert_array_equal(out.command, [0.3, -0.2])


def test_hold_target_ignores_an_old_observation() -> None:
    sh = shield_for("position")
    assert not sh.filter(js(pos=(0.3, -0.2), stamp=1.0), np.array([0.3, -0.2]), 1.001).safe
    out = sh.filter(js(pos=(0.7, 0.6), stamp=1.01), np.array([0.3, -0.2]), 1.5)  # 0.49 s old
    assert out.safe
    np.testing.assert_array_equal(out.command, [0.3, -0.2])


def test_hold_target_ignores_an_observation_rejected_for_a_non_finite_envelope_value() -> None:
    sh = shield_for("position", envelope={"positions": {"root": {"min": 0.0}}})
    names = ("a", "b", "root")
    ok = JointState(names, np.array([0.3, -0.2, 1.0]), np.zeros(3), 1.0)
    assert not sh.filter(ok, np.array([0.3, -0.2]), 1.001).safe
    bad = JointState(names, np.array([0.7, 0.6, INF]), np.zeros(3), 1.01)
    out = sh.filter(bad, np.array([0.3, -0.2]), 1.011)
    assert out.safe and out.interventions[0].reason == "nan_observation"
    np.testing.assert_array_equal(out.command, [0.3, -0.2])


def test_hold_before_any_accepted_observation_is_where_a_rejected_one_measured_the_joint() -> None:
    """Until 2026-12-07 a stale first observation left the hold at the middle of the range
    (-1.5708 here): a position robot at -1.0 was driven across its range while stopped. A late
    measurement is still where the robot was; the middle is only for a shield that never saw a
    finite one."""
    sh = SafetyShield(parse_limits(panda_position_limits()))
    state = JointState(("panda_joint4",), np.array([-1.0]), np.zeros(1), 0.5)  # stale at now=2
    out = sh.filter(state, np.array([-1.0]), 2.0)
    assert out.safe and out.interventions[0].reason == "stale_observation"
    np.testing.assert_array_equal(out.command, [-1.0])
    fresh = SafetyShield(parse_limits(panda_position_limits()))
    nan = JointState(("panda_joint4",), np.array([np.nan]), np.zeros(1), 2.0)
    out = fresh.filter(nan, np.array([-1.0]), 2.0)
    np.testing.assert_allclose(out.command, [0.5 * (-3.0718 - 0.0698)])  # nothing finite ever seen


# --- the watchdog's clock ----------------------------------------------------------------------


@pytest.mark.parametrize("now", [-INF, NAN])
def test_watchdog_treats_a_non_finite_clock_as_no_fresh_observation(now: float) -> None:
    sh = shield_for("effort")
    step(sh, np.array([0.3, 0.3]), stamp=1.0, now=1.0)
    out = sh.watchdog(now)
    assert out is not None and out.safe
    np.testing.assert_array_equal(out.command, [0.0, 0.0])


@pytest.mark.parametrize("now", [-INF, NAN])
def test_reset_with_a_non_finite_clock_is_refused(now: float) -> None:
    sh = shield_for("effort")
    step(sh, np.array([0.3, 0.3]), stamp=1.0, now=1.0)
    sh.estop("operator")
    res = sh.reset_estop(now)
    assert not res.ok and "stale" in res.message
    assert sh.state.estop_latched
