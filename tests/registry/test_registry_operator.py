"""Operator keys: 0600 private key, refusal to overwrite, signatures that bind every field."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from bremen_robot.registry import (
    RegistryError,
    canonical_payload,
    default_operator_dir,
    init_operator,
    load_private_key,
    load_public_key,
    verify_signature,
)
from bremen_robot.registry.signing import sign_payload


def test_init_creates_private_key_0600_and_public_key(tmp_path: Path) -> None:
    priv, pub = init_operator("alice", tmp_path / "ops")
    assert (priv, pub) == (tmp_path / "ops" / "alice.key", tmp_path / "ops" / "alice.pub")
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    assert priv.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert load_private_key(priv).public_key() == load_public_key(pub)


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    priv, pub = init_operator("alice", tmp_path)
    before = priv.read_bytes(), pub.read_bytes()
    with pytest.raises(RegistryError, match="already exists"):
        init_operator("alice", tmp_path)
    assert (priv.read_bytes(), pub.read_bytes()) == before
    priv.unlink()  # a lone public key also blocks: it belongs to someone
    with pytest.raises(RegistryError, match="already exists"):
        init_operator("alice", tmp_path)
    assert not priv.exists() and pub.read_bytes() == before[1]


def test_default_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREMEN_OPERATOR_DIR", str(tmp_path / "env-ops"))
    assert default_operator_dir() == tmp_path / "env-ops"
    priv, _ = init_operator("bob")
    assert priv.parent == tmp_path / "env-ops"
    monkeypatch.delenv("BREMEN_OPERATOR_DIR")
    assert default_operator_dir() == Path.home() / ".config" / "bremen" / "operators"


@pytest.mark.parametrize("name", ["", "../evil", "a b", "-dash", "x" * 65, "al/ice"])
def test_bad_operator_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(RegistryError, match="invalid operator name"):
        init_operator(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_signature_binds_every_field(tmp_path: Path) -> None:
    priv, pub = init_operator("alice", tmp_path)
    key, public = load_private_key(priv), load_public_key(pub)
    fields = {
        "artifact_sha256": "a" * 64,
        "manifest_digest": "b" * 64,
        "operator": "alice",
        "time": "t",
        "note": "n",
    }
    payload = canonical_payload(**fields)
    sig = sign_payload(key, payload)
    assert verify_signature(payload, sig, public)
    for name in fields:
        changed = canonical_payload(**{**fields, name: fields[name] + "x"})
        assert not verify_signature(changed, sig, public), name
    assert not verify_signature(payload, "not base64!", public)
    _, other = init_operator("mallory", tmp_path)
    assert not verify_signature(payload, sig, load_public_key(other))


def test_a_full_disk_while_writing_the_pair_leaves_nothing_to_block_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up after the private key, while the public key is written: no half pair may
    stay behind (init would then refuse the retry with 'already exists; keep it')."""
    real_write = os.write

    def full_on_public_key(fd: int, data: bytes) -> int:
        if bytes(data).startswith(b"-----BEGIN PUBLIC KEY"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_on_public_key)
    with pytest.raises(OSError, match="No space left"):
        init_operator("alice", tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(os, "write", real_write)
    priv, pub = init_operator("alice", tmp_path)  # space freed: the retry works
    assert load_private_key(priv).public_key() == load_public_key(pub)


def test_short_writes_still_write_the_whole_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.write may write fewer bytes than asked (a filling disk, a signal): a key is written whole."""
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:10]))
    priv, pub = init_operator("alice", tmp_path)
    monkeypatch.setattr(os, "write", real_write)
    assert load_private_key(priv).public_key() == load_public_key(pub)
