"""Whom `bremen collect` trusts: the robot config's keys only, whatever the registry workspace
trusts for its campaign (docs/registry.md, "Who a robot trusts"), and the refusal says so.
Everything here is refused or planned before any process starts (--dry-run): no ROS needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bremen_robot.cli import main
from tests.ros.conftest import CONFIGS


@pytest.fixture
def signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A halfcheetah policy approved by alice, in a workspace that trusts alice (bremen trust add)."""
    from bremen_robot.policy.untrained import approved_untrained_policy

    monkeypatch.setenv("BREMEN_OPERATOR_DIR", str(tmp_path / "p" / "operators"))
    monkeypatch.delenv("BREMEN_WORKSPACE", raising=False)
    monkeypatch.delenv("BREMEN_REGISTRY_URL", raising=False)
    made = approved_untrained_policy(tmp_path / "p", operator="alice", hidden=(8,))
    assert main(["trust", "add", "alice", "--workspace", str(made["workspace"])]) == 0
    return made


def _collect(cfg: Path, signed: dict[str, Any], out: Path) -> list[str]:
    argv = ["collect", "--config", str(cfg), "--policy", signed["id"], "--episodes", "1"]
    return [*argv, "--workspace", str(signed["workspace"]), "--out", str(out), "--dry-run"]


def test_collect_in_a_workspace_that_trusts_alice_still_asks_the_robot_config(
    tmp_path: Path, signed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(_collect(CONFIGS / "collect" / "halfcheetah.yaml", signed, tmp_path / "b")) == 2
    ws, robot = signed["workspace"], CONFIGS / "robots" / "halfcheetah.yaml"
    assert capsys.readouterr().err.strip() == (
        "error: robot 'halfcheetah' trusts no operator keys; add alice's .pub (bremen operator init "
        f"alice) to trusted_operator_keys in {robot} (outside a campaign only the robot config says "
        f"whom a robot trusts; workspace {ws} trusts alice for 'bremen campaign --workspace {ws}' only)"
    )
    # the robot config that lists alice's key is what lets her approval run
    ok = tmp_path / "collect-ok.yaml"
    ok.write_text(
        (CONFIGS / "collect" / "halfcheetah.yaml")
        .read_text()
        .replace("../robots/halfcheetah.yaml", str(signed["robot"]))
    )
    assert main(_collect(ok, signed, tmp_path / "b")) == 0


def test_a_policy_for_another_robot_is_named_as_such_not_as_untrusted(
    tmp_path: Path, signed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(_collect(CONFIGS / "collect" / "panda-mujoco.yaml", signed, tmp_path / "b")) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: policy {signed['id']}: trained for robot 'halfcheetah' but this robot is 'panda'; "
        "use a policy trained for this robot config"
    )
