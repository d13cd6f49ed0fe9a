"""Register -> review -> approve -> load, deployments, lineage, store immutability, schema."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest
from registry_helpers import SYNTHETIC_REPORT, ArtifactFactory

from bremen_robot.errors import ArtifactError
from bremen_robot.policy.artifact import load_artifact, sha256_file
from bremen_robot.registry import (
    ApprovalError,
    Registry,
    RegistryError,
    canonical_payload,
    load_public_key,
    verify_for_deployment,
    verify_signature,
)
from bremen_robot.registry import db as regdb
from bremen_robot.registry.review import render_text, write_plots
from bremen_robot.robot_config import RobotConfig


def test_full_flow_register_review_approve_load(
    registry: Registry,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    robot: RobotConfig,
    tmp_path: Path,
) -> None:
    export = artifact_factory(report=SYNTHETIC_REPORT)
    rec = registry.register(export)
    assert rec.state == "candidate"
    assert rec.sha256 == sha256_file(export / "policy.pt")
    assert rec.id == rec.sha256[:12]
    assert rec.report == SYNTHETIC_REPORT  # picked up from report.json beside the artifact

    text = render_text(registry.get(rec.id[:6]))
    assert "#0 0.35, #1 0.7" in text
    plots = write_plots(rec, tmp_path / "review")
    assert plots and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)

    approved = registry.approve(rec.id, "alice", note="curves fine")
    assert approved.state == "approved"
    assert approved.approval is not None and approved.approval.operator == "alice"
    payload = canonical_payload(
        rec.sha256, rec.manifest_digest, "alice", approved.approval.time, "curves fine"
    )
    assert approved.approval.payload == payload
    assert verify_signature(payload, approved.approval.signature, load_public_key(alice[1]))

    frozen = verify_for_deployment(rec.id, robot, registry)
    reference = load_artifact(export)
    obs = np.array([[0.3, -0.2], [1.0, 0.5]], dtype=np.float32)
    np.testing.assert_array_equal(frozen.act(obs), reference.act(obs))
    assert frozen.sha256 == rec.sha256

    # the same check accepts the original export folder, byte-identical to the stored copy
    assert verify_for_deployment(export, robot, registry).sha256 == rec.sha256

    assert registry.mark_deployed(rec.id) == 1
    assert registry.deployment_count() == 1
    final = registry.get(rec.id)
    assert final.state == "deployed" and final.deployments == [1]
    moves = [(a.from_state, a.to_state, a.actor) for a in registry.audit(rec.id)]
    assert moves[1:] == [("candidate", "approved", "alice"), ("approved", "deployed", moves[2][2])]
    assert moves[0][:2] == (None, "candidate")
    # a deployed policy still runs (a restarted collect), until retired
    assert verify_for_deployment(rec.id, robot, registry).sha256 == rec.sha256


def test_register_is_idempotent_and_store_is_read_only(
    registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    export = artifact_factory()
    first = registry.register(export, report={"bc": {"loss": [1.0, 0.5]}})
    stored = first.artifact_dir
    assert stored is not None and stored == registry.workspace / "artifacts" / first.sha256
    before = (stored / "policy.pt").stat()
    second = registry.register(export, report={"other": 1})
    assert second.sha256 == first.sha256
    assert second.report == {"bc": {"loss": [1.0, 0.5]}}  # the first registration is kept
    assert len(registry.policies()) == 1
    assert len(registry.audit()) == 1
    after = (stored / "policy.pt").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    for f in ("policy.pt", "manifest.json"):
        assert stat.S_IMODE((stored / f).stat().st_mode) == 0o444
    assert stat.S_IMODE(stored.stat().st_mode) == 0o555
    assert not [p for p in registry.store_dir.iterdir() if p.name.startswith(".")]  # no leftovers


def test_damaged_store_entry_is_never_overwritten(
    registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    export = artifact_factory()
    sha = sha256_file(export / "policy.pt")
    entry = registry.store_dir / sha
    entry.mkdir(parents=True)
    (entry / "policy.pt").write_bytes(b"something else")
    with pytest.raises(RegistryError, match="damaged"):
        registry.register(export)
    assert (entry / "policy.pt").read_bytes() == b"something else"
    assert registry.policies() == []


def test_register_refuses_an_export_whose_hash_differs_from_its_manifest(
    registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    export = artifact_factory()
    with open(export / "policy.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(ArtifactError, match="does not match the manifest"):
        registry.register(export)
    assert registry.policies() == []


def test_report_must_be_json(registry: Registry, artifact_factory: ArtifactFactory) -> None:
    export = artifact_factory()
    (export / "report.json").write_text("{not json")
    with pytest.raises(RegistryError, match="report"):
        registry.register(export)
    with pytest.raises(RegistryError, match="JSON"):
        registry.register(export, report={"bad": object()})
    assert registry.policies() == []


def test_random_first_deployment_and_lineage(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path], robot: RobotConfig
) -> None:
    assert (
        registry.record_random_deployment("uniform random, 200k steps", robot="pointbot", task="point") == 1
    )
    assert registry.record_random_deployment() == 1  # idempotent
    rnd = registry.get("random")
    assert (rnd.kind, rnd.state, rnd.deployments, rnd.approval) == ("random", "deployed", [1], None)
    with pytest.raises(ApprovalError, match="--random"):
        verify_for_deployment("random", robot, registry)

    a = registry.register(artifact_factory(), lineage={"parent": "random", "deployment": 1})
    assert a.lineage["parent"] == "random" and a.lineage["deployment"] == 1
    assert a.lineage["data_digests"] == [f"{0:064x}"]  # from the manifest
    registry.approve(a.id, "alice")
    assert registry.mark_deployed(a.id) == 2
    assert registry.mark_deployed(a.id) == 2  # the same policy is counted once
    assert registry.deployment_count() == 2

    b = registry.register(artifact_factory(), lineage={"parent": a.id[:6], "deployment": 2})
    assert b.lineage["parent"] == a.sha256  # prefix resolved to the full address
    registry.approve(b.id, "alice")
    with pytest.raises(RegistryError, match="next one is 3"):
        registry.mark_deployed(b.id, deployment=5)
    assert registry.mark_deployed(b.id, deployment=3) == 3
    assert [r.deployments for r in registry.policies()] == [[1], [2], [3]]


def test_random_policy_only_as_deployment_one(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    rec = registry.register(artifact_factory())
    registry.approve(rec.id, "alice")
    registry.mark_deployed(rec.id)
    with pytest.raises(RegistryError, match="first deployment"):
        registry.record_random_deployment()
    assert registry.deployment_count() == 1


def test_bad_lineage_is_refused(registry: Registry, artifact_factory: ArtifactFactory) -> None:
    export = artifact_factory()
    with pytest.raises(RegistryError, match="lineage.parent"):
        registry.register(export, lineage={"parent": "deadbeef"})
    with pytest.raises(RegistryError, match="lineage.deployment"):
        registry.register(export, lineage={"deployment": 0})
    assert registry.policies() == []


def test_state_machine(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    rec = registry.register(artifact_factory())
    with pytest.raises(ApprovalError, match="candidate, not approved"):
        registry.mark_deployed(rec.id)
    with pytest.raises(ApprovalError, match="reject it instead"):
        registry.retire(rec.id)
    registry.approve(rec.id, "alice")
    with pytest.raises(ApprovalError, match="already approved by alice"):
        registry.approve(rec.id, "alice")
    registry.mark_deployed(rec.id)
    with pytest.raises(ApprovalError, match="retire it instead"):
        registry.reject(rec.id, "too late")
    registry.retire(rec.id, note="superseded")
    with pytest.raises(ApprovalError, match="retired"):
        registry.mark_deployed(rec.id)
    with pytest.raises(ApprovalError, match="retired"):
        registry.retire(rec.id)

    other = registry.register(artifact_factory())
    with pytest.raises(RegistryError, match="reason"):
        registry.reject(other.id, "  ")
    registry.reject(other.id, "KL too large", operator="alice")
    with pytest.raises(ApprovalError, match="rejected by alice"):
        registry.approve(other.id, "alice")


def test_database_enforces_append_only_audit_and_legal_transitions(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    rec = registry.register(artifact_factory())
    registry.approve(rec.id, "alice")
    conn = sqlite3.connect(registry.db_path)
    try:
        for sql in (
            "UPDATE audit SET actor = 'mallory'",
            "DELETE FROM audit",
            "UPDATE approvals SET operator = 'mallory'",
            "DELETE FROM approvals",
            "DELETE FROM policies",
            "UPDATE policies SET state = 'candidate'",  # approved -> candidate is not a transition
            "UPDATE policies SET sha256 = 'abcd'",
        ):
            with pytest.raises(sqlite3.DatabaseError):
                conn.execute(sql)
    finally:
        conn.close()
    assert [a.to_state for a in registry.audit()] == ["candidate", "approved"]
    assert registry.get(rec.id).approval is not None


def test_failed_transaction_leaves_no_partial_state(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    rec = registry.register(artifact_factory())

    def boom(*args: object) -> None:
        raise RuntimeError("disk full")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Registry, "_append_audit", boom)
        with pytest.raises(RuntimeError):
            registry.approve(rec.id, "alice")  # approval row and state were written before the audit failed
    again = registry.get(rec.id)
    assert again.state == "candidate" and again.approval is None
    assert len(registry.audit()) == 1
    assert registry.approve(rec.id, "alice").state == "approved"  # and the registry still works


def test_schema_is_versioned_and_reopens(workspace: Path) -> None:
    Registry.open(workspace).close()
    reg = Registry.open(workspace)
    reg.close()
    conn = sqlite3.connect(workspace / "registry.sqlite")
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(regdb.SCHEMA_VERSION,)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(RegistryError, match="newer than this bremen-robot"):
        Registry.open(workspace)


def test_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db_file = tmp_path / "elsewhere" / "team.db"
    with Registry.open(tmp_path / "ws", url=f"sqlite:///{db_file}") as reg:
        assert reg.db_path == db_file
    assert db_file.is_file() and not (tmp_path / "ws" / "registry.sqlite").exists()
    monkeypatch.chdir(tmp_path)
    with Registry.open(tmp_path / "ws", url="sqlite:///rel.db") as reg:
        assert reg.db_path == Path("rel.db")
    for bad, msg in (
        ("postgresql://host/db", "only sqlite:// is supported"),
        ("sqlite://", "no file path"),
        ("sqlite:///:memory:", "in-memory"),
    ):
        with pytest.raises(RegistryError, match=msg):
            Registry.open(tmp_path / "ws", url=bad)
    with pytest.raises(RegistryError, match="no registry database"):
        Registry.open(tmp_path / "nothing-here", create=False)
    assert not (tmp_path / "nothing-here").exists()
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RegistryError, match="not a usable registry database"):
        Registry.open(tmp_path, url=f"sqlite:///{tmp_path / 'junk.db'}")
