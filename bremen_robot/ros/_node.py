"""Process plumbing shared by the three nodes: init, parameters, executor loop, clean exit.

Each node runs in its own process (``python -m bremen_robot.ros.<node> --ros-args ...`` or
the ``bremen`` package's console scripts), or several share one (``bremen_robot.ros.composed``).
SIGINT and SIGTERM set a flag; the spin loop ends, the node's ``close()`` runs (the logger
finishes its bag there), then rclpy shuts down. rclpy's own signal handlers are not installed,
so shutdown order is ours.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from bremen_robot.ros import require_rclpy


class Stop:
    flag = False


def declare(node: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """Declare parameters with typed defaults and return their values."""
    from rclpy.parameter import Parameter

    out = {}
    for name, default in defaults.items():
        if isinstance(default, list):
            node.declare_parameter(name, Parameter.Type.STRING_ARRAY)
            value = node.get_parameter(name).value
            out[name] = list(value) if value is not None else list(default)
        else:
            if name == "use_sim_time":
                out[name] = node.get_parameter(name).value
                continue
            node.declare_parameter(name, default)
            out[name] = node.get_parameter(name).value
    return out


def request_fifo_priority(priority: int) -> str | None:
    """Put the calling thread (and threads it starts later) under SCHED_FIFO ``priority``.

    Returns None on success, else a one-line warning with the fix. Call it before the executor
    is built so the executor's timer thread inherits the priority.
    """
    import os

    if priority <= 0:
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError, AttributeError) as exc:
        return (
            f"could not get SCHED_FIFO priority {priority} ({exc}); running with normal scheduling. "
            "Fix: grant rtprio (e.g. '@realtime - rtprio 99' in /etc/security/limits.conf) or CAP_SYS_NICE"
        )
    # the other threads too: the middleware's threads share locks with the publishing thread,
    # and a preempted lock holder would stall it (priority inversion)
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError, PermissionError):  # a thread that just ended
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(priority))
    return None


def make_executor(kind: str) -> Any:
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    from rclpy.executors import SingleThreadedExecutor

    return SingleThreadedExecutor()


def run(build: Callable[[Any], Any], argv: Sequence[str] | None, default_name: str) -> int:
    """Init rclpy, build the node object (``build(rclpy) -> obj`` with ``.node``, ``.executor``
    kind and ``close()``), spin until SIGINT/SIGTERM or ``obj.done``, then clean up."""
    return run_nodes([build], argv, default_name)


def run_nodes(builds: Sequence[Callable[[Any], Any]], argv: Sequence[str] | None, process_name: str) -> int:
    """:func:`run` for one or more nodes sharing this process and one executor (built in order,
    closed in reverse order); the loop ends when any node is done."""
    rclpy = require_rclpy()
    from rclpy.signals import SignalHandlerOptions

    with contextlib.suppress(OSError, ValueError, AttributeError):  # stderr without a descriptor
        faulthandler.enable(all_threads=True)  # a native crash leaves each thread's stack in the node's log
    args = list(sys.argv if argv is None else argv)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)

    def _stop(signum: int, frame: Any) -> None:
        Stop.flag = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    objs: list[Any] = []
    code = 0
    try:
        for build in builds:
            objs.append(build(rclpy))
        ex = make_executor(getattr(objs[0], "executor_kind", "events"))
        for obj in objs:
            ex.add_node(obj.node)
        import gc

        gc.collect()
        gc.freeze()  # the long-lived objects built so far are never scanned again
        for obj in objs:  # threads a node runs beside the executor start once all is built
            if hasattr(obj, "start"):
                obj.start()
        while not Stop.flag and not any(getattr(o, "done", False) for o in objs) and rclpy.ok():
            ex.spin_once(timeout_sec=0.05)
        _drain(ex, objs)
        failed = [f for o in objs if (f := getattr(o, "failed", None))]
        if failed:
            print(f"{process_name}: error: {failed[0]}", file=sys.stderr, flush=True)
            code = 1
    except Exception as exc:  # report in one line; the orchestrator shows it
        from bremen_robot.errors import BremenError

        if isinstance(exc, BremenError):
            print(f"{process_name}: error: {exc}", file=sys.stderr, flush=True)
            code = 2
        else:
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        for obj in reversed(objs):
            try:
                obj.close()
            except Exception:
                import traceback

                traceback.print_exc()
                code = code or 1
            with contextlib.suppress(Exception):
                obj.node.destroy_node()
        late = [f for o in objs if (f := getattr(o, "failed", None))]
        if late and not code:  # found while closing (e.g. the runner's deployment record)
            print(f"{process_name}: error: {late[0]}", file=sys.stderr, flush=True)
            code = 1
        rclpy.try_shutdown()
    return code


def _drain(ex: Any, objs: Sequence[Any]) -> None:
    """Before closing, let nodes that record (``drained()``/``drain_max_s``) take in what the
    middleware still holds for them: a lagging logger must not drop the last episode's stop."""
    waiting = [o for o in objs if hasattr(o, "drained")]
    if not waiting:
        return
    end = time.monotonic() + max(float(getattr(o, "drain_max_s", 2.0)) for o in waiting)
    while time.monotonic() < end and not all(o.drained() for o in waiting):
        ex.spin_once(timeout_sec=0.02)


def publish_json(pub: Any, msg_cls: Any, payload: dict[str, Any]) -> None:
    pub.publish(msg_cls(data=json.dumps(payload, separators=(",", ":"))))


def stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def now_mono() -> float:
    return time.monotonic()
