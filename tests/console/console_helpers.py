"""A hand-built campaign workspace for the console tests: two deployments collected and
evaluated, a pending candidate, an audit log, and a status file; every string the operator or a
config can set may carry hostile markup."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bremen_robot.registry import Registry, init_operator
from tests.registry.registry_helpers import SYNTHETIC_REPORT, make_artifact

SCRIPT = "<script>window.__pwned=1</script>"
IMG = "<img src=x onerror=window.__pwned=2>"
HOSTILE = SCRIPT + IMG


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def status(**fields: Any) -> dict[str, Any]:
    base = {
        "campaign": "demo",
        "stage": "collecting",
        "deployment": 2,
        "deployments": 3,
        "policy_id": "abcd1234",
        "episodes": 7,
        "steps": 700,
        "steps_target": 3000,
        "interventions": 4,
        "estop": "clear",
        "message": "",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": "2026-12-04T10:00:00+00:00",
        "updated_at": "2099-01-01T00:00:00+00:00",
    }
    return {**base, **fields}


def build_workspace(
    root: Path, monkeypatch: pytest.MonkeyPatch, *, hostile: bool = False, reviewed: bool = False
) -> dict[str, Any]:
    """Deployment 1 (random, 300 samples, return -50 ± 5, success 10 %) and deployment 2 (the
    approved candidate, 200 more samples, -20 ± 2, 60 %); a second candidate (-10 ± 1, 80 %)
    waits for approval. Returns the ids."""
    text = HOSTILE if hostile else ""
    monkeypatch.setenv("BREMEN_OPERATOR_DIR", str(root.parent / "operators"))
    monkeypatch.delenv("BREMEN_REGISTRY_URL", raising=False)
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):  # the actor of a rejection
        monkeypatch.setenv(var, f"ops{text}")
    root.mkdir(parents=True)
    write_json(root / "campaign.json", {"name": f"demo{text}", "config_digest": "0" * 64})
    priv, _ = init_operator("alice", root.parent / "operators")
    with Registry.open(root) as reg:
        first_rec = reg.register(
            make_artifact(root.parent / "a1", 1, report=SYNTHETIC_REPORT), lineage={"deployment": 1}
        )
        first = first_rec.id
        reg.approve(first, "alice", priv, note=f"looks fine{text}")
        rejected = reg.register(make_artifact(root.parent / "a3", 3), lineage={"deployment": 1}).id
        reg.reject(rejected, f"too jerky{text}")
        second_rec = reg.register(
            make_artifact(root.parent / "a2", 2, report=SYNTHETIC_REPORT), lineage={"deployment": 2}
        )
        second = second_rec.id
    for k, n in ((1, 300), (2, 200)):
        (root / f"d{k}").mkdir()
        np.savez(root / f"d{k}" / "data.npz", rewards=np.zeros(n))
    write_json(
        root / "d1" / "collect.json", {"steps": 300, "episodes": 3, "interventions": 5, "policy_id": "random"}
    )
    write_json(
        root / "d2" / "collect.json",
        {"steps": 200, "episodes": 2, "interventions": 1, "policy_id": first + text},
    )
    # each evaluation names the artifact it evaluated, as the campaign writes it
    write_json(
        root / "d1" / "eval_random.json",
        {"mean": -50.0, "std": 5.0, "success_rate": 0.1, "policy_sha256": "random"},
    )
    write_json(
        root / "d1" / "eval.json",
        {"mean": -20.0, "std": 2.0, "success_rate": 0.6, "policy_sha256": first_rec.sha256},
    )
    write_json(
        root / "d2" / "eval.json",
        {"mean": -10.0, "std": 1.0, "success_rate": 0.8, "policy_sha256": second_rec.sha256},
    )
    write_json(
        root / "status.json",
        status(stage="waiting_for_approval", policy_id=second, message=text, warning=text or None),
    )
    if reviewed:
        (root / "reviews" / second).mkdir(parents=True)
        (root / "reviews" / second / "review.html").write_text(
            "<!doctype html><title>review</title><p>verdict</p>"
        )
    return {"first": first, "second": second, "rejected": rejected, "second_sha": second_rec.sha256}
