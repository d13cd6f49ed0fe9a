"""Edges of the review's verdict and its evidence found by a hand mutation read (2026-12-07).

Each test fails on one or more one-line changes of ``registry/verdict.py`` or
``registry/evidence.py`` that the rest of the suite let pass. Figures, rows and flag texts are
worked out by hand (the comment beside each says how), never computed by the code under test.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bremen_robot.registry import evidence
from bremen_robot.registry.evidence import (
    deployment_dirs,
    eval_interventions,
    gather,
    recorded_evaluations,
    recorded_interventions,
    signature_state,
)
from bremen_robot.registry.records import Approval, PolicyRecord
from bremen_robot.registry.states import PolicyState
from bremen_robot.registry.verdict import (
    Evaluation,
    Evidence,
    Flag,
    Interventions,
    PolicyEvidence,
    Row,
    as_dict,
    build_verdict,
    verdict_lines,
)

NAN = float("nan")
INF = float("inf")

# the deployed policy: -6.0 ± 2.0 over 20 episodes, 65 % success, 15 collection interventions in 30
DEPLOYED = PolicyEvidence(
    "990abbb723fa",
    "deployed",
    Evaluation("d2/eval.json", "sim:panda/mujoco", 20, -6.0, 2.0, 0.65),
    Interventions("collection of deployment 3", 30, 15, {"rate_limit": 12, "joint_limit": 3}),
)
# a good candidate: better return and success, few interventions, close to its data
GOOD = Evidence(
    candidate=PolicyEvidence(
        "9e4edb2bd2f5",
        "candidate",
        Evaluation("d3/eval.json", "sim:panda/mujoco", 20, -5.3, 1.6, 0.80),
        Interventions("training report", 10, 4, {"rate_limit": 4}),
    ),
    deployed=DEPLOYED,
    behavior_shift=0.6,
    noise_sigma=0.1,
    disagreement_own=0.07,
    disagreement_data=0.06,
    selection_line="proposing snapshot trpo-0080 of 3 (offline lower bound)",
    proposed_snapshot="trpo-0080",
)
SHIFT_NOTE = (
    "behavior shift unit: 1 = the candidate's mean action is, on average over the data's states, "
    "one collection-noise std away from the cloned deployed behavior"
)
OBSERVE = (
    "interventions in evaluation: what the robot's shield would have changed on the mean-action "
    "rollout in simulation (observe mode: counted, not applied); in collection: what it changed "
    "while the policy collected data"
)
LEANS = " (more than 1): the policy leans on the shield"


def _cand(**kw: object) -> PolicyEvidence:
    return dataclasses.replace(GOOD.candidate, **kw)  # type: ignore[arg-type]


def _ev(**kw: object) -> Evidence:
    return dataclasses.replace(GOOD, **kw)  # type: ignore[arg-type]


def _with_eval(mean: float, std: float, success: float | None = 0.80) -> Evidence:
    return _ev(candidate=_cand(evaluation=Evaluation("d3/eval.json", "sim", 20, mean, std, success)))


def _flags(ev: Evidence) -> list[tuple[str, str]]:
    return [(f.code, f.text) for f in build_verdict(ev).flags]


def _row(ev: Evidence, label: str) -> tuple[str, str]:
    r = next(r for r in build_verdict(ev).rows if r.label == label)
    return r.candidate, r.deployed


# ---- the rows and notes, as the operator reads them


def test_every_row_and_note_of_a_good_candidate_side_by_side() -> None:
    v = build_verdict(GOOD)
    assert v.rows == [
        Row("policy", "9e4edb2bd2f5 (candidate)", "990abbb723fa (deployed)"),
        Row(
            "simulated return",
            "-5.3 ± 1.6 (20 episodes, d3/eval.json)",
            "-6.0 ± 2.0 (20 episodes, d2/eval.json)",
        ),
        Row("success rate", "80 %", "65 %"),
        # both evaluated, neither evaluation carries the shield's count
        Row(
            "safety interventions in evaluation",
            "not recorded in this evaluation",
            "not recorded in this evaluation",
        ),
        # 4 in 10 = 0.40 per episode; 15 in 30 = 0.50 (3/30 = 0.10 joint_limit, 12/30 = 0.40 rate_limit)
        Row(
            "safety interventions in collection",
            "0.40 per episode (rate_limit 0.40; 4 in 10 episodes, training report)",
            "0.50 per episode (joint_limit 0.10, rate_limit 0.40; 15 in 30 episodes, "
            "collection of deployment 3)",
        ),
        Row("behavior shift (collection-noise std)", "0.60", "0 (reference)"),
        Row("model disagreement: own states / data", "0.07 / 0.06", "-"),
    ]
    assert v.notes == [
        SHIFT_NOTE + " (the collection added N(0, 0.1²))",
        "candidate selection: proposing snapshot trpo-0080 of 3 (offline lower bound)",
        "signature: not signed",
    ]
    assert (v.candidate_id, v.deployed_id, v.ok) == ("9e4edb2bd2f5", "990abbb723fa", True)
    d = as_dict(v)
    assert (d["candidate_id"], d["deployed_id"], d["flags"]) == ("9e4edb2bd2f5", "990abbb723fa", [])


def test_the_printed_table_pads_every_label_to_the_longest_one() -> None:
    # the longest labels, "behavior shift (collection-noise std)" and "model disagreement: own
    # states / data", are 37 characters: "policy" (6) gets 31 spaces, "success rate" (12) 25
    lines = verdict_lines(build_verdict(GOOD))
    assert lines[:3] == [
        "VERDICT: candidate 9e4edb2bd2f5 vs deployed 990abbb723fa",
        "  policy" + " " * 31 + "  candidate: 9e4edb2bd2f5 (candidate)",
        "  " + " " * 37 + "  deployed:  990abbb723fa (deployed)",
    ]
    assert lines[5:7] == [
        "  success rate" + " " * 25 + "  candidate: 80 %",
        "  " + " " * 37 + "  deployed:  65 %",
    ]


def test_figures_not_computed_show_a_dash_not_zero() -> None:
    ev = _ev(behavior_shift=None, disagreement_own=None, disagreement_data=None)
    assert _row(ev, "behavior shift (collection-noise std)") == ("-", "0 (reference)")
    assert _row(ev, "model disagreement: own states / data") == ("- / -", "-")
    assert _flags(ev) == []
    # the disagreement on the data alone: nothing to divide, no flag and no crash
    one = _ev(disagreement_own=None, disagreement_data=0.06)
    assert _row(one, "model disagreement: own states / data") == ("- / 0.06", "-")
    assert _flags(one) == []


def test_the_disagreement_row_keeps_three_significant_digits_own_first() -> None:
    # 0.0312 / 0.0118 = 2.64: no flag; three significant digits of each
    ev = _ev(disagreement_own=0.0312, disagreement_data=0.0118)
    assert _row(ev, "model disagreement: own states / data") == ("0.0312 / 0.0118", "-")
    assert _flags(ev) == []


def test_a_missing_success_rate_is_a_dash_and_a_missing_evaluation_says_not_evaluated() -> None:
    # the candidate's evaluation has no success rate; the deployed policy has no evaluation at all
    ev = _ev(
        candidate=_cand(evaluation=Evaluation("d3/eval.json", "sim", 20, -5.3, 1.6, None)),
        deployed=dataclasses.replace(DEPLOYED, evaluation=None),
    )
    assert _row(ev, "success rate") == ("-", "not evaluated")
    assert _row(ev, "simulated return") == ("-5.3 ± 1.6 (20 episodes, d3/eval.json)", "not evaluated")


def test_a_candidate_without_a_success_rate_against_a_deployed_one_with_it_is_no_regression() -> None:
    # -5.3 is above -6.0; the candidate's rate is unknown, the deployed one's 65 %: nothing to compare
    ev = _with_eval(-5.3, 1.6, None)
    assert _flags(ev) == []
    assert _row(ev, "success rate") == ("-", "65 %")


def test_interventions_without_a_complete_episode_show_their_count() -> None:
    ev = _ev(candidate=_cand(interventions=Interventions("collection of deployment 4", 0, 1, {"clip": 1})))
    assert (
        _row(ev, "safety interventions in collection")[0]
        == "1 (no complete episode, collection of deployment 4)"
    )


def test_zero_interventions_read_none_not_reasons_not_recorded() -> None:
    # 0 in 20 episodes: 0.00 per episode, and no reason because there was no intervention
    ev = _ev(candidate=_cand(eval_interventions=Interventions("d3/eval.json, observe mode", 20, 0, {})))
    assert _row(ev, "safety interventions in evaluation")[0] == (
        "0.00 per episode (none; 0 in 20 episodes, d3/eval.json, observe mode)"
    )
    assert _flags(ev) == []


def test_no_per_episode_reasons_without_a_complete_episode() -> None:
    assert Interventions("collection of deployment 4", 0, 40, {"clip": 40}).per_episode_by_reason() == {}
    assert Interventions("collection of deployment 4", 0, 40, {"clip": 40}).per_episode() is None
    # 40 in 20 episodes: 2.0 per episode
    assert Interventions("collection of deployment 4", 20, 40, {"clip": 40}).per_episode_by_reason() == {
        "clip": 2.0
    }


def test_the_candidates_reason_for_no_collection_count_is_shown() -> None:
    why = "not shielded (deployment 3 was collected by the direct collector)"
    ev = _ev(candidate=_cand(interventions=None, interventions_why=why))
    assert _row(ev, "safety interventions in collection")[0] == why


def test_the_observe_mode_note_comes_with_either_policys_evaluation_count() -> None:
    counted = Interventions("d2/eval.json, observe mode", 20, 4, {"rate_limit": 4})
    only_deployed = _ev(deployed=dataclasses.replace(DEPLOYED, eval_interventions=counted))
    assert OBSERVE in build_verdict(only_deployed).notes
    only_candidate = _ev(candidate=_cand(eval_interventions=counted))
    assert OBSERVE in build_verdict(only_candidate).notes
    assert OBSERVE not in build_verdict(GOOD).notes


# ---- the return comparison


def test_no_deployed_policy_is_no_failed_comparison() -> None:
    ev = _ev(deployed=None)
    assert _flags(ev) == []
    assert _row(ev, "simulated return") == (
        "-5.3 ± 1.6 (20 episodes, d3/eval.json)",
        "no policy deployed yet",
    )


def test_an_infinite_candidate_return_is_not_evaluated() -> None:
    # an overflowed simulation: -inf would read as a regression, +inf as no flag at all
    for mean, shown in ((-INF, "-inf"), (INF, "inf")):
        assert _flags(_with_eval(mean, 1.0)) == [
            (
                "not_evaluated",
                f"the candidate's simulated return in d3/eval.json is not a finite number ({shown}): "
                "nothing to compare",
            )
        ]


def test_a_deployed_return_with_only_its_mean_or_only_its_std_not_finite_is_not_evaluated() -> None:
    std_nan = _ev(
        deployed=dataclasses.replace(DEPLOYED, evaluation=Evaluation("d2/eval.json", "sim", 20, -6.0, NAN))
    )
    assert _flags(std_nan) == [
        (
            "not_evaluated",
            "the deployed policy's simulated return in d2/eval.json is not a finite number (-6.0, std nan): "
            "nothing to compare",
        )
    ]
    mean_nan = _ev(
        deployed=dataclasses.replace(DEPLOYED, evaluation=Evaluation("d2/eval.json", "sim", 20, NAN, 2.0))
    )
    assert _flags(mean_nan) == [
        (
            "not_evaluated",
            "the deployed policy's simulated return in d2/eval.json is not a finite number (nan, std 2.0): "
            "nothing to compare",
        )
    ]


def test_a_return_exactly_one_deployed_std_lower_is_not_a_regression_and_just_more_is() -> None:
    # the deployed policy: -6.0 ± 2.0. -8.0 is exactly 2.0 lower: not "more than 1 std". The
    # candidate's own std (0.5, then 3.0) is not the yardstick: the deployed policy's episodes are
    assert _flags(_with_eval(-8.0, 0.5)) == []
    # -8.5 is 2.5 lower, more than 2.0
    assert _flags(_with_eval(-8.5, 3.0)) == [
        (
            "regressing_return",
            "simulated return regresses: -8.5 vs the deployed policy's -6.0 "
            "(more than 1 std of its episodes lower)",
        )
    ]


def test_a_return_and_a_success_rate_both_lower_raise_one_regression_flag() -> None:
    # -9.0 is 3.0 below -6.0 (> 2.0), and 30 % is 35 points below 65 %: one flag, the return's
    assert _flags(_with_eval(-9.0, 2.0, 0.30)) == [
        (
            "regressing_return",
            "simulated return regresses: -9.0 vs the deployed policy's -6.0 "
            "(more than 1 std of its episodes lower)",
        )
    ]


def test_the_regression_flag_means_a_std_and_20_points() -> None:
    lines = verdict_lines(build_verdict(_with_eval(-9.0, 2.0)))
    i = lines.index(
        "  RED FLAG (regressing_return): simulated return regresses: -9.0 vs the deployed policy's -6.0 "
        "(more than 1 std of its episodes lower)"
    )
    assert lines[i + 1] == (
        "    means: the mean simulated return is more than 1 std (of the deployed policy's episodes) below "
        "the deployed policy's, or the success rate more than 20 points lower"
    )


# ---- the shield's interventions


def test_evaluation_interventions_just_over_one_per_episode_are_flagged() -> None:
    # 22 in 20 episodes = 1.1 per episode: more than 1 (exactly 1 is in test_review_verdict.py)
    ev = _ev(candidate=_cand(eval_interventions=Interventions("d3/eval.json", 20, 22, {"rate_limit": 22})))
    assert _flags(ev) == [
        (
            "many_interventions",
            "the safety shield would intervene 1.1 times per episode in its simulation evaluation" + LEANS,
        )
    ]


def test_collection_interventions_of_exactly_one_per_episode_pass_and_just_more_are_flagged() -> None:
    # 20 in 20 episodes = 1.0: not more than 1
    at = _ev(candidate=_cand(interventions=Interventions("collection of deployment 4", 20, 20, {"clip": 20})))
    assert _flags(at) == []
    # 22 in 20 episodes = 1.1
    over = _ev(
        candidate=_cand(interventions=Interventions("collection of deployment 4", 20, 22, {"clip": 22}))
    )
    assert _flags(over) == [
        (
            "many_interventions",
            "the safety shield intervened 1.1 times per episode in its collection of deployment 4" + LEANS,
        )
    ]


def test_too_many_interventions_in_evaluation_and_collection_are_named_in_one_flag() -> None:
    # evaluation 50 in 20 = 2.5 per episode; collection 60 in 20 = 3.0
    ev = _ev(
        candidate=_cand(
            eval_interventions=Interventions("d3/eval.json, observe mode", 20, 50, {"rate_limit": 50}),
            interventions=Interventions("collection of deployment 4", 20, 60, {"clip": 60}),
        )
    )
    assert _flags(ev) == [
        (
            "many_interventions",
            "the safety shield would intervene 2.5 times per episode in its simulation evaluation; "
            "the safety shield intervened 3.0 times per episode in its collection of deployment 4" + LEANS,
        )
    ]


# ---- far from the data


def test_a_behavior_shift_of_exactly_one_passes_and_just_more_is_flagged() -> None:
    assert _flags(_ev(behavior_shift=1.0)) == []
    assert _flags(_ev(behavior_shift=1.01)) == [
        (
            "far_from_data",
            "far from its data: its actions moved 1.01 collection-noise std from the deployed behavior",
        )
    ]


def test_an_infinite_behavior_shift_is_not_a_finite_number() -> None:
    for shift, shown in ((INF, "inf"), (-INF, "-inf")):
        assert _flags(_ev(behavior_shift=shift)) == [
            ("far_from_data", f"far from its data: its behavior shift is not a finite number ({shown})")
        ]


def test_a_disagreement_ratio_of_exactly_three_passes_and_just_more_is_flagged() -> None:
    # 0.75 / 0.25 = 3.0 exactly: not more than 3
    assert _flags(_ev(disagreement_own=0.75, disagreement_data=0.25)) == []
    # 0.8 / 0.25 = 3.2
    assert _flags(_ev(disagreement_own=0.8, disagreement_data=0.25)) == [
        (
            "far_from_data",
            "far from its data: the models disagree 3.2 times more on its own states than on the data",
        )
    ]


def test_a_disagreement_on_the_data_that_is_not_a_number_is_a_red_flag() -> None:
    assert _flags(_ev(disagreement_own=0.07, disagreement_data=NAN)) == [
        (
            "far_from_data",
            "far from its data: the models' disagreement is not a finite number (own states 0.07, data nan)",
        )
    ]


def test_no_disagreement_anywhere_divides_nothing() -> None:
    # both zero: the members agree everywhere (one member); no ratio, no flag, no crash
    assert _flags(_ev(disagreement_own=0.0, disagreement_data=0.0)) == []


def test_a_large_shift_and_a_large_disagreement_are_both_named() -> None:
    # shift 1.7 > 1; 0.3 / 0.06 = 5.0 > 3
    assert _flags(_ev(behavior_shift=1.7, disagreement_own=0.3)) == [
        (
            "far_from_data",
            "far from its data: its actions moved 1.70 collection-noise std from the deployed behavior; "
            "the models disagree 5.0 times more on its own states than on the data",
        )
    ]


# ---- selection, twin and signature


def test_a_veto_of_a_snapshot_whose_name_only_begins_like_the_proposed_one_is_not_its_veto() -> None:
    ev = _ev(proposed_snapshot="trpo-10", twin_vetoes=["trpo-100: twin -20.0 is clearly below"])
    assert _flags(ev) == []


def test_a_selection_warning_is_flagged_without_a_proposed_snapshot() -> None:
    ev = _ev(proposed_snapshot=None, selection_warning="no snapshot beats the deployed policy")
    assert _flags(ev) == [("selection_warning", "no snapshot beats the deployed policy")]


def test_a_signature_that_was_never_checked_is_no_valid_signature() -> None:
    ev = _ev(needs_signature=True, signature_ok=None, signature="not signed")
    assert build_verdict(ev).flags == [Flag("signature", "signature: not signed")]
    assert build_verdict(ev).ok is False


# ---- evidence.py: what the workspace recorded, found by digest and deployment number

SHA = "a1" * 32
MANIFEST = "b2" * 32
T = "2026-12-07T08:00:00Z"


def _rec(state: str = "candidate", report: dict[str, Any] | None = None, **kw: Any) -> PolicyRecord:
    fields: dict[str, Any] = {
        "id": SHA[:12], "sha256": SHA, "state": PolicyState(state), "kind": "bremen", "robot": "pointbot",
        "task": "point", "created_at": T, "registered_at": T, "manifest_digest": MANIFEST, "manifest": {},
        "lineage": {"parent": "random", "deployment": 1}, "report": report or {}, "approval": None,
    }  # fmt: skip
    return PolicyRecord(**{**fields, **kw})


RANDOM = _rec(
    "deployed",
    id="random",
    sha256="random",
    kind="random",
    manifest_digest="random",
    lineage={},
    deployments=[1],
)


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def _eval_file(mean: float, returns: list[float], **kw: Any) -> dict[str, Any]:
    return {"env": "point", "returns": returns, "mean": mean, "std": 1.0, "policy_sha256": SHA, **kw}


def test_the_newest_evaluation_is_the_highest_deployment_number_not_the_last_name(tmp_path: Path) -> None:
    # d2 and d10 both evaluated this policy: d10 is newer, though "d10" sorts before "d2" as text
    _write(tmp_path / "d2" / "eval.json", _eval_file(-20.0, [-20.0]))
    _write(tmp_path / "d10" / "eval.json", _eval_file(-5.0, [-4.0, -6.0]))
    assert [r.path for r in recorded_evaluations(tmp_path, SHA)] == [
        tmp_path / "d10/eval.json",
        tmp_path / "d2/eval.json",
    ]
    ev, _ = gather(tmp_path, _rec(), None)
    assert ev.candidate.evaluation == Evaluation("d10/eval.json", "point", 2, -5.0, 1.0, None)


def test_a_deployment_folder_moved_aside_is_not_read(tmp_path: Path) -> None:
    _write(tmp_path / "d1" / "eval.json", _eval_file(-12.0, [-12.0]))
    _write(tmp_path / "d2.incomplete-1" / "eval.json", _eval_file(50.0, [50.0]))
    assert deployment_dirs(tmp_path) == [(1, tmp_path / "d1")]
    assert [r.path for r in recorded_evaluations(tmp_path, SHA)] == [tmp_path / "d1/eval.json"]


def test_a_half_written_or_meanless_evaluation_falls_back_to_the_older_one(tmp_path: Path) -> None:
    _write(tmp_path / "d1" / "eval.json", _eval_file(-12.5, [-11.0, -14.0], success_rate=True))
    _write(tmp_path / "d2" / "eval.json", '{"mean": -3.0, "policy_sha')  # cut off mid-write
    _write(tmp_path / "d3" / "eval.json", {"policy_sha256": SHA, "returns": []})  # no mean
    assert [r.path for r in recorded_evaluations(tmp_path, SHA)] == [
        tmp_path / "d3/eval.json",
        tmp_path / "d1/eval.json",
    ]
    ev, _ = gather(tmp_path, _rec(), None)
    # d1's figures; its success_rate true is not a number (not 100 %)
    assert ev.candidate.evaluation == Evaluation("d1/eval.json", "point", 2, -12.5, 1.0, None)


def test_an_evaluation_count_missing_a_figure_or_with_an_odd_reason_is_read_as_far_as_it_goes() -> None:
    for iv in ({"episodes": 4}, {"total": 10}):
        assert eval_interventions("d1/eval.json", {"interventions": iv}) == (
            None,
            "unreadable in d1/eval.json",
        )
    iv = {
        "mode": "observe",
        "episodes": 4,
        "total": 10,
        "by_reason": {"rate_limit": 8, "position_limit": None},
    }
    assert eval_interventions("d1/eval.json", {"interventions": iv}) == (
        Interventions("d1/eval.json, observe mode", 4, 10, {"rate_limit": 8}),
        "",
    )


def test_a_policy_registered_outside_a_campaign_shows_its_training_reports_figures(tmp_path: Path) -> None:
    report = {
        "evaluation": {
            "env": "point", "episodes": 5, "return_mean": -10.0, "return_std": 1.5, "mean": 99.0, "std": 9.0,
            "success_rate": 0.6, "safety_interventions": {"clip": 3, "estop": 0}, "interventions": 99,
        },
        "disagreement": {"policy_imagined": 0.3, "behavior": 0.06},
        "behavior_shift": 0.8,
    }  # fmt: skip
    ev, _ = gather(tmp_path, _rec(report=report), None)
    c = ev.candidate
    assert c.evaluation == Evaluation("training report", "point", 5, -10.0, 1.5, 0.6)
    # 3 + 0 = 3 interventions in its 5 episodes
    assert (c.eval_interventions, c.eval_interventions_why) == (
        Interventions("training report", 5, 3, {"clip": 3, "estop": 0}),
        "",
    )
    assert (ev.behavior_shift, ev.disagreement_own, ev.disagreement_data) == (0.8, 0.3, 0.06)
    # 0.3 / 0.06 = 5 times more on its own states: flagged
    assert [f.code for f in build_verdict(ev).flags] == ["far_from_data"]
    bare = {"evaluation": {"return_mean": -10.0, "episodes": 5}}
    c = gather(tmp_path, _rec(report=bare), None)[0].candidate
    assert (c.eval_interventions, c.eval_interventions_why) == (
        None,
        "not recorded in the training report's evaluation",
    )


def test_a_collection_is_matched_on_the_full_digest_too(tmp_path: Path) -> None:
    # no bag folder: the reasons cannot be read, the total stands
    _write(tmp_path / "d1" / "collect.json", {"episodes": 3, "interventions": 6, "policy_id": SHA})
    assert recorded_interventions(tmp_path, _rec()) == (
        Interventions("collection of deployment 1", 3, 6, None),
        "",
    )


def test_a_collection_count_that_is_not_a_number_is_no_count(tmp_path: Path) -> None:
    _write(tmp_path / "d1" / "collect.json", '{"episodes": 3, "interventions": NaN, "policy_id": "random"}')
    assert recorded_interventions(tmp_path, RANDOM) == (None, "no intervention count in d1/collect.json")


def test_reasons_from_the_bag_are_shown_only_when_they_add_up_to_the_summarys_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "d1" / "collect.json", {"episodes": 3, "interventions": 6, "policy_id": "random"})
    for bag, shown in (
        ({"clip": 4}, None),
        ({"clip": 8}, None),
        ({"clip": 4, "estop": 2}, {"clip": 4, "estop": 2}),
    ):
        monkeypatch.setattr(evidence, "bag_interventions", lambda _p, b=bag: Counter(b))
        assert recorded_interventions(tmp_path, RANDOM) == (
            Interventions("collection of deployment 1", 3, 6, shown),
            "",
        ), bag


def _signed(tmp_path: Path, payload_note: str = "sim only", **payload: str) -> tuple[PolicyRecord, str]:
    """An approved record whose approval alice signed; her public key in trusted_operators/."""
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    (tmp_path / "trusted_operators").mkdir(parents=True, exist_ok=True)
    (tmp_path / "trusted_operators" / "alice.pub").write_bytes(
        pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    fp = hashlib.sha256(
        pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).hexdigest()
    fields = {
        "artifact_sha256": SHA,
        "manifest_digest": MANIFEST,
        "note": payload_note,
        "operator": "alice",
        "time": T,
    }
    text = json.dumps({**fields, **payload}, sort_keys=True, separators=(",", ":"))
    sig = base64.b64encode(key.sign(text.encode())).decode()
    return _rec("approved", approval=Approval("alice", T, "sim only", sig, text, fp)), fp


def test_a_valid_signature_verifies_and_one_over_other_bytes_does_not(tmp_path: Path) -> None:
    rec, _ = _signed(tmp_path)
    assert signature_state(tmp_path, rec) == (
        "signed by alice at 2026-12-07T08:00:00Z; verified with alice.pub",
        True,
    )
    other, _ = _signed(tmp_path / "other")  # another key's signature over the same payload
    assert rec.approval is not None and other.approval is not None
    forged = dataclasses.replace(
        rec, approval=dataclasses.replace(rec.approval, signature=other.approval.signature)
    )
    assert signature_state(tmp_path, forged) == (
        "INVALID: the signature does not verify with alice's key alice.pub",
        False,
    )


def test_a_signature_without_a_key_in_the_workspace_checks_as_far_as_it_can(tmp_path: Path) -> None:
    rec, fp = _signed(tmp_path)
    (tmp_path / "trusted_operators" / "alice.pub").unlink()
    assert signature_state(tmp_path, rec) == (
        f"signed by alice at 2026-12-07T08:00:00Z (key {fp[:12]}); no public key in this workspace to "
        "verify it (the robot verifies it before running)",
        True,
    )
    # an approved policy with no evaluation: that flag, and no signature flag
    assert [f.code for f in build_verdict(gather(tmp_path, rec, None)[0]).flags] == ["not_evaluated"]


def test_a_payload_naming_another_manifest_or_another_note_is_invalid(tmp_path: Path) -> None:
    rec, _ = _signed(tmp_path, manifest_digest="c3" * 32)
    assert signature_state(tmp_path, rec) == (
        "INVALID: the signed payload names another artifact or manifest",
        False,
    )
    # the registry's row says "sim only"; what alice signed said "not for the robot"
    rec, _ = _signed(tmp_path / "note", payload_note="not for the robot")
    assert signature_state(tmp_path / "note", rec) == (
        "INVALID: the registry's approver, time or note differ from what was signed (signed: alice at "
        "2026-12-07T08:00:00Z, note 'not for the robot')",
        False,
    )


def test_only_a_non_random_approved_or_deployed_policy_needs_a_signature(tmp_path: Path) -> None:
    ev, _ = gather(tmp_path, _rec("approved"), None)
    assert (ev.needs_signature, ev.signature, ev.signature_ok) == (
        True,
        "MISSING: the registry says approved but holds no approval",
        False,
    )
    assert build_verdict(ev).flags[-1] == Flag(
        "signature", "signature: MISSING: the registry says approved but holds no approval"
    )
    ev, _ = gather(tmp_path, RANDOM, None)
    assert (ev.needs_signature, ev.signature, ev.signature_ok) == (False, "not signed", None)


# ---- seen on the way, fixed on 2026-12-07: a JSON NaN/Infinity count in a workspace file
# reached int() and stopped the whole review ("cannot convert float NaN to integer") instead of
# reading the file as far as it goes


def test_a_collection_whose_episode_count_is_not_a_number_reads_as_no_complete_episode(
    tmp_path: Path,
) -> None:
    # as an episode count that is not a number reads today ("episodes": "x" -> 0 episodes)
    _write(tmp_path / "d1" / "collect.json", '{"episodes": NaN, "interventions": 3, "policy_id": "random"}')
    assert recorded_interventions(tmp_path, RANDOM) == (
        Interventions("collection of deployment 1", 0, 3, None),
        "",
    )


def test_an_evaluation_count_whose_total_is_infinite_is_unreadable() -> None:
    # as a total that is missing reads today
    iv = {"episodes": 4, "total": float("inf")}
    assert eval_interventions("d1/eval.json", {"interventions": iv}) == (None, "unreadable in d1/eval.json")


def test_an_evaluation_reason_counted_as_nan_or_past_a_floats_range_is_left_out() -> None:
    # the total (2) stays; only the readable reason is listed; an episode count of 10**400 (an
    # integer literal json reads exactly, too large for a float) is no count either
    data = json.loads(
        '{"interventions": {"episodes": 4, "total": 2, "by_reason": {"ood": NaN, "position_limit": 2}}}'
    )
    assert eval_interventions("d1/eval.json", data) == (
        Interventions("d1/eval.json", 4, 2, {"position_limit": 2}),
        "",
    )
    huge = json.loads('{"interventions": {"episodes": 1' + "0" * 400 + ', "total": 2}}')
    assert eval_interventions("d1/eval.json", huge) == (None, "unreadable in d1/eval.json")


def _selection(ev: Evidence) -> tuple[Any, ...]:
    return (ev.selection_line, ev.selection_warning, ev.twin_vetoes, ev.proposed_snapshot)


def test_a_selection_file_is_the_candidates_only_when_decided_on_its_own_training(tmp_path: Path) -> None:
    own = {"snapshots": [{"name": "trpo-0080", "estimate": 5.0, "chosen": True}], "chosen": "trpo-0080"}
    record = {
        "line": "proposing trpo-0080 with a warning for the operator",
        "warning": "trpo-0080 is proposed although it does not beat the deployed policy",
        "proposed": "trpo-0080",
        "twin": {"vetoed": ["trpo-0040: twin -90.0 is clearly below"]},
        "training": "0" * 64,  # another training's table
    }
    _write(tmp_path / "d1" / "selection.json", record)
    rec = _rec(report={"selection": own})
    assert _selection(gather(tmp_path, rec, None)[0]) == (None, None, [], None)
    # the same record with this training's digest (sha256 of its table, keys sorted) is its decision
    digest = hashlib.sha256(json.dumps(own, sort_keys=True).encode()).hexdigest()
    _write(tmp_path / "d1" / "selection.json", {**record, "training": digest})
    assert _selection(gather(tmp_path, rec, None)[0]) == (
        "proposing trpo-0080 with a warning for the operator",
        "trpo-0080 is proposed although it does not beat the deployed policy",
        ["trpo-0040: twin -90.0 is clearly below"],
        "trpo-0080",
    )


def test_a_selection_file_from_before_the_digest_is_not_shown_for_a_training_without_selection(
    tmp_path: Path,
) -> None:
    # a record from before the training digest (no "training"); the policy was trained without selection
    old = {"line": "proposing trpo-0080", "proposed": "trpo-0080", "offline_chosen": None, "table": []}
    _write(tmp_path / "d1" / "selection.json", old)
    assert _selection(gather(tmp_path, _rec(report={}), None)[0]) == (None, None, [], None)
