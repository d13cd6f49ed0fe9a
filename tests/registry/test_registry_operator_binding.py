"""Item 7: the approver recorded is the owner of the signing key, in the API and the CLI.

Each operator name is bound to one public key: its ``.pub`` from ``bremen operator init``
until its first approval, the key recorded in the registry from then on.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from registry_helpers import ArtifactFactory, robot_config

from bremen_robot.cli import main
from bremen_robot.registry import (
    ApprovalError,
    Registry,
    init_operator,
    key_fingerprint,
    load_public_key,
    verify_for_deployment,
)


def _fp(pub: Path) -> str:
    return key_fingerprint(load_public_key(pub))[:12]


def _untouched(registry: Registry, pid: str) -> None:
    rec = registry.get(pid)
    assert rec.state == "candidate" and rec.approval is None
    assert [a.to_state for a in registry.audit(pid)] == ["candidate"]


def test_another_operators_key_is_refused_naming_both(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path], operator_dir: Path
) -> None:
    mallory_key, mallory_pub = init_operator("mallory", operator_dir)
    rec = registry.register(artifact_factory())
    with pytest.raises(ApprovalError) as info:
        registry.approve(rec.id, "alice", mallory_key, note="looks fine")
    msg = str(info.value)
    assert "\n" not in msg
    assert f"key '{mallory_key}' (fingerprint {_fp(mallory_pub)}, operator 'mallory')" in msg
    assert f"is not the key of operator 'alice' ({alice[1]}: fingerprint {_fp(alice[1])})" in msg
    _untouched(registry, rec.id)
    # the key's owner may approve under their own name
    assert registry.approve(rec.id, "mallory", mallory_key).approval.operator == "mallory"  # type: ignore[union-attr]


def test_cli_approve_with_someone_elses_key(
    capsys: pytest.CaptureFixture[str],
    registry: Registry,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    operator_dir: Path,
) -> None:
    mallory_key, _ = init_operator("mallory", operator_dir)
    rec = registry.register(artifact_factory())
    code = main(["approve", rec.id, "--operator", "alice", "--key", str(mallory_key)])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: key '") and "operator 'mallory'" in lines[0]
    assert "is not the key of operator 'alice'" in lines[0]
    _untouched(registry, rec.id)
    code = main(["policies"])
    out, _ = capsys.readouterr()
    assert code == 0 and "alice" not in out


def test_binding_outlives_a_swapped_pub_file(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path], tmp_path: Path
) -> None:
    """After alice's first approval the registry knows her key: replacing alice.pub changes nothing."""
    first = registry.register(artifact_factory())
    registry.approve(first.id, "alice")
    mallory_key, mallory_pub = init_operator("mallory", tmp_path / "mallory")
    alice[1].chmod(0o644)
    shutil.copyfile(mallory_pub, alice[1])  # someone with write access to the operator folder
    second = registry.register(artifact_factory())
    with pytest.raises(ApprovalError, match=r"bound to 'alice' in the registry: fingerprint"):
        registry.approve(second.id, "alice", mallory_key)
    _untouched(registry, second.id)


def test_one_key_one_name(
    registry: Registry, artifact_factory: ArtifactFactory, operator_dir: Path, tmp_path: Path
) -> None:
    """A key bound to mallory cannot become 'bob' through a .pub planted beside it."""
    key, _ = init_operator("mallory", operator_dir)
    registry.approve(registry.register(artifact_factory()).id, "mallory", key)
    planted = tmp_path / "planted"
    planted.mkdir()
    shutil.copyfile(key, planted / "bob.key")
    (planted / "bob.key").chmod(0o600)
    shutil.copyfile(operator_dir / "mallory.pub", planted / "bob.pub")
    rec = registry.register(artifact_factory())
    with pytest.raises(ApprovalError, match="already bound to operator 'mallory' in this registry"):
        registry.approve(rec.id, "bob", planted / "bob.key")
    _untouched(registry, rec.id)


def test_unknown_operator_is_refused(
    registry: Registry, artifact_factory: ArtifactFactory, operator_dir: Path, tmp_path: Path
) -> None:
    key, _ = init_operator("mallory", tmp_path / "elsewhere")
    rec = registry.register(artifact_factory())
    with pytest.raises(ApprovalError, match="operator 'carol' has no known public key"):
        registry.approve(rec.id, "carol", key)
    _untouched(registry, rec.id)


def test_key_pair_outside_the_operator_folder(
    registry: Registry, artifact_factory: ArtifactFactory, operator_dir: Path, tmp_path: Path
) -> None:
    """``operator init --dir D`` then ``approve --key D/NAME.key``: the .pub beside it is the name's."""
    key, pub = init_operator("dana", tmp_path / "usb")
    rec = registry.approve(registry.register(artifact_factory()).id, "dana", key)
    assert rec.approval is not None and rec.approval.key_fingerprint[:12] == _fp(pub)
    verify_for_deployment(rec.id, robot_config([pub]), registry)
    conn = sqlite3.connect(registry.db_path)
    try:
        assert conn.execute("SELECT name, key_fingerprint FROM operator_keys").fetchall() == [
            ("dana", key_fingerprint(load_public_key(pub)))
        ]
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE operator_keys SET name = 'x'")
    finally:
        conn.close()
