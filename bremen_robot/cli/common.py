"""Small helpers shared by CLI subcommands, and the one-line form of file-system errors."""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bremen_robot.errors import BremenError

if TYPE_CHECKING:
    from bremen_robot.data.dataset import Dataset


def load_datasets(paths: Sequence[str | Path]) -> Dataset:
    """Load one or more ``.npz`` datasets; several are merged (episode ids renumbered)."""
    from bremen_robot.data.dataset import Dataset, merge

    sets = [Dataset.load(Path(p)) for p in paths]
    return sets[0] if len(sets) == 1 else merge(sets)


def mean_std(values: Sequence[float]) -> str:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    return f"{arr.mean():.1f} ± {arr.std():.1f}"


def check_new_folder(path: Path, flag: str, why: str) -> None:
    """Refuse a ``path`` that is a file or a folder with anything in it (a lock file aside)."""
    from bremen_robot.workspace_lock import has_content

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BremenError(f"{flag} {path} is a file, not a folder; pass a new folder path")
    if has_content(path):
        raise BremenError(f"{flag} {path} exists and is not empty; {why}, pick a new folder")


# an earlier report is a few KiB; anything larger named as --json is some other file
_REPORT_MAX_BYTES = 1 << 20


def check_report_file(path: Path, flag: str) -> None:
    """Refuse a report path that holds anything but an earlier JSON report, before any work.

    Re-running with the same ``--json`` rewrites its report (README), but a dataset, bag or
    config named there by mistake must never be replaced. Devices and pipes (``/dev/stdout``)
    hold nothing to lose and are written as before.
    """
    path = Path(path)
    if path.is_dir():
        raise BremenError(f"{flag} {path} is a folder; pass a file path for the JSON report")
    if not path.is_file():
        return
    try:
        with path.open("rb") as f:
            head = f.read(_REPORT_MAX_BYTES + 1)
        report = json.loads(head) if len(head) <= _REPORT_MAX_BYTES else None
    except (UnicodeDecodeError, ValueError):
        report = None
    if not isinstance(report, dict):
        raise BremenError(
            f"{flag} {path} exists and is not a JSON report; pass a new file name (it was left as it was)"
        )


# errno -> (problem, fix). Only what a user causes by a path, a permission or a full disk; any
# other OSError stays an internal error (a bug of ours to report).
_OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", "free space, or use a folder on another disk, and re-run"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota, or use another disk, and re-run"),
    errno.EROFS: ("read-only file system", "use a folder on a writable disk"),
    errno.EACCES: ("permission denied", "use a folder you can write to, or fix its permissions"),
    errno.EPERM: ("operation not permitted", "use a folder you can write to, or fix its permissions"),
    errno.EEXIST: ("exists and is not a folder", "pass a folder path, or move that file away"),
    errno.ENOTDIR: ("a part of this path is a file, not a folder", "pass a path whose parents are folders"),
    errno.EISDIR: ("is a folder where a file was expected", "pass a file path"),
    errno.ENOENT: ("does not exist", "check the path"),
    errno.ENAMETOOLONG: ("file name too long", "use a shorter path"),
    errno.ELOOP: ("too many levels of symbolic links", "fix the symbolic link"),
}


def describe_os_error(exc: OSError) -> str | None:
    """``<path>: <problem>; <fix>`` for file-system errors a user causes, else None."""
    known = _OS_ERRORS.get(exc.errno or -1)
    if known is None:
        return None
    problem, fix = known
    where = exc.filename if exc.filename is not None else None
    if where is None:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return None  # without a path the message could not say what to fix
        return f"{problem} while writing; {fix} (files already written are kept)"
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    tail = " (files already written are kept)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{where}: {problem}; {fix}{tail}"


# C0/C1 control characters except newline and tab: a note or name carrying terminal escape
# sequences would otherwise rewrite the operator's terminal (title, colours, cursor, links)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN`` escapes, never sent to the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
