"""The scripted reset's pure parts: trajectory, tracking, arrival, one reset against a model arm."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import safety
from bremen_robot.reset_config import ResetConfig
from bremen_robot.reset_motion import (
    ResetMotion,
    arrived_and_still,
    plan_reset,
    start_pose,
    track_command,
)
from bremen_robot.robot_config import load_robot_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

EPS = 1e-9


def test_trapezoid_by_hand():
    # distance 1 at 0.5 rad/s, 1 rad/s^2: 0.5 s up to speed (0.125 rad), 1.5 s cruising, 0.5 s down;
    # 2.5 s is 5 periods of 0.5 s, so the samples fall on the profile's corners
    plan = plan_reset([0.0, 0.0], [1.0, -0.5], 0.5, 1.0, 0.5)
    np.testing.assert_allclose(plan.positions[:, 0], [0, 0.125, 0.375, 0.625, 0.875, 1.0])
    np.testing.assert_allclose(plan.positions[:, 1], [0, -0.0625, -0.1875, -0.3125, -0.4375, -0.5])
    np.testing.assert_allclose(plan.velocities[:, 0], [0.25, 0.5, 0.5, 0.5, 0.25])
    np.testing.assert_allclose(plan.velocities[:, 1], [-0.125, -0.25, -0.25, -0.25, -0.125])


def test_triangle_by_hand():
    # 0.04 rad never reaches 0.5 rad/s: peak sqrt(0.04 * 1) = 0.2 rad/s at 0.2 s, done at 0.4 s
    plan = plan_reset([0.3], [0.34], 0.5, 1.0, 0.1)
    np.testing.assert_allclose(plan.positions[:, 0], [0.3, 0.305, 0.32, 0.335, 0.34])
    np.testing.assert_allclose(plan.velocities[:, 0], [0.05, 0.15, 0.15, 0.05])


def test_already_there_is_no_motion():
    plan = plan_reset([1.0, 2.0], [1.0, 2.0], 0.5, 1.0, 0.05)
    assert plan.steps == 0 and plan.target.tolist() == [1.0, 2.0]


def test_periods_that_do_not_divide_the_profile_stretch_it():
    # 2.5 s of profile on 0.3 s periods: 9 periods (2.7 s), every speed scaled by 2.5/2.7
    plan = plan_reset([0.0], [1.0], 0.5, 1.0, 0.3)
    assert plan.steps == 9
    assert plan.velocities.max() == pytest.approx(0.5 * 2.5 / 2.7)
    assert plan.positions[-1, 0] == 1.0


vectors = st.integers(1, 7).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(-3, 3), min_size=n, max_size=n), st.lists(st.floats(-3, 3), min_size=n, max_size=n)
    )
)


@settings(max_examples=200, deadline=None)
@given(
    ends=vectors,
    vmax=st.floats(0.05, 2.0),
    amax=st.floats(0.1, 10.0),
    dt=st.floats(0.002, 0.1),
)
def test_every_command_respects_the_limits_and_the_plan_ends_at_the_target(ends, vmax, amax, dt):
    start, target = (np.array(v) for v in ends)
    plan = plan_reset(start, target, vmax, amax, dt)
    assert np.array_equal(plan.positions[0], start) and np.array_equal(plan.positions[-1], target)
    v = plan.velocities
    assert np.all(np.abs(v) <= vmax * (1 + EPS) + EPS)
    # from rest, to rest, and every change in between within max_acceleration x dt
    steps = np.diff(np.vstack([np.zeros(len(start)), v, np.zeros(len(start))]), axis=0)
    assert np.all(np.abs(steps) <= amax * dt * (1 + 1e-6) + EPS)
    # the commands, held for a period each, carry the robot from start to target
    np.testing.assert_allclose(start + v.sum(axis=0) * dt, target, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    q=st.floats(-3, 3),
    last=st.floats(-0.5, 0.5),
    k=st.integers(0, 40),
    gain=st.floats(0.1, 20),
)
def test_tracking_commands_stay_within_speed_and_acceleration(q, last, k, gain):
    plan = plan_reset([0.0], [2.0], 0.5, 1.0, 0.05)
    cmd = track_command(
        plan,
        k,
        np.array([q]),
        np.array([last]),
        interface="velocity",
        gain=gain,
        max_speed=0.5,
        max_acceleration=1.0,
    )
    assert abs(cmd[0]) <= 0.5 + EPS and abs(cmd[0] - last) <= 0.05 + EPS


def test_tracking_by_hand():
    plan = plan_reset([0.0, 0.0], [1.0, -0.5], 0.5, 1.0, 0.5)
    kw = {"interface": "velocity", "gain": 2.0, "max_speed": 0.5, "max_acceleration": 1.0}
    # on the path: the planned velocity
    assert track_command(plan, 1, np.array([0.125, -0.0625]), np.array([0.25, -0.125]), **kw).tolist() == [
        0.5,
        -0.25,
    ]
    # joint 2 lags 0.05 rad behind its waypoint -0.1875: -0.25 planned, - 2 x 0.05 feedback
    cmd = track_command(plan, 2, np.array([0.375, -0.1375]), np.array([0.5, -0.25]), **kw)
    np.testing.assert_allclose(cmd, [0.5, -0.35])
    # far behind: bounded by the speed limit, and by 0.5 rad/s per period around the last command
    cmd = track_command(plan, 2, np.array([-1.0, 0.0]), np.array([0.0, 0.0]), **kw)
    np.testing.assert_allclose(cmd, [0.5, -0.5])
    cmd = track_command(
        plan, 2, np.array([-1.0, 0.0]), np.array([-0.5, 0.0]), **{**kw, "max_acceleration": 0.2}
    )
    np.testing.assert_allclose(cmd, [-0.4, -0.1])
    # past the plan's end: servo on the target
    np.testing.assert_allclose(
        track_command(plan, 9, np.array([0.9, -0.5]), np.array([0.0, 0.0]), **kw), [0.2, 0.0]
    )
    # position interface: the next waypoint
    assert track_command(plan, 0, np.zeros(2), np.zeros(2), **{**kw, "interface": "position"}).tolist() == [
        0.125,
        -0.0625,
    ]


@pytest.mark.parametrize(
    ("q", "qd", "expected"),
    [
        ([1.0, 2.0], [0.0, 0.0], True),
        ([1.02, 1.98], [0.01, -0.01], True),  # on both tolerances
        ([1.03, 2.0], [0.0, 0.0], False),  # too far
        ([1.0, 2.0], [0.0, 0.03], False),  # still moving
        ([math.nan, 2.0], [0.0, 0.0], False),
        ([1.0, 2.0], [math.nan, 0.0], False),
        ([1.0], [0.0], False),  # wrong length
    ],
)
def test_arrived_and_still_by_hand(q, qd, expected):
    assert (
        arrived_and_still(np.array(q), np.array(qd), np.array([1.0, 2.0]), 0.02 + EPS, 0.01 + EPS) is expected
    )


def panda():
    robot = load_robot_config(CONFIGS / "robots" / "panda.yaml")
    assert robot.reset is not None
    return robot, safety.load_limits(robot.reset.limits, joint_names=robot.joints)


def run_reset(cfg: ResetConfig, limits, start, target, push=None, seconds=60.0):
    """One reset against a model arm: each joint's speed follows the command with a lag."""
    robot, _ = panda()
    m = ResetMotion(cfg, safety.SafetyShield(limits), robot.joints, np.asarray(target), 0.05, 0.0)
    q, qd, t = np.array(start, dtype=float), np.zeros(7), 0.0
    sent = []
    while t < seconds:
        cmd, out = m.step(robot.joints, q, qd, t, t)
        sent.append(cmd)
        if out is not None:
            return out, np.array(sent), q
        qd = 0.6 * cmd + 0.4 * qd + (push(t) if push else 0.0)
        q, t = q + qd * 0.05, t + 0.05
    raise AssertionError("the reset never decided")


def test_a_reset_arrives_within_its_limits():
    robot, limits = panda()
    cfg = robot.reset
    target = start_pose(cfg, 1, 0)
    start = np.array(cfg.home) + [0.6, -0.4, 0.3, 0.5, -0.6, 0.2, 0.3]
    out, sent, q = run_reset(cfg, limits, start, target)
    assert out.success and out.reason == "arrived"
    assert np.abs(q - target).max() <= cfg.position_tolerance
    assert np.abs(sent).max() <= cfg.max_speed + EPS
    assert np.all(sent[-1] == 0.0)  # done: the zero (safe) command
    # 0.6 + 0.4 rad at most from home to the box's target: about 2-3 s at 0.5 rad/s
    assert 1.0 < out.duration_s < 5.0


def test_a_speed_too_low_for_the_timeout_fails_once_with_the_reason():
    robot, limits = panda()
    cfg = robot.reset.model_copy(update={"max_speed": 0.05, "timeout_s": 2.0})
    start = np.array(cfg.home) + 0.5
    start[3] = cfg.home[3] - 0.5  # joint 4's range ends at -0.07
    out, sent, _ = run_reset(cfg, limits, start, cfg.home)
    assert not out.success
    assert out.reason.startswith("did not reach the start pose within timeout_s 2 s (still 0.4")
    assert 2.0 < out.duration_s <= 2.05 + EPS
    assert np.all(sent[-1] == 0.0)


def test_any_shield_intervention_fails_the_reset():
    # a push makes joint 1 faster than the reset limits' 1 rad/s envelope: the shield stops it
    robot, limits = panda()
    out, sent, _ = run_reset(
        robot.reset,
        limits,
        robot.reset.home,
        start_pose(robot.reset, 2, 0),
        push=lambda t: 1.5 if t > 0.5 else 0,
    )
    assert not out.success
    assert out.reason.startswith("the reset's shield intervened (envelope: panda_joint1 velocity 1.3")
    assert np.all(sent[-1] == 0.0) and out.duration_s < 1.0


def test_a_reset_fails_on_stale_joint_states():
    robot, limits = panda()
    m = ResetMotion(
        robot.reset, safety.SafetyShield(limits), robot.joints, np.array(robot.reset.home), 0.05, 0.0
    )
    q = np.array(robot.reset.home) + 0.3
    _, out = m.step(robot.joints, q, np.zeros(7), 0.0, 0.0)
    assert out is None
    cmd, out = m.step(robot.joints, q, np.zeros(7), 0.0, 1.0)  # the same state, 1 s later
    assert out is not None and not out.success and "stale_observation" in out.reason
    assert np.all(cmd == 0.0)


def test_a_latched_estop_is_the_reason_even_when_the_joint_states_are_also_stale():
    # under load the e-stop and a late observation can meet on one step: the operator must
    # read the e-stop, the cause that stays, not the staleness that comes and goes
    robot, limits = panda()
    shield = safety.SafetyShield(limits)
    shield.estop("bremen/estop")
    m = ResetMotion(robot.reset, shield, robot.joints, np.array(robot.reset.home), 0.05, 0.0)
    q = np.array(robot.reset.home) + 0.3
    cmd, out = m.step(robot.joints, q, np.zeros(7), 0.0, 1.0)  # 1 s old: stale as well
    assert out is not None and not out.success
    assert out.reason == "the reset's shield intervened (estop: e-stop latched (bremen/estop))"
    assert np.all(cmd == 0.0)


def test_start_poses_home_set_and_seeded_box():
    robot, _ = panda()
    cfg = robot.reset
    home = cfg.model_copy(update={"box": None})
    assert start_pose(home, 5, 0).tolist() == cfg.home
    pair = home.model_copy(update={"poses": [[0.0] * 7, [1.0] * 7]})
    assert [start_pose(pair, k, 0)[0] for k in (1, 2, 3)] == [0.0, 1.0, 0.0]
    a, b = start_pose(cfg, 1, 0), start_pose(cfg, 2, 0)
    assert np.array_equal(a, start_pose(cfg, 1, 0)) and not np.array_equal(a, b)
    assert np.all(a >= cfg.box.low) and np.all(a <= cfg.box.high)


def test_arrival_needs_fresh_joint_states_for_the_whole_settle_time():
    # the stream stops right as the arm reaches the pose: one sample, re-read on every tick, must
    # not count as "still for settle_s" (0.2 s here); the stale state fails the reset instead
    robot, limits = panda()
    home = np.array(robot.reset.home)
    m = ResetMotion(robot.reset, safety.SafetyShield(limits), robot.joints, home, 0.05, 0.0)
    outs = [m.step(robot.joints, home, np.zeros(7), 0.0, t)[1] for t in (0.0, 0.05, 0.1, 0.15, 0.2)]
    assert outs == [None] * 5
    cmd, out = m.step(robot.joints, home, np.zeros(7), 0.0, 0.3)  # 0.3 s old > max_observation_age 0.25
    assert out is not None and not out.success and "stale_observation" in out.reason
    assert np.all(cmd == 0.0)


def test_arrival_is_never_judged_on_a_stale_joint_state():
    # settle_s 0: arrival on the first sample, but never on one older than max_observation_age 0.25
    robot, limits = panda()
    cfg = robot.reset.model_copy(update={"settle_s": 0.0})
    home = np.array(cfg.home)
    m = ResetMotion(cfg, safety.SafetyShield(limits), robot.joints, home, 0.05, 0.0)
    cmd, out = m.step(robot.joints, home, np.zeros(7), 0.0, 1.0)
    assert out is not None and not out.success and "stale_observation" in out.reason
    assert np.all(cmd == 0.0)


def test_arrival_with_fresh_joint_states_settles_over_their_arrival_times():
    robot, limits = panda()
    home = np.array(robot.reset.home)
    m = ResetMotion(robot.reset, safety.SafetyShield(limits), robot.joints, home, 0.05, 0.0)
    outs = [m.step(robot.joints, home, np.zeros(7), t, t)[1] for t in (0.0, 0.05, 0.1, 0.15)]
    assert outs == [None] * 4
    cmd, out = m.step(robot.joints, home, np.zeros(7), 0.2, 0.2)
    assert out is not None and out.success and out.reason == "arrived" and out.duration_s == 0.2
    assert np.all(cmd == 0.0)


def test_a_reset_stops_where_the_robots_own_envelope_would():
    # between episodes the runner's shield is idle: the reset's shield alone watches the arm. Pushed
    # to 2.96 rad, past panda.yaml's envelope (2.9473), it must stop as the robot's shield would
    robot, limits = panda()
    home = np.array(robot.reset.home)
    m = ResetMotion(robot.reset, safety.SafetyShield(limits), robot.joints, home, 0.05, 0.0)
    q = home.copy()
    q[0] = 2.96
    cmd, out = m.step(robot.joints, q, np.zeros(7), 0.0, 0.0)
    assert out is not None and not out.success
    assert out.reason == "the reset's shield intervened (envelope: panda_joint1 position 2.96 > max 2.9473)"
    assert np.all(cmd == 0.0)


_POSITION_LIMITS = {
    "robot": "arm",
    "command_interface": "position",
    "safe_command": "hold",
    "max_step": 0.05,
    "timing": {"control_period": 0.05, "max_observation_age": 0.25},
    "joints": {
        "j1": {"position": {"min": -2.9, "max": 2.9}, "velocity": 0.6, "acceleration": 1.5},
        "j2": {"position": {"min": -3.0, "max": -0.07}, "velocity": 0.6, "acceleration": 1.5},
    },
    "command_box": {"min": -3.0, "max": 3.0},
}


def _arm_reset(timeout_s: float) -> ResetConfig:
    """The two-joint arm's reset to [0, -1]: 0.5 rad/s, 1 rad/s^2, tolerances 0.02."""
    return ResetConfig(
        home=[0.0, -1.0],
        max_speed=0.5,
        max_acceleration=1.0,
        position_tolerance=0.02,
        velocity_tolerance=0.02,
        timeout_s=timeout_s,
        limits=Path("x.yaml"),
    )


@pytest.mark.parametrize(("case", "reason"), [("estop", "estop"), ("stale", "stale_observation")])
def test_a_position_reset_that_fails_on_its_first_step_holds_where_the_robot_is(case, reason):
    """Until 2026-12-07 it held the middle of each range, [0, -1.535], on a fresh shield that had
    accepted no state: an arm left at [2.0, -2.5] by its episode was driven across its range
    while e-stopped, or because the newest state was 1 s old when the reset began."""
    cfg = _arm_reset(timeout_s=20)
    shield = safety.SafetyShield(safety.parse_limits(_POSITION_LIMITS))
    motion = ResetMotion(cfg, shield, ["j1", "j2"], np.array(cfg.home), 0.05, 100.0)
    if case == "estop":
        shield.estop("bremen/estop")
    arrival = 99.0 if case == "stale" else 100.0
    cmd, outcome = motion.step(("j1", "j2"), np.array([2.0, -2.5]), np.zeros(2), arrival, 100.0)
    assert outcome is not None and not outcome.success and f"intervened ({reason}" in outcome.reason
    np.testing.assert_array_equal(cmd, [2.0, -2.5])


def test_a_subnormal_distance_is_one_step_not_a_division_by_zero():
    """Hypothesis found it (2026-12-07): 5e-324 x max_acceleration 0.5 underflows to 0, so the
    triangle's peak speed was 0 and the profile divided by it."""
    plan = plan_reset([0.0], [5e-324], 1.0, 0.5, 0.0625)
    assert plan.positions.tolist() == [[0.0], [5e-324]] and plan.steps == 1


def test_a_position_reset_arrives_when_max_step_is_exactly_one_periods_motion():
    """Until 2026-12-07 an ideal robot failed every such reset: the config check accepts a
    max_step of max_speed x period (0.5 x 0.05 = 0.025), but the plan's float arithmetic stepped
    0.025000000000000133, and the shield counts any excess. The robot here is at each command one
    period later."""
    from bremen_robot.reset_config import check_reset_limits

    limits = safety.parse_limits({**_POSITION_LIMITS, "max_step": 0.025})
    cfg = _arm_reset(timeout_s=60)
    check_reset_limits(cfg, limits, limits)
    motion = ResetMotion(cfg, safety.SafetyShield(limits), ["j1", "j2"], np.array(cfg.home), 0.05, 0.0)
    q, qd, t = np.array([1.0, -1.0]), np.zeros(2), 0.0
    outcome = None
    for _ in range(2000):
        cmd, outcome = motion.step(("j1", "j2"), q.copy(), qd.copy(), t, t)
        if outcome is not None:
            break
        q, qd, t = cmd.copy(), (cmd - q) / 0.05, t + 0.05
    assert outcome is not None and (outcome.success, outcome.reason) == (True, "arrived")
