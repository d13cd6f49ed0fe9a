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
