"""Candidate selection maths (bremen_robot/selection.py) on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bremen_robot.errors import BremenError
from bremen_robot.imagination.model_env import ModelEnv
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.selection import (
    SnapshotScore,
    action_shift,
    beats,
    clearly_below,
    first_segment_returns,
    lower_bound,
    member_returns,
    pick_among,
    pick_start_states,
    score_snapshots,
    select_offline,
    select_with_twin,
    twin_engine,
    twin_survivors,
)
from bremen_robot.tasks.base import Task


def _line_task(terminate_above: float | None = None) -> Task:
    """1-D task: the reward is the step's displacement; optionally ends once x passes a bound."""

    def reward(obs, act, nxt):
        return (nxt - obs)[..., 0]

    def terminated(obs, act, nxt):
        if terminate_above is None:
            return torch.zeros(nxt.shape[0], dtype=torch.bool)
        return nxt[..., 0] > terminate_above

    return Task(
        name="line",
        obs_names=("x",),
        action_names=("push",),
        action_low=(-1.0,),
        action_high=(1.0,),
        dt=0.1,
        max_episode_steps=100,
        reward_fn=reward,
        termination_fn=terminated,
    )


def _fake_ensemble(forward: list[float], backward: list[float]) -> DynamicsEnsemble:
    """Member e moves x by forward[e] * max(a, 0) + backward[e] * max(-a, 0) per step.

    Hidden layer of two ReLUs: relu(a) and relu(-a); the output layer weighs them per member.
    Normalizers are identity, so the numbers are the displacement itself.
    """
    E = len(forward)
    ens = DynamicsEnsemble(obs_dim=1, action_dim=1, members=E, hidden=[2])
    first, last = ens.linear_layers()
    with torch.no_grad():
        first.weight.zero_()
        first.bias.zero_()
        first.weight[:, 1, 0] = 1.0  # input (x, a): unit 0 = relu(a)
        first.weight[:, 1, 1] = -1.0  # unit 1 = relu(-a)
        last.bias.zero_()
        last.weight.zero_()
        last.weight[:, 0, 0] = torch.tensor(forward)
        last.weight[:, 1, 0] = torch.tensor(backward)
    return ens


class ConstantPolicy(torch.nn.Module):
    def __init__(self, action: float) -> None:
        super().__init__()
        self.action = action

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.full((obs.shape[0], 1), self.action)
        return mean, torch.full_like(mean, -1.0)


def test_first_segment_returns_stop_at_the_first_done():
    rewards = torch.tensor([[1.0, 1.0], [2.0, 2.0], [4.0, 4.0], [8.0, 8.0]])  # (T=4, B=2)
    dones = torch.tensor([[False, False], [True, False], [False, False], [True, True]])
    # column 0 ends at t=1 (1 + 2); the restart after it does not count. Column 1 runs through.
    assert first_segment_returns(rewards, dones).tolist() == [3.0, 15.0]


def test_lower_bound_min_and_quantile():
    per_member = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 10.0, 10.0, 10.0, 10.0]])
    assert lower_bound(per_member, "min").tolist() == [1.0, 0.0]
    # numpy's linear quantile at 0.25 of 5 sorted values is the 2nd value
    assert lower_bound(per_member, "quantile", 0.25).tolist() == [2.0, 10.0]
    with pytest.raises(ValueError, match="snapshots, members"):
        lower_bound(np.zeros(3))


def test_per_member_rollouts_and_rule_ignore_a_return_only_one_member_believes():
    """Snapshot 'back' acts negatively, which member 2 wildly over-rewards (10 per unit of
    action against the others' 0.8); 'fwd' acts positively, where all members agree (1 per unit). The mean
    across members prefers 'back'; the lower bound must pick 'fwd'."""
    ens = _fake_ensemble(forward=[1.0, 1.0, 1.0], backward=[0.8, 0.8, 10.0])
    task = _line_task()
    gen = torch.Generator().manual_seed(0)
    env = ModelEnv(ens, task, gen, start_states=np.zeros((4, 1), np.float32), use_reset_distribution=False)
    start = torch.zeros(4, 1)
    state_before = gen.get_state().clone()
    per_member = np.stack(
        [
            member_returns(env, ConstantPolicy(0.5), start, 10, gen).mean(dim=1).numpy(),
            # a = -0.5 moves x by relu(0.5) * backward[e] = +0.4, +0.4, +5 per step
            member_returns(env, ConstantPolicy(-0.5), start, 10, gen).mean(dim=1).numpy(),
        ]
    )  # (S=2, E=3)
    np.testing.assert_allclose(per_member, [[5.0, 5.0, 5.0], [4.0, 4.0, 50.0]], rtol=1e-5)
    assert torch.equal(gen.get_state(), state_before)  # deterministic, pinned: no draws
    assert env.fixed_member is None  # restored
    assert per_member.mean(axis=1).argmax() == 1  # the naive mean would pick the exploited one
    scores = score_snapshots(["fwd", "back"], [10, 20], per_member, "min", 0.2)
    best, ok = select_offline(scores, deployed_estimate=4.5, margin=0.0)
    assert scores[best].name == "fwd" and ok
    _, ok = select_offline(scores, deployed_estimate=6.0, margin=0.0)
    assert not ok  # nothing beats a deployed policy that scores 6


def test_termination_shortens_a_members_return():
    ens = _fake_ensemble(forward=[1.0, 3.0], backward=[0.0, 0.0])
    env = ModelEnv(
        ens,
        _line_task(terminate_above=2.5),
        torch.Generator().manual_seed(0),
        start_states=np.zeros((1, 1), np.float32),
        use_reset_distribution=False,
    )
    out = member_returns(env, ConstantPolicy(1.0), torch.zeros(1, 1), 10, torch.Generator())
    # member 0: x = 1, 2, 3 (ends at step 3: return 3); member 1: x = 3 (ends at once: return 3)
    assert out[:, 0].tolist() == [3.0, 3.0]


def test_fixed_member_out_of_range_is_refused():
    ens = _fake_ensemble([1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="not one of the 2 members"):
        ModelEnv(ens, _line_task(), torch.Generator(), np.zeros((1, 1), np.float32), False, fixed_member=2)


def test_start_states_are_real_rows_without_replacement():
    obs = np.arange(10, dtype=np.float32)[:, None] * 1.5
    picked = pick_start_states(obs, 6, torch.Generator().manual_seed(3))
    assert picked.shape == (6, 1)
    assert len(set(picked[:, 0].tolist())) == 6
    assert set(picked[:, 0].tolist()) <= set(obs[:, 0].tolist())
    again = pick_start_states(obs, 6, torch.Generator().manual_seed(3))
    assert torch.equal(picked, again)


def test_beats_and_twin_veto_thresholds():
    assert beats(10.0, None)
    assert beats(10.0, 9.0) and not beats(9.0, 9.0)
    assert not beats(10.5, 10.0, margin=0.1) and beats(11.5, 10.0, margin=0.1)
    # a negative reference: the margin still asks for more, -100 + 10 = -90
    assert not beats(-95.0, -100.0, margin=0.1) and beats(-89.0, -100.0, margin=0.1)
    # 10% of 2,000 is 200: 1,801 is within, 1,799 clearly below
    assert not clearly_below(1801.0, 2000.0, 0.1) and clearly_below(1799.0, 2000.0, 0.1)
    assert not clearly_below(1800.0, 2000.0, 0.1)  # exactly at the tolerance is not "clearly"
    # near zero the floor of 1 applies: 0.1 x 1
    assert not clearly_below(-0.05, 0.0, 0.1) and clearly_below(-0.2, 0.0, 0.1)
    assert twin_survivors({"a": 1900.0, "b": 1000.0, "c": 2500.0}, 2000.0, 0.1) == ["a", "c"]
    # a twin run that blew up is no evidence for a snapshot: vetoed, and so is everything
    # measured against a deployed score that blew up
    nan, inf = float("nan"), float("inf")
    assert twin_survivors({"a": nan, "b": inf, "c": -inf, "d": 2100.0}, 2000.0, 0.1) == ["d"]
    assert twin_survivors({"a": 1900.0, "b": 2500.0}, nan, 0.1) == []


def test_twin_engine_is_never_the_data_engine():
    assert twin_engine("mujoco") == "pybullet"
    assert twin_engine("pybullet") == "mujoco"
    assert twin_engine("mujoco", "pybullet") == "pybullet"
    with pytest.raises(BremenError, match="'mujoco' is the engine that collected the data"):
        twin_engine("mujoco", "mujoco")
    with pytest.raises(BremenError, match="no simulator twin"):
        twin_engine("isaac")
    assert twin_engine("none") == "mujoco"  # real hardware: either engine is a twin
    assert twin_engine("none", "pybullet") == "pybullet"
    with pytest.raises(BremenError, match="unknown twin engine 'gazebo'; use one of mujoco, pybullet"):
        twin_engine("none", "gazebo")
    with pytest.raises(BremenError, match="unknown twin engine 'gazebo'; use 'pybullet' or leave it unset"):
        twin_engine("mujoco", "gazebo")


def test_select_with_twin_vetoes_and_falls_back_to_next_best():
    rows = [
        SnapshotScore("bc", 0, [100.0], 100.0, twin=980.0),
        SnapshotScore("trpo-0010", 10, [300.0], 300.0, twin=950.0),
        SnapshotScore("trpo-0020", 20, [500.0], 500.0, twin=400.0),  # best offline, fails the twin
    ]
    best, notes = select_with_twin(
        rows, deployed_estimate=90.0, deployed_twin=1000.0, margin=0.0, tolerance=0.1
    )
    assert best == 1
    assert notes == ["trpo-0020: twin 400.0 is clearly below the deployed policy's 1000.0"]
    # nothing survives: the twin vetoes all that beat the deployed policy offline
    best, _ = select_with_twin(rows, deployed_estimate=200.0, deployed_twin=2000.0, margin=0.0, tolerance=0.1)
    assert best is None
    # the best offline snapshot's twin run blew up: it is vetoed and the report says why
    rows[2] = SnapshotScore("trpo-0020", 20, [500.0], 500.0, twin=float("nan"))
    best, notes = select_with_twin(rows, 90.0, 1000.0, margin=0.0, tolerance=0.1)
    assert best == 1
    assert notes == [
        "trpo-0020: twin nan against the deployed policy's 1000.0 is no evidence (not a finite number)"
    ]


def test_offline_selection_says_when_nothing_beats_the_deployed_policy():
    from bremen_robot.config.train import SelectionConfig
    from bremen_robot.selection import Snapshot, offline_selection

    ens = _fake_ensemble(forward=[1.0, 1.0, 1.0], backward=[0.8, 0.8, 10.0])
    snaps = [Snapshot("bc", 0, ConstantPolicy(0.2)), Snapshot("trpo-0010", 10, ConstantPolicy(-0.5))]
    cfg = SelectionConfig(enabled=True, start_states=3, horizon=10)
    obs = np.zeros((5, 1), np.float32)
    # bc: 0.2 x 10 = 2 for every member; trpo-0010: min(4, 4, 50) = 4 -> chosen
    sel, chosen = offline_selection(cfg, 99, ens, _line_task(), obs, snaps, None, torch.Generator())
    assert chosen.name == "trpo-0010" and sel.beats_deployed and sel.deployed_estimate is None
    assert [(s.name, s.estimate, s.chosen) for s in sel.snapshots] == [
        ("bc", pytest.approx(2.0), False),
        ("trpo-0010", pytest.approx(4.0), True),
    ]
    # a deployed policy at a = 0.6 scores 6 on every member: nothing beats it
    sel, chosen = offline_selection(
        cfg, 99, ens, _line_task(), obs, snaps, ConstantPolicy(0.6), torch.Generator()
    )
    assert chosen.name == "trpo-0010" and not sel.beats_deployed
    assert sel.deployed_estimate == pytest.approx(6.0)
    assert sel.notes == ["no snapshot beats the deployed policy offline: best trpo-0010 4.0 against 6.0"]


def test_action_shift_by_hand():
    # 2 states, 2 actions; the second action's half range is 2, so its numbers count half
    half = np.array([1.0, 2.0])
    bc = [[0.0, 0.0], [0.0, 0.0]]
    near = [[0.1, 0.2], [0.1, 0.2]]  # per half range: 0.1 everywhere -> RMS 0.1
    far = [[0.3, 0.6], [0.3, 0.6]]  # 0.3 everywhere -> RMS 0.3
    acts = np.array([[0.2, 0.4], [-0.2, -0.4]])  # around BC's mean: +-0.2 per half range -> spread 0.2
    shifts, spread = action_shift(np.array([bc, near, far]), acts, half)
    assert spread == pytest.approx(0.2)
    np.testing.assert_allclose(shifts, [0.0, 0.5, 1.5])  # 0.1 / 0.2 and 0.3 / 0.2
    with pytest.raises(ValueError, match=r"shapes must be \(S, N, A\), \(N, A\), \(A,\)"):
        action_shift(np.array([bc, near]), acts[:1], half)
    with pytest.raises(ValueError, match="no spread to measure a shift in"):
        action_shift(np.array([bc, near]), np.zeros((2, 2)), half)


def test_action_spread_is_measured_around_bcs_mean_not_the_actions_own_mean():
    """docs/algorithm.md: the spread is the RMS of the recorded actions around BC's mean, so a
    biased BC widens the unit. Half range 2; BC says 0.5 where the data did -0.5 and 0.5:
    spread = sqrt(((-1 / 2)^2 + 0^2) / 2) = sqrt(1 / 8) (around their own mean 0 it would be
    0.25); a snapshot 1.0 off BC on one of the two states shifts sqrt(1 / 8) / sqrt(1 / 8) = 1."""
    means = np.array([[[0.5], [0.5]], [[1.5], [0.5]]])
    shifts, spread = action_shift(means, np.array([[-0.5], [0.5]]), np.array([2.0]))
    assert spread == pytest.approx(np.sqrt(1 / 8))
    np.testing.assert_allclose(shifts, [0.0, 1.0])


def test_selection_keeps_within_the_action_shift_limit():
    rows = [
        SnapshotScore("bc", 0, [1.0], 1.0, shift=0.0),
        SnapshotScore("trpo-0010", 10, [5.0], 5.0, shift=0.5),
        SnapshotScore("trpo-0020", 20, [9.0], 9.0, shift=0.9),  # best offline, acts far from the data
    ]
    assert select_offline(rows, None, 0.0) == (2, True)
    assert select_offline(rows, None, 0.0, max_shift=0.6) == (1, True)
    assert select_offline(rows, None, 0.0, max_shift=0.5) == (1, True)  # the limit itself is eligible
    assert select_offline(rows, 3.0, 0.0, max_shift=0.4) == (0, False)  # only BC, which loses to 3.0
    for r, twin in zip(rows, [100.0, 100.0, 100.0], strict=True):
        r.twin = twin
    assert select_with_twin(rows, None, 100.0, 0.0, 0.1)[0] == 2
    assert select_with_twin(rows, None, 100.0, 0.0, 0.1, max_shift=0.6)[0] == 1


def test_the_earliest_rule_proposes_the_first_snapshot_that_beats_the_deployed_policy():
    """Estimates rise with TRPO's iterations, as they do when the models over-rate what TRPO finds:
    'best' takes the last snapshot, 'earliest' the first that clears the deployed policy's bar."""
    rows = [
        SnapshotScore("bc", 0, [1.0], 1.0, shift=0.0),
        SnapshotScore("trpo-0010", 10, [2.0], 2.0, shift=0.3),
        SnapshotScore("trpo-0020", 20, [4.0], 4.0, shift=0.7),
        SnapshotScore("trpo-0030", 30, [9.0], 9.0, shift=1.0),
    ]
    assert select_offline(rows, 3.0, 0.0, pick="best") == (3, True)
    assert select_offline(rows, 3.0, 0.0, pick="earliest") == (2, True)  # 2.0 does not beat 3.0, 4.0 does
    assert select_offline(rows, 1.5, 0.0, pick="earliest") == (1, True)
    assert select_offline(rows, 0.5, 0.0, pick="earliest") == (0, True)  # BC itself beats it
    assert select_offline(rows, 3.0, 0.5, pick="earliest") == (3, True)  # bar 4.5: 4.0 misses it, 9.0 not
    assert select_offline(rows, 10.0, 0.0, pick="earliest") == (3, False)  # none beats: the best, flagged
    assert select_offline(rows, None, 0.0, pick="earliest") == (3, True)  # deployment 1: the best
    # within the limit only BC and trpo-0010, neither beats 3.0: the better of them, flagged
    assert select_offline(rows, 3.0, 0.0, max_shift=0.5, pick="earliest") == (1, False)
    assert select_offline(rows, 1.5, 0.0, max_shift=0.8, pick="earliest") == (1, True)
    # the twin vetoes the earliest winner: the next one in training order, not the best
    rows.append(SnapshotScore("trpo-0040", 40, [12.0], 12.0, shift=1.2))
    for r, twin in zip(rows, [90.0, 95.0, 50.0, 99.0, 98.0], strict=True):
        r.twin = twin
    assert select_with_twin(rows, 1.5, 100.0, 0.0, 0.1, pick="earliest")[0] == 1
    assert select_with_twin(rows, 3.0, 100.0, 0.0, 0.1, pick="earliest")[0] == 3  # trpo-0020 vetoed
    assert select_with_twin(rows, 3.0, 100.0, 0.0, 0.1, pick="best")[0] == 4
    assert select_with_twin(rows, 1.5, 100.0, 0.0, 0.1, pick="best")[0] == 4
    assert pick_among(rows, [1, 3], "earliest", None) == 3  # no deployed policy: the best
    assert pick_among(rows, [3, 1], "best", 1.0) == 3
    with pytest.raises(ValueError, match="no candidates to pick from"):
        pick_among(rows, [], "best", 1.0)


def test_offline_selection_measures_shifts_and_keeps_the_limit():
    from bremen_robot.config.train import SelectionConfig
    from bremen_robot.selection import Snapshot, offline_selection

    ens = _fake_ensemble(forward=[1.0, 1.0, 1.0], backward=[1.0, 1.0, 1.0])
    snaps = [Snapshot("bc", 0, ConstantPolicy(0.2)), Snapshot("trpo-0010", 10, ConstantPolicy(-0.5))]
    obs = np.zeros((4, 1), np.float32)
    acts = np.array([[0.3], [0.1], [0.3], [0.1]])  # BC's 0.2 +- 0.1: spread 0.1 (half range 1)

    def select(limit, actions=acts):
        cfg = SelectionConfig(enabled=True, start_states=3, horizon=10, max_action_shift=limit)
        return offline_selection(
            cfg, 99, ens, _line_task(), obs, snaps, None, torch.Generator(), behavior_actions=actions
        )

    # trpo-0010 scores 5 against BC's 2 but moves the action by 0.7 = 7 spreads
    sel, chosen = select(1.0)
    assert chosen.name == "bc" and sel.action_spread == pytest.approx(0.1)
    assert sel.max_action_shift == 1.0
    assert [(s.name, s.estimate, s.shift, s.chosen) for s in sel.snapshots] == [
        ("bc", pytest.approx(2.0), pytest.approx(0.0), True),
        ("trpo-0010", pytest.approx(5.0), pytest.approx(7.0), False),
    ]
    assert select(8.0)[1].name == "trpo-0010"
    with pytest.raises(ValueError, match="max_action_shift needs the behavior data's actions"):
        select(1.0, actions=None)
    # data collected by BC's own mean, without noise: no spread to measure in, said with the fix
    with pytest.raises(BremenError, match="no spread to measure a shift in; collect with exploration noise"):
        select(1.0, actions=np.full((4, 1), 0.2))


def test_offline_selection_records_and_applies_the_pick_rule():
    from bremen_robot.config.train import SelectionConfig
    from bremen_robot.selection import Snapshot, offline_selection

    ens = _fake_ensemble(forward=[1.0, 1.0, 1.0], backward=[1.0, 1.0, 1.0])
    # 10 steps of displacement relu(a): bc 2, trpo-0010 3, trpo-0020 5; the deployed policy 2.5
    snaps = [
        Snapshot(n, i, ConstantPolicy(a))
        for n, i, a in [("bc", 0, 0.2), ("trpo-0010", 10, 0.3), ("trpo-0020", 20, 0.5)]
    ]

    def select(pick):
        cfg = SelectionConfig(enabled=True, start_states=3, horizon=10, pick=pick)
        return offline_selection(
            cfg,
            99,
            ens,
            _line_task(),
            np.zeros((4, 1), np.float32),
            snaps,
            ConstantPolicy(0.25),
            torch.Generator(),
        )

    sel, chosen = select("earliest")
    assert (chosen.name, sel.chosen, sel.pick, sel.beats_deployed) == (
        "trpo-0010",
        "trpo-0010",
        "earliest",
        True,
    )
    assert sel.deployed_estimate == pytest.approx(2.5)
    sel, chosen = select("best")
    assert (chosen.name, sel.pick) == ("trpo-0020", "best")


def _tiny_train_config(**selection):
    from bremen_robot.config.train import TrainConfig

    return TrainConfig.model_validate(
        {
            "name": "tiny",
            "task": "point",
            "threads": 1,
            "ensemble": {"members": 3, "hidden": [32], "max_epochs": 5, "batch_size": 128},
            "bc": {"hidden": [16], "steps": 100},
            "trpo": {"iterations": 5, "steps_per_iteration": 400, "horizon": 40, "init_log_std": -1.0},
            "selection": selection,
        }
    )


def test_training_keeps_scores_and_exports_snapshots(tmp_path):
    import json

    from bremen_robot.data.real_rollout import make_env, rollout, uniform_policy
    from bremen_robot.policy.artifact import load_artifact
    from bremen_robot.trainer import train

    env, task = make_env("point")
    data = rollout(env, task, uniform_policy(task, np.random.default_rng(0)), steps=400, seed=0)
    cfg = _tiny_train_config(enabled=True, snapshot_every=2, start_states=8, horizon=20)
    result = train(cfg, data, tmp_path / "art")
    sel = result.report["selection"]
    names = [row["name"] for row in sel["snapshots"]]
    assert names == ["bc", "trpo-0002", "trpo-0004", "trpo-0005"]  # every 2nd update and the last
    assert [row["iteration"] for row in sel["snapshots"]] == [0, 2, 4, 5]
    assert [len(row["per_member"]) for row in sel["snapshots"]] == [3, 3, 3, 3]
    for row in sel["snapshots"]:
        assert row["estimate"] == pytest.approx(min(row["per_member"]))  # rule: min
    chosen = [row for row in sel["snapshots"] if row["chosen"]]
    assert len(chosen) == 1 and chosen[0]["name"] == sel["chosen"]
    assert chosen[0]["estimate"] == max(row["estimate"] for row in sel["snapshots"])
    # the exported candidate is the chosen snapshot, and every snapshot is an artifact of its own
    obs = data.obs[:16]
    cand = load_artifact(tmp_path / "art").act(obs)
    np.testing.assert_array_equal(
        cand, load_artifact(tmp_path / "art" / "snapshots" / sel["chosen"]).act(obs)
    )
    for name in names:
        assert (tmp_path / "art" / "snapshots" / name / "manifest.json").is_file()
    on_disk = json.loads((tmp_path / "art" / "report.json").read_text())
    assert on_disk["selection"]["chosen"] == sel["chosen"]
    assert result.manifest.metrics["selected_snapshot"] == sel["chosen"]


def test_selection_off_keeps_training_as_it_was(tmp_path):
    from bremen_robot.data.real_rollout import make_env, rollout, uniform_policy
    from bremen_robot.trainer import train

    env, task = make_env("point")
    data = rollout(env, task, uniform_policy(task, np.random.default_rng(0)), steps=400, seed=0)
    result = train(_tiny_train_config(), data, tmp_path / "art")
    assert "selection" not in result.report
    assert not (tmp_path / "art" / "snapshots").exists()


def test_snapshot_interval_longer_than_trpo_is_refused():
    from pydantic import ValidationError

    with pytest.raises(
        ValidationError, match=r"snapshot_every \(9\) exceeds trpo.iterations \(5\); set it to at most 5"
    ):
        _tiny_train_config(enabled=True, snapshot_every=9)


def test_the_shift_is_measured_on_states_spread_over_all_the_data():
    """3,000 rows (a quickstart deployment): the snapshot differs from BC by 1 only where the
    state is past row 2,047. Evenly spaced over all rows, 650 of the 2,048 sampled rows lie
    there (row i*2999/2047 passes 2,047 from i = 1,398 on); a block of the first 2,048 rows would
    see no shift at all. Behavior actions are BC's mean (0) +- 0.1, so the spread is 0.1."""
    from types import SimpleNamespace

    from bremen_robot.selection import Snapshot, snapshot_shifts

    class Step(torch.nn.Module):
        def __init__(self, moved: bool) -> None:
            super().__init__()
            self.moved = moved

        def forward(self, obs):
            mean = (obs[:, :1] > 2047).float() if self.moved else torch.zeros_like(obs[:, :1])
            return mean, torch.zeros_like(mean)

    obs = np.arange(3000, dtype=np.float32)[:, None]  # (N, 1): each state is its row number
    acts = np.where(np.arange(3000) % 2 == 0, 0.1, -0.1)[:, None]  # (N, 1)
    task = SimpleNamespace(action_low=[-1.0], action_high=[1.0])
    snaps = [Snapshot("bc", 0, Step(False)), Snapshot("trpo-0010", 10, Step(True))]
    shifts, spread = snapshot_shifts(snaps, obs, acts, task, "cpu")  # type: ignore[arg-type]
    assert spread == pytest.approx(0.1)
    assert shifts[0] == 0.0
    assert shifts[1] == pytest.approx(np.sqrt(650 / 2048) / 0.1)


def test_a_snapshot_whose_estimate_is_not_a_number_is_never_chosen():
    """NaN is no highest score: np.argmax would take it for the best, and with no reference
    (deployment 1) it would also 'beat' the deployed policy and be proposed."""
    nan = float("nan")
    rows = [SnapshotScore("bc", 0, [nan], nan), SnapshotScore("trpo-0010", 10, [5.0], 5.0)]
    assert select_offline(rows, None, 0.0) == (1, True)
    rows += [SnapshotScore("trpo-0020", 20, [nan], nan), SnapshotScore("trpo-0030", 30, [3.0], 3.0)]
    assert select_offline(rows, None, 0.0) == (1, True)
    for r in rows:
        r.twin = 100.0  # the twin vetoes none of them
    assert select_with_twin(rows, None, 100.0, 0.0, 0.1)[0] == 1
