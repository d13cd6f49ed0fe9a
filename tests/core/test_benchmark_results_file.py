"""The harness's results file: a seed's record outlives its workspace, is carried only when made
with the same settings (stored, or for older records the file's overrides and training
summary), and the file is rewritten under one lock without losing what it held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.benchmark_scripts import (
    aggregate_only,
    load_benchmark_script,
    plan_harness,
    write_harness_workspace,
)


def test_a_run_of_one_method_keeps_the_other_methods_and_seeds_in_the_results(tmp_path: Path) -> None:
    """Two harnesses on one campaign (one per method, or one seed rerun) each rewrite the
    results file; neither may drop what the other's workspaces hold."""
    import json

    from bremen_robot.campaign.workspace import write_json_atomic

    harness, jobs, _ = plan_harness(tmp_path / "runs", "--methods", "bremen", "--deployments", "1")
    done = jobs[("bremen", 1)]  # seed 1 of BREMEN finished earlier, by another command
    write_json_atomic(done.workspace / "harness.json", harness.job_record(done))
    write_json_atomic(done.workspace / "d1" / "eval_random.json", {"mean": -280.0, "std": 3.0})
    write_json_atomic(done.workspace / "d1" / "collect.json", {"steps": 2000})
    write_json_atomic(done.workspace / "d1" / "eval.json", {"mean": 1234.5, "std": 1.0})
    (tmp_path / "runs" / "bc" / "seed2").mkdir(parents=True)  # another command's, not run yet

    argv = ["--methods", "bremen_select", "--seeds", "0", "--deployments", "1", "--aggregate-only"]
    argv += ["--name", "mixed", "--out", str(tmp_path / "runs"), "--results-dir", str(tmp_path)]
    assert harness.main(argv) == 0
    result = json.loads((tmp_path / "mixed.json").read_text())
    assert list(result["methods"]) == ["bremen", "bremen_select", "bc"]
    assert sorted(result["methods"]["bremen"]["seeds"]) == ["0", "1", "2"]
    assert result["methods"]["bremen"]["seeds"]["1"]["returns"] == [-280.0, 1234.5]
    assert result["per_deployment"][1]["bremen"]["per_seed"] == [1234.5]
    assert result["per_deployment"][1]["bc"]["n_seeds"] == 0


def test_a_seed_whose_workspace_is_gone_keeps_its_record_in_the_results(tmp_path: Path) -> None:
    """Workspaces are scratch and a fresh checkout has none; the committed results file must not
    lose a finished seed when a later command (another method, a rerun) rewrites it."""
    import json

    harness, jobs, _ = plan_harness(tmp_path / "first", "--methods", "bremen", "--deployments", "2")
    write_harness_workspace(harness, jobs[("bremen", 0)], [-280.0, 900.0, 950.0])
    write_harness_workspace(harness, jobs[("bremen", 1)], [-260.0, 800.0])  # stopped after deployment 1
    aggregate_only(harness, tmp_path, "first", "--methods", "bremen", "--seeds", "0", "1")

    # a new checkout: no workspaces; BC runs its seed 0 and rewrites the file
    _, bc_jobs, _ = plan_harness(tmp_path / "second", "--methods", "bc", "--deployments", "2")
    write_harness_workspace(harness, bc_jobs[("bc", 0)], [-280.0, 10.0, 20.0])
    result = aggregate_only(harness, tmp_path, "second", "--methods", "bc", "--seeds", "0")
    bremen = result["methods"]["bremen"]["seeds"]
    assert bremen["0"]["returns"] == [-280.0, 900.0, 950.0]
    assert bremen["0"]["complete"] is True
    assert bremen["0"]["carried_from"]["file"] == "kept.json"
    assert bremen["1"]["returns"] == [-260.0, 800.0]
    assert result["per_deployment"][1]["bremen"]["per_seed"] == [900.0, 800.0]
    assert result["per_deployment"][2]["bc"]["per_seed"] == [20.0]

    # the same command again in a fresh checkout runs only what is not complete in the file
    _, again, trains = plan_harness(tmp_path / "fresh", "--methods", "bremen", "--deployments", "2")
    overrides = harness.overrides_record(harness.parse_args(["--deployments", "2"]))
    previous = json.loads((tmp_path / "kept.json").read_text())
    todo = list(again.values())
    assert [j.seed for j in harness.finished_elsewhere(todo, [previous], trains, overrides)] == [0]
    write_harness_workspace(harness, again[("bremen", 0)], [-280.0])  # a workspace here: it resumes
    assert harness.finished_elsewhere(todo, [previous], trains, overrides) == []
    other = harness.overrides_record(harness.parse_args(["--deployments", "2", "--eval-episodes", "3"]))
    assert harness.finished_elsewhere(todo[1:], [previous], trains, other) == []
    argv = ["--methods", "bremen", "--seeds", "0", "--deployments", "2", "--name", "kept"]
    assert harness.main([*argv, "--out", str(tmp_path / "fresh2"), "--results-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "fresh2" / "bremen" / "seed0").exists()  # nothing ran

    # seed 1 rerun from scratch: its workspace replaces the record only once it reaches further
    _, rerun, _ = plan_harness(tmp_path / "third", "--methods", "bremen", "--deployments", "2")
    write_harness_workspace(harness, rerun[("bremen", 1)], [-260.0])
    result = aggregate_only(harness, tmp_path, "third", "--methods", "bremen", "--seeds", "1")
    assert result["methods"]["bremen"]["seeds"]["1"]["returns"] == [-260.0, 800.0]
    assert list(tmp_path.glob("kept.replaced-*")) == []  # carried as it was: nothing replaced
    before = json.loads((tmp_path / "kept.json").read_text())
    write_harness_workspace(harness, rerun[("bremen", 1)], [-260.0, 810.0, 990.0])
    result = aggregate_only(harness, tmp_path, "third", "--methods", "bremen", "--seeds", "1")
    assert result["methods"]["bremen"]["seeds"]["1"]["returns"] == [-260.0, 810.0, 990.0]
    # the rerun's own returns replaced the recorded ones: the file that held them is kept
    kept = tmp_path / f"kept.replaced-{before['created'].replace(':', '')}.json"
    assert json.loads(kept.read_text())["methods"]["bremen"]["seeds"]["1"]["returns"] == [-260.0, 800.0]
    assert "carried_from" not in result["methods"]["bremen"]["seeds"]["1"]
    assert result["methods"]["bremen"]["seeds"]["0"]["returns"] == [-280.0, 900.0, 950.0]
    assert result["methods"]["bc"]["seeds"]["0"]["returns"] == [-280.0, 10.0, 20.0]


def test_a_record_made_with_other_settings_is_not_carried_and_its_file_is_kept(tmp_path: Path) -> None:
    import json

    harness, jobs, _ = plan_harness(tmp_path / "first", "--methods", "bremen", "--deployments", "2")
    write_harness_workspace(harness, jobs[("bremen", 0)], [-280.0, 900.0, 950.0])
    first = aggregate_only(harness, tmp_path, "first", "--methods", "bremen", "--seeds", "0")

    result = aggregate_only(
        harness,
        tmp_path,
        "empty",
        "--methods",
        "bremen",
        "--seeds",
        "0",
        "--train-override",
        "trpo.iterations=3",
    )
    assert result["methods"]["bremen"]["seeds"]["0"]["returns"] == []
    kept = tmp_path / f"kept.replaced-{first['created'].replace(':', '')}.json"
    assert json.loads(kept.read_text())["methods"]["bremen"]["seeds"]["0"]["returns"] == [
        -280.0,
        900.0,
        950.0,
    ]


def test_a_record_from_before_records_stored_their_settings_is_carried_when_the_file_matches(
    tmp_path: Path,
) -> None:
    """The results files committed before this change hold no per-seed settings: such a record is
    carried when the file's overrides and the method's training summary match the command's."""
    import json

    harness, jobs, _ = plan_harness(tmp_path / "first", "--methods", "bremen", "--deployments", "2")
    write_harness_workspace(harness, jobs[("bremen", 0)], [-280.0, 900.0, 950.0])
    first = aggregate_only(harness, tmp_path, "first", "--methods", "bremen", "--seeds", "0")
    del first["methods"]["bremen"]["seeds"]["0"]["settings"]
    (tmp_path / "kept.json").write_text(json.dumps(first))
    result = aggregate_only(harness, tmp_path, "empty", "--methods", "bc", "--seeds", "0")
    assert result["methods"]["bremen"]["seeds"]["0"]["returns"] == [-280.0, 900.0, 950.0]

    first["methods"]["bremen"]["train"]["trpo_iterations"] += 1  # the file says: another preset
    (tmp_path / "kept.json").write_text(json.dumps(first))
    result = aggregate_only(harness, tmp_path, "empty", "--methods", "bc", "--seeds", "0")
    assert result["methods"].get("bremen", {}).get("seeds", {}).get("0", {}).get("returns", []) == []


def test_records_of_a_method_run_under_another_name_join_with_carry_from(tmp_path: Path) -> None:
    """HalfCheetah's selection ran as its own results file: --carry-from brings its records (same
    settings only) into the robot's file; an older file without the later override keys counts
    as no override."""
    import json

    harness, jobs, _ = plan_harness(tmp_path / "a", "--methods", "bremen_select", "--deployments", "2")
    write_harness_workspace(harness, jobs[("bremen_select", 0)], [-280.0, 900.0, 950.0])
    argv = ["--methods", "bremen_select", "--seeds", "0", "--deployments", "2", "--aggregate-only"]
    assert (
        harness.main(
            [*argv, "--name", "select", "--out", str(tmp_path / "a"), "--results-dir", str(tmp_path)]
        )
        == 0
    )
    select = json.loads((tmp_path / "select.json").read_text())
    del select["methods"]["bremen_select"]["seeds"]["0"]["settings"]  # written before records held them
    del select["overrides"]["campaign"]  # and before the campaign overrides existed
    (tmp_path / "select.json").write_text(json.dumps(select))

    argv = [
        "--methods",
        "bremen",
        "--seeds",
        "0",
        "--deployments",
        "2",
        "--aggregate-only",
        "--name",
        "robot",
    ]
    argv += ["--out", str(tmp_path / "b"), "--results-dir", str(tmp_path)]
    assert harness.main([*argv, "--carry-from", str(tmp_path / "select.json")]) == 0
    robot = json.loads((tmp_path / "robot.json").read_text())
    assert robot["methods"]["bremen_select"]["seeds"]["0"]["returns"] == [-280.0, 900.0, 950.0]
    assert robot["methods"]["bremen_select"]["seeds"]["0"]["carried_from"]["file"] == "select.json"
    assert harness.main([*argv, "--carry-from", str(tmp_path / "robot.png")]) == 2


def test_the_results_file_is_read_aggregated_and_written_under_one_lock(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Two harnesses on one campaign (one per method) must take turns: a harness that wrote over
    a version of the file it never read would drop the other's new records without a backup."""
    import fcntl

    harness, jobs, _ = plan_harness(tmp_path / "runs", "--methods", "bremen", "--deployments", "2")
    write_harness_workspace(harness, jobs[("bremen", 0)], [-280.0, 900.0, 950.0])
    lock = tmp_path / "kept.json.lock"
    held: list[bool] = []
    real_aggregate = harness.aggregate

    def aggregate_and_probe(*args: Any) -> Any:
        with open(lock, "a") as other:  # another harness's try, from its own open file
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
            except BlockingIOError:
                held.append(True)
        return real_aggregate(*args)

    monkeypatch.setattr(harness, "aggregate", aggregate_and_probe)
    aggregate_only(harness, tmp_path, "runs", "--methods", "bremen", "--seeds", "0")
    assert held == [True]
    with open(lock, "a") as after:  # released once written
        fcntl.flock(after, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_second_writer_waits_for_the_results_file_lock(tmp_path: Path, capsys: Any) -> None:
    import threading
    import time

    aggregate_module = load_benchmark_script("reproduce_aggregate.py", "bremen_reproduce_aggregate")
    path = tmp_path / "camp.json"
    order: list[str] = []

    def second() -> None:
        with aggregate_module.results_file_lock(path):
            order.append("second")

    with aggregate_module.results_file_lock(path):
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.3)
        order.append("first done")
    waiter.join(timeout=10)
    assert order == ["first done", "second"]
    assert f"waiting for another harness that is writing {path}" in capsys.readouterr().out


def test_an_older_record_is_carried_though_its_training_summary_predates_later_fields(tmp_path: Path) -> None:
    """hopper-cpu.json's selection seeds 0-1 and halfcheetah-cpu.json's TD3+BC seeds hold no
    per-seed settings, and their file's training summary was written before selection.pick,
    selection.twin_veto_warning and TD3+BC's seconds budget existed: the next aggregation must
    still carry them (it dropped them, and would have run them again)."""
    import json

    harness, jobs, _ = plan_harness(
        tmp_path / "first",
        "--methods",
        "bremen_select",
        "td3bc",
        "--deployments",
        "2",
        "--td3bc-seconds",
        "none",
    )
    write_harness_workspace(harness, jobs[("bremen_select", 0)], [-280.0, 900.0, 950.0])
    write_harness_workspace(harness, jobs[("td3bc", 0)], [-280.0, 700.0, 800.0])
    argv = ("--methods", "bremen_select", "td3bc", "--seeds", "0", "--td3bc-seconds", "none")
    first = aggregate_only(harness, tmp_path, "first", *argv)
    for m in ("bremen_select", "td3bc"):
        del first["methods"][m]["seeds"]["0"]["settings"]
    summary = first["methods"]["bremen_select"]["train"]
    assert summary["selection"].pop("pick") == "best"
    assert summary["campaign_selection"].pop("twin_veto_warning") == 2
    assert first["methods"]["td3bc"]["train"].pop("min_seconds") is None
    (tmp_path / "kept.json").write_text(json.dumps(first))
    result = aggregate_only(harness, tmp_path, "empty", *argv)
    assert result["methods"]["bremen_select"]["seeds"]["0"]["returns"] == [-280.0, 900.0, 950.0]
    assert result["methods"]["td3bc"]["seeds"]["0"]["returns"] == [-280.0, 700.0, 800.0]

    summary["selection"]["pick"] = "earliest"  # a setting that differs is still another run
    (tmp_path / "kept.json").write_text(json.dumps(first))
    result = aggregate_only(harness, tmp_path, "empty", *argv)
    assert result["methods"]["bremen_select"]["seeds"].get("0", {}).get("returns", []) == []
    assert result["methods"]["td3bc"]["seeds"]["0"]["returns"] == [-280.0, 700.0, 800.0]


def test_a_file_that_is_not_a_results_file_is_never_written_over(tmp_path: Path, capsys: Any) -> None:
    """--name selection-study-ant (or any name of another script's JSON in benchmarks/results/)
    must not replace that file with an aggregate, nor a broken file end in a traceback."""
    from tests.benchmark_scripts import reproduce_harness

    harness = reproduce_harness()
    study = tmp_path / "study.json"
    for text in ('{"pairs": [1, 2]}', "[1, 2]", '{"broken'):
        study.write_text(text)
        argv = ["--deployments", "2", "--aggregate-only", "--name", "study", "--out", str(tmp_path / "runs")]
        assert harness.main([*argv, "--results-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {study} is not") and err.count("\n") == 1
        assert "pick another --name or --results-dir" in err
        assert study.read_text() == text
        assert not (tmp_path / "study.png").exists()


def test_a_workspace_of_other_settings_is_refused_before_anything_runs(tmp_path: Path, capsys: Any) -> None:
    """Re-running into a workspace with another --train-override must stop at once: refused only
    by its own run, the others ran first and the results file lost that method's records."""
    import json

    harness, jobs, _ = plan_harness(tmp_path / "runs", "--methods", "bremen", "bc", "--deployments", "1")
    for job in jobs.values():
        write_harness_workspace(harness, job, [-280.0, 1000.0])
    argv = ["--seeds", "0", "1", "--methods", "bremen", "bc", "--deployments", "1"]
    argv += ["--name", "kept", "--out", str(tmp_path / "runs"), "--results-dir", str(tmp_path)]
    assert harness.main([*argv, "--aggregate-only"]) == 0
    before = (tmp_path / "kept.json").read_text()
    assert json.loads(before)["methods"]["bremen"]["seeds"]["0"]["returns"] == [-280.0, 1000.0]
    capsys.readouterr()

    def run_jobs(*_: Any, **__: Any) -> Any:
        raise AssertionError("no run may start")

    harness.run_jobs = run_jobs
    assert harness.main([*argv, "--train-override", "trpo.iterations=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bremen/seed0' was run with other settings" in err
    assert (tmp_path / "kept.json").read_text() == before
    assert not list(tmp_path.glob("kept.replaced-*"))


def test_aggregating_nothing_is_refused_not_an_empty_table(tmp_path: Path, capsys) -> None:
    """A wrong --name or --out used to write an empty table, JSON and PNG and exit 0."""
    harness, _, _ = plan_harness(tmp_path / "runs", "--methods", "bremen", "--deployments", "2")
    argv = ["--deployments", "2", "--aggregate-only", "--name", "typo", "--out", str(tmp_path / "nowhere")]
    assert harness.main([*argv, "--methods", "bremen", "--results-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: nothing to aggregate: no workspace under {tmp_path / 'nowhere'} and no results file "
        f"{tmp_path / 'typo.json'}; check --campaign, --name, --out and --results-dir (as the runs were "
        "started with)\n"
    )
    assert list(tmp_path.iterdir()) == []  # nothing written
