"""``reset_node``: scripted resets between episodes on hardware (docs/ros.md "Resets").

Runs beside ``policy_runner`` when the robot config has a ``reset`` section and the graph has
no simulator (``sim: none``). Before every episode it drives the robot to a start pose
(:mod:`bremen_robot.reset_motion`: a slow joint-space trajectory, each command through a shield
built from the reset's own, tighter limits, sent on ``bremen/command`` with a ``reset:<n>``
label that ingest never pairs), waits until the robot is there and still, calls
``bremen/start_episode``, and announces the episode's start state on ``bremen/episode``
(``reset`` event, with the task's extras such as the reach goal, as the simulator does after
teleporting). It then stays silent until the runner stops that episode.

Every reset is logged on ``bremen/reset``: ``start`` (target) and ``end`` (success, reason,
duration). A reset that does not arrive within ``timeout_s``, or that its shield corrects in
any way, fails: the node sends the safe command, logs the reason with ``operator_needed``, and
does nothing more; ``bremen collect`` then stops the graph and exits non-zero. No retry.

``dry_run: true``: one reset on its own (no runner, no episode), then the process exits: 0 when
it arrived, 1 with the one line when it failed (docs/hardware.md, "a dry reset").
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.errors import ConfigError
from bremen_robot.ros import _node
from bremen_robot.ros import topics as T

DEFAULTS: dict[str, Any] = {
    "use_sim_time": False,
    "robot_config": "",
    "task": "",
    "mode": "realtime",
    "executor": "events",
    "seed": 0,
    "control_rate_hz": 0.0,
    "stop_grace_s": 0.5,
    "dry_run": False,
    # a reset begins once this many readers of bremen/command are matched (the logger: every
    # reset command is then in the bag, the first reset's too)
    "ready_command_subscribers": 0,
    # a reset begins once trajectory_logger said it records the robot's states (its "recording"
    # event): the driver's states must be in the bag from the first reset on
    "wait_for_logger": False,
}


def failure_line(number: int, reason: str) -> str:
    """The one line an operator reads when a reset fails."""
    return (
        f"reset {number} failed: {reason}; the robot was sent the safe command and the collection "
        "stops: an operator is needed (check the robot and the reset config, then collect again; "
        "a failed reset is never retried)"
    )


class ResetNode:
    def __init__(self, rclpy: Any) -> None:
        from rclpy.clock import Clock, ClockType
        from rclpy.node import Node
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64MultiArray, MultiArrayDimension, String
        from std_srvs.srv import Trigger

        import safety
        from bremen_robot.robot_config import load_robot_config
        from bremen_robot.tasks import get_task

        self.node = node = Node("reset_node")
        p = self.params = _node.declare(node, DEFAULTS)
        self.executor_kind = p["executor"]
        if not p["robot_config"]:
            raise ConfigError("reset_node: parameter robot_config is empty; pass configs/robots/<robot>.yaml")
        robot = load_robot_config(Path(p["robot_config"]))
        if robot.reset is None:
            raise ConfigError(f"{robot.source}: no reset section; reset_node has nothing to do")
        if p["mode"] != "realtime":
            raise ConfigError(
                "reset_node: resets run on hardware, mode realtime; the simulator resets itself"
            )
        self.cfg = robot.reset
        self.joints = list(robot.joints)
        self.rate = float(p["control_rate_hz"] or robot.control_rate_hz)
        from bremen_robot.limits_fit import ood_problem
        from bremen_robot.ros.runner_wiring import reset_limits

        self.limits = reset_limits(robot, self.rate)  # per the period it commands at
        if (why := ood_problem(self.limits, self.cfg.limits)) is not None:
            raise ConfigError(why)
        self._safety = safety
        self.task = get_task(p["task"] or robot.task)
        self._String, self._Array, self._Dim = String, Float64MultiArray, MultiArrayDimension
        self.pub_cmd = node.create_publisher(Float64MultiArray, T.COMMAND, T.qos("command"))
        self.pub_reset = node.create_publisher(String, T.RESET, T.qos("episode"))
        self.pub_episode = node.create_publisher(String, T.EPISODE, T.qos("episode"))
        node.create_subscription(JointState, T.JOINT_STATES, self.on_joint_states, T.qos("sensor_sub"))
        node.create_subscription(String, T.EPISODE, self.on_episode, T.qos("episode_sub"))
        # transient local: the logger's "recording" event may come before this node is up
        node.create_subscription(String, T.EPISODE, self.on_logger_event, T.qos("episode"))
        self.logger_recording = not p["wait_for_logger"]
        node.create_subscription(Bool, T.ESTOP, self.on_estop, T.qos("latched"))
        self.start_client: Any = node.create_client(Trigger, T.START_EPISODE)
        self._Trigger = Trigger
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        node.create_timer(1.0 / self.rate, self.on_tick, clock=steady)
        self.latest: tuple[tuple[str, ...], Any, Any, float] | None = None
        self.state = "waiting"  # waiting | resetting | starting | episode | done | failed
        self.number = 0
        self.motion: Any = None
        self.episode_id: int | None = None
        self.failed_at: float | None = None
        self.failed: str | None = None
        self.estopped = False  # bremen/estop latches every reset's shield from then on
        self.dry_run = bool(p["dry_run"])
        self.done = False  # ends the process only in a dry run: in a graph bremen collect stops it
        node.get_logger().info(
            f"reset_node: robot {robot.name}, start poses from {self._source()}, max_speed "
            f"{self.cfg.max_speed:g} rad/s, timeout {self.cfg.timeout_s:g} s, limits {self.cfg.limits}"
        )

    def _source(self) -> str:
        if self.cfg.poses:
            return f"{len(self.cfg.poses)} poses"
        return "a box" if self.cfg.box is not None else "home"

    # ------------------------------------------------------------------ inputs
    def on_joint_states(self, msg: Any) -> None:
        self.latest = (tuple(msg.name), msg.position, msg.velocity, time.monotonic())

    def on_estop(self, msg: Any) -> None:
        if msg.data and not self.estopped:
            self.estopped = True
            if self.motion is not None:
                self.motion.shield.estop("bremen/estop")
            if self.state == "resetting":  # now, not at the next tick (which fails the reset): a period less
                self._send(self._shield_safe(), "safe")
            self.node.get_logger().warning("e-stop latched (bremen/estop): no reset will move the robot")

    def on_logger_event(self, msg: Any) -> None:
        evt = T.episode_event(msg.data, "trajectory_logger")
        if evt is not None and evt.get("event") == "recording":
            self.logger_recording = True

    def on_episode(self, msg: Any) -> None:
        evt = T.episode_event(msg.data, "policy_runner")
        if evt is None:
            return
        kind = evt.get("event")
        if kind in ("done", "halt"):  # the runner finished or is stopping: no more resets
            if self.state == "resetting":
                self._send(self._shield_safe(), "safe")
                # its start is logged: so is its end (close() logs none once the state is done)
                why = f"interrupted (policy_runner: {kind})"
                self._log({"event": "end", "reset": self.number, "success": False, "reason": why})
            self.state = "done" if self.state != "failed" else self.state
        elif kind == "stop" and self.state == "episode" and evt.get("id") == self.episode_id:
            self.state = "done" if evt.get("finished") else "next"

    # ------------------------------------------------------------------ outputs
    def _send(self, command: np.ndarray | None, label: str) -> None:
        if command is None:  # a position hold nobody measured: silence, the controller holds
            return
        msg = self._Array()
        msg.layout.dim = [self._Dim(label=label, size=len(command), stride=len(command))]
        msg.data = [float(x) for x in command]
        self.pub_cmd.publish(msg)

    def _log(self, payload: dict[str, Any]) -> None:
        payload.update(source="reset_node", stamp_ns=time.time_ns())
        _node.publish_json(self.pub_reset, self._String, payload)

    # ------------------------------------------------------------------ the loop
    def on_tick(self) -> None:
        now = time.monotonic()
        if self.state == "failed":
            if self.failed_at is not None and now - self.failed_at < self.params["stop_grace_s"]:
                self._send(self._shield_safe(), "safe")
            return
        if self.state in ("waiting", "next"):
            runner_ready = self.dry_run or self.start_client.service_is_ready()
            logged = self.logger_recording and (
                self.pub_cmd.get_subscription_count() >= self.params["ready_command_subscribers"]
            )
            if self.latest is not None and runner_ready and logged:
                self._begin(now)
            return
        if self.state == "resetting":
            self._reset_tick(now)

    def _shield_safe(self) -> np.ndarray | None:
        """The reset's safe command; None where it would be a guess (a position hold before any
        position was measured: the middle of each range, possibly far from the robot)."""
        if self.motion is None:
            return np.zeros(len(self.joints))
        shield = self.motion.shield
        return None if shield.hold_is_a_guess() else np.asarray(shield.safe_command())

    def _begin(self, now: float) -> None:
        from bremen_robot.reset_motion import ResetMotion, start_pose

        self.number += 1
        target = start_pose(self.cfg, self.number, int(self.params["seed"]))
        shield = self._safety.SafetyShield(self.limits)
        if self.latest is not None:  # a stop before the first step holds here (position)
            names, pos, vel, arrival = self.latest
            shield.note_measurement(self._safety.JointState(names, pos, vel, arrival))
        if self.estopped:  # the reset fails on its first step, with the reason
            shield.estop("bremen/estop")
        self.motion = ResetMotion(self.cfg, shield, self.joints, target, 1.0 / self.rate, now)
        self.state = "resetting"
        self._log({"event": "start", "reset": self.number, "target": [float(x) for x in target]})

    def _reset_tick(self, now: float) -> None:
        m = self.motion
        if self.latest is None:
            late = m.timed_out(now)
            if late is not None:
                self._finish(late[1])
            return
        names, pos, vel, arrival = self.latest
        cmd, outcome = m.step(names, pos, vel, arrival, now)
        if outcome is None or not m.shield.hold_is_a_guess():  # never a guessed hold
            self._send(cmd, f"{T.RESET_LABEL_PREFIX}{self.number}")
        if outcome is not None:
            self._finish(outcome)

    def _finish(self, outcome: Any) -> None:
        evt = {
            "event": "end",
            "reset": self.number,
            "success": outcome.success,
            "reason": outcome.reason,
            "duration_s": round(outcome.duration_s, 4),
            "error_rad": outcome.error,
        }
        if not outcome.success:
            self._fail(outcome.reason, evt)
            return
        self._log(evt)
        if self.dry_run:
            self.node.get_logger().info(f"dry reset arrived in {outcome.duration_s:.2f} s")
            self.state, self.done = "done", True
            return
        self.state = "starting"
        fut = self.start_client.call_async(self._Trigger.Request())
        fut.add_done_callback(self._on_started)

    def _fail(self, reason: str, evt: dict[str, Any] | None = None) -> None:
        line = failure_line(self.number, reason)
        self.failed_at = time.monotonic()
        self.state = "failed"
        self._send(self._shield_safe(), "safe")
        evt = evt or {"event": "end", "reset": self.number, "success": False, "reason": reason}
        evt.update(operator_needed=True, message=line)
        self._log(evt)
        self.node.get_logger().error(line)
        if self.dry_run:  # the process ends with the line (exit 1)
            self.failed, self.done = line, True

    def _on_started(self, fut: Any) -> None:
        if self.state != "starting":
            return
        try:
            res = fut.result()
        except Exception as exc:  # the runner went away
            self._fail(f"bremen/start_episode failed ({type(exc).__name__}: {exc})")
            return
        if not res.success:
            if "budget" in res.message:
                self.state = "done"
                return
            self._fail(f"the runner refused to start the episode ({res.message})")
            return
        self.episode_id = int(json.loads(res.message)["id"])
        self.state = "episode"
        _node.publish_json(
            self.pub_episode,
            self._String,
            {
                "event": "reset",
                "id": self.episode_id,
                "reset": self.number,
                "stamp_ns": int(self.node.get_clock().now().nanoseconds),
                "extras": self._extras(self.episode_id),
                "source": "reset_node",
            },
        )

    def _extras(self, eid: int) -> dict[str, float]:
        """The episode's task extras that joint states do not give (the reach goal), drawn from
        the task's start distribution like the simulator draws them."""
        from sim.observation import DERIVED

        rng = np.random.default_rng([int(self.params["seed"]), int(eid), 0xE7])
        obs = self.task.sample_reset(1, rng)
        if obs is None:
            return {}
        names = [n for n in self.task.obs_names if not n.startswith(("qpos.", "qvel."))]
        derive = DERIVED.get(self.task.name)
        derived: set[str] = set()
        if derive is not None and self.latest is not None:
            names_js, pos, _, _ = self.latest
            derived = set(derive(names_js, np.asarray(pos)))
        return {n: float(obs[0][self.task.obs_names.index(n)]) for n in names if n not in derived}

    def close(self) -> None:
        # a reset cut short (Ctrl-C, bremen collect stopping) leaves the robot at rest
        if self.state == "resetting" or (self.state == "failed" and self.dry_run):
            cmd = self._shield_safe()
            if cmd is not None:  # else nothing measured to hold: silence
                for _ in range(max(1, int(self.params["stop_grace_s"] * self.rate))):
                    self._send(cmd, "safe")
                    time.sleep(1.0 / self.rate)
        if self.state == "resetting":
            self._log({"event": "end", "reset": self.number, "success": False, "reason": "interrupted"})
        if self.dry_run:
            self._deliver_log()

    def _deliver_log(self, timeout_s: float = 2.0) -> None:
        """A dry run exits right after its result: give a listener still being discovered (a
        logger, a monitor) up to ``timeout_s`` to match the latched topic and acknowledge it,
        else the one line on bremen/reset would die with the process."""
        from rclpy.duration import Duration

        end = time.monotonic() + timeout_s
        while self.pub_reset.get_subscription_count() == 0 and time.monotonic() < end:
            time.sleep(0.05)
        self.pub_reset.wait_for_all_acked(Duration(seconds=max(0.0, end - time.monotonic())))


def main(argv: Sequence[str] | None = None) -> int:
    return _node.run(ResetNode, argv, "reset_node")


if __name__ == "__main__":
    sys.exit(main())
