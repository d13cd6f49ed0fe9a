"""One writer per folder: an advisory lock for campaign workspaces and ``--out`` folders.

The lock is ``fcntl.flock`` on ``<folder>/.bremen.lock``. The kernel drops it when the holding
process dies (also on ``kill -9`` or a power cut), so a stale lock never blocks a resume; the
file itself only records who holds it (pid, host, command) for the refusal message. A second
command is refused at once rather than waiting: two graphs writing one bag, or two campaigns
moving each other's stage folders aside, corrupt data that cannot be collected again.

The file is removed on a clean release. Whoever takes the lock checks that the file it locked is
still the one at the path (a releaser may have unlinked it in between), so two processes can
never both believe they hold it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bremen_robot.errors import BremenError

LOCK_FILE = ".bremen.lock"
# Folders this process holds, with their nesting depth: the lock is per process, re-entrant.
_HELD: dict[Path, int] = {}


class LockedError(BremenError):
    """Another live process holds the folder's lock."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another process (pid not yet recorded)"
    return f"pid {info['pid']} on host {info.get('host', '?')}"


@contextmanager
def folder_lock(folder: Path | str, what: str) -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if missing) for the ``with`` block.

    ``what`` names the folder in the refusal (e.g. "workspace", "--out folder"). Raises
    :class:`LockedError` at once when another live process holds it; in the process that holds
    it, a nested ``folder_lock`` of the same folder just enters (so the library's own lock and
    a command's lock around it do not refuse each other).
    """
    folder = Path(folder)
    key = folder.resolve()
    if key in _HELD:  # this process holds it already (the CLI, then the library call it makes)
        _HELD[key] += 1
        try:
            yield folder / LOCK_FILE
        finally:
            _HELD[key] -= 1
        return
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise LockedError(
                f"{what} '{folder}' is in use by {_holder(path)}; wait for it to finish or stop it "
                f"(a killed run releases the lock by itself)"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder released and removed this file meanwhile: lock the new one
    try:
        record = {"pid": os.getpid(), "host": socket.gethostname()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        _HELD[key] = 1
        yield path
    finally:
        _HELD.pop(key, None)
        with suppress(OSError):
            path.unlink()
        os.close(fd)
        if created:  # a command refused before writing anything leaves no empty folder behind
            with suppress(OSError):
                folder.rmdir()


def is_lock_file(path: Path) -> bool:
    """True for the lock file itself (folders that must be empty may still hold it)."""
    return path.name == LOCK_FILE


def has_content(folder: Path) -> bool:
    """True when ``folder`` holds anything besides a lock file (a missing folder holds nothing)."""
    folder = Path(folder)
    return folder.is_dir() and any(not is_lock_file(p) for p in folder.iterdir())
