"""Crash-safe file writes shared by artifacts, bags, the registry store and campaign state.

A write goes to a temporary file in the same folder, is fsynced, renamed over the target, and
the folder is fsynced, so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask. Linux shows it in /proc (read without changing it); elsewhere it can
    only be read by setting it, which another thread could see for an instant."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write_bytes(path: Path, data: bytes, *, exclusive: bool = False, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (temp file + fsync + rename + folder fsync).

    ``exclusive``: create it only if nothing is there (a hard link instead of the rename), so of two
    writers racing for one name the second gets ``FileExistsError`` rather than replacing the first.
    ``mode``: the file's permissions; by default those of a file ``open()`` creates (0666 less the
    umask, 0644 usually), not mkstemp's private 0600, which kept review pages, reports and
    datasets from a console or colleague running as another user. Secrets (operator keys) are
    written by their own code, never here.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(OSError):  # a filesystem without modes (vfat) keeps its own
                os.fchmod(f.fileno(), 0o666 & ~current_umask() if mode is None else mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except FileExistsError:
        Path(tmp).unlink(missing_ok=True)
        raise
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error, naming the file the caller asked for rather than our temporary one
    (a full disk is reported by ``write`` with no file name at all)."""
    return type(exc)(exc.errno, exc.strerror, str(path))


def extract_tar(tar: tarfile.TarFile, dest: Path) -> None:
    """Unpack ``tar`` into ``dest`` with tarfile's ``data`` filter (no absolute paths, no ``..``,
    no links out of ``dest``, no device files). Pythons older than 3.10.12 / 3.11.4 lack the
    filter, and unpacking an archive from another machine without it is not safe: refused."""
    if not hasattr(tarfile, "data_filter"):
        from bremen_robot.errors import BremenError

        raise BremenError(
            "this Python's tarfile has no 'data' extraction filter, needed to unpack an archive from "
            "another machine safely; use Python 3.10.12+, 3.11.4+ or 3.12"
        )
    tar.extractall(dest, filter="data")
