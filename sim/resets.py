"""Reset distributions, identical in every engine (they act on MuJoCo-layout qpos/qvel)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bremen_robot.tasks.reach import sample_reach_joints

if TYPE_CHECKING:
    from sim.backends.base import RobotBackend


def sample_initial_state(backend: RobotBackend, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(qpos, qvel)`` drawn like Gymnasium v5's ``reset_model`` (same draws, same order).

    qpos = qpos0 + U(-s, s); qvel = s * N(0, 1) (HalfCheetah, Ant) or U(-s, s) (Hopper,
    Walker2d). A floating base's quaternion is renormalized (Gymnasium leaves it unnormalized
    until the first physics step; PyBullet cannot hold an unnormalized orientation).
    The arm starts at rest at Franka's "ready" pose plus U(-0.3, 0.3) rad per joint.
    """
    spec = backend.spec
    if spec.name == "panda":
        return sample_reach_joints(1, rng)[0], np.zeros(backend.nv)
    s = spec.reset_noise
    qpos = backend.qpos0 + rng.uniform(-s, s, size=backend.nq)
    if spec.qvel_noise_normal:
        qvel = s * rng.standard_normal(backend.nv)
    else:
        qvel = rng.uniform(-s, s, size=backend.nv)
    if backend.floating_base:
        qpos[3:7] /= np.linalg.norm(qpos[3:7])
    return qpos, qvel
