"""policy_runner's step logic without ROS: safe commands on bad input, episodes, returns."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import safety
from bremen_robot.ros.runner_core import RunnerCore
from bremen_robot.ros.runner_wiring import tick_accounting
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


def test_tick_accounting_by_hand():
    p = 0.002
    assert tick_accounting(1.0, 1.0003, p) == (0, False, pytest.approx(1.002))  # on time
    assert tick_accounting(1.0, 1.0015, p) == (0, True, pytest.approx(1.002))  # late, inside its period
    missed, late, nxt = tick_accounting(1.0, 1.0045, p)  # 2 periods passed without a tick
    assert (missed, late) == (2, False) and nxt == pytest.approx(1.006)


@given(
    behind=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    period=st.sampled_from([0.002, 0.01, 0.05]),
)
def test_tick_accounting_keeps_absolute_deadlines(behind, period):
    missed, late, nxt = tick_accounting(10.0, 10.0 + behind, period)
    k = (nxt - 10.0) / period  # the next deadline stays on the original grid: no drift
    assert k == pytest.approx(round(k), abs=1e-6) and round(k) >= 1
    start_of_served = nxt - period  # the tick serves the period it starts in
    assert start_of_served - 1e-9 <= 10.0 + behind < nxt + 1e-9
    assert missed == round(k) - 1  # every grid period before that one went without a tick
    assert late == (10.0 + behind - start_of_served > 0.5 * period)


class _FakeRunner:
    """What PolicyRunner._control_loop touches, without ROS."""

    def __init__(self, fail_first: int, stop_after: int) -> None:
        import threading

        self._stop_loop, self._lock = threading.Event(), threading.Lock()
        self.rate, self.calls, self.safe = 1000.0, 0, 0
        self.fail_first, self.stop_after = fail_first, stop_after
        self.failed, self.done = None, False

    def _count_tick(self, *args):
        pass

    def _publish_safe(self, why):
        self.safe += 1

    def on_tick(self, start):
        self.calls += 1
        if self.calls >= self.stop_after:
            self._stop_loop.set()
        if self.calls <= self.fail_first:
            raise ValueError("policy exploded")


def test_control_loop_sends_safe_commands_then_stops_the_node_on_persistent_failure():
    from bremen_robot.ros.policy_runner import MAX_FAILED_TICKS, PolicyRunner

    r = _FakeRunner(fail_first=10**9, stop_after=10**9)
    PolicyRunner._control_loop(r)  # returns by itself: the node is done, with the reason
    assert r.done and "ValueError: policy exploded" in r.failed
    assert r.calls == MAX_FAILED_TICKS and r.safe == MAX_FAILED_TICKS + 1


def test_control_loop_rides_through_a_few_failed_ticks():
    from bremen_robot.ros.policy_runner import PolicyRunner

    r = _FakeRunner(fail_first=3, stop_after=20)
    PolicyRunner._control_loop(r)
    assert not r.done and r.failed is None and r.calls == 20 and r.safe == 3


class _Closing:
    """What PolicyRunner.close touches, with a control tick stuck inside the lock."""

    def __init__(self):
        self._stop_loop = threading.Event()
        self._loop = threading.Thread(target=lambda: None)
        self._lock = threading.Lock()
        self.halting = False
        self.publishing = True  # active
        self.configured = False
        self.failed = None
        self.closed = []
        from bremen_robot.ros.tick_watchdog import TickWatchdog

        self.watchdog_sent = []
        self.tick_wd = TickWatchdog(0.001, self.watchdog_sent.append, lambda line: None)

    def _halt(self, reason):
        self.closed.append((self.halting, reason))

    from bremen_robot.ros.runner_lifecycle import ManagedRunner

    deactivate = ManagedRunner.deactivate  # the real one: close() stops an active runner with it


def test_close_sends_the_stop_even_while_a_hung_tick_holds_the_lock():
    from bremen_robot.ros.policy_runner import PolicyRunner

    r = _Closing()
    release = threading.Event()
    stuck = threading.Thread(target=lambda: (r._lock.acquire(), release.wait(30), r._lock.release()))
    stuck.start()
    while not r._lock.locked():
        time.sleep(0.01)
    closing = threading.Thread(target=PolicyRunner.close, args=(r,))
    closing.start()
    closing.join(5)
    hung = closing.is_alive()
    release.set()
    stuck.join()
    closing.join()
    # the safe-stop ran, later ticks publish nothing, and the runner is no longer active
    assert not hung and r.closed == [(True, "stopped")] and not r.publishing
    with r.tick_wd.publishing():  # a tick that published a policy command after all ...
        r.tick_wd.sent(np.zeros(6))
    time.sleep(0.01)
    r.tick_wd.poll()
    assert not r.watchdog_sent  # ... is not answered by the tick watchdog of an inactive runner


class _Releasing:
    """What a runner's callbacks and release() touch: the real methods, a stand-in node."""

    from bremen_robot.ros.policy_runner import PolicyRunner
    from bremen_robot.ros.runner_lifecycle import ManagedRunner

    _guarded, release = ManagedRunner._guarded, ManagedRunner.release
    on_watchdog, srv_reset_estop = PolicyRunner.on_watchdog, PolicyRunner.srv_reset_estop

    def __init__(self):
        from types import SimpleNamespace

        self._lock = threading.Lock()
        self._estop_seen = threading.Event()
        self.interfaces_live, self.configured, self.publishing = True, True, False
        self.lc = SimpleNamespace(state="inactive")
        self.node = SimpleNamespace(get_logger=lambda: SimpleNamespace(info=lambda msg: None))
        self._entities = []
        self.core = SimpleNamespace(episode=None)
        self.shield = SimpleNamespace(reset_estop=lambda now: SimpleNamespace(ok=True, message="cleared"))


def test_a_callback_the_executor_took_before_release_returns_without_touching_released_state():
    """Seen under load: the lifecycle cleanup released the runner (core, shield gone) while the
    executor still held a watchdog timer event; its callback then raised AttributeError and the
    process exited 1 after a clean collection."""
    from types import SimpleNamespace

    r = _Releasing()
    watchdog, reset_estop = r._guarded(r.on_watchdog), r._guarded(r.srv_reset_estop)
    answer = reset_estop(None, SimpleNamespace(success=None, message=""))
    assert (answer.success, answer.message) == (True, "cleared")  # live: the real callback runs
    r.release()
    assert not hasattr(r, "core") and not hasattr(r, "shield") and not r.configured
    assert watchdog() is None
    answer = reset_estop(None, SimpleNamespace(success=None, message=""))
    assert answer.success is False
    assert answer.message == "policy_runner is inactive, not configured; configure it first"


def test_hold_safe_publishes_at_once_then_every_period_for_the_grace():
    from bremen_robot.ros.safe_stop import hold_safe

    now = [100.0]
    sent, first = [], []
    n = hold_safe(
        lambda: sent.append(now[0]),
        0.1,
        0.5,
        on_first=lambda: first.append(len(sent)),
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert n == 6 and first == [1]
    assert sent == pytest.approx([100.0, 100.1, 100.2, 100.3, 100.4, 100.5])


def test_hold_safe_stops_when_the_middleware_is_gone():
    from bremen_robot.ros.safe_stop import hold_safe

    def gone():
        raise RuntimeError("context is not valid")

    assert hold_safe(gone, 0.01, 5.0, sleep=lambda s: None) == 0


def test_hold_safe_keeps_holding_when_the_halt_event_fails():
    from bremen_robot.ros.safe_stop import hold_safe

    now = [0.0]
    sent: list[float] = []

    def broken_event() -> None:
        raise RuntimeError("event publisher gone")

    n = hold_safe(
        lambda: sent.append(now[0]),
        0.1,
        0.35,
        on_first=broken_event,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert n == 4 and sent == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_a_deployment_record_still_running_after_the_wait_is_an_error():
    from bremen_robot.ros.deployment import DeploymentCounter

    counter = DeploymentCounter("", "0" * 64, 3, "robot", "task")
    release = threading.Event()
    counter._record = lambda: release.wait(5.0)  # a registry write that hangs
    counter.trigger()
    counter.wait(timeout=0.05)
    release.set()
    assert counter.recorded is None
    assert counter.error is not None and "deployment 3" in counter.error and "did not finish" in counter.error


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


def test_commands_that_answer_one_state_carry_different_tags_and_a_repeat_the_same():
    """Lockstep: the policy's command and a watchdog's safe command for the same state must be
    told apart (sim_bridge names the one it stepped with); a re-sent state's identical answer
    keeps its tag."""
    from bremen_robot.ros.topics import parse_command_id

    core = make(policy=lambda o: np.full(6, 0.5))
    core.start_episode(0)
    q, qd = state(np.random.default_rng(4))
    first = core.step(NAMES, q, qd, 10**9, 1.0, 1.0, 0)
    again = core.step(NAMES, q, qd, 10**9, 1.0, 1.0, 0)  # sim_bridge re-sent the state
    assert again.tag == first.tag and np.array_equal(again.command, first.command)
    stop = core.watchdog(5.0)  # the simulator did not answer: the safe command, same state
    assert stop is not None and stop.safe
    a, b = parse_command_id(first.tag), parse_command_id(stop.tag)
    assert a is not None and b is not None
    assert a[:2] == b[:2] == (1, 10**9) and a[2] is not None and b[2] is not None and a[2] != b[2]


@pytest.mark.parametrize("lockstep", [False, True], ids=["realtime", "lockstep"])
def test_a_state_stamp_that_goes_back_cuts_the_episode_before_it(lockstep):
    """Realtime, a wall clock that steps back mid-episode makes the stamps go back; ingest pairs
    by stamp order, so no transition may span the step: the episode ends at the last state
    before it, as a cut (complete, its transitions kept), and says why."""
    core = make(policy=lambda o: np.full(6, 0.5), lockstep=lockstep, episode_steps=100)
    core.start_episode(0)
    q, qd = state(np.random.default_rng(4))
    for k in (10, 11, 12):  # three states: two transitions
        out = core.step(NAMES, q, qd, k * 10**9, float(k), float(k), 0)
        assert not out.events and parse_tag(out.tag) == (1, k * 10**9)
    back = core.step(NAMES, q, qd, 11 * 10**9 + 5, 13.0, 13.0, 7)  # 1 s minus 5 ns earlier
    (stop,) = back.events
    assert (stop["event"], stop["reason"], stop["complete"]) == ("stop", "stamp_went_back", True)
    assert (stop["steps"], stop["first_obs_stamp_ns"], stop["last_obs_stamp_ns"]) == (
        2,
        10 * 10**9,
        12 * 10**9,
    )
    assert "went back by 0.999999995 s" in stop["detail"] and core.episode is None
    assert parse_tag(back.tag)[0] == -1  # the state after the step belongs to no episode
    if lockstep:
        assert back.command is None
    else:
        assert back.safe and np.allclose(back.command, 0.0)
    # the next episode runs on the new clock
    core.start_episode(0)
    for k in (1, 2):
        out = core.step(NAMES, q, qd, k * 10**9, 20.0 + k, 20.0 + k, 0)
        assert not out.events and parse_tag(out.tag) == (2, k * 10**9) and not out.safe
    assert core.episode is not None and core.episode.steps == 1


def test_a_repeated_stamp_is_not_a_step_back():
    core = make(policy=lambda o: np.full(6, 0.5), lockstep=False)
    core.start_episode(0)
    q, qd = state(np.random.default_rng(4))
    for k in (1, 2, 2, 2, 3):  # realtime ticks faster than the states come
        assert not core.step(NAMES, q, qd, k * 10**9, float(k), float(k), 0).events
    assert core.episode is not None and core.episode.steps == 2


def test_the_runner_logs_why_an_episode_was_cut_as_a_warning():
    from types import SimpleNamespace

    from bremen_robot.ros.policy_runner import PolicyRunner

    logged: list[tuple[str, str]] = []
    log = SimpleNamespace(
        info=lambda m: logged.append(("info", m)), warning=lambda m: logged.append(("warning", m))
    )
    runner = SimpleNamespace(
        out=SimpleNamespace(event=lambda e: None),
        core=SimpleNamespace(finished=False),
        _done_sent=False,
        node=SimpleNamespace(get_logger=lambda: log),
    )
    stop = {"event": "stop", "id": 4, "reason": "time_limit", "steps": 9, "return": 1.5, "interventions": 0}
    PolicyRunner._publish_events(
        runner, [stop, {**stop, "reason": "stamp_went_back", "detail": "a clock step"}]
    )
    assert logged == [
        ("info", "episode 4 time_limit: 9 steps, return 1.500, 0 interventions"),
        ("warning", "episode 4 stamp_went_back: 9 steps, return 1.500, 0 interventions; a clock step"),
    ]


def test_a_tick_the_watchdog_stopped_sends_the_safe_command_and_the_next_one_starts_from_rest():
    """Realtime: the tick watchdog sent the safe command while this tick ran (tick_watchdog).
    The tick's own command, computed on a state that is now too old, must not undo that stop;
    nothing latches, and since the robot got the safe command, the next command is limited
    from rest, not from the policy's last command."""
    import yaml

    data = yaml.safe_load((CONFIGS / "safety" / "halfcheetah.yaml").read_text())
    data["max_step"] = 0.1  # a command may change by 0.1 per step: ramps show where it starts
    limits = safety.parse_limits(data, joint_names=list(TASK.action_names))
    core = RunnerCore(
        task=TASK,
        joint_order=TASK.action_names,
        shield=safety.SafetyShield(limits),
        policy=lambda o: np.full(6, 0.5),
        action_low=TASK.action_low,
        action_high=TASK.action_high,
    )
    core.start_episode(0)
    zeros = np.zeros(9)
    for k in range(1, 7):  # 0.1, 0.2, ... up to the policy's 0.5
        out = core.step(NAMES, zeros, zeros, k * 10**9, float(k), float(k), 0)
    assert np.allclose(out.command, 0.5) and not out.safe
    assert core.after_watchdog(out, None) is out  # no stop: unchanged
    before = core.episode.interventions
    stop = "tick watchdog: no command for 0.300 s after a policy command"
    sent = core.after_watchdog(out, stop)
    assert sent.safe and np.allclose(sent.command, 0.0) and sent.tag == out.tag
    iv = sent.interventions[-1]
    assert iv.reason == "stale_observation" and iv.detail.startswith(stop) and iv.joint is None
    assert core.episode.interventions == before + 1 and not core.shield.state.estop_latched
    nxt = core.step(NAMES, zeros, zeros, 7 * 10**9, 7.0, 7.0, 0)
    assert not nxt.safe and np.allclose(nxt.command, 0.1)  # acting again, ramping up from 0


@pytest.mark.parametrize("stepped", ["policy", "safe", "no echo"])
def test_lockstep_return_uses_the_command_the_simulator_names(stepped):
    """Lockstep: the runner's policy command and, after its watchdog fired, the safe command both
    answer one state; the next state's echo names the one the physics stepped with, and the
    episode's return scores that one (as ingest does), not none of them."""
    core = make(policy=lambda o: np.full(6, 0.5))
    core.start_episode(0)
    rng = np.random.default_rng(7)
    q1, qd1 = state(rng)
    q2, qd2 = state(rng)
    first = core.step(NAMES, q1, qd1, 10**9, 1.0, 1.0, 0)
    stop = core.watchdog(5.0)  # the simulator was slow to answer
    assert stop is not None and np.allclose(stop.command, 0.0) and np.allclose(first.command, 0.5)
    echo = {"policy": first.tag, "safe": stop.tag, "no echo": ""}[stepped]
    core.step(NAMES, q2, qd2, 2 * 10**9, 6.0, 6.0, 0, echo=echo)
    o1, o2 = core.observe(NAMES, q1, qd1), core.observe(NAMES, q2, qd2)
    action = np.zeros(6) if stepped == "safe" else np.full(6, 0.5)  # without an echo: the first
    expected = float(TASK.reward(o1[None], action[None], o2[None])[0])
    assert core.episode.steps == 1 and core.episode.ret == pytest.approx(expected)
    other = np.full(6, 0.5) if stepped == "safe" else np.zeros(6)
    assert expected != pytest.approx(float(TASK.reward(o1[None], other[None], o2[None])[0]))


@pytest.mark.parametrize("stepped", ["first", "again", "no echo"])
def test_lockstep_a_state_answered_again_after_a_stop_keeps_every_answer(stepped):
    """Lockstep: the watchdog fired, then sim_bridge re-sent the state and the runner answered it
    anew (no cache replay after a stop). The simulator may step with the first answer or the new
    one; the return scores the one it names (without an echo the first, as ingest does)."""
    answers = iter([np.full(6, 0.5), np.full(6, 0.9)])
    core = make(policy=lambda o: next(answers))
    core.start_episode(0)
    rng = np.random.default_rng(8)
    q1, qd1 = state(rng)
    q2, qd2 = state(rng)
    first = core.step(NAMES, q1, qd1, 10**9, 1.0, 1.0, 0)
    assert core.watchdog(5.0) is not None
    again = core.step(NAMES, q1, qd1, 10**9, 5.1, 5.1, 0)  # re-sent, answered anew
    assert again.tag != first.tag and np.allclose(again.command, 0.9) and np.allclose(first.command, 0.5)
    echo = {"first": first.tag, "again": again.tag, "no echo": ""}[stepped]
    core.step(NAMES, q2, qd2, 2 * 10**9, 5.2, 5.2, 0, echo=echo)
    o1, o2 = core.observe(NAMES, q1, qd1), core.observe(NAMES, q2, qd2)
    action = again.command if stepped == "again" else first.command
    expected = float(TASK.reward(o1[None], action[None], o2[None])[0])
    assert core.episode.steps == 1 and core.episode.ret == pytest.approx(expected)
