"""MuJoCo locomotion tasks of the BREMEN paper (DESIGN.md §4), Gymnasium v5 layout.

Observation = qpos without the x (and, for Ant, y) root coordinate, then qvel, exactly as the
Gymnasium v5 envs with default arguments (Ant with ``include_cfrc_ext_in_observation=False``).
Rewards use the x-velocity in ``next_obs`` (qvel of the root x slide), as BREMEN and ME-TRPO do;
Gymnasium computes it from the x displacement over ``dt``, which differs by integration error only.
"""

from __future__ import annotations

import numpy as np

from bremen_robot.tasks.base import Array, Task, never_terminates, squared_norm

_CHEETAH_JOINTS = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
_HOPPER_JOINTS = ("thigh_joint", "leg_joint", "foot_joint")
_WALKER_JOINTS = _HOPPER_JOINTS + ("thigh_left_joint", "leg_left_joint", "foot_left_joint")
_ANT_JOINTS = ("hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3", "hip_4", "ankle_4")  # qpos order
_ANT_ACTUATORS = (
    "hip_4",
    "ankle_4",
    "hip_1",
    "ankle_1",
    "hip_2",
    "ankle_2",
    "hip_3",
    "ankle_3",
)  # ant.xml <actuator>


def _planar_obs_names(joints: tuple[str, ...]) -> tuple[str, ...]:
    """qpos without rootx, then qvel, for a planar robot with rootx/rootz/rooty slides and hinge."""
    qpos = ("rootz", "rooty") + joints
    qvel = ("rootx", "rootz", "rooty") + joints
    return tuple(f"qpos.{n}" for n in qpos) + tuple(f"qvel.{n}" for n in qvel)


def _ant_obs_names() -> tuple[str, ...]:
    qpos = ("root_z", "root_qw", "root_qx", "root_qy", "root_qz") + _ANT_JOINTS
    qvel = ("root_vx", "root_vy", "root_vz", "root_wx", "root_wy", "root_wz") + _ANT_JOINTS
    return tuple(f"qpos.{n}" for n in qpos) + tuple(f"qvel.{n}" for n in qvel)


def _uniform_reset(init_obs: np.ndarray, n_qpos: int, scale: float, qvel_normal: bool) -> object:
    """Gymnasium v5 reset noise in observation space.

    qpos entries get U(-scale, scale); qvel entries get U(-scale, scale) (Hopper, Walker2d) or
    scale * N(0, 1) (HalfCheetah, Ant).
    """

    def reset(n: int, rng: np.random.Generator) -> np.ndarray:
        obs = np.repeat(init_obs[None, :], n, axis=0)  # (D,) -> (n, D)
        obs[:, :n_qpos] += rng.uniform(-scale, scale, size=(n, n_qpos))
        n_qvel = init_obs.shape[0] - n_qpos
        if qvel_normal:
            obs[:, n_qpos:] += scale * rng.standard_normal((n, n_qvel))
        else:
            obs[:, n_qpos:] += rng.uniform(-scale, scale, size=(n, n_qvel))
        return obs

    return reset


# --- HalfCheetah: obs 17 = qpos[1:9] (8) + qvel (9); x-velocity is obs[8].
def halfcheetah_reward(obs: Array, action: Array, next_obs: Array) -> Array:
    return next_obs[..., 8] - 0.1 * squared_norm(action)


# --- Hopper: obs 11 = qpos[1:6] (5) + qvel (6); height obs[0], angle obs[1], x-velocity obs[5].
def hopper_reward(obs: Array, action: Array, next_obs: Array) -> Array:
    return next_obs[..., 5] - 1e-3 * squared_norm(action) + 1.0


def hopper_terminated(obs: Array, action: Array, next_obs: Array) -> Array:
    height, angle = next_obs[..., 0], next_obs[..., 1]
    state_ok = (abs(next_obs[..., 1:]) < 100.0).all(-1)
    healthy = (height > 0.7) & (abs(angle) < 0.2) & state_ok
    return ~healthy


# --- Walker2d: obs 17 = qpos[1:9] (8) + qvel (9); height obs[0], angle obs[1], x-velocity obs[8].
def walker2d_reward(obs: Array, action: Array, next_obs: Array) -> Array:
    return next_obs[..., 8] - 1e-3 * squared_norm(action) + 1.0


def walker2d_terminated(obs: Array, action: Array, next_obs: Array) -> Array:
    height, angle = next_obs[..., 0], next_obs[..., 1]
    healthy = (height > 0.8) & (height < 2.0) & (abs(angle) < 1.0)
    return ~healthy


# --- Ant: obs 27 = qpos[2:15] (13) + qvel (14); z obs[0], x-velocity obs[13].
def ant_reward(obs: Array, action: Array, next_obs: Array) -> Array:
    z = next_obs[..., 0]
    return next_obs[..., 13] - 0.1 * squared_norm(action) - 3.0 * (z - 0.57) ** 2 + 1.0


_CHEETAH_INIT = np.zeros(17)
_HOPPER_INIT = np.zeros(11)
_HOPPER_INIT[0] = 1.25
_WALKER_INIT = np.zeros(17)
_WALKER_INIT[0] = 1.25
_ANT_INIT = np.zeros(27)
_ANT_INIT[:2] = [0.75, 1.0]  # root z and quaternion w; joints start at 0


def _unit_box(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return (-1.0,) * n, (1.0,) * n


HALFCHEETAH = Task(
    name="halfcheetah",
    obs_names=_planar_obs_names(_CHEETAH_JOINTS),
    action_names=_CHEETAH_JOINTS,
    action_low=_unit_box(6)[0],
    action_high=_unit_box(6)[1],
    dt=0.05,
    max_episode_steps=1000,
    reward_fn=halfcheetah_reward,
    termination_fn=never_terminates,
    reset_fn=_uniform_reset(_CHEETAH_INIT, 8, 0.1, qvel_normal=True),  # type: ignore[arg-type]
    gym_id="HalfCheetah-v5",
    default_horizon=250,
    description="planar cheetah running forward (x-velocity - 0.1|a|^2), never terminates",
)

HOPPER = Task(
    name="hopper",
    obs_names=_planar_obs_names(_HOPPER_JOINTS),
    action_names=_HOPPER_JOINTS,
    action_low=_unit_box(3)[0],
    action_high=_unit_box(3)[1],
    dt=0.008,
    max_episode_steps=1000,
    reward_fn=hopper_reward,
    termination_fn=hopper_terminated,
    reset_fn=_uniform_reset(_HOPPER_INIT, 5, 5e-3, qvel_normal=False),  # type: ignore[arg-type]
    gym_id="Hopper-v5",
    default_horizon=1000,
    description="one-legged hopper, alive bonus 1, terminates when it falls",
)

WALKER2D = Task(
    name="walker2d",
    obs_names=_planar_obs_names(_WALKER_JOINTS),
    action_names=_WALKER_JOINTS,
    action_low=_unit_box(6)[0],
    action_high=_unit_box(6)[1],
    dt=0.008,
    max_episode_steps=1000,
    reward_fn=walker2d_reward,
    termination_fn=walker2d_terminated,
    reset_fn=_uniform_reset(_WALKER_INIT, 8, 5e-3, qvel_normal=False),  # type: ignore[arg-type]
    gym_id="Walker2d-v5",
    default_horizon=1000,
    description="planar biped walker, alive bonus 1, terminates when it falls",
)

ANT = Task(
    name="ant",
    obs_names=_ant_obs_names(),
    action_names=_ANT_ACTUATORS,
    action_low=_unit_box(8)[0],
    action_high=_unit_box(8)[1],
    dt=0.05,
    max_episode_steps=1000,
    reward_fn=ant_reward,
    termination_fn=never_terminates,
    reset_fn=_uniform_reset(_ANT_INIT, 13, 0.1, qvel_normal=True),  # type: ignore[arg-type]
    gym_id="Ant-v5",
    gym_kwargs={"include_cfrc_ext_in_observation": False},
    default_horizon=250,
    description="quadruped ant, BREMEN's reward (x-vel - 0.1|a|^2 - 3(z-0.57)^2 + 1), never terminates",
)
