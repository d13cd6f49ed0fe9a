"""`bremen bench` starts a Ray cluster only when asked with --cluster, and never with --quick."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bremen_robot.bench import fleet
from bremen_robot.cli import main


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    seen: list[bool] = []

    def fake_run(quick: bool) -> dict[str, Any]:
        seen.append(quick)
        return {"fleet_collect_speedup_2": 1.5}

    monkeypatch.setattr(fleet, "run", fake_run)
    return seen


@pytest.mark.parametrize("flags", [["--quick"], [], ["--quick", "--cluster"]])
def test_the_fleet_section_does_not_run_unasked_or_quick(
    calls: list[bool], flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *flags, "--only", "fleet"]) == 0
    assert calls == []
    assert "cluster fleet collection" in capsys.readouterr().out  # says why it did not run


def test_the_fleet_section_runs_with_cluster(calls: list[bool], tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--cluster", "--only", "fleet", "--json", str(out)]) == 0
    assert calls == [False]
    assert json.loads(out.read_text())["fleet_collect_speedup_2"] == 1.5
