"""policy_runner's step logic without ROS: safe commands on bad input, episodes, returns."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import safety
from bremen_robot.ros.runner_core import RunnerCore
from bremen_robot.ros.topics import parse_tag
from bremen_robot.tasks import get_task
from tests.ros.conftest import CONFIGS

TASK = get_task("halfcheetah")
NAMES = ("rootx", "rootz", "rooty") + TASK.action_names


def make(policy=None, lockstep=True, **kw):
    limits = safety.load_limits(CONFIGS / "safety" / "halfcheetah.yaml", joint_names=list(TASK.action_names))
    core = RunnerCore(
        task=TASK,
        joint_order=TASK.action_names,
        shield=safety.SafetyShield(limits),
        policy=policy,
        action_low=TASK.action_low,
        action_high=TASK.action_high,
        lockstep=lockstep,
        **kw,
    )
    return core


def state(rng, n=9):
    return rng.normal(0, 0.1, n), rng.normal(0, 0.5, n)


def run_steps(core, rng, k, t0=1):
    outs = []
    for i in range(k):
        q, qd = state(rng)
        outs.append(core.step(NAMES, q, qd, (t0 + i) * 10**9, 0.0, 0.0, 0))
    return outs


def test_episode_return_and_time_limit_follow_the_task_functions():
    rng = np.random.default_rng(0)
    core = make(episode_steps=5, seed=3)
    start = core.start_episode(0)
    assert start["event"] == "start" and start["id"] == 1
    obs, cmds, rewards = [], [], []
    stop = None
    for i in range(6):
        q, qd = state(rng)
        out = core.step(NAMES, q, qd, (i + 1) * 10**9, 0.0, 0.0, 0)
        o = core.observe(NAMES, q, qd)
        if obs:
            rewards.append(float(TASK.reward(obs[-1][None], cmds[-1][None], o[None])[0]))
        obs.append(o)
        if out.command is not None:
            cmds.append(out.command)
            assert parse_tag(out.tag) == (1, (i + 1) * 10**9)
            assert np.all(out.command >= -1) and np.all(out.command <= 1)
        stop = next((e for e in out.events if e["event"] == "stop"), stop)
    assert stop is not None and stop["reason"] == "time_limit" and stop["steps"] == 5
    assert stop["return"] == pytest.approx(sum(rewards))
    assert core.episode is None and len(cmds) == 5


@pytest.mark.parametrize(
    "bad",
    [
        lambda q, qd: (NAMES, np.full(9, np.nan), qd),  # NaN
        lambda q, qd: (NAMES, q[:5], qd),  # wrong length
        lambda q, qd: (NAMES[:-1], q[:-1], qd[:-1]),  # a joint missing
    ],
)
def test_bad_joint_states_give_the_safe_command_and_an_intervention(bad):
    rng = np.random.default_rng(1)
    core = make(policy=lambda o: np.ones(6) * 0.5)
    core.start_episode(0)
    run_steps(core, rng, 2)
    q, qd = state(rng)
    names, q2, qd2 = bad(q, qd)
    out = core.step(names, q2, qd2, 10**10, 0.0, 0.0, 0)
    assert out.safe and np.all(out.command == 0.0)  # halfcheetah: safe_command zero
    assert out.interventions and out.interventions[0].reason in ("nan_observation", "shape_mismatch")
    ok = core.step(NAMES, q, qd, 2 * 10**10, 0.0, 0.0, 0)  # next good state: acting again
    assert not ok.safe and np.allclose(ok.command, 0.5)
    assert core.episode is not None and core.episode.interventions >= 1


def test_policy_exception_is_contained():
    def broken(obs):
        raise RuntimeError("boom")

    core = make(policy=broken)
    core.start_episode(0)
    out = run_steps(core, np.random.default_rng(2), 1)[0]
    assert out.safe and out.interventions and core.policy_errors == 1


def test_estop_latches_until_reset_and_blocks_new_episodes():
    rng = np.random.default_rng(3)
    core = make(policy=lambda o: np.ones(6) * 0.5)
    core.start_episode(0)
    run_steps(core, rng, 2)
    core.shield.estop("test")
    for out in run_steps(core, rng, 3, t0=10):
        assert out.safe and np.all(out.command == 0) and out.interventions[0].reason == "estop"
    core.end_episode("stopped", 0)
    assert core.can_start() == (False, "e-stop is latched; call bremen/reset_estop first")
    assert core.shield.reset_estop().ok
    core.start_episode(0)
    outs = run_steps(core, rng, 2, t0=20)
    assert not outs[-1].safe and np.allclose(outs[-1].command, 0.5)


def test_lockstep_repeated_state_gets_the_same_answer_and_noise_is_seeded():
    def run(seed):
        core = make(policy=lambda o: np.zeros(6), noise_sigma=0.1, seed=seed)
        core.start_episode(0)
        rng = np.random.default_rng(4)
        q, qd = state(rng)
        a = core.step(NAMES, q, qd, 10**9, 0.0, 0.0, 0)
        b = core.step(NAMES, q, qd, 10**9, 0.0, 0.0, 0)  # sim_bridge re-sent the same state
        return a.command, b.command, core.episode.steps

    a1, b1, steps = run(7)
    a2, _, _ = run(7)
    a3, _, _ = run(8)
    assert np.array_equal(a1, b1) and steps == 0
    assert np.array_equal(a1, a2) and not np.array_equal(a1, a3)
    assert 0 < np.abs(a1).max() < 0.6


def test_random_mode_is_uniform_in_bounds_and_realtime_between_episodes_is_safe():
    core = make(lockstep=False, seed=5)
    rng = np.random.default_rng(5)
    idle = run_steps(core, rng, 1)[0]
    assert idle.safe and np.all(idle.command == 0) and parse_tag(idle.tag)[0] == -1
    core.start_episode(0)
    cmds = np.array([o.command for o in run_steps(core, rng, 200, t0=10)])
    assert cmds.min() >= -1 and cmds.max() <= 1 and cmds.std() > 0.4


PANDA = get_task("panda_reach")
PANDA_NAMES = tuple(PANDA.action_names)
GOAL = {"goal.x": 0.4, "goal.y": 0.0, "goal.z": 0.5}


def _panda_core(action: float) -> RunnerCore:
    limits = safety.load_limits(CONFIGS / "safety" / "panda.yaml", joint_names=list(PANDA_NAMES))
    return RunnerCore(
        task=PANDA,
        joint_order=PANDA_NAMES,
        shield=safety.SafetyShield(limits),
        policy=lambda obs: np.full(7, action),
        action_low=PANDA.action_low,
        action_high=PANDA.action_high,
        lockstep=False,
        extras=GOAL,
    )


def test_a_new_episode_is_rate_limited_from_what_the_robot_was_last_sent():
    """Episode 1 drives every joint at -1 rad/s; between episodes the robot is sent 0 (the idle
    safe command). Episode 2's first command may change by at most acceleration x period from 0:
    joint 2 of configs/safety/panda.yaml 7.5 x 0.05 = 0.375, joint 1 15 x 0.05 = 0.75 (not
    from -1, which would let the robot jump from 0 to -1 rad/s in one period)."""
    core = _panda_core(-1.0)
    q = np.array([0.0, 0.0, 0.0, -1.5, 0.0, 1.8, 0.0])
    qd = np.zeros(7)
    core.start_episode(0)
    t = 1
    for _ in range(6):  # joint 2 needs ceil(1 / 0.375) = 3 periods to reach -1
        out = core.step(PANDA_NAMES, q, qd, t * 10**8, t * 0.1, t * 0.1, 0)
        t += 1
    assert out.command is not None and np.allclose(out.command, -1.0)
    core.end_episode("stopped", t * 10**8)
    idle = core.step(PANDA_NAMES, q, qd, t * 10**8, t * 0.1, t * 0.1, 0)  # between episodes
    assert idle.safe and np.allclose(idle.command, 0.0)
    t += 1
    core.start_episode(t * 10**8)
    first = core.step(PANDA_NAMES, q, qd, t * 10**8, t * 0.1, t * 0.1, 0)
    assert first.command is not None
    assert first.command[0] == pytest.approx(-0.75) and first.command[1] == pytest.approx(-0.375)
    assert {iv.reason for iv in first.interventions} == {"rate_limit"}


def test_a_safe_command_sent_mid_episode_resets_the_rate_limit_too():
    """A failed control tick sends the safe command (0) outside the shield: the next step starts
    from it. Position interface: from the measured position (forget_commands)."""
    core = _panda_core(1.0)
    q, qd = np.array([0.0, 0.0, 0.0, -1.5, 0.0, 1.8, 0.0]), np.zeros(7)
    core.start_episode(0)
    for t in range(1, 5):
        out = core.step(PANDA_NAMES, q, qd, t * 10**8, t * 0.1, t * 0.1, 0)
    assert np.allclose(out.command, 1.0)
    assert np.allclose(core.sent_outside_filter(), 0.0)
    out = core.step(PANDA_NAMES, q, qd, 5 * 10**8, 0.5, 0.5, 0)
    assert out.command[1] == pytest.approx(0.375)


def test_realtime_limits_apply_per_second_at_the_runners_own_rate():
    """configs/safety/panda.yaml is written for 20 Hz (period 0.05). At 500 Hz realtime, joint 1's
    15 rad/s^2 allows 15 x 0.002 = 0.03 rad/s of change per command, not 15 x 0.05 = 0.75."""
    from bremen_robot.errors import ConfigError
    from bremen_robot.ros.runner_wiring import runner_limits

    limits = safety.load_limits(CONFIGS / "safety" / "panda.yaml", joint_names=list(PANDA_NAMES))
    fast = runner_limits(limits, 500.0, lockstep=False, observation_timeout_s=0.0)
    assert fast.timing.control_period == pytest.approx(0.002)
    assert limits.timing.control_period == 0.05  # the robot's limits are not changed
    shield = safety.SafetyShield(fast)
    q = np.array([0.0, 0.0, 0.0, -1.5, 0.0, 1.8, 0.0])
    out = shield.filter(safety.JointState(PANDA_NAMES, q, np.zeros(7), 1.0), np.ones(7), 1.0)
    assert out.command[0] == pytest.approx(0.03)
    # lockstep: the simulator advances the file's period per command, whatever the rate
    assert runner_limits(limits, 500.0, lockstep=True, observation_timeout_s=0.0) is limits
    assert runner_limits(limits, 20.0, lockstep=False, observation_timeout_s=0.0) is limits
    # the collect config may tighten the watchdog, never widen it
    assert runner_limits(limits, 20.0, False, 0.1).timing.max_observation_age == 0.1
    with pytest.raises(ConfigError, match="observation_timeout_s 1 s exceeds the safety limits' max_obs"):
        runner_limits(limits, 20.0, False, 1.0)


def test_a_resent_state_after_an_estop_or_a_watchdog_stop_goes_through_the_shield_again():
    """Lockstep answers a re-sent state from its cache, but not once the shield has stopped the
    robot since: the cached policy command would undo the stop with no intervention logged."""
    core = make(policy=lambda o: np.full(6, 0.5))
    core.start_episode(0)
    q, qd = state(np.random.default_rng(4))
    first = core.step(NAMES, q, qd, 10**9, 1.0, 1.0, 0)
    assert not first.safe and np.abs(first.command).max() > 0
    core.shield.estop("bremen/estop")
    again = core.step(NAMES, q, qd, 10**9, 1.0, 1.0, 0)  # sim_bridge re-sent the same state
    assert again.safe and np.allclose(again.command, 0.0)
    assert [iv.reason for iv in again.interventions] == ["estop"]
    # a watchdog stop in between (the shield sent the safe command): also answered afresh
    other = make(policy=lambda o: np.full(6, 0.5))
    other.start_episode(0)
    other.step(NAMES, q, qd, 10**9, 1.0, 1.0, 0)
    assert other.watchdog(5.0) is not None
    late = other.step(NAMES, q, qd, 10**9, 1.0, 5.0, 0)  # re-sent at 5 s: that state is 4 s old
    assert late.safe and [iv.reason for iv in late.interventions] == ["stale_observation"]


def test_a_nan_odometry_sample_is_a_glitch_not_an_envelope_exit():
    """Ant's envelope bounds the body height, read from odometry. A NaN sample leaves no
    observation: the shield must see a non-finite reading (safe command, no latch; docs/safety.md),
    not a missing one, which it treats as outside the envelope and latches the e-stop."""
    ant = get_task("ant")
    names = tuple(ant.action_names)
    limits = safety.load_limits(CONFIGS / "safety" / "ant.yaml", joint_names=list(names))
    core = RunnerCore(
        task=ant,
        joint_order=names,
        shield=safety.SafetyShield(limits),
        policy=lambda obs: np.zeros(8),
        action_low=ant.action_low,
        action_high=ant.action_high,
        lockstep=True,
    )
    core.start_episode(0)
    q, qd = np.zeros(8), np.zeros(8)
    pose = (np.array([0.0, 0.0, 0.55]), np.array([1.0, 0.0, 0.0, 0.0]))
    twist = (np.zeros(3), np.zeros(3))
    ok = core.step(names, q, qd, 10**9, 1.0, 1.0, 0, base=(pose, twist))
    assert not ok.safe
    nan_pose = (np.array([0.0, 0.0, np.nan]), pose[1])
    out = core.step(names, q, qd, 2 * 10**9, 2.0, 2.0, 0, base=(nan_pose, twist))
    assert out.safe and [iv.reason for iv in out.interventions] == ["nan_observation"]
    assert core.shield.state.estop_latched is False
    assert not core.step(names, q, qd, 3 * 10**9, 3.0, 3.0, 0, base=(pose, twist)).safe  # goes on


def test_an_estop_that_arrives_during_a_tick_replaces_the_command_it_computed():
    """Realtime, the tick holds the runner's lock while the policy runs; the e-stop callback that
    latches the shield waits for it. The flag (set without the lock) makes the tick send the safe
    command instead of the policy's, and the shield stays latched."""
    from types import SimpleNamespace

    from bremen_robot.ros.runner_wiring import flag_first

    core = make(policy=lambda o: np.full(6, 0.5), lockstep=False)
    core.start_episode(0)
    q, qd = state(np.random.default_rng(4))
    out = core.step(NAMES, q, qd, 10**9, 1.0, 1.0, 0)
    flag = threading.Event()
    assert core.before_publish(out, flag) is out  # no e-stop: unchanged
    latched: list[bool] = []
    on_estop = flag_first(flag, lambda msg: latched.append(msg.data))
    on_estop(SimpleNamespace(data=False))
    assert not flag.is_set() and latched == [False]
    on_estop(SimpleNamespace(data=True))  # arrives while the tick computed `out`
    assert flag.is_set() and latched == [False, True]
    sent = core.before_publish(out, flag)
    assert sent.safe and np.allclose(sent.command, 0.0)
    assert [iv.reason for iv in sent.interventions][-1] == "estop"
    assert core.shield.state.estop_latched
    after = core.step(NAMES, q, qd, 2 * 10**9, 2.0, 2.0, 0)
    assert after.safe and [iv.reason for iv in after.interventions] == ["estop"]


def test_episode_ids_go_on_across_a_reconfigure():
    """A runner configured again (cleanup -> configure, on_error -> configure) builds a new core
    while the logger goes on with the same bag: its first episode must not reuse id 1, or the
    bag's episodes merge at ingest."""
    from types import SimpleNamespace

    from bremen_robot.ros.policy_runner import PolicyRunner

    runner = SimpleNamespace(publishing=True, halting=False, _next_episode_id=1, published=[])
    runner._now_ns = lambda: 0
    runner._publish_events = runner.published.extend
    runner.core = make()
    assert PolicyRunner._start(runner)[0] is True
    runner.core.end_episode("stopped", 1)
    assert PolicyRunner._start(runner)[0] is True
    assert [e["id"] for e in runner.published] == [1, 2]
    runner.core.end_episode("stopped", 2)
    runner.core = make(first_episode_id=runner._next_episode_id)  # what configure does
    assert PolicyRunner._start(runner)[0] is True
    assert [e["id"] for e in runner.published] == [1, 2, 3]


def test_a_simulator_end_before_the_tick_on_the_final_state_keeps_the_last_transition():
    """Realtime simulation publishes the final state and then `end`; the runner usually handles
    the event before its control thread ticks on that state. The stop must still name the final
    state, so ingest pairs the last command with it (and scores its termination)."""
    core = make(policy=lambda o: np.zeros(6), lockstep=False)
    core.start_episode(0)
    q, qd = state(np.random.default_rng(4))
    for k in (1, 2):
        core.step(NAMES, q, qd, k * 10**9, float(k), float(k), 0)
    _, events = core.on_sim_event(
        {"event": "end", "id": 1, "reason": "terminated", "last_state_stamp_ns": 3 * 10**9}, 0
    )
    stop = events[0]
    assert stop["last_obs_stamp_ns"] == 3 * 10**9 and stop["steps"] == 2 and stop["reason"] == "terminated"
    # an end without the stamp (an older sim_bridge), or one the runner already stepped: as before
    core.start_episode(0)
    for k in (4, 5):
        core.step(NAMES, q, qd, k * 10**9, float(k), float(k), 0)
    _, events = core.on_sim_event(
        {"event": "end", "id": 2, "reason": "time_limit", "last_state_stamp_ns": 5 * 10**9}, 0
    )
    assert events[0]["last_obs_stamp_ns"] == 5 * 10**9 and events[0]["steps"] == 1
