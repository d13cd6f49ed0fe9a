"""The reproduction harness mixes a workspace into a result only if it ran with the same settings."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.config.train import load_train_config
from tests.benchmark_scripts import aggregate_only, plan_harness, reproduce_harness, write_harness_workspace


def _record(**train_update: Any) -> dict[str, Any]:
    campaign = load_campaign_config("halfcheetah-cpu")
    train = load_train_config(campaign.train).model_copy(update=train_update)
    return {
        "method": "bremen",
        "campaign": campaign.model_dump(mode="json"),
        "train": train.model_dump(mode="json"),
    }


def test_an_edited_description_keeps_the_workspace() -> None:
    harness = reproduce_harness()
    ran = _record(description="the wording the run was made with", expected_time="an hour")
    assert harness.same_settings(ran, _record())


def test_a_record_from_another_checkout_is_the_same_run() -> None:
    """Results files are committed and read in other checkouts: the config paths a record holds
    compare by their place in the checkout, not by where it was."""
    harness = reproduce_harness()
    here = _record()
    there = {**here, "campaign": dict(here["campaign"])}
    for key in ("robot", "collect"):
        there["campaign"][key] = (
            "/home/someone/bremen-robot/configs/" + here["campaign"][key].rsplit("/configs/", 1)[1]
        )
    assert there["campaign"]["robot"] != here["campaign"]["robot"]
    assert harness.same_settings(there, here)
    there["campaign"]["robot"] = there["campaign"]["robot"].replace("halfcheetah.yaml", "hopper.yaml")
    assert not harness.same_settings(there, here)


def test_two_records_from_before_a_new_config_field_still_match() -> None:
    """park_runs.py compares a workspace's harness.json with the results file's stored copy: both
    can predate a field added since (selection.pick, 2026-12-06), and must still match."""
    harness = reproduce_harness()
    old = _record()
    del old["train"]["selection"]["pick"]
    assert harness.same_settings(
        old, {**old, "train": {**old["train"], "selection": dict(old["train"]["selection"])}}
    )
    assert harness.same_settings(old, _record()) and harness.same_settings(_record(), old)
    changed = {
        **old,
        "train": {**old["train"], "selection": {**old["train"]["selection"], "pick": "earliest"}},
    }
    assert not harness.same_settings(old, changed) and not harness.same_settings(changed, old)


def test_a_record_from_before_the_seed_layout_is_a_sliding_run() -> None:
    """Every run made before ``seed_layout`` (2026-12-07) was collected with the sliding seeds:
    its harness.json, without the field, is the same run as the suite preset that names it
    (``halfcheetah-cpu``) and not one with the spaced seeds, whichever side is old."""
    harness = reproduce_harness()
    now = _record()
    assert now["campaign"]["seed_layout"] == "sliding"
    old = {**now, "campaign": {k: v for k, v in now["campaign"].items() if k != "seed_layout"}}
    assert harness.same_settings(old, now) and harness.same_settings(now, old)
    spaced = {**now, "campaign": {**now["campaign"], "seed_layout": "spaced"}}
    assert not harness.same_settings(old, spaced) and not harness.same_settings(spaced, old)


def test_a_changed_setting_orphans_the_workspace() -> None:
    harness = reproduce_harness()
    preset = load_train_config("halfcheetah-cpu")
    flipped = preset.ensemble.model_copy(update={"warm_start": not preset.ensemble.warm_start})
    assert not harness.same_settings(_record(ensemble=flipped), _record())
    assert not harness.same_settings(None, _record())
    assert not harness.same_settings({**_record(), "campaign": None}, _record())  # no config: no match
    assert not harness.same_settings(_record(), {"method": "bremen"})


def test_bremen_select_trains_with_selection_and_checks_in_the_pybullet_twin(tmp_path: Path) -> None:
    harness, jobs, trains = plan_harness(tmp_path, "--methods", "bremen", "bremen_select", "bc", "td3bc")
    job = jobs[("bremen_select", 1)]
    assert job.workspace == tmp_path / "bremen_select" / "seed1"
    train, campaign = harness.job_train(job), harness.job_campaign(job)
    assert train.selection.enabled is True
    assert train.trpo.iterations == load_train_config("halfcheetah-cpu").trpo.iterations
    assert campaign.selection.twin is True
    assert campaign.selection.data_engine == "mujoco"  # the harness collects in MuJoCo
    assert campaign.seed == 1
    assert trains["bremen_select"]["campaign_selection"]["twin_engine"] == "pybullet"
    assert harness.LABELS["bremen_select"] == "BREMEN + selection"


def test_the_other_methods_run_as_before(tmp_path: Path) -> None:
    harness, jobs, trains = plan_harness(tmp_path, "--methods", "bremen", "bremen_select", "bc", "td3bc")
    assert harness.job_record(jobs[("bremen", 0)]) == _record()  # the presets, untouched
    bc = harness.job_record(jobs[("bc", 0)])
    assert bc["campaign"] == load_campaign_config("halfcheetah-cpu-bc").model_dump(mode="json")
    assert bc["train"] == load_train_config("halfcheetah-cpu-bc").model_dump(mode="json")
    td3bc = harness.job_record(jobs[("td3bc", 0)])
    assert td3bc["campaign"] == _record()["campaign"]
    assert td3bc["td3bc"]["steps"] == 50_000
    assert "selection" not in trains["bremen"] and "selection" not in trains["bc"]


def test_bremen_select_keeps_near_the_data_unless_told_otherwise(tmp_path: Path) -> None:
    harness, jobs, _ = plan_harness(tmp_path, "--methods", "bremen", "bremen_select")
    assert harness.job_train(jobs[("bremen_select", 0)]).selection.max_action_shift == 0.6
    assert harness.job_train(jobs[("bremen", 0)]).selection.max_action_shift is None
    # the rule of the runs made before the limit: a workspace of theirs is the same run again
    harness_old, jobs_old, _ = plan_harness(
        tmp_path, "--methods", "bremen_select", "--train-override", "selection.max_action_shift=null"
    )
    old = harness_old.job_record(jobs_old[("bremen_select", 0)])
    assert old["train"]["selection"]["max_action_shift"] is None
    assert old["train"]["selection"]["enabled"] is True
    assert not harness.same_settings(old, harness.job_record(jobs[("bremen_select", 0)]))
    # a selection setting is inert with selection off: bremen's record (its workspace) is unchanged
    harness_b, jobs_b, _ = plan_harness(
        tmp_path, "--methods", "bremen", "--train-override", "selection.max_action_shift=0.3"
    )
    assert harness_b.job_record(jobs_b[("bremen", 0)]) == _record()


def test_the_shift_limit_is_per_robot_and_hopper_selects_without_one(tmp_path: Path) -> None:
    """The limit's scale is the robot's own (HalfCheetah's 0.6 left Hopper only BC): Hopper's
    bremen_select trains as the runs before the limit did, so their workspaces count."""

    def hopper_select(*override: str) -> tuple[ModuleType, Any]:
        extra = ("--train-override", *override) if override else ()
        harness, jobs, _ = plan_harness(
            tmp_path, "--campaign", "hopper-cpu", "--methods", "bremen_select", *extra
        )
        return harness, jobs[("bremen_select", 0)]

    harness, job = hopper_select()
    train = harness.job_train(job)
    assert train.selection.enabled is True and train.selection.max_action_shift is None
    assert train.task == "hopper"
    _, old_rule = hopper_select("selection.max_action_shift=null")
    assert harness.same_settings(harness.job_record(job), harness.job_record(old_rule))
    # an explicit limit still reaches Hopper
    h2, limited = hopper_select("selection.max_action_shift=2.0")
    assert h2.job_train(limited).selection.max_action_shift == 2.0


def test_campaign_overrides_reach_every_method_but_selection_only_the_selecting_one(tmp_path: Path) -> None:
    harness, jobs, _ = plan_harness(
        tmp_path,
        "--methods",
        "bremen",
        "bremen_select",
        "--campaign-override",
        "exploration_sigma=0.25",
        "selection.twin_episodes=1",
    )
    plain, select = (
        harness.job_campaign(jobs[("bremen", 0)]),
        harness.job_campaign(jobs[("bremen_select", 0)]),
    )
    assert plain.exploration_sigma == 0.25 and select.exploration_sigma == 0.25
    assert select.selection.twin_episodes == 1
    assert plain.selection.twin_episodes == 3 and plain.selection.twin is False  # the defaults
    # so tuning the twin never orphans the plain BREMEN workspaces
    harness_b, jobs_b, _ = plan_harness(
        tmp_path, "--methods", "bremen", "--campaign-override", "exploration_sigma=0.25"
    )
    assert harness.job_record(jobs[("bremen", 0)]) == harness_b.job_record(jobs_b[("bremen", 0)])
    # ... but a misspelt selection key is refused before anything runs, with or without bremen_select
    import pytest

    for methods in (["bremen"], ["bc", "td3bc"], ["bremen", "bremen_select"]):
        with pytest.raises(SystemExit, match="selection.twin_episode: unknown field 'twin_episode'"):
            plan_harness(tmp_path, "--methods", *methods, "--campaign-override", "selection.twin_episode=1")
        with pytest.raises(SystemExit, match="selection.twin_episodes"):
            plan_harness(tmp_path, "--methods", *methods, "--campaign-override", "selection.twin_episodes=x")


def test_a_campaign_without_a_bc_preset_clones_with_its_own_preset(tmp_path: Path) -> None:
    harness, jobs, trains = plan_harness(tmp_path, "--campaign", "hopper-cpu", "--methods", "bc")
    train, campaign = harness.job_train(jobs[("bc", 0)]), harness.job_campaign(jobs[("bc", 0)])
    hopper = load_train_config("hopper-cpu")
    assert campaign.name == "hopper-cpu" and train.name == "hopper-cpu"
    assert train.trpo.iterations == 0
    assert (train.ensemble.members, train.ensemble.hidden, train.ensemble.max_epochs) == (2, [32], 2)
    assert train.bc == hopper.bc  # the cloned policy trains exactly as in the preset
    assert trains["bc"]["trpo_iterations"] == 0


def test_aggregation_reads_training_time_and_twin_steps(tmp_path: Path) -> None:
    from bremen_robot.campaign.workspace import write_json_atomic

    harness, jobs, _ = plan_harness(tmp_path, "--methods", "bremen_select", "--deployments", "2")
    job = jobs[("bremen_select", 0)]
    ws = job.workspace
    write_json_atomic(ws / "harness.json", harness.job_record(job))
    write_json_atomic(ws / "d1" / "eval_random.json", {"mean": -280.0, "std": 3.0})
    for k, (ret, total_s, twin, keep) in enumerate(
        [(900.0, 41.5, 6000, False), (850.0, 63.0, 3000, True)], 1
    ):
        write_json_atomic(ws / f"d{k}" / "collect.json", {"steps": 2000})
        write_json_atomic(ws / f"d{k}" / "eval.json", {"mean": ret, "std": 1.0})
        timing = {"total_s": total_s} | ({"subnormal_flush": True} if k == 2 else {})  # d1: an old report
        write_json_atomic(ws / f"d{k}" / "train" / "report.json", {"timing": timing})
        write_json_atomic(ws / f"d{k}" / "selection.json", {"twin_steps": twin, "keep_deployed": keep})
    write_json_atomic(ws / "unparked.json", {"recollected_differ": ["d1/data.npz"]})
    seed = harness.read_seed(job, 2)
    assert seed["recollected_differ"] == ["d1/data.npz"]  # unparked on another CPU (park_runs.py)
    assert seed["returns"] == [-280.0, 900.0, 850.0]
    assert seed["samples"] == [0, 2000, 4000]
    assert seed["train_s"] == [None, 41.5, 63.0]
    assert seed["train_flushed"] == [False, False, True]
    assert seed["twin_steps"] == [None, 6000, 3000]
    assert seed["kept_deployed"] == [None, False, True]
    assert seed["complete"] is True


def test_td3bc_gets_the_campaigns_own_budget_unless_told_otherwise(tmp_path: Path) -> None:
    """Hopper and Walker2d train BREMEN longer per deployment than HalfCheetah, so TD3+BC's
    default there is 60,000 steps; asking for that number is not an override (no '-smoke')."""
    harness = reproduce_harness()

    def plan(*argv: str) -> tuple[int, bool]:
        args = harness.parse_args(
            ["--methods", "td3bc", "--seeds", "0", "--results-dir", str(tmp_path), *argv]
        )
        jobs, _ = harness.plan_jobs(args, harness.load_campaigns(args), tmp_path)
        return jobs[0].td3bc["steps"], args.overridden

    assert plan("--campaign", "hopper-cpu") == (60_000, False)
    assert plan("--campaign", "walker2d-cpu") == (60_000, False)
    assert plan("--campaign", "halfcheetah-cpu") == (50_000, False)
    assert plan("--campaign", "hopper-cpu", "--td3bc-steps", "60000") == (60_000, False)
    assert plan("--campaign", "hopper-cpu", "--td3bc-steps", "50000") == (50_000, True)
    assert plan("--campaign", "configs/campaigns/walker2d-cpu.yaml") == (60_000, False)


def _bremen_results(train_s: dict[str, list[float | None]], complete: bool = True) -> dict[str, Any]:
    """BREMEN's seeds with ``train_s`` (none flushed), and selection's 3 seeds complete with times
    from before the fix (9,999 s: they never enter the budget, BREMEN's mean does)."""
    old = {"complete": True, "train_s": [None, 9999.0, 9999.0, 9999.0]}
    return {
        "methods": {
            "bremen": {"seeds": {s: {"complete": complete, "train_s": v} for s, v in train_s.items()}},
            "bremen_select": {"seeds": {s: dict(old) for s in ("0", "1", "2")}},
        }
    }


def test_td3bc_trains_at_least_bremens_seconds_at_each_deployment(tmp_path: Path) -> None:
    """Issue 16: TD3+BC gets at least BREMEN's wall time. BREMEN's ensemble fit grows with the
    data, so the budget is per deployment: BREMEN's mean over its 3 seeds there."""
    import json

    _, td3bc, _ = _td3bc_module()
    times = {"0": [None, 100.0, 400.0], "1": [None, 200.0, 500.0], "2": [None, 300.0, 900.0]}
    assert td3bc.bremen_seconds(_bremen_results(times), 2) == ([200.0, 600.0], "")
    assert td3bc.bremen_seconds(_bremen_results(times, complete=False), 2) == (
        None,
        "0 of 3 BREMEN seeds are complete in its results file",
    )
    assert td3bc.bremen_seconds(_bremen_results(times), 3)[0] is None  # no time for deployment 3
    assert td3bc.bremen_seconds(None, 2) == (None, "the campaign has no results file yet")
    # since 2026-12-06: the longest training with subnormals flushed, BREMEN's or selection's
    flushed = _bremen_results(times)
    flushed["methods"]["bremen"]["seeds"]["2"]["train_flushed"] = [False, True, False]
    select = {"0": [None, 150.0, 330.0], "1": [None, 250.0, 310.0], "2": [None, 90.0, None]}
    flushed["methods"]["bremen_select"] = {
        "seeds": {
            s: {"complete": True, "train_s": v, "train_flushed": [False, True, True]}
            for s, v in select.items()
        }
    }
    assert td3bc.bremen_seconds(flushed, 2) == ([300.0, 330.0], "")  # max(300, 150, 250, 90); max(330, 310)
    # a seed outside the suite's (0, 1, 2), still running, neither enters the budget nor holds it up
    extra = {"complete": False, "train_s": [None, 900.0], "train_flushed": [False, True]}
    flushed["methods"]["bremen"]["seeds"]["3"] = extra
    flushed["methods"]["bremen_select"]["seeds"]["7"] = extra
    assert td3bc.bremen_seconds(flushed, 2) == ([300.0, 330.0], "")
    alone = _bremen_results(times)
    alone["methods"]["bremen_select"] = {"seeds": {"7": extra}}
    assert td3bc.bremen_seconds(alone, 2) == (
        None,
        "0 of 3 BREMEN + selection seeds are complete in its results file",
    )
    del alone["methods"]["bremen_select"]  # not run yet: its times would move the budget later
    assert td3bc.bremen_seconds(alone, 2) == (
        None,
        "0 of 3 BREMEN + selection seeds are complete in its results file",
    )
    flushed["methods"]["bremen_select"]["seeds"]["1"]["complete"] = False
    assert td3bc.bremen_seconds(flushed, 2) == (
        None,
        "2 of 3 BREMEN + selection seeds are complete in its results file",
    )

    results = tmp_path / "results"
    results.mkdir()
    (results / "hopper-cpu.json").write_text(json.dumps(_bremen_results(times)))
    base = ["--campaign", "hopper-cpu", "--deployments", "2", "--results-dir", str(results)]
    harness, jobs, trains = plan_harness(tmp_path, *base, "--methods", "td3bc")
    assert jobs[("td3bc", 1)].td3bc["min_seconds"] == [200.0, 600.0]
    assert harness.job_record(jobs[("td3bc", 0)])["td3bc"]["min_seconds"] == [200.0, 600.0]
    assert trains["td3bc"]["min_seconds"] == [200.0, 600.0]
    _, fixed, _ = plan_harness(tmp_path, *base, "--methods", "td3bc", "--td3bc-seconds", "none")
    assert fixed[("td3bc", 0)].td3bc["min_seconds"] is None
    # a run made before the seconds budget (steps alone) is the same run as one without it
    before = harness.job_record(fixed[("td3bc", 0)])
    before["td3bc"] = {k: v for k, v in before["td3bc"].items() if k != "min_seconds"}
    assert harness.same_settings(before, harness.job_record(fixed[("td3bc", 0)]))
    assert harness.same_settings(before, before)  # two old records (park compares a workspace's)
    assert not harness.same_settings(before, harness.job_record(jobs[("td3bc", 0)]))


def test_td3bc_will_not_start_before_bremens_seconds_are_known(tmp_path: Path, capsys: Any) -> None:
    harness = reproduce_harness()
    argv = ["--campaign", "hopper-cpu", "--seeds", "0", "--methods", "td3bc", "--results-dir", str(tmp_path)]
    assert harness.main([*argv, "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "TD3+BC trains at least BREMEN's time per deployment, but the campaign has no results" in err
    assert "--methods bremen bremen_select' first, or pass --td3bc-seconds none" in err
    assert not (tmp_path / "runs").exists()
    # a smoke run (docs/results.md): BREMEN's times at the campaign's size cannot be its budget,
    # so running BREMEN's 3 full seeds first is no advice
    smoke = [*argv, "--out", str(tmp_path / "runs"), "--deployments", "2", "--steps-per-deployment", "2000"]
    assert harness.main(smoke) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "first" not in err
    assert "pass --td3bc-seconds none for a budget by --td3bc-steps alone (BREMEN's times" in err
    # BREMEN's seeds complete but without times (halfcheetah-cpu.json): a rerun skips them
    import json

    timeless = _bremen_results({s: [] for s in ("0", "1", "2")})
    (tmp_path / "hopper-cpu.json").write_text(json.dumps(timeless))
    assert harness.main([*argv, "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "no training time for deployment 1" in err and "first" not in err
    assert "pass --td3bc-seconds none" in err
    campaign_file = tmp_path / "hopper-cpu.json"
    assert f"rerun BREMEN under another --name (the seeds of {campaign_file} are complete" in err
    assert "pass that name's results file as --td3bc-seconds-from" in err
    assert not (tmp_path / "runs").exists()


def test_td3bc_budget_from_a_named_rerun_of_bremen(tmp_path: Path, capsys: Any) -> None:
    """A campaign whose BREMEN seeds are complete without times (HalfCheetah's, from before times
    were recorded) gets them from a rerun under another --name: ``--td3bc-seconds-from`` reads
    that file's times, and without it the campaign's file is read as before."""
    import json

    timeless = _bremen_results({s: [] for s in ("0", "1", "2")})
    (tmp_path / "hopper-cpu.json").write_text(json.dumps(timeless))
    times = {"0": [None, 100.0, 400.0], "1": [None, 200.0, 500.0], "2": [None, 300.0, 900.0]}
    timed = tmp_path / "hopper-cpu-timed.json"
    timed.write_text(json.dumps(_bremen_results(times)))
    base = ["--campaign", "hopper-cpu", "--deployments", "2", "--results-dir", str(tmp_path)]
    base += ["--methods", "td3bc", "--name", "hopper-cpu-timed"]
    _, named, _ = plan_harness(tmp_path, *base, "--td3bc-seconds-from", str(timed))
    assert named[("td3bc", 0)].td3bc["min_seconds"] == [200.0, 600.0]  # (100+200+300)/3, (400+500+900)/3
    _, own, _ = plan_harness(tmp_path, *base)
    assert own[("td3bc", 0)].td3bc["min_seconds"] is None  # the campaign's file, without times
    harness = reproduce_harness()
    partial = _bremen_results(times, complete=False)
    timed.write_text(json.dumps(partial))
    argv = [*base[:2], "--seeds", "0", *base[4:], "--td3bc-seconds-from", str(timed)]
    assert harness.main([*argv, "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "but 0 of 3 BREMEN seeds are complete in its results file; complete BREMEN's and" in err
    assert f"seeds 0-2 in {timed} first (a method run under another name joins it with --carry-from)" in err
    assert not (tmp_path / "runs").exists()
    # the results file records where the budget came from (suite_left prints it in the command
    # that resumes the runs); a file made without the flag keeps the keys it always had
    recorded = harness.overrides_record(harness.parse_args(argv))
    assert recorded["td3bc_seconds_from"] == str(timed)
    assert "td3bc_seconds_from" not in harness.overrides_record(harness.parse_args(argv[:-2]))
    # a file that is not a results file: one line naming it and the fix, nothing run
    for text in ("{not json", "[1, 2]"):
        timed.write_text(text)
        assert harness.main([*argv, "--out", str(tmp_path / "runs")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"error: {timed} is not " in err
        assert err.endswith("pass a benchmarks/results/<name>.json of reproduce.py as --td3bc-seconds-from\n")
    assert not (tmp_path / "runs").exists()


def _td3bc_module() -> tuple[ModuleType, ModuleType, None]:
    harness = reproduce_harness()
    import reproduce_td3bc  # the harness's sibling, importable once the harness is loaded

    return harness, reproduce_td3bc, None


def test_the_aggregate_is_the_mean_and_sample_std_across_seeds(tmp_path: Path) -> None:
    """By hand: deployment 1 returns 900, 800, 1,000: mean 900, sample std (n - 1) 100;
    deployment 2 returns 950, 1,000, 1,100: mean 1,016.67, sample std sqrt(11,666.67 / 2) = 76.38."""
    import pytest

    harness, jobs, _ = plan_harness(
        tmp_path / "runs", "--methods", "bremen", "--seeds", "0", "1", "2", "--deployments", "2"
    )
    for seed, returns in enumerate(
        ([-280.0, 900.0, 950.0], [-260.0, 800.0, 1000.0], [-270.0, 1000.0, 1100.0])
    ):
        write_harness_workspace(harness, jobs[("bremen", seed)], returns)
    result = aggregate_only(harness, tmp_path, "runs", "--methods", "bremen", "--seeds", "0", "1", "2")
    rows = result["per_deployment"]
    assert rows[1]["bremen"]["mean"] == pytest.approx(900.0)
    assert rows[1]["bremen"]["std"] == pytest.approx(100.0)
    assert rows[2]["bremen"]["mean"] == pytest.approx(1016.6667, abs=1e-3)
    assert rows[2]["bremen"]["std"] == pytest.approx(76.3763, abs=1e-3)
    assert rows[2]["bremen"]["n_seeds"] == 3
