"""The candidates section: what the waiting candidate's review says in brief (evaluation, red
flags as `bremen review` raises them, selection), and a heading that asks the operator to act only
while the campaign waits."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from bremen_robot.console.app import create_app
from bremen_robot.registry import Registry
from tests.console.console_helpers import build_workspace, status, write_json
from tests.registry.registry_helpers import SYNTHETIC_REPORT, make_artifact

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def _client(ws: Path) -> TestClient:
    return TestClient(create_app(ws), base_url="http://127.0.0.1:8765")


def _view(ws: Path) -> dict[str, Any]:
    got: dict[str, Any] = _client(ws).get("/api/view").json()
    return got


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, Any]]:
    root = tmp_path / "ws"
    return root, build_workspace(root, monkeypatch)


def test_the_waiting_candidate_shows_its_evaluation_flags_selection_and_what_to_do(ws):
    root, ids = ws
    second, where = ids["second"], f"--workspace {root.resolve()}"
    view = _view(root)
    assert view["pending"] == [
        {
            "id": second,
            "deployment": "2",
            "role": "waiting for approval",
            "return": "-10.0 ± 1.0",
            "success": "80%",
            "flags": "none",
            "selection": "selection off",
            "review": {"text": f"bremen review {second} {where}", "code": True},
        }
    ]
    assert view["pending_heading"] == "waiting for approval"
    assert view["pending_note"] == (
        f"The campaign waits: review candidate {second} (bremen review {second} {where}), then approve "
        f"it (bremen approve {second} --operator NAME {where}) or reject it "
        f"(bremen reject {second} --reason TEXT {where})."
    )
    html = _client(root).get("/").text
    assert '<h2 id="pending-heading">waiting for approval</h2>' in html
    assert "<td>-10.0 ± 1.0</td><td>80%</td><td>none</td><td>selection off</td>" in html


def test_red_flags_are_counted_and_named_as_the_review_raises_them(ws):
    """Against the deployed policy (d1/eval.json: -20.0 ± 2.0, 60 %) a candidate at -30.0 whose
    shield would intervene 3 times per episode: a regressing return and too many interventions."""
    root, ids = ws
    with Registry.open(root) as reg:
        reg.mark_deployed(ids["first"])
    c = _client(root)  # one server: its cache must not keep the verdict of the old file
    assert c.get("/api/view").json()["pending"][0]["flags"] == "none"  # -10.0 ± 1.0, 80 %: better
    # the evaluation lands while the registry stays as it was: the flags must follow the file
    evaluation = {
        "mean": -30.0,
        "std": 1.0,
        "success_rate": 0.3,
        "policy_sha256": ids["second_sha"],
        "interventions": {"episodes": 2, "total": 6, "by_reason": {"clip": 6}, "mode": "observe"},
    }
    write_json(root / "d2" / "eval.json", evaluation)
    row = c.get("/api/view").json()["pending"][0]
    assert (row["return"], row["success"], row["flags"]) == (
        "-30.0 ± 1.0",
        "30%",
        "2: regressing_return, many_interventions",
    )


def test_the_campaigns_selection_line_is_shown(ws, tmp_path):
    root, _ = ws
    line = "proposing snapshot trpo_2 of 3 (offline lower bound)"
    report = {**SYNTHETIC_REPORT, "campaign_selection": {"line": line, "warning": None, "proposed": "trpo_2"}}
    with Registry.open(root) as reg:
        third = reg.register(make_artifact(tmp_path / "a4", 4, report=report), lineage={"deployment": 2}).id
    row = next(p for p in _view(root)["pending"] if p["id"] == third)
    # not evaluated in the workspace: the training report's evaluation, as 'bremen review' shows it
    assert (row["role"], row["return"], row["flags"], row["selection"]) == (
        "last candidate, not waited for now",
        "-15.0 ± 0.0",
        "none",
        line,
    )


def test_a_finished_campaigns_candidate_is_its_final_candidate_not_a_request_to_act(ws):
    root, ids = ws
    write_json(root / "status.json", status(stage="finished", policy_id=ids["second"]))
    final = {"policy_id": ids["second"], "state": "candidate", "eval_return_mean": -10.0}
    write_json(root / "summary.json", {"campaign": "demo", "deployments": [], "final_candidate": final})
    view = _view(root)
    assert (view["pending_heading"], [p["role"] for p in view["pending"]]) == (
        "final candidate",
        ["final candidate"],
    )
    assert view["pending_note"] == (
        "The campaign has finished: nothing waits for an approval. Approving its final candidate is "
        "optional, for a next campaign to deploy it."
    )
    html = _client(root).get("/").text
    assert '<h2 id="pending-heading">final candidate</h2>' in html and "waiting for approval" not in html


def test_a_campaign_that_stopped_while_waiting_waits_for_nothing(ws):
    root, ids = ws
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    write_json(
        root / "status.json",
        status(stage="waiting_for_approval", policy_id=ids["second"], pid=int(ended.stdout)),
    )
    view = _view(root)
    assert (view["pending_heading"], view["pending_note"]) == (
        "candidates",
        "Nothing waits for an approval now.",
    )
    assert [p["role"] for p in view["pending"]] == ["last candidate, not waited for now"]
