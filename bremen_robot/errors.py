"""Errors a user can act on.

Every exception raised for bad input derives from :class:`BremenError`; the CLI prints its
message as one line (``error: ...``) and exits non-zero. Messages name the problem and the fix.
"""

from __future__ import annotations


class BremenError(Exception):
    """Base class: bad input or an unmet precondition, with a one-line message."""


class ConfigError(BremenError):
    """A configuration file or value is invalid."""


class DatasetError(BremenError):
    """A dataset is missing, corrupt, empty or does not match the task."""


class ArtifactError(BremenError):
    """A policy artifact is missing, corrupt or does not match its manifest."""


class TaskError(BremenError):
    """Unknown task name or observation layout mismatch."""
