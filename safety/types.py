"""Small value types the shield takes and returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import numpy as np

Reason = Literal[
    "clipped_box",
    "position_limit",
    "soft_limit",
    "velocity_limit",
    "effort_limit",
    "rate_limit",
    "max_step",
    "stale_observation",
    "nan_observation",
    "nan_action",
    "shape_mismatch",
    "envelope",
    "estop",
    "ood",
    "internal_error",
]
"""Why the shield changed a command. See docs/safety.md for each code."""

REASONS: tuple[str, ...] = get_args(Reason)


@dataclass(frozen=True, slots=True)
class JointState:
    """One observation of the robot's joints, as in ``sensor_msgs/JointState``.

    ``names`` may list more joints than are actuated (a planar robot's root joints) and in
    any order; the shield picks the actuated ones by name. ``stamp`` is in seconds, on the
    same clock as the ``now`` given to :meth:`SafetyShield.filter`.
    """

    names: Sequence[str]
    position: np.ndarray
    velocity: np.ndarray
    stamp: float


# Intervention and ShieldOutput are NamedTuples, not frozen dataclasses: equally immutable, and
# built in a third of the time (a frozen dataclass sets each field through object.__setattr__),
# which matters when all 7 joints are clipped in one step (docs/perf-safety.md).


class Intervention(NamedTuple):
    """One change the shield made. ``joint`` is None for whole-command events (e-stop, stale)."""

    reason: Reason
    joint: str | None
    requested: float | None
    sent: float | None
    detail: str


class ShieldOutput(NamedTuple):
    """What to send, and why it differs from what was asked (empty when it does not).

    ``safe`` is True when ``command`` is the safe command (stop), not a filtered action.
    """

    command: np.ndarray
    interventions: tuple[Intervention, ...]
    safe: bool

    @property
    def intervened(self) -> bool:
        return bool(self.interventions)


@dataclass(frozen=True, slots=True)
class ResetResult:
    """Outcome of :meth:`SafetyShield.reset_estop`; truthy when the latch was cleared.

    ``(ok, message)`` map onto ``std_srvs/Trigger``'s response.
    """

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok
