"""Every SQLite call of the registry fails as a one-line :class:`RegistryError`.

SQLite reports damage lazily: opening a damaged file often works and the error comes from the
first row read that touches a bad page, or even from ``fetchall`` after ``execute`` succeeded.
So the registry never holds a bare :class:`sqlite3.Connection`: it holds a
:class:`GuardedConnection`, whose statements and cursors translate every ``sqlite3.Error``
into an error naming the database file and what to do about it. Stored JSON columns are
decoded by :func:`bremen_robot.registry.jsonio.json_object` for the same reason.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bremen_robot.registry.errors import RegistryDamagedError, RegistryDatabaseError, RegistryError

RESTORE_HINT = (
    "run 'bremen registry check' to see the damage, then restore the last good copy with "
    "'bremen registry restore BACKUP --replace' (docs/registry.md, 'Backup and restore')"
)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def translate(exc: sqlite3.Error, path: Path) -> RegistryError:
    """The one-line registry error for a SQLite failure on the database at ``path``."""
    msg = one_line(str(exc))
    low = msg.lower()
    if isinstance(exc, sqlite3.IntegrityError):
        return RegistryDatabaseError(f"registry '{path}' refused the change ({msg}); nothing was written")
    if "locked" in low or "busy" in low:
        return RegistryDatabaseError(
            f"the registry database '{path}' is busy ({msg}); another bremen process holds it, retry"
        )
    if "readonly" in low or "read-only" in low:
        return RegistryDatabaseError(
            f"cannot write the registry database '{path}' ({msg}); "
            "make the file and its folder writable, or use a read-only command"
        )
    if "full" in low:
        return RegistryDatabaseError(
            f"cannot write the registry database '{path}' ({msg}); free disk space, retry"
        )
    if "unable to open" in low:
        return RegistryDatabaseError(
            f"cannot open the registry database '{path}' ({msg}); check the path and permissions"
        )
    if "disk i/o" in low:
        return RegistryDatabaseError(
            f"disk I/O error on the registry database '{path}' ({msg}); check the disk, then {RESTORE_HINT}"
        )
    return RegistryDamagedError(f"registry database '{path}' is damaged ({msg}); {RESTORE_HINT}")


class GuardedCursor:
    """A cursor whose row reads raise :class:`RegistryError` instead of ``sqlite3.Error``."""

    def __init__(self, cursor: sqlite3.Cursor, path: Path) -> None:
        self._cursor = cursor
        self._path = path

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except sqlite3.Error as exc:
            raise translate(exc, self._path) from None

    def fetchall(self) -> list[Any]:
        try:
            return self._cursor.fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self._path) from None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class GuardedConnection:
    """The registry's connection: ``execute`` and its cursors map SQLite errors (see module doc)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.raw = conn
        self.path = path

    def execute(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> GuardedCursor:
        try:
            return GuardedCursor(self.raw.execute(sql, args), self.path)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None

    def query(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> GuardedCursor:
        """Like :meth:`execute`, with each row a ``sqlite3.Row``: read by column name."""
        try:
            cursor = self.raw.execute(sql, args)
            cursor.row_factory = sqlite3.Row
            return GuardedCursor(cursor, self.path)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None

    def translate(self, exc: sqlite3.Error) -> RegistryError:
        return translate(exc, self.path)

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # closing a damaged file must not hide the real error
            self.raw.close()
