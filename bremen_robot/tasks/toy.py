"""A toy 2-D point-reaching task with known dynamics, for fast end-to-end tests and docs.

State (x, y) in the plane, action (vx, vy) in [-1, 1]^2, ``s' = s + 0.1 * a`` (clipped to the
[-2, 2]^2 arena). Reward ``-|s'|`` (distance to the goal at the origin). Episodes last 40 steps
and start uniformly in [-1, 1]^2. A random behavior policy goes nowhere on average, so cloning it
stays put; planning in a learned model reaches the goal: the gap BREMEN must show over BC.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bremen_robot.tasks.base import Array, Task

POINT_STEP = 0.1
POINT_ARENA = 2.0


def point_reward(obs: Array, action: Array, next_obs: Array) -> Array:
    return -((next_obs * next_obs).sum(-1) ** 0.5)


def _point_reset(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=(n, 2))


POINT = Task(
    name="point",
    obs_names=("pos.x", "pos.y"),
    action_names=("vel.x", "vel.y"),
    action_low=(-1.0, -1.0),
    action_high=(1.0, 1.0),
    dt=0.1,
    max_episode_steps=40,
    reward_fn=point_reward,
    reset_fn=_point_reset,
    default_horizon=40,
    description="toy 2-D point mass reaching the origin (tests and docs)",
)


class PointEnv:
    """Real rollouts of :data:`POINT`: a Gymnasium-style env with no simulator dependency."""

    task = POINT

    def __init__(self) -> None:
        self._rng = np.random.default_rng(0)
        self._state = np.zeros(2)
        self._t = 0

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._state = _point_reset(1, self._rng)[0]
        self._t = 0
        return self._state.astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        nxt = np.clip(self._state + POINT_STEP * a, -POINT_ARENA, POINT_ARENA)
        reward = float(point_reward(self._state, a, nxt))
        self._state = nxt
        self._t += 1
        truncated = self._t >= POINT.max_episode_steps
        return nxt.astype(np.float32), reward, False, truncated, {}

    def close(self) -> None:
        pass
