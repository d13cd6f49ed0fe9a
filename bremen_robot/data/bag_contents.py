"""What one collect-graph bag holds, read with ``rosbags`` and indexed for pairing.

:class:`BagContents` reads each segment on its own (a damaged one is salvaged up to the damage
by :mod:`bremen_robot.data.mcap_salvage`) and indexes joint states, odometry, commands, safety
interventions and episode events by stamp; :mod:`bremen_robot.data.bag_ingest` pairs them into
transitions.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.errors import DatasetError
from bremen_robot.ros.bagfile import read_custom, recorded_topics


def _stamp(s: Any) -> int:
    return int(s.sec) * 1_000_000_000 + int(s.nanosec)


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    from sim.observation import rotate

    return rotate(q, v)


class BagContents:
    """Everything one bag holds, indexed for pairing.

    Each segment is read on its own, so one damaged segment costs only what it held: the
    others are read whole, and the damaged one is salvaged up to the damage
    (:mod:`bremen_robot.data.mcap_salvage`). ``damaged`` names each such segment and what
    became of it; ``segment_of`` maps an episode to the segment its start was logged in.
    """

    def __init__(self, path: Path, include_unfinished: bool = False) -> None:
        self.path = path
        self.custom = read_custom(path)
        self.states: dict[int, tuple[tuple[str, ...], np.ndarray, np.ndarray]] = {}
        self.odom: dict[int, tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] = {}
        self.commands: list[tuple[int, int, int | None, np.ndarray]] = []  # episode, stamp, seq, data
        # lockstep: episode -> state stamp -> sequence number of the command the simulator stepped
        # that state with, from the tag it echoes in the header of the state the step produced
        self.stepped_with: dict[int, dict[int, int]] = {}
        self.safety: Counter[tuple[int, int]] = Counter()
        self.events: list[dict[str, Any]] = []
        self.damaged: list[dict[str, Any]] = []
        self.segment_of: dict[int, str] = {}
        roles = recorded_topics(path, self.custom)
        self._by_name = {name: role for role, name in roles.items()}
        from bremen_robot.ros import topics as T

        for role in T.MSG_TYPES:  # bags without the mapping: default names
            self._by_name.setdefault("/" + role.lstrip("/"), role)
        files, storage = listed_files(path)
        if storage != "mcap":
            self._read_whole(path)
            return
        from bremen_robot.data.mcap_salvage import SegmentRead, read_segment, scan_segment

        reads: list[SegmentRead] = []
        for name in files:
            seg = path / name
            if not seg.is_file():
                self.damaged.append({"segment": name, "problem": "is missing", "recovered_messages": 0})
                continue
            reads.append(read_segment(seg))
        if include_unfinished:  # segments a crash left open under .partial/: salvage them too
            reads += [scan_segment(p) for p in sorted(path.glob(".partial/*/*.mcap"))]
        for r in reads:
            name = str(r.path.relative_to(path))
            if r.problem is not None:
                self.damaged.append(
                    {"segment": name, "problem": r.problem, "recovered_messages": len(r.messages)}
                )
            for topic, msgtype, raw in r.messages:
                try:
                    self._take(topic, msgtype, raw, name)
                except DatasetError:
                    if r.problem is None:
                        raise
                    self.damaged[-1]["undecodable_messages"] = (
                        self.damaged[-1].get("undecodable_messages", 0) + 1
                    )

    def _read_whole(self, path: Path) -> None:
        from rosbags.rosbag2 import Reader

        try:
            reader = Reader(path)
            reader.open()
        except Exception as exc:
            raise DatasetError(f"{path}: cannot open the bag ({type(exc).__name__}: {exc})") from None
        try:
            for conn, _, raw in reader.messages():
                self._take(conn.topic, conn.msgtype, raw, "")
        finally:
            reader.close()

    def _take(self, topic: str, msgtype: str, raw: bytes | memoryview, segment: str) -> None:
        from bremen_robot.ros import topics as T
        from bremen_robot.ros.bagfile import deserialize

        role = self._by_name.get(topic, "")
        if role == T.JOINT_STATES:
            m = deserialize(raw, msgtype)
            st = _stamp(m.header.stamp)
            if st not in self.states:
                self.states[st] = (
                    tuple(m.name),
                    np.asarray(m.position, dtype=np.float64),
                    np.asarray(m.velocity, dtype=np.float64),
                )
                echo = T.parse_command_id(m.header.frame_id)
                if echo is not None and echo[2] is not None:
                    self.stepped_with.setdefault(echo[0], {}).setdefault(echo[1], echo[2])
        elif role == T.ODOM:
            m = deserialize(raw, msgtype)
            p, o = m.pose.pose.position, m.pose.pose.orientation
            q = np.array([o.w, o.x, o.y, o.z])
            lin, ang = m.twist.twist.linear, m.twist.twist.angular
            self.odom[_stamp(m.header.stamp)] = (
                (np.array([p.x, p.y, p.z]), q),
                (
                    _rotate(q, np.array([lin.x, lin.y, lin.z])),
                    _rotate(q, np.array([ang.x, ang.y, ang.z])),
                ),
            )
        elif role == T.COMMAND:
            m = deserialize(raw, msgtype)
            cid = T.parse_command_id(m.layout.dim[0].label) if len(m.layout.dim) else None
            if cid is not None:
                self.commands.append((cid[0], cid[1], cid[2], np.asarray(m.data, dtype=np.float64)))
        elif role == T.SAFETY:
            m = deserialize(raw, msgtype)
            tag = T.parse_tag(m.header.frame_id)
            if tag is not None:
                self.safety[tag] += len(m.status)
        elif role == T.EPISODE:
            m = deserialize(raw, msgtype)
            try:
                evt = json.loads(m.data)
            except ValueError:
                return
            if isinstance(evt, dict):
                self.events.append(evt)
                eid = evt.get("id")
                if evt.get("event") == "start" and isinstance(eid, int):
                    self.segment_of.setdefault(eid, segment)


def listed_files(path: Path) -> tuple[list[str], str]:
    """The segment files metadata.yaml lists, and its storage plugin."""
    import yaml

    try:
        info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        files = [Path(str(f)).name for f in info.get("relative_file_paths") or []]
        return files, str(info.get("storage_identifier", ""))
    except Exception:
        raise DatasetError(f"{path}/metadata.yaml: unreadable rosbag2 metadata; the bag is corrupt") from None
