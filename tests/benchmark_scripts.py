"""Load a script of ``benchmarks/`` as a module: they are scripts, not a package, and tests
call their functions on hand-built inputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark_script(filename: str, module_name: str) -> ModuleType:
    """``benchmarks/<filename>`` executed as module ``module_name`` (registered in sys.modules, so
    that dataclasses and pickling inside it resolve their module)."""
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# A run of the harness small enough for a test: every network tiny, one TRPO iteration.
TINY_TRAINING = [
    "--steps-per-deployment",
    "300",
    "--eval-episodes",
    "1",
    "--train-override",
    "trpo.iterations=1",
    "trpo.steps_per_iteration=200",
    "trpo.horizon=10",
    "ensemble.members=2",
    "ensemble.hidden=[16]",
    "ensemble.max_epochs=1",
    "bc.hidden=[16]",
    "bc.steps=10",
]


def reproduce_harness() -> ModuleType:
    """``benchmarks/reproduce.py`` as a module."""
    return load_benchmark_script("reproduce.py", "bremen_reproduce")


def plan_harness(tmp_path: Path, *argv: str) -> tuple[ModuleType, dict[tuple[str, int], Any], dict[str, Any]]:
    """The harness planned for seeds 0 and 1 with ``argv``: the module, its jobs by (method, seed)
    and the training summaries."""
    harness = reproduce_harness()  # no results file unless the test names one: never the committed ones
    args = harness.parse_args(["--seeds", "0", "1", "--results-dir", str(tmp_path / "none"), *argv])
    jobs, trains = harness.plan_jobs(args, harness.load_campaigns(args), tmp_path)
    return harness, {(j.method, j.seed): j for j in jobs}, trains


def write_harness_workspace(harness: ModuleType, job: Any, returns: list[float], record: Any = None) -> None:
    """A workspace as a run leaves it: random policy's return, then one return per deployment."""
    from bremen_robot.campaign.workspace import write_json_atomic

    ws = job.workspace
    write_json_atomic(ws / "harness.json", record or harness.job_record(job))
    write_json_atomic(ws / "d1" / "eval_random.json", {"mean": returns[0], "std": 1.0})
    for k, ret in enumerate(returns[1:], 1):
        write_json_atomic(ws / f"d{k}" / "collect.json", {"steps": 2000})
        write_json_atomic(ws / f"d{k}" / "eval.json", {"mean": ret, "std": 1.0})


def aggregate_only(harness: ModuleType, tmp_path: Path, runs: str, *argv: str) -> dict[str, Any]:
    """``reproduce.py --aggregate-only`` of the workspaces under ``tmp_path/runs`` into
    ``tmp_path/kept.json`` (2 deployments unless ``argv`` says otherwise); that file's content."""
    import json

    argv = ("--deployments", "2", "--aggregate-only", "--name", "kept", "--out", str(tmp_path / runs), *argv)
    assert harness.main([*argv, "--results-dir", str(tmp_path)]) == 0
    return dict(json.loads((tmp_path / "kept.json").read_text()))
