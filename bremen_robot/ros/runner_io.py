"""What ``policy_runner`` receives and sends: typed samples of its inputs, and its publishers.

Kept apart from the node's control logic (:mod:`bremen_robot.ros.policy_runner`). The message
classes are imported once, when :class:`RunnerPublishers` is built, never in a callback.
"""

from __future__ import annotations

import array
from typing import Any, NamedTuple

import numpy as np

from bremen_robot.ros import _node
from bremen_robot.ros import topics as T
from bremen_robot.ros.runner_core import StepOutput
from sim.observation import rotate

Base = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""((position, quaternion wxyz), (linear, angular velocity)) of the base, world frame: what
RunnerCore.step takes."""


class JointSample(NamedTuple):
    """One ``joint_states`` message, as the control step reads it."""

    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    stamp_ns: int
    arrival: float
    """Monotonic seconds when the callback received it."""
    echo: str = ""
    """Its ``header.frame_id``: in lockstep the tag of the command the simulator stepped with."""


class BaseSample(NamedTuple):
    """One ``odom`` message: its stamp and the base state."""

    stamp_ns: int
    base: Base


def stamp_ns(msg: Any) -> int:
    """The header stamp of ``msg`` in nanoseconds."""
    st = msg.header.stamp
    return int(st.sec) * 1_000_000_000 + int(st.nanosec)


def joint_sample(msg: Any, names: tuple[str, ...], arrival: float) -> JointSample:
    """A ``sensor_msgs/JointState`` as a sample (``names``: its name list, already a tuple)."""
    return JointSample(
        names,
        np.asarray(msg.position, dtype=np.float64),
        np.asarray(msg.velocity, dtype=np.float64),
        stamp_ns(msg),
        arrival,
        msg.header.frame_id,
    )


def base_sample(msg: Any) -> BaseSample:
    """A ``nav_msgs/Odometry`` as a sample: its twist (base frame) rotated into the world frame."""
    p, o = msg.pose.pose.position, msg.pose.pose.orientation
    quat = np.array([o.w, o.x, o.y, o.z])
    lin_b = msg.twist.twist.linear
    ang_b = msg.twist.twist.angular
    lin = rotate(quat, np.array([lin_b.x, lin_b.y, lin_b.z]))
    ang = rotate(quat, np.array([ang_b.x, ang_b.y, ang_b.z]))
    return BaseSample(stamp_ns(msg), ((np.array([p.x, p.y, p.z]), quat), (lin, ang)))


def base_for(odom: BaseSample | None, state_stamp_ns: int, max_age_s: float) -> Base | None:
    """The base state to observe with the joint states stamped ``state_stamp_ns``: the newest
    odometry, or None when there is none or its stamp lies more than ``max_age_s`` (the limits'
    ``max_observation_age``) from theirs: a stalled estimator's last pose and body height would
    otherwise feed the policy and the envelope as if current. None makes the step's observation
    unreadable, so the shield sends the safe command (``nan_observation``)."""
    if odom is None or abs(state_stamp_ns - odom.stamp_ns) > max_age_s * 1e9:
        return None
    return odom.base


class RunnerPublishers:
    """The runner's publishers: command, raw action, interventions, episode events.

    ``shadow``: the shadow topics instead (``bremen/shadow/*``), and no episode events at all
    (:meth:`event` does nothing): a shadow runner never reaches the robot or owns an episode.
    """

    def __init__(self, node: Any, robot_name: str, shadow: bool = False) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String

        self._node = node
        self._robot_name = robot_name
        self._float_array, self._dimension, self._string = Float64MultiArray, MultiArrayDimension, String
        self._diag_array, self._diag_status, self._key_value = DiagnosticArray, DiagnosticStatus, KeyValue
        cmd, raw, safety = (
            (T.SHADOW_COMMAND, T.SHADOW_RAW_ACTION, T.SHADOW_SAFETY)
            if shadow
            else (
                T.COMMAND,
                T.RAW_ACTION,
                T.SAFETY,
            )
        )
        self.cmd = node.create_publisher(Float64MultiArray, cmd, T.qos("command"))
        self.raw = node.create_publisher(Float64MultiArray, raw, T.qos("command"))
        self.safety = node.create_publisher(DiagnosticArray, safety, T.qos("safety"))
        self.episode = None if shadow else node.create_publisher(String, T.EPISODE, T.qos("episode"))

    def array(self, values: np.ndarray, tag: str) -> Any:
        """``values`` as a Float64MultiArray whose one dimension is labelled with the step's tag."""
        msg = self._float_array()
        n = int(values.shape[0])
        msg.layout.dim = [self._dimension(label=tag, size=n, stride=n)]
        msg.data = array.array("d", values.tolist())
        return msg

    def safe(self, values: np.ndarray | None) -> None:
        """The safe command, labelled ``safe``: it answers no state, so ingest pairs nothing with
        it. None (a position hold nobody measured) sends nothing."""
        if values is not None:
            self.cmd.publish(self.array(values, "safe"))

    def event(self, evt: dict[str, Any]) -> None:
        """One JSON event on ``bremen/episode`` (none from a shadow runner)."""
        if self.episode is not None:
            _node.publish_json(self.episode, self._string, evt)

    def interventions(self, out: StepOutput) -> None:
        """Every intervention of one step, as one DiagnosticArray (ERROR when the command is safe)."""
        DS, KV = self._diag_status, self._key_value
        arr = self._diag_array()
        arr.header.stamp = self._node.get_clock().now().to_msg()
        arr.header.frame_id = out.tag
        level = DS.ERROR if out.safe else DS.WARN
        for iv in out.interventions:
            arr.status.append(
                DS(
                    level=level,
                    name=f"bremen/safety/{iv.reason}",
                    message=str(iv.detail),
                    hardware_id=self._robot_name,
                    values=[
                        KV(key="reason", value=str(iv.reason)),
                        KV(key="joint", value=str(iv.joint or "")),
                        KV(key="requested", value="" if iv.requested is None else repr(float(iv.requested))),
                        KV(key="sent", value="" if iv.sent is None else repr(float(iv.sent))),
                        KV(key="safe", value=str(bool(out.safe)).lower()),
                    ],
                )
            )
        self.safety.publish(arr)
