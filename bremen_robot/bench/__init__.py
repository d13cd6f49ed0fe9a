"""`bremen bench`: measurements, not tests. Ratios are taken side by side in one run.

Each section module exposes ``TITLE`` and ``run(quick: bool) -> dict[str, float | int]`` returning
flat JSON keys. Add a section by appending its module to :data:`SECTION_MODULES`.
"""

from __future__ import annotations

SECTION_MODULES: tuple[str, ...] = (
    "bremen_robot.bench.compute",
)
