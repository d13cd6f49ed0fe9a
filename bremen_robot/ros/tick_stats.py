"""``policy_runner``'s timing record: command latency, observation age, missed and late ticks.

Written to the ``latency_log`` file at exit (``bremen bench``'s ROS section reads it; see
docs/perf-ros.md). No rclpy here, so it is unit-testable.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

RING = 1 << 16  # latency samples kept (the newest; a power of two, indexed with a mask)
MAX_MISSED_RECORDS = 200


class MissedTick(NamedTuple):
    """One control tick that started late or after missed periods.

    ``start`` (monotonic) lets the bench line a miss up with the platform's own wake-up stalls
    (bench/wake_jitter.py). In the JSON log it is a list in this field order.
    """

    tick: int
    behind_ms: float
    missed: int
    in_episode: bool
    start: float


class TickStats:
    """Counters and latency samples of one runner (mutated under the runner's lock)."""

    def __init__(self) -> None:
        self.latency = np.zeros(RING)
        self.age = np.zeros(RING)
        self.samples = 0
        self.ticks = 0
        self.missed = 0  # control periods that passed without a tick (tick_accounting)
        self.late = 0  # ticks that started more than half a period late
        self.missed_at: list[MissedTick] = []

    def command_sent(self, start: float, end: float, arrival: float) -> None:
        """A command went out at ``end``: its step began at ``start``, its observation arrived at
        ``arrival`` (all monotonic seconds)."""
        i = self.samples & (RING - 1)
        self.latency[i] = end - start
        self.age[i] = end - arrival
        self.samples += 1

    def tick(
        self, start: float, deadline: float, period: float, missed: int, late: bool, in_episode: bool
    ) -> None:
        """One realtime control tick began at ``start`` (see runner_wiring.tick_accounting)."""
        self.ticks += 1
        if missed or late:
            self.missed += missed
            self.late += int(late)
            if len(self.missed_at) < MAX_MISSED_RECORDS:
                behind_ms = round((start - deadline + (missed + 1) * period) * 1e3, 2)
                self.missed_at.append(MissedTick(self.ticks, behind_ms, missed, in_episode, start))

    def summary(self) -> dict[str, Any]:
        """Latency percentiles (ms; None before the first command) and the tick counters."""
        n = min(self.samples, RING)
        lat, age = self.latency[:n] * 1e3, self.age[:n] * 1e3
        return {
            "steps": int(self.samples),
            "p50_ms": float(np.percentile(lat, 50)) if n else None,
            "p99_ms": float(np.percentile(lat, 99)) if n else None,
            "max_ms": float(lat.max()) if n else None,
            "age_p50_ms": float(np.percentile(age, 50)) if n else None,
            "age_p99_ms": float(np.percentile(age, 99)) if n else None,
            "ticks": self.ticks,
            "missed_ticks": self.missed,
            "late_ticks": self.late,
            "missed_at": self.missed_at,
        }
