"""Small pure pieces of ``policy_runner``'s wiring, without rclpy: its ROS parameters, its log
line for a stop, the e-stop callback that flags a running tick, the safety limits per control
rate (the runner's and the reset node's), and the accounting of a control tick against its
deadline (the control step itself: :mod:`.runner_core`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bremen_robot.ros.graph import RANDOM_POLICY

# policy_runner's ROS parameters and their defaults (docs/ros.md lists what each does)
RUNNER_PARAMETERS: dict[str, Any] = {
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
    "shadow": False,
    "idle_commands": True,
    "autostart": False,
}


def stop_log(evt: dict[str, Any]) -> tuple[str, str]:
    """The runner's log line for a ``stop`` event, and its level: a warning when the event says
    why in words (``detail``: something went wrong, e.g. a state stamp went back)."""
    line = (
        f"episode {evt['id']} {evt['reason']}: {evt['steps']} steps, return {evt['return']:.3f}, "
        f"{evt['interventions']} interventions"
    )
    detail = evt.get("detail")
    return ("warning", f"{line}; {detail}") if detail else ("info", line)


def flag_first(flag: Any, latch: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A ``bremen/estop`` callback: set ``flag`` (a threading.Event) at once, without the runner's
    lock, which a control tick running now holds (it checks the flag before publishing:
    :meth:`.runner_core.RunnerCore.before_publish`); then ``latch`` (the shield's e-stop, under the lock)."""

    def call(msg: Any) -> Any:
        if msg.data:
            flag.set()
        return latch(msg)

    return call


def runner_limits(limits: Any, rate_hz: float, lockstep: bool, observation_timeout_s: float) -> Any:
    """The safety limits the runner's shield uses (a copy; the robot's file stays as it is).

    Realtime, one command goes out every ``1 / rate_hz`` s, so the limits' per-second bounds
    (acceleration, velocity, the one-period crossing) are applied per that period, not per the
    file's ``control_period``: a collect config at 500 Hz with limits written for 20 Hz would
    otherwise allow 25 times the acceleration. Lockstep, the simulator advances the file's period
    per command whatever the rate. ``observation_timeout_s`` (> 0) may only tighten the watchdog:
    the limits file belongs to the robot, the collect config to whoever runs the collection.
    """
    from bremen_robot.errors import ConfigError

    timing = limits.timing
    update: dict[str, float] = {}
    if observation_timeout_s > 0:
        if observation_timeout_s > timing.max_observation_age:
            raise ConfigError(
                f"observation_timeout_s {observation_timeout_s:g} s exceeds the safety limits' "
                f"max_observation_age {timing.max_observation_age:g} s; it may only tighten the "
                "watchdog: lower it, or raise max_observation_age in the robot's limits file"
            )
        update["max_observation_age"] = observation_timeout_s
    if not lockstep and abs(timing.control_period * rate_hz - 1.0) > 1e-9:
        update["control_period"] = 1.0 / rate_hz
    if not update:
        return limits
    return limits.model_copy(update={"timing": timing.model_copy(update=update)})


def reset_limits(robot: Any, rate_hz: float) -> Any:
    """The safety limits of ``reset_node``'s shield when it commands at ``rate_hz``: the reset's
    own file per that period, as :func:`runner_limits` does for the runner (a reset at 100 Hz
    under limits written for 20 Hz was let through 5x the acceleration limit; at 10 Hz every
    reset failed on the rate limit). At another rate than the file's, the reset must still fit
    (``check_reset_limits`` on both files per that period), or it is refused in one line."""
    import safety
    from bremen_robot.errors import ConfigError
    from bremen_robot.reset_config import check_reset_limits

    reset = robot.reset
    own = safety.load_limits(reset.limits, joint_names=list(robot.joints))
    scaled = runner_limits(own, rate_hz, lockstep=False, observation_timeout_s=0.0)
    if scaled is own:
        return own
    if robot.safety is None:  # load_robot_config refuses this; a config built in code may not
        raise ConfigError(
            f"{robot.source}: reset: needs the robot's safety limits; set safety: configs/safety/<robot>.yaml"
        )
    theirs = runner_limits(
        safety.load_limits(robot.safety, joint_names=list(robot.joints)), rate_hz, False, 0.0
    )
    try:
        check_reset_limits(reset, theirs, scaled, where=f"reset at control_rate_hz {rate_hz:g}")
    except ValueError as exc:
        raise ConfigError(f"{robot.source}: {exc}") from None
    return scaled


def tick_accounting(deadline: float, start: float, period: float) -> tuple[int, bool, float]:
    """Where a control tick that starts at ``start`` stands against its ``deadline``.

    Returns (missed, late, next_deadline). ``missed`` counts whole periods that ended before
    the tick started (no command was sent in them; the tick serves the period it starts in);
    ``late`` is a tick that started more than half a period after the start of its period;
    ``next_deadline`` is the start of the following period. Deadlines are absolute, so
    lateness does not accumulate.
    """
    behind = start - deadline
    missed = int(behind // period) if behind >= period else 0
    late = behind - missed * period > 0.5 * period
    return missed, late, deadline + (missed + 1) * period
