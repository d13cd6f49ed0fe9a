"""Topic and service names, message types and QoS of the collect graph (DESIGN.md §3).

QoS, chosen per stream (see docs/ros.md):

* ``joint_states`` / ``odom`` published **reliable, keep-last 1000**: a reliable writer serves
  both kinds of readers, and the deep history gives the logger slack to never drop a sample.
  ``policy_runner`` reads them as **sensor data** in realtime mode (best effort, keep-last 1:
  only the newest state matters, a retransmitted old one is worse than none) and **reliable**
  in lockstep mode (each message is one physics step; losing one would stall the loop).
* ``bremen/command`` and ``bremen/raw_action``: **reliable, keep-last 100**; compatible with a
  ros2_control ``forward_command_controller`` (which subscribes reliable, depth 10).
* ``bremen/safety``: reliable, keep-last 1000: every intervention must reach the log.
* ``bremen/estop``: reliable, **transient local**, depth 1: the e-stop *latches*; a node that
  starts late still gets the last value.
* ``bremen/episode``: reliable, transient local, depth 100: a logger started late still learns
  which episode is running.
* ``bremen/reset``: like ``bremen/episode`` (JSON events of ``reset_node``'s scripted resets).
* ``/clock``: best effort, keep-last 1 (the ROS convention, what rclpy's time source expects).

Step tags (:func:`make_tag`, below): ``bremen:<episode>:<state stamp ns>:<seq>`` on every
command, raw action and intervention of a control step; ``seq`` (since 2026-12-06) numbers the
runner's commands, so two commands that answer one state differ. In lockstep, ``sim_bridge``
echoes the tag of the command it stepped with in the ``header.frame_id`` of the
``joint_states`` that step produced (empty for a reset or startup state, never set in realtime),
and ingest keeps exactly that command as the action.
"""

from __future__ import annotations

import json
from typing import Any

JOINT_STATES = "joint_states"
ODOM = "odom"
COMMAND = "bremen/command"
RAW_ACTION = "bremen/raw_action"
SAFETY = "bremen/safety"
ESTOP = "bremen/estop"
EPISODE = "bremen/episode"
RESET = "bremen/reset"
CLOCK = "/clock"
RESET_ESTOP = "bremen/reset_estop"
START_EPISODE = "bremen/start_episode"
STOP_EPISODE = "bremen/stop_episode"
# shadow mode (docs/ros.md "Shadow mode"): a candidate's runner publishes only these, never
# bremen/command; ingest makes no transition from them
SHADOW_RAW_ACTION = "bremen/shadow/raw_action"
SHADOW_COMMAND = "bremen/shadow/command"
SHADOW_SAFETY = "bremen/shadow/safety"
SHADOW_TOPICS: tuple[str, ...] = (SHADOW_RAW_ACTION, SHADOW_COMMAND, SHADOW_SAFETY)

# topic -> rosbag2 / ROS type name
MSG_TYPES: dict[str, str] = {
    JOINT_STATES: "sensor_msgs/msg/JointState",
    ODOM: "nav_msgs/msg/Odometry",
    COMMAND: "std_msgs/msg/Float64MultiArray",
    RAW_ACTION: "std_msgs/msg/Float64MultiArray",
    SAFETY: "diagnostic_msgs/msg/DiagnosticArray",
    ESTOP: "std_msgs/msg/Bool",
    EPISODE: "std_msgs/msg/String",
    RESET: "std_msgs/msg/String",
    CLOCK: "rosgraph_msgs/msg/Clock",
    SHADOW_RAW_ACTION: "std_msgs/msg/Float64MultiArray",
    SHADOW_COMMAND: "std_msgs/msg/Float64MultiArray",
    SHADOW_SAFETY: "diagnostic_msgs/msg/DiagnosticArray",
}

DEFAULT_LOG_TOPICS: tuple[str, ...] = (JOINT_STATES, ODOM, COMMAND, RAW_ACTION, SAFETY, ESTOP, EPISODE, RESET)

# Who may announce on bremen/episode that an episode's start state is reached (``reset`` event,
# with the episode's task extras such as the reach goal): the simulator after teleporting, or
# reset_node after a scripted reset on hardware.
RESET_SOURCES: tuple[str, ...] = ("sim_bridge", "reset_node")

# Every command reset_node sends carries this label instead of a tag: parse_tag refuses it, so
# no reset motion is ever paired into a transition.
RESET_LABEL_PREFIX = "reset:"

# Every message policy_runner publishes for a control step carries this tag: in the
# Float64MultiArray's layout.dim[0].label and the DiagnosticArray's header.frame_id. It names
# the episode (-1 between episodes) and the joint_states stamp (ns) the step answered, so the
# trainer pairs observations and actions exactly, whatever order the logger received them in.
# Since 2026-12-06 it ends with the command's sequence number (counted by the runner), which
# tells apart the commands that answer one state (the policy's, then a watchdog's safe command);
# in lockstep sim_bridge names the one it stepped with by echoing its tag in the header.frame_id
# of the joint_states that step produced. Tags of older runners have no sequence number.
TAG_PREFIX = "bremen:"


def make_tag(episode: int, obs_stamp_ns: int, seq: int | None = None) -> str:
    base = f"{TAG_PREFIX}{episode}:{obs_stamp_ns}"
    return base if seq is None else f"{base}:{seq}"


def parse_command_id(tag: str) -> tuple[int, int, int | None] | None:
    """``(episode, obs_stamp_ns, seq)`` of a tag (``seq`` None in an older runner's tag), or None
    if ``tag`` is not one."""
    if not tag.startswith(TAG_PREFIX):
        return None
    parts = tag[len(TAG_PREFIX) :].split(":")
    if len(parts) not in (2, 3):
        return None
    try:
        nums = [int(x) for x in parts]
    except ValueError:
        return None
    return nums[0], nums[1], nums[2] if len(nums) == 3 else None


def parse_tag(tag: str) -> tuple[int, int] | None:
    """``(episode, obs_stamp_ns)`` of a tag, or None if ``tag`` is not one."""
    cid = parse_command_id(tag)
    return None if cid is None else (cid[0], cid[1])


def episode_event(data: str, source: str) -> dict[str, Any] | None:
    """A ``bremen/episode`` event (JSON object) sent by node ``source``, or None for anything
    else: other senders, malformed JSON, or JSON that is not an object."""
    try:
        evt = json.loads(data)
    except ValueError:
        return None
    if not isinstance(evt, dict) or evt.get("source") != source:
        return None
    return evt


def msg_class(ros_type: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name`` (imports the message package)."""
    import importlib

    pkg, _, name = ros_type.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def qos(kind: str) -> Any:
    """A QoS profile by role: see the module docstring. Imports rclpy."""
    from rclpy.qos import (
        DurabilityPolicy,
        HistoryPolicy,
        QoSProfile,
        ReliabilityPolicy,
    )

    rel, be = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT
    vol, tl = DurabilityPolicy.VOLATILE, DurabilityPolicy.TRANSIENT_LOCAL
    table = {
        "state_pub": (rel, vol, 1000),
        "sensor_sub": (be, vol, 1),
        "lockstep_sub": (be, vol, 10),
        "command": (rel, vol, 100),
        "safety": (rel, vol, 1000),
        "latched": (rel, tl, 1),
        "episode": (rel, tl, 100),
        "episode_sub": (rel, vol, 100),
        "clock": (be, vol, 1),
        "logger": (rel, vol, 1000),
        "logger_latched": (rel, tl, 100),
        "logger_be": (be, vol, 1000),
    }
    r, d, depth = table[kind]
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=r, durability=d)


def logger_qos(topic: str) -> Any:
    """What trajectory_logger subscribes with: matches every publisher, loses nothing it can keep."""
    if topic in (ESTOP, EPISODE, RESET):
        return qos("logger_latched")
    if topic == CLOCK:
        return qos("logger_be")
    return qos("logger")
