"""Shadow runs in the registry (docs/registry.md "Shadow runs").

A shadow run is a candidate policy that ran on the live robot state beside the acting
controller and moved nothing: it is **not a deployment**. It never changes a policy's state or
the deployment count; it is recorded in its own append-only table (``shadow_runs``, schema v3)
with the summary computed from its bag (:func:`bremen_robot.shadow_summary.summarize_bag`).

A candidate that is registered but not yet approved may run in shadow, but only the stored,
digest-verified artifact: :func:`verify_for_shadow` checks what ``verify_for_deployment``
checks except the approval and its signature.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bremen_robot.errors import ArtifactError
from bremen_robot.policy.artifact import FrozenPolicy, load_artifact, load_manifest
from bremen_robot.registry import db
from bremen_robot.registry.errors import ApprovalError, RegistryError
from bremen_robot.registry.jsonio import to_json
from bremen_robot.registry.lifecycle import _current_user, _now
from bremen_robot.registry.records import RANDOM_POLICY_ID, short_id
from bremen_robot.registry.store import Registry
from bremen_robot.registry.trust import check_compatibility, lookup_record
from bremen_robot.robot_config import RobotConfig

SHADOW_STATES = ("candidate", "approved", "deployed")


@dataclass(frozen=True)
class ShadowRun:
    """One recorded shadow run: which candidate, beside which acting policy, its bag and summary."""

    seq: int
    policy_id: str
    sha256: str
    acting: str
    recorded_at: str
    actor: str
    bag: str
    summary: dict[str, Any]


def verify_for_shadow(policy_id_or_path: str | Path, robot: RobotConfig, registry: Registry) -> FrozenPolicy:
    """Load a registered policy for a shadow run on ``robot`` (no approval needed: it moves nothing).

    Refused with a one-line :class:`ApprovalError`: not registered; the random policy; rejected
    or retired; file hash or manifest differs from the registry's record; incompatible with the
    robot config.
    """
    rec, _ = lookup_record(policy_id_or_path, registry, "--shadow: ")
    if rec.is_random or rec.artifact_dir is None:
        raise ApprovalError("--shadow: the random policy has nothing to compare; pass a registered candidate")
    if rec.state not in SHADOW_STATES:
        raise ApprovalError(
            f"--shadow: policy {rec.id} is {rec.state}; only a candidate, approved or deployed policy "
            "runs in shadow"
        )
    registry.verify_store(rec)  # the stored copy only, byte-identical to what was registered
    try:
        manifest = load_manifest(rec.artifact_dir)
    except ArtifactError as exc:
        raise ApprovalError(f"policy {rec.id}: {exc}") from None
    check_compatibility(manifest, robot, rec.id)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return load_artifact(
                rec.artifact_dir,
                verify=True,
                expect_sha256=rec.sha256,
                expect_manifest_digest=rec.manifest_digest,
            )
    except ArtifactError as exc:
        raise ApprovalError(f"policy {rec.id}: {exc}") from None


def _has_table(reg: Registry) -> bool:
    """Whether the file has the v3 table (a read-only open of an older registry does not)."""
    row = reg._conn.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'shadow_runs'"
    ).fetchone()
    return row is not None


def record_shadow_run(
    reg: Registry,
    policy: str,
    acting: str,
    bag: Path | str,
    summary: dict[str, Any],
    actor: str | None = None,
) -> int:
    """Append one shadow run of ``policy`` (id or prefix) beside ``acting`` (id, sha256 or
    ``random``); returns its sequence number. Changes no state and no deployment."""
    if reg.readonly:
        raise RegistryError("the registry was opened read-only; open it for writing to record a shadow run")
    sha = reg.resolve(policy)
    text = to_json(summary, "shadow run summary")
    with db.transaction(reg._conn):
        reg._conn.execute(
            "INSERT INTO shadow_runs (policy_sha256, acting, recorded_at, actor, bag, summary_json)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (sha, str(acting), _now(), actor or _current_user(), str(bag), text),
        )
        return int(reg._conn.query("SELECT last_insert_rowid() AS seq").fetchone()["seq"])


def shadow_runs(reg: Registry, policy: str | None = None) -> list[ShadowRun]:
    """Recorded shadow runs, oldest first; of one policy when given. Empty for a registry older
    than schema v3 opened read-only."""
    if not _has_table(reg):
        return []
    sql = "SELECT seq, policy_sha256, acting, recorded_at, actor, bag, summary_json FROM shadow_runs"
    args: tuple[Any, ...] = ()
    if policy is not None:
        sql += " WHERE policy_sha256 = ?"
        args = (reg.resolve(policy),)
    rows = reg._conn.query(sql + " ORDER BY seq", args).fetchall()
    out = []
    for r in rows:
        try:
            summary = json.loads(r["summary_json"])
        except ValueError:
            summary = {}
        out.append(
            ShadowRun(
                seq=int(r["seq"]),
                policy_id=short_id(r["policy_sha256"]),
                sha256=r["policy_sha256"],
                acting=r["acting"],
                recorded_at=r["recorded_at"],
                actor=r["actor"],
                bag=r["bag"],
                summary=summary if isinstance(summary, dict) else {},
            )
        )
    return out


def shadow_counts(reg: Registry) -> dict[str, int]:
    """Shadow runs per policy sha256 (for ``bremen policies``)."""
    if not _has_table(reg):
        return {}
    rows = reg._conn.query(
        "SELECT policy_sha256, COUNT(*) AS n FROM shadow_runs GROUP BY policy_sha256"
    ).fetchall()
    return {r["policy_sha256"]: int(r["n"]) for r in rows}


__all__ = [
    "RANDOM_POLICY_ID",
    "ShadowRun",
    "record_shadow_run",
    "shadow_counts",
    "shadow_runs",
    "verify_for_shadow",
]


def check_shadow_request(candidate: str, acting: str, robot: RobotConfig, workspace: Path | None) -> str:
    """Before anything starts: the candidate may run in shadow (:func:`verify_for_shadow`) and is
    not the acting policy itself. Returns the candidate's sha256."""
    from bremen_robot.errors import ConfigError
    from bremen_robot.registry import default_workspace

    reg = Registry.open(Path(workspace) if workspace else default_workspace(), readonly=True)
    try:
        fp = verify_for_shadow(candidate, robot, reg)
        if acting != RANDOM_POLICY_ID:
            acting_sha = lookup_record(acting, reg)[0].sha256
            if acting_sha == fp.sha256:
                raise ConfigError(
                    f"--shadow {candidate} is the acting policy itself; shadow a different candidate "
                    "(the comparison would be with itself)"
                )
        return str(fp.sha256)
    finally:
        reg.close()


def record_from_bag(workspace: Path | None, candidate: str, bag: Path) -> dict[str, Any]:
    """Summarize a shadow run's bag and record it; returns the summary with its ``seq``."""
    from bremen_robot.registry import default_workspace
    from bremen_robot.shadow_summary import summarize_bag

    summary = summarize_bag(bag)
    with Registry.open(Path(workspace) if workspace else default_workspace()) as reg:
        seq = record_shadow_run(reg, candidate, summary.get("acting_policy") or "?", bag, summary)
    from bremen_robot.registry.hints import bremen_command

    # the summary's hint: with --workspace W, 'bremen review ID' alone looks in the default registry
    return {
        **summary,
        "seq": seq,
        "policy": candidate,
        "review": bremen_command(f"review {candidate}", workspace),
    }


def review_lines(reg: Registry, sha256: str) -> list[str]:
    """The ``shadow runs`` section of ``bremen review``: every run of this policy, a few lines each."""
    from bremen_robot.shadow_summary import summary_lines

    runs = shadow_runs(reg, sha256)
    if not runs:
        return ["shadow runs: none (bremen collect --policy DEPLOYED --shadow ID runs one)"]
    out = [f"shadow runs: {len(runs)} (not deployments: the candidate moved nothing)"]
    for r in runs:
        out.append(
            f"  #{r.seq} {r.recorded_at[:16].replace('T', ' ')} beside {short_id(r.acting)}, bag {r.bag}"
        )
        out += [f"    {line}" for line in summary_lines(r.summary)]
    return out
