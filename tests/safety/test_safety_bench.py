"""The bench section `bremen bench` discovers: it runs, and measures the paths it names."""

from __future__ import annotations

import math

from bremen_robot.bench import shield

KEYS = (
    "shield_us_per_step",
    "shield_us_per_step_violating",
    "shield_us_per_step_estop",
    "shield_us_per_step_hold",
)


def test_bench_section_reports_microseconds_per_step() -> None:
    assert shield.TITLE == "safety shield" and isinstance(shield.ORDER, int)
    result = shield.run(quick=True)
    assert result["shield_joints"] == 7
    for key in KEYS:
        assert math.isfinite(result[key]) and 0.0 < result[key] < 10_000.0, key
    # clipping and explaining 7 joints costs more than passing them through
    assert result["shield_us_per_step_violating"] > result["shield_us_per_step"]
