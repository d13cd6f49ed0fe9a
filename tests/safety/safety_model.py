"""Test helpers: hypothesis strategies for limits and inputs, and an independent model of the shield.

The model restates docs/safety.md in the most direct way (no fast path, no caching) and is the
oracle of the property tests: for every step it predicts whether the safe command must be sent,
and otherwise the exact command (the projection of the action onto the limits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from safety import SafetyLimits, parse_limits

INF = math.inf
SPECIAL = [math.nan, math.inf, -math.inf, 1e300, -1e300, 1e9, -1e9]


def clip(x: float, lo: float, hi: float) -> float:
    return hi if x > hi else lo if x < lo else x


# --- limits --------------------------------------------------------------------------------


def _f(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def limits_dicts(draw: st.DrawFn, interface: str | None = None, n: int | None = None) -> dict[str, Any]:
    """A valid limits mapping with random values for every kind of limit."""
    iface = interface or draw(st.sampled_from(["effort", "velocity", "position"]))
    n = n or draw(st.integers(1, 7))
    names = [f"j{i}" for i in range(n)]
    joints: dict[str, Any] = {}
    for name in names:
        lo = draw(_f(-3.0, 3.0))
        width = draw(_f(0.1, 4.0))
        hi = lo + width
        pos: dict[str, float] = {"min": lo, "max": hi}
        if draw(st.booleans()):
            pos["soft_min"] = lo + draw(_f(0.0, 0.45)) * width
        if draw(st.booleans()):
            pos["soft_max"] = hi - draw(_f(0.0, 0.45)) * width
        jl: dict[str, Any] = {}
        if iface == "position" or draw(st.integers(0, 3)) > 0:
            jl["position"] = pos
        if draw(st.booleans()):
            jl["velocity"] = draw(_f(0.1, 10.0))
        if draw(st.booleans()):
            jl["acceleration"] = draw(_f(0.5, 200.0))
        if iface == "effort" and draw(st.booleans()):
            jl["effort"] = draw(_f(0.5, 200.0))
            jl["effort_per_command"] = draw(_f(1.0, 100.0))
        if iface == "position":
            s_lo, s_hi = pos.get("soft_min", lo), pos.get("soft_max", hi)
            b_lo = draw(_f(lo - 1.0, s_hi - 0.01))
            b_hi = draw(_f(max(b_lo, s_lo) + 0.01, hi + 1.0))
        else:
            b_lo = -draw(_f(0.0, 5.0))
            b_hi = draw(_f(0.01, 5.0))
        jl["command"] = {"min": b_lo, "max": b_hi}
        joints[name] = jl
    data: dict[str, Any] = {
        "robot": "random",
        "command_interface": iface,
        "safe_command": "hold" if iface == "position" else "zero",
        "joints": joints,
        "timing": {
            "control_period": draw(_f(0.001, 0.1)),
            "max_observation_age": draw(_f(0.01, 0.5)),
            "max_clock_skew": draw(st.sampled_from([0.0, 0.001, 0.01])),
        },
    }
    kind = draw(st.integers(0, 2))
    if kind == 1:
        data["max_step"] = draw(_f(0.01, 2.0))
    elif kind == 2:
        data["max_step"] = {nm: draw(_f(0.01, 2.0)) for nm in names if draw(st.booleans())}
    envelope: dict[str, Any] = {}
    if draw(st.booleans()):
        nm = draw(st.sampled_from(names))
        envelope["positions"] = {nm: {"min": -3.5, "max": 7.5}}
    if draw(st.booleans()):
        nm = draw(st.sampled_from(names))
        envelope["velocities"] = {nm: {"min": -15.0, "max": 15.0}}
    if draw(st.booleans()):
        envelope["extras"] = {"height": {"min": 0.0}}
    data["envelope"] = envelope
    return data


@st.composite
def limits(draw: st.DrawFn, interface: str | None = None, n: int | None = None) -> SafetyLimits:
    return parse_limits(draw(limits_dicts(interface, n)))


# --- inputs --------------------------------------------------------------------------------


@st.composite
def values(draw: st.DrawFn, lo: float, hi: float) -> float:
    """Mostly ordinary values in [lo, hi], sometimes NaN, inf or huge."""
    if draw(st.integers(0, 24)) == 0:
        return draw(st.sampled_from(SPECIAL))
    return draw(_f(lo, hi))


@dataclass
class StepInput:
    names: list[str]
    position: list[float]
    velocity: list[float]
    stamp: float
    now: float
    action: Any
    extras: dict[str, float] | None
    estop: bool
    reset: bool


@st.composite
def step_inputs(draw: st.DrawFn, lim: SafetyLimits, t: float) -> StepInput:
    """One step's inputs around time ``t``: mostly valid, sometimes any kind of bad."""
    names = list(lim.joint_names)
    n = len(names)
    max_age = lim.timing.max_observation_age
    pos, vel = [], []
    for name in names:
        p = lim.joints[name].position
        lo, hi = (p.min, p.max) if p is not None else (-3.0, 3.0)
        w = hi - lo
        pos.append(draw(values(lo - 0.3 * w, hi + 0.3 * w)))
        vel.append(draw(values(-12.0, 12.0)))
    layout = draw(st.integers(0, 19))
    if layout == 1:  # permuted, with an extra unactuated joint
        order = draw(st.permutations(range(n)))
        names = [names[i] for i in order] + ["root"]
        pos = [pos[i] for i in order] + [draw(values(-1, 1))]
        vel = [vel[i] for i in order] + [draw(values(-1, 1))]
    elif layout == 2:  # a joint missing
        names, pos, vel = names[1:], pos[1:], vel[1:]
    elif layout == 3:  # duplicated name
        names = names + names[:1]
        pos = pos + pos[:1]
        vel = vel + vel[:1]
    elif layout == 4:  # wrong length of positions
        pos = pos + [0.0]
    kind = draw(st.integers(0, 19))
    if kind == 0:
        age = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    elif kind == 1:
        age = draw(_f(-1.0, 0.0))  # from the future (beyond the skew, mostly)
    elif kind == 2:
        age = draw(_f(max_age, 10 * max_age))  # stale
    else:
        age = draw(_f(0.0, max_age))
    stamp = t - age
    akind = draw(st.integers(0, 19))
    action: Any
    if akind == 0:
        action = None
    elif akind == 1:
        action = [draw(values(-5, 5)) for _ in range(n + draw(st.sampled_from([-1, 1])) if n > 1 else n + 1)]
    elif akind == 2:
        action = [draw(st.sampled_from(SPECIAL)) for _ in range(n)]
    elif akind < 7:  # inside the boxes
        action = [draw(_f(lim.box(nm).min, lim.box(nm).max)) for nm in lim.joint_names]
    elif akind < 12:  # small steps: near the position (position interface) or near zero
        scale = draw(st.sampled_from([0.001, 0.01, 0.1, 1.0]))
        base = pos[:n] if lim.command_interface == "position" else [0.0] * n
        base = [b if math.isfinite(b) and abs(b) < 1e3 else 0.0 for b in base]
        action = [b + scale * draw(_f(-1.0, 1.0)) for b in base]
    else:
        action = [draw(values(-6, 6)) for _ in range(n)]
    if isinstance(action, list) and draw(st.booleans()):
        with np.errstate(over="ignore"):  # float32 turns 1e300 into inf, which is fine here
            action = np.asarray(action, dtype=draw(st.sampled_from([np.float64, np.float32])))
    extras = None
    if lim.envelope.extras and draw(st.integers(0, 9)) > 0:
        extras = {"height": draw(values(-0.5, 3.0))}
    return StepInput(
        names,
        pos,
        vel,
        stamp,
        t,
        action,
        extras,
        estop=draw(st.integers(0, 29)) == 0,
        reset=draw(st.integers(0, 9)) == 0,
    )


# --- the model -----------------------------------------------------------------------------


class Model:
    """What the shield must do, written out directly from docs/safety.md."""

    def __init__(self, lim: SafetyLimits) -> None:
        self.lim = lim
        self.names = lim.joint_names
        self.last: list[float] | None = None
        self.prev: list[float] | None = None
        self.last_stamp = -INF
        self.latched = False
        self.obs_ok = False
        self.env_ok = False

    def _finite(self, x: Any) -> bool:
        return isinstance(x, (int, float)) and math.isfinite(x)

    def observe(self, s: StepInput) -> tuple[str, list[float] | None, list[float] | None]:
        """('safe', reason, pos) or ('ok', None, pos) and update the observation state."""
        lim = self.lim
        if len(set(s.names)) != len(s.names) or any(nm not in s.names for nm in self.names):
            self.obs_ok = False
            return "shape_mismatch", None, None
        if len(s.position) != len(s.names) or len(s.velocity) != len(s.names):
            self.obs_ok = False
            return "shape_mismatch", None, None
        idx = [s.names.index(nm) for nm in self.names]
        pos = [s.position[i] for i in idx]
        vel = [s.velocity[i] for i in idx]
        if not all(map(math.isfinite, pos + vel)):
            self.obs_ok = False
            return "nan_observation", None, None
        age = s.now - s.stamp
        t = lim.timing
        if not age <= t.max_observation_age or age < -t.max_clock_skew or s.stamp < self.last_stamp:
            self.obs_ok = False
            return "stale_observation", None, pos
        inside = True
        entries = [(nm, b, 0) for nm, b in lim.envelope.positions.items()]
        entries += [(nm, b, 1) for nm, b in lim.envelope.velocities.items()]
        for nm, b, kind in entries:
            lo = -INF if b.min is None else b.min
            hi = INF if b.max is None else b.max
            x = (s.velocity if kind else s.position)[s.names.index(nm)]
            if not math.isfinite(x):  # docs/safety.md: a non-finite value, even on a one-sided bound
                self.obs_ok = False
                return "nan_observation", None, pos
            if not lo <= x <= hi:
                inside = False
                break
        if inside:
            for nm, b in lim.envelope.extras.items():
                lo = -INF if b.min is None else b.min
                hi = INF if b.max is None else b.max
                if s.extras is None or nm not in s.extras:
                    inside = False
                    break
                x = s.extras[nm]
                if not math.isfinite(x):
                    self.obs_ok = False
                    return "nan_observation", None, pos
                if not lo <= x <= hi:
                    inside = False
                    break
        self.obs_ok = True
        self.env_ok = inside
        self.last_stamp = s.stamp
        if not inside and not self.latched:
            self.latched = True
            return "envelope", None, pos
        if self.latched:
            return "estop", None, pos
        return "ok", None, pos

    def action_ok(self, action: Any) -> bool:
        if action is None:
            return False
        a = np.asarray(action)
        return a.ndim == 1 and len(a) == len(self.names) and bool(np.all(np.isfinite(a)))

    def expected(self, action: Any, pos: list[float], vel: list[float]) -> list[float]:
        """The command for a valid action: S (smoothness) then H (safety), per joint."""
        lim = self.lim
        iface = lim.command_interface
        T = lim.timing.control_period
        out = []
        for j, name in enumerate(self.names):
            jl = lim.joints[name]
            a, p, v = float(action[j]), pos[j], vel[j]
            box = lim.box(name)
            vmax = jl.velocity if jl.velocity is not None else INF
            acc = jl.acceleration if jl.acceleration is not None else INF
            ms = lim.step(name)
            ms = INF if ms is None else ms
            if iface == "position":
                assert jl.position is not None
                last = self.last[j] if self.last is not None else p
                prev = self.prev[j] if self.prev is not None else last
                c = last + (last - prev)
                x = clip(a, c - acc * T * T, c + acc * T * T)
                x = clip(x, last - vmax * T, last + vmax * T)
                x = clip(x, p - ms, p + ms)
                lo = max(box.min, jl.position.soft_lo)
                hi = min(box.max, jl.position.soft_hi)
                out.append(clip(x, lo, hi))
                continue
            eff = jl.effort / jl.effort_per_command if jl.effort is not None else INF
            lo, hi = max(box.min, -eff), min(box.max, eff)
            if iface == "velocity":
                lo, hi = max(lo, -vmax), min(hi, vmax)
            s_lo, s_hi = lo, hi
            if jl.position is not None:
                P = jl.position
                if p >= P.max:
                    hi = min(hi, 0.0)
                else:
                    if p > P.soft_hi:
                        hi = min(hi, s_hi * (P.max - p) / (P.max - P.soft_hi))
                    if iface == "velocity":
                        hi = min(hi, (P.max - p) / T)
                if p <= P.min:
                    lo = max(lo, 0.0)
                else:
                    if p < P.soft_lo:
                        lo = max(lo, s_lo * (p - P.min) / (P.soft_lo - P.min))
                    if iface == "velocity":
                        lo = max(lo, (P.min - p) / T)
            if iface == "effort":
                if v > vmax:
                    hi = min(hi, 0.0)
                elif v < -vmax:
                    lo = max(lo, 0.0)
            last = self.last[j] if self.last is not None else 0.0
            d = min(acc * T, ms)
            out.append(clip(clip(a, last - d, last + d), lo, hi))
        return out

    def sent(self, command: list[float], safe: bool, pos: list[float] | None = None) -> None:
        """Remember a sent command. ``pos``: the measured positions of the step, which were the
        reference ("last") of a position command sent from rest, and so become "prev"."""
        if safe:
            self.last = self.prev = list(command)
        elif self.last is None and self.lim.command_interface == "position":
            assert pos is not None, "a position command from rest needs the measured positions"
            self.prev, self.last = list(pos), list(command)
        else:
            self.prev, self.last = self.last, list(command)

    def reset_allowed(self) -> bool:
        return not self.latched or (self.obs_ok and self.env_ok)
