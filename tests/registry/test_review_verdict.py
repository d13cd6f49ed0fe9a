"""The verdict from hand-built evidence: each kind of bad candidate raises exactly its flag.

Figures and expected flags are written by hand here, never computed by the code under test.
"""

from __future__ import annotations

import dataclasses

from bremen_robot.registry.verdict import (
    Evaluation,
    Evidence,
    Interventions,
    PolicyEvidence,
    build_verdict,
    verdict_lines,
)

DEPLOYED = PolicyEvidence(
    "990abbb723fa",
    "deployed",
    Evaluation("d2/eval.json", "sim:panda/mujoco", 20, -6.0, 1.8, 0.65),
    Interventions("collection of deployment 3", 30, 15, {"rate_limit": 12, "joint_limit": 3}),
)
# a good candidate: better return, few interventions, close to its data, models agree
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


def _cand(**kw: object) -> PolicyEvidence:
    return dataclasses.replace(GOOD.candidate, **kw)  # type: ignore[arg-type]


def _codes(ev: Evidence) -> list[str]:
    return [f.code for f in build_verdict(ev).flags]


def test_a_good_candidate_raises_no_flag() -> None:
    v = build_verdict(GOOD)
    assert v.flags == [] and v.ok
    lines = verdict_lines(v)
    assert lines[0] == "VERDICT: candidate 9e4edb2bd2f5 vs deployed 990abbb723fa"
    text = "\n".join(lines)
    assert "candidate: -5.3 ± 1.6 (20 episodes, d3/eval.json)" in text
    assert "deployed:  -6.0 ± 1.8 (20 episodes, d2/eval.json)" in text
    assert "candidate: 80 %" in text and "deployed:  65 %" in text
    # 15 interventions in 30 episodes: 0.50 per episode, 12/30 = 0.40 rate_limit, 3/30 = 0.10 joint_limit
    assert "0.50 per episode (joint_limit 0.10, rate_limit 0.40; 15 in 30 episodes" in text
    assert "the collection added N(0, 0.1²)" in text
    assert "no red flag on the recorded evidence" in text


def test_a_regressing_candidate_raises_only_the_regression_flag() -> None:
    # -9.0 is 3.0 below the deployed -6.0, more than its 1.8 std
    ev = dataclasses.replace(
        GOOD, candidate=_cand(evaluation=Evaluation("d3/eval.json", "sim", 20, -9.0, 2.0, 0.6))
    )
    assert _codes(ev) == ["regressing_return"]
    assert "-9.0 vs the deployed policy's -6.0" in build_verdict(ev).flags[0].text


def test_a_return_drop_within_the_spread_is_not_a_regression() -> None:
    # -7.5 is 1.5 below -6.0: within the deployed policy's 1.8 std; success 0.6 vs 0.65: within 0.2
    ev = dataclasses.replace(
        GOOD, candidate=_cand(evaluation=Evaluation("d3/eval.json", "sim", 20, -7.5, 2.0, 0.6))
    )
    assert _codes(ev) == []


def test_a_success_rate_drop_is_a_regression() -> None:
    # same return, success 30 % vs 65 %: 35 points down
    ev = dataclasses.replace(
        GOOD, candidate=_cand(evaluation=Evaluation("d3/eval.json", "sim", 20, -6.0, 1.0, 0.30))
    )
    assert _codes(ev) == ["regressing_return"]
    assert "success rate regresses: 30 % vs the deployed policy's 65 %" in build_verdict(ev).flags[0].text


def test_many_interventions_raise_only_that_flag() -> None:
    # 60 in 20 episodes: 3 per episode
    ev = dataclasses.replace(
        GOOD, candidate=_cand(interventions=Interventions("collection of deployment 4", 20, 60, {"clip": 60}))
    )
    assert _codes(ev) == ["many_interventions"]
    assert "intervened 3.0 times per episode" in build_verdict(ev).flags[0].text


def test_far_from_its_data_raises_only_that_flag() -> None:
    assert _codes(dataclasses.replace(GOOD, behavior_shift=1.7)) == ["far_from_data"]
    # the models disagree 0.3 / 0.06 = 5 times more on its own states than on the data
    ev = dataclasses.replace(GOOD, disagreement_own=0.3)
    assert _codes(ev) == ["far_from_data"]
    assert "disagree 5.0 times more on its own states" in build_verdict(ev).flags[0].text


def test_twin_veto_selection_warning_and_signature_flags() -> None:
    vetoed = dataclasses.replace(
        GOOD, twin_vetoes=["trpo-0080: twin -20.0 is clearly below the deployed policy's -6.0"]
    )
    assert _codes(vetoed) == ["twin_veto"]
    other = dataclasses.replace(GOOD, twin_vetoes=["trpo-0040: twin -20.0 is clearly below"])
    assert _codes(other) == []  # a veto of another snapshot is not this candidate's
    warned = dataclasses.replace(GOOD, selection_warning="trpo-0080 is proposed although it does not beat")
    assert _codes(warned) == ["selection_warning"]
    unsigned = dataclasses.replace(GOOD, needs_signature=True, signature_ok=False, signature="MISSING")
    assert _codes(unsigned) == ["signature"]
    signed = dataclasses.replace(GOOD, needs_signature=True, signature_ok=True, signature="signed by alice")
    assert _codes(signed) == []


def test_no_evaluation_and_no_deployed_policy() -> None:
    ev = dataclasses.replace(GOOD, candidate=_cand(evaluation=None, interventions=None), deployed=None)
    v = build_verdict(ev)
    assert [f.code for f in v.flags] == ["not_evaluated"]
    text = "\n".join(verdict_lines(v))
    assert "vs deployed (none yet)" in text
    assert "candidate: not evaluated" in text and "deployed:  no policy deployed yet" in text


def test_many_interventions_in_the_evaluation_raise_the_flag_and_show_side_by_side() -> None:
    # 50 in 20 episodes: 2.5 per episode (rate_limit 40/20 = 2.00, position_limit 10/20 = 0.50)
    cand_iv = Interventions("d3/eval.json, observe mode", 20, 50, {"rate_limit": 40, "position_limit": 10})
    # the deployed policy's own evaluation: 4 in 20 = 0.20 per episode
    dep = dataclasses.replace(
        DEPLOYED, eval_interventions=Interventions("d2/eval.json, observe mode", 20, 4, {"rate_limit": 4})
    )
    ev = dataclasses.replace(GOOD, candidate=_cand(eval_interventions=cand_iv), deployed=dep)
    v = build_verdict(ev)
    assert [f.code for f in v.flags] == ["many_interventions"]
    assert v.flags[0].text == (
        "the safety shield would intervene 2.5 times per episode in its simulation evaluation "
        "(more than 1): the policy leans on the shield"
    )
    row = next(r for r in v.rows if r.label == "safety interventions in evaluation")
    assert row.candidate == (
        "2.50 per episode (position_limit 0.50, rate_limit 2.00; 50 in 20 episodes, "
        "d3/eval.json, observe mode)"
    )
    assert row.deployed == "0.20 per episode (rate_limit 0.20; 4 in 20 episodes, d2/eval.json, observe mode)"
    col = next(r for r in v.rows if r.label == "safety interventions in collection")
    assert col.deployed.startswith("0.50 per episode (joint_limit 0.10, rate_limit 0.40; 15 in 30 episodes")
    assert any("observe mode: counted, not applied" in n for n in v.notes)


def test_few_interventions_in_the_evaluation_raise_no_flag() -> None:
    # 20 in 20 episodes: exactly 1 per episode, not more than 1
    ev = dataclasses.replace(
        GOOD, candidate=_cand(eval_interventions=Interventions("d3/eval.json", 20, 20, {"rate_limit": 20}))
    )
    assert _codes(ev) == []


def test_an_evaluation_without_the_count_says_so() -> None:
    why = "not recorded in this evaluation (d3/eval.json predates the count)"
    ev = dataclasses.replace(GOOD, candidate=_cand(eval_interventions=None, eval_interventions_why=why))
    row = next(r for r in build_verdict(ev).rows if r.label == "safety interventions in evaluation")
    assert row.candidate == why
    assert row.deployed == "not recorded in this evaluation"  # DEPLOYED's evaluation carries no count


def test_a_deployed_policy_without_an_evaluation_is_no_passed_comparison() -> None:
    """The candidate's return could not be compared: that must not read as 'no red flag'."""
    ev = dataclasses.replace(GOOD, deployed=dataclasses.replace(DEPLOYED, evaluation=None))
    v = build_verdict(ev)
    assert [f.code for f in v.flags] == ["not_evaluated"]
    assert v.flags[0].text == (
        "the deployed policy 990abbb723fa has no recorded simulation evaluation: "
        "the candidate's return was not compared"
    )


def test_a_return_that_is_not_a_number_is_a_red_flag() -> None:
    # a simulation that blew up: NaN returns, so NaN mean and std (np.mean/np.std of a NaN list)
    nan = float("nan")
    cand = dataclasses.replace(
        GOOD, candidate=_cand(evaluation=Evaluation("d3/eval.json", "sim", 20, nan, nan, 0.8))
    )
    assert _codes(cand) == ["not_evaluated"]
    assert build_verdict(cand).flags[0].text == (
        "the candidate's simulated return in d3/eval.json is not a finite number (nan): nothing to compare"
    )
    dep = dataclasses.replace(
        GOOD,
        deployed=dataclasses.replace(
            DEPLOYED, evaluation=Evaluation("d2/eval.json", "sim", 20, nan, nan, 0.65)
        ),
    )
    assert _codes(dep) == ["not_evaluated"]
    assert build_verdict(dep).flags[0].text == (
        "the deployed policy's simulated return in d2/eval.json is not a finite number (nan, std nan): "
        "nothing to compare"
    )


def test_a_success_rate_exactly_20_points_lower_is_not_more_than_20_points() -> None:
    # 20 episodes, 4 fewer successes = exactly 20 points: the docs say "more than 20 points", so
    # no flag, whichever pair it is (in floating point 0.65 - 0.45 is 0.19999999999999996 but
    # 0.8 - 0.6 is 0.20000000000000007)
    for dep_rate, cand_rate in ((0.65, 0.45), (0.8, 0.6), (0.9, 0.7)):
        dep = dataclasses.replace(
            DEPLOYED, evaluation=Evaluation("d2/eval.json", "sim", 20, -6.0, 1.8, dep_rate)
        )
        cand = _cand(evaluation=Evaluation("d3/eval.json", "sim", 20, -6.0, 1.0, cand_rate))
        assert _codes(dataclasses.replace(GOOD, candidate=cand, deployed=dep)) == [], (dep_rate, cand_rate)
    # 8/20 = 40 % against 65 %: 25 points lower
    lower = Evaluation("d3/eval.json", "sim", 20, -6.0, 1.0, 0.40)
    assert _codes(dataclasses.replace(GOOD, candidate=_cand(evaluation=lower))) == ["regressing_return"]


def test_a_behavior_shift_or_disagreement_that_is_not_a_number_is_a_red_flag() -> None:
    nan = float("nan")
    shift = dataclasses.replace(GOOD, behavior_shift=nan)
    v = build_verdict(shift)
    assert [f.code for f in v.flags] == ["far_from_data"]
    assert v.flags[0].text == "far from its data: its behavior shift is not a finite number (nan)"
    row = next(r for r in v.rows if r.label == "behavior shift (collection-noise std)")
    assert row.candidate == "nan"  # not "-", which reads as "not computed"
    own = dataclasses.replace(GOOD, disagreement_own=nan)
    v = build_verdict(own)
    assert [f.code for f in v.flags] == ["far_from_data"]
    assert v.flags[0].text == (
        "far from its data: the models' disagreement is not a finite number (own states nan, data 0.06)"
    )


def test_many_interventions_without_a_complete_episode_raise_the_flag() -> None:
    # 40 interventions and no complete episode: the one partial episode had 40, far more than 1
    ev = dataclasses.replace(
        GOOD, candidate=_cand(interventions=Interventions("collection of deployment 4", 0, 40, {"clip": 40}))
    )
    v = build_verdict(ev)
    assert [f.code for f in v.flags] == ["many_interventions"]
    assert v.flags[0].text == (
        "the safety shield intervened 40 times in its collection of deployment 4 without a complete "
        "episode (more than 1): the policy leans on the shield"
    )
    # one intervention in a partial episode is not more than one per episode
    one = dataclasses.replace(
        GOOD, candidate=_cand(interventions=Interventions("collection of deployment 4", 0, 1, {"clip": 1}))
    )
    assert _codes(one) == []


def test_a_flag_says_what_it_means_and_that_it_does_not_block_approval() -> None:
    """The quickstart's operator saw many_interventions on a candidate that cut the shield's
    corrections from 285 to 2.1 per episode, with nothing saying the count is absolute, nor
    whether a flag stops 'bremen approve' (it does not)."""
    # 42 in 20 episodes: 2.1 per episode; the deployed (random) policy 5707 in 20: 285.35
    cand_iv = Interventions("d1/eval.json, observe mode", 20, 42, {"rate_limit": 42})
    dep = dataclasses.replace(
        DEPLOYED,
        eval_interventions=Interventions("d1/eval_random.json, observe mode", 20, 5707, {"rate_limit": 5707}),
    )
    ev = dataclasses.replace(
        GOOD, candidate=_cand(eval_interventions=cand_iv), deployed=dep, behavior_shift=1.4
    )
    lines = verdict_lines(build_verdict(ev))
    flagged = lines[lines.index(next(x for x in lines if x.startswith("  RED FLAG"))) :]
    assert flagged == [
        "  RED FLAG (many_interventions): the safety shield would intervene 2.1 times per episode in its "
        "simulation evaluation (more than 1): the policy leans on the shield",
        "    means: more than 1 shield intervention per episode on average, each joint and reason code of a "
        "step counted once; a fixed count, whatever the deployed policy's (a candidate that cuts it "
        "tenfold is still flagged) or the episode's length: compare the rows above and the reason codes",
        "  RED FLAG (far_from_data): far from its data: its actions moved 1.40 collection-noise std from "
        "the deployed behavior",
        "    means: the candidate's mean action is more than 1 collection-noise std from the deployed "
        "behavior, or the models disagree more than 3x more on its own imagined states than on the data: "
        "its figures rest on states the data barely covers. A candidate that improves much on the "
        "deployed policy usually moves this far; check it in simulation (or a shadow run) before the robot",
        "  red flags are advisory: 'bremen approve' signs a flagged candidate too; each says what to check "
        "before signing (docs/review.md, 'Red flags')",
    ]
    assert "red flags are advisory" not in "\n".join(verdict_lines(build_verdict(GOOD)))


def test_every_flag_code_has_its_meaning_on_the_page() -> None:
    from bremen_robot.registry.verdict import as_dict

    ev = dataclasses.replace(GOOD, candidate=_cand(evaluation=None), behavior_shift=float("nan"))
    flags = as_dict(build_verdict(ev))["flags"]
    assert [(f["code"], f["meaning"]) for f in flags] == [
        ("not_evaluated", "a simulated return to compare is missing or not a finite number"),
        (
            "far_from_data",
            "the candidate's mean action is more than 1 collection-noise std from the deployed behavior, "
            "or the models disagree more than 3x more on its own imagined states than on the data: its "
            "figures rest on states the data barely covers. A candidate that improves much on the "
            "deployed policy usually moves this far; check it in simulation (or a shadow run) before the "
            "robot",
        ),
    ]
