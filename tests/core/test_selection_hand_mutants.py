"""Candidate selection (bremen_robot/selection.py): cases a hand mutation read found untested.

Each test names the one-line change it catches (docs/testing.md, "Mutations the suite catches").
Expectations are worked by hand from the fake ensemble of tests/core/test_selection.py: member e
moves x by ``forward[e]`` per unit of positive action, and the reward is the displacement.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bremen_robot.config.train import SelectionConfig
from bremen_robot.imagination.model_env import ModelEnv
from bremen_robot.selection import (
    Selection,
    Snapshot,
    SnapshotScore,
    add_snapshot_figures,
    choose,
    lower_bound,
    member_returns,
    offline_selection,
    pick_among,
    pick_start_states,
    select_offline,
    select_with_twin,
    twin_candidate,
)
from tests.core.test_selection import ConstantPolicy, _fake_ensemble, _line_task


def test_a_table_without_members_is_refused_under_the_quantile_rule_too() -> None:
    """Mutant: the ``shape[1] == 0`` check dropped. ``min`` would still raise a ValueError of its
    own, but ``np.quantile`` over no members raises an IndexError that names nothing."""
    with pytest.raises(ValueError, match=r"must be \(snapshots, members\), got shape \(2, 0\)"):
        lower_bound(np.zeros((2, 0)), "quantile", 0.2)
    with pytest.raises(ValueError, match=r"must be \(snapshots, members\), got shape \(2, 0\)"):
        lower_bound(np.zeros((2, 0)), "min")


def test_the_quantile_rules_default_is_the_configs_0_2() -> None:
    """Mutant: ``lower_bound``'s default quantile 0.5. Members 0, 10, 20, 30, 40, 50: the linear
    0.2 quantile sits at position 0.2 x 5 = 1, the value 10 (0.5 would give 25)."""
    per_member = np.array([[0.0, 10.0, 20.0, 30.0, 40.0, 50.0]])
    assert lower_bound(per_member, "quantile").tolist() == [10.0]
    assert SelectionConfig().quantile == 0.2


def test_equal_estimates_go_to_the_earliest_snapshot() -> None:
    """Mutant: ``choose`` keeps the last of equal estimates. docs/algorithm.md: ``best`` takes
    the highest score, ties to the earliest (nearest the data)."""
    assert choose([3.0, 7.0, 7.0, 1.0, 7.0]) == 1
    rows = [
        SnapshotScore("bc", 0, [5.0], 5.0),
        SnapshotScore("trpo-0010", 10, [8.0], 8.0),
        SnapshotScore("trpo-0020", 20, [8.0], 8.0),
    ]
    assert select_offline(rows, None, 0.0) == (1, True)
    assert select_offline(rows, 9.0, 0.0) == (1, False)  # none beats 9: the best, earliest of the tie
    assert pick_among(rows, [0, 1, 2], "best", 4.0) == 1
    for r in rows:
        r.twin = 100.0
    assert select_with_twin(rows, 4.0, 100.0, 0.0, 0.1) == (1, [])


def test_choosing_among_no_snapshots_says_so() -> None:
    """Mutant: ``choose``'s empty check dropped (numpy's own message names no snapshot)."""
    with pytest.raises(ValueError, match="no snapshots to choose from"):
        choose([])


def test_member_returns_puts_back_a_member_that_was_pinned_before() -> None:
    """Mutant: the ``finally`` sets ``fixed_member = None`` instead of the saved value. An env
    pinned to member 1 (forward 3) must still roll member 1 afterwards: 5 steps of a = 1 give
    x = 3, 6, ... and a return of 15, against member 0's 5."""
    ens = _fake_ensemble(forward=[1.0, 3.0], backward=[0.0, 0.0])
    gen = torch.Generator().manual_seed(0)
    env = ModelEnv(ens, _line_task(), gen, np.zeros((1, 1), np.float32), False, fixed_member=1)
    out = member_returns(env, ConstantPolicy(1.0), torch.zeros(1, 1), 5, gen)
    assert out[:, 0].tolist() == [5.0, 15.0]
    assert env.fixed_member == 1


def test_asking_for_every_row_draws_each_row_once() -> None:
    """Mutant: ``n <= len(obs)`` as ``n < len(obs)``: asking for as many start states as there
    are rows would draw with replacement, repeating some rows and leaving others out."""
    obs = np.arange(12, dtype=np.float32)[:, None] * 2.0
    for seed in range(5):
        picked = pick_start_states(obs, 12, torch.Generator().manual_seed(seed))
        assert sorted(picked[:, 0].tolist()) == [2.0 * i for i in range(12)]


def test_a_deployed_twin_score_that_blew_up_is_named_no_evidence() -> None:
    """Mutant: the note's finite check looks at the snapshot's twin score only. With the
    deployed policy's twin return NaN every snapshot is vetoed, and the note must say the run is
    no evidence, not that the snapshot was clearly below NaN."""
    rows = [SnapshotScore("bc", 0, [5.0], 5.0, twin=50.0), SnapshotScore("trpo-0010", 10, [2.0], 2.0)]
    best, notes = select_with_twin(rows, 1.0, float("nan"), 0.0, 0.1)
    assert best is None
    assert notes == ["bc: twin 50.0 against the deployed policy's nan is no evidence (not a finite number)"]


def test_the_twin_never_passes_a_snapshot_that_beats_the_deployed_policy_only_without_the_margin() -> None:
    """Mutant: ``twin_candidate`` drops the margin. Deployed estimate 100, margin 0.05: the bar
    is 105. trpo-0010 (104) beats 100 but not 105; the twin passes everything, so under
    ``earliest`` the proposal must be trpo-0020 (120), never trpo-0010."""
    rows = [
        SnapshotScore("bc", 0, [90.0], 90.0, twin=1000.0),
        SnapshotScore("trpo-0010", 10, [104.0], 104.0, twin=1000.0),
        SnapshotScore("trpo-0020", 20, [120.0], 120.0, twin=1000.0),
    ]
    assert [twin_candidate(r, 100.0, 0.05, None) for r in rows] == [False, False, True]
    assert select_with_twin(rows, 100.0, 1000.0, 0.05, 0.1, pick="earliest") == (2, [])
    assert twin_candidate(rows[1], 100.0, 0.0, None)  # without the margin it would be one


def test_snapshot_figures_keep_the_chosen_ones_and_skip_rows_below_the_margins_bar() -> None:
    """Mutants: ``elif`` as ``if`` (the chosen row's figures recomputed and overwritten) and the
    margin dropped from the candidates (figures for a row that cannot be proposed). Deployed
    estimate 10, margin 0.1: the bar is 11. bc (12, chosen) keeps its given figures; trpo-0010
    (10.5) is under the bar; trpo-0020 (13) gets ``figures_of``'s."""
    rows = [
        SnapshotScore("bc", 0, [12.0], 12.0, chosen=True),
        SnapshotScore("trpo-0010", 10, [10.5], 10.5),
        SnapshotScore("trpo-0020", 20, [13.0], 13.0),
    ]
    sel = Selection("min", 0.2, 4, 5, rows, "bc", deployed_estimate=10.0, margin=0.1)
    snaps = [Snapshot(r.name, r.iteration, ConstantPolicy(float(i))) for i, r in enumerate(rows)]  # type: ignore[arg-type]
    asked: list[float] = []

    def figures_of(policy: ConstantPolicy) -> dict[str, float]:
        asked.append(policy.action)
        return {"kl_to_bc": 100.0 + policy.action}

    add_snapshot_figures(sel, snaps, {"kl_to_bc": 0.5}, figures_of)  # type: ignore[arg-type]
    assert [r.figures for r in rows] == [{"kl_to_bc": 0.5}, None, {"kl_to_bc": 102.0}]
    assert asked == [2.0]


def test_the_deployed_policy_is_scored_by_the_same_quantile_rule_as_the_snapshots() -> None:
    """Mutants: the deployed estimate from ``lower_bound``'s default rule (min), or the mean over
    members. Members move x by 1, 2 and 6 per unit of action; a = 0.25 for 10 steps returns 2.5,
    5 and 15. The median (quantile 0.5) is 5; the minimum would be 2.5, the mean 7.5. The
    snapshot (a = 0.4: 4, 8 and 24, median 8) beats 5 in every case."""
    ens = _fake_ensemble(forward=[1.0, 2.0, 6.0], backward=[0.0, 0.0, 0.0])
    cfg = SelectionConfig(enabled=True, start_states=2, horizon=10, rule="quantile", quantile=0.5)
    snaps = [Snapshot("bc", 0, ConstantPolicy(0.4))]  # type: ignore[arg-type]
    obs = np.zeros((3, 1), np.float32)
    sel, _ = offline_selection(
        cfg, 99, ens, _line_task(), obs, snaps, ConstantPolicy(0.25), torch.Generator()
    )
    assert sel.deployed_estimate == pytest.approx(5.0)
    assert sel.snapshots[0].estimate == pytest.approx(8.0)


def test_the_recorded_selection_carries_the_margin_it_applied() -> None:
    """Mutant: ``Selection(margin=0.0)`` instead of ``cfg.margin``. report.json's selection is
    what ``bremen review`` reads the bar from (and what :func:`add_snapshot_figures` uses):
    with margin 0.5 it must say 0.5. Members all move x by 1: bc (a = 0.2) returns 2 over 10
    steps, the deployed policy (a = 0.1) 1, so the bar is 1 + 0.5 x 1 = 1.5 and bc clears it."""
    ens = _fake_ensemble(forward=[1.0, 1.0], backward=[0.0, 0.0])
    cfg = SelectionConfig(enabled=True, start_states=2, horizon=10, margin=0.5)
    snaps = [Snapshot("bc", 0, ConstantPolicy(0.2))]  # type: ignore[arg-type]
    obs = np.zeros((3, 1), np.float32)
    sel, _ = offline_selection(cfg, 99, ens, _line_task(), obs, snaps, ConstantPolicy(0.1), torch.Generator())
    assert (sel.margin, sel.to_dict()["margin"]) == (0.5, 0.5)
    assert sel.deployed_estimate == pytest.approx(1.0) and sel.beats_deployed


def test_a_deployed_policy_with_the_tasks_observations_but_other_actions_is_refused(tmp_path) -> None:
    """Mutant: ``load_deployed``'s dimension check joined by ``and``. A policy with the line
    task's 1 observation but 2 actions must be refused, not scored."""
    from bremen_robot.errors import BremenError
    from bremen_robot.policy.artifact import export_policy
    from bremen_robot.policy.gaussian import GaussianPolicy
    from bremen_robot.selection import load_deployed

    names = dict(robot="r", task="line", observation_names=["x"], control_rate_hz=10.0)
    export_policy(
        GaussianPolicy(1, [-1.0, -1.0], [1.0, 1.0], (4,)), tmp_path / "two", action_names=["a", "b"], **names
    )  # type: ignore[arg-type]
    with pytest.raises(BremenError, match="has 1 observations and 2 actions, task 'line' has 1 and 1"):
        load_deployed(tmp_path / "two", _line_task())
    export_policy(GaussianPolicy(1, [-1.0], [1.0], (4,)), tmp_path / "one", action_names=["a"], **names)  # type: ignore[arg-type]
    assert load_deployed(tmp_path / "one", _line_task()).module is not None


def test_bc_is_exported_as_a_bc_artifact_and_the_trpo_snapshots_as_bremen(tmp_path) -> None:
    """Mutant: every snapshot exported with ``kind="bremen"``. The manifest's kind tells a
    reviewer that the proposal is the behavior clone, not a TRPO policy."""
    import json

    from bremen_robot.policy.gaussian import GaussianPolicy
    from bremen_robot.selection import export_snapshots

    rows = [SnapshotScore("bc", 0, [1.0], 1.0), SnapshotScore("trpo-0010", 10, [2.0], 2.0, chosen=True)]
    sel = Selection("min", 0.2, 4, 5, rows, "trpo-0010")
    snaps = [Snapshot(r.name, r.iteration, GaussianPolicy(1, [-1.0], [1.0], (4,))) for r in rows]
    common = dict(robot="r", task="line", observation_names=["x"], action_names=["a"], control_rate_hz=10.0)
    export_snapshots(sel, snaps, tmp_path, **common)
    manifests = [json.loads((tmp_path / n / "manifest.json").read_text()) for n in ("bc", "trpo-0010")]
    assert [m["kind"] for m in manifests] == ["bc", "bremen"]
    assert [m["metrics"]["selection_estimate"] for m in manifests] == [1.0, 2.0]
    assert [m["metrics"]["trpo_iterations"] for m in manifests] == [0, 10]


def test_shifts_are_refused_when_the_first_snapshot_is_not_bc() -> None:
    """Mutant: ``snapshot_shifts``' BC-first check dropped: shifts would be measured from a TRPO
    snapshot, and BC's would read as a shift of its own."""
    from types import SimpleNamespace

    from bremen_robot.selection import snapshot_shifts

    snaps = [Snapshot("trpo-0010", 10, ConstantPolicy(0.5)), Snapshot("bc", 0, ConstantPolicy(0.0))]  # type: ignore[arg-type]
    task = SimpleNamespace(action_low=[-1.0], action_high=[1.0])
    obs, acts = np.zeros((4, 1), np.float32), np.array([[0.1], [-0.1], [0.1], [-0.1]])
    with pytest.raises(ValueError, match="the first snapshot must be BC"):
        snapshot_shifts(snaps, obs, acts, task, "cpu")  # type: ignore[arg-type]
