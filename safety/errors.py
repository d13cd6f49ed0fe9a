"""Errors raised by the safety layer."""

from __future__ import annotations


class SafetyConfigError(ValueError):
    """A safety limits file or mapping is invalid.

    The message is one line: ``<source>: <field.path>: <problem>; <fix>``.
    """
