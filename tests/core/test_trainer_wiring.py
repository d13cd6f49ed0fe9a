"""The trainer's wiring that a one-line slip would break silently: the warm-started ensemble."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bremen_robot.config.train import TrainConfig
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.progress import Reporter
from bremen_robot.tasks import get_task
from bremen_robot.trainer import _init_ensemble, fit_dynamics, save_ensemble


def _saved_ensemble(path, seed=7):
    torch.manual_seed(seed)
    ens = DynamicsEnsemble(2, 2, members=2, hidden=(16,))
    with torch.no_grad():
        for p in ens.parameters():
            p.add_(1.0)  # weights no fresh initialisation (|w| <= 1/sqrt(in)) can produce
    save_ensemble(ens, path)
    return [p.detach().clone() for p in ens.parameters()]


def _cfg(**ensemble):
    return TrainConfig(
        name="t", task="point", device="cpu", ensemble={"members": 2, "hidden": [16], **ensemble}
    )


def test_init_ensemble_returns_the_saved_weights(tmp_path):
    saved = _saved_ensemble(tmp_path / "ensemble.pt")
    model = _init_ensemble(_cfg(), get_task("point"), torch.device("cpu"), tmp_path / "ensemble.pt")
    for p, s in zip(model.parameters(), saved):
        assert torch.equal(p.detach(), s)
    fresh = _init_ensemble(_cfg(), get_task("point"), torch.device("cpu"), None)
    assert float(max(p.abs().max() for p in fresh.parameters())) < 1.0  # a fresh one is not it


def test_fit_dynamics_refits_the_saved_ensemble_instead_of_a_fresh_one(tmp_path, point_data):
    """With a vanishing learning rate one epoch cannot move the weights: a re-fit ends where the
    saved ensemble was (the paper's warm start), a fresh fit nowhere near it."""
    saved = _saved_ensemble(tmp_path / "ensemble.pt")
    cfg = _cfg(lr=1e-9, max_epochs=1, batch_size=256)
    model, hist = fit_dynamics(
        cfg,
        get_task("point"),
        point_data,
        torch.Generator().manual_seed(0),
        torch.device("cpu"),
        tmp_path / "ensemble.pt",
        Reporter(enabled=False),
    )
    assert hist.epochs == 1
    for p, s in zip(model.parameters(), saved):
        torch.testing.assert_close(p.detach(), s, atol=1e-6, rtol=0)


def test_a_config_for_another_task_of_the_same_size_is_refused(tmp_path):
    """HalfCheetah and Walker2d both have 17 observations and 6 actions: a walker2d preset on
    cheetah data passes every size check, and would score the cheetah's transitions with the
    walker's reward and fall termination and export a 'walker2d' policy. Refused before fitting."""
    import numpy as np
    import pytest

    from bremen_robot.data.dataset import Dataset
    from bremen_robot.errors import BremenError
    from bremen_robot.trainer import train

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(64, 17)).astype(np.float32)
    cols = {"obs": obs, "actions": rng.uniform(-1, 1, (64, 6)), "rewards": np.zeros(64)}
    cheetah = Dataset.from_columns("halfcheetah", {**cols, "next_obs": obs + 0.01})
    cfg = TrainConfig.model_validate(
        {
            "name": "t",
            "task": "walker2d",
            "device": "cpu",
            "ensemble": {"members": 2, "hidden": [8], "max_epochs": 1, "batch_size": 32},
            "bc": {"hidden": [8], "steps": 5},
            "trpo": {"iterations": 0, "steps_per_iteration": 40, "horizon": 20},
        }
    )
    with pytest.raises(BremenError) as info:
        train(cfg, cheetah, tmp_path / "out")
    assert str(info.value) == (
        "the config trains task 'walker2d' but the data was recorded for 'halfcheetah'; "
        "use a halfcheetah preset or set task: halfcheetah"
    )
    assert not (tmp_path / "out" / "ensemble.pt").exists()
    # the data's own task, named in the config or left to the data, still trains
    same = cfg.model_copy(update={"task": "half-cheetah"})
    assert train(same, cheetah, tmp_path / "ok").manifest.task == "halfcheetah"


class _StubBaseline:
    """V(o, t) = o[0] + 10 t; records what it is fitted on."""

    def __init__(self) -> None:
        self.fits: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def predict(self, obs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return obs[:, 0] + 10.0 * t.float()

    def fit(self, obs: torch.Tensor, t: torch.Tensor, targets: torch.Tensor) -> None:
        self.fits.append((obs.clone(), t.clone(), targets.clone()))


def test_run_trpo_hands_trpo_normalized_gae_advantages_and_fits_the_baseline_on_the_gae_targets(monkeypatch):
    """One iteration on a hand-made imagined batch (T = 3, B = 2, gamma 0.5, lambda 0.8), with a
    baseline V(o, t) = o + 10 t. Rollout 0 runs to the horizon (bootstrapped there with
    V(s_3) at t = 3); rollout 1 terminates after step 0 (no bootstrap, no carry) and restarts.
      rollout 0: V = 1, 12, 23; V' = 12, 23, 34; deltas 6, 0.5, -5; A = 5.4, -1.5, -5
      rollout 1: V = 5, 0, 11;  V' = 16, 11, 22; deltas -3, 8.5, 4;  A = -3, 10.1, 4
    TRPO gets them time-major, minus their mean, over their (n - 1) std; the baseline is fitted
    on A + V; and the BC policy reaches TRPO for the explicit KL term."""
    from bremen_robot import trainer
    from bremen_robot.imagination.model_env import ImaginedBatch
    from bremen_robot.rl.trpo import TRPOStats

    col = lambda *rows: torch.tensor(rows, dtype=torch.float32)  # noqa: E731  (T, B)
    obs, nxt = col([1, 5], [2, 0], [3, 1]), col([2, 6], [3, 1], [4, 2])
    batch = ImaginedBatch(
        obs=obs[..., None],
        actions=col([0.1, 0.2], [0.3, 0.4], [0.5, 0.6])[..., None],
        rewards=col([1, 2], [1, 3], [1, 4]),
        next_obs=nxt[..., None],
        terminals=torch.tensor([[False, True], [False, False], [False, False]]),
        dones=torch.tensor([[False, True], [False, False], [True, True]]),
        timesteps=torch.tensor([[0, 0], [1, 0], [2, 1]]),
        mean=col([0.0, 0.1], [0.2, 0.3], [0.4, 0.5])[..., None],
        log_std=col([-1, -2], [-3, -4], [-5, -6])[..., None] / 10,
    )
    baseline, seen = _StubBaseline(), {}
    monkeypatch.setattr(trainer, "imagine", lambda env, policy, n, horizon, gen: batch)
    monkeypatch.setattr(trainer, "_make_baseline", lambda cfg, obs_dim, gen, device: baseline)

    def fake_trpo_step(policy, o, a, adv, old_mean, old_log_std, tc, bc_policy=None, generator=None):
        seen.update(
            obs=o, actions=a, adv=adv, mean=old_mean, log_std=old_log_std, bc=bc_policy, gen=generator
        )
        return TRPOStats(0.0, 0.0, 0.0, 1.0, 0.0)

    monkeypatch.setattr(trainer, "trpo_step", fake_trpo_step)
    cfg = TrainConfig(
        name="t",
        task="point",
        trpo={"iterations": 1, "steps_per_iteration": 6, "horizon": 3, "gamma": 0.5, "gae_lambda": 0.8},
    )
    env = SimpleNamespace(ensemble=SimpleNamespace(obs_dim=1), device=torch.device("cpu"))
    bc, gen = object(), torch.Generator()
    trainer.run_trpo(object(), env, cfg, gen, bc, Reporter(enabled=False))  # type: ignore[arg-type]

    adv = np.array([5.4, -3.0, -1.5, 10.1, -5.0, 4.0])  # time-major: (t0 b0, t0 b1, t1 b0, ...)
    np.testing.assert_allclose(seen["adv"].numpy(), (adv - adv.mean()) / adv.std(ddof=1), rtol=1e-5)
    assert seen["obs"][:, 0].tolist() == [1, 5, 2, 0, 3, 1]
    np.testing.assert_allclose(seen["actions"][:, 0].numpy(), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], rtol=1e-6)
    np.testing.assert_allclose(seen["mean"][:, 0].numpy(), [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], atol=1e-7)
    np.testing.assert_allclose(seen["log_std"][:, 0].numpy(), [-0.1, -0.2, -0.3, -0.4, -0.5, -0.6], rtol=1e-6)
    assert seen["bc"] is bc and seen["gen"] is gen
    [(fit_obs, fit_t, targets)] = baseline.fits
    assert fit_obs[:, 0].tolist() == [1, 5, 2, 0, 3, 1] and fit_t.tolist() == [0, 0, 1, 0, 2, 1]
    np.testing.assert_allclose(targets.numpy(), adv + [1, 5, 12, 0, 23, 11], rtol=1e-5)


def _two_deployments():
    from bremen_robot.data.dataset import Dataset

    obs = np.arange(10, dtype=np.float32).reshape(5, 2)
    cols = {
        "obs": obs,
        "actions": np.zeros((5, 2), np.float32),
        "rewards": np.zeros(5),
        "next_obs": obs + 1,
        "episode_ids": np.array([0, 0, 1, 1, 1]),
        "deployment_ids": np.array([1, 1, 2, 2, 2]),
    }
    return Dataset.from_columns("point", cols)


def test_bc_clones_the_latest_deployment_by_default_and_all_data_when_asked():
    """DESIGN.md §4: BC is trained on the latest deployment's data (option: all data)."""
    from bremen_robot.trainer import behavior_data

    data = _two_deployments()
    latest = behavior_data(TrainConfig(name="t", task="point"), data)
    assert latest.obs[:, 0].tolist() == [4.0, 6.0, 8.0]
    every = behavior_data(TrainConfig(name="t", task="point", bc={"data": "all"}), data)
    assert every.obs[:, 0].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_imagination_starts_from_the_reset_distribution_when_auto_and_the_task_has_one():
    """start_states auto and reset use the task's reset distribution (point has one); dataset
    uses logged states."""
    from bremen_robot.trainer import model_env_for

    ens = DynamicsEnsemble(2, 2, members=2, hidden=(4,))
    for mode, use_reset in (("auto", True), ("reset", True), ("dataset", False)):
        cfg = TrainConfig(name="t", task="point", imagination={"start_states": mode})
        env = model_env_for(cfg, get_task("point"), ens, _two_deployments(), torch.Generator())
        assert env.use_reset is use_reset, mode


def test_penalty_in_behavior_units_is_divided_by_the_disagreement_on_the_latest_deployment():
    """docs/algorithm.md: lambda is divided by the ensemble's mean disagreement on the behavior
    data (BC's: the latest deployment). A one-layer ensemble whose member 1 predicts (x0, x0) and
    member 0 predicts 0 (unit normalizers) disagrees by std([0, x0]) = |x0| / sqrt(2) per row;
    deployment 2 has x0 = 4, 6, 8, so lambda = 1.5 / (6 / sqrt(2)) (all the data: 4 / sqrt(2))."""
    from bremen_robot.trainer import model_env_for

    ens = DynamicsEnsemble(2, 2, members=2, hidden=())
    with torch.no_grad():
        ens.layers[0].weight.zero_()
        ens.layers[0].bias.zero_()
        ens.layers[0].weight[1, 0, :] = 1.0
    cfg = TrainConfig(
        name="t", task="point", imagination={"uncertainty_penalty": 1.5, "penalty_units": "behavior"}
    )
    env = model_env_for(cfg, get_task("point"), ens, _two_deployments(), torch.Generator())
    assert env.uncertainty_penalty == pytest.approx(1.5 / (6.0 / np.sqrt(2.0)), rel=1e-5)
