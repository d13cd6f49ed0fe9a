"""``policy_runner``'s health on ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``, ~1 Hz).

One status per message, named ``bremen/<node name>`` (``bremen/policy_runner``), ``hardware_id``
= the robot's name, so ``rqt_robot_monitor``, ``diagnostic_aggregator`` or a fleet's collector
can show it beside the driver's own diagnostics. The level (docs/ros.md "Diagnostics"), most
severe rule first:

* ERROR: the e-stop is latched; the runner failed (control loop stopped, deployment record
  failed); the last ``configure`` failed (the node stays unconfigured).
* WARN, only while ``active``: observations are stale (older than the limits'
  ``max_observation_age``, or none arrived; in lockstep mode only during an episode, since
  the simulator sends no state between episodes); control periods were missed since the last
  report; the measured tick rate is below 90 % of the control rate (realtime mode).
* OK: everything else, including ``unconfigured``, ``inactive`` and ``finalized`` (states the
  operator chose; the message says the robot is not commanded).

:func:`assess` is pure (no rclpy) and unit-tested; :class:`DiagnosticsPublisher` is the ROS side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bremen_robot.ros import topics as T

DIAGNOSTICS = "/diagnostics"


def status_name(node_name: str) -> str:
    """The status name a runner node publishes under (a shadow runner beside it has its own)."""
    return f"bremen/{node_name}"


OK, WARN, ERROR = 0, 1, 2
RATE_WARN_FRACTION = 0.9


@dataclass(frozen=True)
class Health:
    """What the runner reports at one instant (all plain values)."""

    state: str
    """Lifecycle state: unconfigured, inactive, active, finalized."""
    policy: str = ""
    mode: str = ""
    rate_hz: float = 0.0
    """The control rate the runner was configured for (0 before configure)."""
    ticks: int = 0
    """Realtime: control ticks; lockstep: commands sent for states (both since configure)."""
    missed_ticks: int = 0
    observation_age_s: float | None = None
    """Age of the newest joint_states message (monotonic receive time); None: none yet."""
    max_observation_age_s: float = 0.0
    in_episode: bool = False
    interventions: int = 0
    last_intervention: str = ""
    estop_latched: bool = False
    estop_reason: str = ""
    configure_error: str = ""
    configure_error_kind: str = ""
    """``user`` (bad input: unapproved policy, wrong config) or ``internal``; '' without error."""
    failed: str = ""


def assess(now: Health, prev: Health | None, dt: float) -> tuple[int, str, list[tuple[str, str]]]:
    """(level, message, key/value pairs) of ``now``; ``prev`` is the previous report, ``dt``
    seconds before (rates and new misses come from the difference)."""
    rate = 0.0
    new_missed = 0
    if prev is not None and dt > 0 and now.ticks >= prev.ticks:
        rate = (now.ticks - prev.ticks) / dt
        new_missed = max(0, now.missed_ticks - prev.missed_ticks)
    warm = prev is not None and prev.state == "active"  # a rate needs a whole period of activity
    level, message = OK, _state_message(now, rate)
    if now.estop_latched:
        level, message = ERROR, f"e-stop latched ({now.estop_reason or 'no reason given'}); robot held"
    elif now.failed:
        level, message = ERROR, f"failed: {now.failed}"
    elif now.state == "unconfigured" and now.configure_error:
        level, message = ERROR, f"configure failed: {now.configure_error}"
    elif now.state == "active":
        stale_matters = now.mode != "lockstep" or now.in_episode
        if stale_matters and now.observation_age_s is None:
            level, message = WARN, f"no {T.JOINT_STATES} received yet; sending the safe command"
        elif (
            stale_matters
            and now.observation_age_s is not None
            and now.observation_age_s > (now.max_observation_age_s)
        ):
            level, message = (
                WARN,
                f"observations stale: {now.observation_age_s:.3f} s old "
                f"(limit {now.max_observation_age_s:g} s); sending the safe command",
            )
        elif new_missed:
            level, message = WARN, f"{new_missed} control periods missed in the last {dt:.1f} s"
        elif warm and now.mode == "realtime" and now.rate_hz and rate < RATE_WARN_FRACTION * now.rate_hz:
            level, message = WARN, f"tick rate {rate:.1f} Hz below the control rate {now.rate_hz:g} Hz"
    age = "" if now.observation_age_s is None else f"{now.observation_age_s:.4f}"
    values = [
        ("lifecycle_state", now.state),
        ("policy", now.policy),
        ("mode", now.mode),
        ("control_rate_hz", f"{now.rate_hz:g}"),
        ("tick_rate_hz", f"{rate:.2f}"),
        ("ticks", str(now.ticks)),
        ("missed_ticks", str(now.missed_ticks)),
        ("observation_age_s", age),
        ("max_observation_age_s", f"{now.max_observation_age_s:g}"),
        ("in_episode", str(now.in_episode).lower()),
        ("shield_interventions", str(now.interventions)),
        ("shield_last_reason", now.last_intervention),
        ("estop_latched", str(now.estop_latched).lower()),
        ("estop_reason", now.estop_reason),
        ("configure_error", now.configure_error),
        ("configure_error_kind", now.configure_error_kind),
        ("failed", now.failed),
    ]
    return level, message, values


def _state_message(h: Health, rate: float) -> str:
    if h.state == "active":
        return f"active: commanding at {rate:.1f} Hz" if h.mode == "realtime" else "active (lockstep)"
    if h.state == "inactive":
        return "inactive: configured, not commanding (activate to run)"
    if h.state == "finalized":
        return "finalized: shut down"
    return "unconfigured: no policy loaded (configure to load it)"


def runner_health(r: Any) -> Health:
    """What ``policy_runner`` ``r`` reports now (:func:`assess` turns it into a level)."""
    lc = r.lc
    base: dict[str, Any] = {
        "state": lc.state,
        "configure_error": lc.configure_error,
        "configure_error_kind": lc.configure_error_kind,
        "failed": r.failed or "",
    }
    if not r.configured:
        return Health(**base)
    sh = r.shield.state
    latest = r._latest
    return Health(
        **base,
        policy=r.core.policy_sha256,
        mode=r.params["mode"],
        rate_hz=float(r.rate),
        ticks=r.stats.samples if r.lockstep else r.stats.ticks,
        missed_ticks=r.stats.missed,
        observation_age_s=None if latest is None else time.monotonic() - latest.arrival,
        max_observation_age_s=float(r.max_age),
        in_episode=r.core.episode is not None,
        interventions=sum(sh.counts.values()),
        last_intervention=r.last_intervention,
        estop_latched=bool(sh.estop_latched),
        estop_reason=sh.estop_reason,
    )


class DiagnosticsPublisher:
    """Publishes ``snapshot()`` on ``/diagnostics`` every ``period_s`` (steady clock) and on
    :meth:`publish_now` (after each lifecycle transition, so a change shows at once)."""

    def __init__(
        self, node: Any, snapshot: Callable[[], Health], hardware_id: Callable[[], str], period_s: float = 1.0
    ) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        from rclpy.clock import Clock, ClockType

        self._node = node
        self._snapshot, self._hardware_id = snapshot, hardware_id
        self._array, self._status, self._kv = DiagnosticArray, DiagnosticStatus, KeyValue
        # the usual /diagnostics QoS (diagnostic_updater: reliable, volatile)
        self._pub = node.create_publisher(DiagnosticArray, DIAGNOSTICS, 10)
        self._prev: Health | None = None
        self._prev_t = time.monotonic()
        self._timer = node.create_timer(
            period_s, self.publish_now, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )

    def publish_now(self) -> None:
        h = self._snapshot()
        t = time.monotonic()
        level, message, values = assess(h, self._prev, t - self._prev_t)
        self._prev, self._prev_t = h, t
        arr = self._array()
        arr.header.stamp = self._node.get_clock().now().to_msg()
        arr.status.append(
            self._status(
                level=bytes([level]),
                name=status_name(self._node.get_name()),
                message=message,
                hardware_id=self._hardware_id(),
                values=[self._kv(key=k, value=v) for k, v in values],
            )
        )
        self._pub.publish(arr)


def status_values(status: Any) -> dict[str, str]:
    """A received ``DiagnosticStatus``'s key/value pairs as a dict (for readers of the topic)."""
    return {kv.key: kv.value for kv in status.values}
