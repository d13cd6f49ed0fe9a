"""Property tests: over random limits, states and actions (NaN, ±inf, huge values, wrong lengths,
out-of-order and future stamps, missing or duplicated joints), the command is always finite, of
the right length, inside every configured limit, equal to the independent model's prediction,
and a latched e-stop always yields the safe command."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples
from safety_model import Model, limits, limits_dicts, step_inputs

from safety import REASONS, JointState, SafetyLimits, SafetyShield, parse_limits

SETTINGS = settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _tol(x: float) -> float:
    return 1e-9 * (1.0 + abs(x))


def check_inside_limits(lim: SafetyLimits, cmd: np.ndarray, pos: list[float], vel: list[float]) -> None:
    """Every configured limit, restated without reference to the shield's code."""
    T = lim.timing.control_period
    for j, name in enumerate(lim.joint_names):
        jl, c, p, v = lim.joints[name], float(cmd[j]), pos[j], vel[j]
        box = lim.box(name)
        assert box.min <= c <= box.max, f"{name}: {c} outside box [{box.min}, {box.max}]"
        if jl.effort is not None:
            assert abs(c) * jl.effort_per_command <= jl.effort * (1 + 1e-12), f"{name}: effort"
        P = jl.position
        if lim.command_interface == "position":
            assert P is not None
            assert P.soft_lo <= c <= P.soft_hi, f"{name}: position {c} outside soft range"
            continue
        if lim.command_interface == "velocity" and jl.velocity is not None:
            assert abs(c) <= jl.velocity, f"{name}: velocity {c} > {jl.velocity}"
        if lim.command_interface == "effort" and jl.velocity is not None:
            if v > jl.velocity:
                assert c <= 0.0, f"{name}: pushes along an over-speed motion"
            if v < -jl.velocity:
                assert c >= 0.0, f"{name}: pushes along an over-speed motion"
        if P is not None:
            if p >= P.max:
                assert c <= 0.0, f"{name}: pushes beyond hard max"
            if p <= P.min:
                assert c >= 0.0, f"{name}: pushes beyond hard min"
            if lim.command_interface == "velocity":
                # cannot cross a hard limit within one control period
                assert p + c * T <= max(P.max, p) + _tol(P.max), f"{name}: crosses hard max"
                assert p + c * T >= min(P.min, p) - _tol(P.min), f"{name}: crosses hard min"


def run_sequence(lim: SafetyLimits, steps: list, shield: SafetyShield) -> None:
    model = Model(lim)
    n = len(lim.joint_names)
    for s in steps:
        if s.estop:
            shield.estop("test")
            model.latched = True
        if s.reset:
            res = shield.reset_estop()
            assert bool(res) == model.reset_allowed(), res.message
            if res:
                model.latched = False
        latched_before = shield.state.estop_latched
        js = JointState(s.names, np.asarray(s.position, dtype=np.float64), np.asarray(s.velocity), s.stamp)
        out = shield.filter(js, s.action, s.now, extras=s.extras)
        cmd = out.command
        assert isinstance(cmd, np.ndarray) and cmd.dtype == np.float64 and cmd.shape == (n,)
        assert np.all(np.isfinite(cmd))
        assert all(iv.reason in REASONS for iv in out.interventions)
        verdict, _, pos = model.observe(s)
        if latched_before:
            assert out.safe, "a latched e-stop must yield the safe command"
        if verdict == "ok" and not model.action_ok(s.action):
            verdict = "bad_action"
        event(f"step: {verdict}{' (intervened)' if verdict == 'ok' and out.interventions else ''}")
        if verdict != "ok":
            assert out.safe, f"expected the safe command ({verdict}), got {out}"
            assert len(out.interventions) == 1 and out.interventions[0].joint is None
            np.testing.assert_array_equal(cmd, shield.safe_command())
            if lim.safe_command == "zero":
                assert np.all(cmd == 0.0)
            else:
                for j, name in enumerate(lim.joint_names):
                    P, box = lim.joints[name].position, lim.box(name)
                    assert P is not None
                    assert max(P.min, box.min) <= cmd[j] <= min(P.max, box.max)
            model.sent(cmd.tolist(), safe=True)
            continue
        assert not out.safe, f"sent the safe command for valid input: {out.interventions}"
        assert pos is not None
        idx = [s.names.index(nm) for nm in lim.joint_names]
        vel = [s.velocity[i] for i in idx]
        expected = model.expected(s.action, pos, vel)
        for j in range(n):
            assert math.isclose(cmd[j], expected[j], rel_tol=1e-9, abs_tol=1e-12), (j, cmd[j], expected[j])
        check_inside_limits(lim, cmd, pos, vel)
        action = [float(a) for a in s.action]
        # every changed joint is explained, every unchanged one is not
        changed = {lim.joint_names[j] for j in range(n) if cmd[j] != action[j]}
        explained = {iv.joint for iv in out.interventions}
        assert changed == explained, (changed, explained, out.interventions)
        for name in changed:
            mine = [iv for iv in out.interventions if iv.joint == name]
            j = lim.joint_names.index(name)
            assert mine[0].requested == action[j] and mine[-1].sent == cmd[j]
        model.sent(cmd.tolist(), safe=False, pos=pos)
    summary = shield.summary()
    assert summary["steps"] == len(steps)
    assert 0.0 <= summary["fraction_intervened"] <= 1.0


@st.composite
def scenarios(draw: st.DrawFn, interface: str | None = None) -> tuple[SafetyLimits, list]:
    lim = draw(limits(interface))
    period = lim.timing.control_period
    t = draw(st.floats(0.0, 1e6, allow_nan=False))
    steps = []
    for _ in range(draw(st.integers(1, 12))):
        t += period * draw(st.floats(0.2, 3.0))
        steps.append(draw(step_inputs(lim, t)))
    return lim, steps


@SETTINGS
@given(scenarios("effort"))
def test_effort_commands_always_inside_limits(scenario: tuple[SafetyLimits, list]) -> None:
    lim, steps = scenario
    run_sequence(lim, steps, SafetyShield(lim))


@SETTINGS
@given(scenarios("velocity"))
def test_velocity_commands_always_inside_limits(scenario: tuple[SafetyLimits, list]) -> None:
    lim, steps = scenario
    run_sequence(lim, steps, SafetyShield(lim))


@SETTINGS
@given(scenarios("position"))
def test_position_commands_always_inside_limits(scenario: tuple[SafetyLimits, list]) -> None:
    lim, steps = scenario
    run_sequence(lim, steps, SafetyShield(lim))


@settings(max_examples=examples(60), deadline=None)
@given(scenarios(), st.data())
def test_latched_estop_always_yields_the_safe_command(scenario: tuple[SafetyLimits, list], data) -> None:
    lim, steps = scenario
    shield = SafetyShield(lim)
    shield.estop("operator")
    first = None
    for s in steps:
        js = JointState(s.names, np.asarray(s.position), np.asarray(s.velocity), s.stamp)
        out = shield.filter(js, s.action, s.now, extras=s.extras)
        assert out.safe and shield.state.estop_latched
        if lim.safe_command == "zero":
            assert np.all(out.command == 0.0)
        else:  # hold: the position latched when the robot was stopped, unchanged
            first = out.command if first is None else first
            np.testing.assert_array_equal(out.command, first)


@settings(max_examples=examples(60), deadline=None)
@given(limits_dicts(), st.data())
def test_in_limit_actions_pass_through_unchanged(data_dict: dict, data) -> None:
    """The shield may not be conservative for no reason: a valid action inside every limit,
    from a state inside every soft range and speed limit, is sent bit for bit."""
    data_dict["envelope"] = {}
    lim = parse_limits(data_dict)
    shield = SafetyShield(lim)
    names = lim.joint_names
    pos, vel = [], []
    for name in names:
        P = lim.joints[name].position
        lo, hi = (P.soft_lo, P.soft_hi) if P is not None else (-1.0, 1.0)
        pos.append(data.draw(st.floats(lo, hi, allow_nan=False)))
        vmax = lim.joints[name].velocity or 5.0
        vel.append(data.draw(st.floats(-vmax, vmax, allow_nan=False)))
    model = Model(lim)
    T = lim.timing.control_period
    action = []
    for j in range(len(names)):
        # a point strictly inside H and S, found from the model's bounds for two extreme requests
        hi = model.expected([1e12 if k == j else 0.0 for k in range(len(names))], pos, vel)[j]
        lo = model.expected([-1e12 if k == j else 0.0 for k in range(len(names))], pos, vel)[j]
        # strictly inside: at the exact bound, the shield's and the model's arithmetic may differ by an ulp
        frac = data.draw(st.floats(0.001, 0.999))
        action.append(min(max(lo + frac * (hi - lo), lo), hi))  # rounding may step past hi
    action_arr = np.array(action)
    js = JointState(tuple(names), np.array(pos), np.array(vel), 1.0)
    out = shield.filter(js, action_arr, 1.0 + 0.5 * lim.timing.max_observation_age)
    assert out.interventions == () and not out.safe
    assert out.command.tobytes() == action_arr.tobytes()
    assert T > 0
