"""``policy_runner`` as a ROS 2 managed (lifecycle) node, and the client that drives it.

The runner comes up **unconfigured** (parameters declared, ``/diagnostics`` published, nothing
else). The standard ``lifecycle_msgs`` services (``/policy_runner/change_state``, ``get_state``,
...) move it; ``bremen collect``, the launch file, ``ros2 lifecycle set /policy_runner <t>`` and
``python -m bremen_robot.ros.runner_lifecycle up`` all use them:

* ``configure``: robot config, policy through the registry (``verify_for_deployment``), limits,
  shield, step logic, then its topics, services and timers -> **inactive**. A failure logs one
  line (``configure failed: ...``), shows on ``/diagnostics`` (ERROR, ``configure_error``) and
  leaves it unconfigured.
* ``activate`` -> **active**: the only state in which it publishes commands.
* ``deactivate``: ends a running episode (incomplete), sends the safe command and holds it for
  ``stop_grace_s`` (:mod:`bremen_robot.ros.safe_stop`, with the ``halt`` event), then publishes
  no command -> **inactive**.
* ``cleanup``: waits for the deployment record, writes the latency log, destroys its topics and
  drops the policy -> **unconfigured**.
* ``shutdown`` (from any state): deactivate and cleanup as needed -> **finalized**; the process
  then exits (code 1 if the runner failed).

With the parameter ``autostart: true`` (no manager: running the module by hand) the runner
configures and activates itself; a configure error then ends the process with exit 2 and one line.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bremen_robot.errors import BremenError
from bremen_robot.ros.safe_stop import hold_safe


class Managed(Protocol):
    """What the runner implements; each may raise (the transition then fails)."""

    def configure(self) -> None: ...
    def activate(self) -> None: ...
    def deactivate(self, reason: str) -> None: ...
    def cleanup(self) -> None: ...
    def release(self) -> None: ...


class LifecycleStatus:
    """The runner's lifecycle bookkeeping (read by its diagnostics, set by the transitions)."""

    def __init__(self) -> None:
        self.state = "unconfigured"
        self.configure_error = ""
        self.configure_error_kind = ""
        self.configure_exception: BaseException | None = None
        self.finalized = False


def make_node(
    name: str,
    runner: Managed,
    status: LifecycleStatus,
    on_change: Callable[[], None],
    quiet: Callable[[], bool],
) -> Any:
    """A ``rclpy.lifecycle.LifecycleNode`` whose transition callbacks call ``runner``.
    ``on_change`` runs after every transition (the diagnostics publish at once); ``quiet()``
    true: a configure error is not logged (autostart raises it instead, as the one line)."""
    from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

    ok, fail = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE

    class RunnerNode(LifecycleNode):  # type: ignore[misc]
        def _done(self, state: str, result: Any) -> Any:
            status.state = state
            on_change()
            return result

        def on_configure(self, state: Any) -> Any:
            try:
                runner.configure()
            except Exception as exc:  # the transition fails; the reason is one line
                runner.release()
                status.configure_exception = exc
                status.configure_error = (
                    str(exc) if isinstance(exc, BremenError) else f"{type(exc).__name__}: {exc}"
                )
                status.configure_error_kind = "user" if isinstance(exc, BremenError) else "internal"
                if not quiet():
                    self.get_logger().error(f"configure failed: {status.configure_error}")
                return self._done("unconfigured", fail)
            status.configure_error = status.configure_error_kind = ""
            status.configure_exception = None
            return self._done("inactive", ok)

        def on_activate(self, state: Any) -> Any:
            runner.activate()
            self.get_logger().info("active: publishing commands")
            return self._done("active", ok)

        def on_deactivate(self, state: Any) -> Any:
            runner.deactivate("deactivated")
            return self._done("inactive", ok)

        def on_cleanup(self, state: Any) -> Any:
            runner.cleanup()
            return self._done("unconfigured", ok)

        def on_shutdown(self, state: Any) -> Any:
            if status.state == "active":
                runner.deactivate("shutdown")
            if status.state in ("active", "inactive"):
                runner.cleanup()
            status.finalized = True
            return self._done("finalized", ok)

        def on_error(self, state: Any) -> Any:
            # a transition raised: stop commanding and drop everything -> unconfigured
            self.get_logger().error(f"a transition from {state.label} raised; stopping and cleaning up")
            with contextlib.suppress(Exception):
                if status.state == "active":
                    runner.deactivate("lifecycle error")
            with contextlib.suppress(Exception):
                if status.state in ("active", "inactive"):
                    runner.cleanup()
                else:
                    runner.release()
            return self._done("unconfigured", ok)

    return RunnerNode(name)


def _refused(args: tuple[Any, ...], state: str) -> Any:
    """What a callback of a released runner answers: a Trigger service call (request, response)
    gets ``success=False`` with the reason; a subscription or timer, nothing."""
    if len(args) == 2 and hasattr(args[1], "success"):
        response = args[1]
        response.success = False
        response.message = f"policy_runner is {state}, not configured; configure it first"
        return response
    return None


class ManagedRunner:
    """The lifecycle half of ``policy_runner`` (mixed into its ``PolicyRunner``): what each
    transition does to the runner's state, and how the process leaves."""

    node: Any
    params: dict[str, Any]
    lc: LifecycleStatus
    publishing: bool
    configured: bool
    interfaces_live: bool
    halting: bool
    done: bool
    failed: str | None
    lockstep: bool
    rate: float
    core: Any
    shield: Any
    stats: Any
    tick_wd: Any
    counter: Any
    out: Any
    diagnostics: Any
    _lock: threading.Lock
    _stop_loop: threading.Event
    _loop: threading.Thread | None
    _entities: list[Any]
    _autostarting: bool

    if TYPE_CHECKING:  # PolicyRunner's

        def _control_loop(self) -> None: ...
        def _now_ns(self) -> int: ...
        def _publish_events(self, events: list[dict[str, Any]]) -> None: ...

    def activate(self) -> None:
        self.halting = False
        self.publishing = True
        if not self.lockstep:
            self._stop_loop.clear()
            self._loop = threading.Thread(target=self._control_loop, name="bremen_control", daemon=True)
            try:
                self._loop.start()
                self.tick_wd.start()  # sends the safe command if a tick hangs (tick_watchdog)
            except BaseException:
                # on_error deactivates only a node that became active, and this one did not: the
                # control loop would go on ticking unguarded. Stop it and hold the safe command.
                self.deactivate("activation failed")
                raise

    def deactivate(self, reason: str) -> None:
        """Stop commanding: end the episode, hold the safe command, then publish none."""
        # first: a tick running now, or stuck (a hung policy) and waking up later, publishes no
        # policy command (_publish checks halting); the robot is stopped below either way
        self.halting = True
        self._stop_loop.set()
        if self._loop is not None and self._loop.is_alive():
            self._loop.join(2.0)
        # the tick watchdog guards a hung tick until here; the halt sends the safe command next
        self.tick_wd.stop()
        locked = self._lock.acquire(timeout=1.0)
        try:
            self._halt(self.failed or reason)
        finally:
            self.publishing = False
            if locked:
                self._lock.release()

    def cleanup(self) -> None:
        """Wait for the deployment record, write the latency log, release everything."""
        self.counter.wait()
        if self.counter.error and not self.failed:
            self.failed = self.counter.error
        if self.params["latency_log"]:
            Path(self.params["latency_log"]).write_text(json.dumps(self.latency_stats()))
        self.release()

    def latency_stats(self) -> dict[str, Any]:
        """The ``latency_log`` record (docs/perf-ros.md): tick timing, rate, scheduling, shield
        counters, and the tick watchdog's stops."""
        return {
            **self.stats.summary(),
            "rate_hz": self.rate,
            "sched_fifo": os.sched_getscheduler(0) == os.SCHED_FIFO,
            "mode": self.params["mode"],
            "shield": self.shield.summary(),
            "tick_watchdog_stops": self.tick_wd.stops,  # realtime: hung ticks it stopped (tick_watchdog)
        }

    def _guarded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` as a callback of an interface made in configure: under the lock, and only
        while those interfaces live (see :meth:`release`)."""

        @functools.wraps(fn)  # rclpy reads the signature (a timer callback may take TimerInfo)
        def call(*args: Any) -> Any:
            with self._lock:
                if not self.interfaces_live:
                    # the executor took this event before release() destroyed its entity: the
                    # state it would read is gone, and nothing may be commanded any more
                    return _refused(args, self.lc.state)
                return fn(*args)

        return call

    def release(self) -> None:
        # under the lock: a callback running on another executor thread finishes first, and
        # every later one (already taken by the executor) sees interfaces_live False and returns
        locked = self._lock.acquire(timeout=1.0)
        self.interfaces_live = False
        if locked:
            self._lock.release()
        for entity in reversed(self._entities):
            with contextlib.suppress(Exception):
                destroy(self.node, entity)
        self._entities.clear()
        self.configured = False
        for name in ("core", "shield", "counter", "out"):  # the policy and the shield go with them
            self.__dict__.pop(name, None)

    def _on_transition(self) -> None:
        if self.lc.finalized:
            self.done = True  # a finalized node has nothing left to do: the process exits
        with contextlib.suppress(Exception):
            self.diagnostics.publish_now()

    def start(self) -> None:
        """Called by the process once every node is built, right before spinning. ``autostart``
        (no lifecycle manager): configure and activate now; a configure error ends the process."""
        if not self.params["autostart"]:
            return
        self._autostarting = True
        try:
            self.node.trigger_configure()
        finally:
            self._autostarting = False
        if self.lc.configure_exception is not None:
            raise self.lc.configure_exception
        self.node.trigger_activate()

    def close(self) -> None:
        """Every exit path ends here (signal, done, failure, exception): an active runner stops
        the robot first (deactivate: the held safe command), then everything is released."""
        if self.publishing:
            self.deactivate(self.failed or "stopped")
        if self.configured:
            self.cleanup()

    def _halt(self, reason: str) -> None:
        """End the episode (incomplete), then the safe command held for stop_grace_s."""
        ep = self.core.episode
        if ep is not None:
            with contextlib.suppress(Exception):
                evt = self.core.end_episode("interrupted", self._now_ns(), complete=False)
                self._publish_events([evt] if evt else [])
        safe = self.core.sent_outside_filter()
        halt = {"event": "halt", "reason": reason, "command": None if safe is None else safe.tolist()}
        halt.update(grace_s=self.params["stop_grace_s"], source="policy_runner")
        if safe is None:  # a position hold nobody measured: silence, the controller holds
            self.out.event(halt)
            self.node.get_logger().info(f"policy_runner: no safe command sent, no pose measured ({reason})")
            return
        cmd = self.out.array(safe, "safe")
        sent = hold_safe(
            lambda: self.out.cmd.publish(cmd),
            1.0 / self.rate,
            self.params["stop_grace_s"],
            on_first=lambda: self.out.event(halt),
        )
        self.node.get_logger().info(f"policy_runner: safe command sent {sent} times ({reason})")


def destroy(node: Any, entity: Any) -> None:
    from rclpy.publisher import Publisher
    from rclpy.service import Service
    from rclpy.subscription import Subscription
    from rclpy.timer import Timer

    if isinstance(entity, Publisher):
        node.destroy_publisher(entity)
    elif isinstance(entity, Subscription):
        node.destroy_subscription(entity)
    elif isinstance(entity, Service):
        node.destroy_service(entity)
    elif isinstance(entity, Timer):
        node.destroy_timer(entity)
