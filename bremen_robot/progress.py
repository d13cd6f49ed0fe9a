"""Progress display for long jobs: rich bars on a terminal, quiet otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Stage:
    def __init__(self, progress: Progress | None, task_id: Any) -> None:
        self._progress, self._task_id = progress, task_id

    def advance(self, n: int = 1, info: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task_id, advance=n, info=info)


class Reporter:
    """``with reporter.stage("fit ensemble", total=200) as s: s.advance(1, "mse 0.1")``."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    @contextmanager
    def stage(self, name: str, total: int | None) -> Iterator[Stage]:
        if not self.enabled:
            yield Stage(None, None)
            return
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        )
        with Progress(*columns, transient=False) as progress:
            yield Stage(progress, progress.add_task(name, total=total, info=""))
