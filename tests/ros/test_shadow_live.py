"""Shadow mode for real: the shadow runner's own topics only, both streams in one bag, no
deployment counted (separate processes over DDS; random ROS_DOMAIN_ID per run)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from bremen_robot.cli import main
from bremen_robot.data.bag_ingest import ingest_bags
from bremen_robot.ros import topics as T
from bremen_robot.ros.collect import collect
from bremen_robot.ros.graph import collect_specs
from bremen_robot.tasks import get_task
from tests.ros.conftest import require_mujoco, requires_rclpy, spawn_spec, write_collect_config
from tests.ros.test_graph_live import bag_messages

TASK = get_task("halfcheetah")


def register_candidate(root, workspace):
    """A registered, NOT approved candidate (different weights from the acting policy)."""
    from bremen_robot.policy.untrained import export_untrained_policy
    from bremen_robot.registry import Registry

    art = export_untrained_policy(root / "candidate", hidden=(8,))
    with Registry.open(workspace) as reg:
        rec = reg.register(art)
    assert rec.state == "candidate"
    return rec


@requires_rclpy
@pytest.mark.ros
def test_a_shadow_runner_publishes_nothing_on_the_command_topic(tmp_path, procs, probe):
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, String

    ws = tmp_path / "ws"
    cand = register_candidate(tmp_path, ws)
    cfg = write_collect_config(tmp_path, sim="none", mode="realtime", log_topics=[], episode_steps=100000)
    specs = collect_specs(cfg, policy="random", workspace=ws, shadow=cand.id)
    shadow = next(s for s in specs if s.name == "shadow_runner")
    assert shadow.parameters["shadow"] is True and shadow.parameters["noise_sigma"] == 0.0
    proc = spawn_spec(shadow, tmp_path, procs)  # alone: every bremen/command message would be its
    cmds = probe.record(Float64MultiArray, T.COMMAND, T.qos("command"))
    shadow_cmds = probe.record(Float64MultiArray, T.SHADOW_COMMAND, T.qos("command"))
    shadow_raw = probe.record(Float64MultiArray, T.SHADOW_RAW_ACTION, T.qos("command"))
    events = probe.record(String, T.EPISODE, T.qos("episode_sub"))
    pub = probe.node.create_publisher(JointState, T.JOINT_STATES, T.qos("state_pub"))
    ep_pub = probe.node.create_publisher(String, T.EPISODE, T.qos("episode"))
    names = ["rootx", "rootz", "rooty", *TASK.action_names]
    rng = np.random.default_rng(0)

    def stream(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            m = JointState()
            m.header.stamp = probe.node.get_clock().now().to_msg()
            m.name = names
            m.position = list(rng.normal(0, 0.05, 9))
            m.velocity = list(rng.normal(0, 0.2, 9))
            pub.publish(m)
            probe.spin_for(0.02)

    def acting_event(kind):
        evt = {"event": kind, "id": 7, "policy_sha256": "random", "deployment": 1, "source": "policy_runner"}
        ep_pub.publish(String(data=json.dumps(evt)))

    probe.activate("shadow_runner")  # a lifecycle node: unconfigured until collect (here: we) brings it up
    assert probe.spin_until(lambda: pub.get_subscription_count() > 0, 60), "shadow runner did not come up"
    stream(0.3)
    acting_event("start")  # the acting runner's episode: the shadow follows it, never starts its own
    t0 = time.monotonic()
    stream(1.5)
    in_episode = [m for t, m in shadow_cmds if t > t0 and T.parse_tag(m.layout.dim[0].label)[0] == 7]
    assert len(in_episode) >= 10, f"the shadow runner did not follow episode 7 ({len(shadow_cmds)} msgs)"
    assert any(T.parse_tag(m.layout.dim[0].label)[0] == 7 for _, m in shadow_raw)
    assert np.abs(np.asarray(in_episode[-1].data)).max() > 0  # the candidate acted, not a safe hold
    acting_event("stop")
    stream(0.5)
    assert T.parse_tag(shadow_cmds[-1][1].layout.dim[0].label)[0] == -1  # it followed the stop too
    # the independent subscriber heard nothing on bremen/command, and no one publishes there
    assert cmds == []
    assert probe.node.get_publishers_info_by_topic("/" + T.COMMAND) == []
    # it sent no episode event of its own, and offers none of the acting runner's services
    assert [json.loads(m.data)["source"] for _, m in events] == ["policy_runner", "policy_runner"]
    services = {name for name, _ in probe.node.get_service_names_and_types()}
    assert not {"/" + T.START_EPISODE, "/" + T.STOP_EPISODE, "/" + T.RESET_ESTOP} & services
    assert proc.poll() is None


@requires_rclpy
@pytest.mark.ros
def test_collect_with_shadow_logs_both_streams_and_counts_no_deployment(tmp_path, approved):
    require_mujoco()
    from bremen_robot.registry import Registry
    from bremen_robot.registry.shadow_runs import shadow_runs

    ws = approved["workspace"]
    cand = register_candidate(tmp_path, ws)
    cfg = write_collect_config(tmp_path, episode_steps=100, robot=str(approved["robot"]))
    res = collect(
        cfg,
        policy=approved["id"],
        shadow=cand.id,
        episodes=2,
        out=tmp_path / "bag",
        workspace=ws,
        timeout_s=240,
    )
    assert res.steps == 200 and res.deployment == 1
    msgs = bag_messages(tmp_path / "bag")
    topics = {t for t, _ in msgs}
    assert {
        "/bremen/command",
        "/bremen/raw_action",
        "/bremen/shadow/command",
        "/bremen/shadow/raw_action",
    } <= topics
    acting_tags = {T.parse_tag(m.layout.dim[0].label) for t, m in msgs if t == "/bremen/command"}
    shadow_tags = {T.parse_tag(m.layout.dim[0].label) for t, m in msgs if t == "/bremen/shadow/command"}
    in_ep = {k for k in acting_tags if k is not None and k[0] >= 0}
    assert len(in_ep) == 200
    # the shadow answered the same states; in lockstep it reads them best effort from its own
    # process and skipped up to 25 % under load on a 2-core machine (docs/ros.md): most, not all
    assert len(in_ep & shadow_tags) >= 100, len(in_ep & shadow_tags)
    # ingest: the acting policy's transitions only
    d = ingest_bags([tmp_path / "bag"])
    assert len(d["obs"]) == 200 and set(d["policy_sha256"]) == {approved["sha256"]}
    sent = {
        k: np.asarray(m.data)
        for t, m in msgs
        if t == "/bremen/command"
        for k in [T.parse_tag(m.layout.dim[0].label)]
    }
    first = min(k for k in in_ep if k[0] == 1)
    np.testing.assert_allclose(d["actions"][0], sent[first], rtol=1e-6)
    # a shadow run is not a deployment: the count is the acting policy's one; the candidate stays one
    with Registry.open(ws, readonly=True) as reg:
        assert reg.deployment_count() == 1
        rec = reg.get(cand.id)
        assert rec.state == "candidate" and rec.deployments == []
        runs = shadow_runs(reg, cand.id)
    assert len(runs) == 1 and runs[0].acting == approved["sha256"]
    s = runs[0].summary
    assert s["acting_steps"] == 200 and s["paired_steps"] == len(in_ep & shadow_tags)
    assert s["ood"]["mean"] > 0 and s["command_difference"]["max_abs_all"] > 0
    assert res.shadow is not None and res.shadow["seq"] == runs[0].seq
    # its hint names this workspace: 'bremen review ID' alone would look in the default registry
    assert f"paired steps; see 'bremen review {cand.id} --workspace {ws}'" in res.summary()


def test_cli_refuses_an_unknown_shadow_id_and_the_acting_policy_itself(tmp_path, approved, capsys):
    cfg = write_collect_config(tmp_path, episode_steps=10, robot=str(approved["robot"]))
    base = ["collect", "--config", str(cfg), "--policy", approved["id"], "--episodes", "1"]
    base += ["--workspace", str(approved["workspace"])]
    assert main([*base, "--shadow", "deadbeef0000", "--out", str(tmp_path / "b1")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --shadow: not registered") and "\n" not in err
    assert main([*base, "--shadow", approved["id"], "--out", str(tmp_path / "b2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: --shadow {approved['id']} is the acting policy itself; shadow a different candidate "
        "(the comparison would be with itself)"
    )
    assert not (tmp_path / "b1").exists() or not any((tmp_path / "b1").iterdir())
