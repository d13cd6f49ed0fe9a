"""Parking an unfinished reproduction run in git and bringing it back: the run then finishes
exactly as the same run never interrupted does (a session's machine does not outlive it)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import TINY_TRAINING, load_benchmark_script

TINY = [
    "--campaign",
    "hopper-cpu",
    "--seeds",
    "0",
    "--methods",
    "bremen",
    "--deployments",
    "2",
    *TINY_TRAINING,
]


@pytest.fixture(scope="module")
def park() -> ModuleType:
    return load_benchmark_script("park_runs.py", "bremen_park_runs")


def _job(runs: Path) -> tuple[ModuleType, Any]:
    harness = load_benchmark_script("reproduce.py", "bremen_reproduce")
    args = harness.parse_args(TINY)
    jobs, _ = harness.plan_jobs(args, harness.load_campaigns(args), runs / "tiny")
    return harness, jobs[0]


def _returns(ws: Path) -> list[float]:
    return [json.loads((ws / f"d{k}" / "eval.json").read_text())["mean"] for k in (1, 2)]


def test_a_parked_run_finishes_as_the_uninterrupted_run_does(
    park: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mujoco", reason="mujoco (sim extra) missing")
    import bremen_robot.trainer as trainer

    harness, straight = _job(tmp_path / "straight")
    assert harness.run_job(straight) == {"ok": True, "error": ""}

    # the same run, cut off while it trains deployment 2 (a session that ended)
    _, cut = _job(tmp_path / "first")
    real_train = trainer.train
    calls: list[int] = []

    def train_then_stop(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the session ended")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(trainer, "train", train_then_stop)
    assert harness.run_job(cut)["ok"] is False
    monkeypatch.setattr(trainer, "train", real_train)
    assert (cut.workspace / "d2" / "data.npz").is_file() and not (cut.workspace / "d2" / "eval.json").exists()

    parked = tmp_path / "parked"
    assert park.main(["park", "--runs", str(tmp_path / "first"), "--parked", str(parked)]) == 0
    archive = parked / "tiny" / "bremen" / "seed0.tar.gz"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert "d1/data.npz" not in names and "d2/data.npz" not in names  # re-collected instead
    assert "d1/train/manifest.json" in names and "d1/train/ensemble.pt" in names  # warm-starts d2
    assert not any(n.startswith("d2/train") for n in names)  # unfinished: trained again
    assert "registry.sqlite" in names and "harness.json" in names
    with tarfile.open(archive) as tar:
        recipes = json.loads(tar.extractfile(park.RECIPE_FILE).read())  # type: ignore[union-attr]
    assert recipes["cpu"] == park.cpu_name() and park.cpu_name()
    assert [(r["file"], r["seed"], r["policy"] is None) for r in recipes["recollect"]] == [
        ("d1/data.npz", 1, True),  # the random first deployment
        ("d2/data.npz", 2, False),
    ]

    # the seed restarted in another checkout without unpark: its park must not replace this copy
    _, restarted = _job(tmp_path / "restarted")
    monkeypatch.setattr(trainer, "train", train_then_stop)
    calls.clear()
    calls.append(1)  # stop at its first training: no deployment done
    assert harness.run_job(restarted)["ok"] is False
    monkeypatch.setattr(trainer, "train", real_train)
    before = archive.read_bytes()
    assert park.main(["park", "--runs", str(tmp_path / "restarted"), "--parked", str(parked)]) == 1
    assert archive.read_bytes() == before

    # a fresh checkout: unpark, then the harness goes on from deployment 2
    assert park.main(["unpark", "--runs", str(tmp_path / "second"), "--parked", str(parked)]) == 0
    _, resumed = _job(tmp_path / "second")
    assert resumed.workspace.is_dir()
    assert harness.run_job(resumed) == {"ok": True, "error": ""}
    assert _returns(resumed.workspace) == _returns(straight.workspace)

    # finished, but not aggregated yet: parked again (the results file is the record)
    results = tmp_path / "results"
    argv = [
        "park",
        "--runs",
        str(tmp_path / "second"),
        "--parked",
        str(parked),
        "--results-dir",
        str(results),
    ]
    assert park.main(argv) == 0
    with tarfile.open(archive, mode="r:gz") as tar:  # its copy was cut off with 1 evaluated: now 2
        assert park.evaluated(tar.getnames()) == 2
    # aggregated: the next park drops its parked copy, so no later unpark runs it again
    out = ["--out", str(tmp_path / "second" / "tiny"), "--results-dir", str(results), "--name", "tiny"]
    assert harness.main([*TINY, *out, "--aggregate-only"]) == 0
    stale = archive.read_bytes()
    assert park.main(argv) == 0
    assert not archive.exists()
    # a copy parked before the aggregation (a session that aggregated and stopped) is not unparked
    archive.write_bytes(stale)
    unpark = [
        "unpark",
        "--runs",
        str(tmp_path / "third"),
        "--parked",
        str(parked),
        "--results-dir",
        str(results),
    ]
    assert park.main(unpark) == 0
    assert not archive.exists() and not (tmp_path / "third" / "tiny").exists()


def test_unpark_installs_nothing_whose_data_comes_back_different(park: ModuleType, tmp_path: Path) -> None:
    """A recipe that no longer reproduces its data (another simulator version, say) installs
    nothing, leaves no staging copy behind (the archive is the run), and says so in one line."""
    pytest.importorskip("mujoco", reason="mujoco (sim extra) missing")
    import numpy as np

    from bremen_robot.data.dataset import Dataset
    from bremen_robot.data.real_rollout import make_env, rollout, uniform_policy

    ws = tmp_path / "runs" / "tiny" / "bremen" / "seed0"
    (ws / "d1").mkdir(parents=True)
    env, task = make_env("sim:hopper/mujoco")
    data = rollout(
        env, task, uniform_policy(task, np.random.default_rng(1)), steps=50, seed=1, policy_sha256="random"
    )
    env.close()
    data.save(ws / "d1" / "data.npz")
    item = {
        "file": "d1/data.npz",
        "env": "sim:hopper/mujoco",
        "deployment": 1,
        "steps": 50,
        "seed": 1,
        "sigma": 0.0,
        "policy_sha256": "random",
        "policy": None,
        "digest": Dataset.load(ws / "d1" / "data.npz").digest(),
    }
    assert park.recollect(ws, item) == item["digest"]  # the recipe reproduces the data exactly

    archive = tmp_path / "parked" / "tiny" / "bremen" / "seed0.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        body = json.dumps({"recollect": [{**item, "seed": 2}], "left_out": []}).encode()
        info = tarfile.TarInfo(park.RECIPE_FILE)
        info.size = len(body)
        import io

        tar.addfile(info, io.BytesIO(body))
    target = tmp_path / "fresh" / "tiny" / "bremen" / "seed0"
    line = park.unpark_one(archive, target)
    assert "came back with digest" in line and "not installed" in line
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no staging copy left to fill the disk
    assert archive.stat().st_size > 0
    assert (
        park.main(["unpark", "--runs", str(tmp_path / "fresh2"), "--parked", str(tmp_path / "parked")]) == 1
    )

    # told to, it goes on with the new data and says so where the results file will read it
    line = park.unpark_one(archive, target, accept_different_data=True)
    assert "1 of 1 datasets re-collected with other digests (accepted)" in line
    note = json.loads((target / park.UNPARKED_FILE).read_text())
    assert note["recollected_differ"] == ["d1/data.npz"]
    assert not (target / park.RECIPE_FILE).exists()


def test_a_running_td3bc_loop_holds_its_workspace_so_park_leaves_it_alone(
    park: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TD3+BC runs outside the campaign (which locks its workspace itself): it takes the same
    lock, so a second harness on its workspace fails at once and park does not pack it mid-write."""
    import subprocess
    import sys

    harness = load_benchmark_script("reproduce.py", "bremen_reproduce")
    import reproduce_td3bc  # the harness's sibling module, importable once the harness is loaded

    def loop_without_the_lock(job: Any) -> None:
        raise AssertionError("the TD3+BC loop ran while another process held its workspace")

    monkeypatch.setattr(reproduce_td3bc, "_run_td3bc_locked", loop_without_the_lock)
    args = harness.parse_args([*TINY[:4], "--methods", "td3bc", *TINY[6:10], "--td3bc-seconds", "none"])
    jobs, _ = harness.plan_jobs(args, harness.load_campaigns(args), tmp_path / "runs" / "tiny")
    ws = jobs[0].workspace
    ws.mkdir(parents=True)
    (ws / "harness.json").write_text(json.dumps(harness.job_record(jobs[0])))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from bremen_robot.workspace_lock import folder_lock\n"
            f"with folder_lock({str(ws)!r}, 'workspace'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = harness.run_job(jobs[0])
        assert result["ok"] is False and "is in use by" in result["error"]
        # the run is not parked, and the exit code says so (a routine's `park && git commit` stops)
        assert (
            park.main(["park", "--runs", str(tmp_path / "runs"), "--parked", str(tmp_path / "parked")]) == 1
        )
        assert not (tmp_path / "parked").exists()
    finally:
        holder.kill()
        holder.wait()


def test_the_harness_will_not_start_a_seed_over_while_its_parked_run_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness, job = _job(tmp_path / "runs")
    monkeypatch.setattr(harness, "HERE", tmp_path)  # benchmarks/ of this test: runs/ and parked/
    archive = tmp_path / "parked" / "tiny" / "bremen" / "seed0.tar.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"")
    assert harness.parked_not_unparked([job], tmp_path / "runs" / "tiny") == [archive]
    assert harness.parked_not_unparked([job], tmp_path / "elsewhere" / "tiny") == []  # a custom --out
    job.workspace.mkdir(parents=True)
    (job.workspace / "harness.json").write_text("{}")  # unparked (or run here): it resumes
    assert harness.parked_not_unparked([job], tmp_path / "runs" / "tiny") == []
