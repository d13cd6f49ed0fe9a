"""Value baselines, policy sampling and TRPO/CG details, checked by value.

Written against the mutants `make mutate` found alive in bremen_robot/rl and
bremen_robot/policy/gaussian.py (docs/testing.md, Mutation testing). Expectations are closed
forms, hand-set weights or numpy recomputations, never the function under test.
"""

import math

import numpy as np
import pytest
import torch

from bremen_robot.config.train import TRPOConfig
from bremen_robot.policy.gaussian import GaussianPolicy, reset_log_std
from bremen_robot.rl import trpo as trpo_mod
from bremen_robot.rl.behavior import action_noise
from bremen_robot.rl.cg import conjugate_gradient
from bremen_robot.rl.gae import gae
from bremen_robot.rl.trpo import trpo_step
from bremen_robot.rl.value import LinearBaseline, MLPBaseline, linear_features


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
    """[o clipped to +-10, o^2, t/100, (t/100)^2, (t/100)^3, 1] for o = (2, -12, 12), t = 50."""
    obs = torch.tensor([[2.0, -12.0, 12.0]])
    f = linear_features(obs, torch.tensor([50]))
    expected = [2.0, -10.0, 10.0, 4.0, 100.0, 100.0, 0.5, 0.25, 0.125, 1.0]
    torch.testing.assert_close(f, torch.tensor([expected]))


def test_linear_baseline_predicts_zeros_of_the_obs_dtype_until_fitted():
    out = LinearBaseline().predict(torch.ones(3, 2, dtype=torch.float64), torch.zeros(3))
    assert out.dtype == torch.float64 and out.tolist() == [0.0, 0.0, 0.0]


def test_linear_baseline_is_the_ridge_solution_with_its_regulariser():
    """coef = (X^T X + reg I)^-1 X^T y, recomputed with numpy; reg = 50 is large enough to show."""
    g = torch.Generator().manual_seed(0)
    obs, t = torch.randn(40, 2, generator=g, dtype=torch.float64), torch.randint(0, 100, (40,), generator=g)
    y = torch.randn(40, generator=g, dtype=torch.float64)
    bl = LinearBaseline(reg=50.0)
    bl.fit(obs, t, y)
    o, al = obs.numpy().clip(-10, 10), t.numpy()[:, None] / 100.0
    X = np.concatenate([o, o * o, al, al**2, al**3, np.ones_like(al)], axis=1)
    coef = np.linalg.solve(X.T @ X + 50.0 * np.eye(X.shape[1]), X.T @ y.numpy())
    np.testing.assert_allclose(bl.coef.numpy(), coef, rtol=1e-5, atol=1e-8)  # t/100 is float32


def test_linear_baseline_raises_the_ridge_tenfold_per_non_finite_solve_five_times_at_most(monkeypatch):
    """A solve that comes back non-finite is retried with the ridge times 10, five solves in all;
    when every one fails the baseline stays unfitted (predicts 0)."""
    real_solve, ridges = torch.linalg.solve, []

    def failing_solve(a, b):
        ridges.append(float(a[-1, -1] - n))  # X's last column is all ones: XtX[-1, -1] = n
        return torch.full_like(real_solve(a, b), float("nan"))

    n = 30
    obs, t, y = torch.randn(n, 2, dtype=torch.float64), torch.arange(n), torch.randn(n, dtype=torch.float64)
    monkeypatch.setattr(torch.linalg, "solve", failing_solve)
    bl = LinearBaseline(reg=1e-2)
    bl.fit(obs, t, y)
    np.testing.assert_allclose(ridges, [1e-2, 1e-1, 1.0, 10.0, 100.0], rtol=1e-6)
    assert bl.coef is None
    calls = []

    def second_succeeds(a, b):
        calls.append(1)
        out = real_solve(a, b)
        return out if len(calls) == 2 else torch.full_like(out, float("inf"))

    monkeypatch.setattr(torch.linalg, "solve", second_succeeds)
    bl.fit(obs, t, y)
    assert len(calls) == 2 and bl.coef is not None and bool(torch.isfinite(bl.coef).all())


def test_action_noise_refuses_an_empty_batch_by_name():
    with pytest.raises(ValueError, match="^no behavior data to measure the action noise on$"):
        action_noise(torch.zeros(0, 2), torch.zeros(0, 2))


def _trpo_batch(n: int = 200, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pol = GaussianPolicy(3, [-1.0] * 2, [1.0] * 2, (16,))
    reset_log_std(pol, -1.0)
    obs = torch.randn(n, 3, generator=g)
    with torch.no_grad():
        mean, log_std = pol(obs)
        act = mean + torch.randn(n, 2, generator=g) * log_std.exp()
    adv = act[:, 0] - act[:, 1] + 1.0  # mean far from 0: the surrogate at the old policy is -mean(adv)
    return pol, obs, act, adv, mean, log_std


def _kl_np(mp, lp, mq, lq):
    """KL(p || q) of diagonal Gaussians by the closed form, summed over dims, in numpy."""
    vp, vq = np.exp(2 * lp), np.exp(2 * lq)
    return (lq - lp + (vp + (mp - mq) ** 2) / (2 * vq) - 0.5).sum(-1)


@pytest.mark.parametrize("coef", [0.5, 3.0])
def test_trpo_loss_adds_coef_times_kl_from_the_policy_to_bc(coef):
    """surrogate_before is the loss at the old policy: -mean(A) + coef * mean_s KL(pi || pi_BC),
    with the KL in that direction (BC's std differs, so the reverse KL would not match)."""
    pol, obs, act, adv, mean, log_std = _trpo_batch()
    bc = pol.clone()
    with torch.no_grad():
        bc.net[-1].bias[:2] += torch.tensor([0.3, -0.2])
    reset_log_std(bc, -2.0)
    with torch.no_grad():
        bm, bl = bc(obs)
    cfg = TRPOConfig(horizon=1, steps_per_iteration=1, bc_kl_coef=coef)
    stats = trpo_step(pol, obs, act, adv, mean, log_std, cfg, bc_policy=bc)
    kl = _kl_np(mean.numpy(), log_std.numpy(), bm.numpy(), bl.numpy()).mean()
    assert kl > 0.1
    assert stats.surrogate_before == pytest.approx(-float(adv.mean()) + coef * kl, rel=1e-4)


def test_trpo_without_a_bc_policy_ignores_the_bc_coefficient():
    pol, obs, act, adv, mean, log_std = _trpo_batch()
    cfg = TRPOConfig(horizon=1, steps_per_iteration=1, bc_kl_coef=2.0)
    stats = trpo_step(pol, obs, act, adv, mean, log_std, cfg, bc_policy=None)
    assert stats.surrogate_before == pytest.approx(-float(adv.mean()), rel=1e-5)


@pytest.mark.parametrize(("n", "frac", "rows"), [(200, 0.1, 20), (5, 0.1, 1)])
def test_trpo_fisher_product_uses_the_generators_subsample_plus_damping(monkeypatch, n, frac, rows):
    """With fvp_subsample < 1 the Fisher-vector product handed to CG is the KL Hessian on
    int(n * frac) rows (at least 1) drawn by randperm from the given generator, plus damping * v.
    Recomputed here by double backprop on those rows, picked by replaying the generator."""
    pol, obs, act, adv, mean, log_std = _trpo_batch(n=n)
    cfg = TRPOConfig(horizon=1, steps_per_iteration=1, fvp_subsample=frac, cg_damping=0.25)
    checked = []
    real_cg = trpo_mod.conjugate_gradient

    def spy(matvec, b, iters):
        params = [p for p in pol.parameters() if p.requires_grad]
        sub = torch.randperm(n, generator=torch.Generator().manual_seed(7))[:rows]
        v = torch.randn(b.shape, generator=torch.Generator().manual_seed(1))
        pm, pl = pol(obs[sub])
        kl = trpo_mod.gaussian_kl(mean[sub], log_std[sub], pm, pl).mean()
        grads = torch.autograd.grad(kl, params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        hv = torch.autograd.grad((flat * v).sum(), params)
        expected = torch.cat([h.reshape(-1) for h in hv]) + 0.25 * v
        torch.testing.assert_close(matvec(v), expected, rtol=1e-4, atol=1e-6)
        checked.append(True)
        return real_cg(matvec, b, iters)

    monkeypatch.setattr(trpo_mod, "conjugate_gradient", spy)
    trpo_step(pol, obs, act, adv, mean, log_std, cfg, generator=torch.Generator().manual_seed(7))
    assert checked == [True]


def test_trpo_with_the_whole_batch_for_the_fisher_draws_nothing_from_the_generator():
    pol, obs, act, adv, mean, log_std = _trpo_batch()
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    trpo_step(pol, obs, act, adv, mean, log_std, TRPOConfig(horizon=1, steps_per_iteration=1), generator=gen)
    assert torch.equal(gen.get_state(), state)


def test_trpo_step_leaves_a_parameter_outside_the_graph_alone():
    """A trainable parameter the policy never uses has no gradient: it counts as zero instead of
    failing the update, and stays where it was."""
    pol, obs, act, adv, mean, log_std = _trpo_batch()
    pol.spare = torch.nn.Parameter(torch.full((3,), 0.5))
    stats = trpo_step(pol, obs, act, adv, mean, log_std, TRPOConfig(horizon=1, steps_per_iteration=1))
    assert stats.step_fraction > 0
    assert pol.spare.tolist() == [0.5, 0.5, 0.5]


def test_gae_of_one_step_and_of_a_segment_left_open():
    """T = 1: A = r + gamma V' - V. T = 2 with no done at all: A_1 = d_1 and A_0 = d_0 + gamma lam d_1."""
    one, _ = gae(
        torch.tensor([[1.0, 2.0]]),
        torch.tensor([[0.5, 0.0]]),
        torch.tensor([[1.0, 3.0]]),
        torch.zeros(1, 2, dtype=torch.bool),
        torch.zeros(1, 2, dtype=torch.bool),
        0.9,
        0.5,
    )
    torch.testing.assert_close(one, torch.tensor([[1.0 + 0.9 - 0.5, 2.0 + 2.7]]))
    adv, _ = gae(
        torch.tensor([[1.0], [2.0]]),
        torch.tensor([[0.0], [0.0]]),
        torch.tensor([[0.0], [10.0]]),
        torch.zeros(2, 1, dtype=torch.bool),
        torch.zeros(2, 1, dtype=torch.bool),
        0.5,
        0.5,
    )
    d1 = 2.0 + 0.5 * 10.0
    torch.testing.assert_close(adv, torch.tensor([[1.0 + 0.25 * d1], [d1]]))


def test_conjugate_gradient_stops_at_a_zero_residual_instead_of_dividing_by_zero():
    """b = 0 with tol = 0: the residual is already 0 <= tol, so x = 0 (one more step is 0 / 0)."""
    x = conjugate_gradient(lambda v: 2.0 * v, torch.zeros(3, dtype=torch.float64), iters=5, tol=0.0)
    assert x.tolist() == [0.0, 0.0, 0.0]


def test_conjugate_gradient_runs_ten_iterations_by_default():
    """BREMEN's 10 CG iterations: on 12 distinct eigenvalues the 10th and 11th iterates differ."""
    A = torch.diag(torch.arange(1.0, 13.0, dtype=torch.float64))
    b = torch.ones(12, dtype=torch.float64)
    x = conjugate_gradient(lambda v: A @ v, b, tol=0.0)
    assert torch.equal(x, conjugate_gradient(lambda v: A @ v, b, iters=10, tol=0.0))
    assert not torch.equal(x, conjugate_gradient(lambda v: A @ v, b, iters=11, tol=0.0))


def _fisher_product(pol, obs, mean, log_std, v, damping):
    """(F + damping I) v with F the Hessian of mean_s KL(pi_old || pi) at the current weights."""
    params = [p for p in pol.parameters() if p.requires_grad]
    pm, pl = pol(obs)
    kl = trpo_mod.gaussian_kl(mean, log_std, pm, pl).mean()
    grads = torch.autograd.grad(kl, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    hv = torch.autograd.grad((flat * v).sum(), params)
    return torch.cat([h.reshape(-1) for h in hv]) + damping * v


def test_trpo_step_is_the_cg_direction_scaled_to_the_trust_region(monkeypatch):
    """Recomputed from CG's direction s: the full step is s * sqrt(max_kl / (0.5 s^T (F + d) s)),
    the expected improvement is -g . full step, and when the line search rejects the first two
    trials (their KL reported over the bound) the accepted step is a quarter of the full one,
    provided its improvement ratio (against the expected improvement times 1/4) clears 0.5."""
    pol, obs, act, adv, mean, log_std = _trpo_batch()
    cfg = TRPOConfig(horizon=1, steps_per_iteration=1, max_kl=0.01, cg_iters=4, accept_ratio=0.5)
    params = [p for p in pol.parameters() if p.requires_grad]
    old = torch.nn.utils.parameters_to_vector(params).detach().clone()
    seen = {}
    real_cg, real_kl = trpo_mod.conjugate_gradient, trpo_mod.mean_kl

    def cg_spy(matvec, b, iters):
        seen["iters"] = iters
        seen["dir"] = real_cg(matvec, b, iters)
        v = torch.randn(b.shape, generator=torch.Generator().manual_seed(2))
        expected = _fisher_product(pol, obs, mean, log_std, v, cfg.cg_damping)
        torch.testing.assert_close(matvec(v), expected, rtol=1e-4, atol=1e-6)
        return seen["dir"]

    calls = []

    def kl_spy(*args):
        calls.append(1)
        kl = real_kl(*args)
        return kl + 1.0 if len(calls) in (2, 3) else kl  # call 1 builds the Fisher

    monkeypatch.setattr(trpo_mod, "conjugate_gradient", cg_spy)
    monkeypatch.setattr(trpo_mod, "mean_kl", kl_spy)
    old_logp = trpo_mod.gaussian_log_prob(mean, log_std, act)
    loss = trpo_mod.surrogate_loss(pol, obs, act, adv, old_logp)
    g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(loss, params)])
    stats = trpo_step(pol, obs, act, adv, mean, log_std, cfg)
    s = seen["dir"]
    assert seen["iters"] == 4
    with torch.no_grad():
        pol_old = pol.clone()
        torch.nn.utils.vector_to_parameters(old, list(pol_old.parameters()))
    shs = 0.5 * float(s @ _fisher_product(pol_old, obs, mean, log_std, s, cfg.cg_damping))
    full = s * np.sqrt(0.01 / shs)
    assert stats.expected_improvement == pytest.approx(-float(g @ full), rel=1e-4)
    assert stats.step_fraction == 0.25
    new = torch.nn.utils.parameters_to_vector(params).detach()
    torch.testing.assert_close(new, old + 0.25 * full, rtol=1e-4, atol=1e-6)
    assert stats.surrogate_after < stats.surrogate_before == pytest.approx(float(loss.detach()), rel=1e-6)


def test_trpo_with_a_zero_gradient_reports_exactly_no_step():
    """Zero advantages: g = 0, so s^T F s = 0 and the update returns (loss, loss, 0, 0, 0)."""
    pol, obs, act, _, mean, log_std = _trpo_batch()
    stats = trpo_step(pol, obs, act, torch.zeros(len(obs)), mean, log_std, TRPOConfig(horizon=1))
    assert (stats.kl, stats.step_fraction, stats.expected_improvement) == (0.0, 0.0, 0.0)
    assert stats.surrogate_before == stats.surrogate_after == 0.0


def test_mlp_baseline_epoch_is_adam_steps_over_the_generators_shuffle_in_4096_row_batches():
    """5,000 rows: one epoch is two Adam steps, on perm[:4096] and perm[4096:] of randperm drawn
    from the baseline's generator. Replayed on a copy of the net with its own optimiser."""
    import copy

    g = torch.Generator().manual_seed(0)
    obs, t = torch.randn(5000, 2, generator=g), torch.randint(0, 100, (5000,), generator=g)
    y = obs[:, 0] - 2 * obs[:, 1]
    bl = MLPBaseline(2, [8], epochs=1, generator=torch.Generator().manual_seed(6), lr=0.01)
    assert bl.opt.param_groups[0]["lr"] == 0.01
    assert MLPBaseline(2, [8], epochs=1, generator=g).opt.param_groups[0]["lr"] == 1e-3
    net = copy.deepcopy(bl.net)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x = torch.cat([obs.clamp(-10, 10), (t.float() / 100.0)[:, None]], dim=1)
    perm = torch.randperm(5000, generator=torch.Generator().manual_seed(6))
    for idx in (perm[:4096], perm[4096:]):
        loss = ((net(x[idx])[:, 0] - y[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    bl.fit(obs, t, y)
    for a, b in zip(bl.net.parameters(), net.parameters()):
        torch.testing.assert_close(a, b)


def test_gae_stops_at_a_done_that_is_not_terminal_but_still_bootstraps_there():
    """gae's contract: ``dones`` (terminal, time limit or reset) cut the advantage, ``terminals``
    only the bootstrap. A time-limit done after step 0: A_1 = 2 + 0.5 * 10 - 1 = 6 and
    A_0 = 1 + 0.5 * 4 - 0 = 3, not 3 + gamma * lam * 6 (which masking by ``terminals`` gives)."""
    adv, targets = gae(
        torch.tensor([[1.0], [2.0]]),
        torch.tensor([[0.0], [1.0]]),
        torch.tensor([[4.0], [10.0]]),
        torch.zeros(2, 1, dtype=torch.bool),
        torch.tensor([[True], [True]]),
        0.5,
        0.5,
    )
    torch.testing.assert_close(adv, torch.tensor([[3.0], [6.0]]))
    torch.testing.assert_close(targets, torch.tensor([[3.0], [7.0]]))


def test_mean_kl_runs_from_the_old_policy_to_the_current_one():
    """mean_s KL(pi_old || pi), in that direction: the old policy has std 1 and a mean 0.5 above
    the current one (std e^-1), where KL(old || new) = -1 + 1.25 e^2 / 2 - 0.5 per dimension and
    the reverse is 1 + (e^-2 + 0.25) / 2 - 0.5."""
    pol, obs, _, _, mean, log_std = _trpo_batch(n=8)
    old_mean, old_log_std = mean + 0.5, torch.zeros_like(log_std)
    with torch.no_grad():
        got = float(trpo_mod.mean_kl(pol, obs, old_mean, old_log_std))
    per_dim = -1.0 + 1.25 * math.exp(2.0) / 2 - 0.5
    assert got == pytest.approx(2 * per_dim, rel=1e-5)  # two action dimensions
    assert got == pytest.approx(_kl_np(old_mean.numpy(), 0.0, mean.numpy(), log_std.numpy()).mean(), rel=1e-5)


def test_trpo_checks_and_reports_the_kl_on_the_whole_batch_when_the_fisher_uses_a_subsample():
    """fvp_subsample only thins the Fisher-vector products: the line search's KL (the one
    reported) is the mean over all rows, recomputed here in numpy from the new policy's outputs."""
    pol, obs, act, adv, mean, log_std = _trpo_batch(n=200)
    cfg = TRPOConfig(horizon=1, steps_per_iteration=1, fvp_subsample=0.1, max_kl=0.05)
    stats = trpo_step(pol, obs, act, adv, mean, log_std, cfg, generator=torch.Generator().manual_seed(4))
    assert stats.step_fraction > 0
    with torch.no_grad():
        nm, nl = pol(obs)
    per_row = _kl_np(mean.numpy(), log_std.numpy(), nm.numpy(), nl.numpy())  # (200,)
    assert stats.kl == pytest.approx(per_row.mean(), rel=1e-4)
    assert abs(per_row[:20].mean() - per_row.mean()) > 1e-3 * per_row.mean()  # rows differ enough


def test_trpo_surrogate_weighs_by_the_ratio_to_the_batchs_old_policy():
    """The ratio's denominator is the policy that collected the batch (old_mean, old_log_std),
    not the current weights: with an old policy 0.2 off in mean and 0.1 lower in log-std the loss
    before the step is -mean(exp(log p_now - log p_old) * A), both densities written out here."""
    pol, obs, act, adv, mean, log_std = _trpo_batch(n=64)
    old_mean, old_log_std = mean + 0.2, log_std - 0.1

    def logpdf(m, ls):
        m, ls, a = m.double().numpy(), ls.double().numpy(), act.double().numpy()
        return (-0.5 * ((a - m) / np.exp(ls)) ** 2 - ls - 0.5 * math.log(2 * math.pi)).sum(-1)

    ratio = np.exp(logpdf(mean, log_std) - logpdf(old_mean, old_log_std))
    assert abs(ratio.mean() - 1.0) > 0.05  # far from the on-policy ratio 1
    stats = trpo_step(pol, obs, act, adv, old_mean, old_log_std, TRPOConfig(horizon=1, steps_per_iteration=1))
    assert stats.surrogate_before == pytest.approx(-float((ratio * adv.double().numpy()).mean()), rel=1e-5)


@pytest.mark.parametrize("steps", [1, 3])
def test_trpo_line_search_tries_line_search_steps_halvings(monkeypatch, steps):
    """With an acceptance ratio no step can meet, the line search evaluates the KL once per
    trial, cfg.line_search_steps times, after the one call that builds the Fisher product."""
    pol, obs, act, adv, mean, log_std = _trpo_batch()
    calls = []
    real_kl = trpo_mod.mean_kl

    def kl_spy(*args):
        calls.append(1)
        return real_kl(*args)

    monkeypatch.setattr(trpo_mod, "mean_kl", kl_spy)
    cfg = TRPOConfig(horizon=1, steps_per_iteration=1, accept_ratio=1e9, line_search_steps=steps)
    stats = trpo_step(pol, obs, act, adv, mean, log_std, cfg)
    assert stats.step_fraction == 0.0
    assert len(calls) == 1 + steps
