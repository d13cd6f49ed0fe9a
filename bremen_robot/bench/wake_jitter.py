"""The platform's own wake-up jitter, measured beside the policy_runner (bench helper, not a section).

A missed control period can come from the runner (its Python, its locks, its middleware) or
from the machine: a vCPU the hypervisor did not run, a kernel section that could not be
preempted. To tell them apart, the ROS bench section runs this bare loop in its own
single-threaded process per CPU, pinned to it, at the runner's rate and SCHED_FIFO priority,
over the same seconds: it only sleeps to absolute deadlines and notes every wake-up more than
half a period late. One loop per CPU, because a virtual machine's CPUs stall one at a time and
the runner's threads run on any of them. A runner miss whose window overlaps a stall on any CPU
is the platform's; the rest are ours.

    python -m bremen_robot.bench.wake_jitter RATE_HZ SECONDS PRIORITY OUT.json [CPU]

Times are ``time.monotonic()`` seconds, which is one clock for every process on the machine.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def sleep_loop(rate: float, seconds: float) -> dict[str, Any]:
    """Sleep to absolute deadlines for ``seconds``; return every wake-up over half a period late.

    ``stalls`` holds ``[deadline, lateness_s]`` pairs; ``missed_periods`` counts whole periods
    that ended before the wake-up, as the runner's ``tick_accounting`` counts them.
    """
    period = 1.0 / rate
    end = time.monotonic() + seconds
    deadline = time.monotonic() + period
    stalls: list[list[float]] = []
    missed = wakes = 0
    while deadline < end:
        delay = deadline - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        woke = time.monotonic()
        wakes += 1
        behind = woke - deadline
        if behind > 0.5 * period:
            stalls.append([deadline, behind])
        skipped = int(behind // period) if behind >= period else 0
        missed += skipped
        deadline += (skipped + 1) * period
    return {"wakes": wakes, "missed_periods": missed, "stalls": stalls, "rate_hz": rate}


def overlaps_stall(
    runner_misses: list[tuple[float, float]], stalls: list[list[float]], slack: float = 5e-4
) -> list[bool]:
    """For each runner miss, whether it overlaps a platform stall.

    ``runner_misses``: ``(start, behind)`` per missed tick, the tick having started at ``start``
    ``behind`` seconds after its deadline, so it was held during ``[start - behind, start]``.
    ``stalls``: ``[deadline, lateness]`` from :func:`sleep_loop`, held during
    ``[deadline, deadline + lateness]``. ``slack`` widens both windows for clock-read gaps.
    """
    out = []
    for start, behind in runner_misses:
        lo, hi = start - behind - slack, start + slack
        out.append(any(d <= hi and d + late >= lo for d, late in stalls))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (4, 5):
        print(
            "usage: python -m bremen_robot.bench.wake_jitter RATE_HZ SECONDS PRIORITY OUT.json [CPU]",
            file=sys.stderr,
        )
        return 2
    rate, seconds, priority, out = float(args[0]), float(args[1]), int(args[2]), Path(args[3])
    if len(args) == 5:
        os.sched_setaffinity(0, {int(args[4])})
    granted = False
    if priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            granted = True
        except (PermissionError, OSError):  # measured anyway; the result says it ran without
            pass
    result = sleep_loop(rate, seconds)
    result["sched_fifo"] = granted
    result["cpu"] = int(args[4]) if len(args) == 5 else None
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
