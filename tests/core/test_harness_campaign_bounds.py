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


def test_a_workspace_from_before_the_seed_layout_under_a_spaced_campaign_names_the_setting(
    tmp_path: Path,
) -> None:
    """A harness run of a campaign that does not name ``seed_layout`` (every preset but the suite's
    -cpu ones, any campaign YAML of the user's) made before 2026-12-07 was collected sliding; the
    harness refuses it before Campaign.run can, so its line must say how to resume it, as the
    campaign's own refusal does."""
    import sys

    from bremen_robot.campaign.workspace import write_json_atomic

    harness, jobs, _ = plan_harness(
        tmp_path, "--methods", "bremen", "--campaign-override", "seed_layout=spaced"
    )
    job = jobs[("bremen", 0)]
    old = harness.job_record(job)
    del old["campaign"]["seed_layout"]  # a harness.json from before the field
    write_json_atomic(job.workspace / "harness.json", old)
    with pytest.raises(SystemExit) as info:
        sys.modules["reproduce_common"]._guard(job)
    message = str(info.value)
    assert "seed_layout=sliding" in message and "\n" not in message
