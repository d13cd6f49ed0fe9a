"""`bremen bench`: measurements, not tests. Ratios are taken side by side in one run.

Each section is a module ``bremen_robot/bench/<name>.py`` exposing ``TITLE: str``,
``ORDER: int`` and ``run(quick: bool) -> dict[str, float | int]`` returning flat JSON keys.
Sections are discovered by name, so adding one is adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def sections() -> list[ModuleType]:
    mods = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    mods = [m for m in mods if hasattr(m, "run") and hasattr(m, "TITLE")]
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))
