"""Unit tests: one per reason code, plus pass-through, e-stop, watchdog, hold, OOD gate, replay."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from safety import REASONS, JointState, SafetyShield, ShieldOutput, load_limits, parse_limits

ROOT = Path(__file__).resolve().parents[2]
T = 0.01  # control period of the unit-test robot


def limits_dict(iface: str = "effort", **top: Any) -> dict[str, Any]:
    """Two joints 'a', 'b': hard range [-1, 1], soft [-0.8, 0.8], box [-1, 1] (effort/velocity)."""
    joint = {"position": {"min": -1.0, "max": 1.0, "soft_min": -0.8, "soft_max": 0.8}}
    data: dict[str, Any] = {
        "robot": "unit",
        "command_interface": iface,
        "safe_command": "hold" if iface == "position" else "zero",
        "command_box": {"min": -1.0, "max": 1.0} if iface != "velocity" else {"min": -3.0, "max": 3.0},
        "joints": {"a": copy.deepcopy(joint), "b": copy.deepcopy(joint)},
        "timing": {"control_period": T, "max_observation_age": 0.05},
    }
    data.update(top)
    return data


def shield_for(iface: str = "effort", joint_a: dict[str, Any] | None = None, **top: Any) -> SafetyShield:
    data = limits_dict(iface, **top)
    if joint_a:
        data["joints"]["a"].update(joint_a)
    return SafetyShield(parse_limits(data))


def js(pos=(0.0, 0.0), vel=(0.0, 0.0), stamp: float = 1.0, names=("a", "b")) -> JointState:
    return JointState(tuple(names), np.array(pos, dtype=float), np.array(vel, dtype=float), stamp)


def step(
    sh: SafetyShield, action: Any, pos=(0.0, 0.0), vel=(0.0, 0.0), stamp=1.0, now=1.001, **kw
) -> ShieldOutput:
    return sh.filter(js(pos, vel, stamp), action, now, **kw)


def only(out: ShieldOutput, reason: str, joint: str | None = "a"):
    """The single intervention of ``out``, checked to be ``reason`` on ``joint``."""
    assert [(iv.reason, iv.joint) for iv in out.interventions] == [(reason, joint)], out.interventions
    assert out.interventions[0].detail
    return out.interventions[0]


# --- pass-through -------------------------------------------------------------------------


def test_valid_action_inside_every_limit_passes_unchanged_on_the_panda() -> None:
    limits = load_limits(ROOT / "configs/safety/panda.yaml")
    sh = SafetyShield(limits)
    q = np.array([0.1, -0.5, 0.2, -1.8, 0.0, 1.6, 0.7])
    state = JointState(tuple(limits.joint_names), q, np.full(7, 0.3), 5.0)
    action = np.array([0.01, -0.01, 0.005, 0.0, 0.012, -0.014, 0.01])  # within 7.5*0.002 of 0
    out = sh.filter(state, action, 5.002)
    assert out.interventions == () and not out.safe
    assert out.command.tobytes() == action.tobytes()
    # and it keeps passing as the action moves within the rate limit
    for k in range(1, 20):
        a2 = action + 0.001 * k
        state = JointState(tuple(limits.joint_names), q, np.full(7, 0.3), 5.0 + 0.002 * k)
        out = sh.filter(state, a2, 5.002 + 0.002 * k)
        assert out.interventions == () and out.command.tobytes() == a2.tobytes()
    assert sh.summary()["intervened_steps"] == 0


def test_outward_command_inside_the_soft_range_is_not_touched() -> None:
    sh = shield_for("effort")
    out = step(sh, np.array([1.0, -1.0]), pos=(0.79, -0.79))
    assert out.interventions == ()
    np.testing.assert_array_equal(out.command, [1.0, -1.0])


# --- one test per reason code --------------------------------------------------------------


def test_clipped_box() -> None:
    out = step(shield_for("effort"), np.array([5.0, 0.2]))
    iv = only(out, "clipped_box")
    assert (iv.requested, iv.sent) == (5.0, 1.0)
    np.testing.assert_array_equal(out.command, [1.0, 0.2])


def test_effort_limit() -> None:
    sh = shield_for("effort", {"effort": 50.0, "effort_per_command": 100.0})  # 0.5 of full command
    iv = only(step(sh, np.array([0.9, 0.0])), "effort_limit")
    assert iv.sent == 0.5
    out = step(sh, np.array([-0.9, 0.0]), stamp=1.002, now=1.003)
    assert out.command[0] == -0.5


def test_position_limit_effort_zeroes_outward_torque_only() -> None:
    sh = shield_for("effort")
    out = step(sh, np.array([0.5, 0.0]), pos=(1.02, 0.0))  # beyond the hard max
    iv = only(out, "position_limit")
    assert iv.sent == 0.0 and out.command[0] == 0.0
    inward = step(sh, np.array([-0.5, 0.0]), pos=(1.02, 0.0), stamp=1.002, now=1.003)
    assert inward.interventions == () and inward.command[0] == -0.5


def test_position_limit_velocity_cannot_cross_within_one_period() -> None:
    sh = shield_for("velocity", {"position": {"min": -1.0, "max": 1.0}})  # no soft margin
    out = step(sh, np.array([2.5, 0.0]), pos=(0.995, 0.0))
    reasons = [iv.reason for iv in out.interventions]
    assert reasons[-1] == "position_limit"
    assert out.command[0] == pytest.approx((1.0 - 0.995) / T)
    assert 0.995 + out.command[0] * T <= 1.0 + 1e-12


def test_position_limit_position_interface_without_soft_margin() -> None:
    data = limits_dict("position", command_box={"min": -2.0, "max": 2.0})
    data["joints"]["a"]["position"] = {"min": -1.0, "max": 1.0}
    out = SafetyShield(parse_limits(data)).filter(js(), np.array([1.5, 0.0]), 1.001)
    assert only(out, "position_limit").sent == 1.0


def test_soft_limit_scales_outward_effort_in_the_margin() -> None:
    sh = shield_for("effort")
    out = step(sh, np.array([1.0, 0.0]), pos=(0.9, 0.0))  # halfway from soft 0.8 to hard 1.0
    assert only(out, "soft_limit").sent == pytest.approx(0.5)
    inward = step(sh, np.array([-1.0, 0.0]), pos=(0.9, 0.0), stamp=1.002, now=1.003)
    assert inward.interventions == ()


def test_soft_limit_position_interface_clamps_into_the_soft_range() -> None:
    out = shield_for("position").filter(js(), np.array([0.95, 0.0]), 1.001)
    assert only(out, "soft_limit").sent == 0.8


def test_velocity_limit_effort_zeroes_torque_along_an_overspeed() -> None:
    sh = shield_for("effort", {"velocity": 2.0})
    out = step(sh, np.array([0.5, 0.0]), vel=(3.0, 0.0))
    assert only(out, "velocity_limit").sent == 0.0
    braking = step(sh, np.array([-0.5, 0.0]), vel=(3.0, 0.0), stamp=1.002, now=1.003)
    assert braking.interventions == ()


def test_velocity_limit_velocity_interface() -> None:
    out = step(shield_for("velocity", {"velocity": 2.0}), np.array([2.5, 0.0]))
    assert only(out, "velocity_limit").sent == 2.0


def test_velocity_limit_position_interface_bounds_the_target_speed() -> None:
    sh = shield_for("position", {"velocity": 5.0})  # 0.05 per step
    out = sh.filter(js(), np.array([0.3, 0.0]), 1.001)
    assert only(out, "velocity_limit").sent == pytest.approx(0.05)


def test_rate_limit_ramps_the_command() -> None:
    sh = shield_for("effort", {"acceleration": 10.0})  # 0.1 per step
    out1 = step(sh, np.array([0.5, 0.0]))
    assert only(out1, "rate_limit").sent == pytest.approx(0.1)
    out2 = step(sh, np.array([0.5, 0.0]), stamp=1.01, now=1.011)
    assert out2.command[0] == pytest.approx(0.2)


def test_rate_limit_loses_to_a_safety_limit() -> None:
    sh = shield_for("effort", {"acceleration": 10.0})
    for k in range(10):  # ramp up to 1.0
        step(sh, np.array([1.0, 0.0]), stamp=1.0 + k * T, now=1.0 + k * T)
    assert sh.state.last_command is not None and sh.state.last_command[0] == pytest.approx(1.0)
    out = step(sh, np.array([1.0, 0.0]), pos=(1.05, 0.0), stamp=1.2, now=1.2)
    assert out.command[0] == 0.0  # position limit wins over the ramp-down
    assert [iv.reason for iv in out.interventions][-1] == "position_limit"


def test_max_step_of_the_command() -> None:
    out = step(shield_for("effort", max_step=0.05), np.array([0.5, -0.01]))
    assert only(out, "max_step").sent == pytest.approx(0.05)


def test_max_step_per_joint_relative_to_the_measured_position() -> None:
    sh = shield_for("position", max_step={"a": 0.1})
    out = sh.filter(js(pos=(0.2, 0.0)), np.array([0.6, 0.3]), 1.001)
    assert only(out, "max_step").sent == pytest.approx(0.3)
    assert out.command[1] == 0.3  # joint b has no max_step


@pytest.mark.parametrize(
    ("stamp", "now", "last"),
    [
        (1.0, 1.2, None),
        (1.1, 1.0, None),
        (0.99, 1.0, 1.0),
        (float("nan"), 1.0, None),
        (1.0, float("inf"), None),
    ],
    ids=["too-old", "future", "out-of-order", "nan-stamp", "inf-now"],
)
def test_stale_observation(stamp: float, now: float, last: float | None) -> None:
    sh = shield_for("effort")
    if last is not None:
        assert not step(sh, np.array([0.1, 0.1]), stamp=last, now=last).safe
    out = step(sh, np.array([0.1, 0.1]), stamp=stamp, now=now)
    assert out.safe and only(out, "stale_observation", None)
    np.testing.assert_array_equal(out.command, [0.0, 0.0])


def test_watchdog_sends_the_safe_command_when_observations_stop() -> None:
    sh = shield_for("effort")
    assert sh.watchdog(1.0) is not None  # nothing observed yet
    step(sh, np.array([0.3, 0.3]), stamp=1.0, now=1.0)
    assert sh.watchdog(1.04) is None
    out = sh.watchdog(1.06)
    assert out is not None and out.safe and only(out, "stale_observation", None)
    np.testing.assert_array_equal(out.command, [0.0, 0.0])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_observation(bad: float) -> None:
    sh = shield_for("effort")
    out = step(sh, np.array([0.1, 0.1]), pos=(0.0, bad))
    assert out.safe and only(out, "nan_observation", None)
    out = step(sh, np.array([0.1, 0.1]), vel=(bad, 0.0), stamp=1.002, now=1.003)
    assert out.safe and only(out, "nan_observation", None)


def test_nan_observation_in_an_envelope_extra() -> None:
    sh = shield_for("effort", envelope={"extras": {"height": {"min": 0.3}}})
    out = step(sh, np.array([0.1, 0.1]), extras={"height": float("nan")})
    assert out.safe and only(out, "nan_observation", None)
    assert not sh.state.estop_latched  # a sensor glitch stops, but does not latch


@pytest.mark.parametrize(
    "action",
    [np.array([np.nan, 0.0]), np.array([0.0, np.inf]), [0.0, -np.inf], None, np.array(["x", "y"])],
    ids=["nan", "inf", "-inf-list", "none", "strings"],
)
def test_nan_action(action: Any) -> None:
    out = step(shield_for("effort"), action)
    assert out.safe and only(out, "nan_action", None)
    np.testing.assert_array_equal(out.command, [0.0, 0.0])


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (js(), np.array([0.1, 0.1, 0.1])),
        (js(), np.array([0.1])),
        (js(), np.zeros((2, 1))),
        (js(), "not an action"),
        (js(names=("a", "c")), np.array([0.1, 0.1])),
        (js(names=("a", "a")), np.array([0.1, 0.1])),
        (JointState(("a", "b"), np.zeros(3), np.zeros(2), 1.0), np.array([0.1, 0.1])),
        (None, np.array([0.1, 0.1])),
    ],
    ids=["long", "short", "2d", "str", "missing-joint", "dup-joint", "pos-length", "no-state"],
)
def test_shape_mismatch(state: Any, action: Any) -> None:
    out = shield_for("effort").filter(state, action, 1.001)
    assert out.safe and only(out, "shape_mismatch", None)
    np.testing.assert_array_equal(out.command, [0.0, 0.0])


def test_joint_state_in_another_order_with_extra_joints_is_mapped_by_name() -> None:
    sh = shield_for("effort")
    state = JointState(("rootz", "b", "a"), np.array([1.2, 0.0, 1.05]), np.zeros(3), 1.0)
    out = sh.filter(state, np.array([0.5, 0.5]), 1.001)
    np.testing.assert_array_equal(out.command, [0.0, 0.5])  # 'a' sits beyond its hard max
    assert only(out, "position_limit").joint == "a"


def test_envelope_latches_and_reset_needs_the_state_back_inside() -> None:
    sh = shield_for("effort", envelope={"positions": {"rootz": {"min": 0.5}}})
    names = ("rootz", "a", "b")

    def obs(z: float, t: float) -> ShieldOutput:
        return sh.filter(JointState(names, np.array([z, 0.0, 0.0]), np.zeros(3), t), np.array([0.2, 0.2]), t)

    assert not obs(1.0, 1.0).safe
    out = obs(0.3, 1.01)
    assert out.safe and only(out, "envelope", None) and sh.state.estop_latched
    assert "rootz" in out.interventions[0].detail
    out = obs(0.3, 1.02)
    assert out.safe and only(out, "estop", None)
    refused = sh.reset_estop()
    assert not refused and "envelope" in refused.message and sh.state.estop_latched
    out = obs(1.0, 1.03)  # back inside, still latched until reset
    assert out.safe and only(out, "estop", None)
    assert sh.reset_estop(now=1.04)
    assert not obs(1.0, 1.04).safe


def test_envelope_on_a_missing_extra_stops() -> None:
    sh = shield_for("effort", envelope={"extras": {"body_height": {"min": 0.1}}})
    out = step(sh, np.array([0.1, 0.1]))
    assert out.safe and only(out, "envelope", None) and "body_height" in out.interventions[0].detail


def test_estop_latch_and_reset() -> None:
    sh = shield_for("effort")
    sh.estop("operator pressed the button")
    for k in range(5):
        out = step(sh, np.array([0.4, -0.4]), stamp=1.0 + k * T, now=1.0 + k * T)
        assert out.safe and only(out, "estop", None)
        assert "operator" in out.interventions[0].detail
        np.testing.assert_array_equal(out.command, [0.0, 0.0])
    assert sh.reset_estop(now=1.05)
    out = step(sh, np.array([0.4, -0.4]), stamp=1.06, now=1.06)
    assert not out.safe and out.interventions == ()


def test_reset_is_refused_without_a_valid_fresh_observation() -> None:
    sh = shield_for("effort")
    sh.estop()
    assert not sh.reset_estop()  # nothing observed yet
    step(sh, np.array([0.0, 0.0]), pos=(np.nan, 0.0))
    assert not sh.reset_estop()
    step(sh, np.array([0.0, 0.0]), stamp=1.01, now=1.01)
    assert not sh.reset_estop(now=2.0)  # stale by now
    assert sh.reset_estop(now=1.02)


def test_hold_safe_command_holds_the_position_where_it_stopped() -> None:
    sh = shield_for("position")
    assert not sh.filter(js(pos=(0.3, -0.2)), np.array([0.3, -0.2]), 1.001).safe
    sh.estop()
    out1 = sh.filter(js(pos=(0.31, -0.2), stamp=1.01), np.array([0.9, 0.9]), 1.011)
    out2 = sh.filter(js(pos=(0.5, 0.1), stamp=1.02), np.array([0.9, 0.9]), 1.021)  # pushed away
    assert out1.safe and out2.safe
    np.testing.assert_array_equal(out1.command, [0.31, -0.2])
    np.testing.assert_array_equal(out2.command, out1.command)
    np.testing.assert_array_equal(sh.safe_command(), out1.command)


def test_ood_gate_switches_to_the_safe_command() -> None:
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def score(obs: np.ndarray, act: np.ndarray) -> float:
        seen.append((obs, act))
        return float(np.abs(act).sum())

    sh = SafetyShield(parse_limits(limits_dict("effort", ood={"threshold": 0.5})), ood_score=score)
    assert not step(sh, np.array([0.2, 0.2])).safe
    np.testing.assert_array_equal(seen[0][0], [0.0, 0.0, 0.0, 0.0])  # positions then velocities
    out = step(sh, np.array([0.4, 0.4]), stamp=1.01, now=1.011)
    assert out.safe and only(out, "ood", None).requested == pytest.approx(0.8)


def test_ood_gate_uses_the_fallback_policy_and_still_limits_it() -> None:
    limits = parse_limits(limits_dict("effort", ood={"threshold": 0.5, "fallback": "policy"}))
    sh = SafetyShield(limits, ood_score=lambda o, a: 1.0, fallback_policy=lambda o: np.array([3.0, -0.1]))
    out = step(sh, np.array([0.9, 0.9]))
    assert not out.safe
    np.testing.assert_array_equal(out.command, [1.0, -0.1])
    assert [iv.reason for iv in out.interventions] == ["ood", "clipped_box"]


def test_ood_gate_fails_safe_when_its_callables_fail() -> None:
    def broken(*_: Any) -> float:
        raise RuntimeError("ensemble crashed")

    limits = parse_limits(limits_dict("effort", ood={"threshold": 0.5, "fallback": "policy"}))
    sh = SafetyShield(limits, ood_score=broken, fallback_policy=lambda o: np.zeros(2))
    out = step(sh, np.array([0.1, 0.1]))
    assert out.safe is False and out.interventions[0].reason == "ood"  # fallback used
    sh2 = SafetyShield(limits, ood_score=lambda o, a: np.nan, fallback_policy=broken)
    out2 = step(sh2, np.array([0.1, 0.1]))
    assert out2.safe and only(out2, "ood", None) and "fallback policy failed" in out2.interventions[0].detail


def test_ood_needs_matching_configuration() -> None:
    with pytest.raises(ValueError, match="no 'ood' section"):
        SafetyShield(parse_limits(limits_dict("effort")), ood_score=lambda o, a: 0.0)
    with pytest.raises(ValueError, match="fallback_policy"):
        SafetyShield(
            parse_limits(limits_dict("effort", ood={"threshold": 1.0, "fallback": "policy"})),
            ood_score=lambda o, a: 0.0,
        )
    with pytest.raises(ValueError, match="no ood_score was given"):
        SafetyShield(parse_limits(limits_dict("effort", ood={"threshold": 1.0})))


def test_every_reason_code_has_a_test_here() -> None:
    text = Path(__file__).read_text()
    missing = [r for r in REASONS if f'"{r}"' not in text]
    assert not missing


# --- state, counters, replay ---------------------------------------------------------------


def test_summary_counts_interventions_per_reason() -> None:
    sh = shield_for("effort")
    step(sh, np.array([0.1, 0.1]))
    step(sh, np.array([5.0, 5.0]), stamp=1.01, now=1.011)
    step(sh, None, stamp=1.02, now=1.021)
    s = sh.summary()
    assert s["steps"] == 3 and s["intervened_steps"] == 2
    assert s["fraction_intervened"] == pytest.approx(2 / 3)
    assert s["interventions"]["clipped_box"] == 2 and s["interventions"]["nan_action"] == 1
    sh.reset()
    assert sh.summary()["steps"] == 0


def test_replay_from_a_copied_state_gives_the_same_outputs() -> None:
    limits = parse_limits(limits_dict("effort", max_step=0.2))
    sh = SafetyShield(limits)
    rng = np.random.default_rng(0)
    inputs = [
        (js(rng.uniform(-1.1, 1.1, 2), rng.uniform(-3, 3, 2), 1 + k * T), rng.uniform(-2, 2, 2))
        for k in range(40)
    ]
    for state, action in inputs[:10]:
        sh.filter(state, action, state.stamp)
    saved = sh.state.copy()
    first = [sh.filter(s, a, s.stamp) for s, a in inputs[10:]]
    replay = SafetyShield(limits, state=saved)
    second = [replay.filter(s, a, s.stamp) for s, a in inputs[10:]]
    for x, y in zip(first, second, strict=True):
        assert x.command.tobytes() == y.command.tobytes() and x.interventions == y.interventions


def test_filter_never_raises_and_never_leaves_the_last_command_standing() -> None:
    sh = shield_for("effort")
    assert not step(sh, np.array([0.7, 0.7])).safe

    class Weird:
        names = ("a", "b")
        position = np.array([0.0, 0.0])
        velocity = np.array([0.0, 0.0])
        stamp = "yesterday"

    out = sh.filter(Weird(), np.array([0.7, 0.7]), 1.0)  # type: ignore[arg-type]
    assert out.safe and out.interventions[0].reason == "shape_mismatch"
    np.testing.assert_array_equal(out.command, [0.0, 0.0])


# --- internal errors ------------------------------------------------------------------------


@pytest.mark.parametrize("iface", ["effort", "position"])
def test_an_internal_failure_reports_internal_error_and_still_sends_the_safe_command(iface: str) -> None:
    sh = shield_for(iface)
    assert not sh.filter(js(pos=(0.3, -0.2)), np.array([0.3, -0.2]), 1.001).safe

    def broken(*_: Any) -> list[float]:
        raise ZeroDivisionError("a bug in the per-joint limits")

    # a bug after the inputs were read: not the caller's fault, so not shape_mismatch
    setattr(sh, "_limit_position" if iface == "position" else "_limit_effort_velocity", broken)
    out = sh.filter(js(pos=(0.31, -0.2), stamp=1.01), np.array([0.3, -0.2]), 1.011)
    assert out.safe and only(out, "internal_error", None)
    assert "ZeroDivisionError: a bug in the per-joint limits" in out.interventions[0].detail
    # effort: zero; position ('hold'): the newest accepted positions
    expected = [0.0, 0.0] if iface == "effort" else [0.31, -0.2]
    np.testing.assert_array_equal(out.command, expected)
    assert sh.state.last_command == expected
    assert sh.summary()["interventions"]["internal_error"] == 1
    assert not sh.state.obs_ok  # a later e-stop reset waits for a step that works


def test_an_obs_the_ood_gate_cannot_read_is_still_a_shape_mismatch() -> None:
    limits = parse_limits(limits_dict("effort", ood={"threshold": 0.5}))
    sh = SafetyShield(limits, ood_score=lambda o, a: 0.0)
    out = step(sh, np.array([0.1, 0.1]), obs=object())
    assert out.safe and only(out, "shape_mismatch", None)
    np.testing.assert_array_equal(out.command, [0.0, 0.0])
    assert not sh.state.obs_ok


def test_no_assert_guards_safety_code() -> None:
    """`python -O` strips asserts: safety code checks explicitly and fails safe."""
    import ast

    found = [
        f"{path.name}:{node.lineno}"
        for path in sorted((ROOT / "safety").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    ]
    assert found == []


def test_forgetting_the_commands_limits_the_next_step_from_rest_and_keeps_the_latch() -> None:
    """Position interface, velocity 5 -> at most 0.05 per period of 0.01 from the reference:
    after forget_commands the reference is the measured position (0.3), not the last command."""
    sh = shield_for("position", {"velocity": 5.0})
    cmd = 0.0
    for i in range(10):  # the target walks from 0.3 to 0.5 in steps of 0.05; the joint stays at 0.3
        cmd = step(sh, np.array([0.5, 0.0]), pos=(0.3, 0.0), stamp=1.0 + i * T, now=1.001 + i * T).command[0]
    assert cmd == pytest.approx(0.5)
    sh.forget_commands()
    out = step(sh, np.array([-0.5, 0.0]), pos=(0.3, 0.0), stamp=1.2, now=1.201)
    assert out.command[0] == pytest.approx(0.25)  # 0.3 - 0.05 from the measured position, not 0.45
    velocity = shield_for("velocity", {"acceleration": 10.0})  # 0.1 per period
    step(velocity, np.array([0.1, 0.0]), stamp=1.0, now=1.001)
    velocity.estop("test")
    velocity.forget_commands()
    assert velocity.state.estop_latched and velocity.state.steps == 1
    assert step(velocity, np.array([0.1, 0.0]), stamp=1.01, now=1.011).safe
