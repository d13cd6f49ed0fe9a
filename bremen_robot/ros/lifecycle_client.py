"""The client side of ``policy_runner``'s lifecycle: ``bremen collect`` and the launch file drive
the transitions through the standard ``lifecycle_msgs`` services, with timeouts
(the states: :mod:`bremen_robot.ros.runner_lifecycle`).

``python -m bremen_robot.ros.lifecycle_client up [NODE]`` configures and activates NODE
(default ``policy_runner``): exit 0, or 2 with one line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from bremen_robot.errors import BremenError, ConfigError

RESEND_S = 5.0


class LifecycleClient:
    """Drives a lifecycle node through its ``change_state`` / ``get_state`` services, with timeouts.

    ``spin(timeout_s)`` runs the caller's executor once; ``alive()`` false ends a wait early
    (the node's process died: the caller reports that).
    """

    def __init__(
        self,
        node: Any,
        spin: Callable[[float], None],
        target: str = "policy_runner",
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from lifecycle_msgs.srv import ChangeState, GetState

        from bremen_robot.ros.runner_diagnostics import DIAGNOSTICS, status_name, status_values

        self._change_cls, self._get_cls = ChangeState, GetState
        self._change = node.create_client(ChangeState, f"/{target}/change_state")
        self._get = node.create_client(GetState, f"/{target}/get_state")
        self._spin, self.alive, self.target = spin, alive, target
        self.last_status: dict[str, str] = {}

        def on_diag(msg: Any) -> None:
            for st in msg.status:
                if st.name == status_name(target):
                    self.last_status = status_values(st)

        node.create_subscription(DiagnosticArray, DIAGNOSTICS, on_diag, 10)

    def _until(self, pred: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= end or not self.alive():
                return pred()
            self._spin(0.02)
        return True

    def change(self, label: str, timeout: float) -> bool | None:
        """Request transition ``label``; True/False: the node's answer, None: no answer in time.

        Unanswered requests are sent again every :data:`RESEND_S` (the first answer counts): a
        server that just went away can still look ready, and its requests are never answered.
        A repeat that arrives after the transition is refused by the node and changes nothing.
        """
        end = time.monotonic() + timeout
        if not self._until(self._change.service_is_ready, timeout):
            return None
        futures: list[Any] = []
        while time.monotonic() < end and self.alive():
            req = self._change_cls.Request()
            req.transition.label = label
            futures.append(self._change.call_async(req))
            wait = min(RESEND_S, max(0.0, end - time.monotonic()))
            if self._until(lambda: any(f.done() for f in futures), wait):
                res = next(f for f in futures if f.done()).result()
                return None if res is None else bool(res.success)
        return None

    def state(self, timeout: float = 5.0) -> str | None:
        """The node's current state label, or None without an answer."""
        if not self._until(self._get.service_is_ready, timeout):
            return None
        fut = self._get.call_async(self._get_cls.Request())
        if not self._until(fut.done, timeout):
            return None
        res = fut.result()
        return None if res is None else str(res.current_state.label)

    def bring_up(self, timeout: float = 60.0, before_activate: Callable[[], None] | None = None) -> bool:
        """configure, then activate. False: the process died first (the caller says why).
        Raises a one-line error when a transition fails or does not answer in time.
        ``before_activate`` runs between the two (a wait for the rest of the graph)."""
        for label in ("configure", "activate"):
            if label == "activate" and before_activate is not None:
                before_activate()
            answer = self.change(label, timeout)
            if answer is None and not self.alive():
                return False
            if answer is None:
                raise LifecycleError(
                    f"{self.target}: no answer to '{label}' within {timeout:g} s; see its log"
                )
            if not answer:
                raise self.failure(label)
        return True

    def failure(self, label: str) -> BremenError:
        """The one-line error for a failed transition: the reason the node put on /diagnostics."""
        if label == "configure":
            self._until(lambda: bool(self.last_status.get("configure_error")), 3.0)
        why = self.last_status.get("configure_error") if label == "configure" else ""
        if not why:
            return LifecycleError(f"{self.target}: '{label}' failed; see its log")
        if self.last_status.get("configure_error_kind") == "user":
            return ConfigError(f"{self.target}: configure failed: {why}")
        return LifecycleError(f"{self.target}: configure failed: {why}")


class LifecycleError(BremenError):
    """A lifecycle transition of a node failed or went unanswered."""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bremen_robot.ros.lifecycle_client up [NODE]``: configure and activate NODE
    (default policy_runner); exit 0, or 2 with one line. The launch file runs it for a runner
    that shares its process (``composed``), where launch_ros's LifecycleNode cannot be used."""
    from bremen_robot.ros import require_rclpy

    args = list(sys.argv[1:] if argv is None else argv)
    args = args[: args.index("--ros-args")] if "--ros-args" in args else args
    if not args or args[0] != "up":
        print(
            "lifecycle_client: usage: python -m bremen_robot.ros.lifecycle_client up [NODE]", file=sys.stderr
        )
        return 2
    rclpy = require_rclpy()
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("bremen_lifecycle_up")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    try:
        client = LifecycleClient(
            node, lambda s: ex.spin_once(timeout_sec=s), args[1] if len(args) > 1 else "policy_runner"
        )
        client.bring_up()
        return 0
    except BremenError as exc:
        print(f"lifecycle_client: error: {exc}", file=sys.stderr)
        return 2
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
