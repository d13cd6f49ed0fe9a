"""Bench section: the safety shield's cost per control step (DESIGN.md §5: <= 20 µs, 7 joints).

Runs ``SafetyShield.filter`` for the 7-joint arm of ``configs/safety/panda.yaml`` (velocity
interface, soft limits, rate limits, a 14-entry state envelope) on a fixed joint state:

* ``shield_us_per_step``: in-limits actions, the common case (nothing to change);
* ``shield_us_per_step_violating``: every joint asks for 2x its command box, so each step
  clips all 7 joints and records 7 interventions (the worst ordinary case).

Each figure is the median over repeats of the mean time per call within a repeat.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from safety import JointState, SafetyShield, load_limits

TITLE = "safety shield"
ORDER = 40

_LIMITS = Path(__file__).resolve().parents[2] / "configs" / "safety" / "panda.yaml"


def _time_per_call(shield: SafetyShield, js: JointState, action: np.ndarray, now: float, calls: int) -> float:
    filt = shield.filter
    t0 = time.perf_counter()
    for _ in range(calls):
        filt(js, action, now)
    return (time.perf_counter() - t0) / calls


def run(quick: bool) -> dict[str, float]:
    limits = load_limits(_LIMITS)
    names = tuple(limits.joint_names)
    n = len(names)
    # A pose inside every soft range (the middle of each), at rest.
    mid = []
    for j in names:
        pos = limits.joints[j].position
        assert pos is not None
        mid.append(0.5 * (pos.soft_lo + pos.soft_hi))
    q = np.array(mid)
    js = JointState(names, q, np.zeros(n), 0.0)
    now = 0.001
    box_hi = np.array([limits.box(j).max for j in names])
    inside = 0.001 * box_hi  # below the first step's rate limit from rest
    violating = 2.0 * box_hi
    repeats, calls = (5, 2_000) if quick else (15, 10_000)

    results: dict[str, float] = {"shield_joints": float(n)}
    for key, action in (("shield_us_per_step", inside), ("shield_us_per_step_violating", violating)):
        shield = SafetyShield(limits)
        out = shield.filter(js, action, now)
        expect_clean = key == "shield_us_per_step"
        if out.intervened == expect_clean:  # the benchmark must measure the path it names
            raise RuntimeError(f"bench {key}: unexpected interventions {out.interventions}")
        _time_per_call(shield, js, action, now, calls // 10)  # warm up
        times = [_time_per_call(shield, js, action, now, calls) for _ in range(repeats)]
        results[key] = statistics.median(times) * 1e6
    return results
