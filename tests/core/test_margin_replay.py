"""benchmarks/margin_replay.py on a hand-built campaign whose answer is worked out by hand:
deployment 2 proposes at +10 % (kept by margin 0.05), deployment 3 at +2 % (changed by 0.05:
the replay stops there and keeps the deployed policy's return), deployment 4 is never reached."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmark_scripts import load_benchmark_script


@pytest.fixture(scope="module")
def replay() -> ModuleType:
    return load_benchmark_script("margin_replay.py", "bremen_margin_replay")


def _deployment(
    ws: Path, k: int, true: float, proposed: str | None, est: float | None, ref: float | None
) -> None:
    d = ws / f"d{k}"
    d.mkdir(parents=True)
    (d / "eval.json").write_text(json.dumps({"mean": true}))
    table = [{"snapshot": "bc", "offline_estimate": 50.0}]
    if proposed is not None:
        table.append({"snapshot": proposed, "offline_estimate": est})
    (d / "selection.json").write_text(
        json.dumps(
            {
                "keep_deployed": proposed is None,
                "proposed": proposed,
                "deployed_estimate": ref,
                "table": table,
            }
        )
    )


def test_the_replay_keeps_the_deployed_policy_where_the_margin_is_not_cleared_and_stops(
    tmp_path: Path, replay: ModuleType
) -> None:
    ws = tmp_path / "bremen_select" / "seed0"
    _deployment(ws, 1, 200.0, "trpo-0100", 80.0, None)  # deployment 1: nothing deployed to beat
    _deployment(ws, 2, 260.0, "trpo-0050", 110.0, 100.0)  # +10 %: clears 0.05
    _deployment(ws, 3, 40.0, "trpo-0020", 122.4, 120.0)  # +2 %: does not clear 0.05 (needs > 126)
    _deployment(ws, 4, 300.0, "trpo-0030", 200.0, 100.0)  # after a changed decision: not replayed
    rows = replay.replay_seed(ws, 0.05)
    assert [(r["deployment"], r["changed"]) for r in rows] == [(2, False), (3, True)]
    assert rows[0]["with_margin"] == 260.0
    assert rows[1]["with_margin"] == 260.0 and rows[1]["recorded"] == 40.0
    assert rows[1]["relative_margin"] == pytest.approx(0.02)
    assert replay.regressed(40.0, 260.0) and not replay.regressed(240.0, 260.0)
    assert [r["changed"] for r in replay.replay_seed(ws, 0.0)] == [False, False, False]


def test_runs_the_replay_cannot_answer_exactly_are_refused(tmp_path: Path, replay: ModuleType) -> None:
    warned = tmp_path / "warn" / "seed0"
    _deployment(warned, 1, 200.0, "trpo-0100", 80.0, None)
    _deployment(warned, 2, 260.0, "trpo-0050", 110.0, 100.0)
    selection = {"when_none_beats": "propose_best_with_warning"}
    (warned / "harness.json").write_text(json.dumps({"campaign": {"selection": selection}}))
    with pytest.raises(SystemExit, match="when_none_beats is 'propose_best_with_warning'"):
        replay.replay_seed(warned, 0.05)
    stricter = tmp_path / "m05" / "seed0"
    _deployment(stricter, 1, 200.0, "trpo-0100", 80.0, None)
    _deployment(stricter, 2, 260.0, "trpo-0050", 110.0, 100.0)
    record = json.loads((stricter / "d2" / "selection.json").read_text())
    (stricter / "d2" / "selection.json").write_text(json.dumps({**record, "margin": 0.05}))
    with pytest.raises(SystemExit, match="ran with margin 0.05; replay 0.05 or more"):
        replay.replay_seed(stricter, 0.02)
    assert [r["changed"] for r in replay.replay_seed(stricter, 0.05)] == [False]
    earliest = tmp_path / "earliest" / "seed0"
    _deployment(earliest, 1, 200.0, "trpo-0100", 80.0, None)
    _deployment(earliest, 2, 260.0, "trpo-0050", 110.0, 100.0)
    record = json.loads((earliest / "d2" / "selection.json").read_text())
    (earliest / "d2" / "selection.json").write_text(json.dumps({**record, "pick": "earliest"}))
    with pytest.raises(
        SystemExit, match="chose with selection.pick 'earliest'; the replay is exact only for pick"
    ):
        replay.replay_seed(earliest, 0.05)
