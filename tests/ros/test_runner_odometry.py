"""The runner's odometry in realtime: the newest message, unless it is too old (or too new) for
the joint states it is observed with (a stalled estimator or one on another clock)."""

from __future__ import annotations

import numpy as np

from bremen_robot.ros.runner_io import BaseSample, base_for

S = 10**9
POSE = ((np.array([0.0, 0.0, 0.55]), np.array([1.0, 0.0, 0.0, 0.0])), (np.zeros(3), np.zeros(3)))


def test_odometry_within_the_observation_age_of_the_state_is_used_and_older_or_newer_is_not():
    """Until 2026-12-07 the realtime runner observed the newest odometry whatever its stamp: an
    estimator that stalled kept feeding the policy and the envelope its last pose and body
    height. max_observation_age 0.1 s: odometry 0.05 s off either way is used; 0.15 s is not."""
    odom = BaseSample(10 * S, POSE)
    for state_stamp in (10 * S, 10 * S + S // 20, 10 * S - S // 20, 10 * S + S // 10):
        assert base_for(odom, state_stamp, 0.1) is POSE, state_stamp
    for state_stamp in (10 * S + 3 * S // 20, 10 * S - 3 * S // 20, 20 * S):
        assert base_for(odom, state_stamp, 0.1) is None, state_stamp
    assert base_for(None, 10 * S, 0.1) is None


def test_the_runner_steps_with_no_base_when_its_odometry_is_stale():
    """policy_runner._step hands the core the base only while the odometry is fresh for the
    state (the limits' max_observation_age, 0.15 s on the Ant's file)."""
    from types import SimpleNamespace

    from bremen_robot.ros.policy_runner import PolicyRunner
    from bremen_robot.ros.runner_io import JointSample

    seen: list[object] = []
    core = SimpleNamespace(step=lambda *args: seen.append(args[7]) or "out", total_steps=1, episode=None)
    runner = SimpleNamespace(
        publishing=True,
        needs_base=True,
        shield=SimpleNamespace(limits=SimpleNamespace(timing=SimpleNamespace(max_observation_age=0.15))),
        core=core,
        _now_ns=lambda: 0,
        _publish=lambda out, start, arrival: None,
        counter=SimpleNamespace(triggered=True, error=None),
        done=False,
    )
    state = JointSample(("j",), np.zeros(1), np.zeros(1), 10 * S, 0.0)
    runner._odom = BaseSample(10 * S - S // 10, POSE)  # 0.1 s older: fresh
    PolicyRunner._step(runner, state, 0.0)
    runner._odom = BaseSample(9 * S, POSE)  # 1 s older: the estimator stalled
    PolicyRunner._step(runner, state, 0.0)
    assert seen == [POSE, None]
