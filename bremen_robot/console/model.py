"""What the page shows, as display strings: one model for the first render (Jinja2) and for the
script's refreshes (``/api/view``), so both say exactly the same."""

from __future__ import annotations

from typing import Any

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
PENDING_COLUMNS = [("id", "candidate"), ("deployment", "after deployment"), ("review", "review")]
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
    pending = [
        {
            "id": p["id"],
            "deployment": "" if p["deployment"] is None else str(p["deployment"]),
            "review": {"text": "open the review page", "href": p["review_url"]}
            if p["review_url"]
            else {"text": p["review_command"], "code": True},
        }
        for p in reg["pending"]
    ]
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
        "audit": audit,
        "registry_error": reg.get("error", ""),
    }
