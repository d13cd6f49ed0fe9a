"""Which public key an operator name stands for: the approver recorded is the key's owner.

An approval names an operator, and the signature proves who holds a private key; the two
must be the same person. The registry binds each operator name to one Ed25519 public key
(table ``operator_keys``) at the name's first approval, and from then on accepts that name
only with that key. Before the first approval the name's key is its public key from
``bremen operator init``: ``<operator dir>/<NAME>.pub``, or ``<NAME>.pub`` beside the
``<NAME>.key`` passed with ``--key``. A key matching neither is refused, naming both keys
(and the key's real owner, when the registry or the operator folder knows it). One key can
be bound to one name only.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bremen_robot.registry.errors import ApprovalError, RegistryDamagedError
from bremen_robot.registry.guard import RESTORE_HINT, GuardedConnection
from bremen_robot.registry.signing import default_operator_dir, key_fingerprint, load_public_key


def raw_b64(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64: how ``operator_keys`` stores it."""
    return base64.b64encode(
        key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()


def _has_table(conn: GuardedConnection) -> bool:
    # a reader may open a schema-1 registry (readers never migrate): it has no bindings yet
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'operator_keys'"
    ).fetchone()
    return row is not None


def bound_key(conn: GuardedConnection, name: str) -> Ed25519PublicKey | None:
    """The public key the registry binds ``name`` to, or None before its first approval."""
    if not _has_table(conn):
        return None
    row = conn.execute(
        "SELECT public_key, key_fingerprint FROM operator_keys WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(str(row[0]), validate=True))
    except (binascii.Error, ValueError):
        key = None
    if key is None or key_fingerprint(key) != row[1]:
        raise RegistryDamagedError(
            f"registry database '{conn.path}' is damaged: the key bound to operator '{name}' is unreadable "
            f"or does not match its fingerprint; {RESTORE_HINT}"
        )
    return key


def _owner(conn: GuardedConnection, fingerprint: str, operator_dir: Path | None) -> str | None:
    """Who a key belongs to, as far as the registry (or, when given, the operator folder) knows."""
    if _has_table(conn):
        row = conn.execute(
            "SELECT name FROM operator_keys WHERE key_fingerprint = ?", (fingerprint,)
        ).fetchone()
        if row is not None:
            return str(row[0])
    if operator_dir is None or not operator_dir.is_dir():
        return None
    for pub in sorted(operator_dir.glob("*.pub")):
        try:
            if key_fingerprint(load_public_key(pub)) == fingerprint:
                return pub.stem
        except ApprovalError:  # an unreadable .pub names nobody
            continue
    return None


def expected_key(
    conn: GuardedConnection, name: str, key_path: Path | None, operator_dir: Path | None = None
) -> tuple[Ed25519PublicKey, str] | None:
    """``(public key, where it came from)`` that ``name`` must sign with, or None if none is known."""
    bound = bound_key(conn, name)
    if bound is not None:
        return bound, f"bound to '{name}' in the registry"
    d = operator_dir if operator_dir is not None else default_operator_dir()
    candidates = [d / f"{name}.pub"]
    if key_path is not None and Path(key_path).name == f"{name}.key":
        candidates.append(Path(key_path).with_name(f"{name}.pub"))
    for pub in candidates:
        if pub.is_file():
            return load_public_key(pub), str(pub)
    return None


def check_key_owner(conn: GuardedConnection, name: str, key_path: Path, public_key: Ed25519PublicKey) -> None:
    """Refuse ``public_key`` unless it is ``name``'s (module docstring). Reads only: the approval
    runs it first, before any other check that names the operator (a trust refusal would name
    alice for bob's key and send her to a fix that cannot help), and again in
    :func:`check_and_bind`."""
    fp = key_fingerprint(public_key)
    d = default_operator_dir()
    expected = expected_key(conn, name, key_path, d)
    if expected is None:
        raise ApprovalError(
            f"operator '{name}' has no known public key to check '{key_path}' against "
            f"(no {d / (name + '.pub')}, no key bound in the registry); "
            f"create the pair with 'bremen operator init {name}' "
            "or set $BREMEN_OPERATOR_DIR to the folder holding its .pub"
        )
    want, source = expected
    want_fp = key_fingerprint(want)
    if want_fp != fp:
        owner = _owner(conn, fp, d)
        whose = f"operator '{owner}'" if owner else "another key pair"
        raise ApprovalError(
            f"key '{key_path}' (fingerprint {fp[:12]}, {whose}) is not the key of operator '{name}' "
            f"({source}: fingerprint {want_fp[:12]}); "
            f"approve as the key's owner, or sign with {name}'s own key"
        )


def check_and_bind(
    conn: GuardedConnection, name: str, key_path: Path, public_key: Ed25519PublicKey, at: str
) -> None:
    """Refuse ``public_key`` unless it is ``name``'s; bind the name at its first approval.

    Call inside the approval's write transaction, so two first approvals cannot bind one name
    to two keys.
    """
    check_key_owner(conn, name, key_path, public_key)
    fp = key_fingerprint(public_key)
    if _has_table(conn) and bound_key(conn, name) is None:
        other = _owner(conn, fp, None)
        if other is not None:
            raise ApprovalError(
                f"key '{key_path}' (fingerprint {fp[:12]}) is already bound to operator '{other}' in this "
                f"registry; approve as '{other}', or give '{name}' a key pair of its own"
            )
        conn.execute(
            "INSERT INTO operator_keys (name, public_key, key_fingerprint, bound_at) VALUES (?, ?, ?, ?)",
            (name, raw_b64(public_key), fp, at),
        )
