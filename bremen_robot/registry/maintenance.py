"""Checking, backing up and restoring the registry database (``bremen registry ...``).

* :func:`check` lists every problem it finds, one line each: SQLite's ``integrity_check`` and
  ``foreign_key_check``, every policy row readable (its JSON included), every approval's
  signature re-verified against its operator's key, every store entry re-hashed, the audit log
  agreeing with the states and deployments numbered 1, 2, 3, ...
* :func:`backup` copies a live registry with SQLite's online backup API (consistent even while
  other processes write), checks the copy, and refuses to overwrite anything.
* :func:`restore` puts a checked backup in place; an existing database is only replaced when
  asked to, and is then moved aside (never deleted).

All three only read the registry they are pointed at; only ``restore`` writes, and only a new
file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from bremen_robot.fsutil import fsync_dir
from bremen_robot.registry import db
from bremen_robot.registry.errors import ApprovalError, RegistryError
from bremen_robot.registry.operators import expected_key
from bremen_robot.registry.signing import key_fingerprint, parse_payload, verify_signature
from bremen_robot.registry.store import RANDOM_POLICY_ID, Registry, short_id

_NOTHING = "nothing was written; 'bremen registry check' lists the damage, restore an older backup"


@contextmanager
def _readonly(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _integrity(conn: sqlite3.Connection) -> list[str]:
    problems = [
        f"integrity: {r[0]}" for r in conn.execute("PRAGMA integrity_check").fetchall() if r[0] != "ok"
    ]
    for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check").fetchall():
        problems.append(f"foreign key: {table} row {rowid} refers to a missing {parent} row")
    return problems


def _check_approvals(reg: Registry, operator_dir: Path | None) -> tuple[list[str], int]:
    problems: list[str] = []
    conn = reg._conn
    rows = conn.execute(
        "SELECT a.policy_sha256, a.operator, a.approved_at, a.note, a.payload, a.signature,"
        " a.key_fingerprint, p.manifest_digest FROM approvals a JOIN policies p ON p.sha256 = a.policy_sha256"
        " ORDER BY a.policy_sha256"
    ).fetchall()
    verified = 0
    for sha, operator, at, note, payload, signature, fingerprint, digest in rows:
        pid = f"approval of {short_id(sha)} by '{operator}'"
        try:
            fields = parse_payload(payload)
        except ApprovalError as exc:
            problems.append(f"{pid}: {exc}")
            continue
        signed = (fields["artifact_sha256"], fields["manifest_digest"], fields["operator"], fields["time"])
        if signed != (sha, digest, operator, at) or fields["note"] != note:
            problems.append(f"{pid}: the signed payload differs from the approval row (edited by hand)")
            continue
        found = expected_key(conn, operator, None, operator_dir)
        if found is None:
            problems.append(
                f"{pid}: cannot verify, no public key for '{operator}' (not bound in the registry, "
                "no .pub in the operator folder); pass --operators DIR holding its .pub"
            )
            continue
        key, source = found
        if key_fingerprint(key) != fingerprint:
            problems.append(
                f"{pid}: signed with key {str(fingerprint)[:12]}, but the key of '{operator}' ({source}) is "
                f"{key_fingerprint(key)[:12]}"
            )
        elif not verify_signature(payload, signature, key):
            problems.append(
                f"{pid}: the signature does not verify against the key of '{operator}' ({source})"
            )
        else:
            verified += 1
    return problems, verified


def _check_rows(reg: Registry) -> tuple[list[str], int]:
    problems: list[str] = []
    conn = reg._conn
    shas = [str(r[0]) for r in conn.execute("SELECT sha256 FROM policies ORDER BY sha256").fetchall()]
    hashed = 0
    for sha in shas:
        try:
            rec = reg._record(sha)
        except RegistryError as exc:
            problems.append(str(exc))
            continue
        last = conn.execute(
            "SELECT to_state FROM audit WHERE policy_sha256 = ? ORDER BY seq DESC LIMIT 1", (sha,)
        ).fetchone()
        if last is None or last[0] != rec.state:
            problems.append(
                f"policy {rec.id}: state '{rec.state}' but the audit log's last entry says "
                f"'{last[0] if last else 'nothing'}'"
            )
        if sha == RANDOM_POLICY_ID:
            continue
        if rec.state in ("approved", "deployed") and rec.approval is None:
            # candidate -> approved is a legal move for the trigger and audit rows can be appended
            # by hand, so neither check above sees a state no operator ever signed
            fix = "retire it" if rec.state == "deployed" else "reject it"
            problems.append(
                f"policy {rec.id}: state '{rec.state}' but no approval is recorded (unsigned); "
                f"{fix}, or restore the last good backup"
            )
        for column in ("robot", "task"):  # the columns `bremen policies` shows, from the manifest
            if getattr(rec, column) != rec.manifest.get(column):
                problems.append(
                    f"policy {rec.id}: {column} '{getattr(rec, column)}' but its manifest says "
                    f"'{rec.manifest.get(column)}'"
                )
        try:
            reg.verify_store(rec)
            hashed += 1
        except ApprovalError as exc:
            problems.append(f"artifact store: {exc}")
    numbers = [int(r[0]) for r in conn.execute("SELECT number FROM deployments ORDER BY number").fetchall()]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"deployments are numbered {numbers}, not 1..{len(numbers)}")
    return problems, hashed


def check(reg: Registry, operator_dir: Path | None = None) -> tuple[list[str], str]:
    """``(problems, summary)``: every problem found in ``reg`` (opened read-only), one line each."""
    try:
        with _readonly(reg.db_path) as raw:
            problems = _integrity(raw)
    except sqlite3.Error as exc:
        return [f"integrity: {exc}"], ""
    counts = (0, 0)
    try:
        rows, hashed = _check_rows(reg)
        approvals, verified = _check_approvals(reg, operator_dir)
        problems += rows + approvals
        counts = (verified, hashed)
    except RegistryError as exc:  # damage that stops the walk itself
        problems.append(str(exc))
    return problems, f"{counts[0]} approval signature(s) verified, {counts[1]} store entries hashed"


def _copy_checked(src: Path, dest_dir: Path, what: str) -> Path:
    """Online-backup ``src`` into a new temporary file in ``dest_dir``; refuse a damaged copy."""
    try:
        tmp = db.new_file(dest_dir, ".registry-copy-")
    except OSError as exc:
        raise RegistryError(
            f"cannot write in '{dest_dir}' ({exc.strerror}); check the path and permissions"
        ) from None
    try:
        with _readonly(src) as source:
            dest = sqlite3.connect(str(tmp), isolation_level=None)
            try:
                source.backup(dest)
                dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                bad = _integrity(dest)
                version = db.schema_version(db.GuardedConnection(dest, tmp))
            finally:
                dest.close()
        if bad or not 1 <= version <= db.SCHEMA_VERSION:
            why = bad[0] if bad else f"schema version {version}"
            raise RegistryError(f"{what} '{src}' is not a good registry copy ({why}); {_NOTHING}")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        return tmp
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise RegistryError(f"cannot copy {what} '{src}' ({exc}); {_NOTHING}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _link_new(tmp: Path, dest: Path, hint: str) -> None:
    try:
        os.link(tmp, dest)  # never replaces: a file that appeared meanwhile is kept
    except FileExistsError:
        raise RegistryError(f"'{dest}' already exists; {hint}") from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(dest.parent)


def backup(db_path: Path, out: Path) -> Path:
    """Write a checked, self-contained copy of the registry at ``db_path`` to the new file ``out``."""
    db.check_not_empty(db_path)
    out = Path(out).expanduser()
    if out.exists():
        raise RegistryError(f"'{out}' already exists; backups never overwrite, choose a new --out")
    if not out.parent.is_dir():
        raise RegistryError(f"folder '{out.parent}' does not exist; create it or choose another --out")
    tmp = _copy_checked(db_path, out.parent, "registry")
    _link_new(tmp, out, "backups never overwrite, choose a new --out")
    return out


def _aside_name(db_path: Path, stamp: str) -> Path:
    """``<name>.replaced-<stamp>``, or ``...-2``, ``-3``, ... when a restore in the same second took
    it: os.rename replaces silently, and would delete the database an earlier restore kept there."""
    for n in range(1, 1000):
        moved = db_path.with_name(f"{db_path.name}.replaced-{stamp}" + (f"-{n}" if n > 1 else ""))
        if not any(Path(f"{moved}{s}").exists() for s in ("", "-wal", "-shm")):
            return moved
    raise RegistryError(
        f"too many '{db_path.name}.replaced-{stamp}*' files beside '{db_path}'; move some away, retry"
    )


def restore(backup_file: Path, db_path: Path, replace: bool = False) -> Path | None:
    """Put the checked ``backup_file`` in place as ``db_path``; returns where the old one went.

    An existing database (damaged or not) is only replaced with ``replace=True``; it is then
    renamed, with its ``-wal`` and ``-shm`` files, to ``<name>.replaced-<UTC time>``. Stop every
    bremen process using the registry first.
    """
    backup_file = Path(backup_file).expanduser()
    if not backup_file.is_file():
        raise RegistryError(f"backup '{backup_file}' not found; pass the file 'bremen registry backup' wrote")
    db.check_not_empty(backup_file)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _copy_checked(backup_file, db_path.parent, "backup")
    moved: Path | None = None
    # a -wal left beside the restored file would be replayed into it: it goes aside too
    present = [s for s in ("-wal", "-shm", "") if Path(f"{db_path}{s}").exists()]
    try:
        if present:
            if not replace:
                raise RegistryError(
                    f"'{db_path}' exists; pass --replace to move it aside (kept, never deleted) and restore"
                )
            moved = _aside_name(db_path, datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
            for suffix in present:  # the main file last, so a failure cannot part it from its WAL
                os.rename(f"{db_path}{suffix}", f"{moved}{suffix}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _link_new(tmp, db_path, "another process created it meanwhile; stop it and retry")
    return moved
