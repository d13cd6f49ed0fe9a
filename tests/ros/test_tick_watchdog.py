"""The realtime tick watchdog (bremen_robot/ros/tick_watchdog.py), without ROS: a fake clock for
its decisions, real threads for the race between a hung control tick and the watchdog."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from bremen_robot.ros.tick_watchdog import TickWatchdog, tick_timeout

SAFE = np.array([0.0, 0.0])


class Clock:
    def __init__(self, t: float = 10.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def watchdog(timeout: float = 0.17):
    clock, sent, logs = Clock(), [], []
    wd = TickWatchdog(timeout, lambda cmd: sent.append(cmd.copy()), logs.append, clock=clock)
    return wd, clock, sent, logs


def tick(wd: TickWatchdog, clock: Clock, t: float, policy: bool = True) -> str | None:
    """The control thread publishes at ``t``: a policy command (arms) or the safe one (disarms)."""
    clock.t = t
    with wd.publishing() as stop:
        wd.sent(SAFE if policy else None)
    return stop


def test_the_timeout_is_one_period_plus_the_observation_age():
    # 50 Hz with halfcheetah's 0.15 s; 125 Hz with hopper's 0.024 s (configs/safety)
    assert tick_timeout(50.0, 0.15) == pytest.approx(0.02 + 0.15)
    assert tick_timeout(125.0, 0.024) == pytest.approx(0.008 + 0.024)
    # an age shorter than the period still leaves an on-time tick alone
    assert tick_timeout(20.0, 0.024) > 1 / 20


def test_a_policy_command_standing_past_the_timeout_is_stopped_once():
    wd, clock, sent, logs = watchdog(0.17)
    tick(wd, clock, 10.0)
    clock.t = 10.16
    assert wd.poll() == pytest.approx(0.01) and not sent  # not due yet; wakes when it is
    clock.t = 10.171
    wd.poll()
    assert len(sent) == 1 and np.array_equal(sent[0], SAFE) and wd.stops == 1
    assert len(logs) == 1 and "no command for 0.171 s" in logs[0] and "limit 0.170 s" in logs[0]
    clock.t = 12.0
    wd.poll()  # still hung: the safe command stands, nothing more to send
    assert len(sent) == 1 and wd.stops == 1
    # the hung tick, when it comes back, learns of the stop once
    stop = tick(wd, clock, 12.5, policy=False)
    assert stop is not None and stop == logs[0]
    assert tick(wd, clock, 12.52) is None


def test_on_time_ticks_rearm_and_safe_or_no_commands_leave_nothing_to_guard():
    wd, clock, sent, _ = watchdog(0.17)
    for k in range(50):  # 50 Hz with a check 0.15 s after each command: never overdue
        tick(wd, clock, 10.0 + 0.02 * k)
        clock.t += 0.15
        wd.poll()
    assert not sent
    tick(wd, clock, 20.0, policy=False)  # the safe command, or none (idle between episodes)
    clock.t = 30.0
    wd.poll()
    tick(wd, clock, 31.0)
    wd.disarm()  # the runner sent the safe command outside a tick (stop_episode, a failed tick)
    clock.t = 40.0
    wd.poll()
    assert not sent and wd.stops == 0


def test_the_watchdog_does_not_latch_a_late_tick_is_stopped_each_time():
    """A load spike on a shared machine: the robot stops while the tick is late, then the
    runner acts again; the next spike stops it again."""
    wd, clock, sent, _ = watchdog(0.17)
    tick(wd, clock, 10.0)
    clock.t = 10.3
    wd.poll()
    assert tick(wd, clock, 10.4, policy=False) is not None  # the late tick: replaced by safe
    tick(wd, clock, 10.42)  # the next one acts
    clock.t = 10.5
    wd.poll()
    assert len(sent) == 1  # acting again, on time: no stop
    clock.t = 10.6
    wd.poll()
    assert len(sent) == 2 and wd.stops == 2


def test_a_stopped_watchdog_sends_nothing():
    wd, clock, sent, _ = watchdog(0.05)
    wd.start()
    wd.stop()
    tick(wd, clock, 10.0)
    clock.t = 20.0
    wd.poll()
    assert not sent


def test_the_watchdog_cannot_send_between_a_ticks_check_and_its_publication():
    """The tick comes back just as its command is overdue: it checks for a stop (none), and the
    watchdog's check must wait until the tick's command is out, which re-arms it. Otherwise the
    safe command would go out and the policy's command, computed on a stale state, right after."""
    wire: list[str] = []
    clock = Clock()
    wd = TickWatchdog(0.17, lambda cmd: wire.append("safe"), lambda line: None, clock=clock)
    with wd.publishing():
        wire.append("policy 1")
        wd.sent(SAFE)
    clock.t = 10.5  # overdue
    with wd.publishing() as stop:
        assert stop is None
        checker = threading.Thread(target=wd.poll)
        checker.start()
        checker.join(0.3)
        blocked = checker.is_alive()
        wire.append("policy 2")
        wd.sent(SAFE)
    checker.join(5)
    assert blocked and wire == ["policy 1", "policy 2"]


# ---------------------------------------------------------------- the runner's publication, threaded
class _Out:
    """The runner's publishers, recording (label, values) in the order they were published."""

    def __init__(self):
        self.wire: list[tuple[str, tuple[float, ...]]] = []
        self.records: list[tuple[str, str]] = []
        self.cmd = SimpleNamespace(publish=self.wire.append)
        self.raw = SimpleNamespace(publish=lambda msg: None)

    @staticmethod
    def array(values, tag):
        return tag, tuple(float(v) for v in values)

    def safe(self, values):
        self.cmd.publish(self.array(values, "safe"))

    def interventions(self, out):
        self.records += [(str(iv.reason), str(iv.detail)) for iv in out.interventions]


def fake_runner(core, out: _Out, tick_wd: TickWatchdog) -> SimpleNamespace:
    """What PolicyRunner's _publish, srv_stop and _publish_safe touch, around a real core."""
    return SimpleNamespace(
        core=core,
        shield=core.shield,
        out=out,
        tick_wd=tick_wd,
        _estop_seen=threading.Event(),
        publishing=True,
        halting=False,
        stats=SimpleNamespace(command_sent=lambda *a: None),
        last_intervention="",
        params={"progress_period_s": 1e9},
        _last_progress=time.monotonic(),
        _publish_events=lambda events: None,
        _now_ns=lambda: 0,
        node=SimpleNamespace(get_logger=lambda: SimpleNamespace(error=lambda *a, **k: None)),
    )


def _answered(wire: list) -> list:
    """Commands by the (episode, state stamp) they answer ("safe": none); tags also number them."""
    from bremen_robot.ros.topics import parse_tag

    return [(parse_tag(label) or label, cmd) for label, cmd in wire]


def test_a_hung_tick_is_stopped_by_the_watchdog_and_its_late_command_is_replaced():
    """Realtime: the control thread's tick hangs in the policy; the watchdog thread sends the
    safe command meanwhile, the tick's own command goes out as the safe command when it returns,
    and the tick after that acts again (the runner's real _publish and step logic)."""
    from bremen_robot.ros.policy_runner import PolicyRunner
    from tests.ros.test_runner_core import NAMES, make

    hang, stuck = threading.Event(), threading.Event()

    def policy(obs):
        if hang.is_set():
            hang.clear()
            stuck.wait(10)
        return np.full(6, 0.5)

    core = make(policy=policy, lockstep=False)
    out = _Out()
    r = fake_runner(core, out, TickWatchdog(0.2, out.safe, lambda line: None))
    core.start_episode(0)
    zeros = np.zeros(9)

    def control_tick(k: int) -> None:
        now = time.monotonic()
        step = core.step(NAMES, zeros, zeros, k * 10**9, now, now, 0)
        PolicyRunner._publish(r, step, now, now)

    r.tick_wd.start()
    try:
        control_tick(1)
        hang.set()
        hung = threading.Thread(target=control_tick, args=(2,))
        hung.start()
        end = time.monotonic() + 5
        while not any(label == "safe" for label, _ in out.wire) and time.monotonic() < end:
            time.sleep(0.01)
        during = list(out.wire)
        stuck.set()
        hung.join(5)
        time.sleep(0.3)  # past the timeout again: the safe command stands, nothing more is sent
        stops, sent = r.tick_wd.stops, len(out.wire)
        control_tick(3)
    finally:
        r.tick_wd.stop()
    policy_cmd, safe_cmd = (0.5,) * 6, (0.0,) * 6
    assert _answered(during) == [((1, 10**9), policy_cmd), ("safe", safe_cmd)]
    # (a stall of this test's thread after tick 3 may add another stop: only these four count)
    assert _answered(out.wire[2:4]) == [((1, 2 * 10**9), safe_cmd), ((1, 3 * 10**9), policy_cmd)]
    assert [reason for reason, _ in out.records] == ["stale_observation"]
    assert "tick watchdog" in out.records[0][1] and r.last_intervention == "stale_observation"
    assert core.episode is not None and core.episode.interventions == 1
    assert not core.shield.state.estop_latched and (stops, sent) == (1, 3)


@pytest.mark.parametrize("how", ["stop_episode", "failed tick"])
def test_a_safe_command_the_runner_sends_outside_a_tick_leaves_the_watchdog_nothing_to_send(how):
    """After bremen/stop_episode (a scripted reset may command the robot next) or a failed tick,
    the safe command stands: a tick that then hangs must not make the watchdog send again."""
    from bremen_robot.ros.policy_runner import PolicyRunner
    from tests.ros.test_runner_core import NAMES, make

    core = make(policy=lambda o: np.full(6, 0.5), lockstep=False)
    out, clock = _Out(), Clock()
    r = fake_runner(core, out, TickWatchdog(0.17, out.safe, lambda line: None, clock=clock))
    core.start_episode(0)
    zeros = np.zeros(9)
    PolicyRunner._publish(r, core.step(NAMES, zeros, zeros, 10**9, 10.0, 10.0, 0), 10.0, 10.0)
    if how == "stop_episode":
        PolicyRunner.srv_stop(r, None, SimpleNamespace(success=None, message=""))
    else:
        PolicyRunner._publish_safe(r, "control tick failed (ValueError: boom)")
    clock.t = 20.0
    r.tick_wd.poll()
    assert [label for label, _ in _answered(out.wire)] == [(1, 10**9), "safe"] and r.tick_wd.stops == 0


def test_the_latency_log_counts_the_watchdogs_stops():
    from bremen_robot.ros.runner_lifecycle import ManagedRunner
    from bremen_robot.ros.tick_stats import TickStats

    wd, clock, _, _ = watchdog(0.17)
    tick(wd, clock, 10.0)
    clock.t = 11.0
    wd.poll()
    r = SimpleNamespace(
        stats=TickStats(),
        rate=50.0,
        params={"mode": "realtime"},
        shield=SimpleNamespace(summary=dict),
        tick_wd=wd,
    )
    assert ManagedRunner.latency_stats(r)["tick_watchdog_stops"] == 1


def test_a_stop_the_runner_superseded_is_not_handed_to_a_later_healthy_tick():
    """The watchdog stopped a hung tick that then failed: the runner sent the safe command itself
    (disarm). The stop is settled; the next healthy tick must not drop its command for it."""
    wd, clock, sent, _ = watchdog(0.17)
    tick(wd, clock, 10.0)
    clock.t = 11.0
    wd.poll()
    assert len(sent) == 1
    wd.disarm()  # _publish_safe after the failed tick
    assert tick(wd, clock, 15.0) is None
