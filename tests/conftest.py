"""Shared fixtures. Every test runs on the CPU with few threads, so results are reproducible."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from sim._gl import configure_mujoco_gl

torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")
# MuJoCo reads MUJOCO_GL once, at its first import; a test that imports it directly
# (pytest.importorskip) before any sim module would leave later offscreen renders without a
# GL platform, in whatever order the tests run
configure_mujoco_gl()


@pytest.fixture
def point_data():
    """2,000 transitions of the toy point task from a uniform random policy (50 episodes)."""
    from bremen_robot.data.real_rollout import make_env, rollout, uniform_policy

    env, task = make_env("point")
    return rollout(env, task, uniform_policy(task, np.random.default_rng(0)), episodes=50, seed=0)


try:  # CI runs property tests derandomized (reproducible); locally they explore new examples
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True)
    _hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
except ImportError:
    pass
