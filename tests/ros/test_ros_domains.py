"""The test suite's ROS domains: workers of one parallel run never draw the same one."""

from __future__ import annotations

import pytest

from tests.ros_domains import random_domain, random_domains


def _pool(monkeypatch: pytest.MonkeyPatch, worker: str | None, count: int | None) -> set[int]:
    for name, value in (("PYTEST_XDIST_WORKER", worker), ("PYTEST_XDIST_WORKER_COUNT", count)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(value))
    return set(random_domains(101, 200, 50 if count == 2 else 100))


def test_two_workers_draw_from_disjoint_halves(monkeypatch: pytest.MonkeyPatch) -> None:
    first = _pool(monkeypatch, "gw0", 2)
    second = _pool(monkeypatch, "gw1", 2)
    assert first == set(range(102, 201, 2))  # the even domains: all 50 of them, drawn
    assert second == set(range(101, 200, 2))
    assert first.isdisjoint(second)


def test_without_xdist_the_whole_range_is_drawn_from(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _pool(monkeypatch, None, None) == set(range(101, 201))
    assert 101 <= random_domain(101, 200) <= 200


def test_a_range_too_small_for_the_workers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    with pytest.raises(ValueError, match=r"fewer than 2 ROS domains in \[10, 12\] for worker 3 of 4"):
        random_domains(10, 12, 2)
