"""One review of one policy: evidence -> verdict -> terminal text, PNG plots and the HTML page.

``bremen review`` calls :func:`make_review`; the pieces (:func:`~bremen_robot.registry.evidence.gather`,
:func:`~bremen_robot.registry.verdict.build_verdict`,
:func:`~bremen_robot.registry.page.render_page`) are usable on their own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bremen_robot.errors import ArtifactError
from bremen_robot.registry.evidence import deployed_now, gather
from bremen_robot.registry.page import PageData, write_page
from bremen_robot.registry.records import PolicyRecord
from bremen_robot.registry.review import render_text, write_plots
from bremen_robot.registry.sessions import CollectionSession, session_lines
from bremen_robot.registry.verdict import (
    Evaluation,
    Interventions,
    Verdict,
    build_verdict,
    interventions_text,
    verdict_lines,
)
from bremen_robot.registry.video import Video, policy_act, side_by_side


@dataclass
class Review:
    text: str  # verdict block + the report, as the terminal shows it
    verdict: Verdict
    page: Path | None = None
    plots: list[Path] = field(default_factory=list)
    video_reason: str = ""


def with_recorded_evaluation(
    rec: PolicyRecord,
    ev: Evaluation | None,
    sim2real: dict[str, Any] | None,
    interventions: Interventions | None = None,
    interventions_why: str = "not recorded in this evaluation",
) -> PolicyRecord:
    """The record with the workspace's recorded evaluation in its report's ``evaluation``
    section (the trainer's own section wins), so the detailed text shows what was run."""
    report = dict(rec.report or {})
    if ev is not None and ev.source != "training report":
        section: dict[str, Any] = {
            "return_mean": ev.return_mean,
            "return_std": ev.return_std,
            "episodes": ev.episodes,
            "env": ev.env,
            "recorded_in": ev.source,
            # counted in observe mode (campaign/eval_shield.py), or why not: never "not run"
            "safety_interventions": interventions_text(interventions, interventions_why),
        }
        if ev.success_rate is not None:
            section["success_rate"] = ev.success_rate
        report.setdefault("evaluation", section)
    if sim2real is not None:
        conds = [c for c in sim2real.get("conditions") or [] if isinstance(c, dict)]
        flat: dict[str, Any] = {
            f"{c.get('label')}_return_mean": c.get("return_mean") for c in conds if c.get("label")
        }
        if isinstance(sim2real.get("transfer_ratio"), float):
            flat["transfer_ratio"] = sim2real["transfer_ratio"]
        report.setdefault("sim2real", flat)
    return dataclasses.replace(rec, report=report)


def _video(rec: PolicyRecord, deployed: PolicyRecord | None, env_spec: str) -> Video:
    if rec.artifact_dir is None:
        return Video(None, "no video: the random policy has no artifact to render")
    try:
        # the stored files must be the record's: the operator approves the record, not the folder
        left = policy_act(rec.artifact_dir, env_spec, 0, rec.sha256, rec.manifest_digest)
        right = None
        if deployed is not None:
            right = policy_act(deployed.artifact_dir, env_spec, 0, deployed.sha256, deployed.manifest_digest)
    except ArtifactError as exc:  # ours, one line: in full, its reason comes after the folder
        return Video(None, f"no video: cannot load the policy ({exc})")
    except Exception as exc:  # an unloadable artifact: the rest of the review still stands
        return Video(None, f"no video: cannot load the policy ({type(exc).__name__}: {str(exc)[:120]})")
    return side_by_side(env_spec, left, right, seed=0)


def make_review(
    rec: PolicyRecord,
    policies: list[PolicyRecord],
    workspace: Path,
    out_dir: Path | None,
    *,
    plots: bool = True,
    video: bool = True,
    sessions: list[CollectionSession] | None = None,
    shadow: list[str] | None = None,
) -> Review:
    """Review ``rec`` against the policy deployed now; with ``out_dir`` write the plots (unless
    ``plots`` is False) and ``out_dir/review.html``. ``sessions``: the policy's collection
    sessions (a fleet's robots, registry/sessions.py), shown after the verdict. ``shadow``: its
    shadow runs' lines (registry/shadow_runs.review_lines), at the end of the text, so the page's
    full report shows what the terminal shows."""
    deployed = deployed_now(policies, rec)
    evidence, s2r = gather(workspace, rec, deployed)
    verdict = build_verdict(evidence)
    c = evidence.candidate
    shown = with_recorded_evaluation(rec, c.evaluation, s2r, c.eval_interventions, c.eval_interventions_why)
    fleet = session_lines(sessions or [])
    text = "\n".join(
        [*verdict_lines(verdict), "", *fleet, *([""] if fleet else []), render_text(shown)]
        + (["", *shadow] if shadow else [])
    )
    result = Review(text, verdict)
    if out_dir is None:
        return result
    if plots:
        result.plots = write_plots(shown, out_dir)
    env_spec = evidence.candidate.evaluation.env if evidence.candidate.evaluation else ""
    if not video:
        vid = Video(None, "video left out (--no-video)")
    elif not env_spec:
        vid = Video(None, "no video: the candidate has no recorded simulation evaluation to render in")
    else:
        vid = _video(rec, deployed, env_spec)
    result.video_reason = vid.reason
    data = PageData(
        workspace=workspace,
        text=text,
        plots=result.plots,
        plots_reason="plots left out (--no-plots)" if not plots else "no curves in the report",
        video=vid,
        video_reason=vid.reason,
        deployed_label="" if deployed is None else deployed.id,
        sim2real=s2r,
        sessions=list(sessions or []),
    )
    result.page = write_page(shown, verdict, data, out_dir)
    return result
