"""The robot side's trust check: may this policy run on this robot? (DESIGN.md §3)

:func:`verify_for_deployment` is what ``policy_runner`` and ``bremen collect`` call before
anything moves. It returns the loaded :class:`FrozenPolicy` or raises :class:`ApprovalError`
whose message is the one-line reason.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from bremen_robot.errors import ArtifactError, BremenError
from bremen_robot.policy.manifest import (
    POLICY_FILE,
    PolicyManifest,
    load_manifest,
    manifest_digest,
    resolve_artifact_dir,
    sha256_file,
)
from bremen_robot.registry.errors import ApprovalError, RegistryDatabaseError, RegistryError
from bremen_robot.registry.hints import bremen_command
from bremen_robot.registry.signing import load_public_key, parse_payload, verify_signature
from bremen_robot.registry.store import PolicyRecord, Registry
from bremen_robot.robot_config import RobotConfig
from bremen_robot.tasks import get_task

if TYPE_CHECKING:
    from bremen_robot.policy.artifact import FrozenPolicy


def _first_difference(what: str, got: list[str], want: list[str], want_from: str) -> str:
    if len(got) != len(want):
        return f"{what} has {len(got)} entries but {want_from} has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g != w:
            return f"{what} differs at position {i}: policy '{g}', {want_from} '{w}'"
    return ""  # pragma: no cover - only called on unequal lists


def check_compatibility(manifest: PolicyManifest, robot: RobotConfig, policy_id: str = "") -> None:
    """Refuse a manifest whose robot, joints, layouts or control rate differ from the robot config."""
    pre = f"policy {policy_id}: " if policy_id else ""
    fix = "use a policy trained for this robot config"
    if manifest.robot != robot.name:
        raise ApprovalError(
            f"{pre}trained for robot '{manifest.robot}' but this robot is '{robot.name}'; {fix}"
        )
    if list(manifest.joint_order) != list(robot.joints):
        diff = _first_difference(
            "joint order", list(manifest.joint_order), list(robot.joints), "robot config"
        )
        raise ApprovalError(f"{pre}{diff}; {fix}")
    n_act = len(manifest.action_names)
    if n_act != len(robot.joints) or len(manifest.action_low) != n_act or len(manifest.action_high) != n_act:
        raise ApprovalError(
            f"{pre}policy has {n_act} actions "
            f"({len(manifest.action_low)}/{len(manifest.action_high)} bounds) "
            f"but robot '{robot.name}' has {len(robot.joints)} joints; {fix}"
        )
    try:
        task = get_task(robot.task)
    except BremenError as exc:
        raise ApprovalError(f"robot config task: {exc}") from None
    if list(manifest.observation_names) != list(task.obs_names):
        diff = _first_difference(
            "observation layout",
            list(manifest.observation_names),
            list(task.obs_names),
            f"task '{task.name}'",
        )
        raise ApprovalError(f"{pre}{diff}; {fix}")
    if list(manifest.action_names) != list(task.action_names):
        diff = _first_difference(
            "action layout", list(manifest.action_names), list(task.action_names), f"task '{task.name}'"
        )
        raise ApprovalError(f"{pre}{diff}; {fix}")
    if not math.isclose(manifest.control_rate_hz, robot.control_rate_hz, rel_tol=1e-9, abs_tol=1e-9):
        raise ApprovalError(
            f"{pre}control rate {manifest.control_rate_hz:g} Hz differs from the robot's "
            f"{robot.control_rate_hz:g} Hz; {fix}"
        )


def _looks_like_path(ref: str | Path) -> bool:
    if isinstance(ref, Path):
        return True
    return "/" in ref or ref.endswith((".pt", ".json")) or Path(ref).exists()


def _record_for_path(ref: str | Path, registry: Registry) -> tuple[PolicyRecord, Path]:
    try:
        d = resolve_artifact_dir(Path(ref))
        manifest = load_manifest(d)
    except ArtifactError as exc:
        raise ApprovalError(str(exc)) from None
    ppath = d / POLICY_FILE
    if not ppath.is_file():
        raise ApprovalError(f"artifact '{d}' has no {POLICY_FILE}; pass a complete artifact")
    actual = sha256_file(ppath)
    for sha in (actual, manifest.policy_sha256):
        try:
            return registry.get(sha), d
        except RegistryDatabaseError:  # a damaged or busy registry is not "not registered"
            raise
        except RegistryError:
            continue
    raise ApprovalError(
        f"policy at '{d}' (sha256 {actual[:12]}) is not registered; "
        "register it and have an operator approve it"
    )


def lookup_record(
    policy_id_or_path: str | Path, registry: Registry, prefix: str = ""
) -> tuple[PolicyRecord, Path | None]:
    """The registry record of a policy id / unique prefix or an artifact folder, with the folder
    to load (the given one, or the stored artifact; None for the random policy). Not registered:
    one-line :class:`ApprovalError`, ``prefix`` first (e.g. ``"--shadow: "``)."""
    if _looks_like_path(policy_id_or_path):
        return _record_for_path(policy_id_or_path, registry)
    try:
        rec = registry.get(str(policy_id_or_path))
    except RegistryDatabaseError:  # a damaged or busy registry is not "not registered"
        raise
    except RegistryError as exc:
        raise ApprovalError(f"{prefix}not registered: {exc}") from None
    return rec, rec.artifact_dir


def verify_for_deployment(
    policy_id_or_path: str | Path, robot: RobotConfig, registry: Registry
) -> FrozenPolicy:
    """Load a policy for ``robot`` only if the registry and a trusted operator allow it
    (:func:`check_for_deployment`), then load it."""
    pid, d = check_for_deployment(policy_id_or_path, robot, registry)
    from bremen_robot.policy import artifact  # torch, only once every check has passed

    # the files are read again to load them: what torch parses must be what was checked and
    # signed, so the registry's record is compared with the bytes before they are parsed
    rec = registry.get(pid)
    try:
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not the operator's concern
            warnings.simplefilter("ignore", DeprecationWarning)
            return artifact.load_artifact(
                d, verify=True, expect_sha256=rec.sha256, expect_manifest_digest=rec.manifest_digest
            )
    except ArtifactError as exc:
        raise ApprovalError(f"policy {pid}: {exc}") from None


def check_for_deployment(
    policy_id_or_path: str | Path, robot: RobotConfig, registry: Registry
) -> tuple[str, Path]:
    """Every check :func:`verify_for_deployment` makes, without loading the TorchScript (no torch):
    returns the policy's id and artifact folder. ``bremen collect`` runs it before the graph
    starts; the runner loads the policy through :func:`verify_for_deployment`.

    ``policy_id_or_path`` is a registry id / unique prefix (the stored artifact is loaded) or an
    artifact folder (that copy is loaded, after checking it is byte-identical to the registered
    one). Refused, each with a one-line :class:`ApprovalError`: not registered; candidate (not
    approved); rejected; retired; file hash or manifest differs from the registry's record;
    manifest incompatible with the robot config; no approval signature; signature not verifying
    against any of ``robot.trusted_operator_keys`` (the robot config's only: a workspace's
    ``bremen trust`` keys count for its campaign, whose generated robot config lists them).
    """
    rec, d = lookup_record(policy_id_or_path, registry)
    if rec.is_random or d is None:
        raise ApprovalError(
            "the random policy is not an artifact; start it with --random (no approval needed)"
        )
    pid = rec.id

    if rec.state not in ("approved", "deployed"):
        raise ApprovalError(registry.state_reason(rec.sha256, rec.state))

    ppath = d / POLICY_FILE
    if not ppath.is_file():
        raise ApprovalError(f"policy {pid}: {ppath} is missing; register the artifact again")
    actual = sha256_file(ppath)
    if actual != rec.sha256:
        raise ApprovalError(
            f"policy {pid}: file hash {actual[:12]} differs from the registry's {rec.sha256[:12]} "
            f"({ppath} was modified); refusing to run it"
        )
    try:
        manifest = load_manifest(d)
    except ArtifactError as exc:
        raise ApprovalError(f"policy {pid}: {exc}") from None
    if manifest_digest(manifest) != rec.manifest_digest:
        raise ApprovalError(
            f"policy {pid}: manifest.json in '{d}' differs from the registered one; refusing to run it"
        )
    # a policy for another robot is refused whoever signed it: trust would only hide that
    check_compatibility(manifest, robot, pid)

    appr = rec.approval
    if appr is None or not appr.signature or not appr.payload:
        raise ApprovalError(
            f"policy {pid} has no approval signature (unsigned); "
            f"approve it with '{bremen_command(f'approve {pid} --operator NAME', registry.workspace)}'"
        )
    payload = parse_payload(appr.payload)
    if payload["artifact_sha256"] != rec.sha256 or payload["manifest_digest"] != rec.manifest_digest:
        raise ApprovalError(
            f"policy {pid}: its approval signs a different artifact; the registry was modified"
        )
    keys = list(robot.trusted_operator_keys)
    fix = _how_to_trust(robot, str(payload["operator"]), registry.workspace)
    if not keys:
        raise ApprovalError(f"robot '{robot.name}' trusts no operator keys; {fix}")
    if not any(verify_signature(appr.payload, appr.signature, load_public_key(k)) for k in keys):
        raise ApprovalError(
            f"policy {pid}: approval signature by '{payload['operator']}' (key {appr.key_fingerprint[:12]}) "
            f"does not verify against any trusted operator key of robot '{robot.name}'; {fix}"
        )
    return pid, d


def _how_to_trust(robot: RobotConfig, operator: str, workspace: Path) -> str:
    """The fix of a trust refusal. A campaign's generated robot.yaml names the command (it is
    rewritten on every start); a robot config the user wrote is the only authority on whom that
    robot trusts (DESIGN.md §3), so a registry workspace that trusts operators for its campaign
    gets said not to count here: that is what a user who ran 'bremen trust add' expects."""
    fix = robot.how_to_trust(operator)
    if robot.trust_fix:
        return fix
    from bremen_robot.campaign.trust import workspace_keys  # the home of a workspace's trust

    names = list(workspace_keys(workspace))
    if not names:
        return fix
    return (
        f"{fix} (outside a campaign only the robot config says whom a robot trusts; workspace "
        f"{workspace} trusts {', '.join(names)} for 'bremen campaign --workspace {workspace}' only)"
    )
