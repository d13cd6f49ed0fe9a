"""policy_runner's timing record (bremen_robot/ros/tick_stats.py), and the latency-log format
that `bremen bench` reads back."""

from __future__ import annotations

import json

import pytest

from bremen_robot.ros.tick_stats import MAX_MISSED_RECORDS, TickStats


def test_missed_and_late_ticks_are_counted_and_logged_in_the_bench_s_field_order():
    s = TickStats()
    s.tick(10.0, 10.002, 0.002, 0, False, True)  # on time: counted, not recorded
    # started 3.5 ms after the deadline it served: 10.0035 - (10.004 - 2 * 0.002)
    s.tick(10.0035, 10.004, 0.002, 1, True, False)
    summary = s.summary()
    assert (summary["ticks"], summary["missed_ticks"], summary["late_ticks"]) == (2, 1, 1)
    # the log is JSON: bench/ros_graph.py reads (tick, ms behind, missed, in episode, start) by index
    assert json.loads(json.dumps(summary["missed_at"])) == [[2, 3.5, 1, False, 10.0035]]


def test_missed_tick_records_are_capped():
    s = TickStats()
    for k in range(MAX_MISSED_RECORDS + 5):
        s.tick(float(k), float(k), 1.0, 1, False, True)
    assert s.missed == MAX_MISSED_RECORDS + 5 and len(s.missed_at) == MAX_MISSED_RECORDS


def test_latency_and_age_percentiles_in_milliseconds():
    s = TickStats()
    assert s.summary()["p50_ms"] is None and s.summary()["steps"] == 0
    for k in range(3):  # step took 1, 2, 3 ms; the observation was 2 ms older than the step
        s.command_sent(5.0, 5.0 + 0.001 * (k + 1), 5.0 - 0.002)
    summary = s.summary()
    assert summary["steps"] == 3
    assert summary["p50_ms"] == pytest.approx(2.0) and summary["max_ms"] == pytest.approx(3.0)
    assert summary["age_p50_ms"] == pytest.approx(4.0)
