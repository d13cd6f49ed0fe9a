"""What the workspace recorded about a policy, found by its id and artifact digest, never guessed.

A campaign (:mod:`bremen_robot.campaign.runner`) writes, per deployment ``k``:
``d<k>/eval.json`` (the simulation evaluation of deployment k's candidate, carrying its
``policy_sha256``, the shield's ``interventions`` counted in observe mode, and ``sim2real`` when
configured), ``d1/eval_random.json`` (the random policy),
``d<k>/collect.json`` (the collection: ``policy_id``, episodes, interventions), ``d<k>/bag/``
(the shield's interventions with their reason codes) and ``d<k>/selection.json`` (the
candidate-selection and twin decision). :func:`gather` reads them into a
:class:`~bremen_robot.registry.verdict.Evidence`; the trainer's report fills what the
workspace lacks (a policy registered outside a campaign).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bremen_robot.registry.records import RANDOM_POLICY_ID, PolicyRecord
from bremen_robot.registry.verdict import Evaluation, Evidence, Interventions, PolicyEvidence

_DEP_RE = re.compile(r"^d(\d+)$")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _num(x: Any) -> float | None:
    if not isinstance(x, int | float) or isinstance(x, bool):
        return None
    try:
        return float(x)
    except OverflowError:  # an integer literal past a float's range
        return None


def _count(x: Any) -> int | None:
    """A count recorded as a JSON number; NaN and the infinities (which Python's json reads) are
    no count, like a string: ``int()`` of them would stop the review instead."""
    v = _num(x)
    return int(v) if v is not None and math.isfinite(v) else None


def deployment_dirs(ws: Path) -> list[tuple[int, Path]]:
    """``(k, <ws>/d<k>)``, k ascending (folders moved aside, ``d2.incomplete-1``, are not matched)."""
    if not ws.is_dir():
        return []
    out = [(int(m.group(1)), p) for p in ws.iterdir() if p.is_dir() and (m := _DEP_RE.match(p.name))]
    return sorted(out)


@dataclass(frozen=True)
class Recorded:
    """A recorded evaluation file and its content."""

    path: Path
    data: dict[str, Any]


def recorded_evaluations(ws: Path, sha256: str) -> list[Recorded]:
    """Every campaign evaluation of the policy with this artifact digest (``random`` for the
    random policy), newest deployment first. Matched on the file's own ``policy_sha256``."""
    found = []
    for _, d in reversed(deployment_dirs(ws)):
        for name in ("eval.json", "eval_random.json"):
            data = _read(d / name)
            if isinstance(data, dict) and data.get("policy_sha256") == sha256:
                found.append(Recorded(d / name, data))
    return found


def _rel(ws: Path, p: Path) -> str:
    try:
        return str(p.relative_to(ws))
    except ValueError:
        return str(p)


def eval_interventions(source: str, data: dict[str, Any]) -> tuple[Interventions | None, str]:
    """The shield's interventions counted in one recorded evaluation (``interventions``, written
    in observe mode by :mod:`bremen_robot.campaign.eval_shield`), or why there are none."""
    iv = data.get("interventions")
    if iv is None:
        return None, f"not recorded in this evaluation ({source} predates the count)"
    if not isinstance(iv, dict):
        return None, f"unreadable in {source}"
    if iv.get("not_measured"):
        return None, f"not measured in this evaluation: {iv['not_measured']}"
    episodes, total = _count(iv.get("episodes")), _count(iv.get("total"))
    reasons = iv.get("by_reason")
    if episodes is None or total is None:
        return None, f"unreadable in {source}"
    by = (
        {str(k): c for k, v in reasons.items() if (c := _count(v)) is not None}
        if isinstance(reasons, dict)
        else None
    )
    mode = f", {iv['mode']} mode" if iv.get("mode") else ""
    return Interventions(f"{source}{mode}", episodes, total, by), ""


def _report_interventions(ev: Any) -> Interventions | None:
    """The trainer report's evaluation figure (a policy registered outside a campaign)."""
    si = ev.get("safety_interventions", ev.get("interventions")) if isinstance(ev, dict) else None
    episodes = (_count(ev.get("episodes")) or 0) if isinstance(ev, dict) else 0
    if isinstance(si, dict):
        counts = {str(k): c for k, v in si.items() if (c := _count(v)) is not None}
        return Interventions("training report", episodes, sum(counts.values()), counts)
    if (n := _count(si)) is not None:
        return Interventions("training report", episodes, n)
    return None


@dataclass(frozen=True)
class EvaluationEvidence:
    """A policy's newest recorded evaluation, with the interventions counted in that same run."""

    evaluation: Evaluation | None
    sim2real: dict[str, Any] | None
    interventions: Interventions | None
    interventions_why: str  # why ``interventions`` is None ("" when it is not)


def _evaluation(ws: Path, rec: PolicyRecord) -> EvaluationEvidence:
    """The newest recorded evaluation (and its sim2real report), else the trainer report's."""
    for r in recorded_evaluations(ws, rec.sha256):
        mean, std = _num(r.data.get("mean")), _num(r.data.get("std"))
        rets = r.data.get("returns")
        if mean is None:
            continue
        s2r = r.data.get("sim2real")
        iv, why = eval_interventions(_rel(ws, r.path), r.data)
        return EvaluationEvidence(
            Evaluation(
                source=_rel(ws, r.path),
                env=str(r.data.get("env", "")),
                episodes=len(rets) if isinstance(rets, list) else 0,
                return_mean=mean,
                return_std=std or 0.0,
                success_rate=_num(r.data.get("success_rate")),
            ),
            s2r if isinstance(s2r, dict) else None,
            iv,
            why,
        )
    ev = (rec.report or {}).get("evaluation")
    report_iv = _report_interventions(ev)
    report_why = "" if report_iv is not None else "not recorded in the training report's evaluation"
    s2r = (rec.report or {}).get("sim2real")
    if isinstance(ev, dict):
        mean = next((_num(ev.get(k)) for k in ("return_mean", "mean_return", "mean") if k in ev), None)
        if mean is not None:
            return EvaluationEvidence(
                Evaluation(
                    source="training report",
                    env=str(ev.get("env", "")),
                    episodes=_count(ev.get("episodes")) or 0,
                    return_mean=mean,
                    return_std=_num(ev.get("return_std", ev.get("std"))) or 0.0,
                    success_rate=_num(ev.get("success_rate")),
                ),
                None,
                report_iv,
                report_why,
            )
    return EvaluationEvidence(
        None, s2r if isinstance(s2r, dict) else None, report_iv, report_why if report_iv is None else ""
    )


def bag_interventions(bag: Path) -> Counter[str] | None:
    """Shield interventions by reason code, read from a collection's rosbag2 folder; None when
    the bag cannot be read (then only the collection's total is shown)."""
    try:
        import yaml

        from bremen_robot.data.mcap_salvage import read_segment
        from bremen_robot.ros import topics as T
        from bremen_robot.ros.bagfile import deserialize, read_custom, recorded_topics

        info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        roles = recorded_topics(bag, read_custom(bag))
        topic = roles.get(T.SAFETY, "/" + T.SAFETY)
        counts: Counter[str] = Counter()
        for name in info.get("relative_file_paths") or []:
            seg = bag / Path(str(name)).name
            if not seg.is_file():
                continue
            for t, msgtype, raw in read_segment(seg).messages:
                if t != topic:
                    continue
                for st in deserialize(raw, msgtype).status:
                    reason = next((kv.value for kv in st.values if kv.key == "reason"), None)
                    counts[str(reason or st.name.rsplit("/", 1)[-1])] += 1
        return counts
    except Exception:  # a damaged or foreign bag: the total from collect.json still stands
        return None


def recorded_interventions(ws: Path, rec: PolicyRecord) -> tuple[Interventions | None, str]:
    """The shield's interventions in this policy's newest collection (matched on ``policy_id``),
    or None and why not ("" when the policy has not collected)."""
    for k, d in reversed(deployment_dirs(ws)):
        col = _read(d / "collect.json")
        if not isinstance(col, dict) or col.get("policy_id") not in (rec.id, rec.sha256):
            continue
        # the direct collector never ran a shield; before it said "shielded": false it wrote
        # interventions: 0, which would read as a shield that never had to act
        if col.get("shielded") is False or col.get("collector") == "direct":
            by = col.get("collector", "direct")
            return None, f"not shielded (deployment {k} was collected by the {by} collector)"
        total = _count(col.get("interventions"))
        if total is None:  # no count is not zero interventions
            return None, f"no intervention count in d{k}/collect.json"
        reasons = bag_interventions(d / "bag") if total else Counter()
        if reasons is not None and sum(reasons.values()) != total:
            reasons = None  # the bag and the summary disagree: show the summary's total only
        return Interventions(
            source=f"collection of deployment {k}",
            episodes=_count(col.get("episodes")) or 0,
            total=total,
            by_reason=dict(reasons) if reasons is not None else None,
        ), ""
    return None, ""


def deployed_now(policies: list[PolicyRecord], candidate: PolicyRecord) -> PolicyRecord | None:
    """The policy that holds the highest deployment number, other than the candidate itself."""
    best: tuple[int, PolicyRecord] | None = None
    for p in policies:
        if p.sha256 == candidate.sha256 or not p.deployments:
            continue
        if best is None or max(p.deployments) > best[0]:
            best = (max(p.deployments), p)
    return None if best is None else best[1]


def noise_sigma(ws: Path, deployment: Any) -> float | None:
    """The exploration noise deployment ``deployment``'s collection ran with (its collect.yaml)."""
    if not isinstance(deployment, int):
        return None
    import yaml

    try:
        cfg = yaml.safe_load((ws / f"d{deployment}" / "collect.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):  # YAMLError is no ValueError: a broken file
        return None
    return _num(cfg.get("noise_sigma")) if isinstance(cfg, dict) else None


def selection_record(ws: Path, rec: PolicyRecord) -> dict[str, Any] | None:
    """The campaign's selection record stored with the candidate, else ``d<k>/selection.json`` of
    the deployment its lineage names when it was decided on this candidate's training."""
    camp = (rec.report or {}).get("campaign_selection")
    if isinstance(camp, dict):
        return camp
    dep = (rec.lineage or {}).get("deployment")
    data = _read(ws / f"d{dep}" / "selection.json") if isinstance(dep, int) else None
    if not isinstance(data, dict):
        return None
    # the file is the decision on one training of that deployment's data: a policy trained
    # without selection, or another training, was never proposed, vetoed or warned about there
    sel = (rec.report or {}).get("selection")
    if not isinstance(sel, dict):
        return None
    from bremen_robot.campaign.selection import decided_on  # torch: only on this rare path

    return data if decided_on(data, sel) else None


def signature_state(ws: Path, rec: PolicyRecord) -> tuple[str, bool | None]:
    """One line on the approval's signature, and whether it checks (None: not signed yet)."""
    from bremen_robot.registry.errors import ApprovalError
    from bremen_robot.registry.signing import (
        key_fingerprint,
        load_public_key,
        parse_payload,
        verify_signature,
    )

    a = rec.approval
    if a is None:
        if rec.state in ("approved", "deployed") and not rec.is_random:
            return f"MISSING: the registry says {rec.state} but holds no approval", False
        if rec.state == "candidate":  # bremen review and the page end with the commands
            return "not signed: approval is a signed command-line act (commands below)", None
        return "not signed", None
    try:
        p = parse_payload(a.payload)
    except ApprovalError as exc:
        return f"INVALID: {exc}", False
    if p.get("artifact_sha256") != rec.sha256 or p.get("manifest_digest") != rec.manifest_digest:
        return "INVALID: the signed payload names another artifact or manifest", False
    # the review shows the row's approver, time and note; only the payload carries the signature
    if (p.get("operator"), p.get("time"), p.get("note")) != (a.operator, a.time, a.note):
        return (
            f"INVALID: the registry's approver, time or note differ from what was signed (signed: "
            f"{p.get('operator')} at {p.get('time')}, note {p.get('note')!r})",
            False,
        )
    named = None  # the workspace's own key for the approver's name, when it has one
    for pub in sorted((ws / "trusted_operators").glob("*.pub")) + sorted((ws / "keys").glob("*.pub")):
        try:
            key = load_public_key(pub)
        except ApprovalError:
            continue
        if key_fingerprint(key) == a.key_fingerprint:
            if verify_signature(a.payload, a.signature, key):
                return f"signed by {a.operator} at {a.time}; verified with {pub.name}", True
            return f"INVALID: the signature does not verify with {a.operator}'s key {pub.name}", False
        if pub.stem == a.operator and named is None:
            named = (pub.name, key_fingerprint(key))
    if named is not None:  # the workspace knows this name's key, and that key did not sign
        return (
            f"INVALID: signed as {a.operator} with key {a.key_fingerprint[:12]}, which is not the key of "
            f"{a.operator} in this workspace ({named[0]}, key {named[1][:12]}); robots trusting it refuse it",
            False,
        )
    return (
        f"signed by {a.operator} at {a.time} (key {a.key_fingerprint[:12]}); no public key in this "
        "workspace to verify it (the robot verifies it before running)",
        True,
    )


def policy_evidence(ws: Path, rec: PolicyRecord) -> tuple[PolicyEvidence, dict[str, Any] | None]:
    e = _evaluation(ws, rec)
    collected, collected_why = recorded_interventions(ws, rec)
    pe = PolicyEvidence(
        rec.id,
        str(rec.state),
        e.evaluation,
        collected,
        e.interventions,
        e.interventions_why,
        collected_why,
    )
    return pe, e.sim2real


def gather(
    ws: Path, rec: PolicyRecord, deployed: PolicyRecord | None
) -> tuple[Evidence, dict[str, Any] | None]:
    """The verdict's evidence for ``rec`` against ``deployed``, and the candidate's sim2real report."""
    r = rec.report or {}
    cand, s2r = policy_evidence(ws, rec)
    dep = policy_evidence(ws, deployed)[0] if deployed is not None else None
    dis = r.get("disagreement")
    own = data = None
    if isinstance(dis, dict):
        own = _num(dis.get("policy_imagined"))
        data = _num(dis.get("dataset", dis.get("behavior")))
    sel = selection_record(ws, rec) or {}
    twin_raw = sel.get("twin")
    twin: dict[str, Any] = twin_raw if isinstance(twin_raw, dict) else {}
    signature, ok = signature_state(ws, rec)
    evidence = Evidence(
        candidate=cand,
        deployed=dep,
        behavior_shift=_num(r.get("behavior_shift")),
        noise_sigma=noise_sigma(ws, (rec.lineage or {}).get("deployment")),
        disagreement_own=own,
        disagreement_data=data,
        selection_line=str(sel["line"]) if sel.get("line") else None,
        selection_warning=str(sel["warning"]) if sel.get("warning") else None,
        twin_vetoes=[str(v) for v in twin.get("vetoed") or []],
        proposed_snapshot=str(sel["proposed"]) if sel.get("proposed") else None,
        signature=signature,
        signature_ok=ok,
        needs_signature=str(rec.state) in ("approved", "deployed") and rec.sha256 != RANDOM_POLICY_ID,
    )
    return evidence, s2r
