"""The segmented rosbag2 writer: readable by rosbags, crash-safe, never overwrites (no ROS needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from bremen_robot.errors import DatasetError
from bremen_robot.ros.bagfile import (
    SegmentedBagWriter,
    deserialize,
    partial_segments,
    read_custom,
    recover_bag,
    typestore,
)

JS = "sensor_msgs/msg/JointState"


def js_bytes(stamp_ns: int, pos: float) -> bytes:
    ts = typestore()
    T = ts.types
    msg = T[JS](
        header=T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
            frame_id="",
        ),
        name=["a"],
        position=np.array([pos]),
        velocity=np.array([0.0]),
        effort=np.array([], dtype=np.float64),
    )
    return bytes(ts.serialize_cdr(msg, JS)) + b"\0\0\0\0"  # Fast CDR pads to 8 bytes: tolerated


def read_all(path):
    with Reader(path) as r:
        return [(c.topic, deserialize(raw, c.msgtype)) for c, _, raw in r.messages()]


def test_segments_are_listed_only_when_closed_and_a_crash_keeps_earlier_ones(tmp_path):
    bag = tmp_path / "bag"
    w = SegmentedBagWriter(bag, {"bremen.task": "point"})
    assert read_all(bag) == []  # a valid, empty bag from the start
    for ep in (1, 2):
        w.episode(ep, status="open")
        for k in range(10):
            w.write("/joint_states", JS, ep * 1000 + k, js_bytes(ep * 10**9 + k, float(k)))
        w.episode(ep, status="complete")
        w.finish_segment()
    w.episode(3, status="open")
    w.write_metadata()
    for k in range(5):
        w.write("/joint_states", JS, 3000 + k, js_bytes(3 * 10**9 + k, float(k)))
    # crash: the process dies here, segment 3 is never closed
    msgs = read_all(bag)
    assert len(msgs) == 20 and msgs[-1][1].position[0] == 9.0
    assert partial_segments(bag) == ["segment_000002"]
    assert recover_bag(bag) == [3]
    eps = {e["id"]: e for e in json.loads(read_custom(bag)["bremen.episodes"])}
    assert eps[1]["status"] == eps[2]["status"] == "complete"
    assert eps[3]["status"] == "incomplete" and eps[3]["reason"] == "logger_crashed"
    assert len(read_all(bag)) == 20  # recovery touched nothing else


def test_graceful_close_marks_open_episode_incomplete(tmp_path):
    w = SegmentedBagWriter(tmp_path / "bag")
    w.episode(1, status="open")
    w.write("/joint_states", JS, 1, js_bytes(1, 0.0))
    w.close()
    eps = json.loads(read_custom(tmp_path / "bag")["bremen.episodes"])
    assert eps == [{"id": 1, "status": "incomplete", "reason": "interrupted"}]
    assert len(read_all(tmp_path / "bag")) == 1 and partial_segments(tmp_path / "bag") == []


def test_existing_bag_is_never_overwritten(tmp_path):
    SegmentedBagWriter(tmp_path / "bag").close()
    with pytest.raises(DatasetError, match="already holds a bag"):
        SegmentedBagWriter(tmp_path / "bag")


def test_corrupt_cdr_is_a_dataset_error():
    with pytest.raises(DatasetError, match="not CDR"):
        deserialize(b"\x07\x07\x00\x00abcd", JS)
    with pytest.raises(DatasetError, match="corrupt"):
        deserialize(b"\x00\x01\x00\x00\x01", JS)


WRITER_SCRIPT = """
import sys, time
from bremen_robot.ros.bagfile import SegmentedBagWriter
w = SegmentedBagWriter(sys.argv[1])
print("OPEN", flush=True)
if sys.argv[2] == "close":
    time.sleep(float(sys.argv[3]))
    w.close()
    print("CLOSED", flush=True)
time.sleep(600)
"""


def _writer(bag, *args):
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(bag), *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "OPEN"
    return proc


def test_a_bag_is_unwritten_only_once_its_writer_closed_it_or_died(tmp_path):
    """Another process sees a live writer (killed or closing) through the kernel lock, not a file's
    presence: a SIGKILLed writer leaves its lock file behind and must still count as gone."""
    import signal
    import time

    from bremen_robot.ros.bagfile import wait_until_unwritten

    assert wait_until_unwritten(tmp_path / "no-bag", 0.0)  # nothing there: nobody writes
    killed = _writer(tmp_path / "killed", "hold")
    try:
        assert not wait_until_unwritten(tmp_path / "killed", 0.3)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert (tmp_path / "killed" / ".partial" / ".writer.lock").exists()  # left by the dead writer
    assert wait_until_unwritten(tmp_path / "killed", 0.0)
    closing = _writer(tmp_path / "closing", "close", "1.0")
    try:
        t0 = time.monotonic()
        assert wait_until_unwritten(tmp_path / "closing", 20.0)
        assert time.monotonic() - t0 >= 0.5  # it waited for the close, the process still lives
        assert closing.poll() is None and closing.stdout.readline().strip() == "CLOSED"
        assert partial_segments(tmp_path / "closing") == []
    finally:
        closing.kill()
        closing.wait()


def test_a_segment_whose_listing_failed_stays_where_recovery_finds_it(tmp_path, monkeypatch):
    """Disk full while metadata.yaml lists a finished segment: the segment must not be left
    unlisted in the bag root (recovery and salvage only look under .partial/)."""
    import errno

    bag = tmp_path / "bag"
    w = SegmentedBagWriter(bag)
    w.episode(1, status="open")
    for k in range(3):
        w.write("/joint_states", JS, 1000 + k, js_bytes(10**9 + k, float(k)))
    w.write_metadata()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(w, "write_metadata", full)
    with pytest.raises(OSError, match="No space left"):
        w.finish_segment()
    assert not (bag / "segment_000000.mcap").exists()
    assert partial_segments(bag) == ["segment_000000"]
    assert (bag / ".partial" / "segment_000000" / "segment_000000.mcap").is_file()
    assert w.files == []  # nothing listed that is not in the bag root


def test_closing_after_a_failed_listing_keeps_the_unlisted_segment(tmp_path, monkeypatch):
    """The logger's node closes its writer in a ``finally`` after finish_segment raised (disk
    full while listing the segment). Once space is back, close() must neither delete the
    segment left under .partial/ nor leave it unnamed: its episode is logged as complete."""
    import errno

    bag = tmp_path / "bag"
    w = SegmentedBagWriter(bag)
    w.episode(1, status="open")
    for k in range(3):
        w.write("/joint_states", JS, 1000 + k, js_bytes(10**9 + k, float(k)))
    w.episode(1, status="complete")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(w, "write_metadata", full)
    with pytest.raises(OSError, match="No space left"):
        w.finish_segment()
    monkeypatch.undo()  # space is back
    w.close()
    assert (bag / ".partial" / "segment_000000" / "segment_000000.mcap").is_file()
    assert json.loads(read_custom(bag)["bremen.partial_segments"]) == ["segment_000000"]
