"""verify_for_deployment refuses, with a one-line reason, everything that is not safe to run;
check_for_deployment (what ``bremen collect`` runs before the graph starts) refuses the same."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from registry_helpers import ArtifactFactory, robot_config

from bremen_robot.registry import (
    ApprovalError,
    PolicyRecord,
    Registry,
    check_for_deployment,
    init_operator,
    verify_for_deployment,
)
from bremen_robot.robot_config import RobotConfig


def refuse(ref: str | Path, robot: RobotConfig, registry: Registry, match: str) -> str:
    with pytest.raises(ApprovalError, match=match) as info:
        verify_for_deployment(ref, robot, registry)
    msg = str(info.value)
    assert "\n" not in msg and msg.strip() == msg
    with pytest.raises(ApprovalError) as before_start:
        check_for_deployment(ref, robot, registry)
    assert str(before_start.value) == msg
    return msg


def _writable(path: Path) -> Path:
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o644)
    return path


def test_approved_policy_passes(approved: PolicyRecord, robot: RobotConfig, registry: Registry) -> None:
    assert verify_for_deployment(approved.id, robot, registry).sha256 == approved.sha256
    assert check_for_deployment(approved.id, robot, registry) == (
        approved.id,
        registry.workspace / "artifacts" / approved.sha256,
    )


def test_tampered_store_file(approved: PolicyRecord, robot: RobotConfig, registry: Registry) -> None:
    assert approved.artifact_dir is not None
    with open(_writable(approved.artifact_dir / "policy.pt"), "ab") as f:
        f.write(b"\0")
    refuse(approved.id, robot, registry, "file hash .* differs from the registry's")


def test_tampered_store_manifest(approved: PolicyRecord, robot: RobotConfig, registry: Registry) -> None:
    assert approved.artifact_dir is not None
    mpath = _writable(approved.artifact_dir / "manifest.json")
    data = json.loads(mpath.read_text())
    data["control_rate_hz"] = 500.0
    mpath.write_text(json.dumps(data))
    refuse(approved.id, robot, registry, "manifest.json .* differs from the registered one")


def test_tampered_copy_given_by_path(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path], robot: RobotConfig
) -> None:
    export = artifact_factory()
    registry.approve(registry.register(export).id, "alice")
    with open(export / "policy.pt", "ab") as f:
        f.write(b"\0")
    refuse(export, robot, registry, "file hash .* differs from the registry's")


def test_unknown_key(approved: PolicyRecord, registry: Registry, tmp_path: Path) -> None:
    _, bob_pub = init_operator("bob", tmp_path / "bob")
    msg = refuse(
        approved.id, robot_config([bob_pub]), registry, "does not verify against any trusted operator key"
    )
    assert "'alice'" in msg


def test_regenerated_key_of_the_same_name_is_not_trusted(
    approved: PolicyRecord, registry: Registry, tmp_path: Path
) -> None:
    _, impostor = init_operator("alice", tmp_path / "impostor")
    refuse(approved.id, robot_config([impostor]), registry, "does not verify")


def test_no_trusted_keys(approved: PolicyRecord, registry: Registry) -> None:
    msg = refuse(approved.id, robot_config([]), registry, "trusts no operator keys")
    assert msg.endswith("to trusted_operator_keys in the robot config")  # no workspace trust to explain


def test_a_workspace_trust_counts_for_its_campaign_not_for_a_robot_config(
    approved: PolicyRecord, registry: Registry, alice: tuple[Path, Path], tmp_path: Path
) -> None:
    """`bremen trust add alice --workspace W` then `bremen collect --workspace W`: the robot config
    (the authority on whom a robot trusts) still decides, and the refusal says so."""
    from bremen_robot.campaign.trust import add_operator

    ws = registry.workspace
    add_operator(ws, "alice", alice[1])
    note = (
        f" (outside a campaign only the robot config says whom a robot trusts; workspace {ws} "
        f"trusts alice for 'bremen campaign --workspace {ws}' only)"
    )
    fix = f"add alice's .pub (bremen operator init alice) to trusted_operator_keys in the robot config{note}"
    msg = refuse(approved.id, robot_config([]), registry, "trusts no operator keys")
    assert msg == f"robot 'pointbot' trusts no operator keys; {fix}"
    _, bob_pub = init_operator("bob", tmp_path / "bob")  # trusting someone else: still refused
    msg = refuse(approved.id, robot_config([bob_pub]), registry, "does not verify")
    assert msg.endswith(f"does not verify against any trusted operator key of robot 'pointbot'; {fix}")
    assert check_for_deployment(approved.id, robot_config([alice[1]]), registry)[0] == approved.id


def test_a_policy_for_another_robot_is_refused_for_that_not_for_trust(
    approved: PolicyRecord, registry: Registry
) -> None:
    """Approving it or trusting its signer would not help: the message names the real problem."""
    msg = refuse(approved.id, robot_config([], name="panda"), registry, "trained for robot")
    assert msg == (
        f"policy {approved.id}: trained for robot 'pointbot' but this robot is 'panda'; "
        "use a policy trained for this robot config"
    )


def test_trusted_key_file_missing(approved: PolicyRecord, registry: Registry, tmp_path: Path) -> None:
    refuse(approved.id, robot_config([tmp_path / "gone.pub"]), registry, "not found")


def test_candidate_not_approved(
    registry: Registry, artifact_factory: ArtifactFactory, robot: RobotConfig
) -> None:
    rec = registry.register(artifact_factory())
    refuse(rec.id, robot, registry, "candidate, not approved")


def test_rejected(registry: Registry, artifact_factory: ArtifactFactory, robot: RobotConfig) -> None:
    rec = registry.register(artifact_factory())
    registry.reject(rec.id, "holdout error of member 3 diverged", operator="alice")
    refuse(rec.id, robot, registry, "rejected by alice .*: holdout error of member 3 diverged")


def test_approval_withdrawn(approved: PolicyRecord, robot: RobotConfig, registry: Registry) -> None:
    registry.reject(approved.id, "changed my mind")
    refuse(approved.id, robot, registry, "rejected")


def test_retired(approved: PolicyRecord, robot: RobotConfig, registry: Registry) -> None:
    registry.mark_deployed(approved.id)
    registry.retire(approved.id, operator="alice", note="superseded")
    refuse(approved.id, robot, registry, "retired by alice")


def test_unsigned(registry: Registry, artifact_factory: ArtifactFactory, robot: RobotConfig) -> None:
    rec = registry.register(artifact_factory())
    conn = sqlite3.connect(registry.db_path)  # someone flips the state by hand, without signing
    conn.execute("UPDATE policies SET state = 'approved' WHERE sha256 = ?", (rec.sha256,))
    conn.commit()
    conn.close()
    refuse(rec.id, robot, registry, "no approval signature \\(unsigned\\)")
    with pytest.raises(ApprovalError, match="no signed approval"):
        registry.mark_deployed(rec.id)


def test_not_registered(artifact_factory: ArtifactFactory, robot: RobotConfig, registry: Registry) -> None:
    refuse(artifact_factory(), robot, registry, "is not registered")
    refuse("abcdef12", robot, registry, "not registered")


def test_random_is_not_an_artifact(robot: RobotConfig, registry: Registry) -> None:
    registry.record_random_deployment()
    refuse("random", robot, registry, "--random")


@pytest.mark.parametrize(
    ("export_kw", "robot_kw", "match"),
    [
        ({"joint_order": ["vel.y", "vel.x"]}, {}, "joint order differs at position 0: policy 'vel.y'"),
        ({}, {"joints": ["vel.y", "vel.x"]}, "joint order differs at position 0"),
        ({}, {"joints": ["vel.x", "vel.y", "vel.z"]}, "joint order has 2 entries but robot config has 3"),
        ({"robot": "otherbot"}, {}, "trained for robot 'otherbot'"),
        ({"control_rate_hz": 50.0}, {}, "control rate 50 Hz differs"),
        ({}, {"task": "hopper"}, "observation layout has 2 entries but task 'hopper' has 11"),
        ({}, {"task": "nosuchtask"}, "unknown task"),
    ],
)
def test_manifest_incompatible_with_robot(
    registry: Registry,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    export_kw: dict[str, object],
    robot_kw: dict[str, object],
    match: str,
) -> None:
    rec = registry.register(artifact_factory(**export_kw))
    registry.approve(rec.id, "alice")
    refuse(rec.id, robot_config([alice[1]], **robot_kw), registry, match)


def test_approving_a_tampered_artifact_is_refused(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    rec = registry.register(artifact_factory())
    assert rec.artifact_dir is not None
    with open(_writable(rec.artifact_dir / "policy.pt"), "ab") as f:
        f.write(b"\0")
    with pytest.raises(ApprovalError, match="differs"):
        registry.approve(rec.id, "alice")
    assert registry.get(rec.id).state == "candidate"


def test_operator_key_readable_by_others_is_refused(
    registry: Registry, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    rec = registry.register(artifact_factory())
    os.chmod(alice[0], 0o644)
    with pytest.raises(ApprovalError, match="chmod 600"):
        registry.approve(rec.id, "alice")
    with pytest.raises(ApprovalError, match="not found"):
        registry.approve(rec.id, "carol")
    assert registry.get(rec.id).state == "candidate"


def test_every_refusal_happens_before_loading(
    approved: PolicyRecord, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is loaded (so nothing can move) when the check fails."""
    import bremen_robot.policy.artifact as artifact

    loads: list[Path] = []
    original: Callable[..., object] = artifact.load_artifact

    def spy(d: Path, verify: bool = True) -> object:
        loads.append(d)
        return original(d, verify)

    monkeypatch.setattr(artifact, "load_artifact", spy)
    refuse(approved.id, robot_config([]), registry, "trusts no operator keys")
    assert loads == []
