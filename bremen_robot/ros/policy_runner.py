"""``policy_runner``: frozen policy -> safety shield -> ``bremen/command`` (DESIGN.md §3).

Loads the policy only through the registry (``verify_for_deployment``: registered, approved,
signed by an operator the robot config trusts) or runs ``random`` (uniform actions, the first
deployment). Builds the task observation from ``joint_states`` (+ ``odom``) in the manifest's
joint order, and acts

* in ``realtime`` mode on a timer at the control rate, on the newest joint states, with a
  watchdog thread that sends the safe command if a tick hangs (:mod:`.tick_watchdog`);
* in ``lockstep`` mode on every ``joint_states`` message (one physics step each), with a
  wall-clock watchdog that sends the safe command if the simulator stops answering.

Publishes what it sends (``bremen/command``), what the policy asked (``bremen/raw_action``),
every intervention (``bremen/safety``) and episode events (``bremen/episode``); honours
``bremen/estop`` (latching) and the ``reset_estop``/``start_episode``/``stop_episode`` services.
``shadow: true``: a shadow runner (:mod:`bremen_robot.ros.shadow`), only on ``bremen/shadow/*``.

A lifecycle node (:mod:`bremen_robot.ros.runner_lifecycle`): ``configure`` loads the policy,
``active`` is the only state that commands; health on ``/diagnostics``
(:mod:`bremen_robot.ros.runner_diagnostics`).

Run: ``python -m bremen_robot.ros.policy_runner --ros-args --params-file P.yaml`` (then
``ros2 lifecycle set /policy_runner configure`` and ``activate``, or ``-p autostart:=true``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bremen_robot.errors import ConfigError
from bremen_robot.ros import _node
from bremen_robot.ros import topics as T
from bremen_robot.ros.deployment import DeploymentCounter, load_policy
from bremen_robot.ros.runner_core import RunnerCore, StepOutput
from bremen_robot.ros.runner_diagnostics import DiagnosticsPublisher, runner_health
from bremen_robot.ros.runner_io import (
    BaseSample,
    JointSample,
    RunnerPublishers,
    base_for,
    base_sample,
    joint_sample,
)
from bremen_robot.ros.runner_lifecycle import LifecycleStatus, ManagedRunner, make_node
from bremen_robot.ros.runner_wiring import (
    RUNNER_PARAMETERS,
    flag_first,
    runner_limits,
    stop_log,
    tick_accounting,
)
from bremen_robot.ros.shadow import EpisodeFollower, NoDeployment, load_shadow_policy
from bremen_robot.ros.tick_stats import TickStats
from bremen_robot.ros.tick_watchdog import TickWatchdog, tick_timeout

MAX_FAILED_TICKS = 50  # consecutive failed control ticks (safe command each) before the node stops


class PolicyRunner(ManagedRunner):
    def __init__(self, rclpy: Any) -> None:
        self.lc = LifecycleStatus()
        self._lock = threading.Lock()  # see _init_runtime_state
        self.node = make_node("policy_runner", self, self.lc, self._on_transition, lambda: self._autostarting)
        self.params = _node.declare(self.node, RUNNER_PARAMETERS)
        self.executor_kind = self.params["executor"]
        warning = _node.request_fifo_priority(int(self.params["realtime_priority"]))
        if warning:
            self.node.get_logger().warning(f"policy_runner: {warning}")
        self.robot_name = Path(self.params["robot_config"]).stem  # the config's name until configure
        self.publishing = False  # active: the only state in which commands go out
        self.configured = False
        self.done = False
        self.halting = False  # a stop began: only the safe command goes out from now on
        self.failed: str | None = None
        self._autostarting = False
        self._entities: list[Any] = []
        self._next_episode_id = 1  # kept across configures: a bag never sees an episode id twice
        self.interfaces_live = False  # between _create_interfaces and release: callbacks may act
        self.diagnostics = DiagnosticsPublisher(
            self.node, lambda: runner_health(self), lambda: self.robot_name
        )

    # ------------------------------------------------------------------ lifecycle (runner_lifecycle)
    def configure(self) -> None:
        pol = self._configure(self.params)
        self._init_runtime_state()
        self._create_interfaces()
        self.configured = True
        self.node.get_logger().info(
            f"policy_runner: robot {self.robot_name}, task {self.core.task.name}, policy "
            f"{pol['sha256'][:12]}, deployment {pol['deployment']}, {self.params['mode']} at {self.rate:g} Hz"
        )

    def _configure(self, p: dict[str, Any]) -> dict[str, Any]:
        """Robot, task, policy (through the registry), limits, shield and the step logic; returns
        the loaded policy's description. No ROS interfaces yet."""
        import safety
        from bremen_robot.robot_config import load_robot_config
        from bremen_robot.tasks import get_task

        if not p["robot_config"]:
            raise ConfigError(
                "policy_runner: parameter robot_config is empty; pass configs/robots/<robot>.yaml"
            )
        robot = load_robot_config(Path(p["robot_config"]))
        task = get_task(p["task"] or robot.task)
        self.shadow = bool(p["shadow"])
        pol = load_shadow_policy(p, robot, task) if self.shadow else load_policy(p, robot, task)
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
        from bremen_robot.limits_fit import ood_problem

        if (why := ood_problem(limits, robot.safety)) is not None:
            raise ConfigError(why)
        self.lockstep = p["mode"] == "lockstep"
        self.rate = p["control_rate_hz"] or pol["rate"]
        period = limits.timing.control_period
        limits = runner_limits(limits, self.rate, self.lockstep, p["observation_timeout_s"])
        if limits.timing.control_period != period:
            self.node.get_logger().warning(
                f"control rate {self.rate:g} Hz, safety limits written for {1 / period:g} Hz: their "
                f"per-second bounds are applied per {limits.timing.control_period:g} s period"
            )
        self.max_age = limits.timing.max_observation_age
        self.shield = safety.SafetyShield(limits)
        self.robot_name = robot.name
        count = (p["workspace"], pol["sha256"], pol["deployment"], robot.name, task.name)
        self.counter: DeploymentCounter | NoDeployment = (
            NoDeployment() if self.shadow else DeploymentCounter(*count)
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
            idle_commands=p["idle_commands"],
            first_episode_id=self._next_episode_id,
        )
        self.n = len(pol["joint_order"])
        self.follower = EpisodeFollower(self.core, self.shield) if self.shadow else None
        self.needs_base = self.core.needs_base
        return pol

    def _init_runtime_state(self) -> None:
        """What the callbacks change while the node runs."""
        # realtime mode ticks on its own thread (see _control_loop): every callback that reads
        # or changes the runner's state holds self._lock (uncontended in lockstep mode)
        self._odom: BaseSample | None = None
        self._pending: JointSample | None = None  # lockstep: joint states waiting for their odometry
        self._latest: JointSample | None = None
        self._names_list: list[str] = []
        self._names: tuple[str, ...] = ()
        self._stop_loop = threading.Event()
        self._loop: threading.Thread | None = None  # started by activate
        self._ready_since: float | None = None
        self._done_sent = False
        self._last_progress = time.monotonic()
        self.stats = TickStats()
        self.last_intervention = ""
        self._estop_seen = threading.Event()

    def _create_interfaces(self) -> None:
        """Publishers, subscriptions, services and timers (callbacks may run from here on)."""
        from nav_msgs.msg import Odometry
        from rclpy.clock import Clock, ClockType
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, String
        from std_srvs.srv import Trigger

        node = self.node
        self.interfaces_live = True
        self.out = RunnerPublishers(node, self.robot_name, shadow=self.shadow)
        warn = functools.partial(node.get_logger().warning, throttle_duration_sec=1.0)
        self.tick_wd = TickWatchdog(tick_timeout(self.rate, self.max_age), self.out.safe, warn)
        keep = self._entities.append
        for pub in (self.out.cmd, self.out.raw, self.out.safety, self.out.episode):
            if pub is not None:  # a shadow runner has no episode publisher
                keep(pub)
        state_qos = T.qos("lockstep_sub" if self.lockstep else "sensor_sub")
        g = self._guarded
        keep(node.create_subscription(JointState, T.JOINT_STATES, g(self.on_joint_states), state_qos))
        if self.needs_base:
            keep(node.create_subscription(Odometry, T.ODOM, g(self.on_odom), state_qos))
        estop = flag_first(self._estop_seen, g(self.on_estop))
        keep(node.create_subscription(Bool, T.ESTOP, estop, T.qos("latched")))
        ep_qos = T.qos("episode" if self.shadow else "episode_sub")  # shadow: learns the running one
        keep(node.create_subscription(String, T.EPISODE, g(self.on_episode), ep_qos))
        if not self.shadow:  # the acting runner's services; a second server would answer for it
            keep(node.create_service(Trigger, T.RESET_ESTOP, g(self.srv_reset_estop)))
            keep(node.create_service(Trigger, T.START_EPISODE, g(self.srv_start)))
            keep(node.create_service(Trigger, T.STOP_EPISODE, g(self.srv_stop)))
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if self.lockstep:
            keep(node.create_timer(max(self.max_age / 2, 0.001), g(self.on_watchdog), clock=steady))
        if self.params["auto_start"]:
            keep(node.create_timer(0.05, g(self.on_auto_start), clock=steady))

    # ------------------------------------------------------------------ helpers
    def _now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def _publish_events(self, events: list[dict[str, Any]]) -> None:
        for evt in events:
            self.out.event(evt)
            if evt.get("event") == "stop":
                level, line = stop_log(evt)
                getattr(self.node.get_logger(), level)(line)
        if self.core.finished and not self._done_sent and self.core.episode is None:
            self._done_sent = True
            self.out.event(
                {
                    "event": "done",
                    "episodes": self.core.episodes_done,
                    "steps": self.core.total_steps,
                    "source": "policy_runner",
                },
            )

    def _publish(self, out: StepOutput, start: float, arrival: float) -> None:
        out = self.core.before_publish(out, self._estop_seen)
        with self.tick_wd.publishing() as stop:  # the watchdog cannot send until this one is out
            out = self.core.after_watchdog(out, stop)
            sent = out.command is not None and self.publishing and not self.halting
            if sent:
                self.out.cmd.publish(self.out.array(out.command, out.tag))
            self.tick_wd.sent(self.shield.safe_command() if sent and not out.safe else None)
        if sent:
            self.stats.command_sent(start, time.monotonic(), arrival)
            if out.raw_action is not None:
                self.out.raw.publish(self.out.array(out.raw_action, out.tag))
        if out.interventions:
            self.last_intervention = str(out.interventions[-1].reason)
            self.out.interventions(out)
        if out.events:
            self._publish_events(out.events)
        ep = self.core.episode
        if ep is not None and time.monotonic() - self._last_progress > self.params["progress_period_s"]:
            self._last_progress = time.monotonic()
            self.out.event(
                {
                    "event": "progress",
                    "id": ep.id,
                    "steps": ep.steps,
                    "return": ep.ret,
                    "total_steps": self.core.total_steps + ep.steps,
                    "source": "policy_runner",
                },
            )

    # ------------------------------------------------------------------ callbacks
    def on_joint_states(self, msg: Any) -> None:
        arrival = time.monotonic()
        if msg.name != self._names_list:
            self._names_list = list(msg.name)
            self._names = tuple(self._names_list)
        item = joint_sample(msg, self._names, arrival)
        if not self.lockstep:
            self._latest = item
            return
        if not self._has_base_for(item):
            self._pending = item  # wait for the odometry of the same step
            return
        self._latest = item
        self._step(item, arrival)

    def _has_base_for(self, item: JointSample) -> bool:
        """Lockstep: whether the odometry of the same step as ``item`` is in (or none is needed)."""
        return not self.needs_base or (self._odom is not None and self._odom.stamp_ns == item.stamp_ns)

    def on_odom(self, msg: Any) -> None:
        self._odom = base_sample(msg)
        stamp = self._odom.stamp_ns
        if self._pending is not None and self._pending.stamp_ns == stamp:
            item, self._pending = self._pending, None
            self._latest = item
            self._step(item, item.arrival)

    def _step(self, item: JointSample, start: float) -> None:
        if not self.publishing:  # unconfigured/inactive: no step, no command
            return
        age = self.shield.limits.timing.max_observation_age
        base = base_for(self._odom, item.stamp_ns, age) if self.needs_base else None
        out = self.core.step(
            item.names,
            item.position,
            item.velocity,
            item.stamp_ns,
            item.arrival,
            time.monotonic(),
            self._now_ns(),
            base,
            item.echo,
        )
        self._publish(out, start, item.arrival)
        if not self.counter.triggered:
            if self.core.total_steps or (self.core.episode is not None and self.core.episode.steps):
                self.counter.trigger()  # the first logged transition: this policy collected data
        elif self.counter.error and not self.done:  # data the registry cannot count: stop
            self.failed, self.done = self.counter.error, True

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
        self.stats.tick(start, deadline, period, missed, late, self.core.episode is not None)

    def _publish_safe(self, why: str) -> None:
        self.node.get_logger().error(f"{why}; sending the safe command", throttle_duration_sec=1.0)
        self.tick_wd.disarm()
        if self.publishing:
            self.out.safe(self.core.sent_outside_filter())

    def on_tick(self, start: float) -> None:
        if self._latest is None:
            ep = self.core.episode
            if not self.core.idle_commands and (ep is None or not ep.running):
                # between episodes a scripted reset owns the robot (idle_commands: false), and its
                # node may have the driver's states before this one: a safe command here would
                # interleave with the reset's, a jump of the reset speed every period
                return
            self.node.get_logger().warning(
                f"no {T.JOINT_STATES} yet: safe command (none on a position robot)", throttle_duration_sec=5.0
            )
            out = self.core.watchdog(start)
            if out is not None:
                self._publish(out, start, start)
            return
        self._step(self._latest, start)

    def on_watchdog(self) -> None:
        ep = self.core.episode
        if not self.publishing or ep is None or not ep.running or ep.first_stamp_ns < 0:
            return
        now = time.monotonic()
        out = self.core.watchdog(now)
        if out is not None:
            self._publish(out, now, now)

    def on_estop(self, msg: Any) -> None:
        if msg.data:
            self.shield.estop("bremen/estop")
            self._estop_seen.clear()  # latched: the shield stops every later tick
            self.node.get_logger().warning("e-stop latched (bremen/estop)")

    def on_episode(self, msg: Any) -> None:
        if self.follower is not None:  # shadow: the acting runner's episodes, never its own
            process, events = self.follower.handle(msg.data, self._now_ns())
        else:
            evt = T.episode_event(msg.data, "sim_bridge") or T.episode_event(msg.data, "reset_node")
            if evt is None:
                return
            process, events = self.core.on_sim_event(evt, self._now_ns())
        if events:
            self._publish_events(events)
        if process and self._latest is not None and self.lockstep:
            item = self._pending if self._pending is not None else self._latest
            if not self._has_base_for(item):
                return
            self._pending = None
            self._step(item, item.arrival)

    def _start(self) -> tuple[bool, str]:
        if not self.publishing or self.halting:
            return False, f"policy_runner is {self.lc.state}, not active; activate it first"
        ok, why = self.core.can_start()
        if not ok:
            return False, why
        evt = self.core.start_episode(self._now_ns())
        self._next_episode_id = self.core.next_id
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
        self.tick_wd.disarm()  # a reset may command the robot next (idle_commands: false)
        if self.publishing:  # lockstep sends none between episodes
            self.out.safe(self.core.sent_outside_filter())
        response.success, response.message = True, json.dumps({"id": ep.id, "steps": ep.steps})
        return response

    def srv_reset_estop(self, request: Any, response: Any) -> Any:
        self._estop_seen.clear()
        res = self.shield.reset_estop(time.monotonic())
        response.success, response.message = bool(res.ok), res.message
        self.node.get_logger().info(f"reset_estop: {res.message}")
        return response

    def on_auto_start(self) -> None:
        if not self.publishing or self.core.episode is not None:
            return
        if self.core.finished:
            if not self._done_sent:
                self._publish_events([])
            return
        p = self.params
        ready = self.out.cmd.get_subscription_count() >= p["ready_command_subscribers"] and (
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


def main(argv: Sequence[str] | None = None) -> int:
    return _node.run(PolicyRunner, argv, "policy_runner")


if __name__ == "__main__":
    sys.exit(main())
