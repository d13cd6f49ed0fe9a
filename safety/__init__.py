"""Runtime safety layer (numpy + pydantic only): limits, shield, watchdog, e-stop, OOD gate.

    limits = safety.load_limits("configs/safety/panda.yaml", joint_names=robot.joints)
    shield = safety.SafetyShield(limits)
    out = shield.filter(safety.JointState(names, q, qd, stamp), action, now)
    send(out.command); log(out.interventions)

See docs/safety.md for the semantics of every limit and reason code.
"""

from safety.errors import SafetyConfigError
from safety.limits import (
    Bound,
    CommandBox,
    Envelope,
    JointLimits,
    OodGate,
    PositionLimits,
    SafetyLimits,
    Timing,
    load_limits,
    parse_limits,
)
from safety.shield import SafetyShield, ShieldState
from safety.types import REASONS, Intervention, JointState, Reason, ResetResult, ShieldOutput

__all__ = [
    "REASONS",
    "Bound",
    "CommandBox",
    "Envelope",
    "Intervention",
    "JointLimits",
    "JointState",
    "OodGate",
    "PositionLimits",
    "Reason",
    "ResetResult",
    "SafetyConfigError",
    "SafetyLimits",
    "SafetyShield",
    "ShieldOutput",
    "ShieldState",
    "Timing",
    "load_limits",
    "parse_limits",
]
