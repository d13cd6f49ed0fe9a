"""Bench section: the safety shield's cost per control step (DESIGN.md §5: <= 20 µs, 7 joints).

Runs ``SafetyShield.filter`` for the 7-joint arm of ``configs/safety/panda.yaml`` (velocity
interface, soft limits, rate limits, a 14-entry state envelope) on a fixed joint state:

* ``shield_us_per_step``: in-limits actions, the common case (nothing to change);
* ``shield_us_per_step_violating``: every joint asks for 2x its command box, so each step
  clips all 7 joints and records 7 interventions (the worst ordinary case; timed once the
  rate limit's ramp from rest is over);
* ``shield_us_per_step_estop``: the e-stop is latched, so each step checks the observation and
  the envelope and sends the safe command (zero velocity);
* ``shield_us_per_step_hold``: the same arm under position commands with ``safe_command: hold``
  (the Panda's numbers, box = joint range), e-stop latched: each step sends the held position.

All four run in the same call, so their ratios are taken under the same load. Each figure is
the fastest of many short repeats (the mean time per call within a repeat): on a shared machine
a repeat that another process interrupts is slower, never faster, so the fastest one is the
shield's own cost (the median of long repeats, used before, tracked the machine's load).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from safety import JointState, SafetyLimits, SafetyShield, load_limits, parse_limits

TITLE = "safety shield"
ORDER = 40

_LIMITS = Path(__file__).resolve().parents[2] / "configs" / "safety" / "panda.yaml"


def _time_per_call(shield: SafetyShield, js: JointState, action: np.ndarray, now: float, calls: int) -> float:
    filt = shield.filter
    t0 = time.perf_counter()
    for _ in range(calls):
        filt(js, action, now)
    return (time.perf_counter() - t0) / calls


def _position_variant(limits: SafetyLimits) -> SafetyLimits:
    """The Panda limits under position commands, held when stopped (box = hard joint range)."""
    data: dict[str, Any] = limits.model_dump(exclude_none=True)
    data.update(command_interface="position", safe_command="hold")
    for jl in data["joints"].values():
        jl["command"] = {"min": jl["position"]["min"], "max": jl["position"]["max"]}
    return parse_limits(data, source="panda (position, hold)")


def run(quick: bool) -> dict[str, float]:
    limits = load_limits(_LIMITS)
    names = tuple(limits.joint_names)
    n = len(names)
    # A pose inside every soft range (the middle of each), at rest.
    mid = []
    for j in names:
        pos = limits.joints[j].position
        if pos is None:
            raise RuntimeError(f"{_LIMITS}: joint {j} has no position limits; the bench needs them")
        mid.append(0.5 * (pos.soft_lo + pos.soft_hi))
    q = np.array(mid)
    js = JointState(names, q, np.zeros(n), 0.0)
    now = 0.001
    box_hi = np.array([limits.box(j).max for j in names])
    inside = 0.001 * box_hi  # below the first step's rate limit from rest
    violating = 2.0 * box_hi
    hold_limits = _position_variant(limits)
    repeats, calls = (30, 200) if quick else (300, 200)

    # (key, limits, action, latch the e-stop, expected reasons of the measured step)
    cases: list[tuple[str, SafetyLimits, np.ndarray, bool, set[str]]] = [
        ("shield_us_per_step", limits, inside, False, set()),
        ("shield_us_per_step_violating", limits, violating, False, {"clipped_box"}),
        ("shield_us_per_step_estop", limits, violating, True, {"estop"}),
        ("shield_us_per_step_hold", hold_limits, q + 0.01, True, {"estop"}),
    ]
    results: dict[str, float] = {"shield_joints": float(n)}
    for key, lim, action, latch, expected in cases:
        shield = SafetyShield(lim)
        if latch:
            shield.estop("bench")
        for _ in range(50):  # past the rate limit's ramp from rest: the steady state is timed
            out = shield.filter(js, action, now)
        reasons = {iv.reason for iv in out.interventions}
        if reasons != expected:  # the benchmark must measure the path it names
            raise RuntimeError(f"bench {key}: expected {sorted(expected)}, got {out.interventions}")
        if key == "shield_us_per_step_violating" and len(out.interventions) != n:
            raise RuntimeError(f"bench {key}: expected {n} joints clipped, got {out.interventions}")
        if key == "shield_us_per_step_hold" and not np.array_equal(out.command, q):
            raise RuntimeError(f"bench {key}: expected to hold {q}, sent {out.command}")
        _time_per_call(shield, js, action, now, 10 * calls)  # warm up
        times = [_time_per_call(shield, js, action, now, calls) for _ in range(repeats)]
        results[key] = min(times) * 1e6
    return results
