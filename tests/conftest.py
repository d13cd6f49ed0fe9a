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


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``make test`` runs on pytest-xdist workers with ``--dist loadfile`` (docs/testing.md): each
    test file on one worker, so a module's fixtures (a campaign run, a live graph) are built once.
    Here the live cluster tests count as one file, since they share one lab (a Ray head and two
    robot nodes, about 10 s to start) that a second worker would start again. Scheduled by
    node id, not by markers: pytest 9.2 ignores how pytest-xdist 3.8 tags ``--dist loadgroup``
    groups onto node ids."""
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler for any other --dist
    from xdist.scheduler import LoadFileScheduling

    class ClusterAsOneFile(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/cluster/" if path.startswith("tests/cluster/") else path

    return ClusterAsOneFile(config, log)


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
