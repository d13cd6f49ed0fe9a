"""``bremen review`` finds the campaign's recorded evaluations by artifact digest and policy id,
shows the verdict at the top of the terminal output, and writes the page where the console links."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from registry_helpers import ArtifactFactory
from review_fixtures import REPORT, campaign_like, write_json

from bremen_robot.cli import main
from bremen_robot.registry import Registry, init_operator
from bremen_robot.registry.evidence import recorded_evaluations


def _review(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["review", *argv]) == 0
    return capsys.readouterr().out


def _verdict(capsys: pytest.CaptureFixture[str], workspace: Path, policy_id: str) -> tuple[str, str]:
    """The review's whole output, and its verdict block on one line (labels are padded to one width)."""
    out = _review(capsys, policy_id, "--workspace", str(workspace), "--no-video", "--no-plots")
    return out, " ".join(out.split("\n\n")[0].split())


def test_the_recorded_evaluation_is_shown_not_not_run(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    rec = campaign_like(workspace, registry, artifact_factory)
    out = _review(capsys, rec.id, "--workspace", str(workspace), "--no-video")
    lines = out.splitlines()
    assert lines[0] == f"VERDICT: candidate {rec.id} vs deployed random"
    assert "candidate: -12.5 ± 1.1 (4 episodes, d1/eval.json)" in out
    assert "deployed:  -38.0 ± 1.4 (4 episodes, d1/eval_random.json)" in out
    assert "candidate: 75 %" in out
    # the random policy's collection: 6 interventions in 3 episodes (no bag here: no reasons)
    assert (
        "deployed:  2.00 per episode (reasons not recorded; 6 in 3 episodes, collection of deployment 1)"
        in out
    )
    assert "the collection added N(0, 0.1²)" in out
    assert "simulation evaluation: not run" not in out and "not run" not in out.split("\n\n")[0]
    assert "simulation evaluation: return_mean -12.5" in out
    assert "imagined vs real return: imagined -12.5, real -12.5" in out
    verdict = out.split("\n\n")[0]
    # the decoy evaluation of another digest (mean 99.0) is never used (ids are hex: "99" alone can be in one)
    assert "99.0" not in verdict
    page = workspace / "reviews" / rec.id / "review.html"
    assert f"review page: {page}" in out
    html = page.read_text()
    assert "-12.5 ± 1.1 (4 episodes, d1/eval.json)" in html
    assert "video left out (--no-video)" in html
    # the sim2real block of the same recorded evaluation, as a table on the page and in the text
    assert (
        "<td>other</td><td>pybullet</td><td>False</td>\n<td>4</td><td>-15.0 ± 2.0</td><td>50 %</td>" in html
    )
    assert "transfer ratio 1.20" in html
    assert "sim2real: train_return_mean -12.5, other_return_mean -15, transfer_ratio 1.2" in out


def test_evaluations_are_matched_on_the_digest(
    workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    rec = campaign_like(workspace, registry, artifact_factory)
    assert [
        r.path.relative_to(workspace).as_posix() for r in recorded_evaluations(workspace, rec.sha256)
    ] == ["d1/eval.json"]
    assert [r.data["mean"] for r in recorded_evaluations(workspace, "random")] == [-38.0]
    assert recorded_evaluations(workspace, "e" * 64) == []


def test_without_a_recorded_evaluation_the_verdict_says_so(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    rec = campaign_like(workspace, registry, artifact_factory)
    (workspace / "d1" / "eval.json").unlink()
    out_dir = workspace / "elsewhere"
    out = _review(
        capsys, rec.id, "--workspace", str(workspace), "--no-video", "--no-plots", "--out", str(out_dir)
    )
    assert "candidate: not evaluated" in out
    assert "RED FLAG (not_evaluated): the candidate has no recorded simulation evaluation" in out
    assert (out_dir / "review.html").is_file() and not list(out_dir.glob("*.png"))


def _add_interventions(path: Path, record: dict[str, object]) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "interventions": record}))


def test_the_evaluations_counted_interventions_are_compared_like_with_like(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    rec = campaign_like(workspace, registry, artifact_factory)
    # the candidate: 10 in its 4 evaluation episodes = 2.5 per episode; the random policy: 36 in 4
    cand = {"rate_limit": 8, "position_limit": 2}
    _add_interventions(
        workspace / "d1" / "eval.json",
        {"mode": "observe", "episodes": 4, "total": 10, "per_episode": 2.5, "by_reason": cand},
    )
    _add_interventions(
        workspace / "d1" / "eval_random.json",
        {"mode": "observe", "episodes": 4, "total": 36, "per_episode": 9.0, "by_reason": {"rate_limit": 36}},
    )
    out, verdict = _verdict(capsys, workspace, rec.id)
    assert (
        "safety interventions in evaluation candidate: 2.50 per episode (position_limit 0.50, "
        "rate_limit 2.00; 10 in 4 episodes, d1/eval.json, observe mode)"
    ) in verdict
    assert (
        "deployed: 9.00 per episode (rate_limit 9.00; 36 in 4 episodes, d1/eval_random.json, observe mode)"
        in verdict
    )
    # the collection's figure is still shown, labelled as such
    assert "safety interventions in collection candidate: no collection yet" in verdict
    assert "2.00 per episode (reasons not recorded; 6 in 3 episodes, collection of deployment 1)" in verdict
    assert (
        "RED FLAG (many_interventions): the safety shield would intervene 2.5 times per episode in its "
        "simulation evaluation (more than 1): the policy leans on the shield"
    ) in verdict
    # the detailed report below shows the same count
    assert "safety interventions in evaluation: 2.50 per episode (position_limit 0.50" in out


def test_an_evaluation_without_the_count_is_not_shown_as_not_run(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    rec = campaign_like(workspace, registry, artifact_factory)  # eval files written before the count
    why = "the evaluation env (PointEnv) exposes no joint states to the shield"
    _add_interventions(workspace / "d1" / "eval_random.json", {"mode": "observe", "not_measured": why})
    out, verdict = _verdict(capsys, workspace, rec.id)
    assert (
        "safety interventions in evaluation candidate: not recorded in this evaluation "
        "(d1/eval.json predates the count)"
    ) in verdict
    assert f"deployed: not measured in this evaluation: {why}" in verdict
    assert "not run" not in verdict and "many_interventions" not in verdict
    assert "safety interventions in evaluation: not recorded in this evaluation" in out


NOT_SHIELDED = "not shielded (deployment 1 was collected by the direct collector)"


@pytest.mark.parametrize(
    ("summary", "shown"),
    [
        # what the direct collector (benchmarks, no ROS graph, no shield) writes
        ({"interventions": None, "shielded": False, "collector": "direct"}, NOT_SHIELDED),
        # what it wrote before 2026-12-06 (benchmarks/runs/*/seed*/d1/collect.json): no 'shielded'
        ({"interventions": 0, "collector": "direct", "return_mean": 1.97}, NOT_SHIELDED),
        # a summary without a count is no count either
        ({"collector": "graph"}, "no intervention count in d1/collect.json"),
    ],
    ids=["direct", "direct-before-shielded", "no-count"],
)
def test_a_collection_without_a_shield_or_a_count_is_not_shown_as_zero_interventions(
    capsys: pytest.CaptureFixture[str],
    workspace: Path,
    registry: Registry,
    artifact_factory: ArtifactFactory,
    summary: dict,
    shown: str,
) -> None:
    """Neither is 'a shield that never intervened'."""
    rec = campaign_like(workspace, registry, artifact_factory)
    collected = {"steps": 300, "episodes": 3, "policy_id": "random", "deployment": 1, **summary}
    (workspace / "d1" / "collect.json").write_text(json.dumps(collected))
    out, verdict = _verdict(capsys, workspace, rec.id)
    assert f"safety interventions in collection candidate: no collection yet deployed: {shown}" in verdict
    assert "0 in 3 episodes" not in out


def test_an_unreadable_collect_yaml_leaves_the_noise_out_not_the_review(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    """A half-written or hand-broken d<k>/collect.yaml is not a YAML document: the review shows the
    rest (docs: odd files are shown as far as they go, never an error), without the noise."""
    rec = campaign_like(workspace, registry, artifact_factory)
    (workspace / "d1" / "collect.yaml").write_text("noise_sigma: [0.1\nseed: 1\n")
    out, verdict = _verdict(capsys, workspace, rec.id)
    assert f"VERDICT: candidate {rec.id} vs deployed random" in verdict
    assert "candidate: -12.5 ± 1.1 (4 episodes, d1/eval.json)" in verdict
    assert "the collection added N(0" not in out


def test_a_signature_by_another_key_than_the_workspaces_key_of_that_name_is_a_red_flag(
    capsys: pytest.CaptureFixture[str],
    workspace: Path,
    registry: Registry,
    artifact_factory: ArtifactFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The workspace trusts alice's key; someone approved as 'alice' with a pair of his own (the
    registry accepts it: its operator folder had no alice.pub, so the .pub beside --key counted).
    The review must not say 'signed by alice ... no public key in this workspace' without a flag:
    the workspace holds alice's key, and it did not sign."""
    rec = campaign_like(workspace, registry, artifact_factory)
    _, real_pub = init_operator("alice", tmp_path / "alice-home")
    (workspace / "trusted_operators").mkdir()
    shutil.copy(real_pub, workspace / "trusted_operators" / "alice.pub")
    other_priv, _ = init_operator("alice", tmp_path / "someone-else")
    monkeypatch.setenv("BREMEN_OPERATOR_DIR", str(tmp_path / "empty"))
    registry.approve(rec.id, "alice", other_priv, note="ok")
    out, verdict = _verdict(capsys, workspace, rec.id)
    assert "RED FLAG (signature)" in verdict
    assert "which is not the key of alice in this workspace (alice.pub, key " in verdict
    assert "no public key in this workspace" not in out


def test_a_selection_record_of_another_training_is_not_this_candidates(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    """d1/selection.json is the campaign's decision on deployment 1's training (its 'training'
    digest names that training's selection table). A policy trained on the same data without
    selection (its report has no 'selection') was never proposed, vetoed or warned about there."""
    rec = campaign_like(workspace, registry, artifact_factory)
    other_training = {
        "snapshots": [{"name": "trpo-0040", "estimate": 3.0, "chosen": True}],
        "chosen": "trpo-0040",
    }
    record = {
        "deployment": 1,
        "twin": {
            "engine": "pybullet",
            "deployed": -38.0,
            "vetoed": ["trpo-0040: twin -90.0 is clearly below"],
        },
        "warning": "trpo-0040 is proposed although it does not beat the deployed policy",
        "line": "no snapshot beats the deployed policy; proposing trpo-0040 with a warning for the operator",
        "keep_deployed": False,
        "proposed": "trpo-0040",
        "training": hashlib.sha256(json.dumps(other_training, sort_keys=True).encode()).hexdigest(),
    }
    write_json(workspace / "d1" / "selection.json", record)
    out, verdict = _verdict(capsys, workspace, rec.id)
    assert "trpo-0040" not in out
    assert "RED FLAG" not in verdict
    # the same record, decided on this policy's own training, is its selection
    own = registry.register(
        artifact_factory(seed=7),
        report={**REPORT, "selection": other_training},
        lineage={"parent": "random", "deployment": 1},
    )
    registry.close()
    out, verdict = _verdict(capsys, workspace, own.id)
    assert "candidate selection: no snapshot beats the deployed policy; proposing trpo-0040" in verdict
    assert "RED FLAG (twin_veto): the twin check vetoed the proposed snapshot trpo-0040" in verdict
    assert "RED FLAG (selection_warning): trpo-0040 is proposed although" in verdict


def test_an_approvals_row_whose_approver_or_note_differs_from_what_was_signed_is_a_red_flag(
    capsys: pytest.CaptureFixture[str],
    workspace: Path,
    registry: Registry,
    artifact_factory: ArtifactFactory,
    tmp_path: Path,
) -> None:
    """The review shows the approvals row's operator and note; only the payload is signed. A row
    edited past the append-only triggers must not read as 'signed by bob ... verified'."""
    rec = campaign_like(workspace, registry, artifact_factory)
    priv, pub = init_operator("alice", tmp_path / "alice-home")
    (workspace / "trusted_operators").mkdir()
    shutil.copy(pub, workspace / "trusted_operators" / "alice.pub")
    registry.approve(rec.id, "alice", priv, note="sim only")
    registry._conn.execute("DROP TRIGGER approvals_no_update")
    registry._conn.execute("UPDATE approvals SET operator = 'bob', note = 'checked on the real robot'")
    registry.close()
    out, verdict = _verdict(capsys, workspace, rec.id)
    assert "RED FLAG (signature): signature: INVALID: the registry's approver, time or note differ" in verdict
    assert "verified with alice.pub" not in out
