"""Bad input to the CLI found by a sweep of every command: one line naming the problem and the
fix, exit 2, and nothing already written changed. The expected lines are written out here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bremen_robot.cli import main


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "internal error" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def point_artifact(tmp_path: Path) -> Path:
    """A frozen (untrained) policy of the toy point task: evaluates in milliseconds."""
    from bremen_robot.policy.artifact import export_policy
    from bremen_robot.policy.gaussian import GaussianPolicy
    from bremen_robot.tasks import get_task

    task = get_task("point")
    torch.manual_seed(0)
    pol = GaussianPolicy(task.obs_dim, list(task.action_low), list(task.action_high), (8,))
    export_policy(
        pol,
        tmp_path / "art",
        robot="point",
        task="point",
        observation_names=list(task.obs_names),
        action_names=list(task.action_names),
        control_rate_hz=1 / task.dt,
    )
    return tmp_path / "art"


def test_json_report_never_replaces_a_dataset(tmp_path, point_data, point_artifact, capsys):
    """`--json` named an existing dataset: it was overwritten with the returns (data lost)."""
    data = point_data.save(tmp_path / "d.npz")
    before = data.read_bytes()
    argv = ["evaluate", str(point_artifact), "--env", "point", "--episodes", "1", "--max-steps", "5"]
    assert main([*argv, "--json", str(data)]) == 2
    assert _one_line(capsys) == (
        f"error: --json {data} exists and is not a JSON report; pass a new file name (it was left as it was)"
    )
    assert data.read_bytes() == before
    assert main(["bench", "--only", "no-such-section", "--json", str(data)]) == 2
    assert _one_line(capsys).startswith(f"error: --json {data} exists and is not a JSON report")
    assert data.read_bytes() == before
    # a report of an earlier run is still rewritten, as the README says
    report = tmp_path / "returns.json"
    report.write_text('{"env": "point", "returns": [1.0]}')
    assert main([*argv, "--json", str(report)]) == 0
    rewritten = json.loads(report.read_text())
    assert rewritten["env"] == "point" and len(rewritten["returns"]) == 1 and rewritten["returns"] != [1.0]
