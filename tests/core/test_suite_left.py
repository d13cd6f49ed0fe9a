"""What issue 16's suite still has to run and how long it takes (benchmarks/suite_left.py, printed
by suite_report.py), on hand-built results whose answers are worked out by hand."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import load_benchmark_script
from tests.suite_results import suite_result


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    return load_benchmark_script("suite_report.py", "bremen_suite_report")


@pytest.fixture(scope="module")
def suite_left() -> ModuleType:
    return load_benchmark_script("suite_left.py", "bremen_suite_left")


def test_what_is_left_lists_each_unfinished_seed_and_one_command_per_method(suite: ModuleType) -> None:
    """Workspaces are lost with a session, so a partial seed is run again from deployment 1."""
    done = [0.0, 1.0, 2.0]
    result = suite_result(
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
    result = suite_result("ant", {"bremen_select": {"0": done, "1": [0.0, 1.0]}}, 2)
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
    # overridden under the campaign's own name (hopper-cpu-select-nolimit.json was): still a
    # variant, and the command names it, or reproduce.py would run it as hopper-cpu-smoke
    nolimit = suite_result("hopper", {"bremen_select": {"0": done}}, 2)
    nolimit |= {"name": "hopper-cpu", "smoke": True}
    nolimit["overrides"] = {
        "train": {"selection.max_action_shift": None},
        "campaign": {},
        "td3bc_steps": 60000,
    }
    assert suite.remaining(nolimit) == [
        "BREMEN + selection seed 1: not run",
        "BREMEN + selection seed 2: not run",
        "python benchmarks/reproduce.py --campaign hopper-cpu --seeds 1 2 --methods bremen_select --jobs 1 "
        "--name hopper-cpu --train-override selection.max_action_shift=null",
    ]
    # a TD3+BC budget other than the campaign's own (hopper-cpu: 60,000 steps) is in the command
    fewer = suite_result("hopper", {"td3bc": {"0": done, "1": done}}, 2)
    fewer |= {"name": "hopper-cpu-td3bc-5k", "smoke": True}
    fewer["overrides"] = {"train": {}, "campaign": {}, "td3bc_steps": 5000}
    assert suite.remaining(fewer) == [
        "recursive TD3+BC seed 2: not run",
        "python benchmarks/reproduce.py --campaign hopper-cpu --seeds 2 --methods td3bc --jobs 1 "
        "--name hopper-cpu-td3bc-5k --td3bc-steps 5000",
    ]
    # run with --td3bc-seconds none (the smoke run of docs/results.md): the command says so,
    # or reproduce.py refuses it for want of BREMEN's times
    smoke = suite_result("halfcheetah", {"td3bc": {"0": done}}, 2)
    smoke |= {"name": "halfcheetah-cpu-smoke", "smoke": True}
    smoke["overrides"] = {"train": {}, "campaign": {}, "td3bc_steps": 200}
    smoke["methods"]["td3bc"]["train"] = {"steps": 200, "min_seconds": None}
    assert suite.remaining(smoke)[-1] == (
        "python benchmarks/reproduce.py --campaign halfcheetah-cpu --seeds 1 2 --methods td3bc "
        "--jobs 1 --name halfcheetah-cpu-smoke --td3bc-steps 200 --td3bc-seconds none"
    )
    smoke["methods"]["td3bc"]["train"]["min_seconds"] = [10.0, 20.0]  # a budget: the default
    assert suite.remaining(smoke)[-1].endswith("--td3bc-steps 200")
    # with BREMEN unfinished beside it, a budget by steps does not wait for BREMEN's times
    smoke["methods"]["td3bc"]["train"]["min_seconds"] = None
    smoke["methods"]["bremen"] = {"seeds": {"0": {"returns": [0.0, 1.0], "complete": False}}}
    assert suite.remaining(smoke)[-1].endswith("--td3bc-steps 200 --td3bc-seconds none")
    # a named rerun whose TD3+BC budget came from its own file (--td3bc-seconds-from): the
    # command names that file, or reproduce.py reads the campaign's and refuses it
    timed = suite_result("halfcheetah", {"td3bc": {"0": done}}, 2)
    timed |= {"name": "halfcheetah-cpu-timed"}
    timed["overrides"] = {"train": {}, "campaign": {}, "td3bc_steps": 50000}
    timed["overrides"]["td3bc_seconds_from"] = "benchmarks/results/halfcheetah-cpu-timed.json"
    timed["methods"]["td3bc"]["train"] = {"steps": 50000, "min_seconds": [10.0, 20.0]}
    assert suite.remaining(timed)[-1] == (
        "python benchmarks/reproduce.py --campaign halfcheetah-cpu --seeds 1 2 --methods td3bc --jobs 1 "
        "--name halfcheetah-cpu-timed --td3bc-seconds-from benchmarks/results/halfcheetah-cpu-timed.json"
    )
    # a robot's own file at its preset: every method, no flags (ant-cpu's own 50,000 steps)
    own_ant = suite_result("ant", {"td3bc": {"0": done, "1": done}}, 2)
    own_ant["overrides"] = {"train": {}, "campaign": {}, "td3bc_steps": 50000}
    lines = suite.remaining(own_ant)
    assert lines[0] == "BREMEN seed 0: not run"
    assert lines[-1].startswith(
        "python benchmarks/reproduce.py --campaign ant-cpu --seeds 2 --methods td3bc --jobs 1 (once"
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0.6,
        3,
        1e-5,
        1e16,
        float("inf"),
        "earliest",
        "true",
        "",
        "1.5",
        "yes",
        "2026-12-06",
        "a: b",
        "a #c",
        "x y=z",
        [1, 2],
        {"a": 1},
    ],
)
def test_an_override_in_the_printed_command_reads_back_as_recorded(suite_left: ModuleType, value) -> None:
    """The command's values go through the shell and reproduce.py's own parser, and must come
    back equal: a value that does not is another setting, and the runs would not resume."""
    import shlex

    from tests.benchmark_scripts import load_benchmark_script

    common = load_benchmark_script("reproduce_common.py", "bremen_reproduce_common_for_suite")
    result = suite_result("ant", {"bremen_select": {"0": [0.0, 1.0]}}, 1)
    result |= {"name": "ant-cpu-x", "smoke": True}
    result["overrides"] = {"train": {"some.key": value}, "campaign": {}, "td3bc_steps": 50000}
    words = shlex.split(suite_left.run_flags(result))
    assert words[:3] == ["--name", "ant-cpu-x", "--train-override"]
    assert common.parse_overrides(words[3:]) == {"some.key": value}


def test_a_parked_seed_is_listed_as_resumable(
    suite: ModuleType, suite_left: ModuleType, tmp_path: Path
) -> None:
    import io
    import tarfile

    result = suite_result("hopper", {"bremen": {"0": [0.0, 1.0]}}, 3)
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
    result = suite_result(
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
    result = suite_result("ant", {"bc": {"0": done, "1": done, "2": done}}, 1)
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


def test_td3bc_is_estimated_from_its_budget_once_the_budget_is_fixed(
    suite: ModuleType, suite_left: ModuleType
) -> None:
    """With BREMEN's and selection's 3 seeds complete the harness fixes TD3+BC's budget: the
    longest flushed BREMEN or selection time at each deployment. TD3+BC's estimate is that
    budget, no less than the least time its step floor took, and its own time where it has one."""
    done = [0.0, 1.0, 2.0, 3.0]
    result = suite_result(
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
