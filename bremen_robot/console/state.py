"""What ``bremen console`` shows, read from a campaign workspace without writing to it.

Every file is opened for reading only. The registry is never opened in place: SQLite in WAL
mode creates (and leaves) ``-wal``/``-shm`` files and writes read marks into ``-shm`` even for a
``mode=ro`` connection, so the console copies the database (and its WAL) into a temporary folder
outside the workspace and opens that copy. A copy is kept only if neither file changed while it
was taken; a commit that lands during the copy is picked up on the next read.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bremen_robot.campaign.rejection import turned_down
from bremen_robot.campaign.status import STATUS_FILE
from bremen_robot.console.candidate import candidate_after, review_summary

STALE_COLLECTING_S = 30.0  # during collection the campaign writes about once a second
REVIEW_FILE = "review.html"


def _json(path: Path) -> Any:
    try:
        # NaN/Infinity (Python's json writes them) stay visible as text: the JSON routes refuse floats
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=str)
    except (OSError, ValueError):
        return None  # absent, or replaced while read: the next poll sees the new file


def _dict(path: Path) -> dict[str, Any] | None:
    """A JSON object file; None when absent, unreadable or not an object (a damaged file)."""
    got = _json(path)
    return got if isinstance(got, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except (OSError, ValueError, OverflowError):
        return False
    return True


def _age_s(stamp: Any) -> float | None:
    try:
        then = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - then).total_seconds()


def read_status(root: Path) -> dict[str, Any]:
    """``status.json`` plus ``running``/``stale`` and a sentence saying why (see docs/console.md)."""
    st = _json(root / STATUS_FILE)
    if not isinstance(st, dict):
        return {"stage": "none", "running": False, "stale": False, "liveness": "no campaign status yet"}
    st = dict(st)
    age = _age_s(st.get("updated_at"))
    st["age_s"] = None if age is None else round(age, 1)
    last = f"last update {st.get('updated_at', '?')}"
    ended = st.get("stage") in ("finished", "failed")
    same_host = st.get("host") == socket.gethostname()
    pid = st.get("pid")
    dead = same_host and isinstance(pid, int) and not _pid_alive(pid)
    quiet = st.get("stage") == "collecting" and age is not None and age > STALE_COLLECTING_S
    if ended:
        st.update(running=False, stale=False, liveness=f"{st['stage']}; {last}")
    elif dead or quiet:
        why = f"process {pid} is gone" if dead else f"no update for {age:.0f} s while collecting"
        st.update(running=False, stale=True, liveness=f"not running ({why}); {last}")
    elif not same_host:
        st.update(running=True, stale=False, liveness=f"running on {st.get('host')}; {last}")
    else:
        st.update(running=True, stale=False, liveness=f"running (process {pid}); {last}")
    return st


class _Cache:
    """Derived values keyed by the (mtime, size) of the files they came from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[Any, Any]] = {}

    def get(self, name: str, key: Any, make: Any) -> Any:
        with self._lock:
            hit = self._data.get(name)
            if hit is not None and hit[0] == key:
                return hit[1]
        value = make()
        with self._lock:
            self._data[name] = (key, value)
        return value


def _stat_key(*paths: Path) -> tuple[Any, ...]:
    out: list[tuple[int, int] | None] = []
    for p in paths:
        try:
            s = p.stat()
            out.append((s.st_mtime_ns, s.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


class WorkspaceView:
    """Reads one workspace for the console; safe to share between request threads."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._cache = _Cache()

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        return read_status(self.root)

    # ---------------------------------------------------------------- timeline
    def _samples(self, k: int) -> int | None:
        path = self.root / f"d{k}" / "data.npz"

        def count() -> int | None:
            import numpy as np

            try:
                with np.load(path, allow_pickle=False) as z:
                    return int(z["rewards"].shape[0])
            except (OSError, ValueError, KeyError, EOFError):
                return None
            except Exception:  # a half-written zip (BadZipFile) reads as "not yet"
                return None

        return self._cache.get(f"samples{k}", _stat_key(path), count)  # type: ignore[no-any-return]

    def _deployment_started(self, k: int) -> bool:
        """``d<k>`` holds deployment k once its collection starts; before that a shadow run of
        the candidate waiting for approval (``shadow_bag``, ``shadow-collect.yaml``,
        ``shadow.json``) may have made the folder, and the candidate after k-1 is still the last
        row. Anything else in it is the collection's (``collect.yaml``, ``bag``, a fleet's
        ``shards``); the direct collector writes nothing until it ends, so an empty folder, or
        one the status names as collecting, is started too. Deployment 1 starts with the random
        policy's evaluation."""
        d = self.root / f"d{k}"
        if not d.is_dir():
            return False
        if k == 1:
            return True
        try:
            names = [p.name for p in d.iterdir()]
        except OSError:
            return False
        if not names or any(not n.startswith("shadow") for n in names):
            return True
        st = _json(self.root / STATUS_FILE)
        return (
            isinstance(st, dict)
            and st.get("deployment") == k
            and st.get("stage") in ("collecting", "ingesting")
        )

    def timeline(self) -> dict[str, Any]:
        """Deployments as the campaign table has them (``bremen campaign``'s summary), built from
        the per-stage files so it grows while the campaign runs."""
        meta = _dict(self.root / "campaign.json") or {}
        rows: list[dict[str, Any]] = []
        total = 0
        k = 1
        while self._deployment_started(k):
            collected = _dict(self.root / f"d{k}" / "collect.json")
            ev_path = (
                self.root / "d1" / "eval_random.json" if k == 1 else self.root / f"d{k - 1}" / "eval.json"
            )
            ev = _dict(ev_path) or {}
            samples = self._samples(k)
            row: dict[str, Any] = {
                "deployment": k,
                "policy_id": (collected or {}).get("policy_id", "random" if k == 1 else ""),
                "collected": collected is not None,
                "episodes": (collected or {}).get("episodes"),
                "interventions": (collected or {}).get("interventions"),
                "trained_on": total,
                "eval_return_mean": ev.get("mean"),
                "eval_return_std": ev.get("std"),
                "success_rate": ev.get("success_rate"),
            }
            if samples is not None:
                total += samples
                row["samples"] = total
            rows.append(row)
            k += 1
        summary = _dict(self.root / "summary.json")
        return {
            "campaign": meta.get("name", ""),
            "rows": rows,
            "final": self._final(rows[-1]) if rows and "samples" in rows[-1] else None,
            "finished": isinstance(summary, dict),
            "summary": summary if isinstance(summary, dict) else None,
        }

    def _final(self, last: dict[str, Any]) -> dict[str, Any] | None:
        """The candidate after the last deployment: the registry names it while the campaign runs
        (see :mod:`bremen_robot.console.candidate`); its figures only when they are its own."""
        k = last["deployment"]
        ev = _dict(self.root / f"d{k}" / "eval.json")
        records = self.registry().get("records") or []
        sha = ev.get("policy_sha256") if ev is not None else None
        cand, evaluated = candidate_after(records, k, sha if isinstance(sha, str) else None)
        if cand is None and ev is None:
            return None
        if cand is not None and ev is not None and "policy_sha256" not in ev:
            evaluated = True  # written before evaluations named their policy: cannot tell
        state = None if cand is None else cand["state"]
        # a rejected candidate's figures are history (its review, the audit log), not the candidate's
        withheld = state if cand is not None and cand["turned_down"] else None
        shown = ev if ev is not None and (cand is None or evaluated) and withheld is None else {}
        return {
            "after_deployment": k,
            "trained_on": last["samples"],
            "policy_id": None if cand is None else cand["id"],
            "state": state,
            "withheld": withheld,
            "eval_return_mean": shown.get("mean"),
            "eval_return_std": shown.get("std"),
            "success_rate": shown.get("success_rate"),
        }

    # ---------------------------------------------------------------- registry
    def registry(self) -> dict[str, Any]:
        """Pending candidates and the audit log, from a private copy of the registry."""
        from bremen_robot.registry.store import locate

        _, db_path = locate(self.root, None)
        wal = Path(f"{db_path}-wal")
        key = _stat_key(db_path, wal)
        reg: dict[str, Any] = self._cache.get("registry", key, lambda: self._read_registry(db_path, wal))
        policies = reg.get("_policies") or []
        # the evaluation and collection files change while the registry does not (a candidate is
        # registered, then evaluated): the verdicts are keyed on both
        verdicts = self._cache.get(
            "verdicts",
            (key, self._evidence_key()),
            lambda: {
                p.id: review_summary(self.root, p, policies) for p in policies if p.state == "candidate"
            },
        )
        public = {k: v for k, v in reg.items() if k != "_policies"}
        # not cached: 'bremen review' writes the page without touching the registry
        pending = [self._review_link({**p, **verdicts.get(p["id"], {})}) for p in reg["pending"]]
        return {**public, "pending": pending}

    def _evidence_key(self) -> tuple[Any, ...]:
        """The files a verdict reads (registry/evidence.py), by name and (mtime, size)."""
        names = ("eval.json", "eval_random.json", "collect.json", "selection.json", "collect.yaml")
        paths = sorted(p for n in names for p in self.root.glob(f"d*/{n}"))
        return (tuple(str(p) for p in paths), _stat_key(*paths))

    def _review_link(self, pending: dict[str, Any]) -> dict[str, Any]:
        review = self.root / "reviews" / pending["id"] / REVIEW_FILE
        return {**pending, "review_url": f"reviews/{pending['id']}" if review.is_file() else None}

    def _read_registry(self, db_path: Path, wal: Path) -> dict[str, Any]:
        if not db_path.is_file():
            return {"error": "", "pending": [], "audit": [], "policies": 0, "states": {}}
        with tempfile.TemporaryDirectory(prefix="bremen-console-") as tmp:
            copy = Path(tmp) / "registry.sqlite"
            for _ in range(5):
                before = _stat_key(db_path, wal)
                try:
                    shutil.copyfile(db_path, copy)
                    if wal.is_file():
                        shutil.copyfile(wal, Path(f"{copy}-wal"))
                except OSError as exc:
                    return {
                        "error": f"cannot read {db_path}: {exc.strerror}",
                        "pending": [],
                        "audit": [],
                        "states": {},
                    }
                if _stat_key(db_path, wal) == before:
                    break
                Path(f"{copy}-wal").unlink(missing_ok=True)
                time.sleep(0.05)
            return self._from_copy(copy)

    def _from_copy(self, copy: Path) -> dict[str, Any]:
        from bremen_robot.errors import BremenError
        from bremen_robot.registry import Registry

        try:
            # read-write on the private copy: SQLite replays the copied WAL into it
            with Registry.open(self.root, url=str(copy), create=False) as reg:
                policies = reg.policies()
                audit = reg.audit()
        except BremenError as exc:
            return {"error": str(exc), "pending": [], "audit": [], "policies": 0, "states": {}}
        pending = []
        for rec in policies:
            if rec.state != "candidate":
                continue
            pending.append(
                {
                    "id": rec.id,
                    "registered_at": rec.registered_at,
                    "deployment": rec.lineage.get("deployment"),
                    "review_command": f"bremen review {rec.id} --workspace {self.root}",
                }
            )
        rows = [
            {
                "seq": a.seq,
                "at": a.at,
                "policy_id": a.policy_id,
                "actor": a.actor,
                "from_state": a.from_state or "",
                "to_state": a.to_state,
                "note": a.note,
            }
            for a in reversed(audit)
        ]
        # each policy's state now: summary.json keeps the final candidate's state at the campaign's end
        states = {rec.id: str(rec.state) for rec in policies}
        records = [
            {
                "id": rec.id,
                "sha256": rec.sha256,
                "state": str(rec.state),
                "deployment": rec.lineage.get("deployment"),
                "turned_down": turned_down(rec),
            }
            for rec in policies  # registration order: a retraining's candidate comes after the rejected one
        ]
        return {
            "error": "",
            "pending": pending,
            "audit": rows,
            "policies": len(policies),
            "states": states,
            "records": records,
            "_policies": policies,  # for the verdicts; never sent
        }

    def review_file(self, policy_id: str) -> Path | None:
        """``reviews/<id>/review.html`` of a pending or past candidate; None for anything else."""
        if not (4 <= len(policy_id) <= 64) or any(c not in "0123456789abcdef" for c in policy_id):
            return None
        path = self.root / "reviews" / policy_id / REVIEW_FILE
        return path if path.is_file() else None
