"""What the page shows, as display strings: one model for the first render (Jinja2) and for the
script's refreshes (``/api/view``), so both say exactly the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bremen_robot.campaign.status import waiting_message
from bremen_robot.console.charts import is_number, timeline_charts
from bremen_robot.console.state import WorkspaceView

TIMELINE_COLUMNS = [
    ("deployment", "deployment"),
    ("policy", "policy"),
    ("trained_on", "trained on (samples)"),
    ("samples", "samples after"),
    ("return", "evaluation return ± std"),
    ("success", "success"),
    ("episodes", "episodes"),
    ("interventions", "interventions"),
]
PENDING_COLUMNS = [
    ("id", "candidate"),
    ("deployment", "after deployment"),
    ("role", "status"),
    ("return", "evaluation return ± std"),
    ("success", "success"),
    ("flags", "red flags"),
    ("selection", "selection"),
    ("review", "review"),
]
NOWRAP_COLUMNS = ("at",)  # the audit log's time: one timestamp, never two lines
AUDIT_COLUMNS = [
    ("seq", "#"),
    ("at", "time"),
    ("policy_id", "policy"),
    ("actor", "actor"),
    ("change", "change"),
    ("note", "note"),
]


def _bad(v: Any) -> str:
    return f"{str(v)[:40]} (not a number)"


def _ret(mean: Any, std: Any) -> str:
    if mean is None:
        return "not evaluated yet"
    if not is_number(mean):
        return _bad(mean)
    if std is not None and not is_number(std):
        return f"{mean:.1f} ± {_bad(std)}"
    return f"{mean:.1f} ± {std or 0.0:.1f}"


def _pct(v: Any) -> str:
    return "" if v is None else f"{v:.0%}" if is_number(v) else _bad(v)


def _num(v: Any) -> str:
    return "" if v is None else f"{v:,}" if is_number(v) else _bad(v)


def _flags(codes: Any) -> str:
    return "none" if not codes else f"{len(codes)}: {', '.join(codes)}"


def _pending_row(p: dict[str, Any], waiting: Any, final_id: Any, finished: bool) -> dict[str, Any]:
    if p["id"] == waiting:
        role = "waiting for approval"
    elif p["id"] == final_id:
        role = "final candidate" if finished else "last candidate, not waited for now"
    else:
        role = "not waited for"
    error = p.get("evidence_error")
    return {
        "id": p["id"],
        "deployment": "" if p["deployment"] is None else str(p["deployment"]),
        "role": role,
        "return": f"cannot read the evidence ({error})"
        if error
        else _ret(p.get("return_mean"), p.get("return_std")),
        "success": _pct(p.get("success_rate")),
        "flags": "" if error else _flags(p.get("flags")),
        "selection": p.get("selection", ""),
        "review": {"text": "open the review page", "href": p["review_url"]}
        if p["review_url"]
        else {"text": p["review_command"], "code": True},
    }


def _pending_heading(rows: list[dict[str, Any]], waiting: Any, finished: bool, root: Path) -> tuple[str, str]:
    """The section's heading asks the operator to act only when the campaign waits."""
    if not rows:
        return ("waiting for approval", "")
    if any(r["id"] == waiting for r in rows):
        return ("waiting for approval", f"The campaign waits: {waiting_message(str(waiting), root)}.")
    if finished:
        return (
            "final candidate",
            "The campaign has finished: nothing waits for an approval. Approving its final candidate "
            "is optional, for a next campaign to deploy it.",
        )
    return ("candidates", "Nothing waits for an approval now.")


def view_model(view: WorkspaceView) -> dict[str, Any]:
    timeline = view.timeline()
    reg = view.registry()
    rows = []
    for r in timeline["rows"]:
        rows.append(
            {
                "deployment": str(r["deployment"]),
                "policy": str(r["policy_id"] or ""),
                "trained_on": _num(r["trained_on"]),
                "samples": _num(r.get("samples")) if r["collected"] else "collecting",
                "return": _ret(r["eval_return_mean"], r["eval_return_std"]),
                "success": _pct(r["success_rate"]),
                "episodes": _num(r["episodes"]),
                "interventions": _num(r["interventions"]),
            }
        )
    final = timeline["final"]
    if final:
        summary = timeline["summary"] or {}
        fc = summary.get("final_candidate")
        fc = fc if isinstance(fc, dict) else {}
        # the registry's id and state; summary.json's only when the registry cannot be read
        pid = final.get("policy_id") or fc.get("policy_id") or ""
        state = final.get("state") or reg.get("states", {}).get(str(pid)) or fc.get("state")
        withheld = final.get("withheld")
        rows.append(
            {
                "deployment": f"candidate after {final['after_deployment']}",
                "policy": str(pid) + (f" ({state})" if state else ""),
                "trained_on": _num(final["trained_on"]),
                "samples": "",
                "return": f"not shown: candidate {withheld}"
                if withheld
                else _ret(final["eval_return_mean"], final["eval_return_std"]),
                "success": _pct(final["success_rate"]),
                "episodes": "",
                "interventions": "",
            }
        )
    status = view.status()
    # only the policy the running campaign's status names is waited for; any other candidate
    # (a finished campaign's last one, one whose training was moved aside) can wait for ever
    waiting = (
        status.get("policy_id")
        if status.get("stage") == "waiting_for_approval" and status["running"]
        else None
    )
    final_id = (final or {}).get("policy_id")
    pending = [_pending_row(p, waiting, final_id, timeline["finished"]) for p in reg["pending"]]
    heading, note = _pending_heading(pending, waiting, timeline["finished"], view.root)
    audit = [
        {
            "seq": str(a["seq"]),
            "at": a["at"],
            "policy_id": a["policy_id"],
            "actor": a["actor"],
            "change": f"{a['from_state'] or '(new)'} → {a['to_state']}",
            "note": a["note"],
        }
        for a in reg["audit"]
    ]
    return {
        "campaign": timeline["campaign"],
        "finished": timeline["finished"],
        "timeline": rows,
        "charts": timeline_charts(timeline),
        "pending": pending,
        "pending_heading": heading,
        "pending_note": note,
        "audit": audit,
        "registry_error": reg.get("error", ""),
    }
