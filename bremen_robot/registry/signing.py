"""Operator keys and approval signatures (Ed25519, ``cryptography``).

An operator owns a key pair ``<dir>/<NAME>.key`` (PEM PKCS#8 private key, mode 0600) and
``<dir>/<NAME>.pub`` (PEM SubjectPublicKeyInfo). The default folder is
``~/.config/bremen/operators``, overridden by ``$BREMEN_OPERATOR_DIR``.

An approval signs the canonical JSON (sorted keys, no spaces, UTF-8) of::

    {"artifact_sha256": ..., "manifest_digest": ..., "note": ..., "operator": ..., "time": ...}

so neither the policy file, nor its manifest, nor who approved it, when, or with which note
can change without the signature failing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bremen_robot.registry.errors import ApprovalError, RegistryError

OPERATOR_DIR_ENV = "BREMEN_OPERATOR_DIR"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PAYLOAD_FIELDS = ("artifact_sha256", "manifest_digest", "note", "operator", "time")


def default_operator_dir() -> Path:
    """``$BREMEN_OPERATOR_DIR`` or ``~/.config/bremen/operators``."""
    env = os.environ.get(OPERATOR_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".config" / "bremen" / "operators"


def check_operator_name(name: str) -> str:
    """Operator names become file names and audit entries: letters, digits, ``._-``, 1-64 chars."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistryError(
            f"invalid operator name {name!r}; use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def key_paths(name: str, directory: Path | None = None) -> tuple[Path, Path]:
    """``(<dir>/<name>.key, <dir>/<name>.pub)``."""
    d = Path(directory) if directory is not None else default_operator_dir()
    check_operator_name(name)
    return d / f"{name}.key", d / f"{name}.pub"


def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode``; fail if it exists (O_EXCL), never truncating anything."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have narrowed or widened nothing; make it exact
            view = memoryview(data)
            while view:  # os.write may write less than asked (a filling disk): a key is whole or absent
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)  # ours (O_EXCL): a half-written key must not block a retry
        raise


def init_operator(name: str, directory: Path | None = None) -> tuple[Path, Path]:
    """Create an Ed25519 key pair for operator ``name``; returns ``(private, public)`` paths.

    Refuses to overwrite an existing key or public key of that name.
    """
    priv_path, pub_path = key_paths(name, directory)
    for p in (priv_path, pub_path):
        if p.exists():
            raise RegistryError(
                f"operator key '{p}' already exists; keep it, or choose another name or --dir"
            )
    priv_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    priv_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        _write_exclusive(priv_path, priv_pem, 0o600)
    except FileExistsError:
        raise RegistryError(
            f"operator key '{priv_path}' already exists; keep it, or choose another name"
        ) from None
    try:
        _write_exclusive(pub_path, pub_pem, 0o644)
    except FileExistsError:
        priv_path.unlink()  # ours, just written: do not leave a private key without its public half
        raise RegistryError(
            f"operator key '{pub_path}' already exists; keep it, or choose another name"
        ) from None
    except BaseException:  # a full disk, say: the same, or the retry is refused ("already exists")
        priv_path.unlink(missing_ok=True)
        raise
    return priv_path, pub_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an operator's private key; refuses keys that others can read (like ssh does)."""
    path = Path(path)
    if not path.is_file():
        raise ApprovalError(
            f"operator key '{path}' not found; create it with 'bremen operator init NAME' or pass --key"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ApprovalError(
            f"operator key '{path}' is accessible by others (mode {mode:04o}); run chmod 600 on it"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise ApprovalError(
            f"'{path}' is not an unencrypted PEM private key; use a key from 'bremen operator init'"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ApprovalError(f"'{path}' is not an Ed25519 key; use a key from 'bremen operator init'")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a trusted operator public key (PEM)."""
    path = Path(path)
    if not path.is_file():
        raise ApprovalError(
            f"trusted operator key '{path}' not found; fix trusted_operator_keys in the robot config"
        )
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, TypeError):
        raise ApprovalError(
            f"trusted operator key '{path}' is not a PEM public key; list the operator's .pub file"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ApprovalError(
            f"trusted operator key '{path}' is not an Ed25519 key; list the operator's .pub file"
        )
    return key


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """sha256 (hex) of the raw 32-byte public key: names a key in messages and the registry."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def canonical_payload(artifact_sha256: str, manifest_digest: str, operator: str, time: str, note: str) -> str:
    """The exact text an approval signs."""
    fields = {
        "artifact_sha256": artifact_sha256,
        "manifest_digest": manifest_digest,
        "note": note,
        "operator": operator,
        "time": time,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_payload(key: Ed25519PrivateKey, payload: str) -> str:
    """Ed25519 signature of the UTF-8 payload, base64."""
    return base64.b64encode(key.sign(payload.encode("utf-8"))).decode("ascii")


def parse_payload(payload: str) -> dict[str, Any]:
    """Decode a stored payload; raises ApprovalError when it is not a canonical approval."""
    try:
        data = json.loads(payload)
    except (TypeError, ValueError):
        raise ApprovalError(
            "the stored approval payload is not JSON; the registry was modified, re-approve"
        ) from None
    if not isinstance(data, dict) or sorted(data) != sorted(PAYLOAD_FIELDS):
        raise ApprovalError(
            "the stored approval payload has the wrong fields; the registry was modified, re-approve"
        )
    return data


def verify_signature(payload: str, signature: str, key: Ed25519PublicKey) -> bool:
    """True when ``signature`` (base64) is ``key``'s signature of ``payload``."""
    try:
        sig = base64.b64decode(signature.encode("ascii"), validate=True)
        key.verify(sig, payload.encode("utf-8"))
    except (InvalidSignature, binascii.Error, ValueError, UnicodeEncodeError):
        return False
    return True
