"""The bench section reports steps/s for every robot/backend pair (timing itself stubbed out)."""

from __future__ import annotations

import sim
from bremen_robot.bench import backends, sections


def test_section_is_discovered_and_reports_every_pair(monkeypatch):
    assert backends in sections()
    calls = []

    def fake_rate(fn, seconds):
        for _ in range(3):
            fn()  # the stepping code really runs
        calls.append(seconds)
        return 123.0

    monkeypatch.setattr(backends, "_rate", fake_rate)
    out = backends.run(quick=True)
    keys = {f"{r}/{b}" for r in sim.robot_names() for b in sim.backend_names()}
    assert set(out["backend_steps_per_s"]) == keys
    assert set(out["env_steps_per_s"]) == keys
    assert all(v == 123.0 for v in out["backend_steps_per_s"].values())
    assert len(calls) == 2 * len(keys)


def test_rate_measures_calls_per_second():
    import time

    rate = backends._rate(lambda: time.sleep(0.001), 0.15)
    assert 100 < rate < 1100
