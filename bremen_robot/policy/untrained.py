"""Untrained policies, exported and optionally approved: what benchmarks and tests deploy when
the graph's timing or plumbing matters and the policy's skill does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export_untrained_policy(
    out: Path, *, task: str = "halfcheetah", robot: str = "halfcheetah", hidden: tuple[int, ...] = (200, 200)
) -> Path:
    """A seeded, untrained ``GaussianPolicy`` for ``task`` exported as a frozen artifact at ``out``."""
    import torch

    from bremen_robot.policy.artifact import export_policy
    from bremen_robot.policy.gaussian import GaussianPolicy
    from bremen_robot.tasks import get_task

    t = get_task(task)
    torch.manual_seed(0)
    export_policy(
        GaussianPolicy(t.obs_dim, t.action_low, t.action_high, hidden=hidden),
        out,
        robot=robot,
        task=task,
        observation_names=list(t.obs_names),
        action_names=list(t.action_names),
        control_rate_hz=20.0,
    )
    return out


def approved_untrained_policy(
    root: Path, *, operator: str = "bench", hidden: tuple[int, ...] = (200, 200)
) -> dict[str, Any]:
    """Under ``root``: an untrained halfcheetah policy registered and approved by a fresh
    ``operator`` key, and a robot config (``robot.yaml``) that trusts that key.

    Returns ``workspace``, ``artifact``, ``robot`` (the config path), ``id`` and ``sha256``.
    """
    import yaml

    from bremen_robot.registry import Registry, init_operator
    from bremen_robot.ros.config import config_root

    art = export_untrained_policy(root / "artifact", hidden=hidden)
    _, pub = init_operator(operator, root / "operators")
    configs = config_root()
    robot = yaml.safe_load((configs / "robots" / "halfcheetah.yaml").read_text())
    robot["safety"] = str(configs / "safety" / "halfcheetah.yaml")
    robot["trusted_operator_keys"] = [str(pub)]
    robot_path = root / "robot.yaml"
    robot_path.write_text(yaml.safe_dump(robot))
    ws = root / "ws"
    with Registry.open(ws) as reg:
        rec = reg.register(art)
        reg.approve(rec.id, operator, root / "operators" / f"{operator}.key")
    return {"workspace": ws, "artifact": art, "robot": robot_path, "id": rec.id, "sha256": rec.sha256}
