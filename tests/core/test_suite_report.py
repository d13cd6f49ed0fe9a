"""Issue 16's suite verdicts, on hand-built results whose answers are worked out by hand."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import load_benchmark_script


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    return load_benchmark_script("suite_report.py", "bremen_suite_report")


@pytest.fixture(scope="module")
def suite_left() -> ModuleType:
    return load_benchmark_script("suite_left.py", "bremen_suite_left")


def _result(task: str, curves: dict[str, dict[str, list[float]]], deployments: int) -> dict[str, Any]:
    """A reproduce.py result with the given per-seed curves (k = 0 is the random policy)."""
    import numpy as np

    methods = {
        m: {"seeds": {s: {"returns": r, "complete": len(r) == deployments + 1} for s, r in seeds.items()}}
        for m, seeds in curves.items()
    }
    rows = []
    for k in range(deployments + 1):
        row: dict[str, Any] = {"deployments": k, "samples": 1000 * k}
        for m, seeds in curves.items():
            vals = [r[k] for r in seeds.values() if len(r) > k and r[k] is not None]
            row[m] = {
                "mean": float(np.mean(vals)) if vals else None,
                "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                "n_seeds": len(vals),
                "per_seed": vals,
                "train_s": {"mean": 100.0, "per_seed": [100.0] * len(vals)},
            }
        rows.append(row)
    return {
        "task": task,
        "campaign": f"{task}-cpu",
        "deployments": deployments,
        "steps_per_deployment": 1000,
        "seeds": [0, 1, 2],
        "methods": methods,
        "per_deployment": rows,
    }


def test_the_floor_is_ten_percent_of_the_predecessors_size_also_below_zero(suite: ModuleType) -> None:
    assert suite.allowed_floor(3000.0, -280.0) == pytest.approx(2700.0)
    assert suite.allowed_floor(-280.0, -280.0) == pytest.approx(-308.0)
    # near zero, the random policy's scale: -1.4 may fall to -1.4 - 0.1 * 254 = -26.8
    assert suite.allowed_floor(-1.4, -254.0) == pytest.approx(-26.8)


def test_a_drop_of_more_than_ten_percent_is_a_regression_and_a_smaller_one_is_not(suite: ModuleType) -> None:
    # seed 0: 3,308 -> 2,525 is 23.7 % down; seed 1: 3,000 -> 2,750 is 8.3 % down (allowed)
    result = _result(
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
    result = _result("halfcheetah", {"bc": {"0": [-254, -1.4, -1.8, -2.0]}}, 3)
    assert suite.regressions(result, "bc") == []


def test_the_verdict_names_each_unmet_target(suite: ModuleType) -> None:
    select = {"0": [-280, 2000, 3000, 3500, 3800, 3900], "1": [-280, 2100, 2900, 3600, 3700, 4000]}
    select["2"] = [-280, 1900, 3100, 3400, 3900, 4100]  # mean at 5: 4,000.0 -> target met
    td3bc = {s: [-280, 2200, 2800, 3000, 3100, 3200] for s in ("0", "1", "2")}  # above select at 1
    lines = suite.verdict(_result("halfcheetah", {"bremen_select": select, "td3bc": td3bc}, 5))
    assert lines[0] == "no regression (BREMEN + selection): met on every seed (3 of 3 seeds complete)"
    assert lines[1] == "no regression (recursive TD3+BC): met on every seed (3 of 3 seeds complete)"
    assert lines[2] == "HalfCheetah >= 4,000 after 5 deployments with selection: met (4,000, 3 seeds)"
    assert lines[3] == "selection >= TD3+BC at every deployment: NOT met: deployment 1: 2,000 < 2,200"


def test_missing_seeds_leave_targets_undecided_never_met(suite: ModuleType) -> None:
    select = {"0": [-280, 2000, 3000], "1": [-280, 2100]}
    lines = suite.verdict(_result("hopper", {"bremen_select": select, "td3bc": {"0": [1, 2, 3]}}, 5))
    assert lines[0] == "no regression (BREMEN + selection): none so far, undecided (0 of 2 seeds complete)"
    assert lines[-1] == "selection >= TD3+BC at every deployment: undecided (0 of 5 compared)"
    assert not any("HalfCheetah" in line for line in lines)


def test_the_markdown_table_shows_mean_std_per_seed_and_time(suite: ModuleType) -> None:
    result = _result("ant", {"bremen": {"0": [10.0, 1000.0], "1": [20.0, 1200.0]}}, 1)
    text = suite.markdown_table(result)
    # mean 1,100, sample std sqrt(((100)^2 + (100)^2) / 1) = 141.4
    assert "| 1 | 1,000 | 1,100 ± 141 (1,000 / 1,200; 100 s) |" in text


def test_what_is_left_lists_each_unfinished_seed_and_one_command_per_method(suite: ModuleType) -> None:
    """Workspaces are lost with a session, so a partial seed is run again from deployment 1."""
    done = [0.0, 1.0, 2.0]
    result = _result(
        "hopper",
        {"bremen": {"0": done, "1": done, "2": done}, "bremen_select": {"0": done, "2": [0.0, 1.0]}},
        2,
    )
    note = " (once BREMEN's and selection's seeds are complete: their training time is its budget)"
    assert suite.remaining(result) == [
        "BREMEN + selection seed 1: not run",
        "BREMEN + selection seed 2: 1 of 2 deployments recorded, reruns from deployment 1",
        "recursive BC seed 0: not run",
        "recursive BC seed 1: not run",
        "recursive BC seed 2: not run",
        "recursive TD3+BC seed 0: not run",
        "recursive TD3+BC seed 1: not run",
        "recursive TD3+BC seed 2: not run",
        "python benchmarks/reproduce.py --campaign hopper-cpu --seeds 1 2 --methods bremen_select --jobs 1",
        "python benchmarks/reproduce.py --campaign hopper-cpu --seeds 0 1 2 --methods bc --jobs 1",
        "python benchmarks/reproduce.py --campaign hopper-cpu --seeds 0 1 2 --methods td3bc --jobs 1" + note,
    ]
    assert "- `python benchmarks/reproduce.py --campaign hopper-cpu --seeds 1 2" in suite.markdown_table(
        result
    )
    # TD3+BC's budget is BREMEN's and selection's training time: it waits for both
    td3bc = "python benchmarks/reproduce.py --campaign hopper-cpu --seeds 0 1 2 --methods td3bc --jobs 1"
    assert f"- `{td3bc}`{note}" in suite.markdown_table(result)
    for s in ("0", "1", "2"):
        result["methods"]["bremen_select"]["seeds"][s] = {"returns": done, "complete": True}
    assert suite.remaining(result)[-1] == td3bc  # both complete: nothing to wait for
    result["methods"]["bremen"]["seeds"]["2"]["complete"] = False
    assert suite.remaining(result)[-1] == td3bc + note


def test_a_variant_lists_only_its_own_methods_and_resumes_with_its_name_and_overrides(
    suite: ModuleType,
) -> None:
    """A results file made under another --name runs one method with overrides: the report must
    not ask for the three it never runs, and its command must carry the name and overrides (the
    preset's own command would start other runs under the robot's name)."""
    done = [0.0, 1.0, 2.0]
    result = _result("ant", {"bremen_select": {"0": done, "1": [0.0, 1.0]}}, 2)
    result["name"] = "ant-cpu-select-earliest"
    result["overrides"] = {
        "deployments": None,
        "steps_per_deployment": 20000,
        "eval_episodes": None,
        "train": {"selection.pick": "earliest", "selection.max_action_shift": None},
        "campaign": {"selection.twin": False},
        "td3bc_steps": 50000,
    }
    flags = (
        " --name ant-cpu-select-earliest --steps-per-deployment 20000 --train-override "
        "selection.pick=earliest selection.max_action_shift=null --campaign-override selection.twin=false"
    )
    assert suite.remaining(result) == [
        "BREMEN + selection seed 1: 1 of 2 deployments recorded, reruns from deployment 1",
        "BREMEN + selection seed 2: not run",
        "python benchmarks/reproduce.py --campaign ant-cpu --seeds 1 2 --methods bremen_select --jobs 1"
        + flags,
    ]
    # a robot's own file lists every method, and a TD3+BC budget other than the campaign's own
    # (hopper-cpu: 60,000 steps) is part of the command
    own = _result("hopper", {"td3bc": {"0": done, "1": done}}, 2)
    own["overrides"] = {"train": {}, "campaign": {}, "td3bc_steps": 5000}
    lines = suite.remaining(own)
    assert lines[0] == "BREMEN seed 0: not run"
    assert lines[-1] == (
        "python benchmarks/reproduce.py --campaign hopper-cpu --seeds 2 --methods td3bc --jobs 1 "
        "--td3bc-steps 5000 (once BREMEN's and selection's seeds are complete: their training time is "
        "its budget)"
    )
    own_ant = _result("ant", {"td3bc": {"0": done, "1": done}}, 2)
    own_ant["overrides"] = {"train": {}, "campaign": {}, "td3bc_steps": 50000}  # ant-cpu's own
    assert suite.remaining(own_ant)[-1].startswith(
        "python benchmarks/reproduce.py --campaign ant-cpu --seeds 2 --methods td3bc --jobs 1 (once"
    )


def test_a_seed_that_went_on_with_different_data_is_noted(suite: ModuleType) -> None:
    result = _result("hopper", {"bremen": {"0": [0.0, 1.0, 2.0]}}, 2)
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
    done.write_text(json.dumps(_result("hopper", {"bremen": {"0": [0.0, 1.0]}}, 1)))
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


def test_a_parked_seed_is_listed_as_resumable(
    suite: ModuleType, suite_left: ModuleType, tmp_path: Path
) -> None:
    import io
    import tarfile

    result = _result("hopper", {"bremen": {"0": [0.0, 1.0]}}, 3)
    result["name"] = "hopper-cpu"
    archive = tmp_path / "hopper-cpu" / "bremen" / "seed0.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("d1/eval.json", "d2/eval.json", "d2/eval_random.json", "d3/collect.json"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    lines = suite.remaining(result, parked=tmp_path)
    assert (
        lines[0] == "BREMEN seed 0: parked after 2 of 3 deployments: unpark it, then the command resumes it"
    )
    assert lines[1] == "BREMEN seed 1: not run"
    assert (
        suite.remaining(result)[0] == "BREMEN seed 0: 1 of 3 deployments recorded, reruns from deployment 1"
    )
    # a workspace on this machine (in progress, or unparked) comes first, from where it is
    runs = tmp_path / "runs"
    for k in (1, 2, 3):
        (runs / "hopper-cpu" / "bremen" / "seed0" / f"d{k}").mkdir(parents=True)
    for k in (1, 3):  # deployment 2 not evaluated yet: resumes after 1, whatever d3 holds
        (runs / "hopper-cpu" / "bremen" / "seed0" / f"d{k}" / "eval.json").write_text("{}")
    assert suite.remaining(result, parked=tmp_path, runs=runs)[0] == (
        "BREMEN seed 0: 1 of 3 deployments in its workspace here (benchmarks/runs): the command resumes it"
    )
    left = suite_left.unfinished(result, parked=tmp_path, runs=runs)
    assert [(u.method, u.seed, u.resumes_after) for u in left[:3]] == [
        ("bremen", 0, 1),
        ("bremen", 1, 0),
        ("bremen", 2, 0),
    ]


def _park(folder: Path, name: str, method: str, seed: int, deployments: int) -> None:
    """A parked copy of a run with ``deployments`` evaluated deployments (park_runs.py's layout)."""
    import io
    import tarfile

    archive = folder / name / method / f"seed{seed}.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for k in range(1, deployments + 1):
            info = tarfile.TarInfo(f"d{k}/eval.json")
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))


def _timed_result() -> dict[str, Any]:
    """Hopper, 3 deployments: BREMEN and BC complete; selection seed 0 complete, seed 1 with one
    deployment recorded, seed 2 not run; TD3+BC not run. Training seconds per deployment: BREMEN
    100 / 200 / 300, selection 150 at deployment 1 only (its complete seed is the only one
    there), BC 10 each."""
    done = [0.0, 1.0, 2.0, 3.0]
    result = _result(
        "hopper",
        {
            "bremen": {"0": done, "1": done, "2": done},
            "bremen_select": {"0": done, "1": [0.0, 1.0]},
            "bc": {"0": done, "1": done, "2": done},
        },
        3,
    )
    result["name"] = "hopper-cpu"
    own = {"bremen": [100.0, 200.0, 300.0], "bremen_select": [150.0, None, None], "bc": [10.0] * 3}
    for row in result["per_deployment"][1:]:
        for m, secs in own.items():
            row[m]["train_s"] = {"mean": secs[row["deployments"] - 1], "per_seed": []}
    return result


def test_the_training_left_sums_each_unfinished_deployments_measured_seconds(
    suite: ModuleType, tmp_path: Path
) -> None:
    result = _timed_result()
    left = suite.training_left(result)
    # selection seeds 1 and 2 run deployments 1-3: 150 (its own) + 200 + 300 (BREMEN's) = 650
    # each; TD3+BC seeds 0-2 have no time of their own: BREMEN's 100 + 200 + 300 = 600 each
    assert left.seconds == pytest.approx(2 * 650 + 3 * 600)
    assert left.stand_ins == {"bremen_select", "td3bc"}
    assert left.unknown == {}
    # TD3+BC seed 0 parked after 2 deployments has only deployment 3 left: 600 - 300 saved
    _park(tmp_path, "hopper-cpu", "td3bc", 0, 2)
    assert suite.training_left(result, parked=tmp_path).seconds == pytest.approx(3100 - 300)
    line = suite.training_left(result).line()
    assert line.startswith("about 0.9 core-hours of training left (about 0.4 h with one run per core")
    assert "BREMEN + selection, recursive TD3+BC estimated from BREMEN's times" in line
    assert "- about 0.9 core-hours of training left" in suite.markdown_table(result)
    # a time trained with subnormals flushed replaces the inflated ones: selection seed 0 took 60 s
    # at deployment 2 (BREMEN's old 200 s stood in), so each of selection seeds 1 and 2 saves 140 s
    record = result["methods"]["bremen_select"]["seeds"]["0"]
    record["train_s"], record["train_flushed"] = [None, 150.0, 60.0, 300.0], [False, False, True, False]
    assert suite.training_left(result).seconds == pytest.approx(2 * (650 - 140) + 3 * 600)
    # TD3+BC's own time comes before BREMEN's flushed one: seed 0 measured 500 s at deployment 1
    result["methods"]["bremen"]["seeds"]["0"].update(train_s=[None, 40.0], train_flushed=[False, True])
    result["per_deployment"][1]["td3bc"] = {"train_s": {"mean": 500.0, "per_seed": [500.0]}}
    # TD3+BC: 500 (its own) + 200 + 300 (BREMEN's) = 1,000 per seed, not 40 + 200 + 300; selection's
    # own 150 at deployment 1 was not flushed, so BREMEN's flushed 40 stands in: 40 + 60 + 300
    assert suite.training_left(result).seconds == pytest.approx(2 * (40 + 60 + 300) + 3 * 1000)


def test_a_run_without_any_measured_time_is_named_not_counted_as_zero(suite: ModuleType) -> None:
    # Ant with only BC measured: BREMEN, selection and TD3+BC have no time to go by
    done = [0.0, 1.0]
    result = _result("ant", {"bc": {"0": done, "1": done, "2": done}}, 1)
    left = suite.training_left(result)
    assert left.seconds == 0
    assert left.unknown == {"ant-cpu": {"bremen": [0, 1, 2], "bremen_select": [0, 1, 2], "td3bc": [0, 1, 2]}}
    assert left.line() == (
        "training time left: no estimate; not estimated on `ant-cpu` (no measured time): "
        "BREMEN seeds 0, 1, 2; BREMEN + selection seeds 0, 1, 2; recursive TD3+BC seeds 0, 1, 2"
    )


def test_the_suite_total_adds_the_robots_and_names_what_it_cannot_estimate(
    suite: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    (tmp_path / "hopper-cpu.json").write_text(json.dumps(_timed_result()))
    (tmp_path / "walker2d-cpu.json").write_text(
        json.dumps(_timed_result() | {"campaign": "walker2d-cpu", "name": "walker2d-cpu"})
    )
    paths = [str(tmp_path / f"{c}-cpu.json") for c in ("hopper", "walker2d", "ant")]
    assert suite.main([*paths, "--parked", str(tmp_path / "none"), "--runs", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    # 3,100 s on each of the two robots: 6,200 s = 1.7 core-hours, 0.9 h on two cores
    assert "The whole suite: about 1.7 core-hours of training left (about 0.9 h with one run per core" in out
    assert out.rstrip().endswith("; not estimated: everything on `ant-cpu` (no results yet).")


def _timed(
    result: dict[str, Any], method: str, train_s: dict[str, list[float | None]], flushed: bool = False
) -> dict[str, Any]:
    """Give ``method``'s seeds of ``result`` per-deployment training seconds, as the harness
    records them (k = 0 untrained), trained with subnormals flushed or not."""
    for s, secs in train_s.items():
        record = result["methods"][method]["seeds"][s]
        record["train_s"] = secs
        record["train_flushed"] = [False] + [flushed] * (len(secs) - 1)
    return result


def test_the_report_says_where_td3bc_trained_less_than_bremen(suite: ModuleType) -> None:
    done = [0.0, 1.0, 2.0]
    three = {"0": done, "1": done, "2": done}
    result = _result("hopper", {"bremen": three, "bremen_select": three, "td3bc": {"0": done}}, 2)
    # BREMEN's mean: (300 + 400 + 500) / 3 = 400 at deployment 1, (800 + 900 + 1000) / 3 = 900 at 2
    _timed(
        result, "bremen", {"0": [None, 300.0, 800.0], "1": [None, 400.0, 900.0], "2": [None, 500.0, 1000.0]}
    )
    rows = result["per_deployment"]
    rows[1]["td3bc"]["train_s"]["mean"], rows[2]["td3bc"]["train_s"]["mean"] = 450.0, 700.0
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
    result = _result("walker2d", {"bremen": three, "bremen_select": three, "td3bc": {"0": done}}, 2)
    old = {"0": [None, 3000.0, 5000.0], "1": [None, 3000.0, 5000.0], "2": [None, 3000.0, 5000.0]}
    _timed(result, "bremen", old)
    _timed(result, "bremen_select", old)
    _timed(result, "bremen_select", {"1": [None, 300.0], "2": [None, 350.0, 420.0]}, flushed=True)
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

    result = _result("hopper", {"bremen": {"0": [0.0, 1.0, 2.0], "1": [0.0, 3.0]}}, 2)
    fig, ax = plt.subplots()
    suite.draw_method_curves(ax, result)
    assert [t.get_text() for t in ax.legend().get_texts()] == ["BREMEN (n=1-2; hollow: fewer)"]
    hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [2.0]  # deployment 2: seed 0 only
    plt.close(fig)
    full = _result("hopper", {"bremen": {"0": [0.0, 1.0], "1": [0.0, 3.0]}}, 1)
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
    found = suite.regressions(_result("halfcheetah", {"bremen": curves}, 4), "bremen")
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
    lines = suite.verdict(_result("halfcheetah", {"bremen_select": select, "td3bc": td3bc}, 5))
    assert lines[0] == "no regression (BREMEN + selection): none so far, undecided (2 of 3 seeds complete)"
    assert lines[2] == (
        "HalfCheetah >= 4,000 after 5 deployments with selection: undecided (2 seeds reached deployment 5)"
    )
    # equal means are not behind; deployments 3-5 have two selection seeds: 2 of 5 compared
    assert lines[3] == "selection >= TD3+BC at every deployment: undecided (2 of 5 compared)"
    # every deployment compared and only the last one behind
    select = {s: up for s in ("0", "1", "2")}
    lines = suite.verdict(_result("halfcheetah", {"bremen_select": select, "td3bc": td3bc}, 5))
    assert lines[3] == "selection >= TD3+BC at every deployment: NOT met: deployment 5: 4,100 < 4,200"
    # TD3+BC with fewer seeds at a deployment is not compared there
    short = {**td3bc, "2": td3bc["2"][:4]}
    lines = suite.verdict(_result("halfcheetah", {"bremen_select": select, "td3bc": short}, 5))
    assert lines[3] == "selection >= TD3+BC at every deployment: undecided (3 of 5 compared)"
    td3bc_equal = {s: up for s in ("0", "1", "2")}
    lines = suite.verdict(_result("halfcheetah", {"bremen_select": select, "td3bc": td3bc_equal}, 5))
    assert lines[3] == "selection >= TD3+BC at every deployment: met"
    one_short = {**td3bc_equal, "2": up[:5]}  # deployment 5 has two TD3+BC seeds: 4 of 5 compared
    lines = suite.verdict(_result("halfcheetah", {"bremen_select": select, "td3bc": one_short}, 5))
    assert lines[3] == "selection >= TD3+BC at every deployment: undecided (4 of 5 compared)"


def test_td3bc_is_estimated_from_its_budget_once_the_budget_is_fixed(
    suite: ModuleType, suite_left: ModuleType
) -> None:
    """With BREMEN's and selection's 3 seeds complete the harness fixes TD3+BC's budget: the
    longest flushed BREMEN or selection time at each deployment. TD3+BC's estimate is that
    budget, no less than the least time its step floor took, and its own time where it has one."""
    done = [0.0, 1.0, 2.0, 3.0]
    result = _result(
        "hopper",
        {m: {"0": done, "1": done, "2": done} for m in ("bremen", "bremen_select", "bc")}
        | {"td3bc": {"0": [0.0, 1.0]}},
        3,
    )
    for s, secs in {"0": [None, 90.0, 180.0, 400.0], "1": [None, 120.0, 150.0, 250.0]}.items():
        result["methods"]["bremen_select"]["seeds"][s].update(
            train_s=secs, train_flushed=[False] + [True] * 3
        )
    for row in result["per_deployment"][1:]:
        row["td3bc"]["train_s"] = {"mean": None, "per_seed": []}
    # budget: 120 / 180 / 400 (the longest flushed time at each deployment)
    assert suite_left.td3bc_seconds(result, 2) == (180.0, "budget, floor untimed")
    left = suite.training_left(result)
    # TD3+BC seed 0 has no parked copy: it reruns 1-3; seeds 1 and 2 run 1-3: 3 x (120 + 180 + 400)
    assert left.seconds == pytest.approx(3 * 700.0)
    assert left.budgeted and left.stand_ins == set()
    assert "recursive TD3+BC estimated from its time budget" in left.line()
    assert (
        "on `hopper-cpu` only a lower bound for recursive TD3+BC: its step floor has no time" in left.line()
    )
    # its own 250 s at deployment 1 (the step floor) counts there and lifts deployment 2's 180
    result["per_deployment"][1]["td3bc"]["train_s"] = {"mean": 250.0, "per_seed": [250.0]}
    assert suite_left.td3bc_seconds(result, 1) == (250.0, "td3bc")
    assert suite_left.td3bc_seconds(result, 2) == (250.0, "budget")
    assert suite.training_left(result).seconds == pytest.approx(3 * (250.0 + 250.0 + 400.0))
    assert "only a lower bound" not in suite.training_left(result).line()
    # selection seed 2 unfinished: no fixed budget, BREMEN's times stand in as before
    result["methods"]["bremen_select"]["seeds"]["2"]["complete"] = False
    assert suite_left.td3bc_seconds(result, 2) is None
