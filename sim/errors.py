"""Errors of the simulation layer: one line naming the problem and the fix."""

from __future__ import annotations

from bremen_robot.errors import BremenError


class SimError(BremenError):
    """Unknown robot/task/backend, missing or unloadable asset, bad randomization, no GL."""
