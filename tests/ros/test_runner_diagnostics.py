"""The level rules of policy_runner's /diagnostics (docs/ros.md "Diagnostics"), without rclpy."""

from __future__ import annotations

from bremen_robot.ros.runner_diagnostics import ERROR, OK, WARN, Health, assess

ACTIVE = Health(
    state="active",
    policy="random",
    mode="realtime",
    rate_hz=50.0,
    ticks=100,
    missed_ticks=0,
    observation_age_s=0.01,
    max_observation_age_s=0.1,
)


def later(h: Health, **change: object) -> Health:
    fields = {**h.__dict__, "ticks": h.ticks + 50, **change}
    return Health(**fields)  # type: ignore[arg-type]


def test_healthy_active_runner_is_ok_with_its_measured_rate():
    level, message, values = assess(later(ACTIVE), ACTIVE, 1.0)
    v = dict(values)
    assert (level, message) == (OK, "active: commanding at 50.0 Hz")
    assert (v["tick_rate_hz"], v["ticks"], v["lifecycle_state"], v["estop_latched"]) == (
        "50.00",
        "150",
        "active",
        "false",
    )


def test_estop_is_an_error_whatever_else_holds():
    h = later(ACTIVE, estop_latched=True, estop_reason="bremen/estop", observation_age_s=5.0, missed_ticks=3)
    level, message, values = assess(h, ACTIVE, 1.0)
    assert level == ERROR and message.startswith("e-stop latched (bremen/estop)")
    assert dict(values)["estop_latched"] == "true"


def test_stale_observations_and_missed_ticks_warn_while_active():
    level, message, _ = assess(later(ACTIVE, observation_age_s=0.35), ACTIVE, 1.0)
    assert level == WARN and message.startswith("observations stale: 0.350 s old (limit 0.1 s)")
    level, message, _ = assess(later(ACTIVE, missed_ticks=4), ACTIVE, 1.0)
    assert (level, message) == (WARN, "4 control periods missed in the last 1.0 s")
    level, message, _ = assess(later(ACTIVE, ticks=ACTIVE.ticks + 30), ACTIVE, 1.0)
    assert (level, message) == (WARN, "tick rate 30.0 Hz below the control rate 50 Hz")
    level, message, _ = assess(later(ACTIVE, observation_age_s=None), ACTIVE, 1.0)
    assert level == WARN and message.startswith("no joint_states received yet")


def test_lockstep_between_episodes_and_inactive_runners_are_not_warned_about_staleness():
    lock = Health(**{**ACTIVE.__dict__, "mode": "lockstep", "observation_age_s": 3.0})  # type: ignore[arg-type]
    assert assess(lock, lock, 1.0)[0] == OK
    assert assess(Health(**{**lock.__dict__, "in_episode": True}), lock, 1.0)[0] == WARN  # type: ignore[arg-type]
    inactive = Health(**{**ACTIVE.__dict__, "state": "inactive", "observation_age_s": 3.0})  # type: ignore[arg-type]
    level, message, _ = assess(inactive, inactive, 1.0)
    assert (level, message) == (OK, "inactive: configured, not commanding (activate to run)")


def test_configure_failure_is_an_error_until_configured():
    h = Health(state="unconfigured", configure_error="policy X is not approved", configure_error_kind="user")
    level, message, values = assess(h, None, 1.0)
    assert (level, message) == (ERROR, "configure failed: policy X is not approved")
    assert dict(values)["configure_error_kind"] == "user"
    assert assess(Health(state="unconfigured"), None, 1.0)[0] == OK
