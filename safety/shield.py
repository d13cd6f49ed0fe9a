"""The safety shield: whatever the policy asks for in, a command that is safe to send out.

``SafetyShield.filter(joint_state, action, now)`` is a pure step over an explicit
:class:`ShieldState` (last command, e-stop latch, hold target, counters): given the same
state and inputs it returns the same :class:`ShieldOutput`. The order of checks:

1. the observation: layout (names, lengths), finite values, age (watchdog), stamp order;
2. the state envelope (leaving it latches the e-stop);
3. the e-stop latch;
4. the action: length, finite values; then the optional OOD gate;
5. the per-joint limits, by interface (docs/safety.md): first the hard set ``H`` (command
   box, effort, position, velocity), then the smoothness set ``S`` (rate and max_step), then
   ``H`` again, so a safety limit always wins over a smoothness limit when the two conflict.

Any failure in 1-4 sends the safe command (zero, or hold position) and records why. The
per-joint arithmetic is done on plain Python floats: for a handful of joints that is faster
than numpy's per-call overhead (docs/perf-safety.md).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from safety.limits import SafetyLimits
from safety.types import REASONS, Intervention, JointState, Reason, ResetResult, ShieldOutput

INF = math.inf
BIG = sys.float_info.max
"""Stands in for an absent envelope bound: every finite value is within ±BIG, while +-inf and
NaN are not, so one chained comparison also rejects a non-finite value on a one-sided bound."""

OodScore = Callable[[np.ndarray, np.ndarray], float]
"""``(observation, action) -> disagreement`` of the dynamics ensemble (injected; no torch here)."""
FallbackPolicy = Callable[[np.ndarray], Any]
"""``observation -> action`` of the fallback policy, e.g. the behavior-cloned one."""


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(REASONS, 0)


@dataclass
class ShieldState:
    """Everything the shield remembers between steps. Copy it to replay from a point."""

    last_command: list[float] | None = None
    """Command sent on the previous step (None before the first)."""
    prev_command: list[float] | None = None
    """Command sent the step before that (position interface: for the acceleration limit)."""
    last_stamp: float = -INF
    """Stamp of the newest accepted observation."""
    last_position: list[float] | None = None
    """Actuated joint positions of the newest accepted observation."""
    hold_target: list[float] | None = None
    """Position held while the safe command is active ('hold' mode); latched on entry."""
    in_safe: bool = False
    estop_latched: bool = False
    estop_reason: str = ""
    obs_ok: bool = False
    """The newest observation was usable (layout, finite, fresh)."""
    envelope_ok: bool = False
    envelope_detail: str = "no observation yet"
    steps: int = 0
    intervened_steps: int = 0
    counts: dict[str, int] = field(default_factory=_zero_counts)

    def copy(self) -> ShieldState:
        def cp(x: list[float] | None) -> list[float] | None:
            return None if x is None else list(x)

        return replace(
            self,
            last_command=cp(self.last_command),
            prev_command=cp(self.prev_command),
            last_position=cp(self.last_position),
            hold_target=cp(self.hold_target),
            counts=dict(self.counts),
        )


@dataclass(frozen=True)
class _Layout:
    """How one joint-state name list maps onto the actuated joints and the envelope."""

    key: tuple[str, ...]
    error: str | None
    act_idx: list[int] | None  # None: the names are exactly the actuated joints, in order
    # (label, 0 = position / 1 = velocity, index into the joint state or -1 if absent, lo, hi)
    env: list[tuple[str, int, int, float, float]]


# One stage of the per-joint pipeline: the command is clipped into [lo, hi].
_Stage = tuple[float, float, Reason, str, tuple[float, ...] | None]
"""(lo, hi, reason, detail format, its arguments); arguments None: the detail is final."""

_new_tuple = tuple.__new__


def _clip_through(stages: Sequence[_Stage], x: float, name: str, ivs: list[Intervention], note: str) -> float:
    """Clip ``x`` into each stage in turn; append an :class:`Intervention` for each that changed it."""
    for lo, hi, reason, fmt, args in stages:
        y = hi if x > hi else lo if x < lo else x
        if y != x:
            detail = (fmt if args is None else fmt.format(*args)) + note
            # tuple.__new__ skips the NamedTuple's Python-level __new__ (half the cost)
            ivs.append(_new_tuple(Intervention, (reason, name, x, y, detail)))
            x = y
    return x


class SafetyShield:
    """Turns policy actions into safe commands for one robot (see the module docstring).

    ``ood_score`` and ``fallback_policy`` are injected callables (the dynamics ensemble's
    disagreement and, e.g., the behavior-cloned policy); they are used only when the limits
    have an ``ood`` section.
    """

    def __init__(
        self,
        limits: SafetyLimits,
        *,
        ood_score: OodScore | None = None,
        fallback_policy: FallbackPolicy | None = None,
        state: ShieldState | None = None,
    ) -> None:
        if not isinstance(limits, SafetyLimits):
            raise TypeError("limits must be a SafetyLimits; load one with safety.load_limits(path)")
        if ood_score is not None and limits.ood is None:
            raise ValueError("an ood_score was given but the limits have no 'ood' section; add ood.threshold")
        if limits.ood is not None and limits.ood.fallback == "policy" and fallback_policy is None:
            raise ValueError("limits say ood.fallback: policy but no fallback_policy was given; pass one")
        self.limits = limits
        self.names: list[str] = limits.joint_names
        self.n = len(self.names)
        self.interface = limits.command_interface
        self.hold = limits.safe_command == "hold"
        self._ood_score = ood_score
        self._fallback_policy = fallback_policy
        self._ood_threshold = limits.ood.threshold if limits.ood is not None else INF
        self._ood_policy = limits.ood is not None and limits.ood.fallback == "policy"
        t = limits.timing
        self.period = t.control_period
        self._inv_period = 1.0 / t.control_period
        self._max_age = t.max_observation_age
        self._skew = t.max_clock_skew
        self._zeros = [0.0] * self.n
        self._compile()
        self._env_extras = [
            (name, -BIG if b.min is None else b.min, BIG if b.max is None else b.max)
            for name, b in limits.envelope.extras.items()
        ]
        self._layout = self._make_layout(tuple(self.names))
        self._layout_src: object = None
        self.state = state if state is not None else ShieldState()

    # --- construction ----------------------------------------------------------------

    def _compile(self) -> None:
        """Precompute each joint's limits as plain floats (inf where a limit is absent)."""
        lim = self.limits
        T = self.period
        pos_iface = self.interface == "position"
        self._box: list[tuple[float, float]] = []
        self._eff: list[float] = []
        self._pos: list[tuple[float, float, float, float] | None] = []
        self._vmax: list[float] = []
        self._rate: list[float] = []
        self._mstep: list[float] = []
        rows = []
        hold_lo, hold_hi = [], []
        for name in self.names:
            jl = lim.joints[name]
            box = lim.box(name)
            eff = jl.effort / jl.effort_per_command if jl.effort is not None else INF
            vmax = jl.velocity if jl.velocity is not None else INF
            step = lim.step(name)
            mstep = step if step is not None else INF
            if pos_iface:
                # Acceleration bounds the change of per-step displacement: a * T^2.
                rate = jl.acceleration * T * T if jl.acceleration is not None else INF
            else:
                rate = jl.acceleration * T if jl.acceleration is not None else INF
            self._box.append((box.min, box.max))
            self._eff.append(eff)
            self._vmax.append(vmax)
            self._rate.append(rate)
            self._mstep.append(mstep)
            if jl.position is not None:
                p = jl.position
                self._pos.append((p.min, p.soft_lo, p.soft_hi, p.max))
            else:
                self._pos.append(None)
            # Static part of H.
            slo, shi = max(box.min, -eff), min(box.max, eff)
            if self.interface == "velocity":
                slo, shi = max(slo, -vmax), min(shi, vmax)
            if pos_iface:
                assert jl.position is not None
                slo, shi = max(slo, jl.position.soft_lo), min(shi, jl.position.soft_hi)
                hold_lo.append(max(box.min, jl.position.min))
                hold_hi.append(min(box.max, jl.position.max))
            # Positions at or beyond which the position stage can bind (effort, velocity). Moved
            # a little toward the middle: the crossing bound (max - p) / T is rounded differently
            # from max - shi * T, and one ulp past the threshold it can already be below shi.
            # Between the two the exact bound is computed (and does not bind).
            thr_lo, thr_hi = -INF, INF
            if not pos_iface and jl.position is not None:
                p = jl.position
                thr_lo, thr_hi = p.soft_lo, p.soft_hi
                if self.interface == "velocity":
                    thr_lo = max(thr_lo, p.min - slo * T)
                    thr_hi = min(thr_hi, p.max - shi * T)
                thr_lo += 1e-9 * (1.0 + abs(thr_lo))
                thr_hi -= 1e-9 * (1.0 + abs(thr_hi))
            rows.append((slo, shi, thr_lo, thr_hi, vmax, min(rate, mstep), rate, mstep))
        self._rows = rows
        self._hold_lo, self._hold_hi = hold_lo, hold_hi
        self._static_H = [tuple(self._static_stages(j)) for j in range(self.n)]

    def _make_layout(self, key: tuple[str, ...]) -> _Layout:
        index: dict[str, int] = {}
        for i, n in enumerate(key):
            if n in index:
                return _Layout(key, f"joint_state names '{n}' twice", None, [])
            index[n] = i
        missing = [n for n in self.names if n not in index]
        if missing:
            return _Layout(key, f"joint_state lacks actuated joint '{missing[0]}'", None, [])
        act_idx = None if list(key) == self.names else [index[n] for n in self.names]
        env = []
        for kind, bounds in ((0, self.limits.envelope.positions), (1, self.limits.envelope.velocities)):
            for name, b in bounds.items():
                label = f"{name} {'position' if kind == 0 else 'velocity'}"
                env.append(
                    (
                        label,
                        kind,
                        index.get(name, -1),
                        -BIG if b.min is None else b.min,
                        BIG if b.max is None else b.max,
                    )
                )
        return _Layout(key, None, act_idx, env)

    # --- the step --------------------------------------------------------------------

    def filter(
        self,
        joint_state: JointState,
        action: Any,
        now: float,
        *,
        extras: Mapping[str, float] | None = None,
        obs: np.ndarray | None = None,
    ) -> ShieldOutput:
        """One control step: the command to send for ``action`` given ``joint_state`` at ``now``.

        ``action`` is the policy's output per actuated joint in command order (None when the
        policy failed). ``extras`` carries named observations for the envelope (e.g.
        ``body_height``); ``obs`` is what the OOD gate's callables receive (default: actuated
        joint positions then velocities). Never raises on bad input: it sends the safe command.
        """
        try:
            return self._step(joint_state, action, now, extras, obs)
        except Exception as exc:  # fail safe: never leave the last command standing
            self.state.obs_ok = False
            return self._safe("shape_mismatch", f"malformed input: {type(exc).__name__}: {exc}", None)

    def _step(
        self,
        js: JointState,
        action: Any,
        now: float,
        extras: Mapping[str, float] | None,
        obs: np.ndarray | None,
    ) -> ShieldOutput:
        st = self.state
        n = self.n
        # 1. observation layout
        names = js.names
        if names is not self._layout_src or type(names) is not tuple:
            key = tuple(names)
            if key != self._layout.key:
                self._layout = self._make_layout(key)
            self._layout_src = names
        layout = self._layout
        if layout.error is not None:
            st.obs_ok = False
            return self._safe("shape_mismatch", layout.error, None)
        position, velocity = js.position, js.velocity
        pos_all = position.tolist() if type(position) is np.ndarray else list(position)
        vel_all = velocity.tolist() if type(velocity) is np.ndarray else list(velocity)
        m = len(layout.key)
        if len(pos_all) != m or len(vel_all) != m:
            st.obs_ok = False
            return self._safe(
                "shape_mismatch",
                f"joint_state has {m} names, {len(pos_all)} positions, {len(vel_all)} velocities",
                None,
            )
        idx = layout.act_idx
        if idx is None:
            pos, vel = pos_all, vel_all
        else:
            pos = [pos_all[i] for i in idx]
            vel = [vel_all[i] for i in idx]
        # 2. finite observation
        s = sum(pos) + sum(vel)
        if s - s != 0.0 and not (all(map(math.isfinite, pos)) and all(map(math.isfinite, vel))):
            st.obs_ok = False
            bad = next(
                n
                for n, p, v in zip(self.names, pos, vel, strict=True)
                if not (math.isfinite(p) and math.isfinite(v))
            )
            return self._safe("nan_observation", f"joint '{bad}' position/velocity is not finite", None)
        # 3. timing
        stamp = js.stamp
        age = now - stamp
        if not age <= self._max_age:
            st.obs_ok = False
            what = (
                "not a finite time"
                if age != age
                else f"{age:.4g} s old > max_observation_age {self._max_age:g}"
            )
            return self._safe("stale_observation", f"observation {what}", None)
        if age < -self._skew:
            st.obs_ok = False
            return self._safe("stale_observation", f"observation stamp {-age:.4g} s in the future", None)
        if stamp < st.last_stamp:
            st.obs_ok = False
            return self._safe(
                "stale_observation",
                f"observation stamp {stamp!r} is older than the last one {st.last_stamp!r}",
                None,
            )
        # 4. envelope
        if layout.env or self._env_extras:
            status, detail = self._check_envelope(layout, pos_all, vel_all, extras)
            if status == 1:
                st.obs_ok = False
                return self._safe("nan_observation", detail, None)
            st.envelope_ok = status == 0
            st.envelope_detail = detail
            if status == 2 and not st.estop_latched:
                st.last_stamp = stamp
                st.last_position = pos
                st.obs_ok = True
                st.estop_latched = True
                st.estop_reason = f"envelope: {detail}"
                return self._safe("envelope", detail, pos)
        else:
            st.envelope_ok = True
        st.last_stamp = stamp
        st.last_position = pos
        st.obs_ok = True
        # 5. e-stop
        if st.estop_latched:
            return self._safe("estop", f"e-stop latched ({st.estop_reason}); call reset_estop()", pos)
        # 6. action
        if action is None:
            return self._safe("nan_action", "no action (the policy failed)", pos)
        act, reason, problem = self._read_action(action)
        if act is None:
            return self._safe(reason, problem, pos)
        ood_iv: Intervention | None = None
        if self._ood_score is not None:
            act, ood_iv = self._ood_gate(pos, vel, act, obs)
            if act is None:
                assert ood_iv is not None
                return self._safe("ood", ood_iv.detail, pos, requested=ood_iv.requested)
        # 7. per-joint limits
        if self.interface == "position":
            cmd = self._limit_position(act, pos)
        else:
            cmd = self._limit_effort_velocity(act, pos, vel)
        ivs: list[Intervention] = [] if ood_iv is None else [ood_iv]
        for j in range(n):
            if cmd[j] != act[j]:
                cmd[j], explained = self._explain(j, act[j], pos[j], vel[j])
                ivs.extend(explained)
        st.prev_command = st.last_command
        st.last_command = cmd
        st.in_safe = False
        st.hold_target = None
        st.steps += 1
        if ivs:
            st.intervened_steps += 1
            counts = st.counts
            for iv in ivs:
                counts[iv.reason] += 1
        return ShieldOutput(np.array(cmd, dtype=np.float64), tuple(ivs), False)

    def _read_action(self, action: Any) -> tuple[list[float] | None, Reason, str]:
        """(values or None, reason if None, problem if None)."""
        if type(action) is np.ndarray and action.ndim == 1 and action.dtype.kind in "fiu":
            act = action.tolist()
        else:
            try:
                arr = np.asarray(action)
            except Exception:
                return None, "shape_mismatch", f"action of type {type(action).__name__} is not an array"
            if arr.ndim != 1:
                return None, "shape_mismatch", f"action has shape {arr.shape}, expected ({self.n},)"
            if arr.dtype.kind not in "fiu":
                return None, "nan_action", f"action has dtype {arr.dtype}, not real numbers"
            act = arr.tolist()
        if len(act) != self.n:
            return None, "shape_mismatch", f"action has {len(act)} values, expected {self.n}"
        s = sum(act)
        if s - s != 0.0 and not all(map(math.isfinite, act)):
            bad = next(nm for nm, a in zip(self.names, act, strict=True) if not math.isfinite(a))
            return None, "nan_action", f"action for '{bad}' is not finite"
        return act, "nan_action", ""

    def _check_envelope(
        self,
        layout: _Layout,
        pos_all: list[float],
        vel_all: list[float],
        extras: Mapping[str, float] | None,
    ) -> tuple[int, str]:
        """0 inside, 1 a value is NaN/inf, 2 outside (or a named value is missing)."""
        for label, kind, i, lo, hi in layout.env:
            if i < 0:
                return 2, f"{label}: joint not in joint_state"
            x = (vel_all if kind else pos_all)[i]
            if not lo <= x <= hi:
                if not math.isfinite(x):
                    return 1, f"{label} is not finite"
                side = f"< min {lo:g}" if x < lo else f"> max {hi:g}"
                return 2, f"{label} {x:.6g} {side}"
        for name, lo, hi in self._env_extras:
            if extras is None or name not in extras:
                return 2, f"extra '{name}' not given"
            x = float(extras[name])
            if not lo <= x <= hi:
                if not math.isfinite(x):
                    return 1, f"extra '{name}' is not finite"
                side = f"< min {lo:g}" if x < lo else f"> max {hi:g}"
                return 2, f"{name} {x:.6g} {side}"
        return 0, "inside"

    def _ood_gate(
        self, pos: list[float], vel: list[float], act: list[float], obs: np.ndarray | None
    ) -> tuple[list[float] | None, Intervention | None]:
        """(action to use or None for the safe command, intervention or None)."""
        assert self._ood_score is not None
        o = np.asarray(obs, dtype=np.float64) if obs is not None else np.array(pos + vel, dtype=np.float64)
        try:
            score = float(self._ood_score(o, np.array(act, dtype=np.float64)))
        except Exception as exc:
            score, why = math.nan, f"ood_score failed ({type(exc).__name__}: {exc})"
        else:
            # a plain `score <= threshold` would let -inf through
            if -INF < score <= self._ood_threshold:
                return act, None
            if math.isfinite(score):
                why = f"ensemble disagreement {score:.4g} > threshold {self._ood_threshold:g}"
            else:
                why = f"ensemble disagreement {score} is not finite"
        requested = score if math.isfinite(score) else None
        if not self._ood_policy:
            return None, Intervention("ood", None, requested, None, f"{why}; sent the safe command")
        assert self._fallback_policy is not None
        try:
            fb, _, problem = self._read_action(self._fallback_policy(o))
        except Exception as exc:
            fb, problem = None, f"{type(exc).__name__}: {exc}"
        if fb is None:
            return None, Intervention(
                "ood",
                None,
                requested,
                None,
                f"{why}; fallback policy failed ({problem}); sent the safe command",
            )
        return fb, Intervention("ood", None, requested, None, f"{why}; sent the fallback policy's action")

    # --- per-joint limits: fast paths --------------------------------------------------

    def _limit_effort_velocity(self, act: list[float], pos: list[float], vel: list[float]) -> list[float]:
        last = self.state.last_command or self._zeros
        effort = self.interface == "effort"
        out = []
        rows = zip(self._rows, act, pos, vel, last, strict=True)
        for j, ((slo, shi, thr_lo, thr_hi, vmax, d, _, _), a, p, v, lc) in enumerate(rows):
            lo, hi = slo, shi
            if p >= thr_hi:
                b = self._pos_upper(j, p)[0]
                if b < hi:
                    hi = b
            if p <= thr_lo:
                b = self._pos_lower(j, p)[0]
                if b > lo:
                    lo = b
            if effort:
                if v > vmax:
                    hi = 0.0
                elif v < -vmax:
                    lo = 0.0
            x = a
            if x > lc + d:
                x = lc + d
            elif x < lc - d:
                x = lc - d
            if x > hi:
                x = hi
            elif x < lo:
                x = lo
            out.append(x)
        return out

    def _limit_position(self, act: list[float], pos: list[float]) -> list[float]:
        st = self.state
        last = st.last_command if st.last_command is not None else pos
        prev = st.prev_command if st.prev_command is not None else last
        out = []
        rows = zip(self._rows, act, pos, last, prev, strict=True)
        for (slo, shi, _, _, vmax, _, rate, mstep), a, p, lc, pc in rows:
            x = a
            c = lc + (lc - pc)
            if x > c + rate:
                x = c + rate
            elif x < c - rate:
                x = c - rate
            dv = vmax * self.period
            if x > lc + dv:
                x = lc + dv
            elif x < lc - dv:
                x = lc - dv
            if x > p + mstep:
                x = p + mstep
            elif x < p - mstep:
                x = p - mstep
            if x > shi:
                x = shi
            elif x < slo:
                x = slo
            out.append(x)
        return out

    # --- per-joint limits: the reference, used to explain a change ---------------------

    def _pos_upper(self, j: int, p: float) -> tuple[float, Reason, str, tuple[float, ...]]:
        """Upper bound the position limits put on joint j's effort/velocity command at p.

        Returns (bound, reason, detail format, its arguments); formatted only when it binds.
        """
        pl = self._pos[j]
        assert pl is not None
        _, _, soft_hi, hard_hi = pl
        if p >= hard_hi:
            fmt = "at/beyond hard max {:g} (q={:.6g}); outward command zeroed"
            return 0.0, "position_limit", fmt, (hard_hi, p)
        bound, fmt = INF, ""
        reason: Reason = "soft_limit"
        if p > soft_hi:
            bound = self._rows[j][1] * (hard_hi - p) / (hard_hi - soft_hi)
            fmt = "in the soft margin above {:g} (q={:.6g}); outward command scaled down"
        if self.interface == "velocity":
            cross = (hard_hi - p) * self._inv_period
            if cross < bound:
                fmt = "would cross hard max {:g} within one control period (q={:.6g})"
                return cross, "position_limit", fmt, (hard_hi, p)
        return bound, reason, fmt, (soft_hi, p)

    def _pos_lower(self, j: int, p: float) -> tuple[float, Reason, str, tuple[float, ...]]:
        """Lower bound the position limits put on joint j's effort/velocity command at p."""
        pl = self._pos[j]
        assert pl is not None
        hard_lo, soft_lo, _, _ = pl
        if p <= hard_lo:
            fmt = "at/beyond hard min {:g} (q={:.6g}); outward command zeroed"
            return 0.0, "position_limit", fmt, (hard_lo, p)
        bound, fmt = -INF, ""
        reason: Reason = "soft_limit"
        if p < soft_lo:
            bound = self._rows[j][0] * (p - hard_lo) / (soft_lo - hard_lo)
            fmt = "in the soft margin below {:g} (q={:.6g}); outward command scaled down"
        if self.interface == "velocity":
            cross = (hard_lo - p) * self._inv_period
            if cross > bound:
                fmt = "would cross hard min {:g} within one control period (q={:.6g})"
                return cross, "position_limit", fmt, (hard_lo, p)
        return bound, reason, fmt, (soft_lo, p)

    def _static_stages(self, j: int) -> tuple[_Stage, ...]:
        """Joint j's hard stages that do not depend on the state (built once, details formatted)."""
        box_lo, box_hi = self._box[j]
        H: list[_Stage] = [(box_lo, box_hi, "clipped_box", f"command box [{box_lo:g}, {box_hi:g}]", None)]
        eff, vmax = self._eff[j], self._vmax[j]
        if self.interface == "position":
            hard_lo, soft_lo, soft_hi, hard_hi = self._pos[j] or (-INF, -INF, INF, INF)
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

    def _hard_stages(self, j: int, p: float, v: float) -> tuple[_Stage, ...]:
        """Joint j's hard stages H at (p, v): the static ones, plus the position bounds past the
        fast path's thresholds (below them they are looser than the static ones) and, for effort,
        the over-speed bound."""
        H = self._static_H[j]
        if self.interface == "position":
            return H
        _, _, thr_lo, thr_hi, vmax, _, _, _ = self._rows[j]
        effort = self.interface == "effort"
        if thr_lo < p < thr_hi and not (effort and (v > vmax or v < -vmax)):
            return H
        dyn: list[_Stage] = []
        if p >= thr_hi:
            hi, hi_reason, hi_fmt, hi_args = self._pos_upper(j, p)
            if hi < INF:
                dyn.append((-INF, hi, hi_reason, hi_fmt, hi_args))
        if p <= thr_lo:
            lo, lo_reason, lo_fmt, lo_args = self._pos_lower(j, p)
            if lo > -INF:
                dyn.append((lo, INF, lo_reason, lo_fmt, lo_args))
        if effort and v > vmax:
            fmt = "velocity {:.6g} > limit {:g}; torque along it zeroed"
            dyn.append((-INF, 0.0, "velocity_limit", fmt, (v, vmax)))
        elif effort and v < -vmax:
            dyn.append(
                (0.0, INF, "velocity_limit", "velocity {:.6g} < -{:g}; torque along it zeroed", (v, vmax))
            )
        return H + tuple(dyn)

    def _smooth_stages(self, j: int, p: float, x: float) -> list[_Stage]:
        """Joint j's smoothness stages S (lowest priority first); empty when none can change ``x``."""
        st = self.state
        _, _, _, _, vmax, d, rate, mstep = self._rows[j]
        S: list[_Stage] = []
        if self.interface == "position":
            last = st.last_command[j] if st.last_command is not None else p
            prev = st.prev_command[j] if st.prev_command is not None else last
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
        last = st.last_command[j] if st.last_command is not None else 0.0
        if last - d <= x <= last + d:
            return S
        if rate < INF:
            fmt = "rate: within {:g} of last command {:.6g}"
            S.append((last - rate, last + rate, "rate_limit", fmt, (rate, last)))
        if mstep < INF:
            S.append(
                (last - mstep, last + mstep, "max_step", "within {:g} of last command {:.6g}", (mstep, last))
            )
        return S

    def _explain(self, j: int, a: float, p: float, v: float) -> tuple[float, list[Intervention]]:
        """Apply joint j's stages H, S, H to request ``a`` and record each one that changed it.

        The result equals the fast path's: clipping into S then H is the same as H, S, H
        (tests/safety/test_safety_fast_path.py checks it on every joint).
        """
        H = self._hard_stages(j, p, v)
        name = self.names[j]
        ivs: list[Intervention] = []
        x = _clip_through(H, a, name, ivs, "")
        y = _clip_through(self._smooth_stages(j, p, x), x, name, ivs, "")
        if y == x:
            return x, ivs  # S changed nothing, so x is still inside H
        return _clip_through(H, y, name, ivs, "; overrides a smoothness limit"), ivs

    # --- safe command, e-stop, watchdog ------------------------------------------------

    def _safe(
        self, reason: Reason, detail: str, pos: list[float] | None, *, requested: float | None = None
    ) -> ShieldOutput:
        """Send the safe command and record why."""
        st = self.state
        if self.hold:
            if st.hold_target is None:
                st.hold_target = self._hold_position(pos)
            cmd = list(st.hold_target)
        else:
            cmd = list(self._zeros)
        st.prev_command = cmd
        st.last_command = cmd
        st.in_safe = True
        st.steps += 1
        st.intervened_steps += 1
        st.counts[reason] += 1
        iv = Intervention(reason, None, requested, None, detail)
        return ShieldOutput(np.array(cmd, dtype=np.float64), (iv,), True)

    def _hold_position(self, pos: list[float] | None) -> list[float]:
        """Where 'hold' holds when stopped now: ``pos`` (only ever an accepted observation's
        positions), else the last accepted positions, else the last command, else the middle of
        the range; clipped into the hard range and the box."""
        st = self.state
        src = pos if pos is not None else st.last_position or st.last_command
        if src is None:
            src = [0.5 * (lo + hi) for lo, hi in zip(self._hold_lo, self._hold_hi, strict=True)]
        return [
            hi if x > hi else lo if x < lo else x
            for x, lo, hi in zip(src, self._hold_lo, self._hold_hi, strict=True)
        ]

    def safe_command(self) -> np.ndarray:
        """What a stop sends now: zeros, or the hold position (latched, or the one a stop would latch)."""
        if not self.hold:
            return np.zeros(self.n)
        target = self.state.hold_target
        return np.array(target if target is not None else self._hold_position(None), dtype=np.float64)

    def estop(self, reason: str = "requested") -> None:
        """Latch the e-stop: every command is the safe command until :meth:`reset_estop`."""
        st = self.state
        if not st.estop_latched:
            st.estop_latched = True
            st.estop_reason = reason or "requested"

    def reset_estop(self, now: float | None = None) -> ResetResult:
        """Clear the e-stop latch, only if the newest observation was valid and inside the envelope.

        With ``now``, the newest observation must also be fresh (within max_observation_age).
        """
        st = self.state
        if not st.estop_latched:
            return ResetResult(True, "e-stop was not latched")
        if not st.obs_ok:
            return ResetResult(False, "refused: the newest observation was not usable; wait for a valid one")
        if not st.envelope_ok:
            return ResetResult(False, f"refused: state is outside the envelope ({st.envelope_detail})")
        if now is not None and not (now > -INF and now - st.last_stamp <= self._max_age):
            return ResetResult(False, "refused: the newest observation is stale; wait for a fresh one")
        reason = st.estop_reason
        st.estop_latched = False
        st.estop_reason = ""
        return ResetResult(True, f"e-stop cleared (was: {reason})")

    def watchdog(self, now: float) -> ShieldOutput | None:
        """The safe command if no observation was accepted within max_observation_age of ``now``.

        For a timer in the node running the policy: when the policy or the sensors stop,
        ``filter`` is not called, and this keeps the robot from acting on the last command.
        """
        age = now - self.state.last_stamp
        # a clock reading of -inf would make every age look fresh
        if age <= self._max_age and now > -INF:
            return None
        self.state.obs_ok = False
        what = "no observation yet" if self.state.last_stamp == -INF else f"no observation for {age:.4g} s"
        return self._safe("stale_observation", f"watchdog: {what}", None)

    # --- bookkeeping -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (a fresh :class:`ShieldState`): last command, latch, counters."""
        self.state = ShieldState()

    def summary(self) -> dict[str, Any]:
        """Counters: steps, steps with an intervention, their fraction, interventions per reason."""
        st = self.state
        return {
            "steps": st.steps,
            "intervened_steps": st.intervened_steps,
            "fraction_intervened": st.intervened_steps / st.steps if st.steps else 0.0,
            "estop_latched": st.estop_latched,
            "estop_reason": st.estop_reason,
            "interventions": dict(st.counts),
        }
