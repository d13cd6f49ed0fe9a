"""The platform reference of the ROS bench: which runner misses a bare sleeping loop shared."""

from bremen_robot.bench.wake_jitter import overlaps_stall, sleep_loop


def test_a_miss_counts_as_the_platforms_only_when_its_window_overlaps_a_stall():
    stalls = [[10.000, 0.008], [20.000, 0.003]]  # held [10.000, 10.008] and [20.000, 20.003]
    misses = [
        (10.006, 0.004),  # held [10.002, 10.006]: inside the first stall
        (10.020, 0.005),  # held [10.015, 10.020]: after it
        (20.010, 0.009),  # held [20.001, 20.010]: starts inside the second
        (19.990, 0.003),  # held [19.987, 19.990]: ends 10 ms before it
    ]
    assert overlaps_stall(misses, stalls) == [True, False, True, False]
    assert overlaps_stall([(9.9996, 0.001)], stalls) == [True]  # within the 0.5 ms slack
    assert overlaps_stall([(9.9990, 0.001)], stalls) == [False]  # 1 ms before: not
    assert overlaps_stall(misses, []) == [False] * 4


def test_sleep_loop_accounts_for_every_period_it_ran():
    out = sleep_loop(200.0, 0.25)
    # each wake serves one period and each missed period is one more: together they cover the run
    assert 45 <= out["wakes"] + out["missed_periods"] <= 51
    assert all(late > 0.5 / 200.0 for _, late in out["stalls"])


def test_the_reference_loop_pins_itself_and_writes_its_stalls(tmp_path):
    import json
    import os
    import subprocess
    import sys

    # a subprocess, as the bench runs it: pinning the test process would pin the rest of the suite
    cpu = min(os.sched_getaffinity(0))
    out = tmp_path / "j.json"
    cmd = [sys.executable, "-m", "bremen_robot.bench.wake_jitter", "200", "0.05", "0", str(out), str(cpu)]
    subprocess.run(cmd, check=True, timeout=60)
    got = json.loads(out.read_text())
    assert got["cpu"] == cpu and got["sched_fifo"] is False and got["wakes"] > 0
    bad = subprocess.run(cmd[:5], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr
