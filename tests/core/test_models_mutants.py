"""Ensemble and imagination details, checked by value.

Written against the mutants `make mutate` found alive in bremen_robot/models,
bremen_robot/imagination and bremen_robot/policy/gaussian.py (docs/testing.md, Mutation
testing). Expectations are by hand or recomputed with numpy.
"""

import numpy as np
import pytest
import torch

from bremen_robot.imagination.model_env import ImaginedBatch, ModelEnv
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.tasks import get_task


def test_episode_returns_of_a_one_step_batch_are_its_rewards():
    """Horizon 1: every rollout is whole after its only step."""
    rewards = torch.tensor([[2.5, -1.0, 4.0]])
    done = torch.ones(1, 3, dtype=torch.bool)
    z = torch.zeros(1, 3, 1)
    batch = ImaginedBatch(
        z, z, rewards, z, torch.zeros(1, 3, dtype=torch.bool), done, torch.zeros(1, 3), z, z
    )
    assert batch.episode_returns().tolist() == [2.5, -1.0, 4.0]


def _ensemble() -> DynamicsEnsemble:
    torch.manual_seed(0)
    return DynamicsEnsemble(2, 2, members=2, hidden=(4,))


def test_model_env_without_a_reset_distribution_needs_start_states():
    with pytest.raises(
        ValueError, match="^task 'point' has no reset distribution; pass dataset start states$"
    ):
        ModelEnv(
            _ensemble(), get_task("point"), torch.Generator().manual_seed(0), use_reset_distribution=False
        )


def test_model_env_starts_from_the_pool_rows_the_generator_picks():
    """First draw: the numpy seed; second: the pool indices (replayed on an equal generator)."""
    pool = np.arange(20, dtype=np.float32).reshape(10, 2)
    env = ModelEnv(
        _ensemble(),
        get_task("point"),
        torch.Generator().manual_seed(4),
        start_states=pool,
        use_reset_distribution=False,
    )
    got = env.reset(6)
    replay = torch.Generator().manual_seed(4)
    torch.randint(2**31 - 1, (1,), generator=replay)
    idx = torch.randint(10, (6,), generator=replay).numpy()
    np.testing.assert_array_equal(got.numpy(), pool[idx])


def test_model_env_reset_draws_from_numpy_seeded_by_the_generator():
    """The task's reset noise comes from numpy seeded with randint(2**31 - 1) of our generator."""
    env = ModelEnv(_ensemble(), get_task("point"), torch.Generator().manual_seed(9))
    got = env.reset(5)
    seed = int(torch.randint(2**31 - 1, (1,), generator=torch.Generator().manual_seed(9)))
    expected = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(5, 2))
    np.testing.assert_allclose(got.numpy(), expected.astype(np.float32))
