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

Any failure in 1-4 sends the safe command (zero, or hold position) and records why; so does an
exception: ``shape_mismatch`` while the inputs are read (1-2), ``internal_error`` after (a bug).
The per-joint arithmetic is done on plain Python floats: for a handful of joints that is faster
than numpy's per-call overhead (docs/perf-safety.md). The per-joint limits and the path that
explains a change live in :mod:`safety.explain`, the name layout and envelope in
:mod:`safety.layout`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from safety.action import FallbackPolicy, OodGate, OodScore, read_action
from safety.explain import INF, JointRow, JointTable, PositionRow, Stage, clip_through
from safety.explain import _new_tuple as _new_tuple  # re-exported, as the names below
from safety.layout import (
    BIG,
    ENVELOPE_NOT_FINITE,
    ENVELOPE_OUTSIDE,
    Layout,
    check_envelope,
    extra_bounds,
    make_layout,
)
from safety.limits import SafetyLimits
from safety.types import REASONS, Intervention, JointState, Reason, ResetResult, ShieldOutput

# Names this module had before the explaining path and the layout moved out; kept importable.
_Layout = Layout
_Stage = Stage
_clip_through = clip_through

__all__ = [
    "BIG",
    "INF",
    "FallbackPolicy",
    "JointRow",
    "OodScore",
    "PositionRow",
    "SafetyShield",
    "ShieldState",
]


def _finite_real(x: object) -> bool:
    return isinstance(x, numbers.Real) and math.isfinite(x)


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
    last_measured: list[float] | None = None
    """Actuated joint positions of the newest observation with finite joint values and a stamp
    no older than the last accepted one, accepted or rejected later (late, from the future,
    envelope extras), or noted (:meth:`SafetyShield.note_measurement`): where a hold goes."""
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
            last_measured=cp(self.last_measured),
            counts=dict(self.counts),
        )


class SafetyShield:
    """Turns policy actions into safe commands for one robot (see the module docstring).

    ``ood_score`` and ``fallback_policy`` are injected callables (the dynamics ensemble's
    disagreement and, e.g., the behavior-cloned policy); limits with an ``ood`` section need an
    ``ood_score`` (without one the gate the file asks for would silently be off), and limits
    without one take none.
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
        if limits.ood is not None and ood_score is None:
            raise ValueError(
                "the limits have an 'ood' section but no ood_score was given, so the gate would be "
                "off; pass ood_score (e.g. the dynamics ensemble's disagreement) or remove the ood section"
            )
        if limits.ood is not None and limits.ood.fallback == "policy" and fallback_policy is None:
            raise ValueError("limits say ood.fallback: policy but no fallback_policy was given; pass one")
        self.limits = limits
        self.names: list[str] = limits.joint_names
        self.n = len(self.names)
        self.interface = limits.command_interface
        self.hold = limits.safe_command == "hold"
        self._ood = None
        if ood_score is not None and limits.ood is not None:
            fallback = fallback_policy if limits.ood.fallback == "policy" else None
            self._ood = OodGate(ood_score, limits.ood.threshold, fallback, self.names)
        t = limits.timing
        self.period = t.control_period
        self._max_age = t.max_observation_age
        self._skew = t.max_clock_skew
        self._zeros = [0.0] * self.n
        self._joints = JointTable(limits)
        # bound once: the fast path reads these on every step
        self._rows = self._joints.fast_rows
        self._pos_upper = self._joints.pos_upper
        self._pos_lower = self._joints.pos_lower
        self._hold_lo, self._hold_hi = self._joints.hold_lo, self._joints.hold_hi
        self._env_extras = extra_bounds(limits)
        self._layout = make_layout(limits, tuple(self.names))
        self._layout_src: object = None
        if state is not None:  # a state from another robot would index past its joints
            for field_name in (
                "last_command",
                "prev_command",
                "last_position",
                "hold_target",
                "last_measured",
            ):
                v = getattr(state, field_name)
                if v is not None and len(v) != self.n:
                    raise ValueError(
                        f"state.{field_name} has {len(v)} entries for {self.n} joints; pass a state "
                        "copied from a shield of these limits (shield.state.copy()), or none"
                    )
        self.state = state if state is not None else ShieldState()

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
        joint positions then velocities). Never raises: it sends the safe command, with
        ``shape_mismatch`` for input it cannot read and ``internal_error`` for a bug of its own.
        """
        # fail safe: never leave the last command standing
        try:
            pos, vel, out = self._observe(joint_state, now, extras)
        except Exception as exc:
            self.state.obs_ok = False
            return self._safe("shape_mismatch", f"malformed input: {type(exc).__name__}: {exc}", None)
        if out is not None:
            return out
        # steps 3-5 on the accepted observation: inline, since a call costs on every step
        try:
            st = self.state
            # 3. e-stop
            if st.estop_latched:
                return self._safe("estop", f"e-stop latched ({st.estop_reason}); call reset_estop()", pos)
            # 4. action
            if action is None:
                return self._safe("nan_action", "no action (the policy failed)", pos)
            act, reason, problem = read_action(action, self.names)
            if act is None:
                return self._safe(reason, problem, pos)
            ood_iv: Intervention | None = None
            if self._ood is not None:
                act, ood_iv = self._ood(pos, vel, act, obs)
                if act is None:
                    if ood_iv is None:  # an explicit check, not an assert: python -O keeps it
                        raise RuntimeError("the OOD gate refused the action without saying why")
                    if ood_iv.reason == "shape_mismatch":
                        st.obs_ok = False  # the caller's obs could not be read
                    return self._safe(ood_iv.reason, ood_iv.detail, pos, requested=ood_iv.requested)
            # 5. per-joint limits
            if self.interface == "position":
                cmd = self._limit_position(act, pos)
            else:
                cmd = self._limit_effort_velocity(act, pos, vel)
            ivs: list[Intervention] = [] if ood_iv is None else [ood_iv]
            for j in range(self.n):
                if cmd[j] != act[j]:
                    last, prev = st.last_command, st.prev_command
                    cmd[j], explained = self._joints.explain(j, act[j], pos[j], vel[j], last, prev)
                    ivs.extend(explained)
            # after rest, a position command started from the measured position: that is this
            # step's "previous command", so the next step's acceleration limit sees this movement
            if st.last_command is None and self.interface == "position":
                st.prev_command = list(pos)
            else:
                st.prev_command = st.last_command
            st.last_command = cmd
            st.hold_target = None
            st.steps += 1
            if ivs:
                st.intervened_steps += 1
                counts = st.counts
                for iv in ivs:
                    counts[iv.reason] += 1
            return ShieldOutput(np.array(cmd, dtype=np.float64), tuple(ivs), False)
        except Exception as exc:
            self.state.obs_ok = False
            return self._safe("internal_error", f"internal error: {type(exc).__name__}: {exc}", None)

    def _observe(
        self, js: JointState, now: float, extras: Mapping[str, float] | None
    ) -> tuple[list[float], list[float], ShieldOutput | None]:
        """Steps 1-2: accept the observation (actuated positions and velocities, no output), or
        the safe command (empty lists and the output). Everything read from the caller's
        objects is read here."""
        st = self.state
        # 1. observation layout
        names = js.names
        if names is not self._layout_src or type(names) is not tuple:
            key = tuple(names)
            if key != self._layout.key:
                self._layout = make_layout(self.limits, key)
            self._layout_src = names
        layout = self._layout
        if layout.error is not None:
            return self._refuse("shape_mismatch", layout.error)
        position, velocity = js.position, js.velocity
        pos_all = position.tolist() if type(position) is np.ndarray else list(position)
        vel_all = velocity.tolist() if type(velocity) is np.ndarray else list(velocity)
        m = len(layout.key)
        if len(pos_all) != m or len(vel_all) != m:
            detail = f"joint_state has {m} names, {len(pos_all)} positions, {len(vel_all)} velocities"
            return self._refuse("shape_mismatch", detail)
        idx = layout.act_idx
        if idx is None:
            pos, vel = pos_all, vel_all
        else:
            pos = [pos_all[i] for i in idx]
            vel = [vel_all[i] for i in idx]
        # finite observation
        # a float sum is finite iff every value is; any other type (int, numpy scalar, complex)
        # takes the per-value check, which also refuses a complex value (numpy's with zero
        # imaginary part would pass math.isfinite)
        s = sum(pos) + sum(vel)
        if (type(s) is not float or s - s != 0.0) and not (
            all(map(_finite_real, pos)) and all(map(_finite_real, vel))
        ):
            bad = next(
                n
                for n, p, v in zip(self.names, pos, vel, strict=True)
                if not (_finite_real(p) and _finite_real(v))
            )
            return self._refuse("nan_observation", f"joint '{bad}' position/velocity is not finite")
        # timing
        stamp = js.stamp
        if not stamp < st.last_stamp:  # a measurement no older than the last accepted one
            st.last_measured = pos
        age = now - stamp
        if not age <= self._max_age:
            what = (
                "not a finite time"
                if age != age
                else f"{age:.4g} s old > max_observation_age {self._max_age:g}"
            )
            return self._refuse("stale_observation", f"observation {what}")
        if age < -self._skew:
            return self._refuse("stale_observation", f"observation stamp {-age:.4g} s in the future")
        if stamp < st.last_stamp:
            detail = f"observation stamp {stamp!r} is older than the last one {st.last_stamp!r}"
            return self._refuse("stale_observation", detail)
        # 2. envelope
        if layout.env or self._env_extras:
            status, detail = check_envelope(layout, self._env_extras, pos_all, vel_all, extras)
            if status == ENVELOPE_NOT_FINITE:
                return self._refuse("nan_observation", detail)
            st.envelope_ok = status != ENVELOPE_OUTSIDE
            st.envelope_detail = detail
            if status == ENVELOPE_OUTSIDE and not st.estop_latched:
                st.last_stamp = stamp
                st.last_position = pos
                st.obs_ok = True
                st.estop_latched = True
                st.estop_reason = f"envelope: {detail}"
                return pos, vel, self._safe("envelope", detail, pos)
        else:
            st.envelope_ok = True
        st.last_stamp = stamp
        st.last_position = pos
        st.obs_ok = True
        return pos, vel, None

    def _refuse(self, reason: Reason, detail: str) -> tuple[list[float], list[float], ShieldOutput]:
        """An unusable observation: the safe command, holding where the last accepted one was."""
        self.state.obs_ok = False
        return [], [], self._safe(reason, detail, None)

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

    def _explain(self, j: int, a: float, p: float, v: float) -> tuple[float, list[Intervention]]:
        """Joint j's command for request ``a`` at (p, v), and each limit that changed it
        (:meth:`safety.explain.JointTable.explain`, from the current state)."""
        st = self.state
        return self._joints.explain(j, a, p, v, st.last_command, st.prev_command)

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
        st.steps += 1
        st.intervened_steps += 1
        st.counts[reason] += 1
        iv = Intervention(reason, None, requested, None, detail)
        return ShieldOutput(np.array(cmd, dtype=np.float64), (iv,), True)

    def _hold_position(self, pos: list[float] | None) -> list[float]:
        """Where 'hold' holds when stopped now: ``pos`` (only ever an accepted observation's
        positions), else the last accepted positions, else the last command, else the newest
        finite measurement (rejected as late or from the future, but where the robot was), else
        the middle of the range; clipped into the hard range and the box. After commands outside
        the shield (:meth:`forget_commands`) only what was measured since counts."""
        src = pos if pos is not None else self._known_position()
        if src is None:
            src = [0.5 * (lo + hi) for lo, hi in zip(self._hold_lo, self._hold_hi, strict=True)]
        return [
            hi if x > hi else lo if x < lo else x
            for x, lo, hi in zip(src, self._hold_lo, self._hold_hi, strict=True)
        ]

    def _known_position(self) -> list[float] | None:
        """Where the joints are best known to be without a step: the last accepted positions,
        else the last command, else the newest finite measurement (None: nothing known)."""
        st = self.state
        return st.last_position or st.last_command or st.last_measured

    def note_measurement(self, joint_state: JointState) -> None:
        """Remember where the actuated joints were measured (finite real positions; velocities
        are not needed) for a hold, without a step: a node that stops the robot before its
        shield has stepped (a reset e-stopped before its first command) then holds there, not
        at the middle of the range. Never raises; an unreadable state is ignored."""
        try:
            names = tuple(joint_state.names)
            layout = self._layout if names == self._layout.key else make_layout(self.limits, names)
            values = np.asarray(joint_state.position)
            if layout.error is not None or values.dtype.kind not in "fiu" or values.shape != (len(names),):
                return
            pos_all = values.astype(np.float64).tolist()
            pos = pos_all if layout.act_idx is None else [pos_all[i] for i in layout.act_idx]
            if all(map(math.isfinite, pos)):
                self.state.last_measured = pos
        except Exception:
            return

    def hold_is_a_guess(self) -> bool:
        """True when a stop now would hold the middle of each range: 'hold' mode, nothing latched,
        and no position ever accepted, commanded or measured. Then sending nothing is safer (a
        position controller holds on silence) than a target the robot may be far from."""
        return self.hold and self.state.hold_target is None and self._known_position() is None

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

    def forget_commands(self) -> None:
        """The robot was commanded outside :meth:`filter` (the safe command sent between episodes,
        on a stop or a failed tick; a reset motion by another node): the next step's rate and
        acceleration limits start from rest, i.e. zero for velocity and effort and the measured
        position for the position interface, not from the last filtered command. Where the joints
        were is forgotten too (a reset motion may have moved them far): a hold goes where they are
        measured next, and is a guess until then (:meth:`hold_is_a_guess`). The e-stop latch, the
        newest accepted stamp and the counters stay."""
        st = self.state
        st.last_command = None
        st.prev_command = None
        st.hold_target = None
        st.last_position = None
        st.last_measured = None

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
