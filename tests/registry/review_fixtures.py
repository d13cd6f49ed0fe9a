"""A small campaign-like workspace for the review tests: files laid out as the campaign writes them
(``d1/eval_random.json``, ``d1/collect.json``, ``d1/collect.yaml``, ``d1/eval.json``), a registry
with the random deployment and one candidate, and a decoy evaluation of another policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from registry_helpers import SYNTHETIC_REPORT, ArtifactFactory

from bremen_robot.registry import PolicyRecord, Registry

# the trainer's report without an evaluation: the figures must come from the workspace's files
REPORT = {k: v for k, v in SYNTHETIC_REPORT.items() if k != "evaluation"}
CAND_RETURNS = [-11.0, -14.0, -12.0, -13.0]  # mean -12.5, std 1.118
RANDOM_RETURNS = [-40.0, -36.0, -38.0, -38.0]  # mean -38.0, std 1.414


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def campaign_like(
    ws: Path, reg: Registry, factory: ArtifactFactory, report: dict[str, Any] | None = None
) -> PolicyRecord:
    """Deployment 1 (random) collected, its candidate trained, registered and evaluated."""
    reg.record_random_deployment("campaign deployment 1", robot="pointbot", task="point")
    rec = reg.register(factory(), report=report or REPORT, lineage={"parent": "random", "deployment": 1})
    d1 = ws / "d1"
    write_json(
        d1 / "eval_random.json",
        {"env": "point", "returns": RANDOM_RETURNS, "mean": -38.0, "std": 1.414, "policy_sha256": "random"},
    )
    write_json(
        d1 / "collect.json",
        {"steps": 300, "episodes": 3, "interventions": 6, "policy_id": "random", "deployment": 1},
    )
    (d1 / "collect.yaml").write_text("noise_sigma: 0.1\nseed: 1\n")
    write_json(
        d1 / "eval.json",
        {
            "env": "point",
            "returns": CAND_RETURNS,
            "mean": -12.5,
            "std": 1.118,
            "success_rate": 0.75,
            "policy_sha256": rec.sha256,
            "sim2real": {
                "conditions": [
                    {
                        "label": "train",
                        "backend": "mujoco",
                        "randomized": False,
                        "episodes": 4,
                        "return_mean": -12.5,
                        "return_std": 1.118,
                        "success_rate": 0.75,
                        "interventions_per_episode": None,
                    },
                    {
                        "label": "other",
                        "backend": "pybullet",
                        "randomized": False,
                        "episodes": 4,
                        "return_mean": -15.0,
                        "return_std": 2.0,
                        "success_rate": 0.5,
                        "interventions_per_episode": None,
                    },
                ],
                "transfer_ratio": 1.2,
            },
        },
    )
    # another policy's evaluation in a later deployment: must never be taken for this candidate's
    write_json(
        ws / "d2" / "eval.json",
        {"env": "point", "returns": [99.0], "mean": 99.0, "std": 0.0, "policy_sha256": "f" * 64},
    )
    return rec
