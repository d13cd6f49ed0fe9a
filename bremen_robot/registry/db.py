"""The registry database: SQLite (stdlib ``sqlite3``), created and migrated by the tool itself.

The schema carries its version in ``schema_version``; :data:`MIGRATIONS` upgrades an older file
in one transaction. Journal mode is WAL with ``synchronous=FULL``: a committed transaction
survives a killed process or power loss, an uncommitted one leaves nothing behind.

Invariants are enforced by the database too, not only by :mod:`bremen_robot.registry.store`:

* ``audit`` and ``approvals`` are append-only (triggers raise on UPDATE and DELETE);
* policies are never deleted, and their content address, manifest digest and origin never change;
* a policy's state only moves along the allowed transitions;
* an operator name, once bound to a public key (``operator_keys``, by its first approval), stays
  bound to that key.

Only writers create a database, and never in place: the schema is built in a hidden temporary
file that is then hard-linked to the final name, so ``registry.sqlite`` is either absent or a
complete registry, and a 0-byte file is always damage (never silently initialised). Readers
open the file with ``mode=ro``: they never create, migrate or write it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bremen_robot.fsutil import fsync_dir
from bremen_robot.registry.errors import RegistryDamagedError, RegistryError
from bremen_robot.registry.guard import RESTORE_HINT, GuardedConnection
from bremen_robot.registry.states import TRANSITIONS as _TABLE
from bremen_robot.registry.states import PolicyState

SCHEMA_VERSION = 5

STATES: tuple[str, ...] = tuple(s.value for s in PolicyState)
# from-state -> allowed to-states, as plain strings for the trigger's SQL: the table is
# bremen_robot.registry.states.TRANSITIONS (the store gives the friendly errors; the trigger is
# the backstop). Entries into the registry (from None) are INSERTs, not state changes here.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    a.value: tuple(b.value for b in bs) for a, bs in _TABLE.items() if a is not None
}


def _transition_condition() -> str:
    allowed = " OR ".join(
        f"(OLD.state = '{a}' AND NEW.state IN ({', '.join(repr(b) for b in bs)}))"
        for a, bs in TRANSITIONS.items()
        if bs
    )
    return f"NEW.state IS NOT OLD.state AND NOT ({allowed})"


_V1 = [
    f"""
    CREATE TABLE policies (
        sha256          TEXT PRIMARY KEY,
        state           TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
        kind            TEXT NOT NULL,
        robot           TEXT NOT NULL,
        task            TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        registered_at   TEXT NOT NULL,
        manifest_digest TEXT NOT NULL,
        manifest_json   TEXT NOT NULL,
        report_json     TEXT NOT NULL,
        lineage_json    TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE approvals (
        policy_sha256   TEXT PRIMARY KEY REFERENCES policies(sha256),
        operator        TEXT NOT NULL,
        approved_at     TEXT NOT NULL,
        note            TEXT NOT NULL,
        payload         TEXT NOT NULL,
        signature       TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE deployments (
        number          INTEGER PRIMARY KEY CHECK (number >= 1),
        policy_sha256   TEXT NOT NULL UNIQUE REFERENCES policies(sha256),
        deployed_at     TEXT NOT NULL,
        actor           TEXT NOT NULL,
        note            TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE audit (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        policy_sha256   TEXT NOT NULL REFERENCES policies(sha256),
        at              TEXT NOT NULL,
        actor           TEXT NOT NULL,
        from_state      TEXT,
        to_state        TEXT NOT NULL,
        note            TEXT NOT NULL
    )
    """,
    "CREATE INDEX audit_policy ON audit(policy_sha256, seq)",
    """
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
    """,
    """
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
    """,
    """
    CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
    BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END
    """,
    """
    CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
    BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END
    """,
    """
    CREATE TRIGGER deployments_no_update BEFORE UPDATE ON deployments
    BEGIN SELECT RAISE(ABORT, 'deployments are append-only'); END
    """,
    """
    CREATE TRIGGER deployments_no_delete BEFORE DELETE ON deployments
    BEGIN SELECT RAISE(ABORT, 'deployments are append-only'); END
    """,
    """
    CREATE TRIGGER policies_no_delete BEFORE DELETE ON policies
    BEGIN SELECT RAISE(ABORT, 'policies are never deleted; retire them'); END
    """,
    """
    CREATE TRIGGER policies_immutable BEFORE UPDATE ON policies
    WHEN NEW.sha256 IS NOT OLD.sha256 OR NEW.manifest_digest IS NOT OLD.manifest_digest
      OR NEW.manifest_json IS NOT OLD.manifest_json OR NEW.kind IS NOT OLD.kind
      OR NEW.created_at IS NOT OLD.created_at OR NEW.registered_at IS NOT OLD.registered_at
      OR NEW.lineage_json IS NOT OLD.lineage_json OR NEW.report_json IS NOT OLD.report_json
    BEGIN SELECT RAISE(ABORT, 'only a policy''s state may change'); END
    """,
    f"""
    CREATE TRIGGER policies_transition BEFORE UPDATE OF state ON policies
    WHEN {_transition_condition()}
    BEGIN SELECT RAISE(ABORT, 'invalid policy state transition'); END
    """,
]

# v2: each operator name is bound to one Ed25519 public key (raw, base64) by its first approval,
# so the approver recorded for a signature is always the key's owner (docs/registry.md)
_V2 = [
    """
    CREATE TABLE operator_keys (
        name            TEXT PRIMARY KEY,
        public_key      TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL UNIQUE,
        bound_at        TEXT NOT NULL
    )
    """,
    """
    CREATE TRIGGER operator_keys_no_update BEFORE UPDATE ON operator_keys
    BEGIN SELECT RAISE(ABORT, 'operator keys are append-only'); END
    """,
    """
    CREATE TRIGGER operator_keys_no_delete BEFORE DELETE ON operator_keys
    BEGIN SELECT RAISE(ABORT, 'operator keys are append-only'); END
    """,
]

# v3: shadow runs (docs/registry.md "Shadow runs"): a candidate ran beside the acting controller
# and moved nothing; recorded apart from deployments, so they never count as one
_V3 = [
    """
    CREATE TABLE shadow_runs (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        policy_sha256   TEXT NOT NULL REFERENCES policies(sha256),
        acting          TEXT NOT NULL,
        recorded_at     TEXT NOT NULL,
        actor           TEXT NOT NULL,
        bag             TEXT NOT NULL,
        summary_json    TEXT NOT NULL
    )
    """,
    "CREATE INDEX shadow_runs_policy ON shadow_runs(policy_sha256, seq)",
    """
    CREATE TRIGGER shadow_runs_no_update BEFORE UPDATE ON shadow_runs
    BEGIN SELECT RAISE(ABORT, 'shadow runs are append-only'); END
    """,
    """
    CREATE TRIGGER shadow_runs_no_delete BEFORE DELETE ON shadow_runs
    BEGIN SELECT RAISE(ABORT, 'shadow runs are append-only'); END
    """,
]

# v4 (issue 17, a fleet on Ray): one collection session per robot that ran a deployment's
# policy; ``round`` is the campaign's deployment index k (a kept policy may collect in several)
_V4 = [
    """
    CREATE TABLE collection_sessions (
        policy_sha256   TEXT NOT NULL REFERENCES policies(sha256),
        round           INTEGER NOT NULL CHECK (round >= 1),
        robot           TEXT NOT NULL,
        node            TEXT NOT NULL,
        samples         INTEGER NOT NULL CHECK (samples >= 0),
        episodes        INTEGER NOT NULL CHECK (episodes >= 0),
        interventions   INTEGER NOT NULL CHECK (interventions >= 0),
        data_digest     TEXT NOT NULL,
        recorded_at     TEXT NOT NULL,
        PRIMARY KEY (policy_sha256, round, robot)
    )
    """,
    """
    CREATE TRIGGER collection_sessions_no_update BEFORE UPDATE ON collection_sessions
    BEGIN SELECT RAISE(ABORT, 'collection sessions are append-only'); END
    """,
    """
    CREATE TRIGGER collection_sessions_no_delete BEFORE DELETE ON collection_sessions
    BEGIN SELECT RAISE(ABORT, 'collection sessions are append-only'); END
    """,
]

# v5: a policy's robot and task columns are as immutable as the rest of it (v1's trigger left
# them out, so a hand edit could relabel a policy; `bremen registry check` compares them too)
_V5 = [
    "DROP TRIGGER policies_immutable",
    """
    CREATE TRIGGER policies_immutable BEFORE UPDATE ON policies
    WHEN NEW.sha256 IS NOT OLD.sha256 OR NEW.manifest_digest IS NOT OLD.manifest_digest
      OR NEW.manifest_json IS NOT OLD.manifest_json OR NEW.kind IS NOT OLD.kind
      OR NEW.created_at IS NOT OLD.created_at OR NEW.registered_at IS NOT OLD.registered_at
      OR NEW.lineage_json IS NOT OLD.lineage_json OR NEW.report_json IS NOT OLD.report_json
      OR NEW.robot IS NOT OLD.robot OR NEW.task IS NOT OLD.task
    BEGIN SELECT RAISE(ABORT, 'only a policy''s state may change'); END
    """,
]

# MIGRATIONS[i] upgrades schema version i to i + 1.
MIGRATIONS: list[list[str]] = [_V1, _V2, _V3, _V4, _V5]
assert len(MIGRATIONS) == SCHEMA_VERSION


def parse_url(url: str) -> Path:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` (SQLAlchemy style) or a plain path."""
    if "://" not in url:
        if not url:
            raise RegistryError("empty registry URL; use sqlite:///path/to/registry.sqlite")
        return Path(url).expanduser()
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "sqlite":
        raise RegistryError(
            f"registry URL scheme '{scheme}' is not supported: only sqlite:// is supported in this version"
        )
    if not rest.startswith("/") or rest == "/":
        raise RegistryError(f"registry URL '{url}' has no file path; use sqlite:///path/to/registry.sqlite")
    path = rest[1:]  # sqlite:///rel -> 'rel'; sqlite:////abs -> '/abs'
    if path in (":memory:", ""):
        raise RegistryError("an in-memory registry would forget every approval; give a file path")
    return Path(path).expanduser()


def _raw_connect(target: str, path: Path, timeout_s: float, uri: bool = False) -> sqlite3.Connection:
    try:
        # check_same_thread=False: a node may open the registry in one thread and use it from a
        # callback thread; concurrent use of one connection still needs one Registry per thread.
        return sqlite3.connect(
            target, timeout=timeout_s, isolation_level=None, check_same_thread=False, uri=uri
        )
    except sqlite3.Error as exc:
        raise RegistryError(f"cannot open the registry database '{path}': {exc}") from None


def new_file(folder: Path, prefix: str) -> Path:
    """A new empty file in ``folder`` (mode 0666 less the umask, as SQLite creates its files)."""
    for _ in range(100):
        candidate = folder / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise RegistryError(f"cannot create a temporary file in '{folder}'; remove stale '{prefix}*' files")


def _create(path: Path, timeout_s: float) -> None:
    """Build a new registry beside ``path`` and link it into place unless one appeared meanwhile."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_file(path.parent, f".{path.name}.new-")
    except OSError as exc:
        raise RegistryError(
            f"cannot create the registry database '{path}' ({exc.strerror}); check the path and permissions"
        ) from None
    try:
        conn = GuardedConnection(_raw_connect(str(tmp), path, timeout_s), path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            migrate(conn, path)
        finally:
            conn.close()  # the last connection checkpoints the WAL: the file is complete
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic and never replaces: of racing creators one file wins
        except FileExistsError:
            pass
        except OSError as exc:
            raise RegistryError(
                f"cannot create the registry database '{path}' ({exc.strerror}); "
                "check the path and permissions"
            ) from None
        fsync_dir(path.parent)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def check_not_empty(path: Path) -> None:
    """A 0-byte registry file is damage (our files are never empty): refuse it, never initialise it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RegistryError(
            f"cannot read the registry database '{path}' ({exc.strerror}); check the path"
        ) from None
    if size == 0:
        raise RegistryDamagedError(
            f"registry database '{path}' is an empty (0-byte) file, not a registry; restore the last "
            "good copy with 'bremen registry restore BACKUP --replace' (docs/registry.md, 'Backup and "
            "restore'), or move the empty file aside if this workspace never had a registry"
        )


def connect(path: Path, timeout_s: float = 30.0, *, readonly: bool = False) -> GuardedConnection:
    """Open the database at ``path``: writers create (see module doc) and migrate it, readers only read."""
    if not readonly and not path.exists():
        _create(path, timeout_s)
    check_not_empty(path)
    if readonly:
        target, uri = f"{path.resolve().as_uri()}?mode=ro", True
    else:
        target, uri = str(path), False
    conn = GuardedConnection(_raw_connect(target, path, timeout_s, uri), path)
    try:
        try:  # the first read: a file that is no SQLite database at all is most likely a wrong path
            conn.raw.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            if "not a database" not in str(exc):
                raise conn.translate(exc) from None
            raise RegistryDamagedError(
                f"'{path}' is not a usable registry database ({exc}); check --db / the workspace, "
                f"and if it is your registry, {RESTORE_HINT}"
            ) from None
        if not readonly:
            _refuse_foreign(conn, path)  # before WAL mode or a migration changes the file
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        if readonly:
            check_version(conn, path)
        else:
            migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: GuardedConnection) -> Iterator[GuardedConnection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; any exception rolls everything back.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock at once, waiting up to the busy timeout for
    another writer: this is the registry writers' lock (one writer at a time, across processes).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(RegistryError):  # the original error says more than this one
                conn.execute("ROLLBACK")
        raise


def schema_version(conn: GuardedConnection) -> int:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    got = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(got[0]) if got else 0


def _refuse_newer(current: int, path: Path) -> None:
    if current > SCHEMA_VERSION:
        raise RegistryError(
            f"registry '{path}' has schema version {current}, newer than this bremen-robot "
            f"understands ({SCHEMA_VERSION}); upgrade bremen-robot"
        )


def _refuse_foreign(conn: GuardedConnection, path: Path) -> None:
    """A SQLite file with tables but no schema_version is another program's database (a mistyped
    --db): writers must refuse it like readers do, not add the registry's tables to it. Our own new
    files never reach here without a schema (:func:`_create` builds them complete)."""
    if schema_version(conn) == 0 and conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
        raise RegistryError(f"'{path}' is not a registry database (no schema); check --db / the workspace")


def check_version(conn: GuardedConnection, path: Path) -> int:
    """For readers: the file must be a registry this version can read (older schemas read fine)."""
    current = schema_version(conn)
    if current == 0:
        raise RegistryError(f"'{path}' is not a registry database (no schema); check --db / the workspace")
    _refuse_newer(current, path)
    return current


def migrate(conn: GuardedConnection, path: Path) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`; concurrent openers serialize on the write lock."""
    if schema_version(conn) == SCHEMA_VERSION:
        return
    with transaction(conn):
        current = schema_version(conn)  # re-read under the lock: another process may have migrated
        _refuse_newer(current, path)
        if current == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        for version in range(current, SCHEMA_VERSION):
            for stmt in MIGRATIONS[version]:
                conn.execute(stmt)
            conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
