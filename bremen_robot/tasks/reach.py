"""Franka Emika Panda reaching a point with joint-velocity commands (``panda_reach``).

Observation (20): joint positions ``qpos.panda_joint1..7`` (rad), joint velocities
``qvel.panda_joint1..7`` (rad/s), the goal ``goal.x/y/z`` and the end-effector point
``ee.x/y/z`` (m, in the robot base frame ``panda_link0``). The end-effector point is the
``panda_grasptarget`` frame of Franka's URDF: 0.107 m (flange) + 0.105 m (between the fingertips)
along the axis of joint 7.

Action (7): joint velocity commands in rad/s, bounded to +-1 rad/s: about half of Franka's
limits (2.175 rad/s for joints 1-4, 2.61 rad/s for joints 5-7), a conservative choice for a
policy that has not yet been on hardware. The robot's own controller tracks the command and
compensates gravity, as Franka's joint-velocity interface does.

Reward ``-|ee' - goal'| - 0.01 |a|^2``; success when ``|ee' - goal'| < 5 cm``; never terminates
(episodes end on the 100-step / 5 s time limit). The reset distribution is known in closed form:
joints at Franka's "ready" pose plus U(-0.3, 0.3) rad, at rest, a goal drawn uniformly from a
box in front of the robot, and the end-effector from :func:`panda_ee_position` (forward
kinematics from the URDF's joint origins), so imagination can start from it.
"""

from __future__ import annotations

import numpy as np

from bremen_robot.tasks.base import Array, Task, never_terminates, squared_norm

PANDA_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))

# Joint origins of Franka's URDF (xyz in the parent frame, roll about x; pitch and yaw are 0),
# each followed by a rotation q_i about the joint's z axis.
_HALF_PI = np.pi / 2
_JOINT_ORIGINS = (
    ((0.0, 0.0, 0.333), 0.0),
    ((0.0, 0.0, 0.0), -_HALF_PI),
    ((0.0, -0.316, 0.0), _HALF_PI),
    ((0.0825, 0.0, 0.0), _HALF_PI),
    ((-0.0825, 0.384, 0.0), -_HALF_PI),
    ((0.0, 0.0, 0.0), _HALF_PI),
    ((0.088, 0.0, 0.0), _HALF_PI),
)
EE_OFFSET = 0.107 + 0.105  # flange (panda_joint8) + grasp target, along joint 7's z axis

PANDA_LOWER = np.array([-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671])
PANDA_UPPER = np.array([2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671])
PANDA_HOME = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])

REACH_SUCCESS_DISTANCE = 0.05
REACH_ACTION_COST = 0.01
REACH_JOINT_NOISE = 0.3
GOAL_LOW = np.array([0.3, -0.3, 0.15])
GOAL_HIGH = np.array([0.6, 0.3, 0.6])

# observation slices
Q = slice(0, 7)
QD = slice(7, 14)
GOAL = slice(14, 17)
EE = slice(17, 20)


def panda_ee_position(q: np.ndarray) -> np.ndarray:
    """Forward kinematics: joint positions ``(..., 7)`` -> end-effector point ``(..., 3)``."""
    q = np.asarray(q, dtype=np.float64)
    flat = q.reshape(-1, 7)  # (..., 7) -> (n, 7)
    n = flat.shape[0]
    rot = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    pos = np.zeros((n, 3))
    for i, (xyz, roll) in enumerate(_JOINT_ORIGINS):
        pos = pos + rot @ np.asarray(xyz)
        cr, sr = np.cos(roll), np.sin(roll)
        rot = rot @ np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
        c, s = np.cos(flat[:, i]), np.sin(flat[:, i])
        rz = np.zeros((n, 3, 3))
        rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1.0
        rot = rot @ rz
    pos = pos + rot[:, :, 2] * EE_OFFSET
    return pos.reshape(q.shape[:-1] + (3,))


def reach_distance(obs: Array) -> Array:
    """Distance from the end-effector to the goal, shape ``B`` (numpy or torch)."""
    d = obs[..., 17:20] - obs[..., 14:17]
    return (d * d).sum(-1) ** 0.5


def panda_reach_reward(obs: Array, action: Array, next_obs: Array) -> Array:
    return -reach_distance(next_obs) - REACH_ACTION_COST * squared_norm(action)


def panda_reach_success(obs: Array, action: Array, next_obs: Array) -> Array:
    """True where the end-effector is within 5 cm of the goal after the step, shape ``B``."""
    return reach_distance(next_obs) < REACH_SUCCESS_DISTANCE


def sample_reach_goal(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(GOAL_LOW, GOAL_HIGH, size=(n, 3))


def sample_reach_joints(n: int, rng: np.random.Generator) -> np.ndarray:
    q = PANDA_HOME + rng.uniform(-REACH_JOINT_NOISE, REACH_JOINT_NOISE, size=(n, 7))
    return np.clip(q, PANDA_LOWER + 0.05, PANDA_UPPER - 0.05)


def _reach_reset(n: int, rng: np.random.Generator) -> np.ndarray:
    q = sample_reach_joints(n, rng)
    goal = sample_reach_goal(n, rng)
    return np.concatenate([q, np.zeros((n, 7)), goal, panda_ee_position(q)], axis=1)


PANDA_REACH = Task(
    name="panda_reach",
    obs_names=tuple(f"qpos.{j}" for j in PANDA_JOINTS)
    + tuple(f"qvel.{j}" for j in PANDA_JOINTS)
    + ("goal.x", "goal.y", "goal.z", "ee.x", "ee.y", "ee.z"),
    action_names=PANDA_JOINTS,
    action_low=(-1.0,) * 7,
    action_high=(1.0,) * 7,
    dt=0.05,
    max_episode_steps=100,
    reward_fn=panda_reach_reward,
    termination_fn=never_terminates,
    reset_fn=_reach_reset,
    default_horizon=100,
    success_fn=panda_reach_success,
    description="Franka Panda reaching a goal point with joint velocities (-distance - 0.01|a|^2)",
)
