"""``trajectory_logger``: the graph's topics into one rosbag2 folder per deployment.

Subscribes to each topic in ``topics`` *serialized* (no decoding: the CDR bytes rclpy receives
go to the bag as they are) and writes them with :class:`bagfile.SegmentedBagWriter`: one MCAP
segment per episode, closed and listed in ``metadata.yaml`` once every stream has delivered
the episode's last state (:mod:`bremen_robot.ros.segment_drain`; or ``segment_drain_max_s``
after the stop event or the tail's last queued message), so a crash never touches earlier
episodes. The stop event alone is not enough: under load it overtakes the states still
queued. Episode records (``bremen.episodes`` in ``custom_data``) follow the
``bremen/episode`` events: ``open`` at start, ``complete`` at a normal stop, ``incomplete``
when the episode was interrupted (stop event with ``complete: false``, or still open at
shutdown).

Message timestamps in the bag are the logger's receive time (wall clock, ns, strictly
increasing); the messages carry their own stamps (sim time in lockstep).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bremen_robot.ros import _node
from bremen_robot.ros import topics as T
from bremen_robot.ros.bagfile import SegmentedBagWriter
from bremen_robot.ros.segment_drain import DRAINED_TOPICS, EpisodeDrain, stream_stamp_ns

DEFAULTS: dict[str, Any] = {
    "use_sim_time": False,
    "robot_config": "",
    "task": "",
    "mode": "lockstep",
    "executor": "events",
    "bag": "",
    "out_dir": "bags",
    "topics": list(T.DEFAULT_LOG_TOPICS),
    "segment_grace_s": 0.25,
    "segment_drain_max_s": 5.0,
}


class TrajectoryLogger:
    def __init__(self, rclpy: Any) -> None:
        from rclpy.clock import Clock, ClockType
        from rclpy.node import Node
        from rclpy.serialization import deserialize_message
        from std_msgs.msg import String

        from bremen_robot.robot_config import load_robot_config

        self.node = node = Node("trajectory_logger")
        p = self.params = _node.declare(node, DEFAULTS)
        self.executor_kind = p["executor"]
        robot = load_robot_config(Path(p["robot_config"])) if p["robot_config"] else None
        task = p["task"] or (robot.task if robot else "")
        bag = (
            Path(p["bag"])
            if p["bag"]
            else Path(p["out_dir"])
            / (datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"_{task or 'bag'}")
        )
        self._deser, self._String = deserialize_message, String
        self._last_ts = 0
        self._subs = []
        resolved: dict[str, str] = {}
        for topic in p["topics"]:
            msgtype = T.MSG_TYPES.get(topic)
            if msgtype is None:
                node.get_logger().error(f"unknown topic {topic}; skipped")
                continue
            cb = self._make_cb(topic, msgtype)
            sub = node.create_subscription(T.msg_class(msgtype), topic, cb, T.logger_qos(topic), raw=True)
            self._subs.append(sub)
            resolved[topic] = sub.topic_name
        self.resolved = resolved
        self.writer = SegmentedBagWriter(
            bag,
            {
                "bremen.robot": robot.name if robot else "",
                "bremen.task": task,
                "bremen.mode": p["mode"],
                "bremen.topics": json.dumps(resolved, sort_keys=True),
            },
        )
        self.bag = bag
        # the stopped episode whose segment is still open, waiting for its queued messages
        self._drain: EpisodeDrain | None = None
        self._drain_deadline = 0.0
        # each drained stream's latest state stamp (its keys: the streams seen so far)
        self._stream_stamps: dict[str, int] = {}
        # once the robot's states reach the bag, say so (reset_node waits for it before the first
        # reset: a logger that matched the driver late once missed an episode's states)
        self._recording_pub = node.create_publisher(String, T.EPISODE, T.qos("episode"))
        self._recording_said = T.JOINT_STATES not in resolved
        self._received = 0
        self._last_received = time.monotonic()
        self._received_at_last_tick = -1
        self._quiet_ticks = 0
        node.create_timer(0.05, self.on_timer, clock=Clock(clock_type=ClockType.STEADY_TIME))
        node.get_logger().info(f"trajectory_logger: recording {', '.join(resolved.values())} to {bag}")

    def _stamp(self) -> int:
        ts = time.time_ns()
        if ts <= self._last_ts:
            ts = self._last_ts + 1
        self._last_ts = ts
        return ts

    def _make_cb(self, topic: str, msgtype: str) -> Any:
        name = None
        write = None

        def cb(data: bytes) -> None:
            nonlocal name, write
            if write is None:
                name = self.resolved[topic]
                write = self.writer.write
            write(name, msgtype, self._stamp(), data)
            self._received += 1
            self._last_received = time.monotonic()
            if not self._recording_said and topic == T.JOINT_STATES:
                self._recording_said = True
                _node.publish_json(
                    self._recording_pub,
                    self._String,
                    {"event": "recording", "topics": [T.JOINT_STATES], "source": "trajectory_logger"},
                )
            if topic in DRAINED_TOPICS:
                stamp = stream_stamp_ns(topic, data)
                if stamp is not None:
                    self._stream_stamps[topic] = stamp
                if self._drain is not None:
                    drained = self._drain.see_stamp(topic, stamp)
                    if drained:
                        self._finish_drained()
                    elif drained is None:  # still the stopped episode's backlog: keep waiting
                        self._drain_deadline = self._last_received + self.params["segment_drain_max_s"]
            if topic == T.EPISODE:
                self._on_event(data)

        return cb

    def _on_event(self, data: bytes) -> None:
        try:
            evt = json.loads(self._deser(data, self._String).data)
        except Exception:
            return
        if not isinstance(evt, dict):
            return
        kind, eid, src = evt.get("event"), evt.get("id"), evt.get("source")
        w = self.writer
        if src == "policy_runner" and kind == "start" and isinstance(eid, int):
            w.episode(
                eid,
                status="open",
                policy_sha256=evt.get("policy_sha256"),
                deployment=evt.get("deployment"),
                start_ns=evt.get("stamp_ns"),
            )
            if self._drain is None:
                if w.segment_open:  # messages between episodes: none of them makes a transition
                    w.finish_segment()
                else:
                    w.write_metadata()
            # else: the previous episode's tail is still queued; its segment takes this
            # episode's first messages too and is listed (with this record) once drained
        elif src == "policy_runner" and kind == "stop" and isinstance(eid, int):
            w.episode(
                eid,
                status="complete" if evt.get("complete", True) else "incomplete",
                reason=evt.get("reason"),
                steps=evt.get("steps"),
                interventions=evt.get("interventions"),
                policy_sha256=evt.get("policy_sha256"),
                deployment=evt.get("deployment"),
                stop_ns=evt.get("stamp_ns"),
                first_obs_stamp_ns=evt.get("first_obs_stamp_ns"),
                last_obs_stamp_ns=evt.get("last_obs_stamp_ns"),
                **{"return": evt.get("return")},
            )
            last = evt.get("last_obs_stamp_ns")
            if isinstance(last, int) and last >= 0:
                if self._drain is None or last > self._drain.last_stamp_ns:
                    stepped_back = evt.get("reason") == "stamp_went_back"
                    self._drain = EpisodeDrain(
                        last, self._stream_stamps, self._stream_stamps if stepped_back else None
                    )
                self._drain_deadline = time.monotonic() + self.params["segment_drain_max_s"]
                if self._drain.done:  # no continuous stream is logged
                    self._finish_drained()
            elif self._drain is None:  # the episode saw no state: nothing of its own to wait for
                self._finish_drained()
            # else: an earlier episode's tail is still queued; its drain covers this one too
        elif src in T.RESET_SOURCES and kind == "reset" and isinstance(eid, int):
            w.episode(eid, extras=evt.get("extras") or {}, reset_stamp_ns=evt.get("stamp_ns"))

    def _finish_drained(self) -> None:
        self._drain = None
        if self.writer.segment_open:
            self.writer.finish_segment()
        else:
            self.writer.write_metadata()

    def on_timer(self) -> None:
        if self._drain is None:
            return
        now = time.monotonic()
        # Silence ends the wait only when seen at two ticks in a row with nothing received in
        # between: after a stall of this process the timer can run before the queued messages.
        quiet = now - self._last_received >= self.params["segment_grace_s"]
        unchanged = self._received == self._received_at_last_tick
        self._quiet_ticks = self._quiet_ticks + 1 if quiet and unchanged else int(quiet)
        self._received_at_last_tick = self._received
        silent = self._quiet_ticks >= 2
        if silent or now >= self._drain_deadline:
            if not silent:
                self.node.get_logger().warning(
                    f"episode segment closed after {self.params['segment_drain_max_s']:g} s without "
                    f"the last state on {sorted(self._drain.pending)}; a stream may have stopped"
                )
            self._finish_drained()

    drain_max_s = 5.0  # at shutdown: the longest wait for a backlog (see drained)

    def drained(self) -> bool:
        """Nothing arrived for ``segment_grace_s``: the backlog (and the runner's safe-command
        hold, which is recorded too) is in; the bag may close."""
        return time.monotonic() - self._last_received >= self.params["segment_grace_s"]

    def close(self) -> None:
        self.writer.close()
        self.node.get_logger().info(f"trajectory_logger: bag closed at {self.bag}")


def main(argv: Sequence[str] | None = None) -> int:
    return _node.run(TrajectoryLogger, argv, "trajectory_logger")


if __name__ == "__main__":
    sys.exit(main())
