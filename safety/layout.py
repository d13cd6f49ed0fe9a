"""How a joint-state name list maps onto the actuated joints, and the envelope check on it."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from safety.limits import SafetyLimits

BIG = sys.float_info.max
"""Stands in for an absent envelope bound: every finite value is within ±BIG, while +-inf and
NaN are not, so one chained comparison also rejects a non-finite value on a one-sided bound."""

ENVELOPE_INSIDE, ENVELOPE_NOT_FINITE, ENVELOPE_OUTSIDE = 0, 1, 2
"""What :func:`check_envelope` found (ints: compared on every step)."""


# Plain tuples, not NamedTuples: they are unpacked in a loop on every step, and CPython unpacks
# an exact tuple on a fast path that a tuple subclass misses.
EnvelopeBound = tuple[str, int, int, float, float]
"""One envelope bound on a joint-state value: (label, 0 = position / 1 = velocity, index into the
joint state or -1 when the joint is not in it, lo, hi)."""
ExtraBound = tuple[str, float, float]
"""One envelope bound on a named value given in ``extras``: (name, lo, hi)."""


@dataclass(frozen=True)
class Layout:
    """How one joint-state name list maps onto the actuated joints and the envelope."""

    key: tuple[str, ...]
    error: str | None
    act_idx: list[int] | None  # None: the names are exactly the actuated joints, in order
    env: list[EnvelopeBound]


def extra_bounds(limits: SafetyLimits) -> list[ExtraBound]:
    """The envelope's bounds on named ``extras`` (absent sides as ±BIG)."""
    return [
        (name, -BIG if b.min is None else b.min, BIG if b.max is None else b.max)
        for name, b in limits.envelope.extras.items()
    ]


def make_layout(limits: SafetyLimits, key: tuple[str, ...]) -> Layout:
    """The layout of joint-state names ``key``; ``error`` says why it cannot be used."""
    index: dict[str, int] = {}
    for i, n in enumerate(key):
        if n in index:
            return Layout(key, f"joint_state names '{n}' twice", None, [])
        index[n] = i
    names = limits.joint_names
    missing = [n for n in names if n not in index]
    if missing:
        return Layout(key, f"joint_state lacks actuated joint '{missing[0]}'", None, [])
    act_idx = None if list(key) == names else [index[n] for n in names]
    env: list[EnvelopeBound] = []
    for kind, bounds in ((0, limits.envelope.positions), (1, limits.envelope.velocities)):
        for name, b in bounds.items():
            label = f"{name} {'position' if kind == 0 else 'velocity'}"
            lo = -BIG if b.min is None else b.min
            hi = BIG if b.max is None else b.max
            env.append((label, kind, index.get(name, -1), lo, hi))
    return Layout(key, None, act_idx, env)


def check_envelope(
    layout: Layout,
    extra: list[ExtraBound],
    pos_all: list[float],
    vel_all: list[float],
    extras: Mapping[str, float] | None,
) -> tuple[int, str]:
    """ENVELOPE_INSIDE, ENVELOPE_NOT_FINITE (a value is NaN/inf) or ENVELOPE_OUTSIDE (or a named
    value is missing), with the detail."""
    for label, kind, i, lo, hi in layout.env:
        if i < 0:
            return ENVELOPE_OUTSIDE, f"{label}: joint not in joint_state"
        x = (vel_all if kind else pos_all)[i]
        if not lo <= x <= hi:
            if not math.isfinite(x):
                return ENVELOPE_NOT_FINITE, f"{label} is not finite"
            side = f"< min {lo:g}" if x < lo else f"> max {hi:g}"
            return ENVELOPE_OUTSIDE, f"{label} {x:.6g} {side}"
    for name, lo, hi in extra:
        if extras is None or name not in extras:
            return ENVELOPE_OUTSIDE, f"extra '{name}' not given"
        x = float(extras[name])
        if not lo <= x <= hi:
            if not math.isfinite(x):
                return ENVELOPE_NOT_FINITE, f"extra '{name}' is not finite"
            side = f"< min {lo:g}" if x < lo else f"> max {hi:g}"
            return ENVELOPE_OUTSIDE, f"{name} {x:.6g} {side}"
    return ENVELOPE_INSIDE, "inside"
