"""Errors of the policy registry; both print as one line through the CLI."""

from __future__ import annotations

from bremen_robot.errors import BremenError


class RegistryError(BremenError):
    """Bad policy id, invalid transition, unreadable database or artifact store."""


class ApprovalError(RegistryError):
    """A policy may not be approved, deployed or run: the message is the one-line reason."""


class RegistryDatabaseError(RegistryError):
    """The database itself failed (busy, unwritable, full disk, I/O error): not the user's id or input."""


class RegistryDamagedError(RegistryDatabaseError):
    """The database file is damaged (unreadable pages, rows or JSON): restore it from a backup."""
