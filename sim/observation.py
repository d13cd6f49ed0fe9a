"""Task observations from named joint states: one mapping for simulators and real robots.

Both the simulated envs and the ROS ``policy_runner`` (which runs with no simulator) turn joint
states into the task's observation with this module, so the layout cannot drift between them.
It imports numpy and :mod:`bremen_robot.tasks` only.

Observation names (``task.obs_names``) are resolved as follows:

* ``qpos.<joint>`` / ``qvel.<joint>``: position / velocity of that joint (planar robots' root
  slides and hinge are joints);
* ``qpos.root_x|y|z``, ``qpos.root_qw|qx|qy|qz``: floating-base position and unit quaternion
  ``(w, x, y, z)`` in the world (odom) frame;
* ``qvel.root_vx|vy|vz``: base linear velocity in the world frame; ``qvel.root_wx|wy|wz``: base
  angular velocity in the *base* frame (MuJoCo's free-joint convention). ``base_twist`` is given
  with both vectors in the world frame (``nav_msgs/Odometry`` users: rotate the twist from the
  child frame to the world frame first, e.g. with :func:`rotate`);
* anything else (``goal.x``, ``ee.x``...) comes from ``extras``; ``ee.*`` of ``panda_reach`` is
  computed by forward kinematics when not given;
* Hopper and Walker2d clip the ``qvel.*`` entries to +-10, as Gymnasium v5 does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from bremen_robot.errors import TaskError
from bremen_robot.tasks import Task, get_task
from bremen_robot.tasks.reach import PANDA_JOINTS, panda_ee_position

_BASE_POS = {"root_x": 0, "root_y": 1, "root_z": 2}
_BASE_QUAT = {"root_qw": 0, "root_qx": 1, "root_qy": 2, "root_qz": 3}
_BASE_LIN = {"root_vx": 0, "root_vy": 1, "root_vz": 2}
_BASE_ANG = {"root_wx": 0, "root_wy": 1, "root_wz": 2}


def quat_conjugate_rotate(quat_wxyz: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate world-frame ``v`` into the frame whose orientation is ``quat_wxyz``: ``R^T v``."""
    w, x, y, z = (float(c) for c in quat_wxyz)
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    return rot.T @ np.asarray(v, dtype=np.float64)


def rotate(quat_wxyz: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate body-frame ``v`` into the world frame: ``R v``."""
    w, x, y, z = (float(c) for c in quat_wxyz)
    return quat_conjugate_rotate(np.array([w, -x, -y, -z]), v)


def _panda_ee(names: Sequence[str], positions: np.ndarray) -> dict[str, float]:
    index = {n: i for i, n in enumerate(names)}
    try:
        q = np.array([positions[index[j]] for j in PANDA_JOINTS])
    except KeyError as exc:
        raise TaskError(f"panda_reach needs joint {exc.args[0]} in the joint states") from None
    ee = panda_ee_position(q)
    return {"ee.x": float(ee[0]), "ee.y": float(ee[1]), "ee.z": float(ee[2])}


# Gymnasium v5's Hopper and Walker2d clip the velocity part of the observation to +-10.
VELOCITY_CLIP: dict[str, float] = {"hopper": 10.0, "walker2d": 10.0}

# Observation entries a task can compute from joint positions when they are not measured.
DERIVED: dict[str, Callable[[Sequence[str], np.ndarray], dict[str, float]]] = {"panda_reach": _panda_ee}


class ObservationBuilder:
    """Precomputed mapping from joint states (+ base, + extras) to one task's observation."""

    def __init__(self, task: Task | str, joint_names: Sequence[str]) -> None:
        self.task = get_task(task) if isinstance(task, str) else task
        self.joint_names = tuple(joint_names)
        index = {n: i for i, n in enumerate(self.joint_names)}
        pos_dst, pos_src, vel_dst, vel_src = [], [], [], []
        self._base: list[tuple[int, str, int]] = []
        self._extra: list[tuple[int, str]] = []
        for k, full in enumerate(self.task.obs_names):
            kind, _, name = full.partition(".")
            if kind == "qpos" and name in index:
                pos_dst.append(k)
                pos_src.append(index[name])
            elif kind == "qvel" and name in index:
                vel_dst.append(k)
                vel_src.append(index[name])
            elif kind == "qpos" and name in _BASE_POS:
                self._base.append((k, "pos", _BASE_POS[name]))
            elif kind == "qpos" and name in _BASE_QUAT:
                self._base.append((k, "quat", _BASE_QUAT[name]))
            elif kind == "qvel" and name in _BASE_LIN:
                self._base.append((k, "lin", _BASE_LIN[name]))
            elif kind == "qvel" and name in _BASE_ANG:
                self._base.append((k, "ang", _BASE_ANG[name]))
            elif kind in ("qpos", "qvel"):
                raise TaskError(
                    f"task '{self.task.name}' needs observation '{full}' but the joint states have no joint "
                    f"'{name}' (joints: {', '.join(self.joint_names)}); pick the task of this robot"
                )
            else:
                self._extra.append((k, full))
        self._pos_dst, self._pos_src = np.array(pos_dst, dtype=int), np.array(pos_src, dtype=int)
        self._vel_dst, self._vel_src = np.array(vel_dst, dtype=int), np.array(vel_src, dtype=int)
        self.needs_base = bool(self._base)
        clip = VELOCITY_CLIP.get(self.task.name)
        self._vel_clip = clip
        self._qvel_idx = np.array(
            [k for k, n in enumerate(self.task.obs_names) if n.startswith("qvel.")], dtype=int
        )
        self.extra_names = tuple(name for _, name in self._extra)

    def __call__(
        self,
        positions: np.ndarray,
        velocities: np.ndarray,
        base_pose: tuple[np.ndarray, np.ndarray] | None = None,
        base_twist: tuple[np.ndarray, np.ndarray] | None = None,
        extras: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.float64)
        velocities = np.asarray(velocities, dtype=np.float64)
        n = len(self.joint_names)
        if positions.shape != (n,) or velocities.shape != (n,):
            raise TaskError(
                f"joint states have {positions.shape[0]} positions and {velocities.shape[0]} velocities "
                f"but {n} joint names; send one entry per joint"
            )
        obs = np.empty(self.task.obs_dim, dtype=np.float64)
        obs[self._pos_dst] = positions[self._pos_src]
        obs[self._vel_dst] = velocities[self._vel_src]
        if self._base:
            if base_pose is None or base_twist is None:
                raise TaskError(f"task '{self.task.name}' needs the floating-base pose and twist (odometry)")
            pos, quat = (np.asarray(v, dtype=np.float64) for v in base_pose)
            lin, ang_world = (np.asarray(v, dtype=np.float64) for v in base_twist)
            parts = {"pos": pos, "quat": quat, "lin": lin, "ang": quat_conjugate_rotate(quat, ang_world)}
            for k, part, i in self._base:
                obs[k] = parts[part][i]
        if self._vel_clip is not None:
            obs[self._qvel_idx] = np.clip(obs[self._qvel_idx], -self._vel_clip, self._vel_clip)
        if self._extra:
            values: dict[str, float] = dict(extras or {})
            missing = [name for _, name in self._extra if name not in values]
            if missing and self.task.name in DERIVED:
                values = {**DERIVED[self.task.name](self.joint_names, positions), **values}
                missing = [name for _, name in self._extra if name not in values]
            if missing:
                raise TaskError(
                    f"task '{self.task.name}' needs observation entries {', '.join(missing)}; "
                    "pass them in extras"
                )
            for k, name in self._extra:
                obs[k] = values[name]
        return obs


def build_observation(
    task: Task | str,
    joint_names: Sequence[str],
    positions: np.ndarray,
    velocities: np.ndarray,
    base_pose: tuple[np.ndarray, np.ndarray] | None = None,
    base_twist: tuple[np.ndarray, np.ndarray] | None = None,
    extras: Mapping[str, float] | None = None,
) -> np.ndarray:
    """The task's observation (float64, ``task.obs_dim``) from named joint states.

    ``base_pose = (position xyz, quaternion wxyz)`` and ``base_twist = (linear, angular)``, both
    world frame, are needed by floating-base tasks (Ant). For repeated calls build an
    :class:`ObservationBuilder` once.
    """
    return ObservationBuilder(task, joint_names)(positions, velocities, base_pose, base_twist, extras)


_HEIGHT_ENTRIES = ("qpos.root_z", "qpos.rootz")


def shield_extras(task: Task, obs: np.ndarray) -> dict[str, float]:
    """Named values the safety envelope can bound that are entries of the task observation:
    ``body_height`` (the root's z: Ant's free joint, the planar robots' rootz slide)."""
    for name in _HEIGHT_ENTRIES:
        if name in task.obs_names:
            return {"body_height": float(obs[task.obs_names.index(name)])}
    return {}
