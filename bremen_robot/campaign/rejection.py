"""A campaign candidate an operator turned down: its training kept aside, recorded, trained again.

A rejection stops a policy; it cannot run one. Training another candidate on the same data deploys
nothing either: the new candidate waits for a signed approval like the first (DESIGN.md, "Registry
and approval"). So the campaign does what the operator would otherwise do by hand: it renames
``d<k>/train`` to ``d<k>/train.rejected-N`` (kept, never deleted), appends the move to
``<ws>/rejections.json``, says so in one line, and trains deployment k's candidate again.

Training is deterministic: on the same data with the same seed the "new" candidate would act
bit-identically to the rejected one. Each candidate turned down on exactly this data moves the
training seed on (:func:`training_seed`); the count is the larger of the registry's (by lineage)
and this workspace's own record, so a candidate registered with other lineage (by hand, before the
campaign) still moves it on rather than coming back again and again.

The record is written before the training is moved: an interrupt between the two leaves a record
naming a folder not there yet, and the next run finishes that move instead of adding a second record.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bremen_robot.campaign.workspace import Workspace, aside_name, read_json, write_json_atomic
from bremen_robot.errors import BremenError

REJECTED_SEED_STEP = 1000  # seed + k never reaches it (k <= 50), so a retraining's seed is new
REJECTIONS_FILE = "rejections.json"


def turned_down(rec: Any) -> bool:
    """Rejected, or retired before it ever collected (an approval withdrawn that way)."""
    return bool(rec.state == "rejected" or (rec.state == "retired" and not rec.deployments))


def rejected_on(reg: Any, digests: list[str]) -> int:
    """How many candidates trained on exactly these datasets an operator turned down."""
    return sum(1 for r in reg.policies() if turned_down(r) and r.lineage.get("data_digests") == digests)


def _records(path: Path) -> list[dict[str, Any]]:
    """``rejections.json``'s records; a file edited into something else is one line naming it
    (it is read before every training, so it must not end a campaign with a traceback)."""
    try:
        records = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise BremenError(
            f"{path}: not valid JSON ({exc}); fix the edit (a list of records, one per rejected "
            "candidate: deployment, policy_id, training_kept_at, ...); nothing was moved"
        ) from None
    if records is None:
        return []
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise BremenError(
            f"{path}: not a list of records; fix the edit (one object per rejected candidate: "
            "deployment, policy_id, training_kept_at, ...); nothing was moved"
        )
    return records


def rejected_count(ws: Workspace, k: int, reg: Any, digests: list[str]) -> int:
    """Candidates turned down on deployment k's data: the registry's count by lineage, or this
    workspace's record of deployment k's moves, whichever is larger (see the module docstring)."""
    recorded = {r.get("policy_id") for r in _records(ws.root / REJECTIONS_FILE) if r.get("deployment") == k}
    return max(rejected_on(reg, digests), len(recorded))


def training_seed(seed: int, k: int, rejected: int) -> int:
    """Deployment k's training seed; each candidate turned down on this data (``rejected_count``)
    moves it on. A resumed retraining finds the same count, so keeps its seed."""
    return seed + k + REJECTED_SEED_STEP * rejected


def set_aside(ws: Workspace, k: int, reg: Any, policy_id: str) -> tuple[Path | None, str]:
    """Keep deployment k's training of the turned-down ``policy_id`` as ``train.rejected-N``,
    record it in ``<ws>/rejections.json``; returns where it went and the line that says so.

    Recorded first, moved second: a record whose folder is missing is a move an interrupt cut
    short, which this call finishes (one record per candidate and deployment, never two)."""
    rec = reg.get(policy_id)
    last = next((a for a in reversed(reg.audit(policy_id)) if a.to_state == rec.state), None)
    by = f" by {last.actor}" if last is not None else ""
    why = f" ({last.note})" if last is not None and last.note else ""
    path = ws.root / REJECTIONS_FILE
    records = _records(path)
    source = ws.train_dir(k)
    pending = next(
        (
            r
            for r in records
            if r.get("deployment") == k
            and r.get("policy_id") == rec.id
            and isinstance(r.get("training_kept_at"), str)
            and not (ws.root / r["training_kept_at"]).exists()
        ),
        None,
    )
    aside: Path | None = None
    if source.exists():
        aside = ws.root / pending["training_kept_at"] if pending else aside_name(source, "rejected")
    if pending is None:
        records.append(
            {
                "deployment": k,
                "policy_id": rec.id,
                "sha256": rec.sha256,
                "state": rec.state,
                "by": last.actor if last is not None else None,
                "at": last.at if last is not None else None,
                "reason": last.note if last is not None else None,
                "training_kept_at": str(aside.relative_to(ws.root)) if aside is not None else None,
                "moved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
        )
        write_json_atomic(path, records)
    if aside is not None:
        source.rename(aside)
    kept = f"its training is kept at {aside}" if aside is not None else "its training was moved already"
    line = (
        f"deployment {k}: candidate {rec.id} was {rec.state}{by}{why}; {kept} ({path}); "
        "training a new candidate on the same data with another seed"
    )
    return aside, line
