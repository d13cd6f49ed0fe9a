"""The logger keeps an episode's segment open until its queued tail arrived (segment_drain)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from bremen_robot.ros import topics as T
from bremen_robot.ros.bagfile import deserialize, read_custom, recover_bag, typestore
from bremen_robot.ros.segment_drain import EpisodeDrain, command_stamp_ns, header_stamp_ns

from .conftest import REPO, requires_rclpy
from .test_bagfile import js_bytes

CMD = "std_msgs/msg/Float64MultiArray"


def cmd_bytes(label: str, data: tuple[float, ...] = (0.1, -0.2)) -> bytes:
    ts = typestore()
    M = ts.types
    dims = [M["std_msgs/msg/MultiArrayDimension"](label=label, size=len(data), stride=len(data))]
    msg = M[CMD](
        layout=M["std_msgs/msg/MultiArrayLayout"](dim=dims if label else [], data_offset=0),
        data=np.array(data, dtype=np.float64),
    )
    return bytes(ts.serialize_cdr(msg, CMD))


def test_stamps_are_read_from_the_serialized_bytes():
    assert header_stamp_ns(js_bytes(3 * 10**9 + 7, 1.0)) == 3 * 10**9 + 7
    assert command_stamp_ns(cmd_bytes(T.make_tag(4, 5_000_000_123))) == 5_000_000_123
    assert command_stamp_ns(cmd_bytes(T.make_tag(-1, 42))) == 42
    assert command_stamp_ns(cmd_bytes(T.make_tag(4, 5_000_000_123, 99))) == 5_000_000_123  # with seq
    assert command_stamp_ns(cmd_bytes("")) is None  # no layout: an untagged command
    assert command_stamp_ns(cmd_bytes("joint_0")) is None
    assert command_stamp_ns(b"\0\1") is None
    xcdr2 = b"\0\x07" + js_bytes(3 * 10**9, 1.0)[2:]  # another encapsulation: not read as plain CDR
    assert header_stamp_ns(xcdr2) is None and command_stamp_ns(xcdr2) is None


def test_a_stream_is_drained_only_past_the_last_state():
    last = 2 * 10**9
    d = EpisodeDrain(last, [T.JOINT_STATES, T.COMMAND, T.SAFETY, T.EPISODE])
    assert d.pending == {T.JOINT_STATES, T.COMMAND}  # sparse streams are not waited for
    assert d.see(T.JOINT_STATES, js_bytes(last - 1, 0.0)) is None  # the queued tail: still draining
    assert d.see(T.JOINT_STATES, js_bytes(last, 0.0)) is False  # the last state itself: not past it
    assert not d.see(T.COMMAND, cmd_bytes(T.make_tag(1, last)))
    assert not d.see(T.JOINT_STATES, js_bytes(last + 1, 0.0))
    assert d.pending == {T.COMMAND}
    assert not d.see(T.SAFETY, b"\0\1\0\0" + b"\xff" * 16)  # other topics change nothing
    assert d.see(T.COMMAND, cmd_bytes(T.make_tag(-1, last + 5)))  # an idle command after it
    assert d.done and EpisodeDrain(last, []).done


def test_after_a_clock_step_back_a_stream_is_drained_at_its_own_drop():
    last = 2 * 10**9
    seen = {T.JOINT_STATES: last - 30, T.COMMAND: last - 30}  # each stream's latest stamp at the stop
    d = EpisodeDrain(last, seen, stepped_back_from=seen)
    assert d.see_stamp(T.JOINT_STATES, last - 20) is None  # the queued tail, still rising
    assert d.see_stamp(T.JOINT_STATES, last) is False  # the last state
    # a small step back, to above where the stream stood at the stop: it drops all the same
    assert d.see_stamp(T.JOINT_STATES, last - 10) is False
    assert d.pending == {T.COMMAND}
    assert d.see_stamp(T.COMMAND, last - 25) is None  # an earlier command of the tail
    assert d.see_stamp(T.COMMAND, last - 25) is None  # a second command for that state is no drop
    assert d.see_stamp(T.COMMAND, None) is False  # an untagged message tells nothing
    assert d.see_stamp(T.COMMAND, last - 10**9) is True  # the next episode's first command
    # a logger that kept up: the stream stood at the last state, so its first message crosses
    caught_up = EpisodeDrain(last, [T.JOINT_STATES], stepped_back_from={T.JOINT_STATES: last})
    assert caught_up.see_stamp(T.JOINT_STATES, last - 10**9) is True
    # an episode cut without a step back: the same stamps are still its queued tail
    plain = EpisodeDrain(last, seen)
    assert [plain.see_stamp(T.JOINT_STATES, s) for s in (last - 20, last - 10**9)] == [None, None]
    # a stream that had delivered nothing before the stop: its first message sets the level
    fresh = EpisodeDrain(last, [T.ODOM], stepped_back_from={})
    assert [fresh.see_stamp(T.ODOM, s) for s in (last - 5, last - 9, last + 1)] == [None, True, True]


LOGGER_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import rclpy
    sys.path.insert(0, {repo!r})
    from bremen_robot.ros import topics as T
    from bremen_robot.ros.trajectory_logger import TrajectoryLogger
    from tests.ros.test_bagfile import js_bytes
    from tests.ros.test_segment_drain import cmd_bytes, event_bytes

    rclpy.init(args=["--ros-args", "-p", "bag:=" + {bag!r}, "-p", "topics:=" + {topics!r}])
    lg = TrajectoryLogger(rclpy)
    cb = {{t: lg._make_cb(t, T.MSG_TYPES[t]) for t in (T.JOINT_STATES, T.COMMAND, T.EPISODE)}}
    S = lambda k: 10**9 + k * 50_000_000
    # "stepped-back": the wall clock steps back 0.9 s after episode 1's last state, and the
    # runner cuts episode 1 there; episode 2 is stamped before all of episode 1
    back = 900_000_000 if {mode!r} == "stepped-back" else 0
    def step(ep, k):
        stamp = S(k) - (back if ep > 1 else 0)
        cb[T.JOINT_STATES](js_bytes(stamp, float(k)))
        cb[T.COMMAND](cmd_bytes(T.make_tag(ep, stamp)))
    cb[T.EPISODE](event_bytes(event="start", id=1))
    for k in range(1, 4):
        step(1, k)
    # a lagging logger: episode 1's stop and episode 2's start overtake its last two states
    reason = "stamp_went_back" if back else "time_limit"
    cb[T.EPISODE](event_bytes(event="stop", id=1, steps=5, last_obs_stamp_ns=S(5), reason=reason))
    cb[T.EPISODE](event_bytes(event="start", id=2))
    if {mode!r} == "stateless-stop":  # an episode that ended before its first state
        cb[T.EPISODE](event_bytes(event="stop", id=2, steps=0, last_obs_stamp_ns=None))
        cb[T.EPISODE](event_bytes(event="start", id=3))
    for k in (4, 5):
        step(1, k)
    for k in (6, 7):
        step(2, k)
    if {mode!r} != "silence":
        os._exit(0)  # killed mid-episode 2: no close, no metadata written on the way out
    cb[T.EPISODE](event_bytes(event="stop", id=2, steps=2, last_obs_stamp_ns=S(7)))
    # nothing more arrives (a lockstep simulator stops stepping): silence closes the segment
    lg._last_received -= 1.0
    lg.on_timer(); lg.on_timer()
    print("OPEN" if lg.writer.segment_open else "CLOSED", flush=True)
    os._exit(0)
    """
)


def event_bytes(**evt: object) -> bytes:
    ts = typestore()
    evt = {"source": "policy_runner", "complete": True, **evt}
    msg = ts.types["std_msgs/msg/String"](data=json.dumps(evt))
    return bytes(ts.serialize_cdr(msg, "std_msgs/msg/String"))


def _run_logger(tmp_path, mode: str) -> tuple[str, list[tuple[str, int]]]:
    bag = tmp_path / "bag"
    topics = "[" + ",".join((T.JOINT_STATES, T.COMMAND, T.EPISODE)) + "]"
    script = LOGGER_SCRIPT.format(repo=str(REPO), bag=str(bag), topics=topics, mode=mode)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    recover_bag(bag)
    stored = []
    with Reader(bag) as r:
        for c, _, raw in r.messages():
            if c.topic.endswith("joint_states"):
                m = deserialize(raw, c.msgtype)
                stored.append(("js", m.header.stamp.sec * 10**9 + m.header.stamp.nanosec))
            elif c.topic.endswith("command"):
                tag = T.parse_tag(deserialize(raw, c.msgtype).layout.dim[0].label)
                assert tag is not None
                stored.append(("cmd", tag[1]))
    return out.stdout, stored


@requires_rclpy
@pytest.mark.parametrize("mode", ["crash", "stateless-stop", "silence", "stepped-back"])
def test_the_tail_that_arrives_after_the_next_start_is_stored_with_its_episode(tmp_path, mode):
    stdout, stored = _run_logger(tmp_path, mode)
    eps = {e["id"]: e for e in json.loads(read_custom(tmp_path / "bag")["bremen.episodes"])}
    S = [10**9 + k * 50_000_000 for k in range(8)]
    episode_1 = [(kind, S[k]) for k in range(1, 6) for kind in ("js", "cmd")]
    assert eps[1]["status"] == "complete"
    # its whole tail, in closed segments
    assert [m for m in stored if S[1] <= m[1] <= S[5]] == episode_1
    if mode == "stepped-back":  # closed at the step back, not when the clock caught up
        assert eps[2]["status"] == "incomplete" and eps[1]["reason"] == "stamp_went_back"
        assert [m[1] for m in stored[len(episode_1) :]] == [S[6] - 9 * 10**8] * 2  # episode 2's first step
    elif mode == "crash":
        assert eps[2]["status"] == "incomplete"
    elif mode == "stateless-stop":
        assert eps[3]["status"] == "incomplete"
    else:
        assert "CLOSED" in stdout and eps[2]["status"] == "complete"
        assert stored == episode_1 + [(kind, S[k]) for k in (6, 7) for kind in ("js", "cmd")]
