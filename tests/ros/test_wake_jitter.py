"""The machine reference of the ROS bench: which runner misses the machine's own stalls explain."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bremen_robot.bench.ros_graph import _platform_keys
from bremen_robot.bench.wake_jitter import covered_by_stalls, sleep_loop


def test_a_miss_is_the_machines_only_when_stalls_cover_half_its_window():
    stalls = [
        [10.000, 0.008],
        [20.000, 0.003],
        [20.004, 0.003],
    ]  # [10, 10.008], [20, 20.003], [20.004, 20.007]
    misses = [
        (10.006, 0.004),  # held [10.002, 10.006]: all inside the first stall
        (10.020, 0.005),  # held [10.015, 10.020]: after it
        (10.011, 0.006),  # held [10.005, 10.011]: 3.5 of 6 ms covered (with slack): more than half
        (10.030, 0.025),  # held [10.005, 10.030]: 3.5 of 25 ms: a short stall in a long miss
        (20.008, 0.008),  # held [20.000, 20.008]: two stalls together cover 7.5 of 8 ms
    ]
    assert covered_by_stalls(misses, stalls) == [True, False, True, False, True]
    assert covered_by_stalls(misses, []) == [False] * 5
    # held [5.006, 5.010]; the first stall covers 2.5 of 4 ms, one far after it must add nothing
    # (and must not subtract either)
    assert covered_by_stalls([(5.010, 0.004)], [[5.0065, 0.0015]]) == [True]
    assert covered_by_stalls([(5.010, 0.004)], [[5.0065, 0.0015], [6.0, 0.5]]) == [True]
    assert covered_by_stalls([(5.010, 0.004)], [[5.0085, 0.0005]]) == [False]  # 1.5 of 4 ms


def test_sleep_loop_accounts_for_every_period_it_watched():
    out = sleep_loop(200.0, 0.25)
    periods = (out["t_end"] - out["t_start"]) * 200.0
    # each wake serves one period and each missed one is one more: together they cover the run
    assert out["wakes"] + out["missed_periods"] == pytest.approx(periods, abs=2)
    calls = []
    stopped = sleep_loop(200.0, 10.0, stop=lambda: calls.append(1) is None and len(calls) > 3)
    assert stopped["wakes"] == 3 and stopped["t_end"] - stopped["t_start"] < 1.0


def test_the_reference_loop_pins_itself_runs_until_interrupted_and_reports(tmp_path):
    # a subprocess, as the bench runs it: pinning the test process would pin the rest of the suite
    cpu = min(os.sched_getaffinity(0))
    out = tmp_path / "j.json"
    cmd = [sys.executable, "-m", "bremen_robot.bench.wake_jitter", "200", "3600", "0", str(out), str(cpu)]
    proc = subprocess.Popen(cmd)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    got = json.loads(out.read_text())
    assert got["cpus"] == [cpu] and got["sched_fifo"] is False and got["wakes"] > 20
    assert got["t_end"] - got["t_start"] < 30  # stopped by the signal, not by the 3600 s limit
    for bad in (cmd[:5], [*cmd[:3], "0", "1", "0", str(out)]):  # too few arguments; a zero rate
        res = subprocess.run(bad, capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and res.stderr.strip()


def _stats(missed_at, plat, missed_ticks):
    return {"missed_at": missed_at, "platform": plat, "missed_ticks": missed_ticks}


def test_platform_keys_split_the_runners_misses_into_the_machines_and_its_own():
    cpu = {"t_start": 100.0, "t_end": 110.0, "missed_periods": 2, "sched_fifo": True}
    plat = [
        {**cpu, "stalls": [[101.000, 0.006]]},
        {**cpu, "stalls": [[105.000, 0.003]], "missed_periods": 1},
    ]
    missed_at = [  # (tick, ms behind, missed, in episode, start)
        (10, 5.0, 2, True, 101.005),  # inside the first CPU's stall: the machine's
        (20, 4.0, 1, True, 107.004),  # no stall near: the runner's own
        (30, 1.2, 0, True, 105.002),  # late, not missed: not counted at all
        (40, 3.0, 1, False, 99.0),  # before the reference watched: the runner's own
    ]
    keys = _platform_keys(_stats(missed_at, plat, 4), "500hz")
    assert keys["platform_cpus_reported_500hz"] == 2
    assert keys["platform_missed_periods_500hz"] == 2 and keys["platform_worst_stall_ms_500hz"] == 6.0
    assert keys["runner_missed_ticks_500hz_own"] == 2
    assert keys["runner_missed_ticks_500hz_chance"] == 0  # moved 5 s away, the stall explains nothing
    assert _platform_keys(_stats(missed_at, None, 4), "500hz") == {"platform_cpus_reported_500hz": 0}


def test_the_bench_starts_one_pinned_loop_per_cpu_and_reports_only_when_all_did(tmp_path):
    from bremen_robot.bench.ros_graph import _start_reference, _stop_reference

    env = dict(os.environ)
    cpus = sorted(os.sched_getaffinity(0))
    procs = _start_reference(tmp_path, "t", 200.0, 0, env)
    time.sleep(1.0)
    got = _stop_reference(procs, tmp_path, "t")
    assert got is not None and [c["cpus"] for c in got] == [[c] for c in cpus]
    assert all(p.poll() is not None for p in procs)  # none left running
    procs = _start_reference(tmp_path, "t", 200.0, 0, env)  # stale files of the last run go first
    assert not list(tmp_path.glob("t.cpu*.json"))
    procs[0].kill()
    assert _stop_reference(procs, tmp_path, "t") is None  # one CPU missing: no attribution at all
