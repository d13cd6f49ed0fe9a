"""The harness's --deployments and --seeds reach the campaign config through ``model_copy``, which
does not validate: a value the campaign config refuses (deployments <= 50, seed 0..1,000,000)
must be refused before any run starts, in one line, not found at deployment 64 when
``bremen_robot.campaign.seeds`` raises a ValueError deep inside the run (after hours of work)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark_scripts import plan_harness


@pytest.mark.parametrize(
    "argv, field",
    [
        (["--deployments", "64"], "deployments"),
        (["--deployments", "51"], "deployments"),
        (["--seeds", "-1"], "seed"),
        (["--seeds", "1000001"], "seed"),
    ],
)
def test_a_campaign_value_the_config_refuses_is_refused_before_any_run(
    tmp_path: Path, argv: list[str], field: str
) -> None:
    with pytest.raises(SystemExit) as info:
        harness, jobs, _ = plan_harness(tmp_path, "--methods", "bremen", *argv)
        for job in jobs.values():  # what every run reads its campaign with
            harness.job_campaign(job)
    message = str(info.value)
    assert field in message and "\n" not in message


def test_the_suites_own_values_still_plan(tmp_path: Path) -> None:
    harness, jobs, _ = plan_harness(tmp_path, "--methods", "bremen", "--deployments", "50")
    assert {harness.job_campaign(j).deployments for j in jobs.values()} == {50}
