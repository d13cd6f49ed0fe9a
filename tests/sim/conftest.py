"""Fixtures of the sim tests: every (robot, backend) pair, and engines skipped when missing."""

from __future__ import annotations

import pytest

pytest.importorskip("mujoco", reason="the sim extra (mujoco) is not installed")
pytest.importorskip("pybullet", reason="the sim extra (pybullet) is not installed")
pytest.importorskip("gymnasium", reason="the sim extra (gymnasium) is not installed")

import sim  # noqa: E402

ROBOTS = sim.robot_names()
BACKENDS = sim.backend_names()
PAIRS = [(r, b) for r in ROBOTS for b in BACKENDS]
LOCOMOTION = ["halfcheetah", "hopper", "walker2d", "ant"]


def inside_limits(mujoco_backend, qpos, margin: float = 0.05):
    """``qpos`` with every limited joint moved at least ``margin`` inside its range.

    PyBullet clamps joints set outside their limits (MuJoCo's soft limits push them back over
    the next steps instead), so cross-engine comparisons start inside the limits.
    """
    import numpy as np

    m = mujoco_backend.model
    q = np.array(qpos, dtype=np.float64)
    for j in range(m.njnt):
        if m.jnt_limited[j] and m.jnt_type[j] in (2, 3):  # slide, hinge
            adr = m.jnt_qposadr[j]
            lo, hi = m.jnt_range[j]
            q[adr] = np.clip(q[adr], lo + margin, hi - margin)
    return q
