"""The collect graph for real: separate processes over DDS (random ROS_DOMAIN_ID per run)."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from bremen_robot.data.bag_ingest import ingest_bags
from bremen_robot.ros.bagfile import deserialize, read_custom
from bremen_robot.ros.collect import collect
from bremen_robot.ros.graph import collect_specs
from bremen_robot.ros.topics import parse_tag
from bremen_robot.tasks import get_task
from tests.ros.collect_faults import KillAfterSteps
from tests.ros.conftest import require_mujoco, requires_rclpy, spawn_spec, write_collect_config

pytestmark = [requires_rclpy, pytest.mark.ros]
TASK = get_task("halfcheetah")


def bag_messages(path):
    with Reader(path) as r:
        return [(c.topic, deserialize(raw, c.msgtype)) for c, _, raw in r.messages()]


@pytest.mark.parametrize("compose", [True, False], ids=["composed", "separate"])
def test_lockstep_mujoco_two_episodes_bag_and_ingest(tmp_path, compose):
    require_mujoco()
    cfg = write_collect_config(tmp_path, episode_steps=60, seed=4, compose_lockstep=compose)
    res = collect(
        cfg, random=True, episodes=2, out=tmp_path / "bag", workspace=tmp_path / "ws", timeout_s=120
    )
    assert len(res.processes) == (2 if compose else 3)
    assert [e["reason"] for e in res.episodes] == ["time_limit", "time_limit"], res.summary()
    assert res.steps == 120 and res.deployment == 1 and res.policy_sha256 == "random"
    assert all(c == 0 for c in res.exit_codes.values()), res.exit_failures

    msgs = bag_messages(tmp_path / "bag")
    counts = Counter(t for t, _ in msgs)
    # one command per state; a state sim_bridge re-sent (lockstep_resend_s) is answered again alike
    # (a watchdog's safe command under load answers one too, with its own tag: count states)
    cmds = [m for t, m in msgs if t == "/bremen/command"]
    tags = {parse_tag(m.layout.dim[0].label) for m in cmds} - {None}
    assert len(tags) == 120 and counts["/bremen/raw_action"] >= 120
    # the budget's end stops the robot too: the runner's last commands are the safe one
    assert cmds[-1].layout.dim[0].label == "safe" and list(cmds[-1].data) == [0.0] * TASK.action_dim
    js_stamps = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for t, m in msgs if t == "/joint_states"}
    assert len(js_stamps) in (122, 123)  # reset + 60 steps per episode (+ the startup state)
    events = [json.loads(m.data) for t, m in msgs if t == "/bremen/episode"]
    kinds = Counter((e["source"], e["event"]) for e in events)
    assert kinds[("policy_runner", "start")] == kinds[("policy_runner", "stop")] == 2
    assert kinds[("sim_bridge", "reset")] == kinds[("sim_bridge", "end")] == 2
    assert "/odom" not in counts and "/clock" not in counts  # not logged for this robot / config
    eps = json.loads(read_custom(tmp_path / "bag")["bremen.episodes"])
    assert [e["status"] for e in eps] == ["complete", "complete"]

    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    assert d["obs"].shape == (120, TASK.obs_dim) and d["actions"].shape == (120, TASK.action_dim)
    # rewards are the task's functions of (obs, action, next_obs) ...
    expect = TASK.reward(
        d["obs"].astype(np.float64), d["actions"].astype(np.float64), d["next_obs"].astype(np.float64)
    )
    np.testing.assert_allclose(d["rewards"], expect, rtol=1e-4, atol=1e-4)
    # ... and sum to the returns the runner computed live in its own process
    for k, ep in enumerate(res.episodes):
        assert d["rewards"][d["episode_ids"] == k].astype(np.float64).sum() == pytest.approx(
            ep["return"], abs=1e-3
        )
        assert d["interventions"][d["episode_ids"] == k].sum() == ep["interventions"]
    same_ep = d["episode_ids"][1:] == d["episode_ids"][:-1]
    np.testing.assert_array_equal(d["next_obs"][:-1][same_ep], d["obs"][1:][same_ep])
    assert d["timeouts"].sum() == 2 and not d["terminals"].any()
    assert set(d["policy_sha256"]) == {"random"} and set(d["deployment_ids"]) == {1}

    # the graph is the simulator: replaying the logged commands in the env reproduces the states
    from sim.env import BremenSimEnv

    sent = [
        np.asarray(m.data)
        for t, m in msgs
        if t == "/bremen/command" and (parse_tag(m.layout.dim[0].label) or (0,))[0] == 1
    ]
    env = BremenSimEnv("halfcheetah", backend="mujoco")
    obs, _ = env.reset(seed=4 + 1)
    np.testing.assert_allclose(d["obs"][0], obs, rtol=1e-5, atol=1e-5)
    for k in range(60):
        obs, *_ = env.step(sent[k])
        np.testing.assert_allclose(d["next_obs"][k], obs, rtol=1e-5, atol=1e-5)
    env.close()


def test_approved_policy_runs_and_unapproved_is_refused(tmp_path, approved):
    require_mujoco()
    from bremen_robot.registry import ApprovalError

    cfg = write_collect_config(tmp_path, episode_steps=30, robot=str(approved["robot"]))
    res = collect(
        cfg,
        policy=approved["id"],
        episodes=1,
        out=tmp_path / "bag",
        workspace=approved["workspace"],
        timeout_s=120,
    )
    assert res.policy_sha256 == approved["sha256"] and res.deployment == 1 and res.steps == 30
    d = ingest_bags([tmp_path / "bag"])
    assert set(d["policy_sha256"]) == {approved["sha256"]}
    # the deterministic mean + N(0, 0.1^2) noise (the config's noise_sigma): what the policy asked
    # for, minus the artifact's mean on the same logged state, must look like that noise
    raw = {
        parse_tag(m.layout.dim[0].label): np.asarray(m.data)
        for t, m in bag_messages(tmp_path / "bag")
        if t == "/bremen/raw_action"
    }
    assert len(raw) == 30 == len(d["obs"])  # one per state; the rows are in state-stamp order
    from bremen_robot.policy.artifact import load_artifact

    mean = load_artifact(approved["artifact"]).act(d["obs"]).astype(np.float64)
    noise = np.stack([raw[k] for k in sorted(raw)]) - mean  # (30, 6): 180 draws
    # 180 draws of N(0, 0.1^2): the sample std is within 20% of 0.1 (about 3.8 standard errors)
    # and the mean within 0.03 (4 standard errors) unless the noise is wrong
    assert 0.08 < noise.std() < 0.12, noise.std()
    assert abs(noise.mean()) < 0.03, noise.mean()
    assert (noise.std(axis=0) > 0.04).all()  # every joint gets its own noise
    # an artifact the registry never saw is refused before any process starts
    from bremen_robot.policy.untrained import export_untrained_policy

    other = export_untrained_policy(tmp_path / "other", hidden=(8,))
    with pytest.raises(ApprovalError):
        collect(cfg, policy=str(other), episodes=1, out=tmp_path / "bag2", workspace=approved["workspace"])
    assert not (tmp_path / "bag2").exists()


@pytest.fixture
def robot_graph(tmp_path, procs, probe):
    """policy_runner alone (sim: none, realtime 20 Hz); the probe plays the robot."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool, Float64MultiArray

    from bremen_robot.ros import topics as T

    cfg = write_collect_config(
        tmp_path, sim="none", mode="realtime", log_topics=[T.COMMAND], episode_steps=100000
    )
    specs = collect_specs(cfg, policy="random", workspace=tmp_path / "ws")
    runner = next(s for s in specs if s.name == "policy_runner")
    proc = spawn_spec(runner, tmp_path, procs)
    pub = probe.node.create_publisher(JointState, T.JOINT_STATES, T.qos("state_pub"))
    estop = probe.node.create_publisher(Bool, T.ESTOP, T.qos("latched"))
    cmds = probe.record(Float64MultiArray, T.COMMAND, T.qos("command"))
    safety = probe.record(DiagnosticArray, T.SAFETY, T.qos("safety"))
    names = ["rootx", "rootz", "rooty", *TASK.action_names]

    def send(position=None, velocity=None, names_=None):
        m = JointState()
        m.header.stamp = probe.node.get_clock().now().to_msg()
        m.name = list(names_ or names)
        m.position = list(np.zeros(9) if position is None else position)
        m.velocity = list(np.zeros(9) if velocity is None else velocity)
        pub.publish(m)

    def stream(seconds, **kw):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            send(**kw)
            probe.spin_for(0.02)

    from std_srvs.srv import Trigger

    probe.activate()  # a lifecycle node: commands only once active
    assert probe.spin_until(lambda: pub.get_subscription_count() > 0, 30), "runner did not come up"
    stream(0.3)
    assert probe.call(Trigger, T.START_EPISODE).success
    return {"proc": proc, "send": send, "stream": stream, "cmds": cmds, "safety": safety, "estop": estop}


def reasons_since(safety, t0):
    return [s.name.rsplit("/", 1)[-1] for t, m in safety if t >= t0 for s in m.status]


def acting(cmds, t0):
    """Commands of the episode after t0 that are not the safe (zero) command."""
    return [
        m
        for t, m in cmds
        if t >= t0 and np.abs(np.asarray(m.data)).max() > 0 and parse_tag(m.layout.dim[0].label)[0] > 0
    ]


def test_nan_and_wrong_length_states_are_made_safe_and_logged(robot_graph, probe):
    g = robot_graph
    g["stream"](0.5)
    assert acting(g["cmds"], 0), "the runner never acted on good states"
    for bad in ({"position": np.full(9, np.nan)}, {"position": np.zeros(4)}):
        t0 = time.monotonic()
        g["stream"](0.4, **bad)
        after = [m for t, m in g["cmds"] if t > t0 + 0.15]
        assert after and all(np.all(np.asarray(m.data) == 0.0) for m in after)
        assert {"nan_observation", "shape_mismatch"} & set(reasons_since(g["safety"], t0))
        t1 = time.monotonic()
        g["stream"](0.4)  # the node keeps running and acts again on good states
        assert acting(g["cmds"], t1 + 0.1)
    assert g["proc"].poll() is None


def test_estop_latches_and_reset_service_clears_it(robot_graph, probe):
    from std_msgs.msg import Bool
    from std_srvs.srv import Trigger

    from bremen_robot.ros import topics as T

    g = robot_graph
    g["estop"].publish(Bool(data=True))
    g["stream"](0.3)
    g["estop"].publish(Bool(data=False))  # releasing the button does not clear the latch
    t0 = time.monotonic()
    g["stream"](0.5)
    assert not acting(g["cmds"], t0)
    assert "estop" in reasons_since(g["safety"], t0)
    res = probe.call(Trigger, T.RESET_ESTOP)
    assert res.success, res.message
    t1 = time.monotonic()
    g["stream"](0.5)
    assert acting(g["cmds"], t1)


def test_stale_states_give_the_safe_command_within_the_age_limit(robot_graph, probe):
    g = robot_graph
    g["stream"](0.4)
    t_last = time.monotonic()
    g["send"]()
    probe.spin_for(0.6)  # no more states: the robot's driver went quiet
    safe = [t for t, m in g["cmds"] if t > t_last and np.all(np.asarray(m.data) == 0.0)]
    assert safe, "no safe command after the states stopped"
    # max_observation_age 0.15 s + one 0.05 s tick, + slack for a busy 2-core machine
    assert safe[0] - t_last < 0.15 + 0.05 + 0.25
    assert "stale_observation" in reasons_since(g["safety"], t_last)


def test_paused_sim_bridge_leads_to_safe_commands(tmp_path, procs, probe):
    """realtime graph with sim_bridge; SIGSTOP it and the runner's watchdog takes over."""
    require_mujoco()
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Float64MultiArray
    from std_srvs.srv import Trigger

    from bremen_robot.ros import topics as T

    cfg = write_collect_config(tmp_path, mode="realtime", log_topics=[T.COMMAND], episode_steps=100000)
    specs = {s.name: s for s in collect_specs(cfg, policy="random", workspace=tmp_path / "ws")}
    sim = spawn_spec(specs["sim_bridge"], tmp_path, procs)
    spawn_spec(specs["policy_runner"], tmp_path, procs)
    probe.activate()  # a lifecycle node: commands only once active
    cmds = probe.record(Float64MultiArray, T.COMMAND, T.qos("command"))
    safety = probe.record(DiagnosticArray, T.SAFETY, T.qos("safety"))
    assert probe.call(Trigger, T.START_EPISODE, timeout=30).success
    assert probe.spin_until(lambda: len(acting(cmds, 0)) >= 5, 20), "the graph never acted"
    sim.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    probe.spin_for(0.8)
    sim.send_signal(signal.SIGCONT)
    safe = [t for t, m in cmds if t > t0 and np.all(np.asarray(m.data) == 0.0)]
    assert safe and safe[0] - t0 < 0.15 + 0.05 + 0.3
    assert "stale_observation" in reasons_since(safety, t0)
    t1 = time.monotonic()
    assert probe.spin_until(lambda: len(acting(cmds, t1)) >= 3, 10), "did not resume after the pause"


def test_killing_the_logger_mid_episode_keeps_earlier_episodes(tmp_path):
    require_mujoco()
    cfg = write_collect_config(tmp_path, mode="realtime", episode_steps=30)
    res = collect(
        cfg,
        random=True,
        episodes=4,
        out=tmp_path / "bag",
        workspace=tmp_path / "ws",
        timeout_s=120,
        hooks=KillAfterSteps("trajectory_logger", 70),
    )
    assert res.logger_crashed
    eps = sorted(json.loads(read_custom(tmp_path / "bag")["bremen.episodes"]), key=lambda e: e["id"])
    # the kill lands in the episode after the 70th step: the third, or a later one when the bag
    # lagged under load (the hook waits until every finished episode is stored)
    *closed, killed = eps
    assert len(closed) >= 2 and [e["status"] for e in closed] == ["complete"] * len(closed)
    assert killed["status"] == "incomplete"
    d = ingest_bags([tmp_path / "bag"])
    assert d["report"][0]["episodes"] == len(closed) and d["report"][0]["skipped_incomplete"] == 1
    # realtime: the simulator's clock ends an episode after 30 physics steps; the runner acted
    # on one new state per step, and every one of them is in the closed segments, including the
    # tail that a lagging logger received after the stop event (runs that closed the segment on
    # the next start event lost up to 19 of 52 here under load)
    acted = sum(e["steps"] for e in closed)
    assert len(d["obs"]) == acted and 20 * len(closed) <= acted <= 30 * len(closed)
    assert d["timeouts"].sum() == len(closed)


def test_lockstep_sim_bridge_steps_only_on_the_answer_and_resends_lost_states(tmp_path, procs, probe):
    """The lockstep protocol, with the probe as policy_runner: tags, /clock, resend after a loss."""
    require_mujoco()
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String

    from bremen_robot.ros import topics as T
    from bremen_robot.ros.topics import make_tag

    cfg = write_collect_config(tmp_path, lockstep_resend_s=0.3, episode_steps=3)
    sim = next(s for s in collect_specs(cfg, policy="random") if s.name == "sim_bridge")
    spawn_spec(sim, tmp_path, procs)
    states = probe.record(JointState, T.JOINT_STATES, T.qos("state_pub"))
    clock = probe.record(Clock, T.CLOCK, T.qos("clock"))
    events = probe.record(String, T.EPISODE, T.qos("episode"))
    ev_pub = probe.node.create_publisher(String, T.EPISODE, T.qos("episode"))
    cmd_pub = probe.node.create_publisher(Float64MultiArray, T.COMMAND, T.qos("command"))
    matched = lambda: ev_pub.get_subscription_count() > 0 and cmd_pub.get_subscription_count() > 0  # noqa: E731
    assert probe.spin_until(matched, 30)

    def stamp(m):
        return m.header.stamp.sec * 10**9 + m.header.stamp.nanosec

    # before episode 1 the startup state comes again every lockstep_resend_s: a subscriber that
    # matched late (the logger) hears a state before the first episode starts
    assert probe.spin_until(lambda: len(states) >= 2, 5)
    assert len({stamp(m) for _, m in states}) == 1
    ev_pub.publish(String(data=json.dumps({"event": "start", "id": 1, "source": "policy_runner"})))

    assert probe.spin_until(lambda: any('"reset"' in m.data for _, m in events), 10)
    reset = next(json.loads(m.data) for _, m in events if '"reset"' in m.data)
    assert probe.spin_until(lambda: any(stamp(m) == reset["stamp_ns"] for _, m in states), 5)
    t0 = time.monotonic()
    # no answer: the same state comes again after lockstep_resend_s
    assert probe.spin_until(lambda: sum(stamp(m) == reset["stamp_ns"] for _, m in states) >= 2, 3)
    assert time.monotonic() - t0 > 0.2

    def command(tag):
        m = Float64MultiArray()
        m.layout.dim = [MultiArrayDimension(label=tag, size=6, stride=6)]
        m.data = [0.0] * 6
        cmd_pub.publish(m)

    n_states = len(states)
    command(make_tag(1, reset["stamp_ns"] - 1))  # answers no state: held, not stepped
    probe.spin_for(0.15)
    assert all(stamp(m) == reset["stamp_ns"] for _, m in states[n_states:])
    for k in range(3):  # three answers -> three physics steps, then the episode's time limit
        current = max(stamp(m) for _, m in states)
        command(make_tag(1, current))
        assert probe.spin_until(lambda c=current: max(stamp(m) for _, m in states) > c, 5), f"step {k}"
    period_ns = int(round(TASK.dt * 1e9))
    assert max(stamp(m) for _, m in states) == reset["stamp_ns"] + 3 * period_ns
    assert probe.spin_until(lambda: any('"end"' in m.data for _, m in events), 5)
    end = next(json.loads(m.data) for _, m in events if '"end"' in m.data)
    assert end["reason"] == "time_limit" and end["steps"] == 3
    # /clock is best effort, keep-last 1 (a slow reader may skip values): it follows the physics
    assert probe.spin_until(
        lambda: (
            bool(clock)
            and clock[-1][1].clock.sec * 10**9 + clock[-1][1].clock.nanosec
            == reset["stamp_ns"] + 3 * period_ns
        ),
        5,
    )
    seen = [m.clock.sec * 10**9 + m.clock.nanosec for _, m in clock]
    assert seen == sorted(seen)
