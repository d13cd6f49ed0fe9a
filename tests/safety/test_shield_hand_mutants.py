"""The shield's state across stops and episodes, per-joint limits read from the file, by value.

Written against one-line mutants applied by hand to safety/shield.py, explain.py, layout.py,
action.py and limits.py that every other test let through (docs/testing.md, "Mutations the
suite catches"). Each expected value is worked out by hand from the limits in the test; the
arithmetic is in the comments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safety import JointState, SafetyShield, parse_limits
from safety.limits import CommandBox
from safety.types import Intervention


def _limits(iface: str = "position", joint: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Joints 'a', 'b', both with ``joint`` (default: position range [-0.5, 2]), command box
    [-1, 1], T = 0.01 s, observations good for 0.05 s. Position interface: the hard set is the box
    and the range, [-0.5, 1], and the hold range is the same; no rate, speed or max_step limit."""
    j = {"position": {"min": -0.5, "max": 2.0}} if joint is None else joint
    data: dict[str, Any] = {
        "robot": "mut",
        "command_interface": iface,
        "safe_command": "hold" if iface == "position" else "zero",
        "command_box": {"min": -1.0, "max": 1.0},
        "joints": {"a": dict(j), "b": dict(j)},
        "timing": {"control_period": 0.01, "max_observation_age": 0.05},
    }
    data.update(extra)
    return data


def _js(pos: Any, stamp: float, vel: Any = (0.0, 0.0), names: Any = ("a", "b")) -> JointState:
    return JointState(names, np.array(pos, dtype=np.float64), np.array(vel, dtype=np.float64), stamp)


# --- the hold target across stops ------------------------------------------------------------


def test_a_normal_step_between_two_stops_lets_the_second_stop_hold_where_the_arm_is_now():
    """Mutant: filter kept the first stop's hold target after a normal step; the second stop then
    sent the arm back to where the first one had held it (0.3, 0.1)."""
    sh = SafetyShield(parse_limits(_limits()))
    sh.estop("button")
    out = sh.filter(_js((0.3, 0.1), 0.0), [0.0, 0.0], 0.0)
    assert out.safe and out.command.tolist() == [0.3, 0.1]  # held where measured (inside [-0.5, 1])
    assert sh.reset_estop(0.0).ok
    # no rate, speed or step limit, inside [-0.5, 1]: sent as asked
    out = sh.filter(_js((0.6, 0.7), 0.01), [0.6, 0.7], 0.01)
    assert not out.safe and out.command.tolist() == [0.6, 0.7] and out.interventions == ()
    assert sh.state.hold_target is None
    assert sh.safe_command().tolist() == [0.6, 0.7]  # a stop now holds the newest accepted positions
    sh.estop("again")
    out = sh.filter(_js((0.8, 0.9), 0.02), [0.8, 0.9], 0.02)
    assert out.safe and out.command.tolist() == [0.8, 0.9]
    assert out.interventions[0].reason == "estop"


def test_forget_commands_drops_the_hold_target_so_a_stop_after_a_reset_motion_holds_the_new_pose():
    """Mutant: forget_commands kept the hold target. After a reset motion (commands outside the
    shield) moved the arm from (0.3, 0.1) to (0.8, 0.9), a failed policy step sent it back."""
    sh = SafetyShield(parse_limits(_limits()))
    sh.estop("button")
    assert sh.filter(_js((0.3, 0.1), 0.0), [0.0, 0.0], 0.0).command.tolist() == [0.3, 0.1]
    assert sh.reset_estop(0.0).ok
    sh.forget_commands()
    assert sh.state.hold_target is None and sh.state.last_command is None
    out = sh.filter(_js((0.8, 0.9), 0.01), None, 0.01)  # the policy failed
    assert out.safe and out.command.tolist() == [0.8, 0.9]
    assert out.interventions == (
        Intervention("nan_action", None, None, None, "no action (the policy failed)"),
    )


def test_forget_commands_drops_the_previous_command_so_the_acceleration_limit_starts_from_rest():
    """Mutant: forget_commands kept prev_command. Acceleration 100 rad/s^2 at T = 0.01 s allows a
    change of displacement of rate = 100 * 0.01^2 = 0.01 rad per step."""
    joint = {"position": {"min": -0.5, "max": 2.0}, "acceleration": 100.0}
    sh = SafetyShield(parse_limits(_limits(joint=joint)))
    # step 1: last = prev = measured 0, window 0 +- 0.01: 0.005 passes
    assert sh.filter(_js((0.0, 0.0), 0.0), [0.005, 0.005], 0.0).command.tolist() == [0.005, 0.005]
    # step 2: last 0.005, prev the measured 0 the first step started from: centre 0.01, window
    # 0.01 +- 0.01: 0.01 passes; the state now remembers prev 0.005, last 0.01
    assert sh.filter(_js((0.005, 0.005), 0.01), [0.01, 0.01], 0.01).command.tolist() == [0.01, 0.01]
    assert sh.state.prev_command == [0.005, 0.005]
    sh.forget_commands()  # a reset motion moves both joints to 0.5
    assert sh.state.prev_command is None
    # from rest at 0.5: last = prev = 0.5, window 0.5 +- 0.01, 0.5 passes unchanged. With the old
    # prev 0.005 kept: centre 0.5 + (0.5 - 0.005) = 0.995, and 0.5 would be moved to 0.985.
    out = sh.filter(_js((0.5, 0.5), 0.02), [0.5, 0.5], 0.02)
    assert out.command.tolist() == [0.5, 0.5] and out.interventions == ()


def test_the_second_step_from_rest_counts_the_first_steps_movement_against_the_acceleration_limit():
    """Mutant (the shipped code until 2026-12-07): after the first step from rest, prev was None,
    so the second step took last as prev, i.e. the joint at rest at the first command, and allowed
    twice the change of displacement. Acceleration 100 at T = 0.01: rate 0.01 per step.
    Step 1 from measured 0: last = prev = 0, +5 is clipped to 0.01 (a displacement of +0.01).
    Step 2, still measured 0, asks -0.3 (inside every hard bound): the displacement may change
    by 0.01 at most, from +0.01 to 0, so the command stays at 0.01 (centre 0.01 + (0.01 - 0) =
    0.02, window [0.01, 0.03]). The mutant's window, centred on 0.01, let it go to 0.0: a change
    of -0.02, twice the limit."""
    joint = {"position": {"min": -0.5, "max": 2.0}, "acceleration": 100.0}
    for _ in range(2):  # the first episode, then the next one after forget_commands
        sh = SafetyShield(parse_limits(_limits(joint=joint)))
        out = sh.filter(_js((0.0, 0.0), 0.0), [5.0, 5.0], 0.0)
        assert out.command.tolist() == [0.01, 0.01]
        assert sh.state.prev_command == [0.0, 0.0]
        out = sh.filter(_js((0.0, 0.0), 0.01), [-0.3, -0.3], 0.01)
        assert out.command.tolist() == [0.01, 0.01]
        assert {iv.reason for iv in out.interventions} == {"rate_limit"}
        sh.forget_commands()


def test_a_complex_joint_state_is_refused_and_leaves_no_trace_in_the_shields_state():
    """Mutant (the shipped code until 2026-12-07): the finite check on the sum let a complex value
    with zero imaginary part through (``0j - 0j == 0.0``); it became the last accepted position,
    and every later stop raised comparing it with a float. Now the step sends the safe command
    (``nan_observation``: not a finite real number), the hold stays where the last real
    observation was, and the watchdog and the next real observation work. numpy's complex
    scalars in a plain list passed ``math.isfinite`` (with a warning) too."""
    sh = SafetyShield(parse_limits(_limits()))
    assert sh.filter(_js((0.2, 0.3), 0.0), [0.2, 0.3], 0.0).command.tolist() == [0.2, 0.3]
    for k, odd_position in enumerate(([0.4 + 0j, 0.3], [np.complex128(0.4 + 1j), 0.3])):
        odd = JointState(("a", "b"), np.array(odd_position), np.zeros(2), 0.01 + 0.001 * k)
        if k:  # a plain list of numpy scalars, not an array
            odd = JointState(("a", "b"), odd_position, [0.0, 0.0], 0.01 + 0.001 * k)
        out = sh.filter(odd, [0.4, 0.3], 0.01 + 0.001 * k)
        assert out.safe and [iv.reason for iv in out.interventions] == ["nan_observation"]
        assert out.command.tolist() == [0.2, 0.3]  # hold: the last real positions
        assert sh.state.last_position == [0.2, 0.3] and sh.state.last_measured == [0.2, 0.3]
    wd = sh.watchdog(1.0)
    assert wd is not None and wd.command.tolist() == [0.2, 0.3]
    sh.forget_commands()
    assert sh.filter(_js((0.25, 0.3), 1.0), [0.25, 0.3], 1.0).command.tolist() == [0.25, 0.3]


def test_hold_is_clipped_into_the_hard_range_not_the_soft_one():
    """Mutant: the hold range's lower end from soft_min. Range [-0.5, 2], soft [-0.3, 0.8], box
    [-1, 1]: hold range [max(-1, -0.5), min(1, 2)] = [-0.5, 1]. At (-0.4, 0.9), both in a soft
    margin, the stop holds (-0.4, 0.9); the soft range would move joint a to -0.3 while stopped."""
    joint = {"position": {"min": -0.5, "max": 2.0, "soft_min": -0.3, "soft_max": 0.8}}
    sh = SafetyShield(parse_limits(_limits(joint=joint)))
    sh.estop("button")
    out = sh.filter(_js((-0.4, 0.9), 0.0), [0.0, 0.0], 0.0)
    assert out.safe and out.command.tolist() == [-0.4, 0.9]
    assert sh.safe_command().tolist() == [-0.4, 0.9]


# --- joint names in another order ----------------------------------------------------------


def test_a_joint_state_with_the_actuated_names_in_another_order_is_read_by_name():
    """Mutant: a name list that is the same set as the actuated joints, in any order, was taken
    as the identity layout, so joint b's values were used for joint a."""
    sh = SafetyShield(parse_limits(_limits()))
    sh.estop("button")
    out = sh.filter(_js((0.3, 0.7), 0.0, names=("b", "a")), [0.0, 0.0], 0.0)
    assert out.safe and out.command.tolist() == [0.7, 0.3]  # a = 0.7, b = 0.3

    seen: list[list[float]] = []

    def score(o: np.ndarray, a: np.ndarray) -> float:
        seen.append(o.tolist())
        return 0.0

    ood = SafetyShield(parse_limits(_limits("effort", joint={}, ood={"threshold": 0.5})), ood_score=score)
    out = ood.filter(_js((0.3, 0.7), 0.0, vel=(-1.0, 2.0), names=("b", "a")), [0.1, 0.2], 0.0)
    assert out.command.tolist() == [0.1, 0.2] and out.interventions == ()
    # default obs: positions then velocities of the actuated joints in command order (a, b)
    assert seen == [[0.7, 0.3, 2.0, -1.0]]


# --- the action and the OOD gate -------------------------------------------------------------


def test_a_boolean_action_is_not_read_as_numbers():
    """Mutant: dtype kind 'b' accepted, so [True, False] was sent as [1.0, 0.0]."""
    sh = SafetyShield(parse_limits(_limits("effort", joint={})))
    for action in (np.array([True, False]), [True, False]):
        out = sh.filter(_js((0.0, 0.0), 0.0), action, 0.0)
        assert out.safe and out.command.tolist() == [0.0, 0.0]
        assert out.interventions == (
            Intervention("nan_action", None, None, None, "action has dtype bool, not real numbers"),
        )


def test_an_ood_fallback_that_no_limit_changes_still_counts_as_an_intervened_step():
    """Mutant: intervened_steps and the per-reason count judged by 'the command differs from the
    action', so a fallback action inside every limit went uncounted."""
    scores = [0.75, 0.25]
    limits = parse_limits(_limits("effort", joint={}, ood={"threshold": 0.5, "fallback": "policy"}))
    sh = SafetyShield(limits, ood_score=lambda o, a: scores.pop(0), fallback_policy=lambda o: [0.25, -0.5])
    out = sh.filter(_js((0.0, 0.0), 0.0), [0.9, 0.9], 0.0)  # 0.75 > 0.5: the fallback's action
    assert not out.safe and out.command.tolist() == [0.25, -0.5]  # inside the box [-1, 1]
    assert [iv.reason for iv in out.interventions] == ["ood"]
    out = sh.filter(_js((0.0, 0.0), 0.01), [0.1, 0.1], 0.01)  # 0.25 <= 0.5: as asked
    assert out.command.tolist() == [0.1, 0.1] and out.interventions == ()
    s = sh.summary()
    assert (s["steps"], s["intervened_steps"], s["fraction_intervened"]) == (2, 1, 0.5)  # 1 of 2
    assert s["interventions"]["ood"] == 1 and sum(s["interventions"].values()) == 1


# --- per-joint limits as the file states them -----------------------------------------------


def test_a_joints_own_command_box_wins_over_the_default_box():
    """Mutant: SafetyLimits.box read the default box first, so b's box [-0.3, 0.3] was ignored."""
    data = _limits("effort", joint={})
    data["joints"]["b"] = {"command": {"min": -0.3, "max": 0.3}}
    limits = parse_limits(data)
    assert limits.box("a") == CommandBox(min=-1.0, max=1.0)
    assert limits.box("b") == CommandBox(min=-0.3, max=0.3)
    out = SafetyShield(limits).filter(_js((0.0, 0.0), 0.0), [0.5, -0.5], 0.0)
    assert out.command.tolist() == [0.5, -0.3]  # a inside [-1, 1]; b clipped to -0.3
    assert out.interventions == (Intervention("clipped_box", "b", -0.5, -0.3, "command box [-0.3, 0.3]"),)


def test_a_soft_limit_at_zero_is_a_soft_limit():
    """Mutants: soft_max (soft_min) of 0.0 read as absent (``soft_max or max``), so the margin
    between 0 and the hard limit had no ramp. Range [-1, 1], box [-1, 1], effort interface:
    a: soft_max 0 at q = 0.5, outward bound = 1 * (1 - 0.5) / (1 - 0) = 0.5;
    b: soft_min 0 at q = -0.5, outward bound = -1 * (-0.5 - -1) / (0 - -1) = -0.5."""
    data = _limits("effort", joint={})
    data["joints"] = {
        "a": {"position": {"min": -1.0, "max": 1.0, "soft_max": 0.0}},
        "b": {"position": {"min": -1.0, "max": 1.0, "soft_min": 0.0}},
    }
    limits = parse_limits(data)
    pa, pb = limits.joints["a"].position, limits.joints["b"].position
    assert pa is not None and pb is not None
    assert (pa.soft_lo, pa.soft_hi, pb.soft_lo, pb.soft_hi) == (-1.0, 0.0, 0.0, 1.0)
    out = SafetyShield(limits).filter(_js((0.5, -0.5), 0.0), [0.9, -0.9], 0.0)
    assert out.command.tolist() == [0.5, -0.5]
    assert out.interventions == (
        Intervention(
            "soft_limit", "a", 0.9, 0.5, "in the soft margin above 0 (q=0.5); outward command scaled down"
        ),
        Intervention(
            "soft_limit", "b", -0.9, -0.5, "in the soft margin below 0 (q=-0.5); outward command scaled down"
        ),
    )


def test_a_hold_after_commands_outside_the_shield_goes_to_the_newest_measurement():
    """Found by a second read (2026-12-07): the hold took the last *accepted* position before
    any newer measurement. An episode ends at 0.9; a reset motion (outside the shield) moves the
    arm to -0.4; the next episode's first state is stale (measured at -0.4, stamp 2.0, judged at
    5.0). The hold went to 0.9, 1.3 rad from the arm; now it holds -0.4. An out-of-order state
    (stamp 1.5, older than the accepted 2.5) is no newer measurement and moves nothing."""
    sh = SafetyShield(parse_limits(_limits()))
    assert sh.filter(_js((0.9, 0.9), 1.0), [0.9, 0.9], 1.0).command.tolist() == [0.9, 0.9]
    sh.forget_commands()
    out = sh.filter(_js((-0.4, -0.4), 2.0), [-0.4, -0.4], 5.0)
    assert out.safe and out.interventions[0].reason == "stale_observation"
    assert out.command.tolist() == [-0.4, -0.4]
    sh = SafetyShield(parse_limits(_limits()))
    assert sh.filter(_js((0.2, 0.2), 2.5), [0.2, 0.2], 2.5).command.tolist() == [0.2, 0.2]
    out = sh.filter(_js((0.7, 0.7), 1.5), [0.7, 0.7], 2.5)
    assert out.safe and out.interventions[0].reason == "stale_observation"
    assert out.command.tolist() == [0.2, 0.2]
