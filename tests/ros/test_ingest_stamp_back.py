"""Ingest never pairs across a state stamp that went back (a wall clock stepped back, 2026-12-06).

Transitions are paired in state-stamp order. A runner older than 2026-12-06 went on with the
episode when the realtime clock stepped back, so its later commands answer states stamped
before earlier ones, and stamp order interleaves two stretches of time. Ingest cuts the episode
at the step; policy_runner now ends it there itself (reason ``stamp_went_back``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bremen_robot.data.bag_ingest import _episode_steps, ingest_bags
from bremen_robot.ros import topics as T
from bremen_robot.ros.bagfile import SegmentedBagWriter, typestore
from sim.observation import build_observation
from tests.ros.test_ingest import NAMES, TASK, _header, _ser

JS, ARR, STR = "sensor_msgs/msg/JointState", "std_msgs/msg/Float64MultiArray", "std_msgs/msg/String"
MS = 10**6


def realtime_bag(path: Path, answered: list[int], stop: dict) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One realtime episode: per stamp in ``answered`` (in that order) its state, then the
    command answering it; then the runner's ``stop`` event. Returns observations and commands."""
    ts = typestore()
    t = ts.types
    rng = np.random.default_rng(1)
    w = SegmentedBagWriter(path, {"bremen.task": "halfcheetah", "bremen.mode": "realtime"})
    log_ns = iter(range(10**9, 10**9 + 10**6))
    common = {"id": 1, "policy_sha256": "random", "deployment": 1, "source": "policy_runner"}

    def write(topic, msgtype, msg):
        w.write("/" + topic, msgtype, next(log_ns), _ser(msg, msgtype))

    w.episode(1, status="open")
    write(T.EPISODE, STR, t[STR](data=json.dumps({**common, "event": "start"})))
    obs, cmds = [], []
    for seq, stamp in enumerate(answered, 1):
        q, qd = rng.normal(0, 0.1, 9), rng.normal(0, 1, 9)
        obs.append(build_observation(TASK, NAMES, q, qd))
        js = t[JS](header=_header(ts, stamp), name=NAMES, position=q, velocity=qd, effort=np.zeros(0))
        write(T.JOINT_STATES, JS, js)
        cmds.append(rng.uniform(-1, 1, 6))
        dim = t["std_msgs/msg/MultiArrayDimension"](label=T.make_tag(1, stamp, seq), size=6, stride=6)
        layout = t["std_msgs/msg/MultiArrayLayout"](dim=[dim], data_offset=0)
        write(T.COMMAND, ARR, t[ARR](layout=layout, data=cmds[-1]))
    write(T.EPISODE, STR, t[STR](data=json.dumps({**common, "event": "stop", "complete": True, **stop})))
    w.episode(1, status="complete", reason=stop["reason"])
    w.close()
    return obs, cmds


def test_an_older_runners_episode_is_cut_where_the_stamps_went_back(tmp_path):
    """The clock stepped back 75 ms after the fourth state; the old runner went on, so stamp
    order would interleave 10.000 10.025 10.050 ... and pair states 25 ms apart in either time."""
    before = [10_000 * MS, 10_050 * MS, 10_100 * MS, 10_150 * MS]
    after = [10_025 * MS, 10_075 * MS, 10_125 * MS]
    obs, cmds = realtime_bag(
        tmp_path / "bag", before + after, {"reason": "time_limit", "last_obs_stamp_ns": after[-1]}
    )
    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    # the transitions inside the first stretch only; the fourth command's next state is unknown
    np.testing.assert_allclose(d["obs"], np.array(obs[:3]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d["next_obs"], np.array(obs[1:4]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d["actions"], np.array(cmds[:3]), rtol=1e-6)
    assert d["timeouts"].tolist() == [False, False, True]  # a cut, not the time limit's end
    (rep,) = d["report"]
    assert rep["cut_episodes"] == [1]
    assert rep["warnings"] == [
        f"{tmp_path / 'bag'}: in episode(s) 1 a state stamp went back (the clock stepped back?); "
        "each was cut there and its commands after the step left out"
    ]


def test_an_episode_the_runner_ended_at_the_step_keeps_its_transitions_as_a_cut(tmp_path):
    """policy_runner since 2026-12-06: the stop names the last state before the step and sends no
    command of the episode after it."""
    stamps = [10_000 * MS, 10_050 * MS, 10_100 * MS]
    obs, cmds = realtime_bag(
        tmp_path / "bag", stamps, {"reason": "stamp_went_back", "last_obs_stamp_ns": stamps[-1]}
    )
    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    np.testing.assert_allclose(d["actions"], np.array(cmds[:2]), rtol=1e-6)
    assert d["timeouts"].tolist() == [False, True] and not d["terminals"].any()
    assert "cut_episodes" not in d["report"][0] and "warnings" not in d["report"][0]


def test_steps_are_cut_at_the_first_stamp_below_an_earlier_one():
    a, b, c, e = (np.full(6, x) for x in (0.1, 0.2, 0.3, 0.4))
    steps, cut = _episode_steps([(1, 1, a), (2, 2, b), (2, 3, c), (3, 4, e)], {}, keep_last=True)
    assert [s for s, _ in steps] == [1, 2, 3] and steps[1][1] is c and not cut
    steps, cut = _episode_steps([(1, 1, a), (3, 2, b), (2, 3, c), (4, 4, e)], {}, keep_last=True)
    assert [s for s, _ in steps] == [1, 3] and cut
