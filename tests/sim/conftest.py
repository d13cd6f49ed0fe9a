"""Fixtures of the sim tests: every (robot, backend) pair, and engines skipped when missing."""

from __future__ import annotations

import importlib.util

import pytest

for _mod in ("mujoco", "pybullet", "gymnasium"):  # find_spec: MuJoCo must not be imported before sim
    if importlib.util.find_spec(_mod) is None:
        pytest.skip(f"the sim extra ({_mod}) is not installed", allow_module_level=True)

import sim  # noqa: E402  (chooses MuJoCo's offscreen GL before anything imports mujoco)

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
