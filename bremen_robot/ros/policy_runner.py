"""``policy_runner``: frozen policy -> safety shield -> ``bremen/command`` (DESIGN.md §3).

Loads the policy only through the registry (``verify_for_deployment``: registered, approved,
signed by an operator the robot config trusts) or runs ``random`` (uniform actions, the first
deployment). Builds the task observation from ``joint_states`` (+ ``odom``) in the manifest's
joint order, and acts

* in ``realtime`` mode on a timer at the control rate, on the newest joint states;
* in ``lockstep`` mode on every ``joint_states`` message (one physics step each), with a
  wall-clock watchdog that sends the safe command if the simulator stops answering.

Publishes what it sends (``bremen/command``), what the policy asked (``bremen/raw_action``),
every intervention (``bremen/safety``) and episode events (``bremen/episode``); honours
``bremen/estop`` (latching) and the ``reset_estop``/``start_episode``/``stop_episode`` services.

Run: ``python -m bremen_robot.ros.policy_runner --ros-args --params-file P.yaml``.
"""

from __future__ import annotations

import array
import contextlib
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.errors import ConfigError
from bremen_robot.ros import _node
from bremen_robot.ros import topics as T
from bremen_robot.ros.deployment import DeploymentCounter, load_policy
from bremen_robot.ros.graph import RANDOM_POLICY
from bremen_robot.ros.runner_core import RunnerCore, StepOutput, tick_accounting
from bremen_robot.ros.safe_stop import hold_safe

DEFAULTS: dict[str, Any] = {
    "use_sim_time": False,
    "robot_config": "",
    "task": "",
    "mode": "realtime",
    "executor": "events",
    "policy": RANDOM_POLICY,
    "workspace": "",
    "noise_sigma": 0.1,
    "seed": 0,
    "control_rate_hz": 0.0,
    "episode_steps": 0,
    "observation_timeout_s": 0.0,
    "wait_for_reset": False,
    "auto_start": False,
    "max_episodes": 0,
    "max_steps": 0,
    "ready_command_subscribers": 0,
    "ready_state_subscribers": 0,
    "progress_period_s": 0.5,
    "realtime_priority": 0,
    "latency_log": "",
    "stop_grace_s": 0.5,
}


MAX_FAILED_TICKS = 50  # consecutive failed control ticks (safe command each) before the node stops


class PolicyRunner:
    def __init__(self, rclpy: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        from nav_msgs.msg import Odometry
        from rclpy.clock import Clock, ClockType
        from rclpy.node import Node
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64MultiArray, MultiArrayDimension, String
        from std_srvs.srv import Trigger

        import safety
        from bremen_robot.robot_config import load_robot_config
        from bremen_robot.tasks import get_task

        self.node = node = Node("policy_runner")
        p = self.params = _node.declare(node, DEFAULTS)
        warning = _node.request_fifo_priority(int(p["realtime_priority"]))
        if warning:
            node.get_logger().warning(f"policy_runner: {warning}")
        self.executor_kind = p["executor"]
        if not p["robot_config"]:
            raise ConfigError(
                "policy_runner: parameter robot_config is empty; pass configs/robots/<robot>.yaml"
            )
        robot = load_robot_config(Path(p["robot_config"]))
        task = get_task(p["task"] or robot.task)
        pol = load_policy(p, robot, task)
        if list(robot.joints) != pol["joint_order"]:
            raise ConfigError(
                f"robot '{robot.name}' commands joints {robot.joints} but the policy's joint order is "
                f"{pol['joint_order']}; use the robot config the policy was trained for"
            )
        if robot.safety is None:
            raise ConfigError(
                f"robot config {robot.source}: safety: no limits file; add configs/safety/<robot>.yaml"
            )
        limits = safety.load_limits(robot.safety, joint_names=pol["joint_order"])
        if p["observation_timeout_s"] > 0:
            timing = limits.timing.model_copy(update={"max_observation_age": p["observation_timeout_s"]})
            limits = limits.model_copy(update={"timing": timing})
        self.max_age = limits.timing.max_observation_age
        self.shield = safety.SafetyShield(limits)
        self.lockstep = p["mode"] == "lockstep"
        self.rate = p["control_rate_hz"] or pol["rate"]
        self.robot_name = robot.name
        self.counter = DeploymentCounter(
            p["workspace"], pol["sha256"], pol["deployment"], robot.name, task.name
        )
        self.core = RunnerCore(
            task=task,
            joint_order=pol["joint_order"],
            shield=self.shield,
            policy=pol["act"],
            action_low=pol["low"],
            action_high=pol["high"],
            noise_sigma=p["noise_sigma"] if pol["act"] is not None else 0.0,
            seed=p["seed"],
            episode_steps=p["episode_steps"],
            lockstep=self.lockstep,
            wait_for_reset=p["wait_for_reset"],
            policy_sha256=pol["sha256"],
            deployment=pol["deployment"],
            max_episodes=p["max_episodes"],
            max_steps=p["max_steps"],
        )
        self.n = len(pol["joint_order"])
        self._msgs = (
            Float64MultiArray,
            MultiArrayDimension,
            String,
            DiagnosticArray,
            DiagnosticStatus,
            KeyValue,
        )
        # publishers
        self.pub_cmd = node.create_publisher(Float64MultiArray, T.COMMAND, T.qos("command"))
        self.pub_raw = node.create_publisher(Float64MultiArray, T.RAW_ACTION, T.qos("command"))
        self.pub_safety = node.create_publisher(DiagnosticArray, T.SAFETY, T.qos("safety"))
        self.pub_episode = node.create_publisher(String, T.EPISODE, T.qos("episode"))
        # subscriptions
        state_qos = T.qos("lockstep_sub" if self.lockstep else "sensor_sub")
        # realtime mode ticks on its own thread (see _control_loop): every callback that reads
        # or changes the runner's state holds this lock (uncontended in lockstep mode)
        self._lock = threading.Lock()
        g = self._guarded
        node.create_subscription(JointState, T.JOINT_STATES, g(self.on_joint_states), state_qos)
        self.needs_base = self.core.needs_base
        self._odom: tuple[int, Any] | None = None
        self._pending: Any = None
        if self.needs_base:
            node.create_subscription(Odometry, T.ODOM, g(self.on_odom), state_qos)
        node.create_subscription(Bool, T.ESTOP, g(self.on_estop), T.qos("latched"))
        node.create_subscription(String, T.EPISODE, g(self.on_episode), T.qos("episode_sub"))
        node.create_service(Trigger, T.RESET_ESTOP, g(self.srv_reset_estop))
        node.create_service(Trigger, T.START_EPISODE, g(self.srv_start))
        node.create_service(Trigger, T.STOP_EPISODE, g(self.srv_stop))
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._latest: Any = None
        self._names_list: list[str] = []
        self._names: tuple[str, ...] = ()
        if self.lockstep:
            node.create_timer(max(self.max_age / 2, 0.001), g(self.on_watchdog), clock=steady)
        self._stop_loop = threading.Event()
        self._loop = threading.Thread(target=self._control_loop, name="bremen_control", daemon=True)
        self._ready_since: float | None = None
        self._done_sent = False
        if p["auto_start"]:
            node.create_timer(0.05, g(self.on_auto_start), clock=steady)
        self._last_progress = time.monotonic()
        self._lat = np.zeros(1 << 16)
        self._age = np.zeros(1 << 16)
        self._lat_n = 0
        self._missed = 0  # control periods that passed without a tick (tick_accounting)
        self._late = 0  # ticks that started more than half a period late
        # (tick, ms behind, missed, in episode, monotonic start): the start lets the bench line a
        # miss up with the platform's own wake-up stalls (bench/wake_jitter.py)
        self._missed_at: list[tuple[int, float, int, bool, float]] = []
        self._ticks = 0
        self.done = False
        self.halting = False  # close() began: only the safe command goes out from now on
        self.failed: str | None = None
        node.get_logger().info(
            f"policy_runner: robot {robot.name}, task {task.name}, policy {pol['sha256'][:12]}, "
            f"deployment {pol['deployment']}, {p['mode']} at {self.rate:g} Hz"
        )

    # ------------------------------------------------------------------ helpers
    def _now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def _array(self, values: np.ndarray, tag: str) -> Any:
        F, D = self._msgs[0], self._msgs[1]
        msg = F()
        n = int(values.shape[0])
        msg.layout.dim = [D(label=tag, size=n, stride=n)]
        msg.data = array.array("d", values.tolist())
        return msg

    def _publish_events(self, events: list[dict[str, Any]]) -> None:
        for evt in events:
            _node.publish_json(self.pub_episode, self._msgs[2], evt)
            if evt.get("event") == "stop":
                self.node.get_logger().info(
                    f"episode {evt['id']} {evt['reason']}: {evt['steps']} steps, return {evt['return']:.3f}, "
                    f"{evt['interventions']} interventions"
                )
        if self.core.finished and not self._done_sent and self.core.episode is None:
            self._done_sent = True
            _node.publish_json(
                self.pub_episode,
                self._msgs[2],
                {
                    "event": "done",
                    "episodes": self.core.episodes_done,
                    "steps": self.core.total_steps,
                    "source": "policy_runner",
                },
            )

    def _publish(self, out: StepOutput, start: float, arrival: float) -> None:
        if out.command is not None and not self.halting:
            self.pub_cmd.publish(self._array(out.command, out.tag))
            end = time.monotonic()
            i = self._lat_n & 0xFFFF
            self._lat[i] = end - start
            self._age[i] = end - arrival
            self._lat_n += 1
            if out.raw_action is not None:
                self.pub_raw.publish(self._array(out.raw_action, out.tag))
        if out.interventions:
            self._publish_interventions(out)
        if out.events:
            self._publish_events(out.events)
        ep = self.core.episode
        if ep is not None and time.monotonic() - self._last_progress > self.params["progress_period_s"]:
            self._last_progress = time.monotonic()
            _node.publish_json(
                self.pub_episode,
                self._msgs[2],
                {
                    "event": "progress",
                    "id": ep.id,
                    "steps": ep.steps,
                    "return": ep.ret,
                    "total_steps": self.core.total_steps + ep.steps,
                    "source": "policy_runner",
                },
            )

    def _publish_interventions(self, out: StepOutput) -> None:
        _, _, _, DA, DS, KV = self._msgs
        arr = DA()
        arr.header.stamp = self.node.get_clock().now().to_msg()
        arr.header.frame_id = out.tag
        level = DS.ERROR if out.safe else DS.WARN
        for iv in out.interventions:
            arr.status.append(
                DS(
                    level=level,
                    name=f"bremen/safety/{iv.reason}",
                    message=str(iv.detail),
                    hardware_id=self.robot_name,
                    values=[
                        KV(key="reason", value=str(iv.reason)),
                        KV(key="joint", value=str(iv.joint or "")),
                        KV(key="requested", value="" if iv.requested is None else repr(float(iv.requested))),
                        KV(key="sent", value="" if iv.sent is None else repr(float(iv.sent))),
                        KV(key="safe", value=str(bool(out.safe)).lower()),
                    ],
                )
            )
        self.pub_safety.publish(arr)

    # ------------------------------------------------------------------ callbacks
    def on_joint_states(self, msg: Any) -> None:
        arrival = time.monotonic()
        if msg.name != self._names_list:
            self._names_list = list(msg.name)
            self._names = tuple(self._names_list)
        st = msg.header.stamp
        item = (
            self._names,
            np.asarray(msg.position, dtype=np.float64),
            np.asarray(msg.velocity, dtype=np.float64),
            st.sec * 1_000_000_000 + st.nanosec,
            arrival,
        )
        if not self.lockstep:
            self._latest = item
            return
        if self.needs_base and (self._odom is None or self._odom[0] != item[3]):
            self._pending = item  # wait for the odometry of the same step
            return
        self._latest = item
        self._step(item, arrival)

    def on_odom(self, msg: Any) -> None:
        from sim.observation import rotate

        st = msg.header.stamp
        stamp = st.sec * 1_000_000_000 + st.nanosec
        p, o = msg.pose.pose.position, msg.pose.pose.orientation
        quat = np.array([o.w, o.x, o.y, o.z])
        lin_b = msg.twist.twist.linear
        ang_b = msg.twist.twist.angular
        lin = rotate(quat, np.array([lin_b.x, lin_b.y, lin_b.z]))
        ang = rotate(quat, np.array([ang_b.x, ang_b.y, ang_b.z]))
        self._odom = (stamp, ((np.array([p.x, p.y, p.z]), quat), (lin, ang)))
        if self._pending is not None and self._pending[3] == stamp:
            item, self._pending = self._pending, None
            self._latest = item
            self._step(item, item[4])

    def _step(self, item: Any, start: float) -> None:
        names, pos, vel, stamp, arrival = item
        base = self._odom[1] if (self.needs_base and self._odom is not None) else None
        out = self.core.step(names, pos, vel, stamp, arrival, time.monotonic(), self._now_ns(), base)
        self._publish(out, start, arrival)
        if not self.counter.triggered:
            if self.core.total_steps or (self.core.episode is not None and self.core.episode.steps):
                self.counter.trigger()  # the first logged transition: this policy collected data
        elif self.counter.error and not self.done:  # data the registry cannot count: stop
            self.failed, self.done = self.counter.error, True

    def start(self) -> None:
        """Called by the process once every node is built, right before spinning."""
        if not self.lockstep:
            self._loop.start()

    def _guarded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)  # rclpy reads the signature (a timer callback may take TimerInfo)
        def call(*args: Any) -> Any:
            with self._lock:
                return fn(*args)

        return call

    def _control_loop(self) -> None:
        """Realtime mode: one control tick per period on absolute monotonic deadlines.

        Its own thread (inheriting the SCHED_FIFO priority, if any), as ros2_control_node runs its
        update loop: an rclpy timer's event passes through the executor's timer thread and queue
        and arrived up to 3 ms late at 500 Hz here (docs/perf-ros.md). A tick that falls a
        whole period behind skips to the next deadline; on_tick counts the gap.
        """
        # a waking thread needs the GIL; the default 5 ms hand-off interval would be 2.5 periods
        sys.setswitchinterval(0.0002)
        period = 1.0 / self.rate
        deadline = time.monotonic() + period
        failures = 0
        try:
            while not self._stop_loop.is_set():
                delay = deadline - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                with self._lock:
                    start = time.monotonic()
                    missed, late, deadline = tick_accounting(deadline, start, period)
                    self._count_tick(start, deadline, period, missed, late)
                    try:
                        self.on_tick(start)
                        failures = 0
                    except Exception as exc:  # never leave the last command standing
                        failures += 1
                        self._publish_safe(f"control tick failed ({type(exc).__name__}: {exc})")
                        if failures >= MAX_FAILED_TICKS:
                            raise
        except BaseException as exc:  # the loop is the node: end the process, with the reason
            with contextlib.suppress(Exception):
                self._publish_safe("control loop stopped")
            self.failed = f"control loop stopped after {failures} failed ticks: {type(exc).__name__}: {exc}"
            self.done = True

    def _count_tick(self, start: float, deadline: float, period: float, missed: int, late: bool) -> None:
        self._ticks += 1
        if missed or late:
            self._missed += missed
            self._late += int(late)
            if len(self._missed_at) < 200:
                behind_ms = round((start - deadline + (missed + 1) * period) * 1e3, 2)
                self._missed_at.append((self._ticks, behind_ms, missed, self.core.episode is not None, start))

    def _publish_safe(self, why: str) -> None:
        self.node.get_logger().error(f"{why}; sending the safe command", throttle_duration_sec=1.0)
        self.pub_cmd.publish(self._array(self.shield.safe_command(), "safe"))

    def on_tick(self, start: float) -> None:
        if self._latest is None:
            self.node.get_logger().warning(
                f"no {T.JOINT_STATES} received yet: sending the safe command", throttle_duration_sec=5.0
            )
            out = self.core.watchdog(start)
            if out is not None:
                self._publish(out, start, start)
            return
        self._step(self._latest, start)

    def on_watchdog(self) -> None:
        ep = self.core.episode
        if ep is None or not ep.running or ep.first_stamp_ns < 0:
            return
        now = time.monotonic()
        out = self.core.watchdog(now)
        if out is not None:
            self._publish(out, now, now)

    def on_estop(self, msg: Any) -> None:
        if msg.data:
            self.shield.estop("bremen/estop")
            self.node.get_logger().warning("e-stop latched (bremen/estop)")

    def on_episode(self, msg: Any) -> None:
        try:
            evt = json.loads(msg.data)
        except ValueError:
            return
        if not isinstance(evt, dict) or evt.get("source") != "sim_bridge":
            return
        process, events = self.core.on_sim_event(evt, self._now_ns())
        if events:
            self._publish_events(events)
        if process and self._latest is not None and self.lockstep:
            item = self._pending if self._pending is not None else self._latest
            if self.needs_base and (self._odom is None or self._odom[0] != item[3]):
                return
            self._pending = None
            self._step(item, item[4])

    def _start(self) -> tuple[bool, str]:
        ok, why = self.core.can_start()
        if not ok:
            return False, why
        evt = self.core.start_episode(self._now_ns())
        self._publish_events([evt])
        return True, json.dumps({"id": evt["id"]})

    def srv_start(self, request: Any, response: Any) -> Any:
        response.success, response.message = self._start()
        return response

    def srv_stop(self, request: Any, response: Any) -> Any:
        ep = self.core.episode
        if ep is None:
            response.success, response.message = False, "no episode is running"
            return response
        evt = self.core.end_episode("stopped", self._now_ns())
        self._publish_events([evt] if evt else [])
        self.pub_cmd.publish(
            self._array(self.shield.safe_command(), "safe")
        )  # lockstep sends none between episodes
        response.success, response.message = True, json.dumps({"id": ep.id, "steps": ep.steps})
        return response

    def srv_reset_estop(self, request: Any, response: Any) -> Any:
        res = self.shield.reset_estop(time.monotonic())
        response.success, response.message = bool(res.ok), res.message
        self.node.get_logger().info(f"reset_estop: {res.message}")
        return response

    def on_auto_start(self) -> None:
        if self.core.episode is not None:
            return
        if self.core.finished:
            if not self._done_sent:
                self._publish_events([])
            return
        p = self.params
        ready = self.pub_cmd.get_subscription_count() >= p["ready_command_subscribers"] and (
            self.node.count_subscribers(T.JOINT_STATES) >= p["ready_state_subscribers"]
        )
        if p["wait_for_reset"]:
            ready = ready and self.node.count_subscribers(T.EPISODE) >= 1 + int(
                p["ready_command_subscribers"] > 1
            )
        if not ready:
            self._ready_since = None
            return
        now = time.monotonic()
        if self._ready_since is None:
            self._ready_since = now
        if now - self._ready_since < 0.3:
            return
        self._start()

    # ------------------------------------------------------------------ shutdown
    def latency_stats(self) -> dict[str, Any]:
        n = min(self._lat_n, self._lat.shape[0])
        lat, age = self._lat[:n] * 1e3, self._age[:n] * 1e3
        return {
            "steps": int(self._lat_n),
            "p50_ms": float(np.percentile(lat, 50)) if n else None,
            "p99_ms": float(np.percentile(lat, 99)) if n else None,
            "max_ms": float(lat.max()) if n else None,
            "age_p50_ms": float(np.percentile(age, 50)) if n else None,
            "age_p99_ms": float(np.percentile(age, 99)) if n else None,
            "ticks": self._ticks,
            "missed_ticks": self._missed,
            "late_ticks": self._late,
            "missed_at": self._missed_at,
            "rate_hz": self.rate,
            "sched_fifo": os.sched_getscheduler(0) == os.SCHED_FIFO,
            "mode": self.params["mode"],
            "shield": self.shield.summary(),
        }

    def close(self) -> None:
        self._stop_loop.set()
        if self._loop.is_alive():
            self._loop.join(2.0)
        # a tick stuck (a hung policy) holds the lock: stop the robot anyway, and a tick that
        # wakes up later publishes nothing (_publish checks halting)
        self.halting = True
        locked = self._lock.acquire(timeout=1.0)
        try:
            self._close_locked()
        finally:
            if locked:
                self._lock.release()

    def _close_locked(self) -> None:
        """Every exit path ends here (signal, done, failure, exception): stop the robot first."""
        ep = self.core.episode
        if ep is not None:
            with contextlib.suppress(Exception):
                evt = self.core.end_episode("interrupted", self._now_ns(), complete=False)
                self._publish_events([evt] if evt else [])
        cmd = self._array(self.shield.safe_command(), "safe")
        halt = {"event": "halt", "reason": self.failed or "stopped", "command": list(cmd.data)}
        halt.update(grace_s=self.params["stop_grace_s"], source="policy_runner")
        sent = hold_safe(
            lambda: self.pub_cmd.publish(cmd),
            1.0 / self.rate,
            self.params["stop_grace_s"],
            on_first=lambda: _node.publish_json(self.pub_episode, self._msgs[2], halt),
        )
        self.node.get_logger().info(f"policy_runner: safe command sent {sent} times; exiting")
        self.counter.wait()
        if self.counter.error and not self.failed:
            self.failed = self.counter.error
        if self.params["latency_log"]:
            Path(self.params["latency_log"]).write_text(json.dumps(self.latency_stats()))


def main(argv: Sequence[str] | None = None) -> int:
    return _node.run(PolicyRunner, argv, "policy_runner")


if __name__ == "__main__":
    sys.exit(main())
