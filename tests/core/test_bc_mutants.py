"""Behavior cloning (bremen_robot/policy/bc.py) checked by value: the loss on a reparameterized
sample, the batch it is taken on, and the observation normalizer of a fresh BC policy.

Written against one-token mutants that the BC convergence test in test_models.py lets through
(the mean alone as the loss, half a batch, the variance as the normalizer). Expectations are by
hand or replayed with the same generator, never the function under test.
"""

import numpy as np
import pytest
import torch

from bremen_robot.config.train import BCConfig
from bremen_robot.data.dataset import Dataset
from bremen_robot.policy.bc import bc_loss, new_bc_policy, train_bc
from bremen_robot.policy.gaussian import GaussianPolicy, reset_log_std


def _policy() -> GaussianPolicy:
    torch.manual_seed(0)
    pol = GaussianPolicy(2, [-1.0, -1.0], [1.0, 1.0], (8,))
    reset_log_std(pol, -1.0)
    return pol


def test_bc_loss_is_the_mse_of_a_reparameterized_sample_not_of_the_mean():
    """DESIGN.md §4: MSE between the logged action and mean + exp(log_std) * eps, eps the
    generator's standard normals. With log-std -1 the sample's noise adds about e^-2 per entry,
    so the loss of the mean alone is clearly lower; the log-std head gets a gradient."""
    pol = _policy()
    obs = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    act = torch.zeros(32, 2)
    with torch.no_grad():
        mean = pol(obs)[0].numpy()
    eps = torch.randn((32, 2), generator=torch.Generator().manual_seed(3)).numpy()
    sample = mean + np.exp(-1.0) * eps
    loss = bc_loss(pol, obs, act, torch.Generator().manual_seed(3))
    assert float(loss.detach()) == pytest.approx(float((sample**2).mean()), rel=1e-5)
    assert float((sample**2).mean()) > float((mean**2).mean()) + 0.05
    loss.backward()
    head = pol.net[-1].bias.grad
    assert head is not None and float(head[2:].abs().sum()) > 0  # log-std rows learn too


def test_train_bc_step_is_adam_on_a_full_batch_drawn_from_the_generator():
    """One step with batch 5 on 12 rows: randint picks 5 rows, then the sample's 5 x 2 normals,
    both from the given generator; replayed here on a copy with its own Adam."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(12, 2)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(12, 2)).astype(np.float32)
    data = Dataset.from_columns(
        "point", {"obs": obs, "actions": act, "rewards": np.zeros(12), "next_obs": obs}
    )
    cfg = BCConfig(hidden=[8], steps=1, lr=0.05, batch_size=5)
    pol = _policy()
    twin = pol.clone()
    losses = train_bc(pol, data, cfg, torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    idx = torch.randint(12, (5,), generator=g)
    mean, log_std = twin(torch.as_tensor(obs)[idx])
    eps = torch.randn((5, 2), generator=g)
    loss = ((mean + eps * log_std.exp() - torch.as_tensor(act)[idx]) ** 2).mean()
    opt = torch.optim.Adam(twin.parameters(), lr=0.05)
    loss.backward()
    opt.step()
    assert losses == [pytest.approx(float(loss.detach()), rel=1e-6)]
    for a, b in zip(pol.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)


def test_new_bc_policy_z_scores_with_the_datas_mean_and_std_floored_at_1e_6():
    """The observation normalizer of a fresh BC policy: per-column mean and (population) std of
    the data, the std of a constant column floored at 1e-6 (not 1e-2: a column that varies by
    1e-3 keeps its scale). Columns: std 3 (variance 9 would differ), 1e-3, 0."""
    obs = np.array([[1.0, 5.0, 7.0], [7.0, 5.002, 7.0]], dtype=np.float32)  # stds 3, 1e-3, 0
    data = Dataset.from_columns(
        "point",
        {"obs": obs, "actions": np.zeros((2, 2), np.float32), "rewards": np.zeros(2), "next_obs": obs},
    )
    pol = new_bc_policy(data, np.array([-1.0, -1.0]), np.array([1.0, 1.0]), BCConfig(hidden=[4]))
    np.testing.assert_allclose(pol.obs_mean.numpy(), [4.0, 5.001, 7.0], rtol=1e-6)
    np.testing.assert_allclose(pol.obs_std.numpy(), [3.0, 1e-3, 1e-6], rtol=1e-3)
