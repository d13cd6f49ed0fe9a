"""The suite report's verdict mutants that tests/core/test_suite_report.py let through: each
expectation below is worked out by hand from the targets in docs/results.md ("Measuring the
suite"), not read off the code."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.benchmark_scripts import load_benchmark_script
from tests.suite_results import budget_case, suite_result


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    return load_benchmark_script("suite_report.py", "bremen_suite_report_mutants")


def test_a_halfcheetah_campaign_of_four_deployments_leaves_the_target_undecided(suite: ModuleType) -> None:
    # rows 0-4: deployment 5 is one past the last row, not an error
    select = {s: [-280, 1000, 2000, 3000, 4000] for s in ("0", "1", "2")}
    lines = suite.verdict(suite_result("halfcheetah", {"bremen_select": select}, 4))
    assert lines == [
        "no regression (BREMEN + selection): met on every seed (3 of 3 seeds complete)",
        "HalfCheetah >= 4,000 after 5 deployments with selection: undecided (0 seeds reached deployment 5)",
    ]


def test_a_drop_on_an_unfinished_seed_is_already_not_met(suite: ModuleType) -> None:
    # seed 0 stopped after deployment 2: 1,000 -> 500 is below 1,000 - 0.1 * 1,000 = 900
    result = suite_result("hopper", {"bremen": {"0": [10, 1000, 500], "1": [10, 1000]}}, 3)
    assert suite.verdict(result) == [
        "no regression (BREMEN): NOT met (0 of 2 seeds complete): BREMEN seed 0: deployment 2 500 after 1,000"
    ]


def test_a_deployment_not_compared_hides_no_later_shortfall(suite: ModuleType) -> None:
    # TD3+BC seed 2 has no return at deployment 2 (two seeds there: not compared); at
    # deployment 3 selection's 300 is behind TD3+BC's 400
    select = {s: [0, 100, 200, 300] for s in ("0", "1", "2")}
    td3bc = {"0": [0, 100, 200, 400], "1": [0, 100, 200, 400], "2": [0, 100, None, 400]}
    lines = suite.verdict(suite_result("hopper", {"bremen_select": select, "td3bc": td3bc}, 3))
    assert lines[-1] == "selection >= TD3+BC at every deployment: NOT met: deployment 3: 300 < 400"


def test_a_deployment_without_td3bc_time_skips_only_itself(suite: ModuleType) -> None:
    result = budget_case((None, 700.0))  # BREMEN's mean: 400 s at deployment 1, 900 s at 2
    rows = result["per_deployment"]
    assert (
        suite.budget_line(result) == "TD3+BC's training time >= BREMEN's: NOT at deployment 2: 700 s < 900 s"
    )
    rows[2]["td3bc"]["train_s"]["mean"] = 950.0  # one deployment compared, and it is fair
    assert suite.budget_line(result) == "TD3+BC's training time >= BREMEN's: at every deployment compared (1)"
