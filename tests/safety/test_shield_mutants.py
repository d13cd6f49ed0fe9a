"""The shield's bookkeeping API by value: state copies, the safe command, e-stop, watchdog, summary.

Written against the mutants `make mutate` found alive in safety/shield.py with the unit tests
alone (docs/testing.md, Mutation testing). Expectations are by hand from the limits below.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_layout_action_mutants import _data as effort_limits

from safety import JointState, SafetyShield, parse_limits
from safety.shield import ShieldState


def _shield(iface: str = "position") -> SafetyShield:
    """Joints 'a', 'b' with position range [-0.5, 2] and command box [-1, 1]: hold range [-0.5, 1]."""
    joint: dict[str, Any] = {"position": {"min": -0.5, "max": 2.0}}
    data: dict[str, Any] = {
        "robot": "mut",
        "command_interface": iface,
        "safe_command": "hold" if iface == "position" else "zero",
        "command_box": {"min": -1.0, "max": 1.0},
        "joints": {"a": dict(joint), "b": dict(joint)},
        "timing": {"control_period": 0.01, "max_observation_age": 0.05},
    }
    return SafetyShield(parse_limits(data))


def _js(pos: tuple[float, float], stamp: float) -> JointState:
    return JointState(("a", "b"), np.array(pos), np.zeros(2), stamp)


def test_state_copy_is_equal_and_independent():
    st = ShieldState(
        last_command=[0.1, 0.2],
        prev_command=[0.3, 0.4],
        last_stamp=7.5,
        last_position=[0.5, 0.6],
        hold_target=[0.7, 0.8],
        last_measured=[0.9, 1.0],
        estop_latched=True,
        estop_reason="button",
        obs_ok=True,
        envelope_ok=True,
        envelope_detail="fine",
        steps=9,
        intervened_steps=4,
    )
    st.counts["rate"] = 3
    cp = st.copy()
    assert cp == st
    for name in ("last_command", "prev_command", "last_position", "hold_target", "last_measured", "counts"):
        assert getattr(cp, name) is not getattr(st, name), name
    cp.last_command[0] = 9.0
    cp.counts["rate"] = 0
    assert st.last_command == [0.1, 0.2] and st.counts["rate"] == 3
    empty = ShieldState().copy()
    assert empty == ShieldState() and empty.last_command is None and empty.hold_target is None


def test_safe_command_is_zero_without_hold_and_the_clipped_position_with_it():
    assert _shield("effort").safe_command().tolist() == [0.0, 0.0]
    sh = _shield("position")
    # nothing measured yet: what a stop sends, the middle of the hold range (issue 15, item 3)
    assert sh.safe_command().tolist() == [0.25, 0.25]
    sh.state.last_position = [1.7, -0.9]  # beyond the hold range [-0.5, 1]
    out = sh.safe_command()
    assert out.dtype == np.float64 and out.tolist() == [1.0, -0.5]
    sh.state.last_position = [0.25, 0.0]
    assert sh.safe_command().tolist() == [0.25, 0.0]
    sh.state.hold_target = [0.3, -0.2]  # once latched, the hold target wins
    assert sh.safe_command().tolist() == [0.3, -0.2]


def test_a_first_stop_without_any_observation_holds_the_middle_of_the_hold_range():
    sh = _shield("position")
    out = sh.watchdog(now=1.0)
    assert out is not None and out.safe
    assert out.command.tolist() == [0.25, 0.25]  # (-0.5 + 1) / 2
    assert sh.state.hold_target == [0.25, 0.25]
    assert sh.state.last_command == [0.25, 0.25] and sh.state.prev_command == [0.25, 0.25]
    (iv,) = out.interventions
    assert (iv.reason, iv.joint, iv.requested, iv.sent) == ("stale_observation", None, None, None)
    assert iv.detail == "watchdog: no observation yet"
    assert (sh.state.steps, sh.state.intervened_steps, sh.state.counts["stale_observation"]) == (1, 1, 1)


def test_watchdog_is_quiet_up_to_the_max_age_and_names_the_age_after():
    sh = _shield("effort")
    sh.state.last_stamp = 0.0
    assert sh.watchdog(0.05) is None  # exactly max_observation_age old: still fresh
    assert sh.state.steps == 0
    sh.state.obs_ok = True
    out = sh.watchdog(0.25)
    assert out is not None and out.command.tolist() == [0.0, 0.0]
    assert out.interventions[0].detail == "watchdog: no observation for 0.25 s"
    assert sh.state.obs_ok is False


def test_estop_latches_once_and_keeps_the_first_reason():
    sh = _shield("effort")
    sh.estop("")
    assert sh.state.estop_latched and sh.state.estop_reason == "requested"
    sh.estop("second")
    assert sh.state.estop_reason == "requested"
    assert sh.summary()["estop_reason"] == "requested"


def test_reset_estop_refuses_until_the_state_is_known_good_and_fresh():
    sh = _shield("effort")
    first = sh.reset_estop()
    assert (first.ok, first.message) == (True, "e-stop was not latched")
    sh.estop("button")
    r = sh.reset_estop()
    assert (r.ok, r.message) == (
        False,
        "refused: the newest observation was not usable; wait for a valid one",
    )
    sh.state.obs_ok, sh.state.envelope_detail = True, "a beyond 2.0"
    r = sh.reset_estop()
    assert (r.ok, r.message) == (False, "refused: state is outside the envelope (a beyond 2.0)")
    sh.state.envelope_ok, sh.state.last_stamp = True, 0.0
    r = sh.reset_estop(now=0.06)
    assert (r.ok, r.message) == (False, "refused: the newest observation is stale; wait for a fresh one")
    assert sh.state.estop_latched
    r = sh.reset_estop(now=0.05)  # exactly max_observation_age: fresh enough
    assert (r.ok, r.message) == (True, "e-stop cleared (was: button)")
    assert not sh.state.estop_latched and sh.state.estop_reason == ""


def test_summary_counts_steps_and_the_intervened_fraction():
    sh = _shield("effort")
    assert sh.summary() == {
        "steps": 0,
        "intervened_steps": 0,
        "fraction_intervened": 0.0,
        "estop_latched": False,
        "estop_reason": "",
        "interventions": sh.state.counts,
    }
    for k in range(4):
        sh.filter(_js((0.0, 0.0), 1.0 + 0.01 * k), np.array([0.1, 0.1]), 1.0 + 0.01 * k)
    sh.watchdog(now=9.0)
    s = sh.summary()
    assert (s["steps"], s["intervened_steps"], s["fraction_intervened"]) == (5, 1, 0.2)
    assert s["interventions"]["stale_observation"] == 1
    assert s["interventions"] is not sh.state.counts


def _position_shield_with_velocity(vmax: float) -> SafetyShield:
    joint: dict[str, Any] = {"position": {"min": -0.5, "max": 2.0}, "velocity": vmax}
    data: dict[str, Any] = {
        "robot": "mut",
        "command_interface": "position",
        "safe_command": "hold",
        "command_box": {"min": -1.0, "max": 1.0},
        "joints": {"a": dict(joint), "b": dict(joint)},
        "timing": {"control_period": 0.01, "max_observation_age": 0.05},
    }
    return SafetyShield(parse_limits(data))


def test_a_position_command_moves_at_most_vmax_times_the_period_from_the_last_one_either_way():
    sh = _position_shield_with_velocity(1.0)  # 1 rad/s at 100 Hz: 0.01 rad per step
    first = sh.filter(_js((0.5, 0.5), 0.0), np.array([0.5, 0.5]), 0.0)
    assert first.command.tolist() == [0.5, 0.5] and not first.interventions
    out = sh.filter(_js((0.5, 0.5), 0.01), np.array([-0.4, 0.9]), 0.01)
    assert out.command.tolist() == pytest.approx([0.49, 0.51], abs=1e-12)  # 0.5 -/+ 1.0 * 0.01
    assert [(iv.reason, iv.joint) for iv in out.interventions] == [
        ("velocity_limit", "a"),
        ("velocity_limit", "b"),
    ]


def test_an_ood_score_exactly_at_the_threshold_passes_and_one_ulp_above_falls_back():
    data = effort_limits(ood={"threshold": 0.5, "fallback": "safe"})
    score = {"value": 0.5}
    sh = SafetyShield(parse_limits(data), ood_score=lambda o, a: score["value"])
    at = sh.filter(_js((0.0, 0.0), 0.0), np.array([0.3, -0.3]), 0.0)
    assert at.command.tolist() == [0.3, -0.3] and not at.interventions  # "<= threshold" passes
    score["value"] = float(np.nextafter(0.5, 1.0))
    above = sh.filter(_js((0.0, 0.0), 0.01), np.array([0.3, -0.3]), 0.01)
    assert above.command.tolist() == [0.0, 0.0]
    assert [iv.reason for iv in above.interventions] == ["ood"]


def test_the_soft_margin_scales_an_outward_velocity_and_says_where_the_joint_is():
    joint: dict[str, Any] = {"position": {"min": -1.0, "max": 1.0, "soft_min": -0.5, "soft_max": 0.5}}
    data: dict[str, Any] = {
        "robot": "mut",
        "command_interface": "velocity",
        "safe_command": "zero",
        "command_box": {"min": -2.0, "max": 2.0},
        "joints": {"a": dict(joint), "b": dict(joint)},
        "timing": {"control_period": 0.01, "max_observation_age": 0.05},
    }
    sh = SafetyShield(parse_limits(data))
    # joint a at 0.75: halfway through the upper soft margin, so outward speed is scaled to
    # 2.0 * (1 - 0.75) / (1 - 0.5) = 1.0; joint b moves inward and is left alone
    out = sh.filter(_js((0.75, 0.0), 0.0), np.array([2.0, -0.3]), 0.0)
    assert out.command.tolist() == pytest.approx([1.0, -0.3], abs=1e-12)
    (iv,) = out.interventions
    assert (iv.reason, iv.joint) == ("soft_limit", "a")
    assert iv.detail == "in the soft margin above 0.5 (q=0.75); outward command scaled down"


@pytest.mark.parametrize(
    "field", ["last_command", "prev_command", "last_position", "hold_target", "last_measured"]
)
def test_a_state_of_another_joint_count_is_refused_at_construction(field: str) -> None:
    """Two joints: a remembered list of three (a state copied from another robot) is refused in one
    line naming the field, before any step could index past the joints or send three commands."""
    limits = _shield().limits
    with pytest.raises(ValueError) as refused:
        SafetyShield(limits, state=ShieldState(**{field: [0.0, 0.0, 0.0]}))
    assert str(refused.value) == (
        f"state.{field} has 3 entries for 2 joints; pass a state copied from a shield of these "
        "limits (shield.state.copy()), or none"
    )
    ok = SafetyShield(limits, state=ShieldState(**{field: [0.25, -0.25]}))
    assert getattr(ok.state, field) == [0.25, -0.25]
