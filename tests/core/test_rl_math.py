import numpy as np
import pytest
import torch

from bremen_robot.config.train import TRPOConfig
from bremen_robot.policy.gaussian import GaussianPolicy, gaussian_kl, reset_log_std
from bremen_robot.rl.cg import conjugate_gradient
from bremen_robot.rl.gae import gae
from bremen_robot.rl.trpo import mean_kl, surrogate_loss, trpo_step
from bremen_robot.rl.value import LinearBaseline


def test_gae_matches_hand_computation():
    # one rollout, 3 steps; terminal after step 1 (no bootstrap), new segment at step 2 cut by the horizon
    r = torch.tensor([[1.0], [2.0], [3.0]])
    v = torch.tensor([[0.5], [1.0], [2.0]])
    nv = torch.tensor([[1.0], [9.0], [4.0]])  # V(s_{t+1}); 9.0 must be ignored (terminal)
    term = torch.tensor([[False], [True], [False]])
    done = torch.tensor([[False], [True], [True]])
    g, lam = 0.9, 0.5
    d0 = 1 + g * 1.0 - 0.5  # 1.4
    d1 = 2 + 0 - 1.0  # 1.0
    d2 = 3 + g * 4.0 - 2.0  # 4.6 (bootstrapped at the horizon)
    expected = [d0 + g * lam * d1, d1, d2]
    adv, ret = gae(r, v, nv, term, done, g, lam)
    np.testing.assert_allclose(adv[:, 0].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0].numpy(), np.array(expected) + [0.5, 1.0, 2.0], rtol=1e-6)


def test_conjugate_gradient_matches_direct_solve():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(12, 12, generator=g, dtype=torch.float64)
    A = m @ m.T + 12 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(12, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: A @ v, b, iters=30, tol=1e-28)
    np.testing.assert_allclose(x.numpy(), torch.linalg.solve(A, b).numpy(), rtol=1e-8, atol=1e-10)
    # 10 iterations on a well-conditioned system already get close
    x10 = conjugate_gradient(lambda v: A @ v, b, iters=10)
    assert torch.norm(A @ x10 - b) < 1e-3 * torch.norm(b)


def _batch(seed=0, n=2000):
    g = torch.Generator().manual_seed(seed)
    pol = GaussianPolicy(4, [-1.0] * 2, [1.0] * 2, (32, 32))
    reset_log_std(pol, -1.0)
    obs = torch.randn(n, 4, generator=g)
    with torch.no_grad():
        mean, log_std = pol(obs)
        act = mean + torch.randn(n, 2, generator=g) * log_std.exp()
    adv = act[:, 0] - act[:, 1] + 0.1 * torch.randn(n, generator=g)  # reward pushes a0 up, a1 down
    return pol, obs, act, (adv - adv.mean()) / adv.std(), mean, log_std


def test_trpo_step_respects_kl_and_improves_surrogate():
    pol, obs, act, adv, mean, log_std = _batch()
    before = [p.detach().clone() for p in pol.parameters()]
    cfg = TRPOConfig(max_kl=0.01, horizon=1, steps_per_iteration=1)
    stats = trpo_step(pol, obs, act, adv, mean, log_std, cfg)
    assert stats.step_fraction > 0
    assert 0 < stats.kl <= 0.01 + 1e-6
    if stats.step_fraction == 1.0:  # the natural-gradient step is scaled to the trust region
        assert stats.kl > 0.005
    assert float(mean_kl(pol, obs, mean, log_std).detach()) <= 0.01 + 1e-6
    assert stats.surrogate_after < stats.surrogate_before
    moved = sum(float((p - b).abs().sum().detach()) for p, b in zip(pol.parameters(), before))
    assert moved > 0
    with torch.no_grad():
        new_mean, _ = pol(obs)
    assert float((new_mean - mean)[:, 0].mean()) > 0 > float((new_mean - mean)[:, 1].mean())


def test_trpo_line_search_restores_the_exact_old_parameters_when_it_rejects_every_step():
    """A real step direction (the advantages carry signal) but an acceptance ratio no step can
    meet: every trial step is written into the policy and rejected, so the update must put the
    old parameters back bit for bit and report no movement."""
    pol, obs, act, adv, mean, log_std = _batch()
    before = [p.detach().clone() for p in pol.parameters()]
    cfg = TRPOConfig(horizon=1, steps_per_iteration=1, accept_ratio=1e9, line_search_steps=3)
    stats = trpo_step(pol, obs, act, adv, mean, log_std, cfg)
    assert stats.expected_improvement > 0  # the line search did run
    assert stats.step_fraction == 0.0 and stats.kl == 0.0
    assert stats.surrogate_after == stats.surrogate_before
    for p, b in zip(pol.parameters(), before):
        assert torch.equal(p, b)


def test_trpo_rejects_step_when_no_improvement_possible():
    pol, obs, act, _, mean, log_std = _batch()
    before = [p.detach().clone() for p in pol.parameters()]
    stats = trpo_step(
        pol, obs, act, torch.zeros(len(obs)), mean, log_std, TRPOConfig(horizon=1, steps_per_iteration=1)
    )
    assert stats.step_fraction == 0
    for p, b in zip(pol.parameters(), before):
        assert torch.equal(p, b)


def test_surrogate_is_minus_mean_advantage_at_old_policy():
    pol, obs, act, adv, mean, log_std = _batch()
    from bremen_robot.policy.gaussian import gaussian_log_prob

    # _batch's advantages are normalised to mean 0, which a surrogate returning 0 would also
    # match: shift them so the expected loss is far from zero
    adv = adv + 2.0
    loss = surrogate_loss(pol, obs, act, adv, gaussian_log_prob(mean, log_std, act))
    assert float(loss.detach()) == pytest.approx(-float(adv.mean()), abs=1e-5)
    assert float(loss.detach()) == pytest.approx(-2.0, abs=1e-4)


def test_surrogate_weights_each_advantage_by_its_probability_ratio():
    """Old log-probs lowered by ln 2 on the first half and raised by ln 4 on the second give
    ratios 2 and 1/4: the loss is -(2 * 3 * 2 + 0.25 * (-1) * 2) / 4 = -(12 - 0.5) / 4 = -2.875."""
    pol, obs, act, _, _, _ = _batch(n=4)
    with torch.no_grad():
        logp = pol.log_prob(obs, act)
    old = logp - torch.tensor([np.log(2.0), np.log(2.0), -np.log(4.0), -np.log(4.0)], dtype=logp.dtype)
    adv = torch.tensor([3.0, 3.0, -1.0, -1.0])
    assert float(surrogate_loss(pol, obs, act, adv, old).detach()) == pytest.approx(-2.875, rel=1e-5)


def test_gaussian_kl_zero_for_equal_and_positive_otherwise():
    m, s = torch.randn(5, 3), torch.randn(5, 3) * 0.1
    assert torch.allclose(gaussian_kl(m, s, m, s), torch.zeros(5), atol=1e-6)
    assert (gaussian_kl(m, s, m + 0.1, s) > 0).all()


def test_gaussian_kl_matches_the_closed_form_of_a_2d_case():
    """KL(p || q) = sum_i ln(sq_i / sp_i) + (sp_i^2 + (mp_i - mq_i)^2) / (2 sq_i^2) - 1/2 for
    p = N([0.3, -0.2], diag(0.5, 2)^2), q = N([1.0, 0.4], diag(1.5, 0.8)^2):
    dim 0: ln 3 + 0.74 / 4.5 - 0.5 = 0.763057; dim 1: ln 0.4 + 4.36 / 1.28 - 0.5 = 1.989959."""
    mp, sp = torch.tensor([[0.3, -0.2]]), torch.tensor([[0.5, 2.0]])
    mq, sq = torch.tensor([[1.0, 0.4]]), torch.tensor([[1.5, 0.8]])
    kl = gaussian_kl(mp, sp.log(), mq, sq.log())
    assert kl.shape == (1,)
    assert float(kl[0].detach()) == pytest.approx(0.763057 + 1.989959, abs=1e-5)  # summed, not averaged
    # and torch's own (full-covariance) implementation agrees
    ref = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(mp[0], torch.diag(sp[0] ** 2)),
        torch.distributions.MultivariateNormal(mq[0], torch.diag(sq[0] ** 2)),
    )
    assert float(kl[0].detach()) == pytest.approx(float(ref), rel=1e-5)


def test_linear_baseline_fits_linear_values():
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(500, 3, generator=g)
    t = torch.randint(0, 50, (500,), generator=g)
    target = 2 * obs[:, 0] - obs[:, 1] ** 2 + 0.01 * t.float()
    bl = LinearBaseline()
    assert torch.equal(bl.predict(obs, t), torch.zeros(500))
    bl.fit(obs, t, target)
    assert float(((bl.predict(obs, t) - target) ** 2).mean()) < 1e-4
