import numpy as np
import pytest
import torch
from pydantic import ValidationError

from bremen_robot.config.train import BCConfig, EnsembleConfig, ImaginationConfig
from bremen_robot.data.dataset import Dataset
from bremen_robot.imagination.model_env import ModelEnv, imagine
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.models.ensemble_fit import fit_ensemble, holdout_mse
from bremen_robot.policy.bc import new_bc_policy, train_bc
from bremen_robot.policy.gaussian import GaussianPolicy, reset_log_std
from bremen_robot.tasks import get_task


def test_batched_ensemble_equals_per_member_loop():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    ens = DynamicsEnsemble(5, 2, members=4, hidden=(16, 8))
    # statistics far from (0, 1), so a normaliser that multiplied by the std would show
    o, a, o2 = (100 + 50 * rng.normal(size=(50, d)) for d in (5, 2, 5))
    ens.set_normalizer(o, a, o2)
    x = np.concatenate([o, a], axis=1)
    obs, act = torch.randn(7, 5) * 50 + 100, torch.randn(7, 2) * 50 + 100
    z_in = torch.as_tensor(
        (np.concatenate([obs.numpy(), act.numpy()], axis=1) - x.mean(0)) / x.std(0), dtype=torch.float32
    )
    batched = ens.predict(obs, act)
    assert batched.shape == (4, 7, 5)
    for m in range(4):
        z = z_in
        for i, layer in enumerate(ens.layers):
            z = z @ layer.weight[m] + layer.bias[m, 0]
            if i < len(ens.layers) - 1:
                z = torch.relu(z)
        d = o2 - o
        loop = obs + z * torch.as_tensor(d.std(0), dtype=torch.float32) + torch.as_tensor(d.mean(0)).float()
        torch.testing.assert_close(batched[m], loop)
        torch.testing.assert_close(ens.predict_member(obs, act, m), loop)


def test_normalizers_z_score_with_the_data_statistics():
    """Inputs with means near 100 and standard deviations 50 and 0.02: z-scoring the fitting
    data itself must give mean 0 and std 1 per column, whatever the implementation."""
    rng = np.random.default_rng(1)
    obs = 100 + 50 * rng.normal(size=(400, 3))
    act = -3 + 0.02 * rng.normal(size=(400, 2))
    nxt = obs + 7 + 40 * rng.normal(size=(400, 3))
    ens = DynamicsEnsemble(3, 2, members=2, hidden=(4,))
    ens.set_normalizer(obs, act, nxt)
    o, a, n = (torch.as_tensor(v, dtype=torch.float32) for v in (obs, act, nxt))
    z = ens.normalize_inputs(o, a).double().numpy()
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-3)
    t = ens.normalize_targets(o, n).double().numpy()
    np.testing.assert_allclose(t.mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(t.std(0), 1.0, rtol=1e-3)
    # one row by hand: (x - mean) / std
    row = (np.r_[obs[0], act[0]] - np.c_[obs, act].mean(0)) / np.c_[obs, act].std(0)
    np.testing.assert_allclose(z[0], row, rtol=1e-3, atol=1e-4)


def test_policy_observation_normalizer_divides_by_the_std():
    """The policy with normaliser (m, s) on x must act exactly as the same net, un-normalised, on
    (x - m) / s; the std of 50 makes multiplying instead of dividing visible."""
    torch.manual_seed(0)
    pol = GaussianPolicy(3, [-1.0] * 2, [1.0] * 2, (8,))
    with torch.no_grad():
        pol.net[-1].weight.normal_(std=1.0)  # a mean head that depends on the input
    plain = pol.clone()
    m, s = np.array([100.0, -20.0, 3.0]), np.array([50.0, 50.0, 0.5])
    pol.set_obs_normalizer(m, s)
    x = torch.as_tensor(m + s * np.random.default_rng(0).normal(size=(16, 3)), dtype=torch.float32)
    with torch.no_grad():
        got, expected = pol(x), plain((x - torch.as_tensor(m).float()) / torch.as_tensor(s).float())
    torch.testing.assert_close(got[0], expected[0])
    torch.testing.assert_close(got[1], expected[1])


def test_disagreement_is_the_std_across_members_by_hand():
    """All weights zero: member m predicts the normalised delta b_m (its last bias) everywhere.
    Biases [1, 2], [3, 6], [5, 10]: sample std over members (ddof 1) is 2 and 4, mean 3.
    (The variance would give (4 + 16) / 2 = 10.)"""
    ens = DynamicsEnsemble(2, 1, members=3, hidden=(4,))
    with torch.no_grad():
        for p in ens.parameters():
            p.zero_()
        ens.layers[-1].bias[:, 0] = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
    obs, act = torch.randn(5, 2), torch.randn(5, 1)
    torch.testing.assert_close(ens.disagreement(obs, act), torch.full((5,), 3.0))


def test_disagreement_matches_numpy_on_random_members():
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    ens = DynamicsEnsemble(4, 2, members=5, hidden=(16,))
    o, a, o2 = 10 * rng.normal(size=(64, 4)), rng.normal(size=(64, 2)), 30 * rng.normal(size=(64, 4))
    ens.set_normalizer(o, a, o2)
    obs, act = (torch.as_tensor(v[:9], dtype=torch.float32) for v in (o, a))
    with torch.no_grad():
        pred = ens.predict(obs, act).double().numpy()  # (E, B, D) next states, checked above
    d = o2 - o
    z = (pred - obs.double().numpy() - d.mean(0)) / d.std(0)  # normalised deltas by hand
    expected = z.std(axis=0, ddof=1).mean(-1)
    np.testing.assert_allclose(ens.disagreement(obs, act).detach().numpy(), expected, rtol=1e-4)


def test_fit_learns_point_dynamics_and_restores_best(point_data):
    gen = torch.Generator().manual_seed(0)
    ens = DynamicsEnsemble(2, 2, members=3, hidden=(32, 32))
    train, hold = point_data.split_by_episode(0.2)
    cfg = EnsembleConfig(members=3, hidden=[32, 32], batch_size=128, max_epochs=15, patience=3)
    hist = fit_ensemble(ens, train, hold, cfg, gen)
    assert hist.epochs >= 3 and len(hist.best_holdout_mse) == 3
    obs, act, nxt = (torch.as_tensor(x) for x in (hold.obs, hold.actions, hold.next_obs))
    final = holdout_mse(ens, ens.normalize_inputs(obs, act), ens.normalize_targets(obs, nxt))
    # weights restored are each member's best
    np.testing.assert_allclose(final.numpy(), hist.best_holdout_mse, rtol=1e-4)
    assert max(hist.best_holdout_mse) < 0.05
    pred = ens.predict(obs[:100], act[:100]).mean(0)
    assert float((pred - nxt[:100]).abs().max().detach()) < 0.05


def test_bc_recovers_linear_gaussian_behavior():
    rng = np.random.default_rng(0)
    W = np.array([[0.5, -0.3], [0.2, 0.4]])
    obs = rng.normal(size=(4000, 2)).astype(np.float32)
    act = np.clip(obs @ W.T + 0.05 * rng.normal(size=(4000, 2)), -1, 1).astype(np.float32)
    data = Dataset.from_columns(
        "point", {"obs": obs, "actions": act, "rewards": np.zeros(4000), "next_obs": obs}
    )
    cfg = BCConfig(hidden=[64, 64], steps=3000, lr=1e-3)
    pol = new_bc_policy(data, np.array([-1.0, -1.0]), np.array([1.0, 1.0]), cfg)
    losses = train_bc(pol, data, cfg, torch.Generator().manual_seed(0), log_every=500)
    assert losses[-1] < losses[0]
    test = rng.normal(size=(500, 2)).astype(np.float32) * 0.8
    with torch.no_grad():
        mean, log_std = pol(torch.as_tensor(test))
    err = np.abs(mean.numpy() - np.clip(test @ W.T, -1, 1))
    assert err.mean() < 0.05
    assert float(log_std.mean()) < -2.5  # MSE on a reparameterized sample shrinks the std


def test_model_env_is_seeded_and_restarts_terminated_rollouts():
    task = get_task("hopper")
    torch.manual_seed(0)
    ens = DynamicsEnsemble(11, 3, members=3, hidden=(16,))
    pol = GaussianPolicy(11, task.action_low, task.action_high, (16,))
    reset_log_std(pol, -1.0)

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return imagine(ModelEnv(ens, task, gen), pol, n_rollouts=8, horizon=20, generator=gen)

    a, b, c = run(1), run(1), run(2)
    torch.testing.assert_close(a.obs, b.obs)
    assert not torch.equal(a.obs, c.obs)
    assert a.obs.shape == (20, 8, 11) and a.dones[-1].all()
    # where a rollout terminated, the next step starts from a fresh state at t=0
    t, b_idx = torch.nonzero(a.terminals[:-1], as_tuple=True)
    assert len(t) > 0, "an untrained model should make the hopper fall"
    assert (a.timesteps[t + 1, b_idx] == 0).all()


def test_model_env_ends_rollouts_on_non_finite_predictions():
    task = get_task("halfcheetah")
    ens = DynamicsEnsemble(17, 6, members=2, hidden=(8,))
    with torch.no_grad():
        ens.layers[-1].bias.fill_(float("nan"))
    env = ModelEnv(ens, task, torch.Generator().manual_seed(0))
    obs = env.reset(4)
    nxt, rew, term = env.step(obs, torch.zeros(4, 6))
    assert term.all() and torch.isfinite(nxt).all()
    torch.testing.assert_close(nxt, obs)


def test_a_diverged_member_ends_the_rollout_without_poisoning_the_penalized_reward():
    """With the penalty, the spread takes every member: one NaN member made every reward NaN,
    even on rollouts of a healthy member (GAE then spreads it over the batch)."""
    task = get_task("halfcheetah")
    torch.manual_seed(0)
    ens = DynamicsEnsemble(17, 6, members=2, hidden=(8,))
    with torch.no_grad():
        ens.layers[-1].bias[1].fill_(float("nan"))  # member 1 diverged; member 0 is healthy
    env = ModelEnv(ens, task, torch.Generator().manual_seed(0), uncertainty_penalty=1.5)
    obs = env.reset(4)
    for member in (0, 1):
        nxt, rew, term = env.step(obs, torch.zeros(4, 6), member=member)
        assert torch.isfinite(rew).all() and torch.isfinite(nxt).all() and term.all()
        torch.testing.assert_close(nxt, obs)  # ended where it was
        torch.testing.assert_close(rew, task.reward(obs, torch.zeros(4, 6), obs))  # no penalty term


def test_uncertainty_penalty_subtracts_lambda_times_disagreement_and_leaves_dynamics_alone():
    task = get_task("halfcheetah")
    torch.manual_seed(0)
    ens = DynamicsEnsemble(17, 6, members=4, hidden=(16,))
    ens.set_normalizer(np.random.randn(64, 17), np.random.randn(64, 6), np.random.randn(64, 17))
    plain = ModelEnv(ens, task, torch.Generator().manual_seed(0))
    penalized = ModelEnv(ens, task, torch.Generator().manual_seed(0), uncertainty_penalty=2.5)
    obs, act = plain.reset(9), torch.rand(9, 6) * 2 - 1
    nxt0, rew0, term0 = plain.step(obs, act, member=2)
    nxt1, rew1, term1 = penalized.step(obs, act, member=2)
    torch.testing.assert_close(nxt1, nxt0)
    torch.testing.assert_close(term1, term0)
    dis = ens.disagreement(obs, act)
    assert (dis > 0).all()
    torch.testing.assert_close(rew1, rew0 - 2.5 * dis)


def test_penalty_in_behavior_units_divides_by_the_disagreement_on_the_behavior_data(point_data):
    from bremen_robot.config.train import TrainConfig
    from bremen_robot.trainer import penalty_weight

    torch.manual_seed(0)
    ens = DynamicsEnsemble(2, 2, members=3, hidden=(16,))
    ens.set_normalizer(point_data.obs, point_data.actions, point_data.next_obs)
    absolute = TrainConfig(name="t", task="point", imagination={"uncertainty_penalty": 3.0})
    assert penalty_weight(absolute, ens, point_data) == 3.0
    rel = TrainConfig(
        name="t", task="point", imagination={"uncertainty_penalty": 3.0, "penalty_units": "behavior"}
    )
    with torch.no_grad():  # point_data has 2,000 rows: all of them are used
        u_b = float(
            ens.disagreement(torch.as_tensor(point_data.obs), torch.as_tensor(point_data.actions)).mean()
        )
    assert penalty_weight(rel, ens, point_data) == pytest.approx(3.0 / u_b, rel=1e-5)
    off = TrainConfig(name="t", task="point", imagination={"penalty_units": "behavior"})
    assert penalty_weight(off, ens, point_data) == 0.0


def test_uncertainty_penalty_must_not_be_negative():
    with pytest.raises(ValidationError, match="uncertainty_penalty"):
        ImaginationConfig(uncertainty_penalty=-1.0)


def test_reset_log_std_keeps_mean():
    pol = GaussianPolicy(3, [-2.0], [2.0], (8,))
    x = torch.randn(5, 3)
    m0, _ = pol(x)
    reset_log_std(pol, -1.5)
    m1, s1 = pol(x)
    torch.testing.assert_close(m0, m1)
    torch.testing.assert_close(s1, torch.full_like(s1, -1.5))
    with pytest.raises(ValueError):
        reset_log_std(pol, 0.5)


def test_fit_restores_each_members_best_weights_after_they_got_worse(point_data):
    """Wreck the weights after epoch 3: holdout error jumps, the fit stops on patience, and the
    restored weights must be the epoch-3 (or earlier) ones, not the wrecked last ones."""
    gen = torch.Generator().manual_seed(0)
    ens = DynamicsEnsemble(2, 2, members=2, hidden=(32,))
    train, hold = point_data.split_by_episode(0.2)
    cfg = EnsembleConfig(members=2, hidden=[32], batch_size=128, max_epochs=30, patience=3, lr=1e-4)

    def wreck(epoch, _train, _hold):
        if epoch == 3:
            with torch.no_grad():
                for p in ens.parameters():
                    p.add_(torch.randn(p.shape, generator=gen) * 5)

    hist = fit_ensemble(ens, train, hold, cfg, gen, on_epoch=wreck)
    assert max(hist.best_epoch) <= 3 < hist.epochs
    assert min(hist.holdout_mse[-1]) > 10 * max(hist.best_holdout_mse)
    obs, act, nxt = (torch.as_tensor(x) for x in (hold.obs, hold.actions, hold.next_obs))
    with torch.no_grad():
        final = holdout_mse(ens, ens.normalize_inputs(obs, act), ens.normalize_targets(obs, nxt))
    np.testing.assert_allclose(final.numpy(), hist.best_holdout_mse, rtol=1e-4)


def test_imagined_returns_count_whole_segments_only():
    from bremen_robot.imagination.model_env import ImaginedBatch

    T, B = 4, 2
    rewards = torch.ones(T, B)
    # row 0 runs the whole horizon; row 1 terminates after step 1, restarts, and is cut at T
    terminals = torch.tensor([[False, False], [False, True], [False, False], [False, False]])
    dones = terminals.clone()
    dones[-1] = True
    timesteps = torch.tensor([[0, 0], [1, 1], [2, 0], [3, 1]])
    z = torch.zeros(T, B, 1)
    batch = ImaginedBatch(z, z, rewards, z, terminals, dones, timesteps, z, z)
    assert sorted(batch.episode_returns().tolist()) == [2.0, 4.0]  # the cut 2-step restart is left out


def test_run_trpo_calls_on_iteration_after_every_update_with_the_live_policy(point_data):
    from bremen_robot.config.train import TrainConfig
    from bremen_robot.progress import Reporter
    from bremen_robot.trainer import run_trpo

    task = get_task("point")
    cfg = TrainConfig(
        name="t",
        task="point",
        trpo={"iterations": 3, "steps_per_iteration": 200, "horizon": 20, "init_log_std": -1.0},
    )
    ens = DynamicsEnsemble(2, 2, members=2, hidden=(16,))
    ens.set_normalizer(point_data.obs, point_data.actions, point_data.next_obs)
    gen = torch.Generator().manual_seed(0)
    pol = GaussianPolicy(2, task.action_low, task.action_high, (16,))
    reset_log_std(pol, -1.0)
    seen = []

    def tap(it, policy, stats):
        seen.append((it, policy is pol, len(stats["imagined_return"]), policy.net[0].weight.clone()))

    run_trpo(pol, ModelEnv(ens, task, gen), cfg, gen, None, Reporter(enabled=False), on_iteration=tap)
    assert [(i, same, n) for i, same, n, _ in seen] == [(0, True, 1), (1, True, 2), (2, True, 3)]
    assert not torch.equal(seen[0][3], seen[2][3])  # the policy it sees is the one being trained


def test_review_figures_read_rows_spread_over_all_the_data():
    """Merged data is in deployment order; the review's KL and data disagreement must not read
    only the first rows (deployment 1's random-policy states)."""
    from bremen_robot.review_figures import spread_rows

    rows = spread_rows(10_000, 4096, torch.device("cpu")).tolist()
    assert len(rows) == 4096 and rows[0] == 0 and rows[-1] == 9_999
    assert all(b > a for a, b in zip(rows, rows[1:]))
    assert sum(r >= 5_000 for r in rows) == 2048  # half of them in the second half of the data
    assert spread_rows(300, 4096, torch.device("cpu")).tolist() == list(range(300))
