"""Bag ingest without ROS: tag pairing regardless of arrival order, task rewards, bad states."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bremen_robot.data.bag_ingest import ingest_bags
from bremen_robot.errors import DatasetError
from bremen_robot.ros import topics as T
from bremen_robot.ros.bagfile import SegmentedBagWriter, typestore
from bremen_robot.tasks import get_task

TASK = get_task("halfcheetah")
NAMES = ["rootx", "rootz", "rooty", *TASK.action_names]


def _ser(msg, msgtype):
    return bytes(typestore().serialize_cdr(msg, msgtype))


def _header(ts, stamp_ns, frame=""):
    t = ts.types
    return t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
        frame_id=frame,
    )


def write_episode(w, eid=1, n=8, nan_at=None, scramble=True, stop=True, t0_ns=10**9, events_first=True):
    """One episode as the graph logs it into the open writer ``w``: n steps, scrambled order.

    ``events_first=False`` logs start, messages, stop in that order (as the live logger does).
    """
    ts = typestore()
    t = ts.types
    rng = np.random.default_rng(eid - 1)
    stamps = [t0_ns + k * 5 * 10**7 for k in range(n + 1)]
    states, cmds, msgs = [], [], []
    for k, st in enumerate(stamps):
        q, qd = rng.normal(0, 0.1, 9), rng.normal(0, 1, 9)
        if k == nan_at:
            q[3] = np.nan
        states.append((q, qd))
        js = t["sensor_msgs/msg/JointState"](
            header=_header(ts, st), name=NAMES, position=q, velocity=qd, effort=np.zeros(0)
        )
        msgs.append((T.JOINT_STATES, "sensor_msgs/msg/JointState", _ser(js, "sensor_msgs/msg/JointState")))
        if k < n:
            a = rng.uniform(-1, 1, 6)
            cmds.append(a)
            tag = T.make_tag(eid, st)
            dim = t["std_msgs/msg/MultiArrayDimension"](label=tag, size=6, stride=6)
            arr = t["std_msgs/msg/Float64MultiArray"](
                layout=t["std_msgs/msg/MultiArrayLayout"](dim=[dim], data_offset=0), data=a
            )
            msgs.append(
                (T.COMMAND, "std_msgs/msg/Float64MultiArray", _ser(arr, "std_msgs/msg/Float64MultiArray"))
            )
            if k == 2:
                status = t["diagnostic_msgs/msg/DiagnosticStatus"](
                    level=1, name="bremen/safety/clipped_box", message="", hardware_id="", values=[]
                )
                diag = t["diagnostic_msgs/msg/DiagnosticArray"](
                    header=_header(ts, 0, tag), status=[status, status]
                )
                msgs.append(
                    (
                        T.SAFETY,
                        "diagnostic_msgs/msg/DiagnosticArray",
                        _ser(diag, "diagnostic_msgs/msg/DiagnosticArray"),
                    )
                )
    common = {"id": eid, "policy_sha256": "random", "deployment": 1, "source": "policy_runner"}
    start = {"event": "start", **common}
    end = {
        "event": "stop",
        "reason": "time_limit",
        "complete": True,
        "last_obs_stamp_ns": stamps[-1],
        **common,
    }
    if scramble:
        # every command before the states it answers, and the states backwards: pairing must not
        # rely on the order of the streams (the logger takes one message per subscription in
        # turn) or of the states. The commands keep their order, as the runner sent them (ingest
        # reads a command stamped before an earlier one as a clock that stepped back)
        msgs = [m for m in msgs if m[0] == T.COMMAND] + [m for m in msgs if m[0] != T.COMMAND][::-1]

    def event(e, stamp):
        s = t["std_msgs/msg/String"](data=json.dumps(e))
        w.write("/" + T.EPISODE, "std_msgs/msg/String", stamp, _ser(s, "std_msgs/msg/String"))

    w.episode(eid, status="open")
    events = [start, end] if stop else [start]
    for e in events if events_first else events[:1]:
        event(e, t0_ns)
    for k, (topic, mt, data) in enumerate(msgs):
        w.write("/" + topic, mt, t0_ns + 10 + k, data)
    if stop and not events_first:
        event(end, t0_ns + 10 + len(msgs))
    if stop:
        w.episode(eid, status="complete", reason="time_limit")
    return states, cmds


def make_bag(path: Path, n: int = 8, nan_at: int | None = None, scramble: bool = True, stop: bool = True):
    """A bag as the graph writes it: n steps of one episode, messages in a scrambled order."""
    w = SegmentedBagWriter(path, {"bremen.task": "halfcheetah", "bremen.mode": "lockstep"})
    states, cmds = write_episode(w, 1, n=n, nan_at=nan_at, scramble=scramble, stop=stop)
    w.close()
    return states, cmds


def test_pairs_by_tag_and_scores_with_the_task(tmp_path):
    states, cmds = make_bag(tmp_path / "bag")
    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    assert len(d["obs"]) == 8
    from sim.observation import build_observation

    obs = np.array([build_observation(TASK, NAMES, q, qd) for q, qd in states])
    np.testing.assert_allclose(d["obs"], obs[:-1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d["next_obs"], obs[1:], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d["actions"], np.array(cmds), rtol=1e-6)
    np.testing.assert_allclose(d["rewards"], TASK.reward(obs[:-1], np.array(cmds), obs[1:]), rtol=1e-5)
    assert d["interventions"].tolist() == [0, 0, 2, 0, 0, 0, 0, 0]
    assert d["timeouts"].tolist() == [False] * 7 + [True] and not d["terminals"].any()


def test_unusable_states_drop_their_transitions(tmp_path):
    make_bag(tmp_path / "bag", nan_at=4)
    d = ingest_bags([tmp_path / "bag"])
    assert len(d["obs"]) == 6 and d["report"][0]["dropped_transitions"] == 2
    assert np.all(np.isfinite(d["obs"])) and np.all(np.isfinite(d["next_obs"]))


def test_incomplete_episodes_are_skipped_unless_asked(tmp_path):
    make_bag(tmp_path / "bag", stop=False)
    with pytest.raises(DatasetError, match="no complete episode"):
        ingest_bags([tmp_path / "bag"])
    d = ingest_bags([tmp_path / "bag"], include_incomplete=True)
    assert len(d["obs"]) == 7 and d["timeouts"][-1]  # the last command has no next state


def test_a_bag_whose_complete_episodes_are_all_unusable_says_so_not_collect_longer(tmp_path):
    w = SegmentedBagWriter(tmp_path / "bag", {"bremen.task": "halfcheetah", "bremen.mode": "lockstep"})
    write_episode(w, 3, n=1, nan_at=0)  # its one state is NaN: nothing usable
    w.close()
    with pytest.raises(DatasetError) as err:
        ingest_bags([tmp_path / "bag"], "halfcheetah")
    assert str(err.value) == (
        f"no usable transition in {tmp_path / 'bag'}: the complete episodes ({tmp_path / 'bag'} "
        "episode(s) 3) have observations missing, not finite or not matching the task; check the "
        "robot config's joints against the joint_states the robot sent"
    )


def test_task_mismatch_and_missing_bag_are_one_line_errors(tmp_path):
    make_bag(tmp_path / "bag")
    with pytest.raises(DatasetError, match="recorded for task 'halfcheetah'"):
        ingest_bags([tmp_path / "bag"], "hopper")
    with pytest.raises(DatasetError, match="not a rosbag2 folder"):
        ingest_bags([tmp_path / "nothing"])


def test_ingest_needs_no_ros(tmp_path):
    make_bag(tmp_path / "bag")
    code = (
        "import sys; sys.modules['rclpy'] = None\n"  # any import of rclpy now fails
        "from bremen_robot.data.bag_ingest import ingest_bags\n"
        f"d = ingest_bags([{str(tmp_path / 'bag')!r}]); print(len(d['obs']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "8"


def test_an_episodes_extras_are_kept_when_the_simulators_reset_was_logged_before_the_start():
    """Seen in a quickstart campaign: 4 of 30 Panda episodes logged sim_bridge's reset (with the
    goal) before policy_runner's start, and ingest dropped all 400 of their transitions."""
    from types import SimpleNamespace

    from bremen_robot.data.bag_ingest import _episode_plan

    goal = {"goal_x": 0.4, "goal_y": -0.1, "goal_z": 0.3}
    runner = {"source": "policy_runner", "policy_sha256": "random", "deployment": 1}
    events = [
        {"source": "sim_bridge", "event": "reset", "id": 7, "extras": goal},  # before the start
        {**runner, "event": "start", "id": 7},
        {**runner, "event": "stop", "id": 7, "complete": True},
        {**runner, "event": "start", "id": 8},
        {"source": "sim_bridge", "event": "reset", "id": 8, "extras": {"goal_x": 0.1}},  # after
        {**runner, "event": "stop", "id": 8, "complete": True},
    ]
    listed = json.dumps([{"id": 7, "status": "complete"}, {"id": 8, "status": "complete"}])
    plan = _episode_plan(SimpleNamespace(events=events, custom={"bremen.episodes": listed}, path=Path("bag")))
    assert [(r["id"], r["complete"], r["extras"]) for r in plan] == [
        (7, True, goal),
        (8, True, {"goal_x": 0.1}),
    ]


def test_a_complete_episode_without_one_usable_transition_is_named_in_a_warning(tmp_path):
    w = SegmentedBagWriter(tmp_path / "bag", {"bremen.task": "halfcheetah", "bremen.mode": "lockstep"})
    write_episode(w, 1, n=8)
    write_episode(w, 2, n=1, nan_at=0, t0_ns=5 * 10**9)  # its one state is NaN: nothing usable
    w.close()
    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    (rep,) = d["report"]
    assert len(d["obs"]) == 8 and rep["episodes"] == 1 and rep["unusable_episodes"] == [2]
    assert rep["warnings"] == [
        f"{tmp_path / 'bag'}: episode(s) 2 logged as complete gave no usable transition "
        "(observations missing, not finite or not matching the task) and were left out"
    ]


def test_a_bag_given_twice_is_refused(tmp_path):
    """'bremen dataset ingest bags/d1 bags/d1/' ingested every episode twice, without a word."""
    make_bag(tmp_path / "bag")
    with pytest.raises(DatasetError, match="given twice") as info:
        ingest_bags([tmp_path / "bag", f"{tmp_path / 'bag'}/"])
    assert "\n" not in str(info.value)
    assert len(ingest_bags([tmp_path / "bag"])["obs"]) == 8


def test_a_bag_still_being_written_is_refused_until_its_logger_closes_it(tmp_path, capsys):
    """After `kill -9` of `bremen collect`, its trajectory_logger lives on for seconds and keeps
    writing; an ingest then wrote a dataset of the episodes closed so far, without a word."""
    from bremen_robot.cli import main

    bag, out = tmp_path / "bag", tmp_path / "d.npz"
    w = SegmentedBagWriter(bag, {"bremen.task": "halfcheetah", "bremen.mode": "lockstep"})
    write_episode(w, 1, n=8)
    assert main(["dataset", "ingest", str(bag), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: {bag}: a trajectory_logger is still writing this bag; wait until it closes it "
        "(its collection ends, or the logger exits after a killed one), then ingest\n"
    )
    assert not out.exists()
    w.close()
    assert main(["dataset", "ingest", str(bag), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}: 8 transitions, 1 episodes from 1 bag(s)\n"


def test_the_writer_lock_probe_needs_no_write_access_where_flock_is_fcntl(tmp_path, monkeypatch):
    """On NFS, flock is emulated by fcntl locks: an exclusive one on a file opened read-only is
    EBADF (flock(2), NFS details). The probe opens the lock read-only, so it asks for a shared
    lock, which a live writer's exclusive lock still refuses."""
    import errno
    import fcntl
    import os

    import bremen_robot.ros.bagfile as bagfile

    real = fcntl.flock

    def nfs_flock(fd: int, op: int) -> None:
        read_only = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
        if op & fcntl.LOCK_EX and read_only:
            raise OSError(errno.EBADF, "Bad file descriptor")
        real(fd, op)

    monkeypatch.setattr(bagfile.fcntl, "flock", nfs_flock)
    w = SegmentedBagWriter(tmp_path / "bag", {"bremen.task": "halfcheetah", "bremen.mode": "lockstep"})
    write_episode(w, 1, n=8)
    assert bagfile.wait_until_unwritten(tmp_path / "bag", 0.0) is False
    w.close()
    assert bagfile.wait_until_unwritten(tmp_path / "bag", 0.0) is True


def test_a_file_given_as_a_bag_is_named_as_not_a_bag_folder(tmp_path, capsys):
    from bremen_robot.cli import main

    (tmp_path / "metadata.yaml").write_text("x: 1\n")
    assert main(["dataset", "ingest", str(tmp_path / "metadata.yaml"), "--out", str(tmp_path / "d.npz")]) == 2
    err = capsys.readouterr().err
    assert "is not a rosbag2 folder" in err and ".writer.lock" not in err
