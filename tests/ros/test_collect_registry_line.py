"""`bremen collect` names the registry it records the deployment in: without --workspace it
created ./bremen_ws/registry.sqlite and recorded there without a word."""

from __future__ import annotations

from pathlib import Path

import pytest

from bremen_robot.cli import main
from bremen_robot.registry import Registry
from bremen_robot.ros.collect import collect
from tests.ros.conftest import require_mujoco, requires_rclpy, write_collect_config


@pytest.fixture
def no_workspace_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BREMEN_WORKSPACE", raising=False)
    monkeypatch.delenv("BREMEN_REGISTRY_URL", raising=False)


@requires_rclpy
@pytest.mark.ros
def test_random_collect_without_workspace_names_the_default_registry_it_recorded_in(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_workspace_env: None,
) -> None:
    require_mujoco()
    cfg = write_collect_config(tmp_path, episode_steps=20)
    monkeypatch.chdir(tmp_path)
    argv = ["collect", "--config", str(cfg), "--random", "--episodes", "1", "--out", "bag"]
    argv += ["--timeout", "120"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    ws = tmp_path / "bremen_ws"
    assert [ln for ln in lines if ln.startswith("registry: ")] == [
        f"registry: {ws / 'registry.sqlite'} (workspace {ws}, the default; pass --workspace W to record "
        "elsewhere)"
    ]
    with Registry.open(ws, readonly=True) as reg:  # the line names where the deployment went
        assert reg.deployment_count() == 1


def test_the_registry_line_says_where_the_workspace_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_workspace_env: None
) -> None:
    cfg = write_collect_config(tmp_path)
    mine = tmp_path / "mine"
    given = collect(cfg, random=True, episodes=1, out=tmp_path / "b", workspace=mine, dry_run=True)
    assert given.registry == f"{mine / 'registry.sqlite'} (workspace {mine})"
    monkeypatch.setenv("BREMEN_WORKSPACE", str(tmp_path / "env"))
    from_env = collect(cfg, random=True, episodes=1, out=tmp_path / "b", dry_run=True)
    assert from_env.registry == (
        f"{tmp_path / 'env' / 'registry.sqlite'} (workspace {tmp_path / 'env'}, from $BREMEN_WORKSPACE)"
    )
    in_config = write_collect_config(tmp_path, base="hopper", workspace=str(tmp_path / "cfg"))
    from_config = collect(in_config, random=True, episodes=1, out=tmp_path / "b", dry_run=True)
    assert from_config.registry == (
        f"{tmp_path / 'cfg' / 'registry.sqlite'} (workspace {tmp_path / 'cfg'}, from the collect config)"
    )
