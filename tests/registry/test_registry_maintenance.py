"""``bremen registry check | backup | restore`` (item 8): find every problem, copy safely, never
overwrite silently."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
from registry_helpers import ArtifactFactory
from test_registry_damage import _corrupt_table, _set_column

from bremen_robot.cli import main
from bremen_robot.registry import Registry


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def populated(workspace: Path, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]) -> dict[str, str]:
    """random deployment 1, an approved+deployed policy, an approved one and a candidate."""
    with Registry.open(workspace) as reg:
        reg.record_random_deployment("random")
        deployed = reg.approve(reg.register(artifact_factory()).id, "alice").id
        reg.mark_deployed(deployed)
        approved = reg.approve(reg.register(artifact_factory()).id, "alice").id
        candidate = reg.register(artifact_factory()).id
    return {"deployed": deployed, "approved": approved, "candidate": candidate}


def _raw(db_file: Path, *sql: str) -> None:
    conn = sqlite3.connect(db_file, isolation_level=None)
    try:
        for s in sql:
            conn.execute(s)
    finally:
        conn.close()


def test_check_ok(capsys: pytest.CaptureFixture[str], workspace: Path, populated: dict[str, str]) -> None:
    code, out, err = run(capsys, "registry", "check")
    assert (code, err) == (0, "")
    assert out == (
        f"registry {workspace / 'registry.sqlite'}: ok "
        "(2 approval signature(s) verified, 3 store entries hashed)\n"
    )


def test_check_reports_each_problem_on_one_line(
    capsys: pytest.CaptureFixture[str], workspace: Path, populated: dict[str, str]
) -> None:
    db_file = workspace / "registry.sqlite"
    dep, appr, cand = populated["deployed"], populated["approved"], populated["candidate"]
    other_sig = base64.b64encode(bytes(64)).decode()
    _raw(
        db_file,
        "DROP TRIGGER approvals_no_update",
        f"UPDATE approvals SET note = 'edited' WHERE substr(policy_sha256, 1, 12) = '{dep}'",
        f"UPDATE approvals SET signature = '{other_sig}' WHERE substr(policy_sha256, 1, 12) = '{appr}'",
        # a legal transition, written without its audit row
        f"UPDATE policies SET state = 'rejected' WHERE substr(sha256, 1, 12) = '{cand}'",
    )
    with Registry.open(workspace) as reg:
        stored = reg.get(cand).artifact_dir
    assert stored is not None
    os.chmod(stored, 0o755)
    os.chmod(stored / "policy.pt", 0o644)
    with open(stored / "policy.pt", "ab") as f:
        f.write(b"\0")
    code, out, err = run(capsys, "registry", "check")
    assert code == 1 and err.strip().endswith(": 4 problem(s)")
    lines = out.strip().splitlines()
    assert len(lines) == 4
    text = "\n".join(lines)
    assert f"approval of {dep} by 'alice': the signed payload differs from the approval row" in text
    assert f"approval of {appr} by 'alice': the signature does not verify against the key of 'alice'" in text
    assert f"policy {cand}: state 'rejected' but the audit log's last entry says 'candidate'" in text
    assert f"artifact store: policy {cand}: file hash" in text


def test_check_finds_damage(
    capsys: pytest.CaptureFixture[str], workspace: Path, populated: dict[str, str]
) -> None:
    db_file = workspace / "registry.sqlite"
    _set_column(db_file, populated["approved"], "report_json", "{oops")
    code, out, _ = run(capsys, "registry", "check")
    assert code == 1
    assert f"policy {populated['approved']} report_json is not JSON" in out
    _corrupt_table(db_file, "audit")
    code, out, _ = run(capsys, "registry", "check")
    assert code == 1 and "integrity: " in out


def test_check_approvals_made_before_binding(
    capsys: pytest.CaptureFixture[str],
    workspace: Path,
    populated: dict[str, str],
    operator_dir: Path,
    tmp_path: Path,
) -> None:
    """Approvals from a schema-1 registry have no bound key: the operator folder's .pub verifies them."""
    _raw(workspace / "registry.sqlite", "DROP TRIGGER operator_keys_no_delete", "DELETE FROM operator_keys")
    code, out, _ = run(capsys, "registry", "check")
    assert code == 0 and "2 approval signature(s) verified" in out
    empty = tmp_path / "no-keys"
    empty.mkdir()
    code, out, _ = run(capsys, "registry", "check", "--operators", str(empty))
    assert code == 1 and out.count("cannot verify, no public key for 'alice'") == 2


def test_backup_is_a_checked_copy_and_never_overwrites(
    capsys: pytest.CaptureFixture[str], workspace: Path, populated: dict[str, str], tmp_path: Path
) -> None:
    out_file = tmp_path / "backups" / "reg-1.sqlite"
    out_file.parent.mkdir()
    writer = sqlite3.connect(workspace / "registry.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a writer in the middle of a transaction: not in the copy
    writer.execute(
        "INSERT INTO audit (policy_sha256, at, actor, from_state, to_state, note)"
        " SELECT sha256, 'now', 'x', NULL, 'candidate', 'uncommitted' FROM policies LIMIT 1"
    )
    code, out, err = run(capsys, "registry", "backup", "--out", str(out_file))
    writer.execute("ROLLBACK")
    writer.close()
    assert code == 0, err
    assert out.startswith(f"backed up {workspace / 'registry.sqlite'} to {out_file}")
    with (
        Registry.open(workspace, readonly=True) as live,
        Registry.open(url=str(out_file), readonly=True) as copy,
    ):
        assert [r.sha256 for r in copy.policies()] == [r.sha256 for r in live.policies()]
        assert [a.note for a in copy.audit()] == [a.note for a in live.audit()]
        assert "uncommitted" not in [a.note for a in copy.audit()]
    before = _digest(out_file)
    code, _, err = run(capsys, "registry", "backup", "--out", str(out_file))
    assert code == 2 and "already exists; backups never overwrite" in err
    assert _digest(out_file) == before
    assert sorted(p.name for p in out_file.parent.iterdir()) == ["reg-1.sqlite"]  # no temp files


def test_backup_of_a_damaged_registry_is_refused(
    capsys: pytest.CaptureFixture[str], workspace: Path, populated: dict[str, str], tmp_path: Path
) -> None:
    _corrupt_table(workspace / "registry.sqlite", "policies")
    code, _, err = run(capsys, "registry", "backup", "--out", str(tmp_path / "b.sqlite"))
    assert code == 2 and "(database disk image is malformed); nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".registry", "b."))) == []


def test_restore_never_overwrites_silently(
    capsys: pytest.CaptureFixture[str], workspace: Path, populated: dict[str, str], tmp_path: Path
) -> None:
    db_file = workspace / "registry.sqlite"
    good = tmp_path / "good.sqlite"
    assert run(capsys, "registry", "backup", "--out", str(good))[0] == 0
    _corrupt_table(db_file, "policies")
    damaged = _digest(db_file)

    code, _, err = run(capsys, "registry", "restore", str(good))
    assert code == 2 and "exists; pass --replace" in err
    assert _digest(db_file) == damaged

    code, out, err = run(capsys, "registry", "restore", str(good), "--replace")
    assert code == 0, err
    kept = [p for p in workspace.iterdir() if p.name.startswith("registry.sqlite.replaced-")]
    assert len(kept) == 1 and _digest(kept[0]) == damaged and str(kept[0]) in out
    assert run(capsys, "registry", "check")[0] == 0
    with Registry.open(workspace, readonly=True) as reg:
        assert {r.id for r in reg.policies()} == {"random", *populated.values()}


def test_restore_refuses_a_bad_backup(
    capsys: pytest.CaptureFixture[str], workspace: Path, populated: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database" * 300)
    before = _digest(workspace / "registry.sqlite")
    code, _, err = run(capsys, "registry", "restore", str(bad), "--replace")
    assert code == 2 and f"backup '{bad}'" in err
    assert _digest(workspace / "registry.sqlite") == before
    assert not [p for p in workspace.iterdir() if "replaced" in p.name or p.name.startswith(".")]


def test_restore_into_a_new_workspace(
    capsys: pytest.CaptureFixture[str], workspace: Path, populated: dict[str, str], tmp_path: Path
) -> None:
    good = tmp_path / "good.sqlite"
    assert run(capsys, "registry", "backup", "--out", str(good))[0] == 0
    fresh = tmp_path / "fresh"
    code, out, err = run(capsys, "registry", "restore", str(good), "--workspace", str(fresh))
    assert code == 0 and "kept as" not in out, err
    with Registry.open(fresh, readonly=True) as reg:
        assert len(reg.policies()) == 4


def test_two_restores_in_one_second_keep_both_replaced_databases(
    capsys: pytest.CaptureFixture[str],
    workspace: Path,
    populated: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The aside name has a one-second stamp: a second restore in the same second must not rename
    over the first one's kept database (os.rename replaces silently), which would delete it."""
    from datetime import datetime, timezone

    from bremen_robot.registry import maintenance

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz: object = None) -> FrozenClock:
            return cls(2026, 1, 10, 9, 12, 0, tzinfo=timezone.utc)

    monkeypatch.setattr(maintenance, "datetime", FrozenClock)
    db_file = workspace / "registry.sqlite"
    good = tmp_path / "good.sqlite"
    assert run(capsys, "registry", "backup", "--out", str(good))[0] == 0
    _corrupt_table(db_file, "policies")
    original = _digest(db_file)

    assert run(capsys, "registry", "restore", str(good), "--replace")[0] == 0
    restored = _digest(db_file)
    code, out, err = run(capsys, "registry", "restore", str(good), "--replace")
    assert code == 0, err
    kept = {_digest(p) for p in workspace.iterdir() if p.name.startswith("registry.sqlite.replaced-")}
    assert original in kept and restored in kept


def test_check_reports_an_approved_policy_without_an_approval(
    capsys: pytest.CaptureFixture[str], workspace: Path, populated: dict[str, str]
) -> None:
    """candidate -> approved is a legal move for the trigger, and an audit row can be appended by
    hand: the registry then calls the policy approved with no signature anywhere, and its check
    must not answer 'ok'."""
    cand = populated["candidate"]
    _raw(
        workspace / "registry.sqlite",
        f"UPDATE policies SET state = 'approved' WHERE substr(sha256, 1, 12) = '{cand}'",
        "INSERT INTO audit (policy_sha256, at, actor, from_state, to_state, note)"
        f" SELECT sha256, 'now', 'mallory', 'candidate', 'approved', '' FROM policies"
        f" WHERE substr(sha256, 1, 12) = '{cand}'",
    )
    code, out, err = run(capsys, "registry", "check")
    assert code == 1 and err.strip().endswith(": 1 problem(s)")
    assert out.strip().splitlines() == [
        f"{workspace / 'registry.sqlite'}: policy {cand}: state 'approved' but no approval is recorded "
        "(unsigned); reject it, or restore the last good backup"
    ]
