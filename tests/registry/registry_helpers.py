"""Helpers of the registry tests: tiny point-task artifacts, a synthetic report, robot configs.

A uniquely named module (not conftest) so test files can import it unambiguously.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bremen_robot.policy.artifact import export_policy
from bremen_robot.policy.gaussian import GaussianPolicy
from bremen_robot.robot_config import RobotConfig
from bremen_robot.tasks import get_task

ROBOT = "pointbot"
RATE_HZ = 10.0

SYNTHETIC_REPORT: dict[str, Any] = {
    "ensemble": {
        "train_mse": [1.0, 0.5, 0.3, 0.2],
        "holdout_mse": [[1.1, 1.3], [0.6, 0.8], [0.4, 0.7], [0.35, 0.72]],  # epochs x members
        "best_holdout_mse": [0.35, 0.7],
    },
    "bc": {"loss": [2.0, 1.0, 0.6]},
    "trpo": {
        "kl": [0.004, 0.006, 0.009],
        "surrogate": [0.0, 0.01, 0.02],
        "imagined_return": [-30.0, -20.0, -12.5],
        "entropy": [1.0, 0.9, 0.85],
    },
    "kl_to_bc": 0.042,
    "behavior_shift": 0.8,
    "disagreement": {"policy_imagined": 0.031, "dataset": 0.012},
    "evaluation": {"return_mean": -15.0, "episodes": 5, "safety_interventions": {"clip": 3, "estop": 0}},
}

ArtifactFactory = Callable[..., Path]


def make_artifact(
    out: Path,
    seed: int = 0,
    *,
    robot: str = ROBOT,
    joint_order: list[str] | None = None,
    control_rate_hz: float = RATE_HZ,
    report: dict[str, Any] | None = None,
) -> Path:
    """Export a tiny point-task policy (2 obs, 2 actions, hidden (8,)) into ``out``."""
    task = get_task("point")
    torch.manual_seed(seed)
    policy = GaussianPolicy(task.obs_dim, task.action_low, task.action_high, hidden=(8,))
    export_policy(
        policy,
        out,
        robot=robot,
        task=task.name,
        observation_names=list(task.obs_names),
        action_names=list(task.action_names),
        joint_order=joint_order,
        control_rate_hz=control_rate_hz,
        data_digests=[f"{seed:064x}"],
    )
    if report is not None:
        (out / "report.json").write_text(json.dumps(report))
    return out


def robot_config(trusted: list[Path], **overrides: Any) -> RobotConfig:
    task = get_task("point")
    fields: dict[str, Any] = {
        "name": ROBOT,
        "simulated": True,
        "task": "point",
        "joints": list(task.action_names),
        "control_rate_hz": RATE_HZ,
        "trusted_operator_keys": trusted,
    }
    fields.update(overrides)
    return RobotConfig(**fields)


def record_torch_parses(monkeypatch: Any) -> list[str]:
    """Patch ``torch.jit.load`` to record the sha256 of every buffer it is given (then load it as
    before): the list a test asserts a swapped file's hash is absent from (never parsed)."""
    import hashlib

    parsed: list[str] = []
    real_load = torch.jit.load

    def load(f: Any, **kw: Any) -> Any:
        parsed.append(hashlib.sha256(f.getvalue()).hexdigest())
        return real_load(f, **kw)

    monkeypatch.setattr(torch.jit, "load", load)
    return parsed
