"""The campaign's selection decision (bremen_robot/campaign/selection.py): cases a hand mutation
read found untested. Each test names the one-line change it catches (docs/testing.md,
"Mutations the suite catches"). Decisions are made on hand-written training reports, with the
twin replaced by a table of scores, so every expectation is worked out from the numbers here.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import bremen_robot.campaign.selection as camp_sel
from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.campaign.selection import propose
from tests.campaign.test_selection_campaign import _hand_report, selecting_campaign


class FakeTwin:
    """Stands in for ``_act`` and ``twin_score``: each policy is named by its artifact folder
    (``random`` for deployment 1's uniform policy) and scores ``scores[name]`` in the twin."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.calls: list[tuple[str, str, int, Any]] = []  # (policy, engine, seed, randomization)

    def act(self, artifact: Path | None, task: str, seed: int) -> str:
        return "random" if artifact is None else Path(artifact).name

    def score(
        self, act: str, robot: str, task: str, engine: str, episodes: int, seed: int, rand: Any
    ) -> tuple[float, int]:
        self.calls.append((act, engine, seed, rand))
        return self.scores[act], 1


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, twin: FakeTwin, **policy: Any) -> Any:
    """A twin campaign whose twin is ``twin``."""
    monkeypatch.setattr(camp_sel, "_act", twin.act)
    monkeypatch.setattr(camp_sel, "twin_score", twin.score)
    return load_campaign_config(selecting_campaign(tmp_path, twin=True, **policy))


def _decide(cfg: Any, tmp_path: Path, report: dict, k: int = 2) -> dict:
    """Deployment ``k``'s decision on ``report``, the deployed policy's artifact ``deployed``."""
    train_dir = tmp_path / "ws" / f"d{k}" / "train"
    train_dir.mkdir(parents=True)
    (train_dir / "report.json").write_text(json.dumps(report))
    record = propose(cfg, k, train_dir, tmp_path / "deployed", "tiny", "tiny", lambda m: None).record
    assert record is not None
    return record


def _report(estimates: dict[str, float], chosen: str, deployed: float, **sel: Any) -> dict:
    report = _hand_report(estimates, chosen)
    report["selection"] |= {"deployed_estimate": deployed, **sel}
    return report


def test_the_twin_runs_the_deployed_artifact_and_applies_the_campaigns_tolerance(tmp_path, monkeypatch):
    """Mutants: the deployed policy's twin run on the random policy instead of its artifact; the
    tolerance 0 instead of ``twin_tolerance``; the record's ``deployed_estimate`` left out.
    trpo-0001 (5) beats the deployed estimate 3 offline, bc (1) does not, so only trpo-0001 and
    the deployed policy run. Twin 95 against 100 with tolerance 0.1: the bar is 100 - 10 = 90,
    so trpo-0001 is not vetoed (with tolerance 0 it would be; against the random policy's 0 the
    record would say 0)."""
    twin = FakeTwin({"deployed": 100.0, "random": 0.0, "trpo-0001": 95.0})
    report = _report({"bc": 1.0, "trpo-0001": 5.0}, "trpo-0001", 3.0)
    cfg = _config(tmp_path, monkeypatch, twin, data_engine="mujoco", twin_tolerance=0.1)
    rec = _decide(cfg, tmp_path, report)
    assert [c[0] for c in twin.calls] == ["deployed", "trpo-0001"]
    assert (rec["twin"]["deployed"], rec["twin"]["tolerance"], rec["twin"]["vetoed"]) == (100.0, 0.1, [])
    assert (rec["proposed"], rec["keep_deployed"], rec["deployed_estimate"]) == ("trpo-0001", False, 3.0)


def test_a_warned_proposal_stays_within_the_action_shift_limit(tmp_path, monkeypatch):
    """Mutant: the ``propose_best_with_warning`` fallback without ``max_action_shift``. Limit 0.5:
    trpo-0001 (9, shift 0.9) is beyond it; trpo-0002 (4, shift 0.3) beats the deployed 3 but the
    twin vetoes it (10 against 100). The warned proposal is the best *eligible* offline
    snapshot, trpo-0002, never trpo-0001."""
    twin = FakeTwin({"deployed": 100.0, "trpo-0002": 10.0})
    report = _report({"bc": 1.0, "trpo-0001": 9.0, "trpo-0002": 4.0}, "trpo-0002", 3.0, max_action_shift=0.5)
    for row, shift in zip(report["selection"]["snapshots"], [0.0, 0.9, 0.3], strict=True):
        row["shift"] = shift
    cfg = _config(
        tmp_path, monkeypatch, twin, data_engine="mujoco", when_none_beats="propose_best_with_warning"
    )
    rec = _decide(cfg, tmp_path, report)
    assert [c[0] for c in twin.calls] == ["deployed", "trpo-0002"]
    assert rec["proposed"] == "trpo-0002" and rec["warning"].startswith("trpo-0002 is proposed although")


def test_one_decisions_twin_runs_share_a_seed_and_each_deployment_draws_its_own(tmp_path, monkeypatch):
    """Mutant: the twin's seed without the deployment number. Within one decision the deployed
    policy and the snapshots meet the same randomized episodes (a like-for-like comparison);
    deployment 3 must not replay deployment 2's episodes."""
    twin = FakeTwin({"deployed": 100.0, "trpo-0001": 99.0})
    report = _report({"bc": 1.0, "trpo-0001": 5.0}, "trpo-0001", 3.0)
    cfg = _config(tmp_path, monkeypatch, twin, data_engine="mujoco")
    _decide(cfg, tmp_path, report, k=2)
    _decide(cfg, tmp_path, report, k=3)
    seeds = [c[2] for c in twin.calls]
    assert len(seeds) == 4 and seeds[0] == seeds[1] and seeds[2] == seeds[3] and seeds[0] != seeds[2]


def test_the_twin_draws_from_the_configured_randomization_and_the_requested_engine(tmp_path, monkeypatch):
    """Mutants: the randomization file ignored (the default used), and the requested twin engine
    ignored. Data from hardware (``none``) may use either engine: pybullet asked, pybullet run
    (the default would be mujoco)."""
    from sim.randomization import DEFAULT_RANDOMIZATION, load_randomization

    strong = Path(__file__).resolve().parents[2] / "configs" / "sim" / "randomization-strong.yaml"
    assert load_randomization(strong) != DEFAULT_RANDOMIZATION
    twin = FakeTwin({"deployed": 100.0, "trpo-0001": 99.0})
    report = _report({"bc": 1.0, "trpo-0001": 5.0}, "trpo-0001", 3.0)
    cfg = _config(
        tmp_path,
        monkeypatch,
        twin,
        data_engine="none",
        twin_engine="pybullet",
        twin_randomization=str(strong),
    )
    rec = _decide(cfg, tmp_path, report)
    assert {c[1] for c in twin.calls} == {"pybullet"} and rec["twin"]["engine"] == "pybullet"
    assert all(c[3] == load_randomization(strong) for c in twin.calls)


def test_twin_score_counts_every_simulated_step_not_the_episodes(monkeypatch):
    """Mutant: ``len(res.lengths)`` for the steps. Three twin episodes of 10, 20 and 5 steps
    are 35 simulated steps (``d<k>/selection.json``'s ``twin_steps``), not 3."""
    import sim.sim2real

    seen: list[tuple] = []

    def fake_evaluate(act, robot, task, engine, episodes, seed, rand, label=None):
        seen.append((robot, task, engine, episodes, seed, label))
        return SimpleNamespace(mean=7.5, lengths=[10, 20, 5])

    monkeypatch.setattr(sim.sim2real, "evaluate", fake_evaluate)
    assert camp_sel.twin_score(lambda o: o, "r", "t", "pybullet", 3, 42, None) == (7.5, 35)
    assert seen == [("r", "t", "pybullet", 3, 42, "twin")]


def test_deployment_ones_twin_reference_is_the_uniform_random_policy():
    """Mutant: ``_act`` loads an artifact for deployment 1 too (there is none: the random policy
    collected). Its actions are the uniform policy's with the twin's seed, inside the box."""
    from bremen_robot.data.real_rollout import uniform_policy
    from bremen_robot.tasks import get_task

    task = get_task("point")
    act = camp_sel._act(None, "point", 7)
    same = uniform_policy(task, np.random.default_rng(7))
    obs = np.zeros(task.obs_dim, np.float32)
    for _ in range(3):
        a = act(obs)
        np.testing.assert_array_equal(a, same(obs))
        assert np.all(a >= np.asarray(task.action_low)) and np.all(a <= np.asarray(task.action_high))


def test_a_training_redone_with_the_same_choice_and_estimates_is_decided_again(tmp_path):
    """Mutant: the record's training digest not written. A redone training whose chosen snapshot
    and estimates happen to match the old one's (here only the shifts differ) must not reuse the
    old decision: the older comparison of the choice and the estimates cannot tell them apart."""
    cfg = load_campaign_config(selecting_campaign(tmp_path))
    train_dir = tmp_path / "ws" / "d1" / "train"
    train_dir.mkdir(parents=True)
    messages: list[str] = []
    report = _hand_report({"bc": 1.0, "trpo-0002": 5.0}, "trpo-0002")
    (train_dir / "report.json").write_text(json.dumps(report))
    propose(cfg, 1, train_dir, None, "tiny", "tiny", messages.append)
    report["selection"]["snapshots"][1]["shift"] = 0.4  # trained again: same choice, other table
    (train_dir / "report.json").write_text(json.dumps(report))
    rec = propose(cfg, 1, train_dir, None, "tiny", "tiny", messages.append).record
    assert (train_dir.parent / "selection.json.other-training-1").is_file()
    assert any("was for another training (kept at" in m for m in messages)
    assert rec is not None and [r["shift"] for r in rec["table"]] == [0.0, 0.4]


def test_a_decision_matches_its_training_whatever_the_order_of_the_reports_keys(tmp_path):
    """Mutant: the training digest without ``sort_keys``. The registry stores a report with its
    keys sorted (registry/jsonio.py), so the selection it hands back lists ``beats_deployed``
    before ``snapshots``; ``registry/evidence.py`` asks :func:`decided_on` whether
    ``d<k>/selection.json`` was decided on that same training, and the answer must be yes."""
    from bremen_robot.campaign.selection import decided_on

    cfg = load_campaign_config(selecting_campaign(tmp_path))
    train_dir = tmp_path / "ws" / "d1" / "train"
    train_dir.mkdir(parents=True)
    report = _hand_report({"bc": 1.0, "trpo-0002": 5.0}, "trpo-0002")
    (train_dir / "report.json").write_text(json.dumps(report))
    record = propose(cfg, 1, train_dir, None, "tiny", "tiny", lambda m: None).record
    assert record is not None
    reordered = dict(reversed(list(report["selection"].items())))
    assert list(reordered) != list(report["selection"])
    assert decided_on(record, reordered)
    assert not decided_on(record, {**reordered, "chosen": "bc"})
