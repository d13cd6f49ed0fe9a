"""policy_runner's control loop without ROS: tick accounting, the safe-command hold, close and
release while a tick hangs, and the deployment counter's wait."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bremen_robot.ros.runner_wiring import tick_accounting


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
