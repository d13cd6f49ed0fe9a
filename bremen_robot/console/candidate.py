"""Which policy is "the candidate after deployment k", from what the workspace already records.

A campaign registers deployment k's candidate with ``lineage.deployment = k`` and writes its
evaluation to ``d<k>/eval.json`` with the artifact's ``policy_sha256``; summary.json names it
only at the end. When selection keeps the deployed policy nothing new is registered and
``d<k>/eval.json`` is the deployed policy's. After a rejection the campaign moves ``d<k>/train``
aside (campaign/rejection.py), trains and registers another candidate, while ``d<k>/eval.json`` still
holds the rejected one's figures until the new one is evaluated.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry package is imported when the registry is first read
    from bremen_robot.registry.records import PolicyRecord


def candidate_after(
    records: list[dict[str, Any]], k: int, evaluated_sha: str | None
) -> tuple[dict[str, Any] | None, bool]:
    """The candidate after deployment ``k`` and whether ``d<k>/eval.json`` (of ``evaluated_sha``)
    is its evaluation. ``records``: ``{id, sha256, state, deployment, turned_down}`` in
    registration order; ``turned_down`` is :func:`bremen_robot.campaign.rejection.turned_down`
    (rejected, or retired before it collected: a policy retired after it collected keeps its row)."""
    order = {r["sha256"]: n for n, r in enumerate(records)}
    evaluated = next((r for r in records if evaluated_sha and r["sha256"] == evaluated_sha), None)
    proposed = [r for r in records if r.get("deployment") == k]
    if evaluated is not None:
        # registered after the evaluated one: a retraining whose evaluation has not landed yet
        proposed = [r for r in proposed if order[r["sha256"]] > order[evaluated["sha256"]]]
    live = [r for r in proposed if not r["turned_down"]]
    if live:
        return live[-1], False
    if evaluated is not None:
        return evaluated, True
    everything = [r for r in records if r.get("deployment") == k]
    return (everything[-1] if everything else None), False


def review_summary(ws: Path, rec: PolicyRecord, policies: list[PolicyRecord]) -> dict[str, Any]:
    """What ``bremen review`` says of a candidate, in brief: its evaluation, the names of its red
    flags and the selection decision. The same evidence and verdict code as the review, so the
    console can never show a flag the review does not raise, or miss one."""
    from bremen_robot.registry.evidence import deployed_now, gather
    from bremen_robot.registry.verdict import build_verdict

    try:
        evidence, _ = gather(ws, rec, deployed_now(policies, rec))
        verdict = build_verdict(evidence)
    except Exception as exc:  # a damaged file: the row says so, the page still renders
        return {"evidence_error": f"{type(exc).__name__}: {str(exc)[:120]}"}
    e = evidence.candidate.evaluation
    report = rec.report or {}
    if evidence.selection_line:
        selection = evidence.selection_line
    elif isinstance(report.get("selection"), dict):
        selection = "the trainer's offline choice; no campaign selection record"
    else:
        selection = "selection off"
    return {
        "return_mean": None if e is None else e.return_mean,
        "return_std": None if e is None else e.return_std,
        "success_rate": None if e is None else e.success_rate,
        "flags": [f.code for f in verdict.flags],
        "selection": selection,
    }
