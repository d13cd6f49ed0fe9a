"""Approval signatures and the robot's trust check, against values built by hand.

Written against the one-line mutants of ``registry/signing.py``, ``registry/trust.py`` and the
policy runner's load path that the rest of the suite let through (docs/testing.md, "Mutations
the suite catches"). Expected values come from the ``cryptography`` library used directly, from
``hashlib``, from JSON and PEM bytes written out here, never from the function under test.
Forged approvals are rows written with plain ``sqlite3``, as someone with the database file
could (the triggers allow INSERT into ``approvals`` and a legal state change).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from registry_helpers import ArtifactFactory, robot_config

from bremen_robot.errors import ArtifactError
from bremen_robot.policy.manifest import PolicyManifest
from bremen_robot.registry import (
    ApprovalError,
    PolicyRecord,
    Registry,
    RegistryError,
    canonical_payload,
    check_for_deployment,
    init_operator,
    key_fingerprint,
    load_private_key,
    load_public_key,
    verify_for_deployment,
    verify_signature,
)
from bremen_robot.registry.trust import check_compatibility
from bremen_robot.robot_config import RobotConfig

SHA_A, DIGEST_B = "a" * 64, "b" * 64


def _ed25519_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _raw_from_pem(pub_path: Path) -> bytes:
    """The 32 key bytes, read off the PEM by hand: an Ed25519 SubjectPublicKeyInfo is the fixed
    12-byte prefix 302a300506032b6570032100 (RFC 8410) followed by the key."""
    body = "".join(line for line in pub_path.read_text().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    assert der[:12] == bytes.fromhex("302a300506032b6570032100") and len(der) == 44
    return der[12:]


def _sign(key: Ed25519PrivateKey, text: str) -> str:
    return base64.b64encode(key.sign(text.encode("utf-8"))).decode("ascii")


def _payload(**fields: str) -> str:
    """Canonical JSON written the plain way: sorted keys, no spaces, UTF-8 kept as it is."""
    return json.dumps(dict(sorted(fields.items())), separators=(",", ":"), ensure_ascii=False)


def _forge(registry: Registry, rec: PolicyRecord, payload: str, signature: str, fingerprint: str) -> None:
    """An approval row written by hand for candidate ``rec``, and its state moved to approved."""
    conn = sqlite3.connect(registry.db_path)
    with conn:
        conn.execute(
            "INSERT INTO approvals (policy_sha256, operator, approved_at, note, payload, signature,"
            " key_fingerprint) VALUES (?, 'alice', '2026-12-06T00:00:00Z', '', ?, ?, ?)",
            (rec.sha256, payload, signature, fingerprint),
        )
        conn.execute("UPDATE policies SET state = 'approved' WHERE sha256 = ?", (rec.sha256,))
    conn.close()


def _fields(rec: PolicyRecord, **changed: str) -> dict[str, str]:
    base = {
        "artifact_sha256": rec.sha256,
        "manifest_digest": rec.manifest_digest,
        "note": "",
        "operator": "alice",
        "time": "2026-12-06T00:00:00Z",
    }
    return {**base, **changed}


def _refused(ref: str, robot: RobotConfig, registry: Registry, match: str) -> None:
    with pytest.raises(ApprovalError, match=match):
        check_for_deployment(ref, robot, registry)
    with pytest.raises(ApprovalError, match=match):
        verify_for_deployment(ref, robot, registry)


# ---------------------------------------------------------------- what is signed, and how


def test_the_signed_text_is_the_canonical_json_written_out_by_hand() -> None:
    got = canonical_payload(SHA_A, DIGEST_B, "alice", "2026-12-06T00:00:00Z", "café ✓")
    assert got == (
        '{"artifact_sha256":"' + SHA_A + '","manifest_digest":"' + DIGEST_B + '",'
        '"note":"café ✓","operator":"alice","time":"2026-12-06T00:00:00Z"}'
    )


def test_an_approval_with_a_non_ascii_note_signs_its_utf8_bytes_and_the_robot_accepts_it(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path], robot: RobotConfig
) -> None:
    rec = registry.approve(registry.register(artifact_factory()).id, "alice", note="naïve ✓ 日本")
    assert rec.approval is not None
    want = _payload(**_fields(rec, note="naïve ✓ 日本", time=rec.approval.time))
    assert rec.approval.payload == want
    public = serialization.load_pem_public_key(alice[1].read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(base64.b64decode(rec.approval.signature), want.encode("utf-8"))  # raises if not
    assert check_for_deployment(rec.id, robot, registry)[0] == rec.id
    text = _payload(**_fields(rec, note="é"))
    assert verify_signature(text, _sign(_ed25519_private(alice[0]), text), load_public_key(alice[1]))


def test_a_signature_must_be_strict_base64(alice: tuple[Path, Path]) -> None:
    text = canonical_payload(SHA_A, DIGEST_B, "alice", "t", "")
    sig = _sign(_ed25519_private(alice[0]), text)
    public = load_public_key(alice[1])
    assert verify_signature(text, sig, public)
    for bent in (sig[:10] + "\n" + sig[10:], sig + "!", " " + sig):
        assert not verify_signature(text, bent, public), bent


def test_key_fingerprint_is_the_sha256_of_the_raw_32_key_bytes(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    want = hashlib.sha256(_raw_from_pem(alice[1])).hexdigest()
    assert key_fingerprint(load_public_key(alice[1])) == want
    rec = registry.approve(registry.register(artifact_factory()).id, "alice")
    assert rec.approval is not None and rec.approval.key_fingerprint == want


# ---------------------------------------------------------------- keys that are not what they seem


def _rsa_pem(private: bool) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if private:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_an_rsa_key_in_the_trusted_list_is_refused_in_one_line(
    approved: PolicyRecord, registry: Registry, tmp_path: Path
) -> None:
    pub = tmp_path / "rsa.pub"
    pub.write_bytes(_rsa_pem(private=False))
    _refused(approved.id, robot_config([pub]), registry, "is not an Ed25519 key")


def test_an_rsa_private_key_is_refused_before_anything_is_signed(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    path.write_bytes(_rsa_pem(private=True))
    os.chmod(path, 0o600)
    with pytest.raises(ApprovalError, match="is not an Ed25519 key"):
        load_private_key(path)


def test_a_private_key_the_group_can_read_is_refused(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    rec = registry.register(artifact_factory())
    os.chmod(alice[0], 0o640)
    with pytest.raises(ApprovalError, match="mode 0640.*chmod 600"):
        registry.approve(rec.id, "alice")
    assert registry.get(rec.id).state == "candidate"


def test_a_key_file_appearing_after_the_exists_check_is_never_written_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check and the create race: O_EXCL, not the check, keeps someone's key whole."""
    d = tmp_path / "ops"
    d.mkdir()
    (d / "alice.key").write_bytes(b"someone's key")
    monkeypatch.setattr(Path, "exists", lambda self: False)  # lost the race to the other writer
    with pytest.raises(RegistryError, match="already exists"):
        init_operator("alice", d)
    assert (d / "alice.key").read_bytes() == b"someone's key"


# ---------------------------------------------------------------- approvals written by hand


@pytest.mark.parametrize(
    "changed",
    [
        {"artifact_sha256": "f" * 64},  # alice approved other bytes with this manifest
        {"manifest_digest": "0" * 64},  # alice approved these bytes with another manifest
    ],
    ids=["other-file", "other-manifest"],
)
def test_a_valid_signature_over_another_artifact_or_manifest_is_refused(
    registry: Registry,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    robot: RobotConfig,
    changed: dict[str, str],
) -> None:
    rec = registry.register(artifact_factory())
    text = _payload(**_fields(rec, **changed))
    fp = hashlib.sha256(_raw_from_pem(alice[1])).hexdigest()
    _forge(registry, rec, text, _sign(_ed25519_private(alice[0]), text), fp)
    _refused(rec.id, robot, registry, "its approval signs a different artifact")


def test_a_signature_by_another_key_stored_with_the_trusted_keys_fingerprint_is_refused(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path], robot: RobotConfig
) -> None:
    """The stored fingerprint is a claim; only the signature, checked with the robot's key, counts."""
    rec = registry.register(artifact_factory())
    text = _payload(**_fields(rec))
    alices_fp = hashlib.sha256(_raw_from_pem(alice[1])).hexdigest()
    _forge(registry, rec, text, _sign(Ed25519PrivateKey.generate(), text), alices_fp)
    _refused(rec.id, robot, registry, "does not verify against any trusted operator key")


@pytest.mark.parametrize("empty", ["payload", "signature"])
def test_an_empty_signature_or_payload_is_unsigned(
    registry: Registry,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    robot: RobotConfig,
    empty: str,
) -> None:
    rec = registry.register(artifact_factory())
    text = _payload(**_fields(rec))
    sig = _sign(_ed25519_private(alice[0]), text)
    fp = hashlib.sha256(_raw_from_pem(alice[1])).hexdigest()
    _forge(registry, rec, "" if empty == "payload" else text, "" if empty == "signature" else sig, fp)
    _refused(rec.id, robot, registry, r"no approval signature \(unsigned\)")


@pytest.mark.parametrize(
    "fields",
    [
        {"robot": "pointbot"},  # a sixth field, signed along with the five
        {"approver": "alice", "operator": None},  # five fields, one renamed
    ],
    ids=["extra-field", "renamed-field"],
)
def test_a_signed_payload_with_other_fields_than_the_five_is_refused(
    registry: Registry,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    robot: RobotConfig,
    fields: dict[str, Any],
) -> None:
    rec = registry.register(artifact_factory())
    merged = {k: v for k, v in {**_fields(rec), **fields}.items() if v is not None}
    text = _payload(**merged)
    fp = hashlib.sha256(_raw_from_pem(alice[1])).hexdigest()
    _forge(registry, rec, text, _sign(_ed25519_private(alice[0]), text), fp)
    _refused(rec.id, robot, registry, "approval payload has the wrong fields")


# ---------------------------------------------------------------- whom the robot trusts


@pytest.mark.parametrize("alice_first", [True, False])
def test_one_verifying_key_among_several_trusted_ones_is_enough(
    approved: PolicyRecord, registry: Registry, alice: tuple[Path, Path], tmp_path: Path, alice_first: bool
) -> None:
    _, bob_pub = init_operator("bob", tmp_path / "bob")
    keys = [alice[1], bob_pub] if alice_first else [bob_pub, alice[1]]
    assert check_for_deployment(approved.id, robot_config(keys), registry)[0] == approved.id


def test_a_file_whose_hash_shares_the_registered_ids_12_characters_is_refused(
    approved: PolicyRecord, robot: RobotConfig, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 48-bit prefix collision (the id) stands in for a file made to match it; the full
    64-character hash must be compared."""
    import bremen_robot.registry.trust as trust

    sha = approved.sha256
    twin = sha[:12] + ("1" if sha[12] == "0" else "0") + sha[13:]
    monkeypatch.setattr(trust, "sha256_file", lambda path: twin)
    with pytest.raises(ApprovalError, match="file hash .* differs from the registry's"):
        check_for_deployment(approved.id, robot, registry)


# ---------------------------------------------------------------- manifests the robot cannot run


def _edit_manifest(export: Path, **fields: Any) -> Path:
    mpath = export / "manifest.json"
    data = json.loads(mpath.read_text())
    data.update(fields)
    mpath.write_text(json.dumps(data))
    return export


@pytest.mark.parametrize(
    ("edit", "robot_kw", "match"),
    [
        ({"action_names": ["vel.y", "vel.x"]}, {}, "action layout differs at position 0: policy 'vel.y'"),
        ({"control_rate_hz": 10.01}, {}, "control rate 10.01 Hz differs from the robot's 10 Hz"),
        ({"control_rate_hz": 10.4}, {}, "control rate 10.4 Hz differs"),
    ],
    ids=["action-names", "rate-0.1%", "rate-4%"],
)
def test_a_manifest_the_robot_config_cannot_run_is_refused(
    registry: Registry,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    edit: dict[str, Any],
    robot_kw: dict[str, Any],
    match: str,
) -> None:
    rec = registry.register(_edit_manifest(artifact_factory(), **edit))
    registry.approve(rec.id, "alice")
    with pytest.raises(ApprovalError, match=match):
        check_for_deployment(rec.id, robot_config([alice[1]], **robot_kw), registry)


SHAPE_EDITS = [
    ({"action_low": [-1.0, -1.0, -1.0]}, {}, r"policy has 2 actions \(3/2 bounds\)"),
    ({"action_high": [1.0]}, {}, r"policy has 2 actions \(2/1 bounds\)"),
    (
        {"joint_order": ["vel.x", "vel.y", "vel.z"]},
        {"joints": ["vel.x", "vel.y", "vel.z"]},
        "policy has 2 actions .* but robot 'pointbot' has 3 joints",
    ),
]
SHAPE_IDS = ["low-3", "high-1", "3-joints-2-actions"]


@pytest.mark.parametrize("edit", [edit for edit, _, _ in SHAPE_EDITS], ids=SHAPE_IDS)
def test_a_manifest_whose_bounds_do_not_fit_its_actions_is_not_registered(
    registry: Registry, artifact_factory: ArtifactFactory, edit: dict[str, Any]
) -> None:
    """Such a manifest is refused when it is first read (the manifest's own check), so it never
    reaches a review, let alone a robot."""
    with pytest.raises(ArtifactError, match=r"invalid manifest: (action_low|action_high|joint_order): holds"):
        registry.register(_edit_manifest(artifact_factory(), **edit))
    assert registry.policies() == []


@pytest.mark.parametrize(("edit", "robot_kw", "match"), SHAPE_EDITS, ids=SHAPE_IDS)
def test_the_robot_side_check_refuses_the_same_shapes_on_its_own(
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    edit: dict[str, Any],
    robot_kw: dict[str, Any],
    match: str,
) -> None:
    """The robot's compatibility check does not rely on the manifest's: built without it (as an
    older bremen's manifest class would have read it), the same manifest is refused there."""
    data = json.loads((artifact_factory() / "manifest.json").read_text())
    unchecked = PolicyManifest.model_construct(**{**data, **edit})
    with pytest.raises(ApprovalError, match=match):
        check_compatibility(unchecked, robot_config([alice[1]], **robot_kw), "p")
