"""Candidate selection in a campaign (issue 16): what is proposed, keep vs warn, the twin veto."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.campaign.runner import Campaign
from bremen_robot.errors import ConfigError
from tests.campaign.test_campaign_logic import DirectCollector, write_campaign


def selecting_campaign(tmp_path: Path, deployments: int = 2, margin: float = 0.0, **policy) -> Path:
    """The tiny campaign of test_campaign_logic with selection on (snapshots bc, 2, 3)."""
    camp = write_campaign(tmp_path, deployments=deployments)
    train = yaml.safe_load((tmp_path / "train.yaml").read_text())
    train["selection"] = {
        "enabled": True,
        "snapshot_every": 2,
        "start_states": 8,
        "horizon": 20,
        "margin": margin,
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train))
    data = yaml.safe_load(camp.read_text())
    data["selection"] = policy
    camp.write_text(yaml.safe_dump(data))
    return camp


def run(tmp_path: Path, camp: Path, collector: DirectCollector | None = None) -> tuple[dict, list[str]]:
    messages: list[str] = []
    cfg = load_campaign_config(camp)
    summary = Campaign(
        cfg,
        tmp_path / "ws",
        auto_approve=True,
        collect_fn=collector or DirectCollector(),
        log=messages.append,
    ).run()
    return summary, messages


def test_the_selected_snapshot_is_proposed_and_reviewed(tmp_path, capsys):
    from bremen_robot.cli import main
    from bremen_robot.registry import Registry

    summary, messages = run(tmp_path, selecting_campaign(tmp_path))
    record = json.loads((tmp_path / "ws" / "d1" / "selection.json").read_text())
    # the operator's log names the proposal and its evidence
    assert f"deployment 1: proposing snapshot {record['proposed']} of 3 (offline lower bound)" in messages
    report = json.loads((tmp_path / "ws" / "d1" / "train" / "report.json").read_text())
    assert [r["snapshot"] for r in record["table"]] == ["bc", "trpo-0002", "trpo-0003"]
    assert record["proposed"] == report["selection"]["chosen"]  # no twin: the offline choice
    assert record["keep_deployed"] is False and record["twin_steps"] == 0
    with Registry.open(tmp_path / "ws") as reg:
        rec = reg.get(summary["deployments"][1]["policy_id"])  # deployment 2 collected with it
        snap = tmp_path / "ws" / "d1" / "train" / "snapshots" / record["proposed"]
        assert (
            rec.manifest["policy_sha256"] == json.loads((snap / "manifest.json").read_text())["policy_sha256"]
        )
        assert rec.report["campaign_selection"]["proposed"] == record["proposed"]
        pid = rec.id
    capsys.readouterr()
    assert main(["review", pid, "--workspace", str(tmp_path / "ws")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("candidate selection")) :]
    chosen_line = next(line for line in table if line.strip().startswith(record["proposed"]))
    assert chosen_line.rstrip().endswith("yes")
    est = next(r["offline_estimate"] for r in record["table"] if r["snapshot"] == record["proposed"])
    assert f"{est:.1f}" in chosen_line


def test_keep_deployed_collects_again_without_a_new_deployment(tmp_path):
    # a margin no snapshot can clear: from deployment 2 on nothing beats the deployed policy
    collector = DirectCollector()
    summary, messages = run(
        tmp_path,
        selecting_campaign(tmp_path, deployments=3, margin=1e6, when_none_beats="keep_deployed"),
        collector,
    )
    ids = [row["policy_id"] for row in summary["deployments"]]
    assert ids[0] == "random" and ids[1] == ids[2] != "random"  # deployment 3 reused deployment 2's policy
    assert summary["deployment_count"] == 2  # three collections, two distinct policies
    assert collector.calls == [1, 2, 3]
    d2 = json.loads((tmp_path / "ws" / "d2" / "selection.json").read_text())
    assert d2["keep_deployed"] is True and d2["proposed"] is None and d2["margin"] == 1e6
    assert not any(r["chosen"] for r in d2["table"])
    assert (
        "deployment 2: no snapshot beats the deployed policy on this evidence (offline lower bound); "
        "collecting again with the deployed policy (not a new deployment)"
    ) in messages
    assert summary["final_candidate"]["policy_id"] == ids[2]


def test_propose_best_with_warning(tmp_path):
    from bremen_robot.registry import Registry

    summary, messages = run(
        tmp_path,
        selecting_campaign(tmp_path, deployments=2, margin=1e6, when_none_beats="propose_best_with_warning"),
    )
    d2 = json.loads((tmp_path / "ws" / "d2" / "selection.json").read_text())
    assert d2["keep_deployed"] is False and d2["proposed"] == d2["offline_chosen"]
    assert d2["warning"] == (
        f"{d2['proposed']} is proposed although it does not beat the deployed policy (offline lower bound); "
        "review before approving"
    )
    assert any("proposing" in m and "with a warning for the operator" in m for m in messages)
    with Registry.open(tmp_path / "ws") as reg:
        rec = reg.get(summary["final_candidate"]["policy_id"])
        assert rec.state == "candidate"
        assert rec.report["campaign_selection"]["warning"] == d2["warning"]


def test_twin_vetoes_snapshots_below_the_deployed_policy_and_counts_its_steps(tmp_path, monkeypatch):
    import bremen_robot.campaign.selection as camp_sel

    calls: list[tuple[str, str]] = []

    def fake_act(artifact, task, seed):
        return "random" if artifact is None else Path(artifact).name

    seeds: set[int] = set()

    def fake_twin(act, robot, task, engine, episodes, seed, rand):
        calls.append((act, engine))
        seeds.add(seed)
        # every TRPO snapshot falls in the twin; BC holds the deployed (random) policy's score
        score = {"random": 10.0, "bc": 9.5}.get(act, -50.0)
        return score, 7 * episodes

    monkeypatch.setattr(camp_sel, "_act", fake_act)
    monkeypatch.setattr(camp_sel, "twin_score", fake_twin)
    camp = selecting_campaign(tmp_path, deployments=1, twin=True, data_engine="mujoco", twin_episodes=2)
    run(tmp_path, camp)
    rec = json.loads((tmp_path / "ws" / "d1" / "selection.json").read_text())
    assert {engine for _, engine in calls} == {"pybullet"}  # never the engine that collected the data
    assert [a for a, _ in calls] == ["random", "bc", "trpo-0002", "trpo-0003"]
    assert seeds == {17_448_304_640}  # seed 0, deployment 1's twin stream: (64 + 1) << 28
    assert rec["twin_steps"] == 4 * 14
    assert rec["proposed"] == "bc"
    assert [(r["snapshot"], r["twin"], r["chosen"]) for r in rec["table"]] == [
        ("bc", 9.5, True),
        ("trpo-0002", -50.0, False),
        ("trpo-0003", -50.0, False),
    ]
    assert rec["twin"]["vetoed"] == [
        "trpo-0002: twin -50.0 is clearly below the deployed policy's 10.0",
        "trpo-0003: twin -50.0 is clearly below the deployed policy's 10.0",
    ]
    # a resumed campaign repeats the decision from selection.json without running the twin again
    calls.clear()
    run(tmp_path, camp)
    assert calls == []


def test_snapshots_beyond_the_action_shift_limit_are_neither_twinned_nor_proposed(
    tmp_path, monkeypatch, capsys
):
    import bremen_robot.campaign.selection as camp_sel
    from bremen_robot.cli import main
    from bremen_robot.registry import Registry

    calls: list[str] = []

    def fake_twin(act, robot, task, engine, episodes, seed, rand):
        calls.append(act)
        return {"random": 10.0}.get(act, 50.0), 1  # every snapshot looks good in the twin

    monkeypatch.setattr(camp_sel, "_act", lambda art, task, seed: "random" if art is None else Path(art).name)
    monkeypatch.setattr(camp_sel, "twin_score", fake_twin)
    camp = selecting_campaign(tmp_path, deployments=2, twin=True, data_engine="mujoco")
    train = yaml.safe_load((tmp_path / "train.yaml").read_text())
    train["selection"]["max_action_shift"] = 1e-6  # every TRPO update moves the mean action more
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train))
    summary, _ = run(tmp_path, camp)
    rec = json.loads((tmp_path / "ws" / "d1" / "selection.json").read_text())
    assert calls[:2] == ["random", "bc"]  # deployment 1: only BC could be proposed, so only BC is twinned
    assert rec["proposed"] == "bc" and rec["max_action_shift"] == 1e-6
    shifts = {r["snapshot"]: r["shift"] for r in rec["table"]}
    assert shifts["bc"] == 0.0 and shifts["trpo-0002"] > 1e-6 and shifts["trpo-0003"] > 1e-6
    assert [r["twin"] for r in rec["table"]] == [50.0, None, None]
    with Registry.open(tmp_path / "ws") as reg:
        pid = reg.get(summary["deployments"][1]["policy_id"]).id
    capsys.readouterr()
    assert main(["review", pid, "--workspace", str(tmp_path / "ws")]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.strip().startswith("trpo-0002"))
    assert f"{shifts['trpo-0002']:.2f}*" in row and not row.rstrip().endswith("yes")
    assert "* beyond the limit 1e-06, never proposed" in "\n".join(lines)


def test_twin_on_the_data_engine_is_refused(tmp_path):
    camp = selecting_campaign(tmp_path, twin=True, data_engine="mujoco", twin_engine="mujoco")
    with pytest.raises(ConfigError, match="'mujoco' is the engine that collected the data; the twin must be"):
        load_campaign_config(camp)


def test_twin_without_snapshots_is_refused(tmp_path):
    camp = write_campaign(tmp_path)
    data = yaml.safe_load(camp.read_text())
    data["selection"] = {"twin": True, "data_engine": "mujoco"}
    camp.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="selection.twin: the train preset 'tiny' has no snapshots"):
        load_campaign_config(camp)


def test_twin_veto_of_everything_keeps_the_random_policy_collecting(tmp_path, monkeypatch):
    import bremen_robot.campaign.selection as camp_sel

    monkeypatch.setattr(
        camp_sel, "_act", lambda artifact, task, seed: "random" if artifact is None else "snap"
    )
    monkeypatch.setattr(camp_sel, "twin_score", lambda act, *a: (10.0 if act == "random" else -50.0, 5))
    collector = DirectCollector()
    camp = selecting_campaign(tmp_path, deployments=2, twin=True, data_engine="mujoco")
    summary, messages = run(tmp_path, camp, collector)
    assert [row["policy_id"] for row in summary["deployments"]] == ["random", "random"]
    assert summary["deployment_count"] == 1  # the random policy collected twice: one deployment
    assert summary["final_candidate"]["policy_id"] == "random"
    # kept, the random policy's return after deployment 1 is its one evaluation (same episodes):
    # another draw would read as a change of policy, and could count as a regression
    ws = tmp_path / "ws"
    random_eval = json.loads((ws / "d1" / "eval_random.json").read_text())
    assert json.loads((ws / "d1" / "eval.json").read_text())["mean"] == random_eval["mean"]
    assert json.loads((ws / "d2" / "eval.json").read_text())["mean"] == random_eval["mean"]
    assert (
        "deployment 1: no snapshot beats the deployed policy on this evidence (offline lower bound and "
        "pybullet twin); collecting again with the deployed policy (not a new deployment); 20 twin steps"
    ) in messages


def test_a_snapshot_proposed_after_a_twin_veto_is_reviewed_with_its_own_figures(tmp_path, monkeypatch):
    """The trainer computes KL, behavior shift and disagreement for the policy it exports; when the
    twin vetoes that one the review must describe the proposal. BC is the check: the tiny
    campaign's trainer exports BC, whose KL to itself and mean-action shift from itself are 0."""
    import bremen_robot.campaign.selection as camp_sel
    from bremen_robot.registry import Registry

    monkeypatch.setattr(camp_sel, "_act", lambda art, task, seed: "random" if art is None else Path(art).name)
    monkeypatch.setattr(
        camp_sel, "twin_score", lambda act, *a: ({"random": 10.0, "bc": -50.0}.get(act, 9.5), 1)
    )
    summary, _ = run(tmp_path, selecting_campaign(tmp_path, deployments=2, twin=True, data_engine="mujoco"))
    trained = json.loads((tmp_path / "ws" / "d1" / "train" / "report.json").read_text())
    assert trained["selection"]["chosen"] == "bc"
    assert trained["kl_to_bc"] == 0.0 and trained["behavior_shift"] == 0.0
    proposed = json.loads((tmp_path / "ws" / "d1" / "selection.json").read_text())["proposed"]
    assert proposed in ("trpo-0002", "trpo-0003")  # the twin vetoed BC
    with Registry.open(tmp_path / "ws") as reg:
        report = reg.get(summary["deployments"][1]["policy_id"]).report
    figures = next(r for r in trained["selection"]["snapshots"] if r["name"] == proposed)["figures"]
    assert report["figures_of"] == proposed
    assert report["kl_to_bc"] == figures["kl_to_bc"] > 0
    assert report["behavior_shift"] == figures["behavior_shift"] > 0
    assert report["imagined_return_final"] == figures["imagined_return_final"]
    assert report["disagreement"]["policy_imagined"] == figures["policy_imagined_disagreement"]
    assert report["disagreement"]["dataset"] == trained["disagreement"]["dataset"]  # not the policy's


def _hand_report(estimates: dict[str, float], chosen: str) -> dict:
    rows = [
        {"name": n, "iteration": i, "per_member": [e], "estimate": e, "twin": None, "chosen": n == chosen}
        for i, (n, e) in enumerate(estimates.items())
    ]
    return {
        "config": {"selection": {"margin": 0.0}},
        "selection": {
            "snapshots": rows,
            "chosen": chosen,
            "beats_deployed": True,
            "deployed_estimate": None,
            "max_action_shift": None,
        },
    }


def test_a_selection_record_of_a_redone_training_is_set_aside_and_decided_again(tmp_path):
    """A rejected candidate's d<k>/train is moved aside and trained again, but d<k>/selection.json
    stays: it must not decide for the new training."""
    from bremen_robot.campaign.selection import propose

    cfg = load_campaign_config(selecting_campaign(tmp_path))
    train_dir = tmp_path / "ws" / "d1" / "train"
    train_dir.mkdir(parents=True)
    messages: list[str] = []

    def decide(estimates: dict[str, float], chosen: str) -> str:
        (train_dir / "report.json").write_text(json.dumps(_hand_report(estimates, chosen)))
        proposal = propose(cfg, 1, train_dir, None, "tiny", "tiny", messages.append)
        return proposal.record["proposed"]

    assert decide({"bc": 1.0, "trpo-0002": 5.0}, "trpo-0002") == "trpo-0002"
    first = json.loads((train_dir.parent / "selection.json").read_text())
    assert decide({"bc": 1.0, "trpo-0002": 5.0}, "trpo-0002") == "trpo-0002"  # same training: reused
    assert not (train_dir.parent / "selection.json.other-training-1").exists()
    assert decide({"bc": 7.0, "trpo-0002": 5.0}, "bc") == "bc"  # the training was redone
    assert json.loads((train_dir.parent / "selection.json.other-training-1").read_text()) == first
    assert any("was for another training (kept at" in m for m in messages)


def test_a_selection_record_from_before_the_digest_is_kept_when_it_matches_its_training(tmp_path):
    from bremen_robot.campaign.selection import decided_on

    sel = _hand_report({"bc": 1.0, "trpo-0002": 5.0}, "trpo-0002")["selection"]
    legacy = {
        "offline_chosen": "trpo-0002",
        "table": [
            {"snapshot": "bc", "offline_estimate": 1.0},
            {"snapshot": "trpo-0002", "offline_estimate": 5.0},
        ],
    }
    assert decided_on(legacy, sel)
    assert not decided_on({**legacy, "offline_chosen": "bc"}, sel)
    assert not decided_on({**legacy, "table": legacy["table"][:1]}, sel)
    assert not decided_on({**legacy, "training": "0" * 64}, sel)  # a digest decides when there is one


def test_a_report_without_snapshot_figures_drops_the_other_policys_figures():
    from bremen_robot.review_figures import with_figures_of

    report = _hand_report({"bc": 1.0, "trpo-0002": 5.0}, "trpo-0002")
    report |= {"kl_to_bc": 3.0, "behavior_shift": 2.0, "imagined_return_final": 9.0}
    report["disagreement"] = {"policy_imagined": 0.5, "dataset": 0.1}
    assert with_figures_of(report, "trpo-0002") is report  # the trainer's own choice
    other = with_figures_of(report, "bc")
    assert {"kl_to_bc", "behavior_shift", "imagined_return_final"}.isdisjoint(other)
    assert other["disagreement"] == {"dataset": 0.1} and other["figures_of"] == "bc"
    assert report["kl_to_bc"] == 3.0  # the training's own report is not changed
    with pytest.raises(ValueError, match="snapshot 'trpo-0009' is not in the training report"):
        with_figures_of(report, "trpo-0009")


def test_a_twin_randomization_file_that_does_not_load_is_refused_with_the_config(tmp_path):
    """Read only when deployment 1's training is done, a bad file would stop the campaign after
    the robot collected; and fixing the path then makes it another campaign (its identity)."""
    camp = selecting_campaign(tmp_path, twin=True, data_engine="mujoco", twin_randomization="nope.yaml")
    with pytest.raises(ConfigError, match=r"campaign\.yaml: selection\.twin_randomization: .*nope\.yaml"):
        load_campaign_config(camp)


def test_the_campaign_proposes_the_earliest_winner_when_the_training_says_so(tmp_path, monkeypatch):
    """selection.pick travels in report.json's selection: the campaign's twin decision keeps it, and
    a report from before the rule (no "pick") decides as before, on the best estimate."""
    import bremen_robot.campaign.selection as camp_sel
    from bremen_robot.campaign.selection import propose

    monkeypatch.setattr(
        camp_sel,
        "_act",
        lambda art, task, seed: (
            "deployed"
            if art is not None and Path(art).name == "deployed"
            else ("random" if art is None else Path(art).name)
        ),
    )
    monkeypatch.setattr(camp_sel, "twin_score", lambda act, *a: ({"trpo-0001": 10.0}.get(act, 100.0), 1))
    cfg = load_campaign_config(selecting_campaign(tmp_path, twin=True, data_engine="mujoco"))
    estimates = {"bc": 1.0, "trpo-0001": 4.0, "trpo-0002": 5.0, "trpo-0003": 9.0}

    def decide(k: int, pick: str | None) -> dict:
        train_dir = tmp_path / "ws" / f"d{k}" / "train"
        train_dir.mkdir(parents=True)
        report = _hand_report(estimates, "trpo-0001" if pick == "earliest" else "trpo-0003")
        report["selection"]["deployed_estimate"] = 3.0
        if pick is not None:
            report["selection"]["pick"] = pick
        (train_dir / "report.json").write_text(json.dumps(report))
        return propose(cfg, k, train_dir, tmp_path / "deployed", "tiny", "tiny", lambda m: None).record

    rec = decide(2, "earliest")  # trpo-0001 is the earliest winner offline, but the twin vetoes it
    assert (rec["proposed"], rec["pick"]) == ("trpo-0002", "earliest")
    rec = decide(3, None)
    assert (rec["proposed"], rec["pick"]) == ("trpo-0003", "best")


def test_a_warned_proposal_under_the_earliest_rule_is_the_best_offline_not_the_vetoed_earliest(
    tmp_path, monkeypatch
):
    """propose_best_with_warning after the twin vetoed everything: the best offline snapshot, as
    with pick 'best'; the earliest winner is the very one the twin just vetoed."""
    import bremen_robot.campaign.selection as camp_sel
    from bremen_robot.campaign.selection import propose

    monkeypatch.setattr(camp_sel, "_act", lambda art, task, seed: "other" if art is None else Path(art).name)
    monkeypatch.setattr(camp_sel, "twin_score", lambda act, *a: ({"deployed": 100.0}.get(act, 10.0), 1))
    camp = selecting_campaign(
        tmp_path, twin=True, data_engine="mujoco", when_none_beats="propose_best_with_warning"
    )
    cfg = load_campaign_config(camp)
    train_dir = tmp_path / "ws" / "d2" / "train"
    train_dir.mkdir(parents=True)
    report = _hand_report({"bc": 1.0, "trpo-0001": 4.0, "trpo-0002": 9.0, "trpo-0003": 5.0}, "trpo-0001")
    report["selection"] |= {"deployed_estimate": 3.0, "pick": "earliest"}
    (train_dir / "report.json").write_text(json.dumps(report))
    rec = propose(cfg, 2, train_dir, tmp_path / "deployed", "tiny", "tiny", lambda m: None).record
    assert rec["proposed"] == "trpo-0002"
    assert rec["warning"].startswith("trpo-0002 is proposed although it does not beat the deployed policy")


def test_a_twin_that_vetoes_every_winner_deployment_after_deployment_is_named(tmp_path, monkeypatch):
    """A kept policy needs no approval, so a twin that disagrees with the robot could hold the
    campaign still unseen: from the second veto of everything in a row, the line warns."""
    import bremen_robot.campaign.selection as camp_sel

    monkeypatch.setattr(
        camp_sel, "_act", lambda artifact, task, seed: "random" if artifact is None else "snap"
    )
    monkeypatch.setattr(camp_sel, "twin_score", lambda act, *a: (10.0 if act == "random" else -50.0, 5))
    camp = selecting_campaign(tmp_path, deployments=3, twin=True, data_engine="mujoco")
    summary, messages = run(tmp_path, camp)
    assert [row["policy_id"] for row in summary["deployments"]] == ["random"] * 3
    ws = tmp_path / "ws"
    streaks = [
        json.loads((ws / f"d{k}" / "selection.json").read_text())["twin_veto_streak"] for k in (1, 2, 3)
    ]
    assert streaks == [1, 2, 3]
    records = [json.loads((ws / f"d{k}" / "selection.json").read_text()) for k in (1, 2, 3)]
    assert records[0]["twin_warning"] is None
    assert records[2]["twin_warning"] == (
        "the twin has vetoed every snapshot it ran (those that beat the deployed policy offline) at 3 "
        "deployments in a row: it may not rank policies as the robot does; compare its scores with the "
        "robot's (bremen review) or set selection.twin: false in the campaign"
    )
    # the console shows the last decision's warning until the next decision
    assert json.loads((ws / "status.json").read_text())["warning"] == records[2]["twin_warning"]
    warned = [m for m in messages if "WARNING: the twin has vetoed" in m]
    assert [m.split(":")[0] for m in warned] == ["deployment 2", "deployment 3"]
    assert warned[1].endswith(f"; WARNING: {records[2]['twin_warning']}")


def test_the_veto_streak_counts_only_twin_vetoes_in_a_row(tmp_path):
    """Worked by hand on records: a keep with nothing beaten offline, or a proposal, ends a run."""
    from bremen_robot.campaign.selection import twin_veto_streak

    froze = {"keep_deployed": True, "twin": {"vetoed": ["trpo-0002: twin -50.0 is clearly below ..."]}}
    offline_none = {"keep_deployed": True, "twin": {"vetoed": []}}
    proposed = {"keep_deployed": False, "twin": {"vetoed": ["bc: ..."]}}
    no_twin = {"keep_deployed": True, "twin": None}
    for k, record in enumerate([froze, offline_none, froze, froze, proposed, froze], start=1):
        (tmp_path / f"d{k}").mkdir()
        (tmp_path / f"d{k}" / "selection.json").write_text(json.dumps(record))
    assert twin_veto_streak(tmp_path, 7, froze) == 2  # d7 itself and d6; d5 proposed
    assert twin_veto_streak(tmp_path, 5, froze) == 3  # d5 (as if frozen), d4, d3; d2 vetoed nothing
    assert twin_veto_streak(tmp_path, 3, offline_none) == 0
    assert twin_veto_streak(tmp_path, 3, no_twin) == 0
    assert twin_veto_streak(tmp_path, 2, froze) == 2  # d1 froze too, and there is no d0


def test_the_veto_warning_waits_for_the_configured_run_length(tmp_path, monkeypatch):
    import bremen_robot.campaign.selection as camp_sel

    monkeypatch.setattr(
        camp_sel, "_act", lambda artifact, task, seed: "random" if artifact is None else "snap"
    )
    monkeypatch.setattr(camp_sel, "twin_score", lambda act, *a: (10.0 if act == "random" else -50.0, 5))
    camp = selecting_campaign(tmp_path, deployments=3, twin=True, data_engine="mujoco", twin_veto_warning=3)
    _, messages = run(tmp_path, camp)
    warned = [m.split(":")[0] for m in messages if "WARNING: the twin has vetoed" in m]
    assert warned == ["deployment 3"]
