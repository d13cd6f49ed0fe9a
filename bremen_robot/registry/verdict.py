"""The review's verdict: a candidate against the policy deployed now, in the robot's terms.

Pure: :func:`build_verdict` turns an :class:`Evidence` (what the workspace recorded, gathered by
:mod:`bremen_robot.registry.evidence`) into a :class:`Verdict` (rows side by side and red flags
in words); :func:`verdict_lines` prints it. The terminal review and the HTML page show the same
object, so they can never disagree. No figure is computed here from anything but the evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# A candidate whose mean simulated return lies more than this many of the deployed policy's
# episode-to-episode standard deviations below the deployed policy's mean is worse by more than
# the spread between episodes of the same policy, i.e. not explained by which episodes were drawn.
RETURN_REGRESSION_STD = 1.0
# Success rate lower by more than this (absolute) is a regression: 0.2 is 4 of 20 evaluation
# episodes, more than one unlucky episode either way.
SUCCESS_REGRESSION = 0.2
# The shield is the last line of defense, not a controller: a policy it corrects more than once
# per episode on average leans on it, and on a real robot each correction is a jerk or a stop.
MAX_INTERVENTIONS_PER_EPISODE = 1.0
# Behavior shift in collection-noise units: beyond 1 the candidate acts, on average, further
# from the deployed behavior than the collection's own noise ever tried, so the data says little
# about where it goes (HalfCheetah probes flipped over from about 0.7: docs/results.md).
MAX_BEHAVIOR_SHIFT = 1.0
# Models disagreeing this many times more on the policy's own imagined states than on the data
# means the policy went where the models were not trained: its imagined return exploits model error.
MAX_DISAGREEMENT_RATIO = 3.0

# What each flag means, printed under it: a flag names evidence to look at, and its threshold is
# fixed (not relative to the deployed policy, nor scaled to the episode's length or joint count).
FLAG_MEANINGS = {
    "regressing_return": (
        f"the mean simulated return is more than {RETURN_REGRESSION_STD:g} std (of the deployed policy's "
        "episodes) below the deployed policy's, or the success rate more than "
        f"{100 * SUCCESS_REGRESSION:.0f} points lower"
    ),
    "many_interventions": (
        f"more than {MAX_INTERVENTIONS_PER_EPISODE:g} shield intervention per episode on average, each joint "
        "and reason code of a step counted once; a fixed count, whatever the deployed policy's (a candidate "
        "that cuts it tenfold is still flagged) or the episode's length: compare the rows above and the "
        "reason codes"
    ),
    "far_from_data": (
        f"the candidate's mean action is more than {MAX_BEHAVIOR_SHIFT:g} collection-noise std from the "
        f"deployed behavior, or the models disagree more than {MAX_DISAGREEMENT_RATIO:g}x more on its own "
        "imagined states than on the data: its figures rest on states the data barely covers. A candidate "
        "that improves much on the deployed policy usually moves this far; check it in simulation (or a "
        "shadow run) before the robot"
    ),
    "twin_veto": "the simulated twin scored the proposed snapshot too far below the deployed policy",
    "selection_warning": "the campaign proposed a snapshot that does not beat the deployed policy",
    "signature": "the approval is missing or does not verify: a robot refuses this policy",
    "not_evaluated": "a simulated return to compare is missing or not a finite number",
}
ADVISORY_NOTE = (
    "red flags are advisory: 'bremen approve' signs a flagged candidate too; each says what to check "
    "before signing (docs/review.md, 'Red flags')"
)

OBSERVE_NOTE = (
    "interventions in evaluation: what the robot's shield would have changed on the mean-action "
    "rollout in simulation (observe mode: counted, not applied); in collection: what it changed "
    "while the policy collected data"
)
SHIFT_UNIT = (
    "behavior shift unit: 1 = the candidate's mean action is, on average over the data's states, "
    "one collection-noise std away from the cloned deployed behavior"
)


@dataclass(frozen=True)
class Evaluation:
    """One recorded simulation evaluation of a policy (e.g. ``d3/eval.json``)."""

    source: str
    env: str
    episodes: int
    return_mean: float
    return_std: float
    success_rate: float | None = None


@dataclass(frozen=True)
class Interventions:
    """Safety-shield interventions recorded while a policy ran through the shield."""

    source: str
    episodes: int
    total: int
    by_reason: dict[str, int] | None = None  # None: only the total was recorded

    def per_episode(self) -> float | None:
        return self.total / self.episodes if self.episodes > 0 else None

    def per_episode_by_reason(self) -> dict[str, float]:
        if not self.by_reason or self.episodes <= 0:
            return {}
        return {k: v / self.episodes for k, v in sorted(self.by_reason.items())}


@dataclass(frozen=True)
class PolicyEvidence:
    """What the workspace recorded about one policy. ``interventions``: what the shield changed in
    the policy's own collection; ``eval_interventions``: what it would have changed in the
    simulation evaluation (observe mode, campaign/eval_shield.py), else ``eval_interventions_why``
    says why there is no such figure."""

    policy_id: str
    state: str
    evaluation: Evaluation | None = None
    interventions: Interventions | None = None
    eval_interventions: Interventions | None = None
    eval_interventions_why: str = ""  # "": "not evaluated" or "not recorded in this evaluation"
    interventions_why: str = ""  # why ``interventions`` is None, e.g. collected without a shield


@dataclass(frozen=True)
class Evidence:
    """Everything the verdict reads. ``deployed`` is None when no policy was deployed yet."""

    candidate: PolicyEvidence
    deployed: PolicyEvidence | None
    behavior_shift: float | None = None
    noise_sigma: float | None = None  # exploration noise the newest data was collected with
    disagreement_own: float | None = None  # ensemble disagreement on the policy's imagined states
    disagreement_data: float | None = None  # ... and on the training data
    selection_line: str | None = None  # the campaign's selection/twin decision, when it ran
    selection_warning: str | None = None
    twin_vetoes: list[str] = field(default_factory=list)
    proposed_snapshot: str | None = None
    signature: str = "not signed"  # one line: the approval's signature state
    signature_ok: bool | None = None  # None: nothing to check (candidate); False: missing or bad
    needs_signature: bool = False  # approved/deployed states must carry a valid signature


@dataclass(frozen=True)
class Flag:
    code: str
    text: str


@dataclass(frozen=True)
class Row:
    """One line of the side-by-side table."""

    label: str
    candidate: str
    deployed: str


@dataclass(frozen=True)
class Verdict:
    candidate_id: str
    deployed_id: str | None
    rows: list[Row]
    notes: list[str]
    flags: list[Flag]
    signature: str = ""

    @property
    def ok(self) -> bool:
        return not self.flags


def _f(x: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)  # NaN shows as nan: "-" would read as "not computed"


def _ret(e: Evaluation | None) -> str:
    if e is None:
        return "not evaluated"
    return f"{e.return_mean:.1f} ± {e.return_std:.1f} ({e.episodes} episodes, {e.source})"


def _succ(e: Evaluation | None) -> str:
    if e is None or e.success_rate is None:
        return "-" if e is not None else "not evaluated"
    return f"{100 * e.success_rate:.0f} %"


def interventions_text(i: Interventions | None, missing: str = "not measured") -> str:
    if i is None:
        return missing
    per = i.per_episode()
    if per is None:
        return f"{i.total} (no complete episode, {i.source})"
    reasons = i.per_episode_by_reason()
    by = ", ".join(f"{k} {v:.2f}" for k, v in reasons.items()) if reasons else ""
    if not reasons:
        by = "none" if i.total == 0 else "reasons not recorded"
    return f"{per:.2f} per episode ({by}; {i.total} in {i.episodes} episodes, {i.source})"


def _eval_iv(p: PolicyEvidence) -> str:
    if p.eval_interventions is None and not p.eval_interventions_why:
        why = "not evaluated" if p.evaluation is None else "not recorded in this evaluation"
        return interventions_text(None, why)
    return interventions_text(p.eval_interventions, p.eval_interventions_why)


def _flags(ev: Evidence) -> list[Flag]:
    c, d = ev.candidate, ev.deployed
    out: list[Flag] = []
    ce = c.evaluation
    de = d.evaluation if d is not None else None
    if ce is None:
        out.append(Flag("not_evaluated", "the candidate has no recorded simulation evaluation"))
    elif not math.isfinite(ce.return_mean):  # NaN compares False: it would pass every check
        out.append(
            Flag(
                "not_evaluated",
                f"the candidate's simulated return in {ce.source} is not a finite number "
                f"({ce.return_mean}): nothing to compare",
            )
        )
    elif d is not None and de is None:  # the comparison did not run: not the same as it passed
        out.append(
            Flag(
                "not_evaluated",
                f"the deployed policy {d.policy_id} has no recorded simulation evaluation: "
                "the candidate's return was not compared",
            )
        )
    elif de is not None and not (math.isfinite(de.return_mean) and math.isfinite(de.return_std)):
        out.append(
            Flag(
                "not_evaluated",
                f"the deployed policy's simulated return in {de.source} is not a finite number "
                f"({de.return_mean}, std {de.return_std}): nothing to compare",
            )
        )
    elif de is not None and d is not None:
        drop = de.return_mean - ce.return_mean
        if drop > RETURN_REGRESSION_STD * de.return_std:
            out.append(
                Flag(
                    "regressing_return",
                    f"simulated return regresses: {ce.return_mean:.1f} vs the deployed policy's "
                    f"{de.return_mean:.1f} (more than {RETURN_REGRESSION_STD:g} std of its episodes lower)",
                )
            )
        elif (
            ce.success_rate is not None
            and de.success_rate is not None
            # rates are episode fractions: rounded, exactly 20 points (0.8 - 0.6 is 0.20000000000000007
            # in floating point) is not "more than" whichever pair of rates it is
            and round(de.success_rate - ce.success_rate, 9) > SUCCESS_REGRESSION
        ):
            out.append(
                Flag(
                    "regressing_return",
                    f"success rate regresses: {100 * ce.success_rate:.0f} % vs the deployed policy's "
                    f"{100 * de.success_rate:.0f} %",
                )
            )
    many = []
    ev_iv, col_iv = c.eval_interventions, c.interventions
    per = ev_iv.per_episode() if ev_iv is not None else None
    if per is not None and per > MAX_INTERVENTIONS_PER_EPISODE:
        many.append(
            f"the safety shield would intervene {per:.1f} times per episode in its simulation evaluation"
        )
    per = col_iv.per_episode() if col_iv is not None else None
    if col_iv is not None and per is not None and per > MAX_INTERVENTIONS_PER_EPISODE:
        many.append(f"the safety shield intervened {per:.1f} times per episode in its {col_iv.source}")
    elif col_iv is not None and per is None and col_iv.total > MAX_INTERVENTIONS_PER_EPISODE:
        # no complete episode: one robot's collection ran one partial episode, so all of them fell
        # in it (a fleet's robots one each: few interventions there may be under 1 per episode)
        many.append(
            f"the safety shield intervened {col_iv.total} times in its {col_iv.source} without a "
            "complete episode"
        )
    if many:
        out.append(
            Flag(
                "many_interventions",
                "; ".join(many)
                + f" (more than {MAX_INTERVENTIONS_PER_EPISODE:g}): the policy leans on the shield",
            )
        )
    far = []
    if ev.behavior_shift is not None and not math.isfinite(ev.behavior_shift):  # NaN > x is False
        far.append(f"its behavior shift is not a finite number ({ev.behavior_shift})")
    elif ev.behavior_shift is not None and ev.behavior_shift > MAX_BEHAVIOR_SHIFT:
        far.append(
            f"its actions moved {ev.behavior_shift:.2f} collection-noise std from the deployed behavior"
        )
    own, data = ev.disagreement_own, ev.disagreement_data
    if own is not None and data is not None and not (math.isfinite(own) and math.isfinite(data)):
        far.append(f"the models' disagreement is not a finite number (own states {own:.3g}, data {data:.3g})")
    elif own is not None and data is not None and data > 0 and own / data > MAX_DISAGREEMENT_RATIO:
        far.append(f"the models disagree {own / data:.1f} times more on its own states than on the data")
    if far:
        out.append(Flag("far_from_data", "far from its data: " + "; ".join(far)))
    if ev.proposed_snapshot and any(v.startswith(f"{ev.proposed_snapshot}:") for v in ev.twin_vetoes):
        out.append(Flag("twin_veto", f"the twin check vetoed the proposed snapshot {ev.proposed_snapshot}"))
    if ev.selection_warning:
        out.append(Flag("selection_warning", ev.selection_warning))
    if ev.needs_signature and ev.signature_ok is not True:
        out.append(Flag("signature", f"signature: {ev.signature}"))
    return out


def build_verdict(ev: Evidence) -> Verdict:
    """Rows side by side, notes and red flags from the recorded evidence alone."""
    c, d = ev.candidate, ev.deployed

    def dep(fn: Callable[[PolicyEvidence], str]) -> str:
        return "no policy deployed yet" if d is None else fn(d)

    rows = [
        Row("policy", f"{c.policy_id} ({c.state})", dep(lambda p: f"{p.policy_id} ({p.state})")),
        Row("simulated return", _ret(c.evaluation), dep(lambda p: _ret(p.evaluation))),
        Row("success rate", _succ(c.evaluation), dep(lambda p: _succ(p.evaluation))),
        Row(
            "safety interventions in evaluation",
            _eval_iv(c),
            dep(_eval_iv),
        ),
        Row(
            "safety interventions in collection",
            interventions_text(c.interventions, c.interventions_why or "no collection yet"),
            dep(
                lambda p: interventions_text(p.interventions, p.interventions_why or "no collection recorded")
            ),
        ),
        Row("behavior shift (collection-noise std)", _f(ev.behavior_shift, "{:.2f}"), "0 (reference)"),
        Row(
            "model disagreement: own states / data",
            f"{_f(ev.disagreement_own, '{:.3g}')} / {_f(ev.disagreement_data, '{:.3g}')}",
            "-",
        ),
    ]
    notes = [SHIFT_UNIT + (f" (the collection added N(0, {ev.noise_sigma:g}²))" if ev.noise_sigma else "")]
    if c.eval_interventions is not None or (d is not None and d.eval_interventions is not None):
        notes.append(OBSERVE_NOTE)
    if ev.selection_line:
        notes.append(f"candidate selection: {ev.selection_line}")
    notes.append(f"signature: {ev.signature}")
    return Verdict(c.policy_id, None if d is None else d.policy_id, rows, notes, _flags(ev), ev.signature)


def verdict_lines(v: Verdict) -> list[str]:
    """The verdict as text (the top of ``bremen review``)."""
    w = max(len(r.label) for r in v.rows)
    lines = [f"VERDICT: candidate {v.candidate_id} vs deployed {v.deployed_id or '(none yet)'}"]
    for r in v.rows:
        lines.append(f"  {r.label:<{w}}  candidate: {r.candidate}")
        lines.append(f"  {'':<{w}}  deployed:  {r.deployed}")
    lines += [f"  {n}" for n in v.notes]
    if v.flags:
        for f in v.flags:
            lines.append(f"  RED FLAG ({f.code}): {f.text}")
            if f.code in FLAG_MEANINGS:
                lines.append(f"    means: {FLAG_MEANINGS[f.code]}")
        lines.append(f"  {ADVISORY_NOTE}")
    else:
        lines.append("  no red flag on the recorded evidence")
    return lines


def as_dict(v: Verdict) -> dict[str, Any]:
    """Plain data for templates and JSON."""
    return {
        "candidate_id": v.candidate_id,
        "deployed_id": v.deployed_id,
        "rows": [r.__dict__ for r in v.rows],
        "notes": list(v.notes),
        "flags": [{**f.__dict__, "meaning": FLAG_MEANINGS.get(f.code, "")} for f in v.flags],
        "advisory": ADVISORY_NOTE,
    }
