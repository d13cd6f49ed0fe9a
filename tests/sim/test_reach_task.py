"""The panda_reach task: forward kinematics, reward/success on numpy and torch, reset distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bremen_robot.tasks import get_task, task_names
from bremen_robot.tasks.reach import (
    PANDA_LOWER,
    PANDA_UPPER,
    panda_ee_position,
    panda_reach_success,
    reach_distance,
)
from tests.sim.conftest import BACKENDS


def test_registered_with_a_20_entry_layout():
    assert "panda_reach" in task_names()
    task = get_task("panda-reach")
    assert task.obs_dim == 20 and task.action_dim == 7
    assert task.obs_names[14:] == ("goal.x", "goal.y", "goal.z", "ee.x", "ee.y", "ee.z")


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_kinematics_matches_the_engines(backend):
    from sim.backends import create_backend

    b = create_backend("panda", backend)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = rng.uniform(PANDA_LOWER + 0.1, PANDA_UPPER - 0.1)
        b.set_state(q, np.zeros(7))
        np.testing.assert_allclose(panda_ee_position(q), b.point_position("ee"), atol=1e-6)
    b.close()
    batch = rng.uniform(PANDA_LOWER, PANDA_UPPER, size=(4, 3, 7))
    assert panda_ee_position(batch).shape == (4, 3, 3)


def test_reward_and_success_agree_on_numpy_and_torch():
    task = get_task("panda_reach")
    rng = np.random.default_rng(1)
    obs = task.sample_reset(64, rng).astype(np.float64)
    nxt = obs.copy()
    nxt[:32, 17:20] = nxt[:32, 14:17] + 0.01  # half of them 1.7 cm from the goal
    act = rng.uniform(-1, 1, (64, 7))
    r_np = task.reward(obs, act, nxt)
    r_t = task.reward(torch.as_tensor(obs), torch.as_tensor(act), torch.as_tensor(nxt)).numpy()
    np.testing.assert_allclose(r_np, r_t, rtol=1e-12)
    dist = np.linalg.norm(nxt[:, 17:20] - nxt[:, 14:17], axis=1)
    np.testing.assert_allclose(r_np, -dist - 0.01 * (act**2).sum(1))
    success = panda_reach_success(obs, act, nxt)
    assert success[:32].all() and not success[32:].any()
    assert (panda_reach_success(*(torch.as_tensor(x) for x in (obs, act, nxt))).numpy() == success).all()
    assert not task.terminated(obs, act, nxt).any()
    np.testing.assert_allclose(reach_distance(nxt), dist)


def test_reset_distribution_is_consistent():
    task = get_task("panda_reach")
    starts = task.sample_reset(200, np.random.default_rng(2))
    q = starts[:, :7]
    assert np.all(q >= PANDA_LOWER) and np.all(q <= PANDA_UPPER)
    np.testing.assert_array_equal(starts[:, 7:14], 0.0)
    np.testing.assert_allclose(starts[:, 17:20], panda_ee_position(q), atol=1e-5)
    assert np.all(starts[:, 14:17] >= [0.3, -0.3, 0.15]) and np.all(starts[:, 14:17] <= [0.6, 0.3, 0.6])
