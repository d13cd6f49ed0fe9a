"""The shield's step (``SafetyShield.filter``) by value: observation reading, timing, envelope,
the position interface's fast path, and the details and state each refusal leaves behind.

Written against the mutants of ``safety/shield.py`` that ``make mutate`` found alive with the
unit and property tests (docs/testing.md, Mutation testing; the equivalent ones are listed
there). Every expectation is computed by hand from the limits built here, with binary
fractions (0.125, 0.0625, ...) so that the arithmetic is exact.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from safety import JointState, SafetyShield, ShieldOutput, parse_limits

T = 0.125  # control period; with acceleration 4 the position interface's rate is 4 * T**2 = 0.0625
AGE = 0.25  # max_observation_age


def _data(iface: str = "effort", joint: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """Joints 'a', 'b' with command box [-1, 1] and ``joint``'s limits (default: position [-1, 1])."""
    j: dict[str, Any] = joint if joint is not None else {"position": {"min": -1.0, "max": 1.0}}
    data: dict[str, Any] = {
        "robot": "mut",
        "command_interface": iface,
        "safe_command": "hold" if iface == "position" else "zero",
        "command_box": {"min": -1.0, "max": 1.0},
        "joints": {"a": dict(j), "b": dict(j)},
        "timing": {"control_period": T, "max_observation_age": AGE},
    }
    data.update(top)
    return data


def _shield(
    iface: str = "effort", joint: dict[str, Any] | None = None, ood_score: Any = None, **top: Any
) -> SafetyShield:
    return SafetyShield(parse_limits(_data(iface, joint, **top)), ood_score=ood_score)


def _js(
    pos: Any = (0.0, 0.0), stamp: float = 0.0, vel: Any = (0.0, 0.0), names: Any = ("a", "b")
) -> JointState:
    p = np.array(pos, dtype=np.float64) if isinstance(pos, tuple) else pos
    v = np.array(vel, dtype=np.float64) if isinstance(vel, tuple) else vel
    return JointState(names, p, v, stamp)


def _one(out: ShieldOutput) -> tuple[str, str]:
    """(reason, detail) of a safe command's single intervention."""
    assert out.safe
    (iv,) = out.interventions
    assert (iv.joint, iv.sent) == (None, None)
    return iv.reason, iv.detail


# --- refusals: details, counters and the state they leave ------------------------------------


def test_an_unreadable_joint_state_is_a_shape_mismatch_that_names_the_exception() -> None:
    sh = _shield()
    ok = sh.filter(_js(), np.array([0.5, 0.5]), 0.0)
    assert ok.command.tolist() == [0.5, 0.5] and sh.state.obs_ok is True
    out = sh.filter(JointState(("a", "b"), 5, np.zeros(2), 0.0), np.array([0.5, 0.5]), 0.0)  # type: ignore[arg-type]
    assert out.command.tolist() == [0.0, 0.0]
    assert _one(out) == ("shape_mismatch", "malformed input: TypeError: 'int' object is not iterable")
    assert sh.state.obs_ok is False
    sh.estop("button")
    r = sh.reset_estop()
    assert (r.ok, r.message) == (
        False,
        "refused: the newest observation was not usable; wait for a valid one",
    )


def test_a_missing_action_says_the_policy_failed() -> None:
    sh = _shield()
    out = sh.filter(_js(), None, 0.0)
    assert out.command.tolist() == [0.0, 0.0]
    assert _one(out) == ("nan_action", "no action (the policy failed)")


def test_an_ood_gate_that_refuses_without_a_reason_is_an_internal_error() -> None:
    # the real gate always says why; a gate that does not is a bug of the shield's own
    sh = _shield(ood={"threshold": 1.0}, ood_score=lambda o, a: 0.0)
    sh._ood = lambda pos, vel, act, obs: (None, None)  # type: ignore[assignment,method-assign]
    out = sh.filter(_js(), np.array([0.5, 0.5]), 0.0)
    assert out.command.tolist() == [0.0, 0.0]
    assert _one(out) == (
        "internal_error",
        "internal error: RuntimeError: the OOD gate refused the action without saying why",
    )
    assert sh.state.obs_ok is False


def test_an_obs_the_ood_gate_cannot_read_marks_the_observation_unusable() -> None:
    sh = _shield(ood={"threshold": 1.0}, ood_score=lambda o, a: 0.0)
    out = sh.filter(_js(), np.array([0.5, 0.5]), 0.0, obs="not numbers")  # type: ignore[arg-type]
    reason, detail = _one(out)
    assert reason == "shape_mismatch" and detail.startswith("malformed input: obs for the OOD gate: ")
    assert sh.state.obs_ok is False


def test_names_listed_twice_refuse_with_the_layout_error_counted_once() -> None:
    sh = _shield()
    out = sh.filter(_js(names=("a", "a")), np.array([0.5, 0.5]), 0.0)
    assert _one(out) == ("shape_mismatch", "joint_state names 'a' twice")
    assert (sh.state.steps, sh.state.intervened_steps, sh.state.counts["shape_mismatch"]) == (1, 1, 1)
    assert sh.state.obs_ok is False


def test_a_length_mismatch_names_the_lengths_and_is_counted_once() -> None:
    sh = _shield()
    out = sh.filter(_js(pos=(0.0, 0.0, 0.0)), np.array([0.5, 0.5]), 0.0)
    assert _one(out) == ("shape_mismatch", "joint_state has 2 names, 3 positions, 2 velocities")
    assert (sh.state.steps, sh.state.intervened_steps, sh.state.counts["shape_mismatch"]) == (1, 1, 1)
    assert sum(sh.state.counts.values()) == 1


def test_a_name_list_changed_in_place_is_read_again() -> None:
    sh = _shield()
    names = ["a", "b"]
    first = sh.filter(_js(names=names), np.array([0.5, 0.5]), 0.0)
    assert first.command.tolist() == [0.5, 0.5] and not first.interventions
    names[1] = "c"  # the same list object, now without 'b'
    out = sh.filter(_js(names=names, stamp=0.125), np.array([0.5, 0.5]), 0.125)
    assert _one(out) == ("shape_mismatch", "joint_state lacks actuated joint 'b'")


@pytest.mark.parametrize("kind", [tuple, list])
def test_positions_and_velocities_may_be_plain_sequences(kind: type) -> None:
    sh = _shield("position")
    js = JointState(("a", "b"), kind([0.25, -0.5]), kind([0.0, 0.0]), 0.0)  # type: ignore[arg-type]
    out = sh.filter(js, np.array([0.25, -0.5]), 0.0)
    assert out.command.tolist() == [0.25, -0.5] and not out.interventions
    assert sh.state.last_position == [0.25, -0.5]


@pytest.mark.parametrize("column", ["position", "velocity"])
def test_a_column_of_positions_or_velocities_is_a_shape_mismatch(column: str) -> None:
    sh = _shield()
    col, flat = np.array([[0.0], [0.0]]), np.array([0.0, 0.0])
    js = _js(pos=col, vel=flat) if column == "position" else _js(pos=flat, vel=col)
    out = sh.filter(js, np.array([0.5, 0.5]), 0.0)
    assert _one(out) == (
        "shape_mismatch",
        "malformed input: TypeError: unsupported operand type(s) for +: 'int' and 'list'",
    )


def test_a_non_finite_observation_names_the_first_bad_joint() -> None:
    sh = _shield()
    out = sh.filter(_js(pos=(0.25, 0.5), vel=(0.0, float("nan"))), np.array([0.5, 0.5]), 0.0)
    assert _one(out) == ("nan_observation", "joint 'b' position/velocity is not finite")


# --- timing --------------------------------------------------------------------------------


def test_an_observation_exactly_max_age_old_is_used_and_one_older_is_not() -> None:
    sh = _shield()
    out = sh.filter(_js(stamp=1.0), np.array([0.5, 0.5]), 1.0 + AGE)
    assert out.command.tolist() == [0.5, 0.5] and not out.interventions
    out = sh.filter(_js(stamp=1.0), np.array([0.5, 0.5]), 1.5)
    assert _one(out) == ("stale_observation", "observation 0.5 s old > max_observation_age 0.25")
    assert sh.state.obs_ok is False


def test_a_stamp_that_is_not_a_number_says_so() -> None:
    sh = _shield()
    out = sh.filter(_js(stamp=float("nan")), np.array([0.5, 0.5]), 1.0)
    assert _one(out) == ("stale_observation", "observation not a finite time")


def test_a_stamp_from_the_future_says_how_far_ahead() -> None:
    sh = _shield()
    out = sh.filter(_js(stamp=1.5), np.array([0.5, 0.5]), 1.0)
    assert _one(out) == ("stale_observation", "observation stamp 0.5 s in the future")


def test_the_same_stamp_twice_is_accepted() -> None:
    sh = _shield()
    for a in (0.5, 0.25):
        out = sh.filter(_js(stamp=1.0), np.array([a, a]), 1.0)
        assert out.command.tolist() == [a, a] and not out.interventions


# --- envelope ------------------------------------------------------------------------------


def test_leaving_the_envelope_records_the_observation_and_the_reason() -> None:
    sh = _shield(envelope={"positions": {"a": {"max": 0.5}}})
    out = sh.filter(_js(pos=(0.75, -0.25)), np.array([0.5, 0.5]), 0.0)
    assert _one(out) == ("envelope", "a position 0.75 > max 0.5")
    st = sh.state
    assert (st.obs_ok, st.envelope_ok, st.estop_latched) == (True, False, True)
    assert st.last_position == [0.75, -0.25]
    assert st.envelope_detail == "a position 0.75 > max 0.5"
    assert st.estop_reason == "envelope: a position 0.75 > max 0.5"
    r = sh.reset_estop()
    assert (r.ok, r.message) == (False, "refused: state is outside the envelope (a position 0.75 > max 0.5)")
    nxt = sh.filter(_js(pos=(0.25, -0.25), stamp=0.125), np.array([0.5, 0.5]), 0.125)
    assert _one(nxt) == (
        "estop",
        "e-stop latched (envelope: a position 0.75 > max 0.5); call reset_estop()",
    )


# --- e-stop and counters -------------------------------------------------------------------


def test_estop_without_a_reason_is_requested_and_a_cleared_latch_is_false() -> None:
    sh = _shield()
    sh.filter(_js(), np.array([0.5, 0.5]), 0.0)
    sh.estop()
    assert sh.summary()["estop_reason"] == "requested"
    r = sh.reset_estop(now=0.0)
    assert (r.ok, r.message) == (True, "e-stop cleared (was: requested)")
    assert sh.state.estop_latched is False and sh.summary()["estop_latched"] is False


def test_repeated_refusals_of_one_reason_are_each_counted() -> None:
    sh = _shield()
    for k in range(3):
        sh.filter(_js(stamp=0.125 * k), None, 0.125 * k)
    assert (sh.state.steps, sh.state.intervened_steps, sh.state.counts["nan_action"]) == (3, 3, 3)


# --- dtype: the command is float64 whatever numbers came in --------------------------------


def test_integer_actions_and_positions_give_float64_commands() -> None:
    sh = _shield()
    out = sh.filter(_js(), np.array([0, 1]), 0.0)
    assert out.command.dtype == np.float64 and out.command.tolist() == [0.0, 1.0]
    held = _shield("position")
    ints = JointState(("a", "b"), np.array([0, 1]), np.array([0, 0]), 0.0)
    stop = held.filter(ints, None, 0.0)
    assert stop.command.dtype == np.float64 and stop.command.tolist() == [0.0, 1.0]
    sc = held.safe_command()
    assert sc.dtype == np.float64 and sc.tolist() == [0.0, 1.0]


# --- the position interface's acceleration limit --------------------------------------------


def test_position_commands_keep_their_per_step_displacement_change_within_the_rate() -> None:
    """rate = 4 * T**2 = 0.0625. Commands -0.25, -0.1875 (moving +0.0625 a step): the next is
    expected at -0.125 and may be within 0.0625 of it, so [-0.1875, -0.0625]."""
    sh = _shield("position", {"position": {"min": -1.0, "max": 1.0}, "acceleration": 4.0})
    q = (-0.25, -0.25)  # the robot lags behind its commands; no max_step
    out = sh.filter(_js(q, 0.0), np.array([-0.25, -0.25]), 0.0)
    assert out.command.tolist() == [-0.25, -0.25] and not out.interventions
    out = sh.filter(_js(q, T), np.array([-0.1875, -0.1875]), T)
    assert out.command.tolist() == [-0.1875, -0.1875] and not out.interventions
    assert (sh.state.prev_command, sh.state.last_command) == ([-0.25, -0.25], [-0.1875, -0.1875])
    # the explaining path on its own, from the same state
    x, ivs = sh._explain(0, -0.25, -0.25, 0.0)
    assert x == -0.1875 and [(iv.reason, iv.sent) for iv in ivs] == [("rate_limit", -0.1875)]
    out = sh.filter(_js(q, 2 * T), np.array([-0.25, -0.625]), 2 * T)
    assert out.command.tolist() == [-0.1875, -0.1875]
    assert [tuple(iv) for iv in out.interventions] == [
        ("rate_limit", "a", -0.25, -0.1875, "acceleration: within 0.0625 of -0.125"),
        ("rate_limit", "b", -0.625, -0.1875, "acceleration: within 0.0625 of -0.125"),
    ]
    # now at rest (-0.1875 twice): within 0.0625 of -0.1875
    out = sh.filter(_js(q, 3 * T), np.array([1.0, -1.0]), 3 * T)
    assert out.command.tolist() == [-0.125, -0.25]
    assert [iv.reason for iv in out.interventions] == ["rate_limit", "rate_limit"]
    assert (sh.state.steps, sh.state.intervened_steps, sh.state.counts["rate_limit"]) == (4, 2, 4)


# --- construction ---------------------------------------------------------------------------


def test_construction_errors_say_what_to_do() -> None:
    with pytest.raises(TypeError) as e:
        SafetyShield(_data())  # type: ignore[arg-type]
    assert str(e.value) == "limits must be a SafetyLimits; load one with safety.load_limits(path)"
    with pytest.raises(ValueError) as e:
        SafetyShield(parse_limits(_data()), ood_score=lambda o, a: 0.0)
    assert str(e.value) == "an ood_score was given but the limits have no 'ood' section; add ood.threshold"
    with pytest.raises(ValueError) as e:
        SafetyShield(
            parse_limits(_data(ood={"threshold": 1.0, "fallback": "policy"})), ood_score=lambda o, a: 0.0
        )
    assert str(e.value) == "limits say ood.fallback: policy but no fallback_policy was given; pass one"


@pytest.mark.parametrize("fallback", ["safe", "policy"])
def test_an_ood_section_without_a_score_is_refused_rather_than_silently_off(fallback: str) -> None:
    """It used to build a shield whose gate never ran: bremen's own nodes inject no scorer, so a
    robot's file asking for the gate got none, and nothing said so."""
    with pytest.raises(ValueError) as e:
        SafetyShield(parse_limits(_data(ood={"threshold": 1.0, "fallback": fallback})))
    assert str(e.value) == (
        "the limits have an 'ood' section but no ood_score was given, so the gate would be off; pass "
        "ood_score (e.g. the dynamics ensemble's disagreement) or remove the ood section"
    )


def test_fallback_safe_sends_the_safe_command_even_when_a_fallback_policy_is_given() -> None:
    limits = parse_limits(_data(ood={"threshold": 1.0, "fallback": "safe"}))
    sh = SafetyShield(limits, ood_score=lambda o, a: 2.0, fallback_policy=lambda o: np.array([0.25, 0.25]))
    out = sh.filter(_js(), np.array([0.5, -0.5]), 0.0)
    assert out.command.tolist() == [0.0, 0.0]
    assert _one(out) == ("ood", "ensemble disagreement 2 > threshold 1; sent the safe command")


# --- effort: the lower soft margin and the over-speed bound ----------------------------------

_SOFT = {"position": {"min": -1.0, "max": 1.0, "soft_min": -0.5, "soft_max": 0.5}, "velocity": 2.0}


def test_effort_into_the_lower_soft_margin_is_scaled_down() -> None:
    # at -0.875 the joint is 0.125 of the 0.5 wide margin from the hard min: -1 * 0.125 / 0.5
    sh = _shield("effort", dict(_SOFT))
    out = sh.filter(_js((-0.875, 0.0)), np.array([-1.0, -1.0]), 0.0)
    assert out.command.tolist() == [-0.25, -1.0]
    assert [tuple(iv) for iv in out.interventions] == [
        (
            "soft_limit",
            "a",
            -1.0,
            -0.25,
            "in the soft margin below -0.5 (q=-0.875); outward command scaled down",
        )
    ]


def test_effort_against_a_negative_overspeed_is_zeroed() -> None:
    sh = _shield("effort", dict(_SOFT))
    out = sh.filter(_js(vel=(-3.0, 0.0)), np.array([-0.5, -0.5]), 0.0)
    assert out.command.tolist() == [0.0, -0.5]
    assert [tuple(iv) for iv in out.interventions] == [
        ("velocity_limit", "a", -0.5, 0.0, "velocity -3 < -2; torque along it zeroed")
    ]
    # the explaining path on its own (tests/safety/test_safety_fast_path.py's reference) reads v too
    x, ivs = sh._explain(0, -0.5, 0.0, -3.0)
    assert x == 0.0 and [(iv.reason, iv.sent) for iv in ivs] == [("velocity_limit", 0.0)]


def test_effort_moves_at_most_the_rate_from_the_last_command_either_way() -> None:
    sh = _shield("effort", dict(_SOFT, acceleration=2.0))  # rate = 2 * T = 0.25
    out = sh.filter(_js(), np.array([1.0, -1.0]), 0.0)
    assert out.command.tolist() == [0.25, -0.25]
    assert [tuple(iv) for iv in out.interventions] == [
        ("rate_limit", "a", 1.0, 0.25, "rate: within 0.25 of last command 0"),
        ("rate_limit", "b", -1.0, -0.25, "rate: within 0.25 of last command 0"),
    ]


# --- a request exactly on a hard bound that the smoothness window lies beyond -----------------
# The rate limit would move such a command past the bound and the hard limit brings it back to
# exactly what was asked: the command is the request, so nothing is reported (ShieldOutput:
# interventions are empty when the command is what was asked).


def test_a_request_on_the_soft_bound_with_the_rate_window_beyond_it_is_sent_unreported() -> None:
    # effort rate = acceleration * T = 0.25; the joints ramp to +-0.75, then sit 0.125 from the
    # hard limits at exactly the velocity limit (not above it), where the soft bound is +-0.25
    sh = _shield("effort", dict(_SOFT, acceleration=2.0))
    for k, a in enumerate((0.25, 0.5, 0.75)):
        out = sh.filter(_js(stamp=k * T), np.array([a, -a]), k * T)
        assert out.command.tolist() == [a, -a] and not out.interventions
    out = sh.filter(_js((0.875, -0.875), 3 * T, vel=(2.0, -2.0)), np.array([0.25, -0.25]), 3 * T)
    assert out.command.tolist() == [0.25, -0.25]
    assert out.interventions == ()


def test_a_zero_request_against_an_overspeed_with_the_rate_window_below_is_sent_unreported() -> None:
    sh = _shield("effort", dict(_SOFT, acceleration=2.0))
    for k, a in enumerate((-0.25, -0.5)):
        out = sh.filter(_js(stamp=k * T), np.array([a, 0.0]), k * T)
        assert out.command.tolist() == [a, 0.0] and not out.interventions
    # over-speed downward: torque below 0 is refused; the rate window is [-0.75, -0.25]
    out = sh.filter(_js(stamp=2 * T, vel=(-3.0, 0.0)), np.array([0.0, 0.0]), 2 * T)
    assert out.command.tolist() == [0.0, 0.0]
    assert out.interventions == ()


def test_a_position_request_on_the_max_with_the_rate_window_beyond_it_is_sent_unreported() -> None:
    # rate 0.0625 (acceleration 4, T 0.125), max_step 0.25 from the measured position, which
    # follows the command. The command accelerates to 0.625 = position max; the next one is
    # expected at 0.875, beyond the max, and asking for the max itself is sent as asked.
    joint = {"position": {"min": -1.0, "max": 0.625}, "acceleration": 4.0}
    sh = _shield("position", joint, max_step=0.25)
    p = 0.0
    for k, a in enumerate((0.0, 0.0625, 0.1875, 0.375, 0.625)):
        out = sh.filter(_js((p, p), k * T), np.array([a, a]), k * T)
        assert out.command.tolist() == [a, a] and not out.interventions, k
        p = a
    out = sh.filter(_js((p, p), 5 * T), np.array([0.625, 0.625]), 5 * T)
    assert out.command.tolist() == [0.625, 0.625]
    assert out.interventions == ()


# --- a clock reading of -inf ------------------------------------------------------------------


def test_a_clock_reading_of_minus_infinity_is_never_fresh() -> None:
    sh = _shield()
    sh.filter(_js(), np.array([0.5, 0.5]), 0.0)
    out = sh.watchdog(-math.inf)
    assert out is not None and out.command.tolist() == [0.0, 0.0]
    assert _one(out) == ("stale_observation", "watchdog: no observation for -inf s")
    sh.filter(_js(stamp=T), np.array([0.5, 0.5]), T)
    sh.estop("button")
    r = sh.reset_estop(now=-math.inf)
    assert (r.ok, r.message) == (False, "refused: the newest observation is stale; wait for a fresh one")
