"""The registry database: SQLite (stdlib ``sqlite3``), created and migrated by the tool itself.

The schema carries its version in ``schema_version``; :data:`MIGRATIONS` upgrades an older file
in one transaction. Journal mode is WAL with ``synchronous=FULL``: a committed transaction
survives a killed process or power loss, an uncommitted one leaves nothing behind.

Invariants are enforced by the database too, not only by :mod:`bremen_robot.registry.store`:

* ``audit`` and ``approvals`` are append-only (triggers raise on UPDATE and DELETE);
* policies are never deleted, and their content address, manifest digest and origin never change;
* a policy's state only moves along the allowed transitions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bremen_robot.registry.errors import RegistryError

SCHEMA_VERSION = 1

STATES = ("candidate", "approved", "rejected", "deployed", "retired")
# from-state -> allowed to-states (the store gives the friendly errors; the trigger is the backstop)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "candidate": ("approved", "rejected"),
    "approved": ("deployed", "rejected", "retired"),
    "deployed": ("retired",),
    "rejected": (),
    "retired": (),
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

# MIGRATIONS[i] upgrades schema version i to i + 1.
MIGRATIONS: list[list[str]] = [_V1]
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


def connect(path: Path, timeout_s: float = 30.0) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # check_same_thread=False: a node may open the registry in one thread and use it from a
        # callback thread; concurrent use of one connection still needs one Registry per thread.
        conn = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise RegistryError(f"cannot open the registry database '{path}': {exc}") from None
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise RegistryError(
            f"'{path}' is not a usable registry database ({exc}); check --db / the workspace"
        ) from None
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; any exception rolls everything back."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise RegistryError(
            f"the registry database is busy ({exc}); another bremen process holds it, retry"
        ) from None
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    got = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(got[0]) if got else 0


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`; concurrent openers serialize on the write lock."""
    if schema_version(conn) == SCHEMA_VERSION:
        return
    with transaction(conn):
        current = schema_version(conn)  # re-read under the lock: another process may have migrated
        if current > SCHEMA_VERSION:
            raise RegistryError(
                f"registry '{path}' has schema version {current}, newer than this bremen-robot "
                f"understands ({SCHEMA_VERSION}); upgrade bremen-robot"
            )
        if current == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        for version in range(current, SCHEMA_VERSION):
            for stmt in MIGRATIONS[version]:
                conn.execute(stmt)
            conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
