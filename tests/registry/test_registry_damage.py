"""Items 8 and 9: a damaged or empty registry file is a one-line registry error, never an
internal one, and read-only commands never create, migrate or write the database."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from registry_helpers import ArtifactFactory, record_torch_parses, robot_config

from bremen_robot.cli import main
from bremen_robot.errors import BremenError
from bremen_robot.registry import Registry, RegistryError, verify_for_deployment
from bremen_robot.registry import db as regdb
from bremen_robot.registry.errors import ApprovalError, RegistryDamagedError, RegistryDatabaseError
from bremen_robot.tasks import get_task


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], err
    return lines[0]


def _approved_registry(ws: Path, export: Path, alice: tuple[Path, Path]) -> str:
    with Registry.open(ws) as reg:
        return reg.approve(reg.register(export).id, "alice", note="ok").id


def _corrupt_table(db_file: Path, table: str) -> None:
    """Overwrite the root page of ``table`` with garbage (all connections closed: no WAL left)."""
    conn = sqlite3.connect(db_file)
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    assert not Path(f"{db_file}-wal").exists()
    with open(db_file, "r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xab" * size)


def _set_column(db_file: Path, pid: str, column: str, text: str) -> None:
    """Damage a JSON column as a bad disk or a hand edit would (the trigger is dropped first)."""
    conn = sqlite3.connect(db_file, isolation_level=None)
    conn.execute("DROP TRIGGER policies_immutable")
    conn.execute(f"UPDATE policies SET {column} = ? WHERE substr(sha256, 1, 12) = ?", (text, pid))
    conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "argv",
    [
        ("policies",),
        ("review", "{pid}", "--no-plots"),
        ("approve", "{pid}", "--operator", "alice"),
        ("reject", "{pid}", "--reason", "x"),
        ("retire", "{pid}"),
    ],
)
def test_damaged_rows_are_a_registry_error(
    capsys: pytest.CaptureFixture[str],
    workspace: Path,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    argv: tuple[str, ...],
) -> None:
    pid = _approved_registry(workspace, artifact_factory(), alice)
    db_file = workspace / "registry.sqlite"
    _corrupt_table(db_file, "policies")
    code, _, err = run(capsys, *(a.format(pid=pid) for a in argv))
    assert code == 2
    one_line(
        err,
        f"registry database '{db_file}' is damaged (database disk image is malformed)",
        "bremen registry restore BACKUP --replace",
    )


@pytest.mark.parametrize(
    ("column", "text", "says"),
    [
        ("report_json", '{"bc": {"loss": [1.0,', "report_json is not JSON"),
        ("manifest_json", "[1, 2]", "manifest_json is list, not a JSON object"),
        ("lineage_json", "null", "lineage_json is NoneType, not a JSON object"),
    ],
)
def test_damaged_json_is_a_registry_error(
    capsys: pytest.CaptureFixture[str],
    workspace: Path,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    column: str,
    text: str,
    says: str,
) -> None:
    pid = _approved_registry(workspace, artifact_factory(), alice)
    _set_column(workspace / "registry.sqlite", pid, column, text)
    code, _, err = run(capsys, "policies")
    assert code == 2
    one_line(err, f"registry database '{workspace / 'registry.sqlite'}' is damaged: policy {pid} {says}")
    with Registry.open(workspace) as reg, pytest.raises(RegistryDamagedError, match=says):
        reg.get(pid)


@pytest.mark.parametrize("damage", ["page", "json"])
def test_policy_runner_refuses_a_damaged_registry_before_anything_moves(
    workspace: Path, artifact_factory: ArtifactFactory, alice: tuple[Path, Path], damage: str
) -> None:
    """The runner loads its policy before it creates a publisher; a damaged registry stops it
    there with a BremenError, which the node wrapper prints as one line (exit 2)."""
    from bremen_robot.ros.policy_runner import load_policy

    pid = _approved_registry(workspace, artifact_factory(), alice)
    db_file = workspace / "registry.sqlite"
    if damage == "page":
        _corrupt_table(db_file, "policies")
    else:
        _set_column(db_file, pid, "manifest_json", "{")
    params = {"workspace": str(workspace), "policy": pid}
    with pytest.raises(RegistryError, match="is damaged") as info:
        load_policy(params, robot_config([alice[1]]), get_task("point"))
    assert isinstance(info.value, BremenError) and "\n" not in str(info.value)
    conn = sqlite3.connect(db_file)
    try:
        assert conn.execute("SELECT COUNT(*) FROM deployments").fetchone() == (0,)  # nothing counted
    finally:
        conn.close()


@pytest.mark.parametrize(
    "argv",
    [
        ("policies",),
        ("policies", "audit"),
        ("review", "abcd", "--no-plots"),
        ("approve", "abcd", "--operator", "alice"),
        ("registry", "check"),
        ("registry", "backup", "--out", "{tmp}/b.sqlite"),
        ("policies", "register", "{export}"),
    ],
)
def test_zero_byte_registry_is_never_initialised(
    capsys: pytest.CaptureFixture[str],
    workspace: Path,
    tmp_path: Path,
    artifact_factory: ArtifactFactory,
    argv: tuple[str, ...],
) -> None:
    workspace.mkdir()
    db_file = workspace / "registry.sqlite"
    db_file.touch()
    export = artifact_factory()
    code, _, err = run(capsys, *(a.format(tmp=tmp_path, export=export) for a in argv))
    assert code == 2
    one_line(err, f"registry database '{db_file}' is an empty (0-byte) file, not a registry")
    assert db_file.stat().st_size == 0
    assert sorted(p.name for p in workspace.iterdir()) == ["registry.sqlite"]
    assert not (tmp_path / "b.sqlite").exists()


def test_writers_refuse_a_zero_byte_registry_too(workspace: Path) -> None:
    workspace.mkdir()
    (workspace / "registry.sqlite").touch()
    with pytest.raises(RegistryDamagedError, match="empty"):
        Registry.open(workspace)
    assert (workspace / "registry.sqlite").stat().st_size == 0


def _schema_v1(db_file: Path) -> None:
    conn = sqlite3.connect(db_file, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    for stmt in regdb.MIGRATIONS[0]:
        conn.execute(stmt)
    conn.close()


def test_readers_do_not_migrate_or_write(
    capsys: pytest.CaptureFixture[str], workspace: Path, artifact_factory: ArtifactFactory
) -> None:
    workspace.mkdir()
    db_file = workspace / "registry.sqlite"
    _schema_v1(db_file)
    before = _digest(db_file)
    for argv in (("policies",), ("policies", "audit"), ("registry", "check")):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
    assert _digest(db_file) == before
    conn = sqlite3.connect(db_file)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (1,)
    conn.close()
    with Registry.open(workspace) as reg:  # a writer migrates, and the old rows stay readable
        reg.register(artifact_factory())
    conn = sqlite3.connect(db_file)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (regdb.SCHEMA_VERSION,)
    conn.close()


def test_not_a_registry_is_refused_by_readers(capsys: pytest.CaptureFixture[str], workspace: Path) -> None:
    workspace.mkdir()
    conn = sqlite3.connect(workspace / "registry.sqlite")
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    before = _digest(workspace / "registry.sqlite")
    code, _, err = run(capsys, "policies")
    assert code == 2
    one_line(err, "is not a registry database (no schema)")
    assert _digest(workspace / "registry.sqlite") == before


def test_not_a_registry_is_never_made_one_by_writers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact_factory: ArtifactFactory
) -> None:
    """A --db pointing at another program's SQLite file (a typo, a wrong variable) must be refused
    like readers refuse it, not given the registry's tables and switched to WAL in place."""
    other = tmp_path / "mlflow.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (x)")
    conn.execute("INSERT INTO notes VALUES ('theirs')")
    conn.commit()
    conn.close()
    before = _digest(other)
    code, _, err = run(capsys, "policies", "register", str(artifact_factory()), "--db", str(other))
    assert code == 2
    one_line(err, f"'{other}' is not a registry database (no schema)")
    assert _digest(other) == before
    conn = sqlite3.connect(other)
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]
    conn.close()


@pytest.mark.parametrize("form", ["id", "path"])
def test_verify_for_deployment_reports_damage_not_unregistered(
    workspace: Path, artifact_factory: ArtifactFactory, alice: tuple[Path, Path], form: str
) -> None:
    export = artifact_factory()
    pid = _approved_registry(workspace, export, alice)
    _set_column(workspace / "registry.sqlite", pid, "report_json", "{")
    with (
        Registry.open(workspace) as reg,
        pytest.raises(RegistryDamagedError, match="report_json is not JSON"),
    ):
        verify_for_deployment(pid if form == "id" else export, robot_config([alice[1]]), reg)


def test_a_writer_busy_past_the_timeout_gets_one_line(workspace: Path) -> None:
    Registry.open(workspace).close()
    holder = sqlite3.connect(workspace / "registry.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    conn = regdb.connect(workspace / "registry.sqlite", timeout_s=0.2)
    try:
        busy = r"is busy \(database is locked\); another bremen"
        with pytest.raises(RegistryDatabaseError, match=busy), regdb.transaction(conn):
            pass
    finally:
        conn.close()
        holder.execute("ROLLBACK")
        holder.close()


def test_a_read_only_registry_refuses_writes_before_touching_the_store(
    workspace: Path, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    pid = _approved_registry(workspace, artifact_factory(), alice)
    with Registry.open(workspace, readonly=True) as reg:
        with pytest.raises(RegistryError, match="opened read-only"):
            reg.register(artifact_factory())
        with pytest.raises(RegistryDatabaseError, match="attempt to write a readonly database"):
            reg.retire(pid)
    assert len(list((workspace / "artifacts").iterdir())) == 1


@pytest.mark.timeout(120)
def test_policy_runner_process_exits_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real node, before any publisher exists: exit 2 and the registry's one-line error."""
    pytest.importorskip("rclpy")
    import subprocess
    import sys

    import yaml

    from bremen_robot.policy.untrained import approved_untrained_policy
    from tests.ros_domains import random_domain

    monkeypatch.setenv("BREMEN_OPERATOR_DIR", str(tmp_path / "operators"))
    monkeypatch.setenv("ROS_DOMAIN_ID", str(random_domain(10, 209)))
    info = approved_untrained_policy(tmp_path, operator="alice", hidden=(8,))
    db_file = info["workspace"] / "registry.sqlite"
    _set_column(db_file, info["id"], "manifest_json", "{")
    params = tmp_path / "runner.yaml"
    ros_params = {
        "robot_config": str(info["robot"]),
        "policy": info["id"],
        "workspace": str(info["workspace"]),
        "autostart": True,  # no lifecycle manager: it configures itself, and a failure ends it
    }
    params.write_text(yaml.safe_dump({"policy_runner": {"ros__parameters": ros_params}}))
    proc = subprocess.run(
        [sys.executable, "-m", "bremen_robot.ros.policy_runner", "--ros-args", "--params-file", str(params)],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"policy_runner: error: registry database '{db_file}' is damaged: policy {info['id']} manifest_json"
    ), proc.stderr


def test_collects_approval_check_never_creates_a_registry(tmp_path):
    """`bremen collect --policy X --workspace W` on a mistyped W refuses and leaves W empty."""
    from bremen_robot.ros import collect as collect_mod

    with pytest.raises(RegistryError, match="no registry database"):
        collect_mod._check_approval("0" * 64, object(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_files_swapped_between_the_approval_check_and_the_load_are_refused(
    registry: Registry,
    approved: Any,
    artifact_factory: ArtifactFactory,
    robot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check hashes policy.pt and reads manifest.json; loading reads them again. Whatever is
    in the folder by then (here another, self-consistent artifact) must not run, and torch must
    not even parse it: its bytes are compared with the registry's record first."""
    import hashlib
    import shutil

    import bremen_robot.registry.trust as trust

    other = artifact_factory(seed=99)
    other_sha = hashlib.sha256((other / "policy.pt").read_bytes()).hexdigest()
    parsed = record_torch_parses(monkeypatch)
    real_check = trust.check_for_deployment

    def check_then_swap(*args: Any) -> Any:
        pid, folder = real_check(*args)
        for name in ("policy.pt", "manifest.json"):
            shutil.copyfile(other / name, folder / name)
        return pid, folder

    assert verify_for_deployment(approved.id, robot, registry).sha256 == approved.sha256  # unswapped
    monkeypatch.setattr(trust, "check_for_deployment", check_then_swap)
    with pytest.raises(ApprovalError) as info:
        verify_for_deployment(approved.id, robot, registry)
    folder = approved.artifact_dir
    assert str(info.value) == (
        f"policy {approved.id}: policy.pt and manifest.json in '{folder}' changed after the "
        "registry check, before loading; refusing to run them (check who writes to that folder, "
        "then start again)"
    )
    assert parsed == [approved.sha256]  # the unswapped load above, and nothing of the swap
    assert other_sha not in parsed


def test_a_policys_robot_and_task_cannot_be_relabelled(workspace: Path, approved: Any) -> None:
    """Schema v5: robot and task are as immutable as the rest of a policy; a registry relabelled
    before it (or with the trigger dropped) is reported by `bremen registry check`."""
    from bremen_robot.registry.maintenance import check

    conn = sqlite3.connect(workspace / "registry.sqlite", isolation_level=None)
    for column, value in (("robot", "panda"), ("task", "hopper")):
        with pytest.raises(sqlite3.IntegrityError, match="only a policy's state may change"):
            conn.execute(f"UPDATE policies SET {column} = ? WHERE sha256 = ?", (value, approved.sha256))
    conn.close()
    _set_column(workspace / "registry.sqlite", approved.id, "robot", "panda")
    with Registry.open(workspace, readonly=True) as reg:
        problems, _ = check(reg)
    assert f"policy {approved.id}: robot 'panda' but its manifest says '{approved.robot}'" in problems
