"""The trainer's wiring that a one-line slip would break silently: the warm-started ensemble."""

from __future__ import annotations

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
