"""Trainer wiring that a hand mutation read (2026-12-07) found no test held: which data each
stage receives, which generator it draws from, and what the report says about the data.

Every expectation is written out by hand from a small hand-built dataset; each test names the
one-line mutant of ``bremen_robot/trainer.py`` it fails on (docs/testing.md, "Mutations the
suite catches").
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bremen_robot import trainer
from bremen_robot.config.train import TrainConfig
from bremen_robot.data.dataset import Dataset
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.progress import Reporter
from bremen_robot.tasks import get_task


def _two_deployments() -> Dataset:
    """14 rows of the point task. Deployment 1: episodes 0 and 1 (4 rows each, rewards 1 and 2);
    deployment 2: episodes 2 and 3 (3 rows each, rewards 3 and -1). Row r has obs (r, -r / 10)
    and action (0.05 r - 0.3, 0.1). Returns 4, 8, 9, -3: mean 4.5 (deployment 2 alone: 3)."""
    n = 14
    r = np.arange(n, dtype=np.float32)
    obs = np.stack([r, -r / 10], axis=1)
    rewards = np.array([1] * 4 + [2] * 4 + [3] * 3 + [-1] * 3, dtype=np.float32)
    return Dataset.from_columns(
        "point",
        {
            "obs": obs,
            "actions": np.stack([0.05 * r - 0.3, np.full(n, 0.1, np.float32)], axis=1),
            "rewards": rewards,
            "next_obs": obs + 0.5,
            "episode_ids": np.repeat([0, 1, 2, 3], [4, 4, 3, 3]),
            "deployment_ids": np.repeat([1, 2], [8, 6]),
        },
    )


def _tiny_cfg(**update) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": "t",
            "task": "point",
            "device": "cpu",
            "threads": 1,
            "seed": 5,
            "ensemble": {"members": 2, "hidden": [8], "max_epochs": 1, "batch_size": 4},
            "bc": {"hidden": [8], "steps": 3},
            "trpo": {"iterations": 1, "steps_per_iteration": 8, "horizon": 4, "init_log_std": -1.0},
            **update,
        }
    )


class _StopError(Exception):
    pass


def test_fit_dynamics_fits_on_the_training_side_stops_on_the_holdout_and_draws_from_the_runs_generator(
    monkeypatch,
):
    """Mutants: ``holdout, train_set = data.split_by_episode(...)`` (fit on the holdout, stop on
    the training side); ``fit_ensemble(ensemble, data, ...)`` (the holdout fitted too); and
    ``fit_ensemble(..., torch.Generator(), ...)`` (the seed never reaches the fit). One episode
    of 10 rows with holdout_fraction 0.2 is split by time: rows 0-7 to fit, rows 8 and 9 held out."""
    obs = np.stack([np.arange(10, dtype=np.float32), np.zeros(10, np.float32)], axis=1)
    data = Dataset.from_columns(
        "point",
        {"obs": obs, "actions": np.zeros((10, 2)), "rewards": np.zeros(10), "next_obs": obs + 1},
    )
    seen = {}

    def fake_fit(ensemble, train_set, holdout, cfg, gen, on_epoch=None):
        seen.update(train=train_set.obs[:, 0].tolist(), hold=holdout.obs[:, 0].tolist(), gen=gen)
        raise _StopError

    monkeypatch.setattr(trainer, "fit_ensemble", fake_fit)
    cfg = TrainConfig(name="t", task="point", ensemble={"members": 2, "hidden": [4], "holdout_fraction": 0.2})
    gen = torch.Generator().manual_seed(3)
    with pytest.raises(_StopError):
        trainer.fit_dynamics(
            cfg, get_task("point"), data, gen, torch.device("cpu"), None, Reporter(enabled=False)
        )
    assert seen["train"] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert seen["hold"] == [8, 9]
    assert seen["gen"] is gen


def test_training_seeds_torch_and_its_generator_with_the_configs_seed(tmp_path, monkeypatch):
    """Mutants: ``gen = torch.Generator(device=device).manual_seed(0)`` (every run draws the
    same minibatches, imagined rollouts and BC batches whatever ``seed`` says; the networks still
    differ by the global seed, so the same-seed test cannot tell) and ``torch.manual_seed`` dropped."""
    seen = {}

    def first_stage(cfg, task, data, gen, device, init_ensemble, reporter):
        seen.update(gen=gen.initial_seed(), torch=torch.initial_seed())
        raise _StopError

    monkeypatch.setattr(trainer, "fit_dynamics", first_stage)
    torch.manual_seed(123)
    with pytest.raises(_StopError):
        trainer.train(_tiny_cfg(seed=5), _two_deployments(), tmp_path / "out")
    assert seen == {"gen": 5, "torch": 5}


def test_each_stage_gets_its_data_and_the_report_describes_all_of_it(tmp_path, monkeypatch):
    """One real (tiny) training on two deployments, with every stage's input recorded.
    Mutants: the ensemble fitted on the latest deployment only; BC on all data (``bc_data =
    data`` in ``_train``); the model env (start states, penalty) built on the behavior data; the
    behavior anchor on all data; ``run_trpo`` without the BC policy; the report's ``deployments``,
    ``behavior_return_mean`` or ``disagreement.behavior`` of the behavior data, ``bc.transitions``
    of all data; the manifests' ``data_digests`` of the behavior data; BC built with ``high, low``
    (the point task's box [-1, 1] then exported as low 1, high -1)."""
    data = _two_deployments()
    latest_rows = list(range(8, 14))
    seen: dict = {}

    def spy(name):
        real = getattr(trainer, name)

        def call(*args, **kwargs):
            out = real(*args, **kwargs)
            seen[name] = (args, kwargs, out)
            return out

        monkeypatch.setattr(trainer, name, call)

    for name in ("fit_dynamics", "clone_behavior", "run_trpo"):
        spy(name)
    result = trainer.train(_tiny_cfg(imagination={"start_states": "dataset"}), data, tmp_path / "out")

    fit_args = seen["fit_dynamics"][0]
    assert fit_args[2].obs[:, 0].tolist() == list(range(14))  # all data so far
    bc_args, _, (bc, _) = seen["clone_behavior"]
    assert bc_args[1].obs[:, 0].tolist() == latest_rows  # the latest deployment
    (policy, env, _, _, bc_policy, _), trpo_kwargs, _ = seen["run_trpo"]
    assert bc_policy is bc
    assert env.start_pool[:, 0].tolist() == list(range(14))  # imagination starts from all states
    anchor = trpo_kwargs["anchor"]
    assert anchor.obs[:, 0].tolist() == latest_rows

    report = result.report
    assert report["data"]["transitions"] == 14 and report["data"]["episodes"] == 4
    assert report["data"]["deployments"] == [1, 2]
    assert report["data"]["behavior_return_mean"] == pytest.approx(4.5)
    assert report["bc"]["transitions"] == 6
    # the behavior disagreement: std across the saved ensemble's 2 members (ddof 1), mean over
    # D, mean over deployment 2's 6 rows
    ens = trainer.load_ensemble(tmp_path / "out" / "ensemble.pt", torch.device("cpu"))
    with torch.no_grad():
        z = ens.normalized_deltas(
            torch.as_tensor(data.obs[latest_rows]), torch.as_tensor(data.actions[latest_rows])
        ).numpy()
    assert report["disagreement"]["behavior"] == pytest.approx(float(z.std(axis=0, ddof=1).mean()), rel=1e-5)
    for art in (tmp_path / "out", tmp_path / "out" / "bc"):
        manifest = json.loads((art / "manifest.json").read_text())
        assert manifest["data_digests"] == [data.digest()] == [report["data"]["digest"]]
        assert (manifest["action_low"], manifest["action_high"]) == ([-1.0, -1.0], [1.0, 1.0])


def test_training_task_accepts_an_alias_or_an_unknown_task_in_the_data():
    """Mutant: the data's task compared by its raw name, not its registered one. Data written
    as 'half-cheetah' is HalfCheetah's; data of a task this install does not know can only be
    checked by size (docstring of ``_known_task_name``)."""
    assert trainer.training_task("halfcheetah", "half-cheetah").name == "halfcheetah"
    assert trainer.training_task("point", "my_lab_robot").name == "point"


def test_behavior_disagreement_reads_evenly_spaced_rows_not_the_first_ones():
    """Mutant: ``np.arange(min(len(behavior), rows))`` for ``evenly_spaced`` (the first rows:
    deployment 1's states when the behavior data is all of it). A one-layer ensemble whose
    member 1 predicts (x0, x0) and member 0 predicts 0 disagrees by |x0| / sqrt(2). Rows x0 = 0,
    2, 4, 6, 8 read 2 at a time: the first and the last, 0 and 8 / sqrt(2) (not 0 and 2 / sqrt(2))."""
    ens = DynamicsEnsemble(2, 2, members=2, hidden=())
    with torch.no_grad():
        ens.layers[0].weight.zero_()
        ens.layers[0].bias.zero_()
        ens.layers[0].weight[1, 0, :] = 1.0
    obs = np.stack([np.arange(0, 10, 2, dtype=np.float32), np.ones(5, np.float32)], axis=1)
    data = Dataset.from_columns(
        "point", {"obs": obs, "actions": np.zeros((5, 2)), "rewards": np.zeros(5), "next_obs": obs}
    )
    got = trainer.behavior_disagreement(ens, data, rows=2)
    np.testing.assert_allclose(got.numpy(), [0.0, 8.0 / np.sqrt(2.0)], rtol=1e-6)


def test_a_saved_ensemble_of_other_members_or_widths_is_refused(tmp_path):
    """Mutant: ``want[:2] != have[:2]`` (only the sizes of the task compared: a saved ensemble of
    2 members and width 16 would be re-fitted under a config of 3 members or width 8, and the
    report would describe another ensemble than the config asks for)."""
    from bremen_robot.errors import ArtifactError

    ens = DynamicsEnsemble(2, 2, members=2, hidden=(16,))
    trainer.save_ensemble(ens, tmp_path / "ensemble.pt")
    point, cpu = get_task("point"), torch.device("cpu")
    for members, hidden in ((3, [16]), (2, [8])):
        cfg = TrainConfig(name="t", task="point", ensemble={"members": members, "hidden": hidden})
        with pytest.raises(ArtifactError) as info:
            trainer._init_ensemble(cfg, point, cpu, tmp_path / "ensemble.pt")
        assert str(info.value) == (
            f"ensemble '{tmp_path / 'ensemble.pt'}' has shape (2, 2, 2, (16,)) but the config needs "
            f"(2, 2, {members}, ({hidden[0]},)); drop --init-ensemble"
        )


def test_the_reports_dataset_disagreement_reads_evenly_spaced_rows_of_all_deployments(tmp_path):
    """Mutant: ``torch.arange(min(len(data), 4096))`` for ``spread_rows`` (the first 4,096 rows:
    only deployment 1's when the data are merged in deployment order). 8,192 rows: deployment 1
    near the origin, deployment 2 at x0 = 50. The figure is the saved ensemble's disagreement
    (std across members, ddof 1, mean over D) averaged over rows 0, 2, ..., i.e.
    ``linspace(0, 8191, 4096)`` rounded down: half of them deployment 2's."""
    n = 8192
    rng = np.random.default_rng(0)
    obs = rng.normal(0, 0.1, size=(n, 2)).astype(np.float32)
    obs[n // 2 :, 0] += 50.0
    actions = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    data = Dataset.from_columns(
        "point",
        {
            "obs": obs,
            "actions": actions,
            "rewards": np.zeros(n),
            "next_obs": obs + 0.1 * actions,
            "episode_ids": np.arange(n) // 64,
            "deployment_ids": np.repeat([1, 2], n // 2),
        },
    )
    cfg = _tiny_cfg(ensemble={"members": 2, "hidden": [8], "max_epochs": 1, "batch_size": 1024})
    report = trainer.train(cfg, data, tmp_path / "out").report
    rows = np.linspace(0, n - 1, 4096).astype(np.int64)
    assert (rows >= n // 2).sum() == 2048
    ens = trainer.load_ensemble(tmp_path / "out" / "ensemble.pt", torch.device("cpu"))
    with torch.no_grad():
        z = ens.normalized_deltas(torch.as_tensor(obs[rows]), torch.as_tensor(actions[rows])).numpy()
    assert report["disagreement"]["dataset"] == pytest.approx(float(z.std(axis=0, ddof=1).mean()), rel=1e-5)


def test_clone_behavior_trains_on_the_runs_generator(monkeypatch):
    """Mutant: ``train_bc(bc, bc_data, cfg.bc, torch.Generator(), ...)`` (BC's minibatches the
    same whatever the seed)."""
    seen = {}

    def fake_train_bc(policy, data, cfg, generator, on_step=None):
        seen.update(gen=generator, rows=data.obs[:, 0].tolist())
        return [0.25]

    monkeypatch.setattr(trainer, "train_bc", fake_train_bc)
    gen = torch.Generator().manual_seed(9)
    cfg = TrainConfig(name="t", task="point", bc={"hidden": [4]})
    _, losses = trainer.clone_behavior(cfg, _two_deployments(), get_task("point"), gen, torch.device("cpu"))
    assert seen["gen"] is gen and losses == [0.25]
    assert seen["rows"] == list(range(14))


def test_selection_scores_on_the_behavior_data_against_the_deployed_policy(tmp_path, monkeypatch):
    """Mutants: ``offline_selection`` handed all data's states (``data.obs``) or all data's actions
    for the behavior data, and the deployed policy never loaded (``ref = None``: every snapshot
    then scored without the reference the campaign asked for). The deployed policy is the BC
    artifact of a first training; the second one must load it and score on deployment 2's rows."""
    from bremen_robot import selection as selection_module

    data = _two_deployments()
    trainer.train(_tiny_cfg(), data, tmp_path / "first")
    seen: dict = {}
    real_load, real_select = trainer.load_deployed, trainer.offline_selection

    def load(path, task):
        seen["path"] = path
        seen["deployed"] = real_load(path, task)
        return seen["deployed"]

    def select(cfg, horizon, ensemble, task, behavior_obs, snapshots, deployed, gen, behavior_actions=None):
        seen.update(obs=behavior_obs[:, 0].tolist(), actions=behavior_actions[:, 0].tolist(), ref=deployed)
        return real_select(
            cfg, horizon, ensemble, task, behavior_obs, snapshots, deployed, gen, behavior_actions
        )

    monkeypatch.setattr(trainer, "load_deployed", load)
    monkeypatch.setattr(trainer, "offline_selection", select)
    cfg = _tiny_cfg(selection={"enabled": True, "snapshot_every": 1, "start_states": 4, "horizon": 4})
    report = trainer.train(cfg, data, tmp_path / "second", deployed=tmp_path / "first" / "bc").report
    assert seen["path"] == tmp_path / "first" / "bc"
    assert seen["ref"] is seen["deployed"] and isinstance(seen["ref"], selection_module.MeanActionPolicy)
    assert seen["obs"] == list(range(8, 14))
    assert seen["actions"] == pytest.approx([0.05 * r - 0.3 for r in range(8, 14)])
    assert report["selection"]["deployed_estimate"] is not None
