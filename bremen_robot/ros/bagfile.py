"""Crash-safe rosbag2 folders written with ``rosbags`` (DESIGN.md §3 "Trajectory logs").

One folder per deployment holds ``metadata.yaml`` and one MCAP file per *segment*; a segment
is one episode (plus stragglers), so any rosbag2 reader (``ros2 bag info/play``, Foxglove,
``rosbags``) opens the folder as one bag. A segment is written with ``rosbags.rosbag2.Writer``
into ``.partial/<segment>/`` and, once closed (MCAP summary and footer written), moved next to
``metadata.yaml``, which is then rewritten atomically to list it. So a crash or ``kill -9``
loses only the segment being written: every earlier episode stays listed, complete and
readable, and the interrupted one stays out of ``metadata.yaml`` (its partial file remains
under ``.partial/`` for forensics; :func:`recover_bag` records it as incomplete).

Bremen's own facts live in ``custom_data`` (strings, as rosbag2 requires):
``bremen.format``, ``bremen.robot``, ``bremen.task``, ``bremen.topics`` (JSON: role -> recorded
topic name), ``bremen.episodes`` (JSON list, one record per episode with ``status``
``open|complete|incomplete``) and ``bremen.partial_segments``.

While a writer has the folder open it holds an exclusive ``flock`` on ``.partial/.writer.lock``;
the kernel drops it when the writer closes the bag or its process dies, so another process
(a node salvaging a cut-short bag) can wait until nobody writes before it moves the folder
(:func:`wait_until_unwritten`).

This module does not import rclpy: the logger hands it CDR bytes.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Mapping
from io import StringIO
from pathlib import Path
from typing import Any

from bremen_robot.errors import DatasetError
from bremen_robot.fsutil import atomic_write_bytes, fsync_dir

FORMAT = "1"
PARTIAL_DIR = ".partial"
METADATA = "metadata.yaml"
WRITER_LOCK = ".writer.lock"
_STORE: Any = None


def typestore() -> Any:
    """rosbags' type store for ROS 2 kilted (standard messages; no ROS install needed)."""
    global _STORE
    if _STORE is None:
        from rosbags.typesys import Stores, get_typestore

        _STORE = get_typestore(Stores.ROS2_KILTED)
    return _STORE


def deserialize(raw: bytes | memoryview, msgtype: str) -> Any:
    """CDR bytes -> a rosbags message object, tolerating Fast CDR's trailing alignment.

    rclpy/Fast DDS (kilted) pad every serialized message to a multiple of 8 bytes, which
    ``Typestore.deserialize_cdr`` rejects when the padding exceeds 3 bytes; the message itself is
    read the same way here.
    """
    store = typestore()
    if len(raw) < 4 or bytes(raw[:2]) not in (b"\x00\x00", b"\x00\x01"):
        raise DatasetError(f"message of type {msgtype} is not CDR data; the bag is corrupt")
    msgdef = store.get_msgdef(msgtype)
    func = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    try:
        msg, pos = func(raw[4:], 0, msgdef.cls, store)
    except Exception as exc:
        raise DatasetError(
            f"cannot decode a {msgtype} message ({type(exc).__name__}); the bag is corrupt"
        ) from None
    if pos + 4 + 7 < len(raw):
        raise DatasetError(f"a {msgtype} message is longer than its content; the bag is corrupt")
    return msg


class SegmentedBagWriter:
    """Write one rosbag2 folder as a sequence of closed MCAP segments (see module doc)."""

    def __init__(self, path: Path | str, custom: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        if self.path.exists() and (
            not self.path.is_dir()
            or (self.path / METADATA).exists()
            or any(p.suffix == ".mcap" or p.name == PARTIAL_DIR for p in self.path.iterdir())
        ):
            raise DatasetError(
                f"bag folder '{self.path}' already holds a bag; pick a new --out (bags are never overwritten)"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / PARTIAL_DIR).mkdir()
        self._lock_fd: int | None = os.open(
            self.path / PARTIAL_DIR / WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o644
        )
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # a fresh folder: nobody else holds it
        self.custom: dict[str, str] = {"bremen.format": FORMAT, **dict(custom or {})}
        self.episodes: dict[int, dict[str, Any]] = {}
        self.files: list[dict[str, Any]] = []
        self.topic_counts: dict[tuple[str, str], int] = {}
        self._seg_index = 0
        self._writer: Any = None
        self._conns: dict[str, Any] = {}
        self._seg_name = ""
        self._seg_count = 0
        self._seg_start = 2**63 - 1
        self._seg_end = 0
        self._seg_topics: dict[tuple[str, str], int] = {}
        self.write_metadata()

    # ------------------------------------------------------------------ segments
    @property
    def segment_open(self) -> bool:
        return self._writer is not None

    def _open_segment(self) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self._seg_name = f"segment_{self._seg_index:06d}"
        self._seg_index += 1
        w = Writer(self.path / PARTIAL_DIR / self._seg_name, version=9, storage_plugin=StoragePlugin.MCAP)
        w.open()
        self._writer = w
        self._conns = {}
        self._seg_count = 0
        self._seg_start, self._seg_end = 2**63 - 1, 0
        self._seg_topics = {}

    def write(self, topic: str, msgtype: str, stamp_ns: int, data: bytes | memoryview) -> None:
        """Append one CDR-serialized message (opens a segment when none is)."""
        if self._writer is None:
            self._open_segment()
        conn = self._conns.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._conns[topic] = conn
        self._writer.write(conn, stamp_ns, data)
        self._seg_count += 1
        self._seg_start = min(self._seg_start, stamp_ns)
        self._seg_end = max(self._seg_end, stamp_ns)
        key = (topic, msgtype)
        self._seg_topics[key] = self._seg_topics.get(key, 0) + 1

    def finish_segment(self) -> Path | None:
        """Close the open segment, move it into the bag and list it; returns its file."""
        w = self._writer
        if w is None:
            return None
        self._writer = None
        w.close()
        src_dir = self.path / PARTIAL_DIR / self._seg_name
        src = src_dir / f"{self._seg_name}.mcap"
        dst = self.path / f"{self._seg_name}.mcap"
        with open(src, "rb") as fh:  # on disk before metadata.yaml lists it (rosbags never syncs)
            os.fsync(fh.fileno())
        os.replace(src, dst)
        fsync_dir(self.path)
        self.files.append(
            {
                "path": dst.name,
                "starting_time": {"nanoseconds_since_epoch": self._seg_start},
                "duration": {"nanoseconds": max(0, self._seg_end - self._seg_start)},
                "message_count": self._seg_count,
            }
        )
        for key, n in self._seg_topics.items():
            self.topic_counts[key] = self.topic_counts.get(key, 0) + n
        try:
            self.write_metadata()
        except BaseException:  # e.g. disk full: unlisted in the bag root, recovery would never see it
            self.files.pop()
            for key, n in self._seg_topics.items():
                self.topic_counts[key] -= n
            os.replace(dst, src)  # back under .partial/, where recovery and salvage look
            raise
        shutil.rmtree(src_dir, ignore_errors=True)
        return dst

    def abandon_segment(self) -> None:
        """Drop the open segment without listing it (used only by tests of crash safety)."""
        if self._writer is not None:
            self._writer.abort() if hasattr(self._writer, "abort") else None
            self._writer = None

    # ------------------------------------------------------------------ episodes
    def episode(self, episode_id: int, **fields: Any) -> dict[str, Any]:
        """Create or update the record of an episode (written with the next metadata)."""
        rec = self.episodes.setdefault(int(episode_id), {"id": int(episode_id), "status": "open"})
        rec.update(fields)
        return rec

    def close(self) -> None:
        """Finish the open segment; episodes still open become ``incomplete``."""
        for rec in self.episodes.values():
            if rec.get("status") == "open":
                rec["status"] = "incomplete"
                rec.setdefault("reason", "interrupted")
        finishing = self._writer is not None
        if finishing:
            self.finish_segment()
        left = partial_segments(self.path)
        if left:  # a segment whose listing failed earlier (see finish_segment): keep it, named
            self.custom["bremen.partial_segments"] = json.dumps(left)
        if left or not finishing:
            self.write_metadata()
        if not left:
            shutil.rmtree(self.path / PARTIAL_DIR, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the writer lock
            self._lock_fd = None

    # ------------------------------------------------------------------ metadata
    def metadata(self) -> dict[str, Any]:
        start = min((f["starting_time"]["nanoseconds_since_epoch"] for f in self.files), default=0)
        end = max(
            (
                f["starting_time"]["nanoseconds_since_epoch"] + f["duration"]["nanoseconds"]
                for f in self.files
            ),
            default=0,
        )
        custom = dict(self.custom)
        custom["bremen.episodes"] = json.dumps(sorted(self.episodes.values(), key=lambda r: r["id"]))
        store = typestore()
        return {
            "rosbag2_bagfile_information": {
                "version": 9,
                "storage_identifier": "mcap",
                "relative_file_paths": [f["path"] for f in self.files],
                "duration": {"nanoseconds": max(0, end - start)},
                "starting_time": {"nanoseconds_since_epoch": start},
                "message_count": sum(f["message_count"] for f in self.files),
                "topics_with_message_count": [
                    {
                        "topic_metadata": {
                            "name": topic,
                            "type": msgtype,
                            "serialization_format": "cdr",
                            "offered_qos_profiles": [],
                            "type_description_hash": store.hash_rihs01(msgtype),
                        },
                        "message_count": n,
                    }
                    for (topic, msgtype), n in sorted(self.topic_counts.items())
                ],
                "compression_format": "",
                "compression_mode": "",
                "files": self.files,
                "custom_data": custom,
                "ros_distro": "kilted",
            }
        }

    def write_metadata(self) -> None:
        from ruamel.yaml import YAML

        y = YAML(typ="safe")
        y.default_flow_style = False
        buf = StringIO()
        y.dump(self.metadata(), buf)
        atomic_write_bytes(self.path / METADATA, buf.getvalue().encode())


def wait_until_unwritten(path: Path | str, timeout_s: float) -> bool:
    """True once no live process writes the bag folder ``path`` (its writer closed the bag or
    died), False if one still does after ``timeout_s``. A folder without a writer lock (closed,
    or never a bag) is unwritten."""
    lock = Path(path) / PARTIAL_DIR / WRITER_LOCK
    try:
        fd = os.open(lock, os.O_RDONLY)  # a read-only copy is probed too
    except (FileNotFoundError, NotADirectoryError):  # no lock, or not a folder: whoever reads says so
        return True
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                # shared: the writer's exclusive lock still blocks it, and on NFS (flock emulated
                # by fcntl locks) an exclusive one needs a file opened for writing (EBADF)
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return True  # closed on return: the lock is only probed
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
    finally:
        os.close(fd)


def read_custom(path: Path | str) -> dict[str, str]:
    """``custom_data`` of a bag's metadata.yaml (empty dict when absent)."""
    import yaml

    meta = Path(path) / METADATA
    if not meta.is_file():
        raise DatasetError(
            f"'{path}' is not a rosbag2 folder (no {METADATA}); pass the folder 'bremen collect' wrote"
        )
    try:
        info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
        custom = info.get("custom_data") or {}
        if not isinstance(custom, dict):
            raise TypeError("custom_data is not a mapping")
    except Exception:
        raise DatasetError(f"{meta}: unreadable rosbag2 metadata; the bag is corrupt") from None
    return dict(custom)


def _custom_json(custom: Mapping[str, Any], key: str, default: str) -> Any:
    """The JSON value of ``custom[key]``, or ``_BAD_JSON`` when it is not a JSON string (YAML may
    have read a hand-edited entry as a map or a number)."""
    raw = custom.get(key, default) or default
    if not isinstance(raw, str):
        return _BAD_JSON
    try:
        return json.loads(raw)
    except ValueError:
        return _BAD_JSON


_BAD_JSON = object()


def recorded_topics(path: Path | str, custom: Mapping[str, str]) -> dict[str, str]:
    """``bremen.topics`` of a bag's ``custom``: role -> recorded topic name ({} when absent)."""
    roles = _custom_json(custom, "bremen.topics", "{}")
    if not (isinstance(roles, dict) and all(isinstance(v, str) for v in roles.values())):
        raise DatasetError(
            f"{Path(path) / METADATA}: custom_data bremen.topics is not a JSON map of role to topic "
            "name; the metadata is damaged: delete that entry to read the bag with the default topic names"
        )
    return {str(k): v for k, v in roles.items()}


def listed_episode_records(path: Path | str, custom: Mapping[str, str]) -> list[dict[str, Any]]:
    """``bremen.episodes`` of a bag's ``custom``: the logger's records, each with an int ``id``
    ([] when absent)."""
    records = _custom_json(custom, "bremen.episodes", "[]")
    if not (
        isinstance(records, list) and all(isinstance(r, dict) and type(r.get("id")) is int for r in records)
    ):
        raise DatasetError(
            f"{Path(path) / METADATA}: custom_data bremen.episodes is not a JSON list of episode "
            "records with an integer id; the metadata is damaged: delete that entry, and the "
            "episodes' own start and stop events decide which are complete"
        )
    return records


def partial_segments(path: Path | str) -> list[str]:
    """Segments a crash left unfinished (not listed in metadata.yaml)."""
    d = Path(path) / PARTIAL_DIR
    return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


def recover_bag(path: Path | str) -> list[int]:
    """After a logger crash: mark episodes still ``open`` as incomplete; returns their ids.

    Records unfinished segments in ``bremen.partial_segments``. Earlier segments are untouched.
    """
    from ruamel.yaml import YAML

    path = Path(path)
    meta = path / METADATA
    y = YAML(typ="safe")
    doc = y.load(meta.read_text())
    info = doc["rosbag2_bagfile_information"]
    custom = dict(info.get("custom_data") or {})
    episodes = listed_episode_records(path, custom)
    marked = []
    for rec in episodes:
        if rec.get("status") == "open":
            rec["status"] = "incomplete"
            rec["reason"] = "logger_crashed"
            marked.append(int(rec["id"]))
    partial = partial_segments(path)
    if not marked and not partial:
        return []
    custom["bremen.episodes"] = json.dumps(episodes)
    if partial:
        custom["bremen.partial_segments"] = json.dumps(partial)
    info["custom_data"] = custom
    buf = StringIO()
    y.default_flow_style = False
    y.dump(doc, buf)
    atomic_write_bytes(meta, buf.getvalue().encode())
    return marked
