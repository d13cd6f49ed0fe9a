"""A campaign candidate an operator turned down: its training kept aside, recorded, trained again.

A rejection stops a policy; it cannot run one. Training another candidate on the same data deploys
nothing either: the new candidate waits for a signed approval like the first (DESIGN.md, "Registry
and approval"). So the campaign does what the operator would otherwise do by hand: it renames
``d<k>/train`` to ``d<k>/train.rejected-N`` (kept, never deleted), appends the move to
``<ws>/rejections.json``, says so in one line, and trains deployment k's candidate again.

Training is deterministic: on the same data with the same seed the "new" candidate would act
bit-identically to the rejected one. Each candidate turned down on exactly this data moves the
training seed on (:func:`training_seed`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bremen_robot.campaign.workspace import Workspace, move_aside, read_json, write_json_atomic

REJECTED_SEED_STEP = 1000  # seed + k never reaches it (k <= 50), so a retraining's seed is new
REJECTIONS_FILE = "rejections.json"


def turned_down(rec: Any) -> bool:
    """Rejected, or retired before it ever collected (an approval withdrawn that way)."""
    return bool(rec.state == "rejected" or (rec.state == "retired" and not rec.deployments))


def rejected_on(reg: Any, digests: list[str]) -> int:
    """How many candidates trained on exactly these datasets an operator turned down."""
    return sum(1 for r in reg.policies() if turned_down(r) and r.lineage.get("data_digests") == digests)


def training_seed(seed: int, k: int, rejected: int) -> int:
    """Deployment k's training seed; each candidate turned down on this data (``rejected_on``)
    moves it on. A resumed retraining finds the same count, so keeps its seed."""
    return seed + k + REJECTED_SEED_STEP * rejected


def set_aside(ws: Workspace, k: int, reg: Any, policy_id: str) -> tuple[Path | None, str]:
    """Keep deployment k's training of the turned-down ``policy_id`` as ``train.rejected-N``,
    record it in ``<ws>/rejections.json``; returns where it went and the line that says so."""
    rec = reg.get(policy_id)
    last = next((a for a in reversed(reg.audit(policy_id)) if a.to_state == rec.state), None)
    by = f" by {last.actor}" if last is not None else ""
    why = f" ({last.note})" if last is not None and last.note else ""
    aside = move_aside(ws.train_dir(k), "rejected")
    path = ws.root / REJECTIONS_FILE
    records = read_json(path) or []
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
    kept = f"its training is kept at {aside}" if aside is not None else "its training was moved already"
    line = (
        f"deployment {k}: candidate {rec.id} was {rec.state}{by}{why}; {kept} ({path}); "
        "training a new candidate on the same data with another seed"
    )
    return aside, line
