"""Lockstep across processes: sim_bridge names the command it stepped with, the logger keeps
that in the bag, and ingest takes exactly that command (2026-12-06)."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from bremen_robot.data.bag_ingest import ingest_bags
from bremen_robot.ros.bagfile import read_custom
from bremen_robot.ros.graph import collect_specs
from tests.ros.conftest import require_mujoco, requires_rclpy, spawn_spec, write_collect_config

pytestmark = [requires_rclpy, pytest.mark.ros]


def test_ingest_keeps_the_command_the_simulator_stepped_with(tmp_path, procs, probe):
    """The probe plays policy_runner. For one state it first sends a command the simulator does
    not step with (logged, not used: a loss in transit cannot be forced, so the simulator refuses
    it for its NaN), then the one it steps with. Ingest, which kept the first logged command per
    state, must keep the second: the state that step produced names it."""
    require_mujoco()
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String

    from bremen_robot.ros import topics as T

    cfg = write_collect_config(tmp_path, episode_steps=3)
    specs = {s.name: s for s in collect_specs(cfg, policy="random", out=tmp_path / "bag")}
    spawn_spec(specs["sim_bridge"], tmp_path, procs)
    logger = spawn_spec(specs["trajectory_logger"], tmp_path, procs)
    states = probe.record(JointState, T.JOINT_STATES, T.qos("state_pub"))
    events = probe.record(String, T.EPISODE, T.qos("episode"))
    ev_pub = probe.node.create_publisher(String, T.EPISODE, T.qos("episode"))
    cmd_pub = probe.node.create_publisher(Float64MultiArray, T.COMMAND, T.qos("command"))

    def matched():
        return (
            ev_pub.get_subscription_count() >= 2  # sim_bridge and the logger
            and cmd_pub.get_subscription_count() >= 2
            and probe.node.count_subscribers(T.JOINT_STATES) >= 2  # the probe and the logger
        )

    assert probe.spin_until(matched, 60), "sim_bridge and trajectory_logger did not come up"
    probe.spin_for(0.5)
    runner = {"id": 1, "source": "policy_runner", "policy_sha256": "random", "deployment": 1}

    def event(evt):
        ev_pub.publish(String(data=json.dumps({**runner, **evt})))

    def stamp(m):
        return m.header.stamp.sec * 10**9 + m.header.stamp.nanosec

    def command(tag, data):
        m = Float64MultiArray()
        m.layout.dim = [MultiArrayDimension(label=tag, size=len(data), stride=len(data))]
        m.data = [float(x) for x in data]
        cmd_pub.publish(m)

    event({"event": "start"})
    assert probe.spin_until(lambda: any('"reset"' in m.data for _, m in events), 10)
    current = reset = json.loads(next(m.data for _, m in events if '"reset"' in m.data))["stamp_ns"]
    # the logger has had a state (no command yet: sim_bridge re-sends the reset state until one
    # comes, so the logger has that one too)
    assert probe.spin_until(lambda: any('"recording"' in m.data for _, m in events), 10)
    rng = np.random.default_rng(0)
    used, stepped_with, seq = [], [], 0
    for k in range(3):
        assert probe.spin_until(lambda c=current: any(stamp(m) == c for _, m in states), 5), f"state {k}"
        if k == 1:  # logged, never stepped with
            seq += 1
            command(T.make_tag(1, current, seq), [float("nan")] * 6)
        seq += 1
        used.append(rng.uniform(-1, 1, 6))
        stepped_with.append(T.make_tag(1, current, seq))
        command(stepped_with[-1], used[-1])
        assert probe.spin_until(lambda c=current: max(stamp(m) for _, m in states) > c, 5), f"step {k}"
        current = max(stamp(m) for _, m in states)
    event({"event": "stop", "reason": "time_limit", "complete": True, "last_obs_stamp_ns": current})

    def stored():
        listed = read_custom(tmp_path / "bag").get("bremen.episodes") or "[]"
        return [e.get("status") for e in json.loads(listed)] == ["complete"]

    assert probe.spin_until(stored, 15), "the logger did not store the episode"
    logger.send_signal(signal.SIGINT)
    assert logger.wait(30) == 0
    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    np.testing.assert_allclose(d["actions"], np.array(used), rtol=1e-6)
    assert d["report"][0]["dropped_transitions"] == 0
    # what the probe saw: each state a step produced names the command of that step
    echoes = {stamp(m): m.header.frame_id for _, m in states}
    assert [echoes[s] for s in sorted(echoes) if s > reset] == stepped_with
    assert echoes[reset] == ""  # the reset state: teleported, stepped with no command
