"""What the registry hands out: policy records, approvals, audit rows, and the ids users type."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bremen_robot.registry.states import PolicyState

RANDOM_POLICY_ID = "random"
SHORT_ID_LEN = 12


def short_id(sha256: str) -> str:
    """The id users see and type: the first 12 hex characters (``random`` stays ``random``)."""
    return sha256 if sha256 == RANDOM_POLICY_ID else sha256[:SHORT_ID_LEN]


@dataclass(frozen=True)
class Approval:
    """A signed approval: ``signature`` (base64 Ed25519) is over ``payload`` (canonical JSON)."""

    operator: str
    time: str
    note: str
    signature: str
    payload: str
    key_fingerprint: str


@dataclass(frozen=True)
class AuditRow:
    """One append-only audit entry: who moved which policy from which state to which, when, why."""

    seq: int
    policy_id: str
    sha256: str
    at: str
    actor: str
    from_state: str | None
    to_state: str
    note: str


@dataclass(frozen=True)
class PolicyRecord:
    """A registered policy as the registry knows it.

    ``id`` is the short prefix shown to users; ``sha256`` the full content address of policy.pt.
    ``lineage`` holds ``data_digests`` (training datasets), ``parent`` (full sha256 of the policy
    whose deployment collected the newest data, or ``random``) and ``deployment`` (the number
    of the deployment that produced that data), plus anything else the trainer recorded.
    """

    id: str
    sha256: str
    state: PolicyState
    kind: str
    robot: str
    task: str
    created_at: str
    registered_at: str
    manifest_digest: str
    manifest: dict[str, Any]
    lineage: dict[str, Any]
    report: dict[str, Any]
    approval: Approval | None
    deployments: list[int] = field(default_factory=list)
    artifact_dir: Path | None = None

    @property
    def is_random(self) -> bool:
        return self.kind == RANDOM_POLICY_ID and self.sha256 == RANDOM_POLICY_ID
