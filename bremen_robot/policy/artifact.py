"""Frozen policy artifacts: one TorchScript file plus a JSON manifest (DESIGN.md §3).

Layout of an artifact directory::

    policy.pt       TorchScript: raw observation (B x D_obs) -> action mean (B x D_act);
                    observation z-scoring and tanh action scaling are inside the graph
    manifest.json   PolicyManifest: robot, task, layouts, joint order, control rate,
                    training data digests, config, metrics, and the sha256 of policy.pt

The artifact is content-addressed by the sha256 of ``policy.pt``. Loading verifies the hash.
The manifest and the hashing live in :mod:`bremen_robot.policy.manifest` (no torch there).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bremen_robot.errors import ArtifactError
from bremen_robot.fsutil import atomic_write_bytes
from bremen_robot.policy.gaussian import GaussianPolicy
from bremen_robot.policy.manifest import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    POLICY_FILE,
    PolicyManifest,
    checked_artifact,
    load_manifest,
    manifest_digest,
    resolve_artifact_dir,
    sha256_file,
)

__all__ = [  # the manifest names stay importable from here, where they always were
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "POLICY_FILE",
    "FrozenPolicy",
    "PolicyManifest",
    "checked_artifact",
    "export_policy",
    "load_artifact",
    "load_manifest",
    "manifest_digest",
    "resolve_artifact_dir",
    "sha256_file",
]


class _MeanOnly(torch.nn.Module):
    def __init__(self, policy: GaussianPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy(obs)[0]


def export_policy(
    policy: GaussianPolicy,
    out_dir: Path,
    *,
    robot: str,
    task: str,
    observation_names: list[str],
    action_names: list[str],
    control_rate_hz: float,
    joint_order: list[str] | None = None,
    data_digests: list[str] | None = None,
    kind: str = "bremen",
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> PolicyManifest:
    """Write ``policy.pt`` and ``manifest.json`` into ``out_dir`` (created); returns the manifest.

    Files are written to temporaries and renamed, so an interrupted export never leaves a
    half-written artifact under the final names.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    module = _MeanOnly(policy.cpu()).eval()
    example = torch.zeros(1, policy.obs_dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated upstream but is the format DESIGN.md fixes
        traced = torch.jit.trace(module, example, check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    policy_path = out_dir / POLICY_FILE
    atomic_write_bytes(policy_path, buf.getvalue())
    manifest = PolicyManifest(
        format_version=FORMAT_VERSION,
        robot=robot,
        task=task,
        observation_names=list(observation_names),
        action_names=list(action_names),
        joint_order=list(joint_order if joint_order is not None else action_names),
        action_low=[float(x) for x in policy.act_center - policy.act_scale],
        action_high=[float(x) for x in policy.act_center + policy.act_scale],
        control_rate_hz=float(control_rate_hz),
        policy_sha256=sha256_file(policy_path),
        data_digests=list(data_digests or []),
        kind=kind,
        config=config or {},
        metrics=metrics or {},
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        torch_version=torch.__version__,
    )
    atomic_write_bytes(out_dir / MANIFEST_FILE, manifest.model_dump_json(indent=2).encode())
    return manifest


class FrozenPolicy:
    """A loaded artifact: ``act(obs)`` gives the deterministic mean action as numpy."""

    def __init__(
        self, module: torch.jit.ScriptModule, manifest: PolicyManifest, path: Path, sha256: str | None = None
    ) -> None:
        self.module = module
        self.manifest = manifest
        self.path = path
        self.sha256 = sha256 or manifest.policy_sha256  # of the bytes loaded, when known

    @property
    def obs_dim(self) -> int:
        return len(self.manifest.observation_names)

    @property
    def action_dim(self) -> int:
        return len(self.manifest.action_names)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """``D_obs -> D_act`` or ``B x D_obs -> B x D_act`` (float32)."""
        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        if x.shape[-1] != self.obs_dim:
            raise ArtifactError(
                f"observation has {x.shape[-1]} entries but the policy expects {self.obs_dim}; "
                "check the observation layout against the manifest"
            )
        with torch.no_grad():
            out = self.module(torch.from_numpy(x[None] if single else x)).numpy()
        return out[0] if single else out


def load_artifact(
    path: Path,
    verify: bool = True,
    expect_sha256: str | None = None,
    expect_manifest_digest: str | None = None,
) -> FrozenPolicy:
    """Load and (by default) hash-check a frozen policy artifact.

    ``expect_sha256`` / ``expect_manifest_digest``: the registry's record of what was approved.
    When given, the bytes read here are compared with them *before* torch parses anything, so a
    folder whose files were both replaced (consistently) after the approval check is refused
    without its TorchScript ever being opened."""
    d, manifest = checked_artifact(path, verify)
    ppath = d / POLICY_FILE
    data = ppath.read_bytes()  # read once: the bytes hashed are the bytes loaded
    sha = hashlib.sha256(data).hexdigest()
    if verify and sha != manifest.policy_sha256:
        raise ArtifactError(
            f"{ppath}: sha256 {sha[:12]} does not match the manifest's {manifest.policy_sha256[:12]}; "
            "the file changed while it was loaded, re-export or re-download it"
        )
    changed = [
        name
        for name, actual, expected in (
            (POLICY_FILE, sha, expect_sha256),
            (MANIFEST_FILE, manifest_digest(manifest), expect_manifest_digest),
        )
        if expected is not None and actual != expected
    ]
    if changed:
        raise ArtifactError(
            f"{' and '.join(changed)} in '{d}' changed after the registry check, before loading; "
            "refusing to run them (check who writes to that folder, then start again)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:  # torch raises several types for corrupt zip archives
        if manifest.torch_version != torch.__version__:  # the likely cause on a robot PC or node
            raise ArtifactError(
                f"{ppath}: cannot load TorchScript ({type(exc).__name__}); it was written by torch "
                f"{manifest.torch_version} and this machine has torch {torch.__version__}: install torch "
                f"{manifest.torch_version} here, or re-export the policy with torch {torch.__version__}"
            ) from None
        raise ArtifactError(
            f"{ppath}: cannot load TorchScript ({type(exc).__name__}); re-export it"
        ) from None
    module.eval()
    return FrozenPolicy(module, manifest, d, sha)
