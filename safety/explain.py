"""Per-joint limits compiled to plain floats, and the explaining path of the shield.

The shield's fast path (:mod:`safety.shield`) clips every joint with a few comparisons on the
rows compiled here. Only when it changed a joint's value is that joint re-run through the
explaining path (:meth:`JointTable.explain`): the stages H, S, H of docs/safety.md, one by one,
recording an :class:`~safety.types.Intervention` for each stage that changed the value. Both
give the same command (tests/safety/test_safety_fast_path.py checks it on every joint).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from safety.limits import SafetyLimits
from safety.types import Intervention, Reason

INF = math.inf


class JointRow(NamedTuple):
    """One joint's limits as floats (inf where a limit is absent), read by the fast path.

    The fast path reads :attr:`JointTable.fast_rows`, the same values as exact tuples: CPython
    unpacks an exact tuple in a ``for`` target on a fast path that a tuple subclass misses.
    """

    slo: float
    """Lower end of the static hard set H (box, effort, velocity or soft position range)."""
    shi: float
    """Upper end of the static hard set H."""
    thr_lo: float
    """Positions at or below this may let the position stage bind (effort/velocity interfaces)."""
    thr_hi: float
    """Positions at or above this may let the position stage bind."""
    vmax: float
    """Velocity limit."""
    d: float
    """min(rate, mstep): both smoothness stages are centred on the last command."""
    rate: float
    """Largest change the acceleration limit allows in one period (per-step displacement change
    on the position interface)."""
    mstep: float
    """max_step."""


class PositionRow(NamedTuple):
    """One joint's position limits: hard min, soft min, soft max, hard max."""

    hard_lo: float
    soft_lo: float
    soft_hi: float
    hard_hi: float


Stage = tuple[float, float, Reason, str, tuple[float, ...] | None]
"""One stage of the per-joint pipeline, the command clipped into [lo, hi]: (lo, hi, reason,
detail format, its arguments); arguments None: the detail is final. A plain tuple, not a
NamedTuple: stages are built on every step that clips, and a NamedTuple's constructor costs
several times a tuple's."""


_new_tuple = tuple.__new__


def clip_through(stages: Sequence[Stage], x: float, name: str, ivs: list[Intervention], note: str) -> float:
    """Clip ``x`` into each stage in turn; append an :class:`Intervention` for each that changed it."""
    for lo, hi, reason, fmt, args in stages:
        y = hi if x > hi else lo if x < lo else x
        if y != x:
            detail = (fmt if args is None else fmt.format(*args)) + note
            # tuple.__new__ skips the NamedTuple's Python-level __new__ (half the cost)
            ivs.append(_new_tuple(Intervention, (reason, name, x, y, detail)))
            x = y
    return x


class JointTable:
    """The per-joint limits of one :class:`SafetyLimits`, precomputed for the shield."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.names: list[str] = limits.joint_names
        self.interface = limits.command_interface
        T = limits.timing.control_period
        self.period = T
        self._inv_period = 1.0 / T
        pos_iface = self.interface == "position"
        self.box: list[tuple[float, float]] = []
        self.eff: list[float] = []
        self.vmax: list[float] = []
        self.pos: list[PositionRow | None] = []
        self.rows: list[JointRow] = []
        self.hold_lo: list[float] = []
        self.hold_hi: list[float] = []
        for name in self.names:
            jl = limits.joints[name]
            box = limits.box(name)
            eff = jl.effort / jl.effort_per_command if jl.effort is not None else INF
            vmax = jl.velocity if jl.velocity is not None else INF
            step = limits.step(name)
            mstep = step if step is not None else INF
            if pos_iface:
                # Acceleration bounds the change of per-step displacement: a * T^2.
                rate = jl.acceleration * T * T if jl.acceleration is not None else INF
            else:
                rate = jl.acceleration * T if jl.acceleration is not None else INF
            p = jl.position
            prow = None if p is None else PositionRow(p.min, p.soft_lo, p.soft_hi, p.max)
            self.box.append((box.min, box.max))
            self.eff.append(eff)
            self.vmax.append(vmax)
            self.pos.append(prow)
            # Static part of H.
            slo, shi = max(box.min, -eff), min(box.max, eff)
            if self.interface == "velocity":
                slo, shi = max(slo, -vmax), min(shi, vmax)
            if pos_iface:
                if prow is None:  # the limits validator requires it; checked again for python -O
                    raise ValueError(f"joint '{name}': command_interface 'position' needs position limits")
                slo, shi = max(slo, prow.soft_lo), min(shi, prow.soft_hi)
                self.hold_lo.append(max(box.min, prow.hard_lo))
                self.hold_hi.append(min(box.max, prow.hard_hi))
            # Positions at or beyond which the position stage can bind (effort, velocity). Moved
            # a little toward the middle: the crossing bound (max - p) / T is rounded differently
            # from max - shi * T, and one ulp past the threshold it can already be below shi.
            # Between the two the exact bound is computed (and does not bind). The move is a
            # margin: any margin above that rounding gives the same commands (a larger one only
            # sends more positions through the exact bound). It scales with the operands of
            # hard - speed * T too, not only with the result: when both are large and nearly
            # cancel, the rounding is theirs (found by a search over limits of order 1e7 and
            # more; tests/safety/test_explain_mutants.py).
            thr_lo, thr_hi = -INF, INF
            if not pos_iface and prow is not None:
                thr_lo, thr_hi = prow.soft_lo, prow.soft_hi
                ops_lo = ops_hi = 0.0  # no arithmetic on the effort interface's thresholds
                if self.interface == "velocity":
                    thr_lo = max(thr_lo, prow.hard_lo - slo * T)
                    thr_hi = min(thr_hi, prow.hard_hi - shi * T)
                    ops_lo = max(abs(prow.hard_lo), abs(slo * T))
                    ops_hi = max(abs(prow.hard_hi), abs(shi * T))
                thr_lo += 1e-9 * (1.0 + max(abs(thr_lo), ops_lo))
                thr_hi -= 1e-9 * (1.0 + max(abs(thr_hi), ops_hi))
            self.rows.append(JointRow(slo, shi, thr_lo, thr_hi, vmax, min(rate, mstep), rate, mstep))
        self.fast_rows: list[tuple[float, ...]] = [tuple(r) for r in self.rows]
        self.static_H = [self._static_stages(j) for j in range(len(self.names))]

    def _position_row(self, j: int) -> PositionRow:
        pl = self.pos[j]
        if pl is None:  # the thresholds are infinite without position limits; never reached
            raise RuntimeError(f"joint '{self.names[j]}' has no position limits to bound its command")
        return pl

    def pos_upper(self, j: int, p: float) -> tuple[float, Reason, str, tuple[float, ...]]:
        """Upper bound the position limits put on joint j's effort/velocity command at p.

        Returns (bound, reason, detail format, its arguments); formatted only when it binds.
        """
        _, _, soft_hi, hard_hi = self._position_row(j)
        if p >= hard_hi:
            fmt = "at/beyond hard max {:g} (q={:.6g}); outward command zeroed"
            return 0.0, "position_limit", fmt, (hard_hi, p)
        bound, fmt = INF, ""
        reason: Reason = "soft_limit"
        if p > soft_hi:
            bound = self.rows[j].shi * (hard_hi - p) / (hard_hi - soft_hi)
            fmt = "in the soft margin above {:g} (q={:.6g}); outward command scaled down"
        if self.interface == "velocity":
            cross = (hard_hi - p) * self._inv_period
            if cross < bound:
                fmt = "would cross hard max {:g} within one control period (q={:.6g})"
                return cross, "position_limit", fmt, (hard_hi, p)
        return bound, reason, fmt, (soft_hi, p)

    def pos_lower(self, j: int, p: float) -> tuple[float, Reason, str, tuple[float, ...]]:
        """Lower bound the position limits put on joint j's effort/velocity command at p."""
        hard_lo, soft_lo, _, _ = self._position_row(j)
        if p <= hard_lo:
            fmt = "at/beyond hard min {:g} (q={:.6g}); outward command zeroed"
            return 0.0, "position_limit", fmt, (hard_lo, p)
        bound, fmt = -INF, ""
        reason: Reason = "soft_limit"
        if p < soft_lo:
            bound = self.rows[j].slo * (p - hard_lo) / (soft_lo - hard_lo)
            fmt = "in the soft margin below {:g} (q={:.6g}); outward command scaled down"
        if self.interface == "velocity":
            cross = (hard_lo - p) * self._inv_period
            if cross > bound:
                fmt = "would cross hard min {:g} within one control period (q={:.6g})"
                return cross, "position_limit", fmt, (hard_lo, p)
        return bound, reason, fmt, (soft_lo, p)

    def _static_stages(self, j: int) -> tuple[Stage, ...]:
        """Joint j's hard stages that do not depend on the state (built once, details formatted)."""
        box_lo, box_hi = self.box[j]
        H: list[Stage] = [(box_lo, box_hi, "clipped_box", f"command box [{box_lo:g}, {box_hi:g}]", None)]
        eff, vmax = self.eff[j], self.vmax[j]
        if self.interface == "position":
            hard_lo, soft_lo, soft_hi, hard_hi = self.pos[j] or (-INF, -INF, INF, INF)
            lo_reason: Reason = "soft_limit" if soft_lo > hard_lo else "position_limit"
            hi_reason: Reason = "soft_limit" if soft_hi < hard_hi else "position_limit"
            H.append((soft_lo, INF, lo_reason, f"position min {soft_lo:g}", None))
            H.append((-INF, soft_hi, hi_reason, f"position max {soft_hi:g}", None))
            return tuple(H)
        if eff < INF:
            H.append((-eff, eff, "effort_limit", f"effort limit ±{eff:g} (command units)", None))
        if self.interface == "velocity" and vmax < INF:
            H.append((-vmax, vmax, "velocity_limit", f"velocity limit ±{vmax:g}", None))
        return tuple(H)

    def hard_stages(self, j: int, p: float, v: float) -> tuple[Stage, ...]:
        """Joint j's hard stages H at (p, v): the static ones, plus the position bounds past the
        fast path's thresholds (below them they are looser than the static ones) and, for effort,
        the over-speed bound."""
        H = self.static_H[j]
        if self.interface == "position":
            return H
        _, _, thr_lo, thr_hi, vmax, _, _, _ = self.fast_rows[j]  # per clipped joint: no attribute reads
        effort = self.interface == "effort"
        if thr_lo < p < thr_hi and not (effort and (v > vmax or v < -vmax)):
            return H
        dyn: list[Stage] = []
        if p >= thr_hi:
            hi, hi_reason, hi_fmt, hi_args = self.pos_upper(j, p)
            if hi < INF:
                dyn.append((-INF, hi, hi_reason, hi_fmt, hi_args))
        if p <= thr_lo:
            lo, lo_reason, lo_fmt, lo_args = self.pos_lower(j, p)
            if lo > -INF:
                dyn.append((lo, INF, lo_reason, lo_fmt, lo_args))
        if effort and v > vmax:
            fmt = "velocity {:.6g} > limit {:g}; torque along it zeroed"
            dyn.append((-INF, 0.0, "velocity_limit", fmt, (v, vmax)))
        elif effort and v < -vmax:
            fmt = "velocity {:.6g} < -{:g}; torque along it zeroed"
            dyn.append((0.0, INF, "velocity_limit", fmt, (v, vmax)))
        return H + tuple(dyn)

    def smooth_stages(
        self, j: int, p: float, x: float, last_command: list[float] | None, prev_command: list[float] | None
    ) -> list[Stage]:
        """Joint j's smoothness stages S (lowest priority first); empty when none can change ``x``."""
        _, _, _, _, vmax, d, rate, mstep = self.fast_rows[j]  # per clipped joint: no attribute reads
        S: list[Stage] = []
        if self.interface == "position":
            last = last_command[j] if last_command is not None else p
            prev = prev_command[j] if prev_command is not None else last
            c = last + (last - prev)
            dv = vmax * self.period
            S.append((c - rate, c + rate, "rate_limit", "acceleration: within {:g} of {:.6g}", (rate, c)))
            S.append(
                (last - dv, last + dv, "velocity_limit", "velocity: within {:g} of last {:.6g}", (dv, last))
            )
            S.append(
                (p - mstep, p + mstep, "max_step", "within {:g} of measured position {:.6g}", (mstep, p))
            )
            return S
        # both stages are centred on the last command: x is inside both iff within min(rate, mstep)
        last = last_command[j] if last_command is not None else 0.0
        if last - d <= x <= last + d:
            return S
        if rate < INF:
            fmt = "rate: within {:g} of last command {:.6g}"
            S.append((last - rate, last + rate, "rate_limit", fmt, (rate, last)))
        if mstep < INF:
            fmt = "within {:g} of last command {:.6g}"
            S.append((last - mstep, last + mstep, "max_step", fmt, (mstep, last)))
        return S

    def explain(
        self,
        j: int,
        a: float,
        p: float,
        v: float,
        last_command: list[float] | None,
        prev_command: list[float] | None,
    ) -> tuple[float, list[Intervention]]:
        """Apply joint j's stages H, S, H to request ``a`` and record each one that changed it.

        The result equals the fast path's: clipping into S then H is the same as H, S, H.
        """
        H = self.hard_stages(j, p, v)
        name = self.names[j]
        ivs: list[Intervention] = []
        x = clip_through(H, a, name, ivs, "")
        y = clip_through(self.smooth_stages(j, p, x, last_command, prev_command), x, name, ivs, "")
        if y == x:
            return x, ivs  # S changed nothing, so x is still inside H
        return clip_through(H, y, name, ivs, "; overrides a smoothness limit"), ivs
