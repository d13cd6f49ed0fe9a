"""Collection sessions: which robot collected how much for a deployment (issue 17).

A deployment is one distinct policy (the count the paper minimizes); on a fleet the same policy
collects on several robots at once, and each robot's share is one session. Sessions are
append-only and keyed by (policy, campaign round, robot): recording the same one twice keeps
the first, so a resumed campaign never counts a robot's samples twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bremen_robot.registry import db
from bremen_robot.registry.errors import RegistryError
from bremen_robot.registry.records import short_id


@dataclass(frozen=True)
class CollectionSession:
    policy_sha256: str
    round: int
    robot: str
    node: str
    samples: int
    episodes: int
    interventions: int
    data_digest: str
    recorded_at: str

    @property
    def policy_id(self) -> str:
        return short_id(self.policy_sha256)


_FIELDS = tuple(CollectionSession.__dataclass_fields__)


def _has_table(reg: Any) -> bool:
    row = reg._conn.query(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'collection_sessions'"
    ).fetchone()
    return row is not None


def record_session(reg: Any, session: dict[str, Any]) -> bool:
    """Record one robot's session; False when that (policy, round, robot) was already recorded."""
    sha = reg.resolve(str(session["policy_id"]))
    values = (
        sha,
        int(session["round"]),
        str(session["robot"]),
        str(session.get("node", "")),
        int(session["samples"]),
        int(session["episodes"]),
        int(session.get("interventions", 0)),
        str(session.get("data_digest", "")),
        datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    )
    if reg.readonly:
        raise RegistryError(f"registry '{reg.db_path}' was opened read-only; open it to write")
    with db.transaction(reg._conn):
        reg._conn.execute(
            "INSERT OR IGNORE INTO collection_sessions (policy_sha256, round, robot, node, samples,"
            " episodes, interventions, data_digest, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
        inserted = reg._conn.query("SELECT changes() AS n").fetchone()["n"]
    return bool(inserted)


def sessions(reg: Any, policy: str | None = None) -> list[CollectionSession]:
    """All sessions (or one policy's), oldest round first; [] for a registry older than v4."""
    if not _has_table(reg):
        return []
    sql = f"SELECT {', '.join(_FIELDS)} FROM collection_sessions"
    args: tuple[Any, ...] = ()
    if policy is not None:
        sql += " WHERE policy_sha256 = ?"
        args = (reg.resolve(policy),)
    rows = reg._conn.query(sql + " ORDER BY round, robot", args).fetchall()
    return [CollectionSession(*tuple(row)) for row in rows]


def session_lines(rows: list[CollectionSession]) -> list[str]:
    """The review's block: one line per robot session of the policy ([] when it has none)."""
    if not rows:
        return []
    out = [f"collection sessions ({len(rows)}; a fleet deployment counts once, however many robots ran it):"]
    for s in rows:
        out.append(
            f"  round {s.round}  robot {s.robot}  node {s.node}  samples {s.samples}  "
            f"episodes {s.episodes}  interventions {s.interventions}"
        )
    return out
