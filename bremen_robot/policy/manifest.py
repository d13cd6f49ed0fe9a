"""An artifact's manifest and content address, without torch (DESIGN.md §3).

The registry, the ROS 2 graph (before it loads a policy), a campaign's collection and a fleet
node only read manifests and hash files; importing torch would add seconds to every
collection's start-up (docs/performance.md). Loading and exporting the TorchScript itself is
:mod:`bremen_robot.policy.artifact`, which re-exports everything here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from bremen_robot.errors import ArtifactError

POLICY_FILE = "policy.pt"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


class PolicyManifest(BaseModel):
    """What a robot needs to know before running a frozen policy."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = Field(FORMAT_VERSION, description="artifact format version")
    robot: str = Field(description="robot the policy was trained for, e.g. 'halfcheetah'")
    task: str = Field(description="task name in bremen_robot.tasks")
    observation_names: list[str] = Field(description="observation entries, in order")
    action_names: list[str] = Field(description="action entries, in order")
    joint_order: list[str] = Field(description="actuated joints, in command order")
    action_low: list[float] = Field(description="lower action bound per entry")
    action_high: list[float] = Field(description="upper action bound per entry")
    control_rate_hz: float = Field(gt=0, allow_inf_nan=False, description="rate the policy must run at")
    policy_sha256: str = Field(description="sha256 of policy.pt (the content address)")
    data_digests: list[str] = Field(default_factory=list, description="sha256 of each training dataset")
    kind: str = Field("bremen", description="bremen | bc | scripted: what produced the policy")
    config: dict[str, Any] = Field(default_factory=dict, description="training config used")
    metrics: dict[str, Any] = Field(default_factory=dict, description="training/evaluation figures")
    created_at: str = Field(description="UTC ISO-8601 time of export")
    torch_version: str = Field(description="torch version that wrote policy.pt")

    @field_validator("policy_sha256")
    @classmethod
    def _is_sha256(cls, v: str) -> str:
        if v == "random":
            raise ValueError(
                "'random' names the random policy, which is no artifact; start it with --random "
                "(no approval needed)"
            )
        if not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError(f"{v[:70]!r} is not a sha256 (64 lowercase hex digits); re-export the artifact")
        return v

    # The runner clips the policy's output to the bounds before the shield: a NaN, an inverted or
    # a missing bound must stop the artifact at load, not on the robot. Fields validate in
    # declaration order, so action_names (and action_low, for action_high) are in info.data.
    @field_validator("joint_order", "action_low", "action_high")
    @classmethod
    def _one_per_action(cls, v: list[Any], info: ValidationInfo) -> list[Any]:
        names = info.data.get("action_names")
        if names is not None and len(v) != len(names):
            raise ValueError(
                f"holds {len(v)} for {len(names)} action_names; one per action: re-export the artifact"
            )
        if info.field_name == "joint_order":
            return v
        for i, x in enumerate(v):
            if not math.isfinite(x):
                raise ValueError(f"entry {i} is {x:g}; bounds are finite numbers: re-export the artifact")
        low = info.data.get("action_low")
        if info.field_name == "action_high" and names is not None and low is not None:
            for i, (lo, hi) in enumerate(zip(low, v, strict=True)):
                if not lo < hi:
                    raise ValueError(
                        f"entry {i} (action {names[i]!r}) is {hi:g}, not above action_low's {lo:g}; "
                        "each action needs low < high: re-export the artifact"
                    )
        return v


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_digest(manifest: PolicyManifest) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys): what an approval signs.

    Only the fields the manifest was made or read with count (``exclude_unset``): a field added
    to :class:`PolicyManifest` later, with a default, is absent from every manifest.json written
    before it, and must not change their digest, or every registered policy and every signed
    approval would be refused. A manifest.json holds every field of its time (the exporter
    writes them all), so for those this is the whole manifest."""
    blob = json.dumps(
        manifest.model_dump(mode="json", exclude_unset=True), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def resolve_artifact_dir(path: Path) -> Path:
    """Accept the artifact directory, its policy.pt or its manifest.json."""
    path = Path(path)
    if path.is_file() and path.name in (POLICY_FILE, MANIFEST_FILE):
        path = path.parent
    if not path.is_dir():
        raise ArtifactError(f"no policy artifact at '{path}'; pass the directory written by 'bremen train'")
    return path


def load_manifest(path: Path) -> PolicyManifest:
    d = resolve_artifact_dir(path)
    mpath = d / MANIFEST_FILE
    if not mpath.is_file():
        raise ArtifactError(f"artifact '{d}' has no {MANIFEST_FILE}; re-export it with 'bremen train'")
    try:
        data = json.loads(mpath.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot read {mpath} ({exc}); check the file, re-export the artifact") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(
            f"{mpath}: not valid JSON (line {exc.lineno} column {exc.colno}); re-export the artifact"
        ) from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{mpath}: not a JSON object of manifest fields; re-export the artifact")
    try:
        return PolicyManifest.model_validate(data)
    except ValidationError as exc:
        from bremen_robot.config.loading import describe_validation_error

        what = describe_validation_error(exc, f"{mpath}: invalid manifest", PolicyManifest)
        raise ArtifactError(" ".join(what.split())) from None  # a hand-edited key may hold a newline


def checked_artifact(path: Path, verify: bool = True) -> tuple[Path, PolicyManifest]:
    """The artifact folder and its manifest, after checking that ``policy.pt`` exists and (by
    default) that its sha256 is the manifest's."""
    d = resolve_artifact_dir(path)
    manifest = load_manifest(d)
    ppath = d / POLICY_FILE
    if not ppath.is_file():
        raise ArtifactError(f"artifact '{d}' has no {POLICY_FILE}; re-export it with 'bremen train'")
    if verify:
        actual = sha256_file(ppath)
        if actual != manifest.policy_sha256:
            raise ArtifactError(
                f"{ppath}: sha256 {actual[:12]} does not match the manifest's {manifest.policy_sha256[:12]}; "
                "the file was modified, re-export or re-download it"
            )
    return d, manifest
