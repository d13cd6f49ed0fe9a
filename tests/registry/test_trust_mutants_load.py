"""The load path after the trust check: files changed in between, artifact folders that mix two
policies, shadow candidates and the runner's own task check.

Written against the one-line mutants of ``registry/trust.py``, ``registry/shadow_runs.py`` and
``ros/deployment.py`` that the rest of the suite let through (docs/testing.md, "Mutations the
suite catches"). The expected refusals are written out here, never taken from the function
under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from registry_helpers import ArtifactFactory, record_torch_parses

from bremen_robot.errors import ConfigError
from bremen_robot.registry import (
    ApprovalError,
    PolicyRecord,
    Registry,
    check_for_deployment,
    verify_for_deployment,
)
from bremen_robot.registry.shadow_runs import verify_for_shadow
from bremen_robot.robot_config import RobotConfig
from bremen_robot.tasks import get_task

# ---------------------------------------------------------------- files changed after the check


def _swap_after_check(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> None:
    import bremen_robot.registry.trust as trust

    real_check = trust.check_for_deployment

    def check_then_swap(*args: Any) -> Any:
        pid, folder = real_check(*args)
        for name, data in files.items():
            os.chmod(folder, 0o755)
            (folder / name).unlink()
            (folder / name).write_bytes(data)
        return pid, folder

    monkeypatch.setattr(trust, "check_for_deployment", check_then_swap)


def test_a_manifest_swapped_in_after_the_check_is_refused(
    approved: PolicyRecord, robot: RobotConfig, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same policy.pt, a manifest nobody approved (its policy_sha256 still right)."""
    assert approved.artifact_dir is not None
    data = json.loads((approved.artifact_dir / "manifest.json").read_text())
    data["action_high"] = [x * 2 for x in data["action_high"]]
    _swap_after_check(monkeypatch, {"manifest.json": json.dumps(data).encode()})
    with pytest.raises(ApprovalError, match="changed after the registry check, before loading"):
        verify_for_deployment(approved.id, robot, registry)


def test_a_policy_file_swapped_alone_after_the_check_never_reaches_torch(
    approved: PolicyRecord,
    robot: RobotConfig,
    registry: Registry,
    artifact_factory: ArtifactFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its hash no longer matches the manifest, so ``load_artifact(verify=True)`` refuses it before
    torch parses it. (A swap of both files, self-consistent, is refused by the comparison with the
    registry's record, also before torch parses it: see the test in test_registry_damage.py.)"""

    other = (artifact_factory(seed=99) / "policy.pt").read_bytes()
    parsed = record_torch_parses(monkeypatch)
    _swap_after_check(monkeypatch, {"policy.pt": other})
    with pytest.raises(ApprovalError, match="does not match the manifest's"):
        verify_for_deployment(approved.id, robot, registry)
    assert hashlib.sha256(other).hexdigest() not in parsed


# ---------------------------------------------------------------- artifact folders given by path


def test_a_folder_mixing_two_policies_is_refused_for_the_file_it_holds(
    registry: Registry,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    robot: RobotConfig,
    tmp_path: Path,
) -> None:
    """B's policy.pt beside A's manifest.json, both approved: the file decides which policy this
    is (B), and B's manifest is not the one in the folder."""
    a_dir, b_dir = artifact_factory(), artifact_factory()
    a = registry.approve(registry.register(a_dir).id, "alice")
    b = registry.approve(registry.register(b_dir).id, "alice")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copyfile(b_dir / "policy.pt", mixed / "policy.pt")
    shutil.copyfile(a_dir / "manifest.json", mixed / "manifest.json")
    with pytest.raises(ApprovalError) as info:
        check_for_deployment(mixed, robot, registry)
    assert str(info.value) == (
        f"policy {b.id}: manifest.json in '{mixed}' differs from the registered one; refusing to run it"
    )
    assert a.id not in str(info.value)


def test_a_folder_whose_manifest_names_the_random_policy_is_refused_as_random(
    registry: Registry, artifact_factory: ArtifactFactory, robot: RobotConfig
) -> None:
    registry.record_random_deployment()
    folder = artifact_factory()
    data = json.loads((folder / "manifest.json").read_text())
    data["policy_sha256"] = "random"
    (folder / "manifest.json").write_text(json.dumps(data))
    # refused when the manifest is read (before 2026-12-07 the registry's random record was found
    # by that name and refused by the trust check), with the same advice
    with pytest.raises(
        ApprovalError,
        match="invalid manifest: policy_sha256: 'random' names the random policy, which is no artifact; "
        "start it with --random",
    ):
        check_for_deployment(folder, robot, registry)


# ---------------------------------------------------------------- shadow and the runner


def test_a_candidate_for_another_wiring_is_refused_in_shadow_too(
    registry: Registry, artifact_factory: ArtifactFactory, robot: RobotConfig
) -> None:
    rec = registry.register(artifact_factory(joint_order=["vel.y", "vel.x"]))
    with pytest.raises(
        ApprovalError, match="joint order differs at position 0: policy 'vel.y', robot config 'vel.x'"
    ):
        verify_for_shadow(rec.id, robot, registry)


def test_the_runner_refuses_a_policy_of_another_task_than_its_graph_runs(
    approved: PolicyRecord, robot: RobotConfig, registry: Registry
) -> None:
    """The graph's task may be given apart from the robot config's (policy_runner's ``task``)."""
    from bremen_robot.ros.deployment import load_policy

    params = {"workspace": str(registry.workspace), "policy": approved.id}
    pol = load_policy(params, robot, get_task("point"))
    assert (pol["sha256"], pol["joint_order"]) == (approved.sha256, ["vel.x", "vel.y"])
    with pytest.raises(ConfigError, match="trained for task 'point' but the graph runs 'hopper'"):
        load_policy(params, robot, get_task("hopper"))


def test_a_shadow_candidates_files_swapped_after_the_store_check_never_reach_torch(
    registry: Registry,
    artifact_factory: ArtifactFactory,
    robot: RobotConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shadow run moves nothing, but it still loads a TorchScript on the robot PC: another
    self-consistent artifact copied over the stored one after ``verify_store`` is refused by the
    comparison with the registry's record before torch opens it."""

    rec = registry.register(artifact_factory())
    assert rec.artifact_dir is not None
    other = artifact_factory(seed=77)
    other_sha = hashlib.sha256((other / "policy.pt").read_bytes()).hexdigest()
    parsed = record_torch_parses(monkeypatch)
    real_verify = Registry.verify_store

    def verify_then_swap(self: Registry, r: PolicyRecord) -> Any:
        out = real_verify(self, r)
        assert r.artifact_dir is not None
        os.chmod(r.artifact_dir, 0o755)
        for name in ("policy.pt", "manifest.json"):
            (r.artifact_dir / name).unlink()
            shutil.copyfile(other / name, r.artifact_dir / name)
        return out

    monkeypatch.setattr(Registry, "verify_store", verify_then_swap)
    with pytest.raises(ApprovalError) as info:
        verify_for_shadow(rec.id, robot, registry)
    assert str(info.value) == (
        f"policy {rec.id}: policy.pt and manifest.json in '{rec.artifact_dir}' changed after the "
        "registry check, before loading; refusing to run them (check who writes to that folder, "
        "then start again)"
    )
    assert other_sha not in parsed
