"""The robot-side stop path (bremen_robot/ros/tick_watchdog.py, safe_stop.py, stop_signals.py,
tick_stats.py and runner_lifecycle.py's ManagedRunner) against one-line mutants a hand mutation
read found the other tests let through (docs/testing.md, "Mutations the suite catches").

No ROS process: fake clocks and sleeps, stand-in publishers, and the runner's lifecycle methods on
a stand-in runner. Every count, time and value below is worked out by hand; times are multiples
of 1/16 s wherever they are added up, so the float sums are exact."""

from __future__ import annotations

import signal
import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from bremen_robot.ros import runner_lifecycle
from bremen_robot.ros.runner_lifecycle import ManagedRunner
from bremen_robot.ros.safe_stop import hold_safe
from bremen_robot.ros.stop_signals import stop_on_signals, unblock_stop_signals
from bremen_robot.ros.tick_stats import RING, MissedTick, TickStats
from bremen_robot.ros.tick_watchdog import TickWatchdog
from tests.ros.test_tick_watchdog import SAFE, Clock  # SAFE: [0, 0]; Clock: starts at 10.0 s


def watchdog(timeout: float, send=None):
    clock, sent, logs = Clock(), [], []
    wd = TickWatchdog(timeout, send or (lambda cmd: sent.append(cmd.copy())), logs.append, clock=clock)
    return wd, clock, sent, logs


def arm(wd: TickWatchdog, clock: Clock, t: float) -> str | None:
    """The control thread publishes a policy command at ``t`` (arms the watchdog)."""
    clock.t = t
    with wd.publishing() as stop:
        wd.sent(SAFE)
    return stop


# ---------------------------------------------------------------- tick_watchdog.py
def test_a_command_exactly_at_the_timeout_is_not_yet_overdue():
    """Mutant: `late <= self.timeout` as `late < self.timeout`. Armed at 10.0 s with a 0.25 s
    limit, checked at 10.25 s: 0.25 s late, not more (10.25 - 10.0 is exactly 0.25 in binary),
    so nothing is sent and the next check is due in 0.25 - 0.25 = 0 s."""
    wd, clock, sent, logs = watchdog(0.25)
    arm(wd, clock, 10.0)
    clock.t = 10.25
    assert wd.poll() == 0.0
    assert (sent, logs, wd.stops) == ([], [], 0)
    clock.t = 10.3125  # 0.3125 s: overdue now
    assert wd.poll() == 0.25
    assert len(sent) == 1 and wd.stops == 1


def test_poll_returns_the_seconds_to_the_next_check_idle_pending_and_after_a_stop():
    """Mutants: the idle check returning 0 (the thread would spin), the check after a stop
    returning `timeout - late` (negative). Limit 0.25 s: idle -> 0.25; armed at 10.0, checked at
    10.0625 -> 0.25 - 0.0625 = 0.1875; stopped at 10.5 -> nothing armed any more -> 0.25."""
    wd, clock, sent, _ = watchdog(0.25)
    assert wd.poll() == 0.25
    arm(wd, clock, 10.0)
    clock.t = 10.0625
    assert wd.poll() == 0.1875
    clock.t = 10.5
    assert wd.poll() == 0.25 and len(sent) == 1
    assert wd.poll() == 0.25 and len(sent) == 1


def test_a_safe_command_that_fails_to_go_out_is_logged_as_failed_and_the_check_goes_on():
    """Mutants: the failure not added to the log line, a failing send escaping poll (the
    watchdog thread would die), the log taking the stop line instead of the send's outcome.
    Armed at 10.0 s, limit 0.25 s, checked at 10.5 s: 0.500 s without a command."""
    calls: list[np.ndarray] = []

    def send(cmd: np.ndarray) -> None:
        calls.append(cmd)
        raise RuntimeError("publisher destroyed")

    wd, clock, _, logs = watchdog(0.25, send=send)
    arm(wd, clock, 10.0)
    clock.t = 10.5
    assert wd.poll() == 0.25
    stop = (
        "tick watchdog: no command for 0.500 s after a policy command (limit 0.250 s): the "
        "control tick overran; sent the safe command"
    )
    assert logs == [f"{stop}, which failed (RuntimeError: publisher destroyed)"]
    assert len(calls) == 1 and wd.stops == 1
    # the tick that comes back learns of the stop itself (the line without the send's outcome)
    assert arm(wd, clock, 10.5625) == stop


def test_disarm_waits_for_a_check_or_publication_under_way():
    """Mutant: disarm without the gate. It would clear a stop the watchdog is about to record
    (and a later healthy tick would then drop its command for it); it must wait its turn."""
    wd, clock, _, _ = watchdog(0.25)
    arm(wd, clock, 10.0)
    with wd.publishing():  # the gate is held (by the control thread here, or by poll)
        disarming = threading.Thread(target=wd.disarm)
        disarming.start()
        disarming.join(0.3)
        blocked = disarming.is_alive()
    disarming.join(5)
    assert blocked is True and disarming.is_alive() is False


def test_start_forgets_a_policy_command_armed_before_it():
    """Mutant: start() without clearing what an earlier activation left armed. A policy command
    armed at 10.0 s (0.25 s limit) and the watchdog started at 20.0 s: the new activation has
    sent nothing yet, so no check may send the safe command or hand a stop to its first tick."""
    wd, clock, sent, logs = watchdog(0.25)
    arm(wd, clock, 10.0)
    clock.t = 20.0
    wd.start()
    try:
        assert wd.poll() == 0.25
    finally:
        wd.stop()
    assert (sent, logs, wd.stops) == ([], [], 0)
    with wd.publishing() as stop:
        assert stop is None


def test_the_watchdog_thread_ends_when_stopped():
    """Mutant: the thread's loop ignoring the quit flag (it would check forever)."""
    wd, _, _, _ = watchdog(0.25)
    wd.start()
    thread = wd._thread
    assert thread is not None
    wd.stop()
    thread.join(5)
    assert thread.is_alive() is False


def test_stop_waits_for_a_safe_command_under_way():
    """Mutant: stop() without joining the thread: it would return while the watchdog is still
    sending, though its promise is that nothing is sent after it returns."""
    entered, release = threading.Event(), threading.Event()

    def send(cmd: np.ndarray) -> None:
        entered.set()
        release.wait(5)

    wd, clock, _, logs = watchdog(0.25, send=send)
    wd.start()
    arm(wd, clock, 10.0)
    clock.t = 11.0  # overdue: the thread's next check (within 0.25 s) sends, and blocks in send
    assert entered.wait(5)
    stopping = threading.Thread(target=wd.stop)
    stopping.start()
    stopping.join(0.3)
    blocked = stopping.is_alive()
    release.set()
    stopping.join(5)
    assert blocked is True and stopping.is_alive() is False and wd.stops == 1


# ---------------------------------------------------------------- safe_stop.py
class FakeTime:
    """A clock and a sleep on it; ``oversleep`` is added to every sleep (a loaded machine wakes
    late), ``publish_takes`` to every publication (a slow middleware)."""

    def __init__(self, oversleep: float = 0.0, publish_takes: float = 0.0) -> None:
        self.t, self.oversleep, self.publish_takes = 0.0, oversleep, publish_takes
        self.sent: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        if s < 0:  # as time.sleep does
            raise ValueError("sleep length must be non-negative")
        self.t += s + self.oversleep

    def publish(self) -> None:
        self.sent.append(self.t)
        self.t += self.publish_takes


def test_the_hold_includes_a_publication_falling_exactly_at_the_end_of_the_grace():
    """Mutant: `next_at > end` as `>=`. Period 0.25 s, grace 1.0 s from 0: publications at
    0, 0.25, 0.5, 0.75 and 1.0 (the last one is not past the grace): 5."""
    ft = FakeTime()
    assert hold_safe(ft.publish, 0.25, 1.0, clock=ft.clock, sleep=ft.sleep) == 5
    assert ft.sent == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_the_hold_keeps_its_grid_when_every_sleep_overshoots():
    """Mutants: the next publication scheduled a period after the last one went out (drift), and
    a whole period slept whatever time was used. Period 0.25 s, grace 1.0 s, each sleep wakes
    0.0625 s late. The grid is 0.25, 0.5, 0.75, 1.0: publish at 0; sleep 0.25 -> 0.3125; sleep
    0.5 - 0.3125 = 0.1875 -> 0.5625; 0.75 - 0.5625 = 0.1875 -> 0.8125; 1.0 - 0.8125 -> 1.0625;
    the next grid point 1.25 is past the grace: 5 publications."""
    ft = FakeTime(oversleep=0.0625)
    assert hold_safe(ft.publish, 0.25, 1.0, clock=ft.clock, sleep=ft.sleep) == 5
    assert ft.sent == [0.0, 0.3125, 0.5625, 0.8125, 1.0625]


def test_a_publication_slower_than_the_period_never_asks_for_a_negative_sleep():
    """Mutant: `if delay > 0` dropped (time.sleep raises ValueError on a negative delay, which
    would end the hold, and the halt, after one publication). Period 0.25 s, grace 1.0 s, each
    publication takes 0.375 s: publish at 0, 0.375, 0.75, 1.125, 1.5 back to back (each next grid
    point 0.25, 0.5, 0.75, 1.0 is already past when it is due; 1.25 is past the grace): 5."""
    ft = FakeTime(publish_takes=0.375)
    assert hold_safe(ft.publish, 0.25, 1.0, clock=ft.clock, sleep=ft.sleep) == 5
    assert ft.sent == [0.0, 0.375, 0.75, 1.125, 1.5]


class GivesUp(FakeTime):
    """A middleware that fails after 1000 publications (which ends a hold)."""

    def publish(self) -> None:
        if len(self.sent) == 1000:
            raise RuntimeError("middleware gone")
        super().publish()


def test_a_period_of_zero_or_less_is_held_at_one_millisecond_not_in_a_tight_loop():
    """Mutant: the 1 ms floor on the period dropped (with a period of 0 the grid never moves and
    the hold publishes as fast as it can, forever: here until the stand-in middleware gives up
    after 1000). Grace 0.0105 s on a 1 ms grid: publications at 0, 0.001, ..., 0.010 (11); the
    next grid point, 0.011 s, is past the grace."""
    for period in (0.0, -0.02):
        ft = GivesUp()
        assert hold_safe(ft.publish, period, 0.0105, clock=ft.clock, sleep=ft.sleep) == 11
        assert ft.sent == pytest.approx([k / 1000 for k in range(11)], abs=1e-12)


# ---------------------------------------------------------------- stop_signals.py
STOPS = {signal.SIGINT, signal.SIGTERM}


def _in_thread(fn):
    """Run ``fn`` in a fresh thread (its own signal mask); return its result or its exception."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    return box[0]


def test_unblock_stop_signals_unblocks_both_signals_an_inherited_mask_blocked():
    """Mutant: SIG_UNBLOCK as SIG_BLOCK. A thread that starts with SIGINT and SIGTERM blocked
    (as under a Ray worker) has neither blocked afterwards; the other signals stay as they were."""

    def check() -> tuple[bool, bool, bool]:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGUSR2})
        unblock_stop_signals()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        return signal.SIGINT in mask, signal.SIGTERM in mask, signal.SIGUSR2 in mask

    assert _in_thread(check) == (False, False, True)


def test_outside_the_main_thread_stop_on_signals_installs_nothing_and_does_not_raise():
    """Mutant: the non-main-thread branch falling through to signal.signal (which raises
    ValueError outside the main thread) after its yield."""
    before = signal.getsignal(signal.SIGINT)

    def enter() -> list[int]:
        with stop_on_signals() as stopping:
            pass
        return stopping.fired

    assert _in_thread(enter) == []
    assert signal.getsignal(signal.SIGINT) is before


def test_the_signal_mask_the_process_inherited_comes_back_after_the_block():
    """Mutant: the mask not restored on exit. Both signals blocked before the block, unblocked
    inside it (so a signal is delivered), blocked again after it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        with stop_on_signals():
            inside = STOPS & signal.pthread_sigmask(signal.SIG_BLOCK, [])
        after = STOPS & signal.pthread_sigmask(signal.SIG_BLOCK, [])
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    assert inside == set() and after == STOPS


# ---------------------------------------------------------------- tick_stats.py
def test_missed_and_late_ticks_are_counted_apart_and_each_miss_is_recorded_as_it_was():
    """Mutants: missed counted as one per tick, late counted for every miss, the summary's
    missed and late counts swapped, ms behind rounded to 0.1 ms, in_episode always true.
    Period 0.25 s. Tick 1 starts at 10.03125 with 3 periods missed and the next deadline 11.0:
    it serves the period from 11.0 - 4 x 0.25 = 10.0, so it is 31.25 ms behind (not late: 3
    missed). Tick 2 starts at 11.1875, late, next deadline 11.25: it serves 11.0, 187.5 ms
    behind. Tick 3 is on time. So 3 ticks, 3 missed periods, 1 late tick."""
    s = TickStats()
    s.tick(10.03125, 11.0, 0.25, 3, False, False)
    s.tick(11.1875, 11.25, 0.25, 0, True, True)
    s.tick(11.25, 11.5, 0.25, 0, False, True)
    summary = s.summary()
    assert (summary["ticks"], summary["missed_ticks"], summary["late_ticks"]) == (3, 3, 1)
    assert summary["missed_at"] == [
        MissedTick(1, 31.25, 3, False, 10.03125),
        MissedTick(2, 187.5, 0, True, 11.1875),
    ]


def test_the_99th_percentiles_of_latency_and_observation_age():
    """Mutants: p99 as p90, the age's p99 (and p50) taken from the latency. 101 commands whose
    steps took 0, 1, ..., 100 ms, each on an observation 8 ms older than its step's start: with
    numpy's linear interpolation the p-th percentile of 101 values is the p-th smallest, so
    latency p50 = 50, p99 = 99, max = 100; age = latency + 8: p50 = 58, p99 = 107 (ms)."""
    s = TickStats()
    for k in range(101):
        s.command_sent(5.0, 5.0 + k / 1000, 5.0 - 0.008)
    summary = s.summary()
    got = [summary[key] for key in ("p50_ms", "p99_ms", "max_ms", "age_p50_ms", "age_p99_ms")]
    assert got == pytest.approx([50.0, 99.0, 100.0, 58.0, 107.0], abs=1e-9)
    assert summary["steps"] == 101


def test_the_latency_ring_keeps_the_newest_samples_and_counts_every_step():
    """Mutants: the ring's write index stuck at its last slot once full (the oldest samples are
    never overwritten), steps reported as the samples kept. RING + 2 commands: the first two took
    100 ms, the rest 1 ms. The two newest overwrite slots 0 and 1, which held the two oldest, so
    every kept sample is 1 ms (max 1.0), and steps is 65536 + 2 = 65538."""
    s = TickStats()
    for k in range(RING + 2):
        s.command_sent(1.0, 1.0 + (0.1 if k < 2 else 0.001), 1.0)
    summary = s.summary()
    assert summary["max_ms"] == pytest.approx(1.0, abs=1e-9)
    assert summary["steps"] == 65538


# ---------------------------------------------------------------- runner_lifecycle.py
class _Watchdog:
    def __init__(self, order: list[Any]) -> None:
        self.order, self.stops = order, 4

    def start(self) -> None:
        self.order.append("watchdog started")

    def stop(self) -> None:
        self.order.append("watchdog stopped")


class Runner(ManagedRunner):
    """ManagedRunner's real methods on a stand-in runner; ``order`` records what happened."""

    def __init__(self, **kw: Any) -> None:
        self.order: list[Any] = []
        self._lock, self._stop_loop, self._loop = threading.Lock(), threading.Event(), None
        self.halting = self.publishing = self.done = self._autostarting = False
        self.lockstep, self.configured, self.interfaces_live = True, True, True
        self.failed, self.rate = None, 50.0
        self.params = {"stop_grace_s": 0.5, "latency_log": "", "mode": "realtime", "autostart": False}
        self.tick_wd = _Watchdog(self.order)
        self.lc = runner_lifecycle.LifecycleStatus()
        self._entities = []
        self.__dict__.update(kw)

    def _control_loop(self) -> None:  # a realtime loop: runs until told to stop, then winds down
        self.order.append("loop started")
        self._stop_loop.wait(10)
        time.sleep(0.2)
        self.order.append("loop ended")

    def _now_ns(self) -> int:
        return 123

    def _publish_events(self, events: list[dict[str, Any]]) -> None:
        self.order.append(("events", events))


class Halting(Runner):
    def _halt(self, reason: str) -> None:
        self.order.append(("halt", self.halting, reason, self._lock.locked()))


def test_activate_clears_a_previous_halt_and_starts_the_realtime_loop_and_watchdog():
    """Mutants: halting not reset (a second activation would publish nothing), publishing not
    set, the lockstep branch swapped, the loop's stop flag not cleared (the loop would end at
    once), the tick watchdog not started."""
    r = Runner(lockstep=False, halting=True)
    r._stop_loop.set()  # as the last deactivate left it
    r.activate()
    try:
        assert (r.halting, r.publishing, r._stop_loop.is_set()) == (False, True, False)
        assert r._loop is not None and r._loop.is_alive() is True
        end = time.monotonic() + 5
        while len(r.order) < 2 and time.monotonic() < end:  # the loop thread says it started
            time.sleep(0.01)
        assert sorted(r.order) == ["loop started", "watchdog started"]
    finally:
        r._stop_loop.set()
        if r._loop is not None:
            r._loop.join(5)
    lockstep = Runner(lockstep=True, halting=True)
    lockstep.activate()  # lockstep: ticks come from the states, no thread, no watchdog
    assert (lockstep.halting, lockstep.publishing, lockstep._loop, lockstep.order) == (False, True, None, [])


def test_deactivate_ends_the_realtime_loop_and_stops_the_watchdog_before_the_halt():
    """Mutants: the loop not told to stop (the join would time out after 2 s, the loop still
    ticking while the safe command is held), the loop not joined (the halt would run while the
    last tick winds down: 0.2 s here). The halt runs with halting set and the lock held."""
    r = Halting(lockstep=False)
    r.activate()
    end = time.monotonic() + 5
    while "loop started" not in r.order and time.monotonic() < end:
        time.sleep(0.01)
    r.order.clear()
    r.deactivate("deactivated")
    assert r.order == ["loop ended", "watchdog stopped", ("halt", True, "deactivated", True)]
    assert (r.publishing, r._lock.locked()) == (False, False)


class _WatchdogThatCannotStart(_Watchdog):
    def start(self) -> None:
        raise RuntimeError("can't start new thread")


def test_an_activation_that_fails_after_the_loop_started_stops_it_and_holds_the_safe_command():
    """The lifecycle's on_error deactivates only a node that became active; a watchdog thread
    that cannot start fails the activation after the control loop is already ticking. Before
    2026-12-07 the loop went on unguarded and no safe command was held."""
    r = Halting(lockstep=False)
    r.tick_wd = _WatchdogThatCannotStart(r.order)
    with pytest.raises(RuntimeError, match="^can't start new thread$"):
        r.activate()
    assert r.order == [
        "loop started",
        "loop ended",
        "watchdog stopped",
        ("halt", True, "activation failed", True),
    ]
    assert (r.publishing, r._loop.is_alive()) == (False, False)


def test_deactivate_of_a_lockstep_runner_without_a_loop_thread_still_halts():
    """Mutant: the `self._loop is not None` check dropped (AttributeError on None: no safe command
    at all on a lockstep runner's deactivate or close)."""
    r = Halting(lockstep=True, publishing=True)
    r.deactivate("shutdown")
    assert r.order == ["watchdog stopped", ("halt", True, "shutdown", True)]
    assert r.publishing is False


def test_the_halt_names_the_runners_failure_rather_than_the_transition():
    """Mutants: deactivate halting with the transition's reason while the runner has failed, and
    close() deactivating with "stopped" instead of the failure."""
    failure = "control tick failed (RuntimeError: injected fault)"
    r = Halting(publishing=True, failed=failure)
    r.deactivate("deactivated")
    assert r.order[-1] == ("halt", True, failure, True)

    calls: list[tuple[str, str]] = []
    closing = Runner(publishing=True, configured=False, failed=failure)
    closing.deactivate = lambda reason: calls.append(("deactivate", reason))  # type: ignore[method-assign]
    closing.close()
    assert calls == [("deactivate", failure)]


@pytest.mark.parametrize("method", ["deactivate", "release"])
def test_a_lock_held_by_a_hung_tick_is_not_released_by_the_stop(method):
    """Mutants: deactivate and release releasing the runner's lock after their 1 s wait for it
    failed (it is the hung tick's: releasing it would let another callback run inside the tick)."""
    r = Halting(lockstep=True, publishing=True)
    taken, done = threading.Event(), threading.Event()

    def hung_tick() -> None:
        with r._lock:
            taken.set()
            done.wait(10)

    holder = threading.Thread(target=hung_tick)
    holder.start()
    assert taken.wait(5)
    try:
        if method == "deactivate":
            r.deactivate("stopped")  # gives up on the lock after 1 s and halts anyway
            assert r.order[-1] == ("halt", True, "stopped", True)
        else:
            r.release()
            assert r.interfaces_live is False
        still_held = r._lock.locked()
    finally:
        done.set()
        holder.join(5)
    assert still_held is True


class _Counter:
    def __init__(self, order: list[Any], error: str | None) -> None:
        self.order, self.error = order, error

    def wait(self) -> None:
        self.order.append("record waited for")


def _configured(*, error: str | None = None, failed: str | None = None, log: str = "") -> Runner:
    r = Runner(failed=failed)
    r.counter = _Counter(r.order, error)
    r.params["latency_log"] = log
    r.core, r.shield, r.out = object(), SimpleNamespace(summary=lambda: {"interventions": 2}), object()
    r.stats = SimpleNamespace(summary=lambda: {"steps": 3})
    return r


def test_cleanup_waits_for_the_record_writes_the_latency_log_and_releases(tmp_path, monkeypatch):
    """Mutants: the record not waited for, the latency-log condition inverted, release dropped,
    sched_fifo inverted, the rate written as the period, the watchdog's stops written as 0. The
    stand-in's stats, shield and watchdog give 3 steps, 2 interventions and 4 stops; 50 Hz."""
    monkeypatch.setattr(runner_lifecycle.os, "sched_getscheduler", lambda pid: runner_lifecycle.os.SCHED_FIFO)
    log = tmp_path / "latency.json"
    r = _configured(log=str(log))
    r.cleanup()
    assert r.order == ["record waited for"]
    assert log.read_text() == (
        '{"steps": 3, "rate_hz": 50.0, "sched_fifo": true, "mode": "realtime", '
        '"shield": {"interventions": 2}, "tick_watchdog_stops": 4}'
    )
    assert (r.configured, r.interfaces_live, r.failed) == (False, False, None)
    assert [name for name in ("core", "shield", "counter", "out") if name in r.__dict__] == []

    monkeypatch.setattr(
        runner_lifecycle.os, "sched_getscheduler", lambda pid: runner_lifecycle.os.SCHED_OTHER
    )
    assert ManagedRunner.latency_stats(_configured())["sched_fifo"] is False
    quiet = _configured(log="")  # no latency_log: nothing written (not even to ".")
    quiet.cleanup()
    assert quiet.order == ["record waited for"] and quiet.configured is False


@pytest.mark.parametrize(
    "error, failed, expected",
    [
        ("deployment 3: registry write did not finish", None, "deployment 3: registry write did not finish"),
        ("deployment 3: registry write did not finish", "control tick failed", "control tick failed"),
        (None, None, None),
    ],
)
def test_a_deployment_record_error_fails_the_runner_unless_it_failed_first(tmp_path, error, failed, expected):
    """Mutants: the record's error overwriting an earlier failure, and `failed` set without an
    error (to None: harmless) or, with `not self.failed` alone, to the record's None."""
    r = _configured(error=error, failed=failed)
    r.cleanup()
    assert r.failed == expected


def test_a_guarded_callback_waits_for_the_runners_lock():
    """Mutant: _guarded calling the callback without the lock (it would run inside a tick)."""
    r = Runner()
    ran: list[str] = []
    call = r._guarded(lambda: ran.append("callback"))
    with r._lock:
        caller = threading.Thread(target=call)
        caller.start()
        caller.join(0.3)
        early = list(ran)
    caller.join(5)
    assert early == [] and ran == ["callback"]


def test_release_destroys_each_interface_once_newest_first(monkeypatch):
    """Mutants: the entities destroyed oldest first, the list not cleared (a second release, or
    the next configure's, would destroy them again)."""
    destroyed: list[str] = []
    monkeypatch.setattr(runner_lifecycle, "destroy", lambda node, entity: destroyed.append(entity))
    r = Runner(node=None, _entities=["publisher", "subscription", "timer"])
    r.release()
    r.release()
    assert destroyed == ["timer", "subscription", "publisher"] and r._entities == []


@pytest.mark.parametrize("finalized, done", [(True, True), (False, False)])
def test_a_transition_ends_the_process_only_when_finalized_and_survives_a_failing_diagnostic(finalized, done):
    """Mutants: the finalized check inverted, a failing diagnostics publication escaping."""
    calls: list[str] = []

    def publish_now() -> None:
        calls.append("diagnostics")
        raise RuntimeError("publisher gone")

    r = Runner(diagnostics=SimpleNamespace(publish_now=publish_now))
    r.lc.finalized = finalized
    r._on_transition()
    assert (r.done, calls) == (done, ["diagnostics"])


class _Node:
    def __init__(self, r: Runner, error: Exception | None) -> None:
        self.r, self.error = r, error

    def trigger_configure(self) -> None:
        self.r.order.append(("configure", self.r._autostarting))
        self.r.lc.configure_exception = self.error

    def trigger_activate(self) -> None:
        self.r.order.append(("activate", self.r._autostarting))


def test_autostart_configures_then_activates_and_a_configure_error_ends_it():
    """Mutants: the autostart check inverted, _autostarting left true, the configure-error check
    inverted, the activation dropped."""
    manual = Runner()
    manual.node = _Node(manual, None)
    manual.start()
    assert manual.order == []  # a lifecycle manager drives it

    auto = Runner()
    auto.params["autostart"] = True
    auto.node = _Node(auto, None)
    auto.start()
    assert auto.order == [("configure", True), ("activate", False)] and auto._autostarting is False

    broken = Runner()
    broken.params["autostart"] = True
    error = ValueError("limits file missing")
    broken.node = _Node(broken, error)
    with pytest.raises(ValueError) as raised:
        broken.start()
    assert raised.value is error and broken.order == [("configure", True)]
    assert broken._autostarting is False


@pytest.mark.parametrize(
    "publishing, configured, expected",
    [
        (True, True, [("deactivate", "stopped"), "cleanup"]),
        (False, True, ["cleanup"]),
        (True, False, [("deactivate", "stopped")]),
        (False, False, []),
    ],
)
def test_close_deactivates_only_an_active_runner_and_cleans_up_only_a_configured_one(
    publishing, configured, expected
):
    """Mutants: close's publishing and configured checks inverted."""
    r = Runner(publishing=publishing, configured=configured)
    r.deactivate = lambda reason: r.order.append(("deactivate", reason))  # type: ignore[method-assign]
    r.cleanup = lambda: r.order.append("cleanup")  # type: ignore[method-assign]
    r.close()
    assert r.order == expected


class _Out:
    def __init__(self, order: list[Any]) -> None:
        self.order = order
        self.cmd = SimpleNamespace(publish=lambda msg: order.append(("command", msg.tag, msg.data)))

    @staticmethod
    def array(values, tag):
        return SimpleNamespace(tag=tag, data=[float(v) for v in values])

    def event(self, evt: dict[str, Any]) -> None:
        self.order.append(("event", evt))


class _Core:
    def __init__(self, order: list[Any], episode: Any, evt: Any) -> None:
        self.order, self.episode, self.evt = order, episode, evt

    def end_episode(self, reason: str, now_ns: int, complete: bool) -> Any:
        self.order.append(("end_episode", reason, now_ns, complete))
        if isinstance(self.evt, Exception):
            raise self.evt
        return self.evt

    def sent_outside_filter(self) -> np.ndarray:
        return np.array([0.0, 0.25])


def _halt(monkeypatch, episode: Any, evt: Any) -> list[Any]:
    """The real _halt at 50 Hz with a 0.5 s grace, hold_safe replaced by one that records its
    period and grace and publishes twice (the halt event after the first)."""

    def hold(publish, period_s, grace_s, *, on_first=None):
        r.order.append(("hold", period_s, grace_s))
        publish()
        if on_first is not None:
            on_first()
        publish()
        return 2

    monkeypatch.setattr(runner_lifecycle, "hold_safe", hold)
    logged: list[str] = []
    r = Runner(node=SimpleNamespace(get_logger=lambda: SimpleNamespace(info=logged.append)))
    r.core, r.out = _Core(r.order, episode, evt), _Out(r.order)
    r._halt("deactivated")
    assert logged == ["policy_runner: safe command sent 2 times (deactivated)"]
    return r.order


HELD = [
    ("hold", 0.02, 0.5),  # period 1 / 50 Hz, the config's stop_grace_s
    ("command", "safe", [0.0, 0.25]),
    (
        "event",
        {
            "event": "halt",
            "reason": "deactivated",
            "command": [0.0, 0.25],
            "grace_s": 0.5,
            "source": "policy_runner",
        },
    ),
    ("command", "safe", [0.0, 0.25]),
]


def test_the_halt_ends_the_episode_incomplete_then_holds_the_safe_command_with_its_event(monkeypatch):
    """Mutants: the episode check inverted, the episode ended complete, the command not labelled
    safe, the rate passed as the period, no grace, the halt event without its command or not
    sent at all."""
    stop = {"event": "stop", "id": 1}
    order = _halt(monkeypatch, SimpleNamespace(id=1), stop)
    assert order == [("end_episode", "interrupted", 123, False), ("events", [stop]), *HELD]
    assert _halt(monkeypatch, None, stop) == HELD  # between episodes: nothing to end


def test_the_halt_publishes_no_event_for_an_episode_that_ends_without_one(monkeypatch):
    """Mutant: `[evt] if evt else []` as `[evt]` (a None event handed to the publisher)."""
    order = _halt(monkeypatch, SimpleNamespace(id=1), None)
    assert order == [("end_episode", "interrupted", 123, False), ("events", []), *HELD]


def test_an_episode_end_that_raises_does_not_keep_the_safe_command_from_the_robot(monkeypatch):
    """Mutant: end_episode's failure not suppressed: the halt would raise before any safe
    command went out, leaving the last policy command standing."""
    order = _halt(monkeypatch, SimpleNamespace(id=1), RuntimeError("bag writer gone"))
    assert order == [("end_episode", "interrupted", 123, False), *HELD]
