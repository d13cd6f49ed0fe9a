"""Fixtures: tiny point-task artifacts, a fresh workspace, operator keys, a matching robot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_helpers import ArtifactFactory, make_artifact, robot_config

from bremen_robot.registry import PolicyRecord, Registry, init_operator
from bremen_robot.robot_config import RobotConfig


@pytest.fixture
def artifact_factory(tmp_path: Path) -> ArtifactFactory:
    counter = iter(range(10_000))

    def make(seed: int | None = None, **kw: Any) -> Path:
        n = next(counter)
        return make_artifact(tmp_path / f"export{n}", seed if seed is not None else n, **kw)

    return make


@pytest.fixture
def operator_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "operators"
    monkeypatch.setenv("BREMEN_OPERATOR_DIR", str(d))
    return d


@pytest.fixture
def alice(operator_dir: Path) -> tuple[Path, Path]:
    """(private, public) key of operator 'alice' in the test operator dir."""
    return init_operator("alice", operator_dir)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BREMEN_REGISTRY_URL", raising=False)
    ws = tmp_path / "ws"
    monkeypatch.setenv("BREMEN_WORKSPACE", str(ws))
    return ws


@pytest.fixture
def registry(workspace: Path) -> Iterator[Registry]:
    reg = Registry.open(workspace)
    yield reg
    reg.close()


@pytest.fixture
def robot(alice: tuple[Path, Path]) -> RobotConfig:
    return robot_config([alice[1]])


@pytest.fixture
def approved(registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]) -> PolicyRecord:
    """A registered point-task policy, approved by 'alice' (whom ``robot`` trusts)."""
    rec = registry.register(artifact_factory())
    return registry.approve(rec.id, "alice", note="ok")
