"""benchmarks/selection_study.py measures each snapshot's true return "with the campaign's
evaluation seed": the seed the run's own evaluations used, which depends on its ``seed_layout``
(bremen_robot/campaign/seeds.py). A run recorded without the field is a sliding one."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bremen_robot.campaign.seeds import evaluation_seed
from tests.benchmark_scripts import load_benchmark_script


@pytest.fixture(scope="module")
def study() -> ModuleType:
    return load_benchmark_script("selection_study.py", "bremen_selection_study_seeds")


def _run(tmp_path: Path, campaign: dict[str, Any]) -> Path:
    """A bremen_select run of seed 0 whose deployment 2 selected among one snapshot."""
    ws = tmp_path / "bremen_select" / "seed0"
    (ws / "d1").mkdir(parents=True)
    (ws / "d2" / "train").mkdir(parents=True)
    (ws / "harness.json").write_text(json.dumps({"campaign": campaign}))
    (ws / "d1" / "eval.json").write_text(json.dumps({"env": "sim:hopper/mujoco", "mean": 1.0}))
    (ws / "d2" / "selection.json").write_text(json.dumps({"table": [{"snapshot": "s1"}]}))
    (ws / "d2" / "train" / "report.json").write_text(json.dumps({"config": {"selection": {"margin": 0.0}}}))
    return ws.parent


@pytest.mark.parametrize(
    "layout, expected",
    [
        ("spaced", evaluation_seed(4, "spaced", random_policy=False)),
        ("sliding", 11),
        (None, 11),  # a harness.json from before the field: collected and evaluated sliding
    ],
)
def test_true_returns_use_the_runs_own_evaluation_seed(
    study: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    layout: str | None,
    expected: int,
) -> None:
    campaign: dict[str, Any] = {"seed": 4, "evaluation": {"episodes": 2}}
    if layout is not None:
        campaign["seed_layout"] = layout
    run = _run(tmp_path, campaign)
    seen: list[int] = []

    def true_returns(snapshot: Path, env: str, episodes: int, seed: int) -> list[float]:
        seen.append(seed)
        return [1.0] * episodes

    monkeypatch.setattr(study, "true_returns", true_returns)
    monkeypatch.setattr(study, "RULES", {})
    cache = {"seed0/d2": {"snapshots": {}, "shifts": {"s1": 0.0}}}
    study.study_case(run, 0, 2, cache, lambda: None)
    assert seen == [expected]
