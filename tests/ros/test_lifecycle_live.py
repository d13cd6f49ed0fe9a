"""policy_runner as a lifecycle node, seen from outside: an independent node (the test's probe,
in this process) watches the runner (its own process) over DDS, on a random ROS_DOMAIN_ID."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bremen_robot.ros import topics as T
from bremen_robot.ros.graph import collect_specs
from bremen_robot.ros.runner_diagnostics import status_name, status_values
from tests.ros.conftest import held_over_grace, requires_rclpy, spawn_spec, write_collect_config

pytestmark = [requires_rclpy, pytest.mark.ros]
GRACE = 0.5
NAMES = ["rootx", "rootz", "rooty", "bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"]


def is_safe(msg) -> bool:
    return bool(np.all(np.asarray(msg.data) == 0.0))


@pytest.fixture
def runner(tmp_path, procs, probe):
    """policy_runner alone (sim: none, realtime 50 Hz, halfcheetah, random); the probe plays the
    robot (joint_states) and records bremen/command and /diagnostics."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    cfg = write_collect_config(
        tmp_path, sim="none", mode="realtime", log_topics=[T.COMMAND], episode_steps=100000,
        control_rate_hz=50, stop_grace_s=GRACE,
    )  # fmt: skip
    spec = next(
        s for s in collect_specs(cfg, policy="random", workspace=tmp_path / "ws") if s.name == "policy_runner"
    )
    proc = spawn_spec(spec, tmp_path, procs)
    pub = probe.node.create_publisher(JointState, T.JOINT_STATES, T.qos("state_pub"))
    cmds = probe.record(Float64MultiArray, T.COMMAND, T.qos("command"))
    diags = probe.record(DiagnosticArray, "/diagnostics", 10)

    def stream(seconds: float, until=None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until()):
            m = JointState()
            m.header.stamp = probe.node.get_clock().now().to_msg()
            m.name = NAMES
            m.position, m.velocity = [0.0] * 9, [0.0] * 9
            pub.publish(m)
            probe.spin_for(0.02)

    def status(pred, timeout: float = 5.0) -> tuple[int, dict[str, str]]:
        """The first runner status received from now on that satisfies ``pred(values)``."""
        start = len(diags)

        def found():
            for _, arr in diags[start:]:
                for st in arr.status:
                    if st.name == status_name("policy_runner") and pred(v := status_values(st)):
                        return st.level[0], v, st.hardware_id
            return None

        end = time.monotonic() + timeout
        while found() is None and time.monotonic() < end:
            stream(0.1)
        hit = found()
        assert hit is not None, [status_values(s) for _, a in diags[-3:] for s in a.status]
        assert hit[2] == "halfcheetah"  # hardware_id: the robot's name
        return hit[0], hit[1]

    return {"proc": proc, "stream": stream, "cmds": cmds, "status": status, "lc": probe.lifecycle()}


def test_commands_only_while_active_and_the_safe_command_on_deactivate(runner, probe):
    from std_msgs.msg import Bool
    from std_srvs.srv import Trigger

    g, lc, cmds = runner, runner["lc"], runner["cmds"]
    level, v = g["status"](lambda v: v["lifecycle_state"] == "unconfigured", timeout=30)
    assert level == 0 and v["policy"] == ""
    g["stream"](1.0)
    assert cmds == [], "an unconfigured runner published a command"

    assert lc.change("configure", 30) is True
    g["status"](lambda v: v["lifecycle_state"] == "inactive")
    refused = probe.call(Trigger, T.START_EPISODE)
    assert not refused.success and "not active" in refused.message
    g["stream"](1.0)
    assert cmds == [], "an inactive runner published a command"

    assert lc.change("activate", 10) is True
    assert probe.call(Trigger, T.START_EPISODE).success
    g["stream"](10, until=lambda: any(not is_safe(m) for _, m in cmds))
    assert any(not is_safe(m) for _, m in cmds), "no policy command after activate"
    _, first = g["status"](lambda v: v["lifecycle_state"] == "active" and int(v["ticks"]) > 0)
    _, second = g["status"](lambda v: int(v["ticks"]) > int(first["ticks"]))
    assert int(second["ticks"]) - int(first["ticks"]) >= 20  # 50 Hz ticks over ~1 s between reports
    assert first["policy"] == "random" and first["estop_latched"] == "false"

    asked = time.monotonic()
    assert lc.change("deactivate", GRACE + 5) is True
    answered = time.monotonic()
    g["stream"](1.0)  # the robot is still there, sending states
    window = [(t, m) for t, m in cmds if asked <= t <= answered + 0.2]
    # policy commands the runner sent before the request reached it may arrive after `asked`
    # (seen under load); from its first safe command on, nothing but the safe command may follow
    first_safe = next((i for i, (_, m) in enumerate(window) if is_safe(m)), len(window))
    during = window[first_safe:]
    after = [t for t, _ in cmds if t > answered + 0.2]
    assert during and all(is_safe(m) for _, m in during), "a policy command during deactivate"
    assert held_over_grace([t for t, _ in during], GRACE, 50), len(during)  # held, not sent once
    assert is_safe(cmds[-1][1]) and after == [], f"{len(after)} commands after deactivate"
    g["status"](lambda v: v["lifecycle_state"] == "inactive")

    estop = probe.node.create_publisher(Bool, T.ESTOP, T.qos("latched"))
    estop.publish(Bool(data=True))
    level, v = g["status"](lambda v: v["estop_latched"] == "true")
    assert level == 2 and v["estop_reason"] == "bremen/estop"
    assert after == [t for t, _ in cmds if t > answered + 0.2]  # the e-stop sent nothing either

    assert lc.change("cleanup", 35) is True and lc.change("shutdown", 5) is True
    assert g["proc"].wait(10) == 0  # finalized: the process ends by itself


def test_collect_reports_an_unapproved_policy_from_the_runners_configure(tmp_path, approved, monkeypatch):
    """The runner checks approval itself (configure): with bremen collect's own early check
    skipped, the run fails with the runner's one-line reason, as a user error."""
    from bremen_robot.errors import ConfigError
    from bremen_robot.policy.untrained import export_untrained_policy
    from bremen_robot.registry import ApprovalError, Registry, verify_for_deployment
    from bremen_robot.robot_config import load_robot_config
    from bremen_robot.ros import collect as collect_mod

    other = export_untrained_policy(tmp_path / "other", hidden=(8,))  # never registered
    with Registry.open(approved["workspace"], readonly=True) as reg, pytest.raises(ApprovalError) as expected:
        verify_for_deployment(str(other), load_robot_config(approved["robot"]), reg)
    monkeypatch.setattr(collect_mod, "_check_approval", lambda *a: None)
    cfg = write_collect_config(tmp_path, sim="none", mode="realtime", robot=str(approved["robot"]))
    with pytest.raises(ConfigError) as err:
        collect_mod.collect(
            cfg,
            policy=str(other),
            episodes=1,
            out=tmp_path / "bag",
            workspace=approved["workspace"],
            timeout_s=60,
        )
    assert str(err.value) == f"policy_runner: configure failed: {expected.value}"
    assert "\n" not in str(err.value)


def test_lifecycle_client_up_reports_a_configure_failure_in_one_line(tmp_path, procs, approved):
    """What the launch file runs for a runner that shares its process: exit 2, one line."""
    import subprocess
    import sys

    from bremen_robot.policy.untrained import export_untrained_policy

    other = export_untrained_policy(tmp_path / "other", hidden=(8,))  # never registered
    cfg = write_collect_config(tmp_path, sim="none", mode="realtime", robot=str(approved["robot"]))
    specs = collect_specs(cfg, policy=str(other), workspace=approved["workspace"])
    spawn_spec(next(s for s in specs if s.name == "policy_runner"), tmp_path, procs)
    up = subprocess.run(
        [sys.executable, "-m", "bremen_robot.ros.lifecycle_client", "up"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    lines = up.stderr.strip().splitlines()
    assert up.returncode == 2 and len(lines) == 1, up.stderr
    assert lines[0].startswith(
        f"lifecycle_client: error: policy_runner: configure failed: policy at '{other}'"
    )
    assert lines[0].endswith("is not registered; register it and have an operator approve it")
