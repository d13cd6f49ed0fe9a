"""The timeline's "candidate after k" row follows the registry: named while the campaign runs,
marked and without figures once rejected, replaced by the retrained candidate."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from bremen_robot.console.app import create_app
from bremen_robot.registry import Registry
from tests.console.console_helpers import build_workspace, write_json
from tests.registry.registry_helpers import make_artifact

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def _view(ws: Path) -> dict[str, Any]:
    got: dict[str, Any] = TestClient(create_app(ws), base_url="http://127.0.0.1:8765").get("/api/view").json()
    return got


def _candidate_row(ws: Path) -> dict[str, str]:
    row: dict[str, str] = _view(ws)["timeline"][-1]
    assert row["deployment"] == "candidate after 2"
    return row


def _candidate_points(ws: Path) -> int:
    return sum(m["cls"] == "candidate" for c in _view(ws)["charts"] for m in c["circles"])


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, Any]]:
    root = tmp_path / "ws"
    return root, build_workspace(root, monkeypatch)


def _reject(root: Path, policy_id: str) -> None:
    with Registry.open(root) as reg:
        reg.reject(policy_id, "joint 3 oscillates", operator="alice")


def test_a_rejected_candidate_is_marked_and_its_figures_are_not_shown(ws):
    root, ids = ws
    assert _candidate_points(root) == 4  # return and success, against deployment and samples
    _reject(root, ids["second"])
    # summary.json from the campaign's end still says 'candidate': the registry's state wins
    final = {"policy_id": ids["second"], "state": "candidate", "eval_return_mean": -10.0}
    write_json(root / "summary.json", {"campaign": "demo", "deployments": [], "final_candidate": final})
    assert _candidate_row(root) == {
        "deployment": "candidate after 2",
        "policy": f"{ids['second']} (rejected)",
        "trained_on": "500",
        "samples": "",
        "return": "not shown: candidate rejected",
        "success": "",
        "episodes": "",
        "interventions": "",
    }
    assert _candidate_points(root) == 0


def test_the_retrained_candidate_replaces_the_rejected_one_before_and_after_its_evaluation(ws, tmp_path):
    root, ids = ws
    _reject(root, ids["second"])
    with Registry.open(root) as reg:  # d2/train moved aside, the campaign retrained and registered
        third = reg.register(make_artifact(tmp_path / "a4", 4), lineage={"deployment": 2})
    row = _candidate_row(root)  # d2/eval.json is still the rejected candidate's
    assert (row["policy"], row["return"], row["success"]) == (
        f"{third.id} (candidate)",
        "not evaluated yet",
        "",
    )
    assert _candidate_points(root) == 0
    write_json(
        root / "d2" / "eval.json",
        {"mean": -5.0, "std": 0.5, "success_rate": 0.9, "policy_sha256": third.sha256},
    )
    row = _candidate_row(root)
    assert (row["policy"], row["return"], row["success"]) == (f"{third.id} (candidate)", "-5.0 ± 0.5", "90%")


def test_a_kept_deployed_policy_is_the_candidate_its_evaluation_names(ws, tmp_path):
    """Selection kept the deployed policy after a rejection: nothing new was registered, and
    d2/eval.json is the deployed policy's evaluation."""
    root, ids = ws
    _reject(root, ids["second"])
    with Registry.open(root) as reg:
        sha = reg.get(ids["first"]).sha256
    write_json(
        root / "d2" / "eval.json", {"mean": -19.0, "std": 2.5, "success_rate": 0.55, "policy_sha256": sha}
    )
    row = _candidate_row(root)
    assert (row["policy"], row["return"], row["success"]) == (
        f"{ids['first']} (approved)",
        "-19.0 ± 2.5",
        "55%",
    )


def test_a_shadow_run_before_the_approval_adds_no_deployment_row(ws):
    """With shadow on, d3/ holds the waiting candidate's shadow run before anyone approves it:
    the last row stays the candidate after 2, with its registry state and its own figures."""
    root, ids = ws
    (root / "d3" / "shadow_bag").mkdir(parents=True)
    write_json(root / "d3" / "shadow.json", {"candidate": ids["second"]})
    assert [r["deployment"] for r in _view(root)["timeline"]] == ["1", "2", "candidate after 2"]
    row = _candidate_row(root)
    assert (row["policy"], row["return"], row["success"]) == (
        f"{ids['second']} (candidate)",
        "-10.0 ± 1.0",
        "80%",
    )
    (root / "d3" / "bag").mkdir()  # its collection started: now it is deployment 3
    assert [r["deployment"] for r in _view(root)["timeline"]][-1] == "3"


def test_a_candidate_retired_after_it_collected_keeps_its_figures(ws, tmp_path):
    """Retired after a deployment is the end of a service, not a turned-down candidate."""
    root, ids = ws
    from bremen_robot.registry import key_paths

    priv = key_paths("alice", tmp_path / "operators")[0]
    with Registry.open(root) as reg:
        reg.approve(ids["second"], "alice", priv)
        reg.mark_deployed(ids["second"])
        reg.retire(ids["second"], operator="alice", note="end of the campaign")
    row = _candidate_row(root)
    assert (row["policy"], row["return"], row["success"]) == (
        f"{ids['second']} (retired)",
        "-10.0 ± 1.0",
        "80%",
    )
    assert _candidate_points(root) == 4


def test_a_collection_that_writes_no_bag_yet_is_a_deployment_row(ws):
    """The direct collector writes d3/data.npz only when it ends, a fleet d3/shards/ (never a
    bag): while either collects, deployment 3 is a row, as it was before shadow runs existed."""
    root, _ = ws
    (root / "d3").mkdir()  # the runner makes d<k>, then the direct collector runs for minutes
    assert [r["deployment"] for r in _view(root)["timeline"]][-1] == "3"
    (root / "d3").rmdir()
    (root / "d3" / "shards").mkdir(parents=True)
    (root / "d3" / "collect.yaml").write_text("steps: 100\n")
    assert [r["deployment"] for r in _view(root)["timeline"]][-1] == "3"


def test_a_collection_after_a_shadow_run_is_a_row_while_the_status_says_so(ws):
    root, _ = ws
    (root / "d3" / "shadow_bag").mkdir(parents=True)
    write_json(root / "d3" / "shadow.json", {"candidate": "x"})
    assert [r["deployment"] for r in _view(root)["timeline"]][-1] == "candidate after 2"
    write_json(root / "status.json", {"stage": "collecting", "deployment": 3})
    assert [r["deployment"] for r in _view(root)["timeline"]][-1] == "3"
