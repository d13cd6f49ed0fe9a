"""The scripted reset's motion, without ROS: plan, track, check arrival, decide success or failure.

:func:`plan_reset` is a synchronized joint-space trajectory (every joint starts and arrives
together) with a trapezoidal speed profile along the path, sampled at the control period: each
step's velocity stays within ``max_speed``, each change of velocity within
``max_acceleration x dt``, and the last waypoint is the target exactly. :func:`track_command`
follows it (velocity interface: the planned velocity plus a feedback term, then the same
bounds again; position interface: the next waypoint). :func:`arrived_and_still` is the check
that ends a reset. :class:`ResetMotion` runs one reset over these, each command through the
reset's own shield: a correction by the shield, or no arrival within the timeout, fails the
reset (the caller stops the collection; it never retries).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bremen_robot.reset_config import ResetConfig


@dataclass(frozen=True)
class ResetPlan:
    """``positions``: ``(N+1, n)`` waypoints from the start to the target; ``velocities``:
    ``(N, n)``, the command of step ``k`` that moves from waypoint ``k`` to ``k+1`` in ``dt``."""

    positions: np.ndarray
    velocities: np.ndarray
    dt: float

    @property
    def steps(self) -> int:
        return int(self.velocities.shape[0])

    @property
    def target(self) -> np.ndarray:
        return self.positions[-1]


def _path_position(t: np.ndarray, distance: float, v_peak: float, t_acc: float, total: float) -> np.ndarray:
    """Distance covered at times ``t`` by a trapezoid (or triangle) profile of length ``distance``."""
    a = v_peak / t_acc
    t = np.clip(t, 0.0, total)
    accel = 0.5 * a * t**2
    cruise = 0.5 * a * t_acc**2 + v_peak * (t - t_acc)
    rem = total - t
    decel = distance - 0.5 * a * rem**2
    return np.where(t < t_acc, accel, np.where(t <= total - t_acc, cruise, decel))


def plan_reset(
    start: Sequence[float] | np.ndarray,
    target: Sequence[float] | np.ndarray,
    max_speed: float,
    max_acceleration: float,
    dt: float,
) -> ResetPlan:
    """A synchronized trajectory from ``start`` to ``target`` (see module docstring)."""
    q0 = np.asarray(start, dtype=np.float64)
    q1 = np.asarray(target, dtype=np.float64)
    if q0.shape != q1.shape or q0.ndim != 1:
        raise ValueError(f"start {q0.shape} and target {q1.shape} must be vectors of one length")
    if not (max_speed > 0 and max_acceleration > 0 and dt > 0):
        raise ValueError("max_speed, max_acceleration and dt must be > 0")
    delta = q1 - q0
    distance = float(np.max(np.abs(delta))) if delta.size else 0.0
    if distance == 0.0:
        return ResetPlan(q1[None].copy(), np.zeros((0, q1.size)), dt)
    if distance < 1e-12:  # one step: a subnormal distance made the profile's peak speed 0 (x / 0)
        positions = np.stack([q0, q1])  # (2, n)
        return ResetPlan(positions, np.diff(positions, axis=0) / dt, dt)
    t_acc = max_speed / max_acceleration
    if distance < max_speed * t_acc:  # never reaches max_speed: a triangle
        v_peak = math.sqrt(distance * max_acceleration)
        t_acc = v_peak / max_acceleration
        total = 2 * t_acc
    else:
        v_peak = max_speed
        total = distance / max_speed + t_acc
    n = max(1, math.ceil(total / dt - 1e-9))
    # stretch the profile onto whole periods: speeds scale by total/(n dt) <= 1, accelerations
    # by its square, so the bounds hold
    times = np.arange(n + 1) * (total / n)
    s = _path_position(times, distance, v_peak, t_acc, total) / distance
    s[0], s[-1] = 0.0, 1.0
    exact = q0[None] + s[:, None] * delta[None]  # (N+1, n)
    # the profile keeps every step within max_speed x dt, but its float arithmetic can pass it by
    # a few ulps (0.025000000000000133 for 0.5 x 0.05), and a shield whose max_step is exactly
    # that product counts the excess: clip each step to the float product and add them up, so
    # that each waypoint is the last one plus a step no longer than the bound
    bound = max_speed * dt
    steps = np.clip(np.diff(exact, axis=0), -bound, bound)  # (N, n)
    positions = np.empty_like(exact)
    positions[0] = q0
    for k in range(n):
        positions[k + 1] = positions[k] + steps[k]
    positions[-1] = q1
    return ResetPlan(positions, np.diff(positions, axis=0) / dt, dt)


def track_command(
    plan: ResetPlan,
    k: int,
    q: np.ndarray,
    last: np.ndarray,
    *,
    interface: str,
    gain: float,
    max_speed: float,
    max_acceleration: float,
) -> np.ndarray:
    """The command of step ``k`` given the measured positions ``q`` and the last command.

    Velocity: the planned velocity plus ``gain x`` (planned position - ``q``), bounded by
    ``max_speed`` and by ``max_acceleration x dt`` around ``last``; past the plan's end it
    servos on the target. Position: the next waypoint (the target once the plan is done).
    """
    n = plan.steps
    if interface == "position":
        return plan.positions[min(k + 1, n)].copy()
    ff = plan.velocities[k] if k < n else np.zeros_like(q)
    v = ff + gain * (plan.positions[min(k, n)] - q)
    step = max_acceleration * plan.dt
    v = np.clip(v, last - step, last + step)
    return np.clip(v, -max_speed, max_speed)


def arrived_and_still(
    q: np.ndarray, qd: np.ndarray, target: np.ndarray, position_tolerance: float, velocity_tolerance: float
) -> bool:
    """Every joint within ``position_tolerance`` of ``target`` and no faster than
    ``velocity_tolerance``, both bounds inclusive (a NaN anywhere: not arrived)."""
    q, qd, target = np.asarray(q), np.asarray(qd), np.asarray(target)
    if q.shape != target.shape or qd.shape != target.shape:
        return False
    return bool(np.all(np.abs(q - target) <= position_tolerance) and np.all(np.abs(qd) <= velocity_tolerance))


def start_pose(cfg: ResetConfig, number: int, seed: int) -> np.ndarray:
    """The target of reset ``number`` (1-based): home, the set in turn, or a seeded draw from the box."""
    if cfg.poses:
        return np.asarray(cfg.poses[(number - 1) % len(cfg.poses)], dtype=np.float64)
    if cfg.box is not None:
        rng = np.random.default_rng([int(seed), int(number), 0x5E7])
        return rng.uniform(np.asarray(cfg.box.low), np.asarray(cfg.box.high))
    return np.asarray(cfg.home, dtype=np.float64)


@dataclass(frozen=True)
class ResetOutcome:
    success: bool
    reason: str
    duration_s: float
    error: float
    """Largest |position - target| over the joints at the end (rad)."""


class ResetMotion:
    """One reset: each :meth:`step` takes the newest joint states and returns the command to
    send and, once decided, the outcome. ``shield`` is a ``safety.SafetyShield`` built from the
    reset's limits; ``now``/``arrival`` are monotonic seconds, as the runner gives its shield."""

    def __init__(
        self,
        cfg: ResetConfig,
        shield: Any,
        joints: Sequence[str],
        target: np.ndarray,
        dt: float,
        started: float,
    ) -> None:
        self.cfg = cfg
        self.shield = shield
        self.joints = tuple(joints)
        self.target = np.asarray(target, dtype=np.float64)
        self.dt = dt
        self.started = started
        self.interface = shield.limits.command_interface
        self.plan: ResetPlan | None = None
        self.k = 0
        self.last = np.zeros(len(self.joints))
        self.still_since: float | None = None
        self.error = math.inf
        self.outcome: ResetOutcome | None = None
        self._index: dict[tuple[str, ...], list[int] | None] = {}

    def _pick(self, names: tuple[str, ...], values: np.ndarray) -> np.ndarray | None:
        idx = self._index.get(names)
        if names not in self._index:
            pos = {n: i for i, n in enumerate(names)}
            idx = [pos[j] for j in self.joints] if all(j in pos for j in self.joints) else None
            self._index[names] = idx
        if idx is None or len(values) != len(names):
            return None
        return np.asarray(values, dtype=np.float64)[idx]

    def _end(self, success: bool, reason: str, now: float) -> tuple[np.ndarray, ResetOutcome]:
        self.outcome = ResetOutcome(success, reason, now - self.started, float(self.error))
        return np.asarray(self.shield.safe_command(), dtype=np.float64), self.outcome

    def timed_out(self, now: float) -> tuple[np.ndarray, ResetOutcome] | None:
        """The failure once ``timeout_s`` has passed (also when no joint states arrive at all)."""
        if now - self.started <= self.cfg.timeout_s:
            return None
        far = "no joint_states arrived"
        if self.plan is not None and math.isfinite(self.error):
            far = f"still {self.error:.3f} rad from it, tolerance {self.cfg.position_tolerance:g}"
        return self._end(
            False,
            f"did not reach the start pose within timeout_s {self.cfg.timeout_s:g} s ({far}; "
            f"max_speed {self.cfg.max_speed:g} rad/s)",
            now,
        )

    def step(
        self, names: Sequence[str], position: Any, velocity: Any, arrival: float, now: float
    ) -> tuple[np.ndarray, ResetOutcome | None]:
        from safety import JointState

        if self.outcome is not None:
            return np.asarray(self.shield.safe_command(), dtype=np.float64), self.outcome
        late = self.timed_out(now)
        if late is not None:
            return late
        st = self.shield.state
        key = tuple(names)
        if self.shield.hold_is_a_guess():  # a fresh shield: a stop below then holds where the
            # robot is, not the middle of its range (position), whatever else is wrong with the state
            self.shield.note_measurement(JointState(key, position, velocity, arrival))
        if st.estop_latched:  # the standing cause: a late or odd observation must not hide it
            return self._end(
                False, f"the reset's shield intervened (estop: e-stop latched ({st.estop_reason}))", now
            )
        q, qd = self._pick(key, position), self._pick(key, velocity)
        if q is None or qd is None or not (np.all(np.isfinite(q)) and np.all(np.isfinite(qd))):
            return self._end(False, f"joint_states do not carry finite values for {list(self.joints)}", now)
        self.error = float(np.max(np.abs(q - self.target)))
        if self.plan is None:
            cfg = self.cfg
            self.plan = plan_reset(q, self.target, cfg.max_speed, cfg.max_acceleration, self.dt)
        # arrival is judged on fresh states only, and settle_s is measured over the states'
        # arrival times, not over ticks: a stream that stops at the pose must not look still on one
        # old sample re-read every tick (the shield below fails the reset on it instead)
        fresh = now - arrival <= self.shield.limits.timing.max_observation_age
        cfg = self.cfg
        if fresh and arrived_and_still(q, qd, self.target, cfg.position_tolerance, cfg.velocity_tolerance):
            self.still_since = arrival if self.still_since is None else self.still_since
            if arrival - self.still_since >= cfg.settle_s:
                return self._end(True, "arrived", now)
        else:
            self.still_since = None
        cmd = track_command(
            self.plan,
            self.k,
            q,
            self.last,
            interface=self.interface,
            gain=self.cfg.gain,
            max_speed=self.cfg.max_speed,
            max_acceleration=self.cfg.max_acceleration,
        )
        self.k += 1
        out = self.shield.filter(
            JointState(key, np.asarray(position), np.asarray(velocity), arrival), cmd, now
        )
        if out.interventions:
            iv = out.interventions[0]
            where = f" on {iv.joint}" if iv.joint else ""
            return self._end(False, f"the reset's shield intervened ({iv.reason}{where}: {iv.detail})", now)
        self.last = np.asarray(out.command, dtype=np.float64)
        return self.last, None


__all__ = [
    "ResetMotion",
    "ResetOutcome",
    "ResetPlan",
    "arrived_and_still",
    "plan_reset",
    "start_pose",
    "track_command",
]
