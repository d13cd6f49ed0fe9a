"""A rejected candidate: the campaign keeps its training aside, records it, trains another and
asks again, in the same run or, when no campaign was running, in the next one. It used to stop
with status "failed" until the operator moved ``d<k>/train`` aside by hand.

Runs in-process on the toy task (tests/campaign/test_campaign_logic.py's helpers), in seconds.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.campaign.runner import Campaign
from bremen_robot.policy.artifact import load_artifact, load_manifest
from bremen_robot.registry import Registry
from tests.campaign.test_campaign_logic import DirectCollector, _with_trusted_operator, write_campaign

WAITING = re.compile(r"waiting for approval of candidate (\w+) for deployment (\d+)")
OBS = np.random.default_rng(0).uniform(-1, 1, size=(32, 2)).astype(np.float32)


def _decide_in_turn(ws: Path, messages: list[str], decisions: list[str]) -> threading.Thread:
    """Like a person in another terminal: each new candidate the campaign waits for gets the next
    decision ("reject" or "approve")."""

    def act() -> None:
        seen: list[str] = []
        for _ in range(1200):
            time.sleep(0.05)
            waiting = [m.group(1) for m in map(WAITING.match, list(messages)) if m]
            for pid in waiting:
                if pid in seen:
                    continue
                seen.append(pid)
                with Registry.open(ws) as reg:
                    if decisions[len(seen) - 1] == "reject":
                        reg.reject(pid, "joint 3 oscillates", operator="alice")
                    else:
                        reg.approve(pid, "alice")
                if len(seen) == len(decisions):
                    return

    t = threading.Thread(target=act)
    t.start()
    return t


def _kept_line(ws: Path, pid: str) -> str:
    return (
        f"deployment 1: candidate {pid} was rejected by alice (joint 3 oscillates); its training is kept "
        f"at {ws}/d1/train.rejected-1 ({ws}/rejections.json); training a new candidate on the same data "
        "with another seed"
    )


def _recorded(ws: Path) -> list[dict]:
    records = json.loads((ws / "rejections.json").read_text())
    for r in records:
        assert set(r) == {
            "deployment",
            "policy_id",
            "sha256",
            "state",
            "by",
            "at",
            "reason",
            "training_kept_at",
            "moved_at",
        }
        r.pop("at"), r.pop("moved_at")
    return records


def test_a_rejection_while_the_campaign_waits_trains_another_candidate_and_asks_again(tmp_path, monkeypatch):
    cfg = _with_trusted_operator(tmp_path, monkeypatch)
    ws = (tmp_path / "ws").resolve()
    messages: list[str] = []
    t = _decide_in_turn(ws, messages, ["reject", "approve"])
    collector = DirectCollector()
    summary = Campaign(cfg, ws, collect_fn=collector, log=messages.append).run()
    t.join()
    asked = [m.group(1) for m in map(WAITING.match, messages) if m]
    assert len(asked) == 2 and asked[0] != asked[1]
    rejected, second = asked
    assert _kept_line(ws, rejected) in messages
    assert collector.calls == [1, 2] and summary["deployment_count"] == 2
    assert summary["deployments"][1]["policy_id"] == second  # deployment 2 ran the new candidate
    with Registry.open(ws) as reg:
        assert (reg.get(rejected).state, reg.get(second).state) == ("rejected", "deployed")
        sha = reg.get(rejected).sha256
    kept = ws / "d1" / "train.rejected-1"
    assert load_manifest(kept).policy_sha256 == sha  # the rejected training, whole
    assert _recorded(ws) == [
        {
            "deployment": 1,
            "policy_id": rejected,
            "sha256": sha,
            "state": "rejected",
            "by": "alice",
            "reason": "joint 3 oscillates",
            "training_kept_at": "d1/train.rejected-1",
        }
    ]
    # another seed: the same one would give a policy acting bit-identically to the rejected one
    assert not np.array_equal(load_artifact(ws / "d1" / "train").act(OBS), load_artifact(kept).act(OBS))
    assert json.loads((ws / "d1" / "eval.json").read_text())["policy_sha256"] != sha
    assert json.loads((ws / "status.json").read_text())["stage"] == "finished"


def test_a_candidate_rejected_while_no_campaign_ran_is_trained_again_by_the_next_run(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path, deployments=1))
    ws = (tmp_path / "ws").resolve()

    def run(messages: list[str]) -> dict:
        return Campaign(cfg, ws, auto_approve=True, collect_fn=DirectCollector(), log=messages.append).run()

    first = run([])["final_candidate"]["policy_id"]
    with Registry.open(ws) as reg:
        reg.reject(first, "joint 3 oscillates", operator="alice")
        sha = reg.get(first).sha256
    messages: list[str] = []
    second = run(messages)["final_candidate"]
    assert second["policy_id"] != first and second["state"] == "candidate"
    assert [m for m in messages if "was rejected" in m] == [_kept_line(ws, first)]
    kept = ws / "d1" / "train.rejected-1"
    assert load_manifest(kept).policy_sha256 == sha
    assert not np.array_equal(load_artifact(ws / "d1" / "train").act(OBS), load_artifact(kept).act(OBS))
    assert [r["policy_id"] for r in _recorded(ws)] == [first]
    assert json.loads((ws / "d1" / "eval.json").read_text())["policy_sha256"] != sha
    # the new candidate is not turned down: a third run changes nothing
    third = run([])["final_candidate"]["policy_id"]
    assert third == second["policy_id"]
    assert not (ws / "d1" / "train.rejected-2").exists() and len(_recorded(ws)) == 1


def test_the_campaign_log_names_the_success_rate_where_the_evaluation_has_one(tmp_path, monkeypatch):
    import bremen_robot.campaign.runner as runner

    real_evaluate = runner.evaluate_policy
    rates = iter([0.0, 0.65])

    def evaluate_with_success(*args, **kwargs):
        return {**real_evaluate(*args, **kwargs), "success_rate": next(rates)}

    monkeypatch.setattr(runner, "evaluate_policy", evaluate_with_success)
    cfg = load_campaign_config(write_campaign(tmp_path, deployments=1))
    messages: list[str] = []
    summary = Campaign(
        cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=messages.append
    ).run()
    final = summary["final_candidate"]
    said = [m for m in messages if " evaluates to " in m]
    assert said == [
        f"deployment 1: candidate {final['policy_id']} evaluates to {final['eval_return_mean']:.1f} ± "
        f"{final['eval_return_std']:.1f}, success 65% (point)"
    ]


@pytest.mark.parametrize(
    ("state", "deployments", "expected"),
    [("rejected", (), True), ("retired", (), True), ("retired", (2,), False), ("candidate", (), False)],
)
def test_what_counts_as_turned_down(state, deployments, expected):
    from types import SimpleNamespace

    from bremen_robot.campaign.rejection import turned_down

    assert turned_down(SimpleNamespace(state=state, deployments=list(deployments))) is expected


def test_waiting_for_a_policy_retired_after_it_collected_stops_the_campaign(tmp_path, monkeypatch):
    """Retired with deployments is not 'turned down' (its data stays) and can never be approved:
    the wait used to poll for ever, telling the operator to approve it."""
    from types import SimpleNamespace

    from bremen_robot.errors import BremenError

    cfg = _with_trusted_operator(tmp_path, monkeypatch)
    states = iter(["candidate", "candidate", "retired"])

    class StubRegistry:
        def get(self, policy_id: str) -> SimpleNamespace:
            return SimpleNamespace(id=policy_id, state=next(states), deployments=[2], approval=None)

    campaign = Campaign(cfg, tmp_path / "ws", collect_fn=DirectCollector(), log=lambda m: None)
    with pytest.raises(BremenError) as err:
        campaign._wait_for_approval(StubRegistry(), "abcdef123456", 3)
    assert str(err.value) == (
        "deployment 3: policy abcdef123456 was retired after it collected data, so it can never be "
        "approved again; the campaign stops here (the workspace and its data are kept): start a new "
        "campaign workspace to go on"
    )


def _reject_the_first_run(tmp_path: Path) -> tuple[Any, Path, str, str]:
    """One deployment run to its candidate, then rejected by alice: (config, ws, id, sha)."""
    cfg = load_campaign_config(write_campaign(tmp_path, deployments=1))
    ws = (tmp_path / "ws").resolve()
    first = Campaign(cfg, ws, auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None).run()
    pid = first["final_candidate"]["policy_id"]
    with Registry.open(ws) as reg:
        reg.reject(pid, "joint 3 oscillates", operator="alice")
        return cfg, ws, pid, reg.get(pid).sha256


def test_a_rejection_the_registry_count_misses_still_moves_the_seed_on(tmp_path, monkeypatch):
    """A candidate registered with other lineage (by hand, before the campaign) is not counted by
    lineage; retraining with the same seed would ask the operator about the policy they rejected."""
    import bremen_robot.campaign.rejection as rejection

    cfg, ws, first, sha = _reject_the_first_run(tmp_path)
    monkeypatch.setattr(rejection, "rejected_on", lambda reg, digests: 0)
    second = Campaign(cfg, ws, auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None).run()
    assert second["final_candidate"]["policy_id"] != first  # every export has a new sha, even so:
    kept = ws / "d1" / "train.rejected-1"
    assert load_manifest(kept).policy_sha256 == sha
    # the same seed would give a policy acting exactly as the rejected one, under a new id
    assert not np.array_equal(load_artifact(ws / "d1" / "train").act(OBS), load_artifact(kept).act(OBS))
    assert [r["policy_id"] for r in _recorded(ws)] == [first]


def test_an_interrupt_between_recording_and_moving_a_rejection_is_finished_by_the_next_run(
    tmp_path, monkeypatch
):
    cfg, ws, first, sha = _reject_the_first_run(tmp_path)
    real_rename = Path.rename

    def interrupted(self: Path, target: Any) -> Any:
        if ".rejected-" in str(target):
            raise KeyboardInterrupt
        return real_rename(self, target)

    with monkeypatch.context() as m:
        m.setattr(Path, "rename", interrupted)
        with pytest.raises(KeyboardInterrupt):
            Campaign(cfg, ws, auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None).run()
    assert [r["training_kept_at"] for r in _recorded(ws)] == ["d1/train.rejected-1"]
    assert not (ws / "d1" / "train.rejected-1").exists()  # recorded, not moved yet
    messages: list[str] = []
    second = Campaign(cfg, ws, auto_approve=True, collect_fn=DirectCollector(), log=messages.append).run()
    assert second["final_candidate"]["policy_id"] != first
    assert [m for m in messages if "was rejected" in m] == [_kept_line(ws, first)]
    assert load_manifest(ws / "d1" / "train.rejected-1").policy_sha256 == sha
    assert [(r["policy_id"], r["training_kept_at"]) for r in _recorded(ws)] == [
        (first, "d1/train.rejected-1")
    ]
    assert not (ws / "d1" / "train.rejected-2").exists()


@pytest.mark.parametrize(
    "text",
    ['[{"deployment": 1, "policy_id": "a"},', '{"note": "x"}', '[{"policy_id": "a", "note": "by hand"}]'],
)
def test_a_hand_edited_rejections_file_is_one_line_naming_it(tmp_path, text):
    """rejections.json is read before every training: an edit that breaks it must say so in one
    line (it ended every deployment with 'internal error JSONDecodeError', naming no file)."""
    from bremen_robot.campaign.rejection import rejected_count
    from bremen_robot.campaign.workspace import Workspace
    from bremen_robot.errors import BremenError

    class NoRegistry:
        def policies(self) -> list[Any]:
            return []

    (tmp_path / "rejections.json").write_text(text)
    try:
        count = rejected_count(Workspace(tmp_path), 2, NoRegistry(), [])
    except BremenError as exc:
        assert str(exc).startswith(f"{tmp_path / 'rejections.json'}: ") and "\n" not in str(exc)
    else:  # a record without a deployment is nobody's: it counts for no deployment
        assert count == 0 and "deployment" not in text
