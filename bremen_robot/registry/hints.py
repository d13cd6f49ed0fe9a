"""Other ``bremen`` commands that a message names as the fix, for the registry in use."""

from __future__ import annotations

import shlex
from pathlib import Path


def bremen_command(args: str, workspace: Path | None) -> str:
    """``bremen ARGS``, plus ``--workspace W`` when ``workspace`` is not the default one: without
    it, a user who passed --workspace would follow the hint into another registry."""
    from bremen_robot.registry.store import default_workspace  # store imports the callers

    cmd = f"bremen {args}"
    if workspace is not None and Path(workspace).resolve() != default_workspace().resolve():
        cmd += f" --workspace {shlex.quote(str(workspace))}"
    return cmd
