"""The behavior-shift metric: hand-computed maths, and TRPO recording it after every update."""

import numpy as np
import pytest
import torch

from bremen_robot.config.train import TrainConfig
from bremen_robot.imagination.model_env import ModelEnv
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.policy.gaussian import GaussianPolicy, reset_log_std
from bremen_robot.progress import Reporter
from bremen_robot.rl.behavior import BehaviorAnchor, action_noise, mean_shift
from bremen_robot.tasks import get_task
from bremen_robot.trainer import run_trpo


def test_mean_shift_is_the_rms_of_the_change_in_noise_units():
    bc_mean = torch.zeros(2, 2)
    mean = torch.tensor([[0.1, 0.2], [0.3, 0.0]])
    noise = torch.tensor([0.1, 0.2])
    # z = [[1, 1], [3, 0]]: mean of squares (1 + 1 + 9 + 0) / 4 = 2.75
    assert mean_shift(mean, bc_mean, noise) == pytest.approx(2.75**0.5)


def test_action_noise_is_the_rms_distance_from_bc_and_never_zero():
    actions = torch.tensor([[1.0, 0.5], [3.0, 0.5]])
    bc_mean = torch.tensor([[0.0, 0.5], [0.0, 0.5]])
    noise = action_noise(actions, bc_mean)
    assert noise[0] == pytest.approx(5.0**0.5)  # sqrt((1 + 9) / 2): around BC's mean, not 1 and 3's
    assert noise[1] == pytest.approx(1e-3)  # the behavior never varied it: floored, not zero
    assert torch.isfinite(action_noise(actions[:1], bc_mean[:1])).all()  # one row is enough
    with pytest.raises(ValueError, match="no behavior data"):
        action_noise(actions[:0], bc_mean[:0])


def test_the_anchor_takes_evenly_spaced_rows_when_the_data_is_large(point_data):
    task = get_task("point")
    bc = GaussianPolicy(2, task.action_low, task.action_high, (16,))
    anchor = BehaviorAnchor.from_data(bc, point_data.obs, point_data.actions, rows=100)
    idx = np.linspace(0, len(point_data.obs) - 1, 100).astype(np.int64)
    assert torch.equal(anchor.obs, torch.as_tensor(point_data.obs[idx], dtype=torch.float32))
    with torch.no_grad():
        expected = action_noise(
            torch.as_tensor(point_data.actions[idx], dtype=torch.float32), bc(anchor.obs)[0]
        )
    torch.testing.assert_close(anchor.noise, expected)


def test_trpo_records_the_shift_of_the_live_policy_after_every_update(point_data):
    task = get_task("point")
    cfg = TrainConfig(
        name="t",
        task="point",
        trpo={"iterations": 3, "steps_per_iteration": 200, "horizon": 20, "max_kl": 0.5},
    )
    torch.manual_seed(0)
    ens = DynamicsEnsemble(2, 2, members=2, hidden=(16,))
    ens.set_normalizer(point_data.obs, point_data.actions, point_data.next_obs)
    gen = torch.Generator().manual_seed(0)
    pol = GaussianPolicy(2, task.action_low, task.action_high, (16,))
    reset_log_std(pol, -1.0)
    bc = pol.clone()
    bc.requires_grad_(False)
    anchor = BehaviorAnchor.from_data(bc, point_data.obs, point_data.actions)
    assert anchor.shift(bc) == 0.0 and anchor.obs.shape == (len(point_data.obs), 2)
    seen = []
    stats = run_trpo(
        pol,
        ModelEnv(ens, task, gen),
        cfg,
        gen,
        bc,
        Reporter(enabled=False),
        on_iteration=lambda it, p, st: seen.append(anchor.shift(p)),
        anchor=anchor,
    )
    assert stats["behavior_shift"] == pytest.approx(seen) and len(seen) == 3
    with torch.no_grad():  # the last value, from first principles
        z = (pol(anchor.obs)[0] - bc(anchor.obs)[0]) / anchor.noise
    assert seen[-1] == pytest.approx(float(z.pow(2).mean().sqrt()), rel=1e-5) and seen[-1] > 0
    assert len(stats["terminated_fraction"]) == 3
    assert stats["terminated_fraction"] == [0.0, 0.0, 0.0]  # the point task never ends early
    assert "behavior_shift" not in run_trpo(
        pol, ModelEnv(ens, task, gen), cfg, gen, bc, Reporter(enabled=False)
    )
