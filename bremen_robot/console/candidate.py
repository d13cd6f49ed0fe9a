"""Which policy is "the candidate after deployment k", from what the workspace already records.

A campaign registers deployment k's candidate with ``lineage.deployment = k`` and writes its
evaluation to ``d<k>/eval.json`` with the artifact's ``policy_sha256``; summary.json names it
only at the end. When selection keeps the deployed policy nothing new is registered and
``d<k>/eval.json`` is the deployed policy's. After a rejection the operator moves ``d<k>/train``
aside and the campaign trains and registers another candidate, while ``d<k>/eval.json`` still
holds the rejected one's figures until the new one is evaluated.
"""

from __future__ import annotations

from typing import Any

GONE = ("rejected", "retired")  # no longer a candidate anyone could approve for this campaign


def candidate_after(
    records: list[dict[str, Any]], k: int, evaluated_sha: str | None
) -> tuple[dict[str, Any] | None, bool]:
    """The candidate after deployment ``k`` and whether ``d<k>/eval.json`` (of ``evaluated_sha``)
    is its evaluation. ``records``: ``{id, sha256, state, deployment}`` in registration order."""
    order = {r["sha256"]: n for n, r in enumerate(records)}
    evaluated = next((r for r in records if evaluated_sha and r["sha256"] == evaluated_sha), None)
    proposed = [r for r in records if r.get("deployment") == k]
    if evaluated is not None:
        # registered after the evaluated one: a retraining whose evaluation has not landed yet
        proposed = [r for r in proposed if order[r["sha256"]] > order[evaluated["sha256"]]]
    live = [r for r in proposed if r["state"] not in GONE]
    if live:
        return live[-1], False
    if evaluated is not None:
        return evaluated, True
    everything = [r for r in records if r.get("deployment") == k]
    return (everything[-1] if everything else None), False
