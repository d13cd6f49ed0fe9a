"""Gymnasium envs over any backend: observations, rewards and terminations from the Task.

The observation is built from the backend's named joint states by
:class:`sim.observation.ObservationBuilder` (the mapping the ROS policy_runner uses), so it is
``task.obs_names`` exactly, in every engine. Rewards and terminations are the task's functions
of ``(obs, action, next_obs)`` on the noise-free observations; the time limit is
``task.max_episode_steps`` (``truncated``). Resets draw Gymnasium v5's noise from the env's
``np_random``; randomization draws from a separate stream, so switching randomization on does
not change the initial states of a seed.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from bremen_robot.errors import TaskError
from bremen_robot.tasks import Task, get_task, task_names
from bremen_robot.tasks.reach import panda_reach_success, sample_reach_goal
from sim.backends import create_backend
from sim.errors import SimError
from sim.observation import ObservationBuilder
from sim.randomization import Randomization, draw_delay, draw_scales, load_randomization
from sim.resets import sample_initial_state
from sim.robots import get_robot

SUCCESS_FNS = {"panda_reach": panda_reach_success}


def tasks_for_robot(robot: str) -> list[str]:
    """Tasks whose actions drive exactly this robot's actuated joints (in any order)."""
    spec = get_robot(robot)
    default = set(get_task(spec.default_task).action_names)
    return [n for n in task_names() if set(get_task(n).action_names) == default]


class BremenSimEnv(gym.Env[np.ndarray, np.ndarray]):
    """One robot, one task, one physics engine; optionally domain-randomized."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        robot: str,
        task: str | Task | None = None,
        backend: str = "mujoco",
        randomization: Randomization | dict[str, Any] | str | Path | None = None,
        seed: int | None = None,
        render_mode: str | None = None,
        asset: str | Path | None = None,
        width: int = 480,
        height: int = 360,
    ) -> None:
        spec = get_robot(robot)
        try:
            self.task = task if isinstance(task, Task) else get_task(task or spec.default_task)
        except TaskError as exc:
            raise SimError(str(exc)) from None
        valid = tasks_for_robot(spec.name)
        if self.task.name not in valid:
            raise SimError(
                f"task '{self.task.name}' does not fit robot '{spec.name}'; valid tasks: {', '.join(valid)}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise SimError(f"render_mode '{render_mode}' is not supported; use 'rgb_array' or None")
        self.randomization = load_randomization(randomization)
        self.spec_robot = spec
        self.backend = create_backend(spec.name, backend, asset)
        b = self.backend
        if sorted(self.task.action_names) != sorted(b.actuated_joint_names):
            raise SimError(
                f"task '{self.task.name}' commands {self.task.action_names}; "
                f"robot has {b.actuated_joint_names}"
            )
        # action entry i (task order) drives command entry _to_command[i] (backend order)
        self._to_command = np.array(
            [b.actuated_joint_names.index(n) for n in self.task.action_names], dtype=int
        )
        if abs(b.control_period - self.task.dt) > 1e-9:
            raise SimError(
                f"task '{self.task.name}' has dt {self.task.dt} s but the robot steps {b.control_period} s"
            )
        self.obs_names = self.task.obs_names
        self._builder = ObservationBuilder(self.task, b.joint_names)
        self._success_fn = SUCCESS_FNS.get(self.task.name)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.task.obs_dim,), dtype=np.float64)
        self._act_low = np.array(self.task.action_low, dtype=np.float64)
        self._act_high = np.array(self.task.action_high, dtype=np.float64)
        self.action_space = gym.spaces.Box(
            self._act_low.astype(np.float32), self._act_high.astype(np.float32)
        )
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.task.dt))}
        self.width, self.height = int(width), int(height)
        self._seed = seed
        self._rand_rng: np.random.Generator | None = None
        self._goal = np.zeros(3)
        self._queue: deque[np.ndarray] = deque()
        self._obs = np.zeros(self.task.obs_dim)
        self._t = 0

    # ------------------------------------------------------------------ helpers
    @property
    def engine(self) -> str:
        return self.backend.engine

    def observation(self) -> np.ndarray:
        """The noise-free task observation of the current state."""
        b = self.backend
        extras = None
        if self._builder.extra_names:
            ee = b.point_position("ee")
            extras = {
                "goal.x": self._goal[0],
                "goal.y": self._goal[1],
                "goal.z": self._goal[2],
                "ee.x": ee[0],
                "ee.y": ee[1],
                "ee.z": ee[2],
            }
        q, qd = b.joint_state()
        if self._builder.needs_base:
            return self._builder(q, qd, b.base_pose(), b.base_twist(), extras)
        return self._builder(q, qd, None, None, extras)

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Put the robot in a MuJoCo-layout state; returns the (noise-free) observation."""
        self.backend.set_state(qpos, qvel)
        self._obs = self.observation()
        return self._obs.copy()

    def _noisy(self, obs: np.ndarray) -> np.ndarray:
        std = self.randomization.obs_noise_std
        if std > 0 and self._rand_rng is not None:
            return obs + std * self._rand_rng.standard_normal(obs.shape)
        return obs.copy()

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        super().reset(seed=seed)
        if seed is not None or self._rand_rng is None:
            entropy = seed if seed is not None else int(self.np_random.integers(2**62))
            self._rand_rng = np.random.default_rng([entropy, 0x5EED])
        b, cfg, rng = self.backend, self.randomization, self._rand_rng
        b.set_scales(draw_scales(cfg, b, rng) if not cfg.is_nominal else b.nominal_scales())
        qpos, qvel = sample_initial_state(b, self.np_random)
        if self.task.name == "panda_reach":
            self._goal = sample_reach_goal(1, self.np_random)[0]
            b.set_marker("goal", self._goal)
        b.restore_initial()
        b.set_state(qpos, qvel)
        delay = draw_delay(cfg, rng) if not cfg.is_nominal else 0
        self._queue = deque(np.zeros(self.task.action_dim) for _ in range(delay))
        self._t = 0
        self._obs = self.observation()
        return self._noisy(self._obs), {"action_delay": delay}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        raw = np.asarray(action, dtype=np.float64).reshape(-1)
        # checked before clipping: the clip would broadcast a 1-entry action to every joint
        if raw.shape != self._act_low.shape:
            raise SimError(
                f"action has {raw.shape[0]} entries; task '{self.task.name}' takes {self.task.action_dim}"
            )
        bad = np.flatnonzero(~np.isfinite(raw))
        if bad.size:  # MuJoCo would zero such a control and PyBullet integrate it into NaN states
            raise SimError(
                f"action entry {int(bad[0])} is {raw[bad[0]]}; actions must be finite numbers "
                "(a policy that outputs NaN or inf is broken: check its training report)"
            )
        a = np.clip(raw, self._act_low, self._act_high)
        self._queue.append(a)
        command = self._queue.popleft()
        backend_command = np.empty_like(command)
        backend_command[self._to_command] = command
        self.backend.apply(backend_command)
        jitter = self.randomization.control_period_jitter
        scale = (
            1.0 + float(self._rand_rng.uniform(-jitter, jitter))
            if jitter > 0 and self._rand_rng is not None
            else 1.0
        )
        self.backend.step(scale)
        obs, next_obs = self._obs, self.observation()
        reward = float(self.task.reward(obs[None], a[None], next_obs[None])[0])
        terminated = bool(self.task.terminated(obs[None], a[None], next_obs[None])[0])
        self._t += 1
        truncated = self._t >= self.task.max_episode_steps and not terminated
        info: dict[str, Any] = {"command": command}
        if self.backend.diverged:  # the engine reset a blown-up state: this step's numbers are not physics
            info["physics_diverged"] = True
        if self._success_fn is not None:
            info["is_success"] = bool(self._success_fn(obs[None], a[None], next_obs[None])[0])
        self._obs = next_obs
        return self._noisy(next_obs), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        if self.render_mode != "rgb_array":
            return None
        return self.backend.render(self.width, self.height)

    def close(self) -> None:
        self.backend.close()


def make(
    robot: str,
    task: str | Task | None = None,
    backend: str = "mujoco",
    randomization: Randomization | dict[str, Any] | str | Path | None = None,
    seed: int | None = None,
    render_mode: str | None = None,
    **kwargs: Any,
) -> BremenSimEnv:
    """A Gymnasium env of ``robot`` doing ``task`` (default: the robot's task) in ``backend``."""
    return BremenSimEnv(robot, task, backend, randomization, seed, render_mode, **kwargs)
