"""Reading the action, the OOD gate, the joint-state layout and the envelope, by value.

Written against the mutants `make mutate` left alive in safety/action.py and safety/layout.py
(docs/testing.md, Mutation testing). Everything goes through the public API (`parse_limits`,
`SafetyShield.filter`, `reset_estop`, `state`); expectations are by hand from the limits below.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from safety import JointState, SafetyShield, parse_limits
from safety.types import Intervention


def _data(**extra: Any) -> dict[str, Any]:
    """Effort joints 'a', 'b' with command box [-1, 1] and no other limit: inside the box a
    command is sent exactly as asked."""
    data: dict[str, Any] = {
        "robot": "mut",
        "command_interface": "effort",
        "safe_command": "zero",
        "command_box": {"min": -1.0, "max": 1.0},
        "joints": {"a": {}, "b": {}},
        "timing": {"control_period": 0.01, "max_observation_age": 0.05},
    }
    data.update(extra)
    return data


def _js(pos: Any, vel: Any = (0.0, 0.0), stamp: float = 0.0, names: Any = ("a", "b")) -> JointState:
    return JointState(names, np.array(pos), np.array(vel), stamp)


def _one(out: Any) -> Intervention:
    (iv,) = out.interventions
    return iv


# --- reading the action ----------------------------------------------------------------


def test_an_action_numpy_cannot_read_is_a_shape_mismatch_naming_its_type():
    sh = SafetyShield(parse_limits(_data()))
    out = sh.filter(_js((0.0, 0.0)), [0.1, [0.2, 0.3]], 0.0)  # ragged: np.asarray raises
    assert out.safe and out.command.tolist() == [0.0, 0.0]
    assert _one(out) == ("shape_mismatch", None, None, None, "action of type list is not an array")
    assert sh.summary()["interventions"]["shape_mismatch"] == 1


def test_a_non_finite_action_names_the_first_joint_that_is_not_finite():
    sh = SafetyShield(parse_limits(_data()))
    out = sh.filter(_js((0.0, 0.0)), np.array([0.1, math.nan]), 0.0)
    assert out.safe and out.command.tolist() == [0.0, 0.0]
    assert _one(out) == ("nan_action", None, None, None, "action for 'b' is not finite")
    out = sh.filter(_js((0.0, 0.0), stamp=0.01), [math.inf, -math.inf], 0.01)
    assert _one(out) == ("nan_action", None, None, None, "action for 'a' is not finite")


def test_finite_actions_whose_sum_overflows_are_clipped_not_refused():
    # 1e308 + 1e308 is inf: the quick sum check must fall through to the per-value check
    sh = SafetyShield(parse_limits(_data()))
    out = sh.filter(_js((0.0, 0.0)), [1e308, 1e308], 0.0)
    assert not out.safe and out.command.tolist() == [1.0, 1.0]
    assert [(iv.reason, iv.joint, iv.requested, iv.sent) for iv in out.interventions] == [
        ("clipped_box", "a", 1e308, 1.0),
        ("clipped_box", "b", 1e308, 1.0),
    ]


# --- the OOD gate ------------------------------------------------------------------------


def _ood_shield(score: Any, fallback: Any = None) -> SafetyShield:
    kind = "safe" if fallback is None else "policy"
    limits = parse_limits(_data(ood={"threshold": 0.5, "fallback": kind}))
    return SafetyShield(limits, ood_score=score, fallback_policy=fallback)


def test_the_ood_callables_get_float64_arrays_even_from_integer_inputs():
    seen: list[tuple[str, list[float], str, list[float]]] = []

    def score(o: np.ndarray, a: np.ndarray) -> float:
        seen.append((o.dtype.name, o.tolist(), a.dtype.name, a.tolist()))
        return 0.0

    sh = _ood_shield(score)
    out = sh.filter(_js(np.array([1, 0]), np.array([0, 2])), np.array([0, 1]), 0.0)
    assert out.command.tolist() == [0.0, 1.0] and not out.interventions
    # by default the obs is the actuated positions, then the velocities
    assert seen[-1] == ("float64", [1.0, 0.0, 0.0, 2.0], "float64", [0.0, 1.0])
    out = sh.filter(_js((0.0, 0.0), stamp=0.01), [-1, 0], 0.01, obs=[3, 4, 5])
    assert out.command.tolist() == [-1.0, 0.0] and not out.interventions
    assert seen[-1] == ("float64", [3.0, 4.0, 5.0], "float64", [-1.0, 0.0])


def test_an_obs_the_gate_cannot_read_stops_with_the_error_named():
    sh = _ood_shield(lambda o, a: 0.0)
    out = sh.filter(_js((0.0, 0.0)), [0.2, 0.2], 0.0, obs="not numbers")
    assert out.safe and out.command.tolist() == [0.0, 0.0]
    iv = _one(out)
    assert (iv.reason, iv.requested) == ("shape_mismatch", None)
    assert iv.detail == (
        "malformed input: obs for the OOD gate: ValueError: could not convert string to float: 'not numbers'"
    )
    assert sh.state.obs_ok is False


@pytest.mark.parametrize(
    ("value", "requested", "why"),
    [
        (0.75, 0.75, "ensemble disagreement 0.75 > threshold 0.5"),
        (12345.678, 12345.678, "ensemble disagreement 1.235e+04 > threshold 0.5"),
        (-math.inf, None, "ensemble disagreement -inf is not finite"),
        (math.inf, None, "ensemble disagreement inf is not finite"),
        (math.nan, None, "ensemble disagreement nan is not finite"),
    ],
)
def test_an_ood_score_that_fails_the_gate_sends_the_safe_command_and_says_why(
    value: float, requested: float | None, why: str
):
    sh = _ood_shield(lambda o, a: value)
    out = sh.filter(_js((0.0, 0.0)), [0.2, 0.2], 0.0)
    assert out.safe and out.command.tolist() == [0.0, 0.0]
    assert _one(out) == ("ood", None, requested, None, f"{why}; sent the safe command")


def test_a_scorer_that_raises_sends_the_safe_command_with_its_error():
    def score(o: np.ndarray, a: np.ndarray) -> float:
        raise ValueError("ensemble offline")

    out = _ood_shield(score).filter(_js((0.0, 0.0)), [0.2, 0.2], 0.0)
    assert out.safe and out.command.tolist() == [0.0, 0.0]
    detail = "ood_score failed (ValueError: ensemble offline); sent the safe command"
    assert _one(out) == ("ood", None, None, None, detail)


def test_the_fallback_policy_acts_on_the_obs_and_the_score_is_recorded():
    def fallback(o: np.ndarray) -> np.ndarray:
        return np.array([-o[0], o[2]])  # minus a's position, a's velocity

    sh = _ood_shield(lambda o, a: 0.75, fallback)
    out = sh.filter(_js((0.25, 0.0), (0.5, 0.0)), [0.9, 0.9], 0.0)
    assert not out.safe and out.command.tolist() == [-0.25, 0.5]
    why = "ensemble disagreement 0.75 > threshold 0.5; sent the fallback policy's action"
    assert _one(out) == ("ood", None, 0.75, None, why)


@pytest.mark.parametrize(
    ("fallback", "problem"),
    [
        (lambda o: (_ for _ in ()).throw(RuntimeError("bc down")), "RuntimeError: bc down"),
        (lambda o: [0.1], "action has 1 values, expected 2"),
        (lambda o: [0.1, math.nan], "action for 'b' is not finite"),
    ],
)
def test_a_failing_fallback_policy_sends_the_safe_command_and_says_why(fallback: Any, problem: str):
    sh = _ood_shield(lambda o, a: 0.75, fallback)
    out = sh.filter(_js((0.25, 0.0)), [0.9, 0.9], 0.0)
    assert out.safe and out.command.tolist() == [0.0, 0.0]
    why = "ensemble disagreement 0.75 > threshold 0.5"
    detail = f"{why}; fallback policy failed ({problem}); sent the safe command"
    assert _one(out) == ("ood", None, 0.75, None, detail)


# --- the joint-state layout --------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "detail"),
    [
        (("a", "a", "b"), "joint_state names 'a' twice"),
        (("b", "x", "b"), "joint_state names 'b' twice"),
        (("a", "x", "y"), "joint_state lacks actuated joint 'b'"),
        (("x", "y", "z"), "joint_state lacks actuated joint 'a'"),
    ],
)
def test_an_unusable_name_list_is_refused_with_the_name_that_is_wrong(names: tuple[str, ...], detail: str):
    sh = SafetyShield(parse_limits(_data()))
    for k in range(2):  # the second step reuses the layout made for the first
        out = sh.filter(_js((0.1, 0.2, 0.3), (0.0, 0.0, 0.0), 0.01 * k, names), [0.5, 0.5], 0.01 * k)
        assert out.safe and out.command.tolist() == [0.0, 0.0]
        assert _one(out) == ("shape_mismatch", None, None, None, detail)
        assert sh.state.obs_ok is False
    out = sh.filter(_js((0.1, 0.2), stamp=0.02), [0.5, 0.5], 0.02)
    assert out.command.tolist() == [0.5, 0.5] and not out.interventions


# --- the envelope ------------------------------------------------------------------------


def _envelope_shield(envelope: dict[str, Any]) -> SafetyShield:
    return SafetyShield(parse_limits(_data(envelope=envelope)))


_TWO_SIDED = {
    "positions": {"a": {"min": -0.5, "max": 0.5}},
    "velocities": {"b": {"min": -2.0, "max": 2.0}},
    "extras": {"body_height": {"min": 0.1, "max": 2.0}},
}


def _assert_envelope_stop(sh: SafetyShield, out: Any, detail: str) -> None:
    assert out.safe and out.command.tolist() == [0.0, 0.0]
    assert _one(out) == ("envelope", None, None, None, detail)
    assert sh.state.estop_latched and sh.state.estop_reason == f"envelope: {detail}"
    assert sh.state.envelope_ok is False and sh.state.envelope_detail == detail


@pytest.mark.parametrize(
    ("pos", "vel", "height", "detail"),
    [
        ((0.75, 0.0), (0.0, 0.0), 1.0, "a position 0.75 > max 0.5"),
        ((-0.75, 0.0), (0.0, 0.0), 1.0, "a position -0.75 < min -0.5"),
        ((0.0, 0.0), (0.0, 3.0), 1.0, "b velocity 3 > max 2"),
        ((0.0, 0.0), (0.0, -3.0), 1.0, "b velocity -3 < min -2"),
        ((0.0, 0.0), (0.0, 0.0), 2.5, "body_height 2.5 > max 2"),
        ((0.0, 0.0), (0.0, 0.0), 0.05, "body_height 0.05 < min 0.1"),
    ],
)
def test_leaving_the_envelope_names_the_value_and_the_bound_it_crossed(
    pos: tuple[float, float], vel: tuple[float, float], height: float, detail: str
):
    sh = _envelope_shield(_TWO_SIDED)
    out = sh.filter(_js(pos, vel), [0.5, 0.5], 0.0, extras={"body_height": height})
    _assert_envelope_stop(sh, out, detail)


def test_values_exactly_on_the_envelope_bounds_are_inside():
    sh = _envelope_shield(_TWO_SIDED)
    steps = [((0.5, 9.0), (9.0, 2.0), 2.0), ((-0.5, -9.0), (-9.0, -2.0), 0.1)]
    for k, (pos, vel, height) in enumerate(steps):
        now = 0.01 * k
        out = sh.filter(_js(pos, vel, now), [0.5, -0.5], now, extras={"body_height": height})
        assert out.command.tolist() == [0.5, -0.5] and not out.interventions, (pos, vel, height)
        assert sh.state.envelope_ok is True and sh.state.envelope_detail == "inside"


def test_one_sided_envelope_bounds_leave_the_other_side_open():
    sh = _envelope_shield(
        {
            "positions": {"a": {"max": 0.5}},
            "velocities": {"b": {"min": -1.0}},
            "extras": {"h": {"min": 0.1}, "t": {"max": 1.0}},
        }
    )
    far = {"h": 1e300, "t": -1e300}
    out = sh.filter(_js((-1e300, 0.0), (0.0, 1e300)), [0.25, 0.25], 0.0, extras=far)
    assert out.command.tolist() == [0.25, 0.25] and not out.interventions
    assert sh.state.envelope_detail == "inside"
    cases = [
        ((0.75, 0.0), (0.0, 0.0), {"h": 1.0, "t": 0.0}, "a position 0.75 > max 0.5"),
        ((0.0, 0.0), (0.0, -1.5), {"h": 1.0, "t": 0.0}, "b velocity -1.5 < min -1"),
        ((0.0, 0.0), (0.0, 0.0), {"h": 0.05, "t": 0.0}, "h 0.05 < min 0.1"),
        ((0.0, 0.0), (0.0, 0.0), {"h": 1.0, "t": 1.5}, "t 1.5 > max 1"),
    ]
    for pos, vel, extras, detail in cases:
        sh.reset()
        _assert_envelope_stop(sh, sh.filter(_js(pos, vel), [0.25, 0.25], 0.0, extras=extras), detail)


def test_an_envelope_joint_is_read_by_name_and_one_the_joint_state_lacks_stops():
    sh = _envelope_shield({"positions": {"rootz": {"min": 0.5}}})
    # rootz absent: b's position (0.7) would pass the bound, but no value is not inside
    out = sh.filter(_js((0.7, 0.7)), [0.25, 0.25], 0.0)
    _assert_envelope_stop(sh, out, "rootz position: joint not in joint_state")
    sh.reset()
    names = ("b", "rootz", "a")
    out = sh.filter(_js((0.7, 1.0, 0.7), (0.0, 0.0, 0.0), 0.0, names), [0.25, -0.25], 0.0)
    assert out.command.tolist() == [0.25, -0.25] and not out.interventions
    out = sh.filter(_js((0.7, 0.2, 0.7), (0.0, 0.0, 0.0), 0.01, names), [0.25, -0.25], 0.01)
    _assert_envelope_stop(sh, out, "rootz position 0.2 < min 0.5")
