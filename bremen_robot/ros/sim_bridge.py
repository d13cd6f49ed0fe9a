"""``sim_bridge``: a ``sim/`` backend wrapped as a robot (DESIGN.md §3).

Subscribes to ``bremen/command`` and publishes ``joint_states`` (+ ``odom`` for floating-base
robots) like a robot driver would. Two modes:

* ``realtime``: a wall-clock timer steps the physics once per control period with the newest
  command, like hardware;
* ``lockstep``: one physics step per command that answers the newest state (the command's tag
  names that state's stamp), then the new state and ``/clock`` go out at once. Sim time is
  the physics time, so the graph runs as fast as it can and nodes use sim time. If no command
  comes for ``lockstep_resend_s`` the last state is sent again (a lost message cannot stall
  the loop; the runner answers a repeated state with the same command). Each state a step
  produced names the command it stepped with: that command's tag in the ``joint_states``
  ``header.frame_id`` (empty for a reset or startup state), so ingest keeps exactly the action
  the physics used when several commands answered one state (:mod:`bremen_robot.ros.topics`).

Episodes: on ``bremen/episode`` ``start`` (from policy_runner) it resets with seed
``seed + episode id`` and says ``reset`` (with the reset stamp and task extras such as the
reach goal); on the task's termination or the time limit it says ``end``.

``hardware_stand_in: true`` (realtime only): the simulator plays a real robot's driver for the
hardware graph (``sim: none``): it never teleports and says nothing on ``bremen/episode``; the
scripted reset (``reset_node``) has to move it to each start pose, as on hardware.
"""

from __future__ import annotations

import array
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.errors import ConfigError
from bremen_robot.ros import _node
from bremen_robot.ros import topics as T
from sim.observation import DERIVED

DEFAULTS: dict[str, Any] = {
    "use_sim_time": False,
    "robot_config": "",
    "task": "",
    "mode": "lockstep",
    "executor": "events",
    "backend": "mujoco",
    "sim_model": "",
    "seed": 0,
    "episode_steps": 0,
    "lockstep_resend_s": 0.5,
    "hardware_stand_in": False,
}

CLOCK_START_NS = 1_000_000_000  # sim time starts at 1 s (0 means "unset" to ROS time sources)


class SimBridge:
    def __init__(self, rclpy: Any) -> None:
        from nav_msgs.msg import Odometry
        from rclpy.clock import Clock, ClockType
        from rclpy.node import Node
        from rosgraph_msgs.msg import Clock as ClockMsg
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray, String

        from bremen_robot.robot_config import load_robot_config
        from sim.env import BremenSimEnv

        self.node = node = Node("sim_bridge")
        p = self.params = _node.declare(node, DEFAULTS)
        self.executor_kind = p["executor"]
        if not p["robot_config"]:
            raise ConfigError("sim_bridge: parameter robot_config is empty; pass configs/robots/<robot>.yaml")
        robot = load_robot_config(Path(p["robot_config"]))
        model = p["sim_model"] or robot.sim_model
        if not model:
            raise ConfigError(f"robot '{robot.name}' has no sim_model; sim_bridge cannot simulate it")
        self.env = BremenSimEnv(model, task=p["task"] or robot.task, backend=p["backend"])
        self.task = self.env.task
        self.backend = self.env.backend
        self.lockstep = p["mode"] == "lockstep"
        self.stand_in = bool(p["hardware_stand_in"])
        if self.stand_in and self.lockstep:
            raise ConfigError(
                "sim_bridge: hardware_stand_in needs mode realtime (hardware keeps its own time)"
            )
        self.period = self.backend.control_period
        self.period_ns = int(round(self.period * 1e9))
        self.episode_steps = int(p["episode_steps"]) or self.task.max_episode_steps
        # command entries (robot joint order) -> task action order
        try:
            self._to_task = np.array([list(robot.joints).index(n) for n in self.task.action_names], dtype=int)
        except ValueError:
            raise ConfigError(
                f"robot joints {robot.joints} do not cover task '{self.task.name}' "
                f"actions {self.task.action_names}"
            ) from None
        self.n_cmd = len(robot.joints)
        self._extra_idx = [
            (k, n) for k, n in enumerate(self.task.obs_names) if not n.startswith(("qpos.", "qvel."))
        ]
        self._JS, self._Odom, self._Clock, self._String = JointState, Odometry, ClockMsg, String
        self.pub_js = node.create_publisher(JointState, T.JOINT_STATES, T.qos("state_pub"))
        self.floating = self.backend.floating_base
        self.pub_odom = node.create_publisher(Odometry, T.ODOM, T.qos("state_pub")) if self.floating else None
        self.pub_clock = node.create_publisher(ClockMsg, T.CLOCK, T.qos("clock")) if self.lockstep else None
        self.pub_episode = node.create_publisher(String, T.EPISODE, T.qos("episode"))
        node.create_subscription(
            Float64MultiArray,
            T.COMMAND,
            self.on_command,
            T.qos("lockstep_sub" if self.lockstep else "command"),
        )
        if not self.stand_in:  # a robot's driver knows nothing of episodes
            node.create_subscription(String, T.EPISODE, self.on_episode, T.qos("episode"))
        self.sim_ns = CLOCK_START_NS
        self.command = np.zeros(self.task.action_dim)
        self.episode_id = -1
        self.active = False
        self.t = 0
        self.stamp_ns = 0
        self.stepped_stamp = -1
        # lockstep: the tag of the command the current state was stepped with ("" after a reset)
        self.echo = ""
        self._last_cmd_time = time.monotonic()
        self._js = JointState()
        self._js.name = list(self.backend.joint_names)
        self._clock = ClockMsg()
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.env.reset(seed=int(p["seed"]))
        if self.lockstep:
            node.create_timer(min(p["lockstep_resend_s"], 0.5) / 2, self.on_resend, clock=steady)
            self._publish_state()
        else:
            node.create_timer(self.period, self.on_tick)
        node.get_logger().info(
            f"sim_bridge: {model} in {p['backend']} ({self.task.name}), {p['mode']}, period {self.period:g} s"
        )

    # ------------------------------------------------------------------ state out
    def _publish_state(self) -> None:
        stamp = self.sim_ns if self.lockstep else int(self.node.get_clock().now().nanoseconds)
        self.stamp_ns = stamp
        sec, nsec = divmod(stamp, 1_000_000_000)
        q, qd = self.backend.joint_state()
        js = self._js
        js.header.stamp.sec, js.header.stamp.nanosec = sec, nsec
        js.header.frame_id = self.echo
        js.position = array.array("d", np.asarray(q, dtype=np.float64).tolist())
        js.velocity = array.array("d", np.asarray(qd, dtype=np.float64).tolist())
        js.effort = array.array("d", np.asarray(self.backend.joint_efforts(), dtype=np.float64).tolist())
        self.pub_js.publish(js)
        if self.pub_odom is not None:
            self.pub_odom.publish(self._odometry(sec, nsec))
        if self.pub_clock is not None:
            self._clock.clock.sec, self._clock.clock.nanosec = sec, nsec
            self.pub_clock.publish(self._clock)

    def _odometry(self, sec: int, nsec: int) -> Any:
        from sim.observation import quat_conjugate_rotate

        pose = self.backend.base_pose()
        twist = self.backend.base_twist()
        msg = self._Odom()
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
        msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
        if pose is None or twist is None:
            return msg
        pos, quat = pose
        m = msg.pose.pose
        m.position.x, m.position.y, m.position.z = (float(v) for v in pos)
        m.orientation.w, m.orientation.x, m.orientation.y, m.orientation.z = (float(v) for v in quat)
        # nav_msgs/Odometry: twist in the child (base) frame
        lin = quat_conjugate_rotate(quat, twist[0])
        ang = quat_conjugate_rotate(quat, twist[1])
        tw = msg.twist.twist
        tw.linear.x, tw.linear.y, tw.linear.z = (float(v) for v in lin)
        tw.angular.x, tw.angular.y, tw.angular.z = (float(v) for v in ang)
        return msg

    def _event(self, payload: dict[str, Any]) -> None:
        payload["source"] = "sim_bridge"
        _node.publish_json(self.pub_episode, self._String, payload)

    # ------------------------------------------------------------------ physics
    def _physics_step(self) -> None:
        _, _, terminated, _, _ = self.env.step(self.command)
        self.sim_ns += self.period_ns
        self.t += 1
        self._publish_state()
        if self.active:
            reason = "terminated" if terminated else ("time_limit" if self.t >= self.episode_steps else "")
            if reason:
                self.active = False
                # the final state's stamp: the runner may not have stepped it yet (realtime), and
                # the episode's last transition ends there
                end = {"event": "end", "id": self.episode_id, "reason": reason, "steps": self.t}
                self._event({**end, "last_state_stamp_ns": self.stamp_ns})

    def _set_command(self, data: Any) -> bool:
        if len(data) != self.n_cmd:
            return False
        cmd = np.asarray(data, dtype=np.float64)[self._to_task]
        if not np.all(np.isfinite(cmd)):
            return False
        self.command = cmd
        return True

    def on_command(self, msg: Any) -> None:
        if not self._set_command(msg.data):
            self.node.get_logger().warning(
                f"ignored a bremen/command with {len(msg.data)} entries (want {self.n_cmd}, finite)",
                throttle_duration_sec=1.0,
            )
            return
        if not self.lockstep or not self.active:
            return
        self._last_cmd_time = time.monotonic()
        tag = T.parse_tag(msg.layout.dim[0].label) if msg.layout.dim else None
        if (
            tag is None
            or tag[0] != self.episode_id
            or tag[1] != self.stamp_ns
            or self.stepped_stamp == self.stamp_ns
        ):
            return  # not the answer to the newest state (a watchdog repeat): hold it, do not step
        self.stepped_stamp = self.stamp_ns
        self.echo = msg.layout.dim[0].label  # the state this step makes names its command
        self._physics_step()

    def on_tick(self) -> None:
        self._physics_step()

    def on_resend(self) -> None:
        # before the first episode too: the startup state, again, tells a logger that matched this
        # publisher late that states reach it (bremen collect waits for that before episode 1)
        waiting = self.active or self.episode_id == -1
        if waiting and time.monotonic() - self._last_cmd_time > self.params["lockstep_resend_s"]:
            self._last_cmd_time = time.monotonic()
            self._publish_state()

    def on_episode(self, msg: Any) -> None:
        evt = T.episode_event(msg.data, "policy_runner")
        if evt is None:
            return
        kind, eid = evt.get("event"), evt.get("id")
        if kind == "start" and isinstance(eid, int) and eid != self.episode_id:
            self.episode_id = eid
            obs, _ = self.env.reset(seed=int(self.params["seed"]) + eid)
            self.command = np.zeros(self.task.action_dim)
            self.t = 0
            self.active = True
            self.stepped_stamp = -1
            self.echo = ""  # the reset state: teleported, not stepped with a command
            self._last_cmd_time = time.monotonic()
            if self.lockstep:
                self.sim_ns += self.period_ns  # a fresh stamp for the reset state
            extras = {n: float(obs[k]) for k, n in self._extra_idx}
            derive = DERIVED.get(self.task.name)
            if derive is not None:  # computed from the joint states by whoever builds observations
                q, _ = self.backend.joint_state()
                for name in derive(self.backend.joint_names, np.asarray(q)):
                    extras.pop(name, None)
            stamp = self.sim_ns if self.lockstep else int(self.node.get_clock().now().nanoseconds)
            self._event({"event": "reset", "id": eid, "stamp_ns": stamp, "extras": extras})
            self._publish_state()
        elif kind == "stop" and eid == self.episode_id:
            self.active = False

    def close(self) -> None:
        self.env.close()


def main(argv: Sequence[str] | None = None) -> int:
    return _node.run(SimBridge, argv, "sim_bridge")


if __name__ == "__main__":
    sys.exit(main())
