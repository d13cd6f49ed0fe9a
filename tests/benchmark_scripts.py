"""Load a script of ``benchmarks/`` as a module: they are scripts, not a package, and tests
call their functions on hand-built inputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
