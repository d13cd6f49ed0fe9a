"""The reproduction harness runs its (method, seed) runs as Ray tasks on a Ray it starts on this
machine (token authentication on), and a run on a node that cannot see ``--out`` does
nothing. The harness runs as a user runs it, a command of its own, inside a loopback-only
network namespace (:mod:`tests.cluster.island`): its Ray listens on every interface it has."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmark_scripts import TINY_TRAINING, load_benchmark_script
from tests.cluster.island import Island

REPRODUCE = Path(__file__).resolve().parents[2] / "benchmarks" / "reproduce.py"


def _harness() -> ModuleType:
    return load_benchmark_script("reproduce.py", "bremen_reproduce")


TINY = [
    "--campaign",
    "halfcheetah-cpu",
    "--seeds",
    "0",
    "--methods",
    "bremen",
    "bc",
    "--deployments",
    "1",
    *TINY_TRAINING,
]


def test_two_tiny_runs_go_through_a_local_ray_at_once(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray (cluster extra) missing: pip install -e '.[cluster]'")
    pytest.importorskip("mujoco", reason="mujoco (sim extra) missing")
    out, results = tmp_path / "runs", tmp_path / "results"
    argv = [*TINY, "--jobs", "2", "--name", "tiny", "--out", str(out), "--results-dir", str(results)]
    island, why = Island.open()
    try:
        cmd = [*(island.prefix if island else []), sys.executable, str(REPRODUCE), *argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    finally:
        if island is not None:
            island.close()
    assert proc.returncode == 0, f"(island: {why or 'yes'})\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    result = json.loads((results / "tiny.json").read_text())
    assert result["failed_runs"] == []
    assert result["ran_on"]["cluster"] == "local"
    assert result["ran_on"]["runs_at_once"] == 2
    assert len(result["ran_on"]["nodes"]) == 1  # Ray on this machine only
    assert result["ran_on"]["token_auth"] is True
    for method in ("bremen", "bc"):
        ws = out / method / "seed0"
        summary = json.loads((ws / "summary.json").read_text())
        assert summary["deployment_count"] == 1
        timing = json.loads((ws / "timing.json").read_text())
        assert [r["complete"] for r in timing["runs"]] == [True]
        assert json.loads((ws / "harness.json").read_text())["method"] == method
    spans = {}  # both ran at once: each run's span (timing.json: its end and wall time) overlaps the other's
    for method in ("bremen", "bc"):
        run = json.loads((out / method / "seed0" / "timing.json").read_text())["runs"][0]
        end = datetime.fromisoformat(run["ended"]).timestamp()
        spans[method] = (end - run["wall_s"], end)
    assert spans["bremen"][0] < spans["bc"][1] and spans["bc"][0] < spans["bremen"][1], spans
    assert list(out.glob(".harness-driver*")) == []  # the driver removed its marker


def test_two_drivers_sharing_out_each_see_their_own_marker(tmp_path: Path) -> None:
    """One harness per method on the same campaign share ``--out``: the second one's marker must
    not hide the first one's (every run of the first failed 'does not see --out' before)."""
    _harness()
    import reproduce_ray

    first = reproduce_ray.driver_marker(tmp_path, "first-token")
    first.write_text("first-token")
    second = reproduce_ray.driver_marker(tmp_path, "second-token")
    second.write_text("second-token")
    assert reproduce_ray.sees_driver_out(str(first), "first-token") is True
    assert reproduce_ray.sees_driver_out(str(second), "second-token") is True
    second.unlink()  # the second driver ends first
    assert reproduce_ray.sees_driver_out(str(first), "first-token") is True
    assert reproduce_ray.sees_driver_out(str(first), "second-token") is False


def test_a_run_on_a_node_that_does_not_see_out_runs_nothing(tmp_path: Path) -> None:
    harness = _harness()
    args = harness.parse_args(TINY)
    jobs, _ = harness.plan_jobs(args, harness.load_campaigns(args), tmp_path / "runs")
    import reproduce_ray

    marker = tmp_path / "runs" / reproduce_ray.MARKER  # the driver wrote it on another machine
    got = reproduce_ray.run_on_node(jobs[0], str(tmp_path), str(marker), "the-driver-token")
    assert got["ok"] is False
    assert "does not see the driver's --out" in got["error"]
    assert not jobs[0].workspace.exists()


def test_ctrl_c_stops_the_harness_its_ray_and_its_runs(tmp_path: Path) -> None:
    """A SIGINT ends the harness within seconds, Ray and the runs with it, and the workspace is
    free to resume or park, also when it was started in the background (``nohup ... &``), which
    leaves SIGINT ignored: there it used to go on until its runs ended, hours later."""
    import signal
    import time

    pytest.importorskip("ray", reason="ray (cluster extra) missing: pip install -e '.[cluster]'")
    pytest.importorskip("mujoco", reason="mujoco (sim extra) missing")
    from bremen_robot.workspace_lock import folder_lock

    out = tmp_path / "runs"
    argv = [*TINY[:6], "--deployments", "1", *TINY_TRAINING, "--steps-per-deployment", "2000000"]
    argv += ["--jobs", "1", "--name", "tiny", "--out", str(out), "--results-dir", str(tmp_path / "results")]
    island, why = Island.open()
    try:
        cmd = [*(island.prefix if island else []), sys.executable, str(REPRODUCE), *argv]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as 'nohup ... &' starts it
        )
        log = out / "bremen" / "seed0" / "harness.log"
        end = time.monotonic() + 120
        while time.monotonic() < end and "collecting" not in (log.read_text() if log.is_file() else ""):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert "collecting" in log.read_text(), f"(island: {why or 'yes'}) the run never started"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL: its Ray and worker go with it
            proc.communicate()
            raise AssertionError("the harness ignored Ctrl-C for 60 s") from None
        took = time.monotonic() - started
    finally:
        if island is not None:
            island.close()
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted: the runs stopped; re-run the same command to resume them" in stderr
    assert took < 30, took
    assert list(out.glob(".harness-driver*")) == []
    with folder_lock(out / "bremen" / "seed0", "workspace"):  # the run's worker is gone
        pass
    assert not (out / "bremen" / "seed0" / "d1" / "collect.json").exists()  # stopped mid-collection
