"""Policy registry, operator review and signed approval (DESIGN.md §3 "Registry and approval").

No policy reaches a robot unless a named operator reviewed and approved it::

    reg = Registry.open()                         # <workspace>/registry.sqlite
    rec = reg.register(artifact_dir)              # candidate, content-addressed by sha256
    reg.approve(rec.id, "alice", note="looks ok") # Ed25519 signature by alice's key
    policy = verify_for_deployment(rec.id, robot, reg)   # robot side, before anything moves
    n = reg.mark_deployed(rec.id)                 # deployment number; the count goes up
"""

from __future__ import annotations

from bremen_robot.registry.db import STATES, TRANSITIONS
from bremen_robot.registry.errors import ApprovalError, RegistryError
from bremen_robot.registry.signing import (
    OPERATOR_DIR_ENV,
    canonical_payload,
    default_operator_dir,
    init_operator,
    key_fingerprint,
    key_paths,
    load_private_key,
    load_public_key,
    verify_signature,
)
from bremen_robot.registry.states import PolicyState
from bremen_robot.registry.store import (
    DB_FILE,
    RANDOM_POLICY_ID,
    REGISTRY_URL_ENV,
    REPORT_FILE,
    STORE_DIR,
    WORKSPACE_ENV,
    Approval,
    AuditRow,
    PolicyRecord,
    Registry,
    default_workspace,
    read_report,
    short_id,
)
from bremen_robot.registry.trust import check_compatibility, check_for_deployment, verify_for_deployment

__all__ = [
    "DB_FILE",
    "OPERATOR_DIR_ENV",
    "RANDOM_POLICY_ID",
    "REGISTRY_URL_ENV",
    "REPORT_FILE",
    "STATES",
    "STORE_DIR",
    "TRANSITIONS",
    "WORKSPACE_ENV",
    "Approval",
    "ApprovalError",
    "AuditRow",
    "PolicyRecord",
    "PolicyState",
    "Registry",
    "RegistryError",
    "canonical_payload",
    "check_compatibility",
    "check_for_deployment",
    "default_operator_dir",
    "default_workspace",
    "init_operator",
    "key_fingerprint",
    "key_paths",
    "load_private_key",
    "load_public_key",
    "read_report",
    "short_id",
    "verify_for_deployment",
    "verify_signature",
]
