"""``<workspace>/status.json``: what a running campaign is doing now, for ``bremen console``.

The campaign writes it at each stage change and, while collecting, about once a second from the
runner's episode events. It is a view, never an input: nothing reads it back to decide anything,
and a failure to write it (full disk, read-only folder) is one warning, after which the campaign
goes on without it. Writes are atomic (temp file + rename) so a reader sees the old or the new
file, never half of one; there is no fsync, since losing the newest heartbeat in a power cut is
harmless and a disk flush each second could slow a loaded machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bremen_robot.fsutil import current_umask

STATUS_FILE = "status.json"
STAGES = (
    "starting",
    "collecting",
    "ingesting",
    "training",
    "evaluating",
    "waiting_for_approval",
    "finished",
    "failed",
)
HEARTBEAT_S = 1.0


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def waiting_message(policy_id: str, workspace: Path) -> str:
    """What the operator does while the campaign waits for ``policy_id``: one line, for the
    status file and the console's waiting table."""
    ws = f"--workspace {workspace}"
    return (
        f"review candidate {policy_id} (bremen review {policy_id} {ws}), then approve it "
        f"(bremen approve {policy_id} --operator NAME {ws}) or reject it "
        f"(bremen reject {policy_id} --reason TEXT {ws})"
    )


def _write(path: Path, data: dict[str, Any]) -> None:
    # not fsutil.atomic_write_bytes: the status is rewritten at every progress update and needs no fsync
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            with contextlib.suppress(OSError):  # readable like any file, not mkstemp's 0600
                os.fchmod(f.fileno(), 0o666 & ~current_umask())
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StatusWriter:
    """Keeps the campaign's live status and writes it to ``<root>/status.json``.

    Every public method swallows its own errors (after one warning through ``log``): the status is
    for the operator's eyes and must never stop or change the campaign.
    """

    def __init__(
        self, root: Path, *, campaign: str, deployments: int, steps_target: int, log: Callable[[str], None]
    ) -> None:
        self.path = Path(root) / STATUS_FILE
        self.log = log
        self._warned = False
        self._last_write = 0.0
        self.data: dict[str, Any] = {
            "campaign": campaign,
            "stage": "starting",
            "deployment": 0,
            "deployments": deployments,
            "policy_id": None,
            "episodes": 0,
            "steps": 0,
            "steps_target": steps_target,
            "interventions": 0,
            "estop": "unknown",
            "message": "",
            "warning": None,  # the last selection decision's warning for the operator; stays until the next
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": now_iso(),
            "updated_at": now_iso(),
        }

    def stage(self, stage: str, deployment: int | None = None, **fields: Any) -> None:
        """Enter ``stage`` (one of :data:`STAGES`); a new deployment resets the collection counts."""
        with self._guard():
            if deployment is not None and deployment != self.data["deployment"]:
                self._reset_counts()
                self.data.update(deployment=deployment, estop="unknown")
                self.data.pop("candidate", None)  # the last deployment's; this one has none yet
            self.data.update({"stage": stage, "message": "", **fields})
            self._flush()

    def _reset_counts(self) -> None:
        # done_steps is the sum over the collection's finished episodes: kept across a new
        # collection, it adds the last deployment's steps to this one's (4700 / 3000)
        self.data.update(episodes=0, steps=0, interventions=0)
        self.data.pop("done_steps", None)
        self.data.pop("current", None)

    def on_collect_event(self, evt: dict[str, Any]) -> None:
        """A ``bremen/episode`` event of the runner (or the e-stop watch) during collection."""
        with self._guard():
            kind = evt.get("event")
            d = self.data
            if kind == "start":
                d["current"] = 0
            elif kind == "progress":
                d["current"] = int(evt.get("steps", 0))
            elif kind == "stop":
                d["episodes"] += 1
                d["steps"] = d.get("done_steps", 0) + int(evt.get("steps", 0))
                d["done_steps"] = d["steps"]
                d["interventions"] += int(evt.get("interventions", 0))
                d["current"] = 0
            elif kind == "estop":
                d["estop"] = "latched" if evt.get("latched") else "clear"
            if kind in ("start", "progress"):
                d["steps"] = d.get("done_steps", 0) + d["current"]
            # stage changes and e-stop changes at once; progress at most once a second
            if kind in ("stop", "estop") or time.monotonic() - self._last_write >= HEARTBEAT_S:
                self._flush()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around the campaign: ``finished`` when it returns, ``failed`` with the reason when not."""
        try:
            yield
        except BaseException as exc:
            reason = "interrupted (Ctrl-C or SIGTERM)" if isinstance(exc, KeyboardInterrupt) else str(exc)
            self.stage("failed", message=reason.splitlines()[0] if reason else type(exc).__name__)
            raise
        self.stage("finished")

    def _flush(self) -> None:
        self.data["updated_at"] = now_iso()
        self._last_write = time.monotonic()
        public = {k: v for k, v in self.data.items() if k not in ("current", "done_steps")}
        _write(self.path, public)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:  # the status is a view: its failure never reaches the campaign
            if not self._warned:
                self._warned = True
                self.log(
                    f"warning: cannot write {self.path} ({exc}); the campaign goes on without live status"
                )
