"""Ensemble and imagination details, checked by value.

Written against the mutants `make mutate` found alive in bremen_robot/models,
bremen_robot/imagination and bremen_robot/policy/gaussian.py (docs/testing.md, Mutation
testing). Expectations are by hand or recomputed with numpy.
"""

import math
from typing import Any

import numpy as np
import pytest
import torch

from bremen_robot.config.train import EnsembleConfig
from bremen_robot.data.dataset import Dataset
from bremen_robot.imagination.model_env import ImaginedBatch, ModelEnv, imagine
from bremen_robot.models.ensemble import BatchedLinear, DynamicsEnsemble
from bremen_robot.models.ensemble_fit import (
    ensemble_loss,
    fit_ensemble,
    holdout_mse,
    member_mse,
    member_weight_l2,
)
from bremen_robot.policy.gaussian import GaussianPolicy, gaussian_log_prob, mlp, reset_log_std
from bremen_robot.tasks import Task, get_task


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


def test_gaussian_log_prob_matches_the_normal_density_by_hand():
    """log N(x; m, s^2) = -(x - m)^2 / (2 s^2) - ln s - ln(2 pi) / 2, summed over dims:
    x = (1, -2), m = (0.5, 0), s = (2, 1): -0.03125 - ln 2 - 2 - 0 - ln(2 pi) = -4.562274."""
    got = gaussian_log_prob(
        torch.tensor([[0.5, 0.0]], dtype=torch.float64),
        torch.log(torch.tensor([[2.0, 1.0]], dtype=torch.float64)),
        torch.tensor([[1.0, -2.0]], dtype=torch.float64),
    )
    assert got.shape == (1,)
    assert float(got[0]) == pytest.approx(-0.03125 - 2.0 - np.log(2.0) - np.log(2 * np.pi), abs=1e-12)
    assert float(got[0]) == pytest.approx(-4.562274, abs=1e-6)


def test_float64_policy_samples_float64_noise_from_the_generator():
    """Bit for bit: float32 noise cast up would differ in the last bits."""
    pol = GaussianPolicy(2, [-1.0, -1.0], [1.0, 1.0], (4,)).double()
    reset_log_std(pol, -2.0)
    obs = torch.randn(3, 2, dtype=torch.float64)
    got = pol.sample(obs, torch.Generator().manual_seed(8))
    eps = torch.randn((3, 2), generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    with torch.no_grad():
        mean, log_std = pol(obs)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, mean + eps * log_std.exp(), rtol=0, atol=0)


def test_model_env_step_without_a_member_draws_exactly_one_from_the_generator():
    """Member m predicts obs + m; the step must use the member of one randint(E) draw."""
    ens = DynamicsEnsemble(2, 2, members=4, hidden=(4,))
    with torch.no_grad():
        for p in ens.parameters():
            p.zero_()
        ens.layers[-1].bias[:, 0, :] = torch.arange(4.0)[:, None]
    gen = torch.Generator().manual_seed(3)
    env = ModelEnv(ens, get_task("point"), gen)
    replay = torch.Generator().manual_seed(3)
    torch.randint(2**31 - 1, (1,), generator=replay)  # the numpy seed
    m = int(torch.randint(4, (1,), generator=replay)[0])
    nxt, _, _ = env.step(torch.zeros(1, 2), torch.zeros(1, 2))
    assert nxt.tolist() == [[float(m), float(m)]]
    assert torch.equal(gen.get_state(), replay.get_state())


def test_policy_mean_is_tanh_scaled_into_an_asymmetric_box():
    """Box [-1, 3] x [0, 4]: centre (1, 2), half-width (2, 2). A mean head fixed at atanh(0.5)
    gives mean = 0.5 * 2 + centre = (2, 3) for every state."""
    pol = GaussianPolicy(2, [-1.0, 0.0], [3.0, 4.0], (4,))
    with torch.no_grad():
        pol.net[-1].weight.zero_()
        pol.net[-1].bias[:2] = float(np.arctanh(0.5))
    mean, _ = pol(torch.randn(5, 2) * 10)
    torch.testing.assert_close(mean, torch.tensor([[2.0, 3.0]]).expand(5, 2))


def test_policy_output_layer_starts_small_with_zero_bias():
    """BREMEN initialises the output layer with std 0.01 and bias 0: 2,000 weights here."""
    torch.manual_seed(0)
    pol = GaussianPolicy(3, [-1.0] * 10, [1.0] * 10, (100,))
    out = pol.net[-1]
    assert out.weight.shape == (20, 100)
    assert 0.009 < float(out.weight.detach().std()) < 0.011
    assert torch.equal(out.bias, torch.zeros(20))


def test_mlp_without_an_output_std_keeps_the_default_init():
    torch.manual_seed(0)
    out = mlp(3, [], 50)[-1]
    assert float(out.weight.detach().abs().max()) > 0.3  # U(-1/sqrt(3), 1/sqrt(3)), not N(0, 0.01)
    assert float(out.bias.detach().abs().max()) > 0.1


def test_flops_per_row_by_hand():
    """Dims 3 + 2 -> 4 -> 5 -> 3: 2 * (5 * 4 + 4 * 5 + 5 * 3) = 110."""
    assert DynamicsEnsemble(3, 2, members=2, hidden=(4, 5)).flops_per_row() == 110


def test_member_losses_by_hand():
    """Member MSE over (B, D); member L2 over every layer's weights (biases excluded)."""
    pred = torch.zeros(2, 2, 2)
    target = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(member_mse(pred, target), torch.tensor([1.0, 1.0]))
    ens = DynamicsEnsemble(1, 1, members=2, hidden=(2,))
    with torch.no_grad():
        for p in ens.parameters():
            p.fill_(3.0)  # biases too: they must not count
        ens.layers[0].weight[1] = 0.5  # member 1's first layer: (2, 2) of 0.5
    # member 0: 4 * 9 + 2 * 9 = 54; member 1: 4 * 0.25 + 2 * 9 = 19
    torch.testing.assert_close(member_weight_l2(ens), torch.tensor([54.0, 19.0]))
    z_in = torch.zeros(2, 3, 2)
    z_t = torch.zeros(2, 3, 1)
    mse = member_mse(ens(z_in), z_t)
    torch.testing.assert_close(ensemble_loss(ens, z_in, z_t, 0.1), (mse + torch.tensor([5.4, 1.9])).sum())


def _fit_data(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 2)) * 3 + 1
    act = rng.uniform(-1, 1, size=(n, 2))
    cols = {"obs": obs, "actions": act, "rewards": np.zeros(n), "next_obs": obs + 0.1 * act}
    return Dataset.from_columns("point", cols)


@pytest.mark.parametrize(
    ("min_improvement", "n", "starts"),
    [(0.01, 100, (0, 30, 60)), (0.0, 100, (0, 30, 60)), (0.01, 59, (0,)), (0.01, 30, (0,))],
)
def test_fit_bookkeeping_with_frozen_weights(min_improvement, n, starts):
    """lr = 1e-30 leaves the float32 weights as they are, so every figure of the fit can be
    recomputed: 100 rows in batches of 30 make 3 batches an epoch (the last 10 rows are
    dropped; 59 or 30 rows make one), the train MSE is the mean of the batch losses per
    member, the holdout never improves so the fit stops after `patience` = 2 epochs with
    every best epoch 0, and the FLOPs are 3 x forward x members x batch x batches x epochs.
    An unchanged holdout error is no improvement even when min_improvement is 0."""
    train, hold = _fit_data(n, 0), _fit_data(40, 1)
    torch.manual_seed(0)
    ens = DynamicsEnsemble(2, 2, members=2, hidden=(4,))
    cfg = EnsembleConfig(
        members=2,
        hidden=[4],
        lr=1e-30,
        weight_decay=0.01,
        batch_size=30,
        max_epochs=6,
        patience=2,
        min_improvement=min_improvement,
    )
    hist = fit_ensemble(ens, train, hold, cfg, torch.Generator().manual_seed(5))
    assert hist.epochs == 2 and hist.best_epoch == [0, 0]
    assert len(hist.train_mse) == 2 and len(hist.holdout_mse) == 2
    assert hist.flops == 3 * 2 * (4 * 4 + 4 * 2) * 2 * 30 * len(starts) * 2
    # the batch losses, replayed: z-scores by numpy, the shuffles from an equal generator
    x = np.concatenate([train.obs, train.actions], axis=1)
    d = train.next_obs - train.obs
    z_in = torch.as_tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
    z_t = torch.as_tensor((d - d.mean(0)) / d.std(0), dtype=torch.float32)
    gen = torch.Generator().manual_seed(5)
    l2 = sum(float((layer.weight.detach() ** 2).sum()) for layer in ens.layers) / 2  # mean over members
    for epoch in range(2):
        perm = torch.argsort(torch.rand(2, n, generator=gen), dim=1)
        losses = []
        for i in starts:
            idx = perm[:, i : i + 30]
            with torch.no_grad():
                out = ens(z_in[idx])
            losses.append(float(((out - z_t[idx]) ** 2).mean()) + 0.01 * l2)
        assert hist.train_mse[epoch] == pytest.approx(np.mean(losses), rel=1e-4), epoch


def test_batched_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    torch.manual_seed(0)
    layer = BatchedLinear(4, 16, 50)  # bound 1/4; 200 biases, 3,200 weights
    for p in (layer.weight, layer.bias):
        assert float(p.detach().abs().max()) <= 0.25
        assert float(p.detach().min()) < -0.2 and float(p.detach().max()) > 0.2


def test_ensemble_defaults_are_the_papers_five_members_of_two_1024_layers():
    ens = DynamicsEnsemble(2, 1)
    assert ens.members == 5 and ens.hidden == (1024, 1024)


def test_normalize_inputs_of_a_time_major_batch_equals_row_by_row():
    ens = DynamicsEnsemble(2, 1, members=2, hidden=(4,))
    rng = np.random.default_rng(0)
    ens.set_normalizer(rng.normal(size=(50, 2)) * 4, rng.normal(size=(50, 1)), rng.normal(size=(50, 2)))
    obs, act = torch.randn(3, 5, 2), torch.randn(3, 5, 1)
    z = ens.normalize_inputs(obs, act)
    assert z.shape == (3, 5, 3)
    torch.testing.assert_close(z[1], ens.normalize_inputs(obs[1], act[1]))


def test_delta_std_is_floored_at_1e_6_only():
    """A state change with std 0.02 keeps it; a constant one gets the 1e-6 floor."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(200, 2))
    nxt = obs.copy()
    nxt[:, 0] += 0.02 * rng.normal(size=200)
    ens = DynamicsEnsemble(2, 1, members=2, hidden=(4,))
    ens.set_normalizer(obs, rng.normal(size=(200, 1)), nxt)
    d = nxt - obs
    np.testing.assert_allclose(ens.delta_std.numpy(), [d[:, 0].std(), 1e-6], rtol=1e-5)


def _constant_ensemble(delta: float) -> DynamicsEnsemble:
    """Every member predicts next = obs + delta (zero weights, last bias delta, unit scales)."""
    ens = DynamicsEnsemble(2, 2, members=2, hidden=(4,))
    with torch.no_grad():
        for p in ens.parameters():
            p.zero_()
        ens.layers[-1].bias.fill_(delta)
    return ens


def test_model_env_clips_imagined_states_to_plus_minus_1e5():
    obs = torch.tensor([[0.0, 5.0]])
    for delta, clipped in ((1e7, 1e5), (-1e7, -1e5)):
        env = ModelEnv(_constant_ensemble(delta), get_task("point"), torch.Generator().manual_seed(0))
        nxt, _, term = env.step(obs, torch.zeros(1, 2), member=0)
        assert nxt.tolist() == [[clipped, clipped]] and not bool(term[0])


def test_model_env_ends_only_the_rollout_that_diverged():
    env = ModelEnv(_constant_ensemble(1.0), get_task("point"), torch.Generator().manual_seed(0))
    obs = torch.tensor([[0.0, 0.0], [float("nan"), 0.0], [2.0, 2.0]])
    nxt, _, term = env.step(obs, torch.zeros(3, 2), member=1)
    assert term.tolist() == [False, True, False]
    torch.testing.assert_close(nxt[[0, 2]], torch.tensor([[1.0, 1.0], [3.0, 3.0]]))


def _probe_task(**fns: Any) -> Task:
    """A 2-D task with a unit action box and the given ``reward_fn``/``termination_fn`` (and any
    other Task keyword)."""
    return Task("probe", ("x", "y"), ("u", "v"), (-1.0, -1.0), (1.0, 1.0), 0.1, 10, **fns)


def test_model_env_scores_with_the_task_on_obs_clipped_action_and_next_obs():
    """A task whose reward and termination read all three arguments: the env hands them the
    state, the action clipped into the box, and the imagined next state, in that order."""
    probe = _probe_task(
        reward_fn=lambda o, a, n: o[..., 0] + 10 * a[..., 0] + 100 * n[..., 0],
        termination_fn=lambda o, a, n: (o[..., 1] > 0) | (a[..., 1] > 0.5) | (n[..., 1] > 10),
    )
    gen = torch.Generator().manual_seed(0)
    env = ModelEnv(_constant_ensemble(1.0), probe, gen, start_states=np.zeros((1, 2), np.float32))
    obs = torch.tensor([[2.0, -1.0], [3.0, 1.0], [0.0, -5.0], [0.0, 9.5]])
    act = torch.tensor([[5.0, 0.0], [-0.5, 0.0], [0.0, 0.9], [0.0, -3.0]])
    _, rew, term = env.step(obs, act, member=0)
    # next = obs + 1; action clipped to [-1, 1]
    torch.testing.assert_close(rew, torch.tensor([2.0 + 10.0 + 300.0, 3.0 - 5.0 + 400.0, 0.0 + 100.0, 100.0]))
    assert term.tolist() == [False, True, True, True]


def test_fit_keeps_going_while_the_holdout_improves():
    """patience 1: an epoch that improves resets the count, so a fit from random weights that
    improves on epoch 1 runs a second epoch."""
    torch.manual_seed(0)
    ens = DynamicsEnsemble(2, 2, members=2, hidden=(16,))
    cfg = EnsembleConfig(members=2, hidden=[16], lr=1e-2, batch_size=50, max_epochs=3, patience=1)
    hist = fit_ensemble(ens, _fit_data(200, 0), _fit_data(40, 1), cfg, torch.Generator().manual_seed(0))
    assert hist.best_epoch[0] >= 1 and hist.epochs >= 2


def test_imagine_restarts_a_terminated_rollout_from_a_start_state_not_from_where_it_fell():
    """Every member moves each coordinate by +1; the probe task terminates once x reaches 2 and
    its start states are all 0. So x runs 0, 1 | 0, 1 | 0: each termination is followed by a
    fresh start state at t = 0, never by the fallen state 2."""
    probe = _probe_task(
        reward_fn=lambda o, a, n: n[..., 0],
        termination_fn=lambda o, a, n: n[..., 0] >= 2,
    )
    gen = torch.Generator().manual_seed(0)
    env = ModelEnv(_constant_ensemble(1.0), probe, gen, start_states=np.zeros((4, 2), np.float32))
    pol = GaussianPolicy(2, probe.action_low, probe.action_high, (4,))
    batch = imagine(env, pol, n_rollouts=1, horizon=5, generator=gen, deterministic=True)
    assert batch.obs[:, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert batch.next_obs[:, 0, 0].tolist() == [1.0, 2.0, 1.0, 2.0, 1.0]
    assert batch.terminals[:, 0].tolist() == [False, True, False, True, False]
    assert batch.timesteps[:, 0].tolist() == [0, 1, 0, 1, 0]


def test_holdout_mse_weights_every_row_alike_across_uneven_chunks():
    """A one-layer ensemble with zero weights predicts its bias: member 0 predicts 1, member 1
    predicts -2 in both outputs. On targets t = 0, 1, 2, 3, 4 (both columns) in chunks of 2, 2
    and 1 rows, the per-member MSE is mean((1 - t)^2) = 15 / 5 = 3 and mean((-2 - t)^2) =
    90 / 5 = 18: the chunks' MSEs weighted by their rows, not averaged nor summed."""
    ens = DynamicsEnsemble(1, 1, members=2, hidden=())
    with torch.no_grad():
        ens.layers[0].weight.zero_()
        ens.layers[0].bias.copy_(torch.tensor([1.0, -2.0]).reshape(2, 1, 1))
    z_in = torch.zeros(5, 2)
    z_t = torch.arange(5.0)[:, None]
    torch.testing.assert_close(holdout_mse(ens, z_in, z_t, chunk=2), torch.tensor([3.0, 18.0]))
    torch.testing.assert_close(holdout_mse(ens, z_in, z_t), torch.tensor([3.0, 18.0]))


def test_fit_restores_each_members_own_best_weights_when_only_one_got_worse(point_data):
    """After epoch 2 only member 1's weights are wrecked; member 0 keeps improving. Each member's
    best weights are saved on its own: the restored member 1 is its epoch-2 (or earlier) self,
    not the wrecked weights saved along with member 0's later improvements."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    ens = DynamicsEnsemble(2, 2, members=2, hidden=(16,))
    train, hold = point_data.split_by_episode(0.2)
    cfg = EnsembleConfig(members=2, hidden=[16], batch_size=256, max_epochs=8, patience=8, lr=3e-3)

    def wreck(epoch, _train, _hold):
        if epoch == 2:
            with torch.no_grad():
                for p in ens.parameters():
                    p[1].add_(torch.randn(p[1].shape, generator=gen) * 5)

    hist = fit_ensemble(ens, train, hold, cfg, gen, on_epoch=wreck)
    assert hist.best_epoch[0] > 2 >= hist.best_epoch[1]
    obs, act, nxt = (torch.as_tensor(x) for x in (hold.obs, hold.actions, hold.next_obs))
    with torch.no_grad():
        final = holdout_mse(ens, ens.normalize_inputs(obs, act), ens.normalize_targets(obs, nxt))
    np.testing.assert_allclose(final.numpy(), hist.best_holdout_mse, rtol=1e-4)


def test_imagine_acts_with_mean_plus_std_times_the_generators_normals():
    """A stochastic imagined step acts with mean + exp(log_std) * eps, eps drawn (B, A) per step
    from the generator imagine is given (the env's own generator draws the rest); replayed."""
    env = ModelEnv(_constant_ensemble(0.5), get_task("point"), torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    pol = GaussianPolicy(2, (-1.0, -1.0), (1.0, 1.0), (4,))
    reset_log_std(pol, -1.0)
    start = torch.tensor([[0.1, 0.2], [0.3, -0.4], [0.0, 0.0]])
    batch = imagine(env, pol, 3, 2, torch.Generator().manual_seed(7), start=start)
    replay = torch.Generator().manual_seed(7)
    for t in range(2):
        eps = torch.randn((3, 2), generator=replay)
        with torch.no_grad():
            mean = pol(batch.obs[t])[0]
        torch.testing.assert_close(batch.actions[t], mean + math.exp(-1.0) * eps)


def test_episode_returns_start_each_segment_from_zero():
    """One rollout that terminates after steps 1 and 2 and is cut at the horizon: whole segments
    1 + 2 = 3 and 3; the last one (restarted, cut) is left out. Nothing carries across a done."""
    rewards = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    terminals = torch.tensor([[False], [True], [True], [False]])
    dones = torch.tensor([[False], [True], [True], [True]])
    z = torch.zeros(4, 1, 1)
    batch = ImaginedBatch(z, z, rewards, z, terminals, dones, torch.tensor([[0], [1], [0], [0]]), z, z)
    assert batch.episode_returns().tolist() == [3.0, 3.0]


def _two_member_ensemble() -> DynamicsEnsemble:
    """Member 0 predicts next = obs + 1, member 1 next = obs + 10 (zero weights, unit scales)."""
    ens = _constant_ensemble(1.0)
    with torch.no_grad():
        ens.layers[-1].bias[1].fill_(10.0)
    return ens


def test_imagine_draws_a_member_for_every_step():
    """DESIGN.md §4: one member drawn at random per imagined step, not one per batch. The env's
    generator draws its numpy seed, then the T members; replayed, the steps are +1 or +10."""
    env = ModelEnv(_two_member_ensemble(), get_task("point"), torch.Generator().manual_seed(3))
    pol = GaussianPolicy(2, (-1.0, -1.0), (1.0, 1.0), (4,))
    start = torch.zeros(2, 2)
    batch = imagine(env, pol, 2, 8, torch.Generator().manual_seed(0), start=start, deterministic=True)
    replay = torch.Generator().manual_seed(3)
    torch.randint(2**31 - 1, (1,), generator=replay)
    members = torch.randint(2, (8,), generator=replay).tolist()
    assert 0 < sum(members) < 8  # both members take steps
    steps = (batch.next_obs - batch.obs)[:, :, 0]  # (T, B): the same member for every rollout
    assert steps.tolist() == [[10.0 if m else 1.0] * 2 for m in members]


def test_model_env_ends_a_rollout_with_one_non_finite_entry():
    """A member whose prediction is NaN in one coordinate only: that state is not finite, so the
    rollout ends in place (next = obs, terminated); a finite prediction is kept."""
    ens = _constant_ensemble(1.0)
    with torch.no_grad():
        ens.layers[-1].bias[0, 0, 0] = float("nan")
    env = ModelEnv(ens, get_task("point"), torch.Generator().manual_seed(0))
    obs = torch.tensor([[0.5, 0.25]])
    nxt, _, term = env.step(obs, torch.zeros(1, 2), member=0)
    assert term.tolist() == [True] and nxt.tolist() == [[0.5, 0.25]]
    nxt, _, term = env.step(obs, torch.zeros(1, 2), member=1)
    assert term.tolist() == [False] and nxt.tolist() == [[1.5, 1.25]]
