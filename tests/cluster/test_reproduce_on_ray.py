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
