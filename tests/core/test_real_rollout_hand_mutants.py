"""Real rollouts on a scripted env, found by a hand mutation read of ``data/real_rollout.py``
(2026-12-07). Every column is written out by hand from the documented rules of ``rollout``;
each test names the one-line mutant(s) it guards."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bremen_robot.data.real_rollout import check_env_spec, noisy_policy, rollout
from bremen_robot.errors import BremenError
from bremen_robot.tasks import get_task

POINT = get_task("point")  # 2 observations, 2 actions in [-1, 1], time limit 40


class Counter:
    """A scripted env: the observation is (k, 10 * episode seed); step k earns reward k + 1.
    ``terminate_at``/``truncate_at``: the step count at which it says so (None: never)."""

    def __init__(self, terminate_at: int | None = None, truncate_at: int | None = None) -> None:
        self.terminate_at, self.truncate_at = terminate_at, truncate_at
        self.seeds: list[int] = []
        self.actions: list[list[float]] = []

    def reset(self, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        self.seeds.append(seed)
        self.k = 0
        return np.array([0.0, 10.0 * seed]), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.actions.append(list(action))
        self.k += 1
        obs = np.array([float(self.k), 10.0 * self.seeds[-1]])
        return obs, float(self.k), self.k == self.terminate_at, self.k == self.truncate_at, {}


def test_a_step_budget_cuts_episodes_at_the_time_limit_and_at_the_budget():
    """Mutants: ``max_episode_steps`` ignored (the task's 40); ``total <= steps``; ``total > steps``
    (one step past the budget); the time limit at ``t == limit`` (never); ``next_obs`` the state
    acted in; ``obs = next_obs`` dropped; the deployment and policy digest not passed on.

    5 steps with episodes of at most 3: episode 0 runs 3 steps (time limit), episode 1 the 2 the
    budget leaves; the env is reset with seeds 7 and 8."""
    env = Counter()
    d = rollout(env, POINT, lambda o: np.zeros(2), steps=5, seed=7, max_episode_steps=3,
                deployment_id=4, policy_sha256="abc")  # fmt: skip
    assert env.seeds == [7, 8]
    assert d.episode_ids.tolist() == [0, 0, 0, 1, 1]
    np.testing.assert_array_equal(d.obs, [[0, 70], [1, 70], [2, 70], [0, 80], [1, 80]])
    np.testing.assert_array_equal(d.next_obs, [[1, 70], [2, 70], [3, 70], [1, 80], [2, 80]])
    np.testing.assert_array_equal(d.rewards, [1, 2, 3, 1, 2])
    assert d.timeouts.tolist() == [False, False, True, False, True]
    assert not d.terminals.any()
    assert d.deployment_ids.tolist() == [4] * 5 and d.policy_sha256.tolist() == ["abc"] * 5


def test_a_truncation_ends_the_episode_as_a_timeout():
    """Mutant: ``bool(truncated) or`` dropped (the env's truncation ignored; the episode would go
    on to the limit of 4)."""
    d = rollout(Counter(truncate_at=2), POINT, lambda o: np.zeros(2), episodes=1, max_episode_steps=4)
    assert d.timeouts.tolist() == [False, True] and not d.terminals.any()


def test_a_termination_ends_the_episode_and_is_never_also_a_timeout():
    """Mutants: ``if timeout`` for ``if terminated or timeout`` (a terminated episode goes on);
    ``timeouts`` = ``timeout`` (a terminal step on the time limit's last step also a timeout)."""
    d = rollout(Counter(terminate_at=2), POINT, lambda o: np.zeros(2), episodes=1, max_episode_steps=4)
    assert d.terminals.tolist() == [False, True] and d.timeouts.tolist() == [False, False]
    d = rollout(Counter(terminate_at=2), POINT, lambda o: np.zeros(2), episodes=1, max_episode_steps=2)
    assert d.terminals.tolist() == [False, True] and d.timeouts.tolist() == [False, False]


def test_actions_are_clipped_to_the_box_before_the_env_and_the_data_see_them():
    """Mutant: the action not clipped (``np.clip(..., -inf, inf)``)."""
    env = Counter()
    d = rollout(env, POINT, lambda o: np.array([5.0, -0.25]), episodes=1, max_episode_steps=1)
    assert env.actions == [[1.0, -0.25]]
    np.testing.assert_array_equal(d.actions, [[1.0, -0.25]])


def test_the_noisy_policy_adds_sigma_times_a_standard_normal_and_clips():
    """Mutants: ``sigma**2`` for ``sigma``; the clip to the box dropped. sigma 0.5 around a mean
    of 0.9: the draws of a generator seeded alike, replayed; at least one leaves the box."""
    draws = np.random.default_rng(3).standard_normal((20, 2))
    assert (0.9 + 0.5 * draws > 1.0).any() and (np.abs(0.9 + 0.5 * draws) < 1.0).any()
    act = noisy_policy(lambda o: np.full(2, 0.9), POINT, 0.5, np.random.default_rng(3))
    got = np.array([act(np.zeros(2)) for _ in range(20)])
    np.testing.assert_allclose(got, np.clip(0.9 + 0.5 * draws, -1.0, 1.0), rtol=0, atol=1e-12)


def test_an_env_of_another_task_is_refused():
    """Mutant: the task comparison of ``check_env_spec`` dropped."""
    check_env_spec("HalfCheetah-v5", "halfcheetah")
    with pytest.raises(BremenError) as err:
        check_env_spec("HalfCheetah-v5", "hopper")
    assert (
        str(err.value) == "'HalfCheetah-v5' is an env of task 'halfcheetah', not of the robot's task 'hopper'"
    )
