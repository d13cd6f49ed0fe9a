"""``trajectory_logger``: the graph's topics into one rosbag2 folder per deployment.

Subscribes to each topic in ``topics`` *serialized* (no decoding: the CDR bytes rclpy receives
go to the bag as they are) and writes them with :class:`bagfile.SegmentedBagWriter`: one MCAP
segment per episode, closed and listed in ``metadata.yaml`` when the next episode starts (or
``segment_grace_s`` after the episode's stop event), so a crash never touches earlier
episodes. Episode records (``bremen.episodes`` in ``custom_data``) follow the
``bremen/episode`` events: ``open`` at start, ``complete`` at a normal stop, ``incomplete``
when the episode was interrupted (stop event with ``complete: false``, or still open at shutdown).

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
        self._finish_at: float | None = None
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
            if w.segment_open:
                w.finish_segment()
            self._finish_at = None
            w.episode(
                eid,
                status="open",
                policy_sha256=evt.get("policy_sha256"),
                deployment=evt.get("deployment"),
                start_ns=evt.get("stamp_ns"),
            )
            w.write_metadata()
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
            self._finish_at = time.monotonic() + self.params["segment_grace_s"]
        elif src == "sim_bridge" and kind == "reset" and isinstance(eid, int):
            w.episode(eid, extras=evt.get("extras") or {}, reset_stamp_ns=evt.get("stamp_ns"))

    def on_timer(self) -> None:
        if self._finish_at is not None and time.monotonic() >= self._finish_at:
            self._finish_at = None
            if self.writer.segment_open:
                self.writer.finish_segment()
            else:
                self.writer.write_metadata()

    def close(self) -> None:
        self.writer.close()
        self.node.get_logger().info(f"trajectory_logger: bag closed at {self.bag}")


def main(argv: Sequence[str] | None = None) -> int:
    return _node.run(TrajectoryLogger, argv, "trajectory_logger")


if __name__ == "__main__":
    sys.exit(main())
