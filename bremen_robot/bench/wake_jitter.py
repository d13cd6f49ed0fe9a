"""The platform's own wake-up jitter, measured beside the policy_runner (bench helper, not a section).

A missed control period can come from the runner (its Python, its locks, its middleware) or
from the machine: a vCPU the hypervisor did not run, a kernel section that could not be
preempted. To tell them apart, the ROS bench section runs this bare loop in one single-threaded
process per CPU, pinned to it, for the runner's whole life: it only sleeps to absolute deadlines
at the runner's rate and notes every wake-up more than half a period late. The bench gives the
loops a SCHED_FIFO priority above the runner's, so no runner thread can delay them: what they
see is the machine. One loop per CPU, because a VM's CPUs stall one at a time and the runner's
threads run on any of them.

    python -m bremen_robot.bench.wake_jitter RATE_HZ MAX_SECONDS PRIORITY OUT.json [CPU]

It stops at MAX_SECONDS or on SIGINT/SIGTERM, and then writes OUT.json. Times are
``time.monotonic()`` seconds, one clock for every process on the machine.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def sleep_loop(rate: float, seconds: float, stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Sleep to absolute deadlines for ``seconds`` (or until ``stop()``); note late wake-ups.

    ``stalls`` holds ``[deadline, lateness_s]`` for every wake-up over half a period late;
    ``missed_periods`` counts whole periods that ended before a wake-up, as the runner's
    ``tick_accounting`` counts them; ``t_start``/``t_end`` bound the watched time.
    """
    period = 1.0 / rate
    t_start = time.monotonic()
    end = t_start + seconds
    deadline = t_start + period
    stalls: list[list[float]] = []
    missed = wakes = 0
    while deadline < end and not stop():
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
    return {
        "wakes": wakes,
        "missed_periods": missed,
        "stalls": stalls,
        "rate_hz": rate,
        "t_start": t_start,
        "t_end": time.monotonic(),
    }


def covered_by_stalls(
    runner_misses: list[tuple[float, float]],
    stalls: list[list[float]],
    min_cover: float = 0.5,
    slack: float = 5e-4,
) -> list[bool]:
    """For each runner miss, whether machine stalls cover at least ``min_cover`` of its window.

    ``runner_misses``: ``(start, behind)`` per missed tick, the tick having started at ``start``,
    ``behind`` seconds after its deadline, so the control thread did not run during
    ``[start - behind, start]``. ``stalls``: ``[deadline, lateness]`` from :func:`sleep_loop` (any
    CPU), the machine not running that loop during ``[deadline, deadline + lateness]``, widened by
    ``slack`` on each side for the gap between a wake-up and its clock read. A short stall
    somewhere inside a long miss does not explain it: the stalls' union must cover the share.
    """
    out = []
    for start, behind in runner_misses:
        lo, hi = start - behind, start
        spans = sorted((max(lo, d - slack), min(hi, d + late + slack)) for d, late in stalls)
        covered, reach = 0.0, lo
        for a, b in spans:
            if b <= a or b <= reach:  # outside the window, or already counted
                continue
            covered += b - max(a, reach)
            reach = b
        out.append(covered >= min_cover * behind)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (4, 5):
        print(
            "usage: python -m bremen_robot.bench.wake_jitter RATE_HZ MAX_SECONDS PRIORITY OUT.json [CPU]",
            file=sys.stderr,
        )
        return 2
    rate, seconds, priority, out = float(args[0]), float(args[1]), int(args[2]), Path(args[3])
    if rate <= 0:
        print(f"RATE_HZ must be positive, got {rate}", file=sys.stderr)
        return 2
    if len(args) == 5:
        os.sched_setaffinity(0, {int(args[4])})
    granted = False
    if priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            granted = True
        except OSError:  # measured anyway; the result says it ran without the priority
            pass
    stopped = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.append(True))
    result = sleep_loop(rate, seconds, stop=lambda: bool(stopped))
    result.update(sched_fifo=granted, priority=priority, cpus=sorted(os.sched_getaffinity(0)))
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
