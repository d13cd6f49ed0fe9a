"""Pick MuJoCo's offscreen OpenGL platform before ``mujoco`` is first imported.

MuJoCo reads ``MUJOCO_GL`` once, at import. On a machine without a display we choose EGL when
``libEGL`` is present (GPU drivers or Mesa's software EGL), else OSMesa when ``libOSMesa`` is
present (Debian: ``apt-get install libosmesa6``). A value the user already set always wins.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from typing import Any


def configure_mujoco_gl() -> str | None:
    """Set ``MUJOCO_GL`` (and PyOpenGL's platform) if unset and headless; returns the choice."""
    if "mujoco" in sys.modules or os.environ.get("MUJOCO_GL"):
        return os.environ.get("MUJOCO_GL")
    if os.environ.get("DISPLAY") or sys.platform != "linux":
        return None
    if ctypes.util.find_library("EGL"):
        choice = "egl"
    elif ctypes.util.find_library("OSMesa"):
        choice = "osmesa"
    else:
        return None
    os.environ["MUJOCO_GL"] = choice
    os.environ.setdefault("PYOPENGL_PLATFORM", choice)
    return choice


def import_mujoco() -> Any:
    """``import mujoco`` after choosing the offscreen GL platform (every import in ``sim`` goes here)."""
    configure_mujoco_gl()
    import mujoco

    return mujoco
