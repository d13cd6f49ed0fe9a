"""Shadow runs in the registry: their own append-only table (schema v3), never a deployment;
an older registry upgrades in place; only a registered, unmodified artifact runs in shadow."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from registry_helpers import ArtifactFactory

from bremen_robot.cli import main
from bremen_robot.registry import ApprovalError, Registry, RegistryError
from bremen_robot.registry import db as regdb
from bremen_robot.registry.shadow_runs import record_shadow_run, shadow_runs, verify_for_shadow
from bremen_robot.robot_config import RobotConfig

SUMMARY = {
    "acting_steps": 4,
    "paired_steps": 3,
    "command_difference": {
        "mean_abs": {"x": 0.25},
        "max_abs": {"x": 0.5},
        "mean_abs_all": 0.25,
        "max_abs_all": 0.5,
    },
    "interventions": {"shadow": {"clipped_box": 2}, "acting": {}},
    "ood": {"steps": 3, "mean": 1.5, "max": 2.0},
}


def test_a_shadow_run_is_recorded_apart_and_counts_no_deployment(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    acting = registry.register(artifact_factory())
    registry.approve(acting.id, "alice", alice[0])
    assert registry.mark_deployed(acting.id) == 1
    cand = registry.register(artifact_factory())
    seq = record_shadow_run(registry, cand.id, acting.sha256, "/bags/s1", SUMMARY)
    record_shadow_run(registry, cand.id, acting.sha256, "/bags/s2", SUMMARY)
    assert registry.deployment_count() == 1
    rec = registry.get(cand.id)
    assert rec.state == "candidate" and rec.deployments == []
    assert [a.to_state for a in registry.audit(cand.id)] == ["candidate"]  # no state change, no audit row
    runs = shadow_runs(registry, cand.id)
    assert [(r.seq, r.bag, r.acting) for r in runs] == [
        (seq, "/bags/s1", acting.sha256),
        (seq + 1, "/bags/s2", acting.sha256),
    ]
    assert runs[0].summary == SUMMARY
    assert shadow_runs(registry, acting.id) == []
    # append-only, like approvals and deployments
    with pytest.raises(RegistryError, match="append-only"):
        registry._conn.execute("DELETE FROM shadow_runs")


def test_policies_and_review_show_the_shadow_runs(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    cand = registry.register(artifact_factory())
    record_shadow_run(registry, cand.id, "random", "/bags/s1", SUMMARY)
    registry.close()
    assert main(["policies", "--workspace", str(workspace)]) == 0
    out = capsys.readouterr().out
    assert "SHADOW" in out.splitlines()[1]
    row = next(line for line in out.splitlines() if line.startswith(cand.id))
    assert row.split()[6:8] == ["-", "1"]  # (after the date and time) deployments none, one shadow run
    assert main(["review", cand.id, "--no-plots", "--workspace", str(workspace)]) == 0
    out = capsys.readouterr().out
    assert "shadow runs: 1 (not deployments: the candidate moved nothing)" in out
    assert "beside random, bag /bags/s1" in out
    assert "interventions it would have caused: 2 (clipped_box 2)" in out
    assert "mean 1.5, max 2" in out


def test_an_older_registry_is_read_as_it_is_and_upgraded_by_a_writer(
    capsys: pytest.CaptureFixture[str],
    workspace: Path,
    artifact_factory: ArtifactFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db_file = workspace / "registry.sqlite"
    with monkeypatch.context() as m:  # the previous release: schema version 2, one policy in it
        m.setattr(regdb, "SCHEMA_VERSION", 2)
        with Registry.open(workspace) as reg:
            old = reg.register(artifact_factory())
    conn = sqlite3.connect(db_file)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (2,)
    conn.close()
    with Registry.open(workspace, readonly=True) as reg:  # readers neither migrate nor fail
        assert shadow_runs(reg) == [] and shadow_runs(reg, old.id) == []
    assert main(["policies", "--workspace", str(workspace)]) == 0
    assert main(["review", old.id, "--no-plots", "--workspace", str(workspace)]) == 0
    assert "shadow runs: none" in capsys.readouterr().out
    conn = sqlite3.connect(db_file)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (2,)
    conn.close()
    with Registry.open(workspace) as reg:  # a writer upgrades 2 -> the newest; the old policy stays
        assert reg.get(old.id).sha256 == old.sha256 and reg.get(old.id).state == "candidate"
        record_shadow_run(reg, old.id, "random", "/b", SUMMARY)
        assert [r.bag for r in shadow_runs(reg, old.id)] == ["/b"]
    conn = sqlite3.connect(db_file)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (regdb.SCHEMA_VERSION,)
    conn.close()


def test_an_unapproved_candidate_may_shadow_but_only_as_registered(
    registry: Registry, artifact_factory: ArtifactFactory, robot: RobotConfig
) -> None:
    rec = registry.register(artifact_factory())
    fp = verify_for_shadow(rec.id, robot, registry)  # a candidate: no approval needed
    assert fp.sha256 == rec.sha256
    with pytest.raises(ApprovalError, match="not registered"):
        verify_for_shadow("0123456789ab", robot, registry)
    assert rec.artifact_dir is not None
    policy_file = rec.artifact_dir / "policy.pt"
    policy_file.chmod(0o644)
    policy_file.write_bytes(policy_file.read_bytes() + b"x")  # the stored artifact was modified
    with pytest.raises(ApprovalError, match="differs from the registry"):
        verify_for_shadow(rec.id, robot, registry)
    other = registry.register(artifact_factory())
    registry.reject(other.id, "bad curves", operator="alice")
    with pytest.raises(ApprovalError, match="is rejected; only a candidate, approved or deployed"):
        verify_for_shadow(other.id, robot, registry)


def test_the_review_page_shows_the_shadow_runs_the_terminal_shows(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    """The page's full report is 'as bremen review prints it': the shadow runs, with the
    interventions the candidate would have caused, are part of what the terminal prints."""
    cand = registry.register(artifact_factory())
    record_shadow_run(registry, cand.id, "random", "/bags/s1", SUMMARY)
    registry.close()
    assert main(["review", cand.id, "--no-plots", "--no-video", "--workspace", str(workspace)]) == 0
    out = capsys.readouterr().out
    assert "interventions it would have caused: 2 (clipped_box 2)" in out
    html = (workspace / "reviews" / cand.id / "review.html").read_text()
    assert "shadow runs: 1 (not deployments: the candidate moved nothing)" in html
    assert "beside random, bag /bags/s1" in html
    assert "interventions it would have caused: 2 (clipped_box 2)" in html
