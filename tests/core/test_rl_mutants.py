"""Value baselines, policy sampling and TRPO/CG details, checked by value.

Written against the mutants `make mutate` found alive in bremen_robot/rl and
bremen_robot/policy/gaussian.py (docs/testing.md, Mutation testing). Expectations are closed
forms, hand-set weights or numpy recomputations, never the function under test.
"""

import math

import numpy as np
import torch

from bremen_robot.policy.gaussian import GaussianPolicy, reset_log_std
from bremen_robot.rl.value import MLPBaseline, linear_features


def test_policy_sample_is_mean_plus_std_times_the_generators_normal_draws():
    pol = GaussianPolicy(3, [-2.0, -2.0], [2.0, 2.0], (8,))
    reset_log_std(pol, -1.0)
    obs = torch.randn(6, 3)
    got = pol.sample(obs, torch.Generator().manual_seed(5))
    eps = torch.randn((6, 2), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        mean, _ = pol(obs)
    torch.testing.assert_close(got, mean + eps * math.exp(-1.0))


def _linear_mlp_baseline(obs_dim: int) -> MLPBaseline:
    """No hidden layer: the net is one linear map of ``[clip(obs, -10, 10), t / 100]``."""
    bl = MLPBaseline(obs_dim, [], epochs=1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        bl.net[0].weight.copy_(torch.tensor([[1.0, -2.0, 3.0]]))
        bl.net[0].bias.fill_(0.5)
    return bl


def test_mlp_baseline_predicts_zero_until_fitted_then_reads_clipped_obs_and_t_over_100():
    bl = _linear_mlp_baseline(2)
    obs = torch.tensor([[1.0, 2.0], [25.0, -30.0]], dtype=torch.float64)
    t = torch.tensor([50, 200])
    before = bl.predict(obs, t)
    assert before.dtype == torch.float64 and torch.equal(before, torch.zeros(2, dtype=torch.float64))
    bl.fitted = True
    # row 0: 1 - 4 + 3 * 0.5 + 0.5 = -1.0; row 1: 10 + 20 + 3 * 2 + 0.5 = 36.5 (obs clipped to +-10)
    torch.testing.assert_close(bl.predict(obs.float(), t), torch.tensor([-1.0, 36.5]))


def test_mlp_baseline_fit_learns_a_value_and_marks_itself_fitted():
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(600, 2, generator=g)
    t = torch.randint(0, 100, (600,), generator=g)
    target = 2.0 * obs[:, 0] - obs[:, 1] + 0.5 * t.float() / 100.0
    bl = MLPBaseline(2, [32], epochs=300, generator=torch.Generator().manual_seed(2), lr=1e-2)
    assert bl.epochs == 300 and not bl.fitted
    bl.fit(obs, t, target)
    assert bl.fitted
    mse = float(((bl.predict(obs, t) - target) ** 2).mean())
    assert mse < 0.01 * float(target.var())


def test_mlp_baseline_fit_draws_its_shuffles_from_its_own_generator():
    """Two fits with equally seeded generators agree bit for bit, whatever the global RNG did."""
    g = torch.Generator().manual_seed(3)
    obs, t = torch.randn(64, 2, generator=g), torch.randint(0, 100, (64,), generator=g)
    target = obs.sum(-1)
    preds = []
    for global_seed in (0, 1):
        torch.manual_seed(10)
        bl = MLPBaseline(2, [8], epochs=3, generator=torch.Generator().manual_seed(4))
        torch.manual_seed(global_seed)
        bl.fit(obs, t, target)
        preds.append(bl.predict(obs, t))
    torch.testing.assert_close(preds[0], preds[1], rtol=0, atol=0)


def test_mlp_baseline_uses_its_learning_rate():
    """One full-batch Adam step moves every weight by lr (Adam's first step is lr * sign(grad))."""
    obs, t = torch.randn(32, 2), torch.randint(0, 100, (32,))
    bl = MLPBaseline(2, [], epochs=1, generator=torch.Generator().manual_seed(0), lr=0.125)
    w0 = bl.net[0].weight.detach().clone()
    bl.fit(obs, t, torch.full((32,), 50.0))
    np.testing.assert_allclose((bl.net[0].weight - w0).abs().detach().numpy(), 0.125, rtol=1e-4)


def test_mlp_baseline_to_moves_the_net_and_returns_itself():
    bl = MLPBaseline(2, [4], epochs=1, generator=torch.Generator())
    assert bl.to(torch.device("cpu")) is bl
    assert bl.net[0].weight.device.type == "cpu"


def test_linear_features_by_hand():
    obs = torch.tensor([[2.0, -12.0]])
    f = linear_features(obs, torch.tensor([50]))
    torch.testing.assert_close(f, torch.tensor([[2.0, -10.0, 4.0, 100.0, 0.5, 0.25, 0.125, 1.0]]))
