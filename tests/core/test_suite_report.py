"""Issue 16's suite verdicts, on hand-built results whose answers are worked out by hand."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmark_scripts import load_benchmark_script
from tests.suite_results import budget_case, suite_result, with_train_seconds


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    return load_benchmark_script("suite_report.py", "bremen_suite_report")


def test_the_floor_is_ten_percent_of_the_predecessors_size_also_below_zero(suite: ModuleType) -> None:
    assert suite.allowed_floor(3000.0, -280.0) == pytest.approx(2700.0)
    assert suite.allowed_floor(-280.0, -280.0) == pytest.approx(-308.0)
    # near zero, the random policy's scale: -1.4 may fall to -1.4 - 0.1 * 254 = -26.8
    assert suite.allowed_floor(-1.4, -254.0) == pytest.approx(-26.8)


def test_a_drop_of_more_than_ten_percent_is_a_regression_and_a_smaller_one_is_not(suite: ModuleType) -> None:
    # seed 0: 3,308 -> 2,525 is 23.7 % down; seed 1: 3,000 -> 2,750 is 8.3 % down (allowed)
    result = suite_result(
        "halfcheetah",
        {
            "bremen": {
                "0": [-280, 1800, 3308, 2525],
                "1": [-300, 1700, 3000, 2750],
                "2": [-290, -310, 100, 200],
            }
        },
        3,
    )
    found = suite.regressions(result, "bremen")
    assert [(r.seed, r.deployment, r.before, r.after) for r in found] == [("0", 3, 3308.0, 2525.0)]
    # seed 2: -290 -> -310 is 6.9 % of |-290| down: allowed, not a regression


def test_a_policy_stuck_near_zero_does_not_regress_by_rounding(suite: ModuleType) -> None:
    result = suite_result("halfcheetah", {"bc": {"0": [-254, -1.4, -1.8, -2.0]}}, 3)
    assert suite.regressions(result, "bc") == []


def test_the_verdict_names_each_unmet_target(suite: ModuleType) -> None:
    select = {"0": [-280, 2000, 3000, 3500, 3800, 3900], "1": [-280, 2100, 2900, 3600, 3700, 4000]}
    select["2"] = [-280, 1900, 3100, 3400, 3900, 4100]  # mean at 5: 4,000.0 -> target met
    td3bc = {s: [-280, 2200, 2800, 3000, 3100, 3200] for s in ("0", "1", "2")}  # above select at 1
    lines = suite.verdict(suite_result("halfcheetah", {"bremen_select": select, "td3bc": td3bc}, 5))
    assert lines[0] == "no regression (BREMEN + selection): met on every seed (3 of 3 seeds complete)"
    assert lines[1] == "no regression (recursive TD3+BC): met on every seed (3 of 3 seeds complete)"
    assert lines[2] == "HalfCheetah >= 4,000 after 5 deployments with selection: met (4,000, 3 seeds)"
    assert lines[3] == "selection >= TD3+BC at every deployment: NOT met: deployment 1: 2,000 < 2,200"


def test_missing_seeds_leave_targets_undecided_never_met(suite: ModuleType) -> None:
    select = {"0": [-280, 2000, 3000], "1": [-280, 2100]}
    lines = suite.verdict(suite_result("hopper", {"bremen_select": select, "td3bc": {"0": [1, 2, 3]}}, 5))
    assert lines[0] == "no regression (BREMEN + selection): none so far, undecided (0 of 2 seeds complete)"
    assert lines[-1] == "selection >= TD3+BC at every deployment: undecided (0 of 5 compared)"
    assert not any("HalfCheetah" in line for line in lines)


def test_the_markdown_table_shows_mean_std_per_seed_and_time(suite: ModuleType) -> None:
    result = suite_result("ant", {"bremen": {"0": [10.0, 1000.0], "1": [20.0, 1200.0]}}, 1)
    text = suite.markdown_table(result)
    # mean 1,100, sample std sqrt(((100)^2 + (100)^2) / 1) = 141.4
    assert "| 1 | 1,000 | 1,100 ± 141 (1,000 / 1,200; 100 s) |" in text


def test_a_seed_that_went_on_with_different_data_is_noted(suite: ModuleType) -> None:
    result = suite_result("hopper", {"bremen": {"0": [0.0, 1.0, 2.0]}}, 2)
    assert "Notes:" not in suite.markdown_table(result)
    result["methods"]["bremen"]["seeds"]["0"]["recollected_differ"] = ["d1/data.npz"]
    assert (
        "- BREMEN seed 0: went on after a session with re-collected data that differ from the "
        "original (d1/data.npz;" in suite.markdown_table(result)
    )


def test_a_robot_without_results_is_listed_with_its_command_not_an_error(
    suite: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    done = tmp_path / "hopper-cpu.json"
    done.write_text(json.dumps(suite_result("hopper", {"bremen": {"0": [0.0, 1.0]}}, 1)))
    md = tmp_path / "suite.md"
    no_runs = ["--runs", str(tmp_path / "no-runs")]  # not this machine's benchmarks/runs
    assert suite.main([str(done), str(tmp_path / "ant-cpu.json"), "--markdown", str(md), *no_runs]) == 0
    text = md.read_text()
    assert "### `ant-cpu`: no results yet" in text
    assert (
        "- `python benchmarks/reproduce.py --campaign ant-cpu --seeds 0 1 2 "
        "--methods bremen bremen_select bc td3bc --jobs 2`" in text
    )
    assert "### hopper (`hopper-cpu`" in text
    (tmp_path / "broken.json").write_text("{")
    assert suite.main([str(tmp_path / "broken.json")]) == 2
    # another script's JSON (selection-study-*.json sits beside the results): one line, no traceback
    capsys.readouterr()
    for other in ('{"pairs": []}', "[1, 2]"):
        (tmp_path / "study.json").write_text(other)
        assert suite.main([str(done), str(tmp_path / "study.json"), *no_runs]) == 2
        out = capsys.readouterr().out
        assert out.endswith(
            "study.json: not a results file of benchmarks/reproduce.py (no campaign, deployments, "
            "methods, per_deployment); pass benchmarks/results/<campaign>.json files\n"
        )


def test_the_report_says_where_td3bc_trained_less_than_bremen(suite: ModuleType) -> None:
    result = budget_case((450.0, 700.0))  # BREMEN's mean: 400 s at deployment 1, 900 s at 2
    rows = result["per_deployment"]
    assert (
        suite.budget_line(result) == "TD3+BC's training time >= BREMEN's: NOT at deployment 2: 700 s < 900 s"
    )
    assert suite.budget_line(result) in suite.verdict(result)
    rows[2]["td3bc"]["train_s"]["mean"] = 901.0
    assert suite.budget_line(result) == "TD3+BC's training time >= BREMEN's: at every deployment compared (2)"
    rows[2]["td3bc"]["train_s"]["mean"] = 900.0  # equal time is a fair budget
    assert suite.budget_line(result) == "TD3+BC's training time >= BREMEN's: at every deployment compared (2)"
    result["methods"]["bremen"]["seeds"]["1"]["complete"] = False
    assert suite.budget_line(result) == (
        "TD3+BC's training time >= BREMEN's: undecided (2 of 3 BREMEN seeds are complete in its results file)"
    )


def test_the_budget_is_the_longest_training_with_subnormals_flushed(suite: ModuleType) -> None:
    """Times from before the trainer flushed subnormals (10-20x inflated) give way, deployment
    by deployment, to the longest BREMEN or selection training measured since."""
    done = [0.0, 1.0, 2.0]
    three = {"0": done, "1": done, "2": done}
    result = suite_result("walker2d", {"bremen": three, "bremen_select": three, "td3bc": {"0": done}}, 2)
    old = {"0": [None, 3000.0, 5000.0], "1": [None, 3000.0, 5000.0], "2": [None, 3000.0, 5000.0]}
    with_train_seconds(result, "bremen", old)
    with_train_seconds(result, "bremen_select", old)
    with_train_seconds(result, "bremen_select", {"1": [None, 300.0], "2": [None, 350.0, 420.0]}, flushed=True)
    rows = result["per_deployment"]
    rows[1]["td3bc"]["train_s"]["mean"], rows[2]["td3bc"]["train_s"]["mean"] = 360.0, 4000.0
    # deployment 1: max(300, 350) = 350, met by 360; deployment 2: only 420 was flushed
    assert suite.budget_line(result) == "TD3+BC's training time >= BREMEN's: at every deployment compared (2)"
    rows[1]["td3bc"]["train_s"]["mean"] = 340.0
    assert (
        suite.budget_line(result) == "TD3+BC's training time >= BREMEN's: NOT at deployment 1: 340 s < 350 s"
    )
    result["methods"]["bremen_select"]["seeds"]["2"]["train_flushed"] = [False, True, False]
    rows[1]["td3bc"]["train_s"]["mean"] = 360.0  # deployment 2 falls back to BREMEN's mean, 5,000
    assert (
        suite.budget_line(result)
        == "TD3+BC's training time >= BREMEN's: NOT at deployment 2: 4,000 s < 5,000 s"
    )
    result["methods"]["bremen_select"]["seeds"]["0"]["complete"] = False
    assert suite.budget_line(result) == (
        "TD3+BC's training time >= BREMEN's: undecided "
        "(2 of 3 BREMEN + selection seeds are complete in its results file)"
    )


def test_points_over_fewer_seeds_are_hollow_and_the_label_gives_the_range(suite: ModuleType) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = suite_result("hopper", {"bremen": {"0": [0.0, 1.0, 2.0], "1": [0.0, 3.0]}}, 2)
    fig, ax = plt.subplots()
    suite.draw_method_curves(ax, result)
    assert [t.get_text() for t in ax.legend().get_texts()] == ["BREMEN (n=1-2; hollow: fewer)"]
    hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [2.0]  # deployment 2: seed 0 only
    plt.close(fig)
    full = suite_result("hopper", {"bremen": {"0": [0.0, 1.0], "1": [0.0, 3.0]}}, 1)
    fig, ax = plt.subplots()
    suite.draw_method_curves(ax, full)
    assert [t.get_text() for t in ax.legend().get_texts()] == ["BREMEN (n=2)"]
    assert not [line for line in ax.get_lines() if line.get_markerfacecolor() == "white"]
    plt.close(fig)


def test_regression_edges_worked_by_hand(suite: ModuleType) -> None:
    # below zero the predecessor's own size counts when it is the larger: -500 may fall to -550
    assert suite.allowed_floor(-500.0, -280.0) == pytest.approx(-550.0)
    curves = {
        "0": [-280, -400, 1000],  # deployment 1 falls below the random policy's floor (-308)
        "1": [-280, 3000, 2700],  # exactly at the floor (3,000 - 300): not a regression
        "2": [-280, -540, 500],  # after the random policy (-280) the floor is -308: -540 is below
        "3": [-280, 1000, None, 2000, 100],  # a gap hides no later drop: 2,000 -> 100 is one
    }
    found = suite.regressions(suite_result("halfcheetah", {"bremen": curves}, 4), "bremen")
    assert [(r.seed, r.deployment, r.before, r.after) for r in found] == [
        ("0", 1, -280.0, -400.0),
        ("2", 1, -280.0, -540.0),
        ("3", 4, 2000.0, 100.0),
    ]


def test_the_verdict_needs_every_seed_and_every_deployment_before_it_says_met(suite: ModuleType) -> None:
    up = [-280, 2000, 3000, 3500, 3800, 4100]
    # two of three seeds complete, no drop: undecided, not met; two seeds at 5 above 4,000: undecided
    select = {"0": up, "1": up, "2": up[:3]}
    td3bc = {s: [-280, 2000, 2900, 3500, 3700, 4200] for s in ("0", "1", "2")}
    lines = suite.verdict(suite_result("halfcheetah", {"bremen_select": select, "td3bc": td3bc}, 5))
    assert lines[0] == "no regression (BREMEN + selection): none so far, undecided (2 of 3 seeds complete)"
    assert lines[2] == (
        "HalfCheetah >= 4,000 after 5 deployments with selection: undecided (2 seeds reached deployment 5)"
    )
    # equal means are not behind; deployments 3-5 have two selection seeds: 2 of 5 compared
    assert lines[3] == "selection >= TD3+BC at every deployment: undecided (2 of 5 compared)"
    # every deployment compared and only the last one behind
    select = {s: up for s in ("0", "1", "2")}
    lines = suite.verdict(suite_result("halfcheetah", {"bremen_select": select, "td3bc": td3bc}, 5))
    assert lines[3] == "selection >= TD3+BC at every deployment: NOT met: deployment 5: 4,100 < 4,200"
    # TD3+BC with fewer seeds at a deployment is not compared there
    short = {**td3bc, "2": td3bc["2"][:4]}
    lines = suite.verdict(suite_result("halfcheetah", {"bremen_select": select, "td3bc": short}, 5))
    assert lines[3] == "selection >= TD3+BC at every deployment: undecided (3 of 5 compared)"
    td3bc_equal = {s: up for s in ("0", "1", "2")}
    lines = suite.verdict(suite_result("halfcheetah", {"bremen_select": select, "td3bc": td3bc_equal}, 5))
    assert lines[3] == "selection >= TD3+BC at every deployment: met"
    one_short = {**td3bc_equal, "2": up[:5]}  # deployment 5 has two TD3+BC seeds: 4 of 5 compared
    lines = suite.verdict(suite_result("halfcheetah", {"bremen_select": select, "td3bc": one_short}, 5))
    assert lines[3] == "selection >= TD3+BC at every deployment: undecided (4 of 5 compared)"
