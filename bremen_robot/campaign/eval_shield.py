"""Safety-shield interventions in the campaign's simulation evaluation, in *observe* mode.

The campaign evaluates each policy's mean action in simulation (``runner.evaluate_policy``).
There the robot's real shield (``safety.SafetyShield`` with the limits file the robot config
names) sees every step's joint state and action and says what it *would* change; the counts go
to ``eval.json`` by reason code, and the action reaches the simulator unchanged. Applying the
shield would change the returns a running benchmark compares with earlier runs, and the
question the review asks is "how often would this policy lean on the shield", which the
unfiltered rollout answers.

Each step is judged as the shield on the robot would judge it at that point of the rollout: a
fresh shield per episode, ``now`` = step x control period, and the shield's memory of the last
command set to the action that was actually applied (not its own filtered one), so a rate limit
compares with what the joint was really told before. When the state leaves the envelope the
shield latches its e-stop: that event is counted (``envelope``), the episode is counted in
``episodes_estopped``, and the rest of it is not judged (the robot would have stopped there).

The record (``eval.json`` ``interventions``)::

    {"mode": "observe", "limits": "<file>", "episodes": N, "total": T, "per_episode": T / N,
     "by_reason": {reason: count, ...}, "episodes_estopped": E}

or, where nothing could be measured (no limits file, an env without joint states such as the
toy point task or a Gymnasium id, limits written for another control rate)::

    {"mode": "observe", "not_measured": "<why, in one line>"}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.robot_config import RobotConfig
from bremen_robot.tasks import Task

MODE = "observe"


def not_measured(why: str) -> dict[str, Any]:
    return {"mode": MODE, "not_measured": why}


def observe_step(shield: Any, state: Any, action: np.ndarray, now: float, extras: Any = None) -> list[str]:
    """The reason codes of the interventions ``shield`` would make on ``action`` in ``state``;
    afterwards the shield remembers ``action`` as the command sent (observe mode: it was)."""
    st = shield.state
    sent_before = st.last_command  # what was applied on the previous step (set below)
    out = shield.filter(state, action, now, extras=extras)
    # the shield remembers its own command; the robot was sent the action, so a rate limit on
    # the next step must compare with that
    # from rest a position command starts at the measured position (the shield's own rule)
    if sent_before is None and shield.interface == "position" and st.last_position is not None:
        sent_before = list(st.last_position)
    st.prev_command = sent_before
    st.last_command = [float(a) for a in np.asarray(action, dtype=np.float64).reshape(-1)]
    return [str(iv.reason) for iv in out.interventions]


def backend_joint_state(backend: Any, now: float) -> tuple[Any, dict[str, float] | None]:
    """The simulator's joint state as the robot would publish it, and the envelope's extras
    (the body height a floating robot's odometry, or a planar robot's root joint, gives)."""
    import safety

    q = backend.joint_positions()
    state = safety.JointState(tuple(backend.joint_names), q, backend.joint_velocities(), now)
    pose = backend.base_pose()
    extras = {"body_height": float(pose[0][2])} if pose is not None else None
    if extras is None and "rootz" in backend.joint_names:
        extras = {"body_height": float(q[backend.joint_names.index("rootz")])}
    return state, extras


class ObservedEnv:
    """``env`` with the shield watching: ``step`` judges the action, then passes it on unchanged."""

    def __init__(self, env: Any, make_shield: Callable[[], Any], dt: float, limits: Path) -> None:
        self._env = env
        self._make_shield = make_shield
        self._dt = dt
        self._limits = limits
        self._shield: Any = None
        self._t = 0
        self._started = 0  # episodes with at least one step
        self._estopped = 0
        self.counts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:  # everything but reset/step is the env's own
        return getattr(self._env, name)

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        self._shield, self._t = self._make_shield(), 0
        return self._env.reset(*args, **kwargs)

    def step(self, action: Any) -> Any:
        if self._t == 0:
            self._started += 1
        shield = self._shield
        if shield is not None and not shield.state.estop_latched:
            now = self._t * self._dt
            state, extras = backend_joint_state(self._env.backend, now)
            self.counts.update(observe_step(shield, state, action, now, extras))
            if shield.state.estop_latched:
                self._estopped += 1
        self._t += 1
        return self._env.step(action)

    def summary(self) -> dict[str, Any]:
        total = int(sum(self.counts.values()))
        n = self._started
        return {
            "mode": MODE,
            "limits": str(self._limits),
            "episodes": n,
            "total": total,
            "per_episode": total / n if n else None,
            "by_reason": {k: int(v) for k, v in sorted(self.counts.items()) if v},
            "episodes_estopped": self._estopped,
        }


def observe(env: Any, task: Task, robot: RobotConfig) -> tuple[Any, dict[str, Any] | None]:
    """``(ObservedEnv, None)`` when the shield can watch ``env``, else ``(env, not_measured(why))``."""
    if robot.safety is None:
        return env, not_measured(f"robot '{robot.name}' has no safety limits file (robot config: safety)")
    backend = getattr(env, "backend", None)
    if backend is None or not hasattr(backend, "joint_positions"):
        return env, not_measured(
            f"the evaluation env ({type(env).__name__}) exposes no joint states to the shield; "
            "evaluate in 'sim:<robot>/mujoco' to count interventions"
        )
    missing = [j for j in robot.joints if j not in backend.joint_names]
    if missing:
        return env, not_measured(
            f"the evaluation env has no joint '{missing[0]}' of robot '{robot.name}'; "
            "evaluate in the robot's own simulator"
        )
    try:
        import safety

        limits = safety.load_limits(robot.safety, joint_names=list(robot.joints))
    except ImportError:
        return env, not_measured("the 'safety' package is not installed")
    except ValueError as exc:  # SafetyConfigError: one line naming the field and the fix
        return env, not_measured(f"limits not loaded: {exc}")
    from bremen_robot.limits_fit import ood_problem

    if (why := ood_problem(limits, robot.safety)) is not None:
        return env, not_measured(why)
    period = float(limits.timing.control_period)
    if abs(period - task.dt) > 1e-9:
        return env, not_measured(
            f"{robot.safety}: timing.control_period is {period:g} s but the task steps every "
            f"{task.dt:g} s; the shield's rate and acceleration limits would not mean the same"
        )
    return ObservedEnv(env, lambda: safety.SafetyShield(limits), task.dt, robot.safety), None
