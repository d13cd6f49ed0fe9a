"""Resets without ROS: the runner stays quiet between episodes when reset_node commands the robot,
the graph adds reset_node only on hardware, and ingest takes nothing from reset motion."""

from __future__ import annotations

import json

import numpy as np
import yaml

from bremen_robot.data.bag_ingest import ingest_bags
from bremen_robot.ros import topics as T
from bremen_robot.ros.bagfile import SegmentedBagWriter, typestore
from bremen_robot.ros.config import load_collect_config
from bremen_robot.ros.graph import collect_specs, stand_in_spec
from bremen_robot.tasks import get_task
from tests.ros.conftest import CONFIGS
from tests.ros.test_runner_core import make, state

PANDA = get_task("panda_reach")
NAMES = list(PANDA.action_names)


def test_between_episodes_the_runner_sends_only_the_stop_command_when_resets_drive():
    rng = np.random.default_rng(0)
    for idle, expected in ((True, [True, True, True]), (False, [True, False, False])):
        core = make(lockstep=False, episode_steps=2, idle_commands=idle)
        core.start_episode(0)
        outs = [core.step(*_s(rng, k)) for k in range(3)]  # first state, 2 steps: the stop
        assert outs[-1].events and outs[-1].events[0]["event"] == "stop"
        assert outs[-1].safe and np.all(outs[-1].command == 0.0)
        after = [outs[-1]] + [core.step(*_s(rng, k)) for k in (3, 4)]
        assert [o.command is not None for o in after] == expected


def _s(rng, k):
    from tests.ros.test_runner_core import NAMES as HC

    q, qd = state(rng)
    return HC, q, qd, (k + 1) * 10**9, 0.0, 0.0, 0


def test_reset_node_joins_only_the_hardware_graph(tmp_path):
    hw = load_collect_config(CONFIGS / "collect" / "panda-robot.yaml")
    specs = {s.name: s for s in collect_specs(hw, policy="random", episodes=3)}
    assert set(specs) == {"policy_runner", "reset_node", "trajectory_logger"}
    runner = specs["policy_runner"].parameters
    assert (runner["auto_start"], runner["wait_for_reset"], runner["idle_commands"]) == (False, True, False)
    assert specs["reset_node"].parameters["mode"] == "realtime"
    # the logger records bremen/command: no reset begins before it reads the reset's commands
    assert specs["reset_node"].parameters["ready_command_subscribers"] == 1
    assert specs["reset_node"].parameters["wait_for_logger"] is True  # the bag records joint_states
    sim = {s.name: s for s in collect_specs(CONFIGS / "collect" / "panda.yaml", policy="random", episodes=3)}
    assert "reset_node" not in sim and sim["policy_runner"].parameters["idle_commands"] is True
    assert sim["policy_runner"].parameters["auto_start"] is True
    stand_in = stand_in_spec(hw).parameters
    assert (stand_in["hardware_stand_in"], stand_in["mode"], stand_in["backend"]) == (
        True,
        "realtime",
        "mujoco",
    )
    # a robot without a reset section keeps the operator-triggered start on hardware
    data = yaml.safe_load((CONFIGS / "collect" / "halfcheetah-robot.yaml").read_text())
    data["robot"] = str(CONFIGS / "robots" / "halfcheetah.yaml")
    (tmp_path / "hc.yaml").write_text(yaml.safe_dump(data))
    hc = {s.name for s in collect_specs(tmp_path / "hc.yaml", policy="random", episodes=3)}
    assert "reset_node" not in hc


class _Matched:
    """A publisher or service client stand-in: how many readers it has matched, whether ready."""

    def __init__(self, count: int = 0) -> None:
        self.count = count

    def get_subscription_count(self) -> int:
        return self.count

    def service_is_ready(self) -> bool:
        return True


class _Msg:
    def __init__(self, payload: dict) -> None:
        self.data = json.dumps(payload)


def test_a_reset_begins_only_once_the_logger_records_states_and_reads_its_commands():
    """Loaded runs of test_resets_live found the first reset's commands missing from the bag (the
    logger had not matched bremen/command yet) and, once, the first episode's states (the logger
    matched the driver's joint_states 2 s late). on_tick waits for both: the logger's
    ``recording`` event and the command readers."""
    from bremen_robot.ros.reset_node import ResetNode

    node = object.__new__(ResetNode)  # the tick logic alone, without a ROS node
    node.state, node.dry_run, node.latest = "waiting", False, ((), [], [], 0.0)
    node.params = {"ready_command_subscribers": 1}
    node.pub_cmd, node.start_client = _Matched(0), _Matched()
    node.logger_recording = False
    began: list[float] = []
    node._begin = began.append  # type: ignore[method-assign]
    node.on_tick()
    node.pub_cmd.count = 1  # the logger reads commands, but has said nothing about states
    node.on_tick()
    assert began == []
    node.on_logger_event(_Msg({"event": "recording", "source": "policy_runner"}))  # not the logger
    node.on_logger_event(_Msg({"event": "start", "source": "trajectory_logger"}))
    node.on_tick()
    assert began == [] and node.logger_recording is False
    node.on_logger_event(_Msg({"event": "recording", "source": "trajectory_logger"}))
    node.on_tick()
    assert len(began) == 1


def _ser(msg, msgtype):
    return bytes(typestore().serialize_cdr(msg, msgtype))


def write_panda_bag(path, steps=5, resets=True):
    """Two Panda episodes as the hardware graph logs them: before each, a scripted reset (its
    states, its commands labelled reset:<n>, its events); the goal comes in reset_node's event."""
    ts = typestore()
    t = ts.types
    w = SegmentedBagWriter(path, {"bremen.task": "panda_reach", "bremen.mode": "realtime"})
    rng = np.random.default_rng(1)
    clock = [10**9]
    ep_states = {}

    def put(topic, msgtype, msg):
        clock[0] += 10**6
        w.write("/" + topic, msgtype, clock[0], _ser(msg, msgtype))

    def joint_state():
        clock[0] += 5 * 10**7
        st = clock[0]
        q, qd = rng.uniform(-0.5, 0.5, 7), rng.uniform(-0.1, 0.1, 7)
        hdr = t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=st // 10**9, nanosec=st % 10**9), frame_id=""
        )
        put(
            T.JOINT_STATES,
            "sensor_msgs/msg/JointState",
            t["sensor_msgs/msg/JointState"](
                header=hdr, name=NAMES, position=q, velocity=qd, effort=np.zeros(0)
            ),
        )
        return st, q, qd

    def command(label, a):
        dim = t["std_msgs/msg/MultiArrayDimension"](label=label, size=7, stride=7)
        lay = t["std_msgs/msg/MultiArrayLayout"](dim=[dim], data_offset=0)
        put(
            T.COMMAND,
            "std_msgs/msg/Float64MultiArray",
            t["std_msgs/msg/Float64MultiArray"](layout=lay, data=a),
        )

    def event(topic, e):
        put(topic, "std_msgs/msg/String", t["std_msgs/msg/String"](data=json.dumps(e)))

    for eid in (1, 2):
        if resets:
            event(T.RESET, {"event": "start", "reset": eid, "target": [0.0] * 7, "source": "reset_node"})
            for _ in range(4):  # the reset motion: states and commands, tagged as reset
                joint_state()
                command(f"{T.RESET_LABEL_PREFIX}{eid}", rng.uniform(-0.5, 0.5, 7))
            event(
                T.RESET,
                {
                    "event": "end",
                    "reset": eid,
                    "success": True,
                    "reason": "arrived",
                    "duration_s": 0.2,
                    "source": "reset_node",
                },
            )
        common = {"id": eid, "policy_sha256": "random", "deployment": 1, "source": "policy_runner"}
        event(T.EPISODE, {"event": "start", **common})
        w.episode(eid, status="open")
        goal = {"goal.x": 0.4 + 0.1 * eid, "goal.y": 0.0, "goal.z": 0.3}
        event(T.EPISODE, {"event": "reset", "id": eid, "extras": goal, "source": "reset_node"})
        states = [joint_state() for _ in range(steps + 1)]
        for st, _, _ in states[:-1]:
            command(T.make_tag(eid, st), rng.uniform(-1, 1, 7))
        event(
            T.EPISODE,
            {
                "event": "stop",
                "reason": "time_limit",
                "complete": True,
                "last_obs_stamp_ns": states[-1][0],
                **common,
            },
        )
        w.episode(eid, status="complete", reason="time_limit")
        ep_states[eid] = (states, goal)
    w.close()
    return ep_states


def test_a_bag_with_resets_ingests_to_exactly_the_episodes_transitions(tmp_path):
    from bremen_robot.tasks.reach import panda_ee_position

    eps = write_panda_bag(tmp_path / "bag", steps=5)
    d = ingest_bags([tmp_path / "bag"])
    assert len(d["obs"]) == 10 and d["episode_ids"].tolist() == [0] * 5 + [1] * 5
    for k, eid in enumerate((1, 2)):
        states, goal = eps[eid]
        rows = d["obs"][d["episode_ids"] == k]
        q = np.array([s[1] for s in states[:-1]])
        np.testing.assert_allclose(rows[:, :7], q, atol=1e-6)  # only the episode's own states
        np.testing.assert_allclose(rows[:, 14:17], [[goal["goal.x"], 0.0, 0.3]] * 5, atol=1e-6)
        np.testing.assert_allclose(rows[:, 17:20], panda_ee_position(q), atol=1e-5)


class _Log:
    def warning(self, *args, **kwargs) -> None:
        pass


class _Node:
    def get_logger(self) -> _Log:
        return _Log()


def test_before_its_first_joint_states_the_runner_leaves_a_driving_reset_alone():
    """DDS matches each reader on its own: reset_node can have the driver's states (and begin
    the first reset) while the runner has none yet. The runner's "no joint_states yet" safe
    command then went out every tick, interleaved with the reset's commands: zero, 0.5 rad/s,
    zero, ... is a velocity jump of the whole reset speed every period."""
    from bremen_robot.ros.policy_runner import PolicyRunner

    sent: list = []
    for idle, episode, expected in ((False, False, 0), (True, False, 3), (False, True, 3)):
        runner = object.__new__(PolicyRunner)  # the tick alone, without a ROS node
        runner._latest, runner.node = None, _Node()
        runner.core = make(lockstep=False, idle_commands=idle)
        if episode:  # an episode the runner runs: it owns the robot, states or not
            runner.core.start_episode(0)
        sent.clear()
        runner._publish = lambda out, start, arrival: sent.append(out.command)  # type: ignore[method-assign]
        for t in (1.0, 1.05, 1.1):
            runner.on_tick(t)
        assert len(sent) == expected, (idle, episode)
        assert all(np.all(c == 0.0) for c in sent)


class _Pub:
    def __init__(self) -> None:
        self.msgs: list = []

    def publish(self, msg) -> None:
        self.msgs.append(msg)


def test_a_reset_the_runner_halts_is_logged_as_ended():
    """Every reset's ``start`` on bremen/reset has its ``end`` (bremen collect counts resets by
    it); a reset cut short by the runner's halt ended without one, and close() did not add it."""
    from types import SimpleNamespace

    import safety
    from bremen_robot.robot_config import load_robot_config
    from bremen_robot.ros.reset_node import ResetNode

    robot = load_robot_config(CONFIGS / "robots" / "panda.yaml")
    node = object.__new__(ResetNode)  # the event handling alone, without a ROS node
    node.state, node.number, node.dry_run = "resetting", 3, False
    node.params = {"stop_grace_s": 0.0}
    node.rate, node.joints = 20.0, list(robot.joints)
    node.motion = type("M", (), {"shield": safety.SafetyShield(safety.load_limits(robot.reset.limits))})()
    node._String, node._Dim = SimpleNamespace, SimpleNamespace  # message stand-ins: no ROS needed
    node._Array = lambda: SimpleNamespace(layout=SimpleNamespace(dim=[]), data=[])
    node.pub_cmd, node.pub_reset = _Pub(), _Pub()
    node.on_episode(_Msg({"event": "halt", "reason": "stopped", "source": "policy_runner"}))
    node.close()
    assert [m.layout.dim[0].label for m in node.pub_cmd.msgs] == ["safe"]
    assert list(node.pub_cmd.msgs[0].data) == [0.0] * 7
    ends = [json.loads(m.data) for m in node.pub_reset.msgs]
    assert [(e["event"], e["reset"], e["success"]) for e in ends] == [("end", 3, False)]
    assert ends[0]["reason"] == "interrupted (policy_runner: halt)"


def test_an_estop_during_a_reset_sends_the_safe_command_at_once():
    """Not one control period later at the next tick: the e-stop callback itself sends it."""
    from types import SimpleNamespace

    import safety
    from bremen_robot.robot_config import load_robot_config
    from bremen_robot.ros.reset_node import ResetNode

    robot = load_robot_config(CONFIGS / "robots" / "panda.yaml")
    node = object.__new__(ResetNode)  # the callback alone, without a ROS node
    node.state, node.estopped = "resetting", False
    node.joints = list(robot.joints)
    node.motion = type("M", (), {"shield": safety.SafetyShield(safety.load_limits(robot.reset.limits))})()
    node._Dim = SimpleNamespace
    node._Array = lambda: SimpleNamespace(layout=SimpleNamespace(dim=[]), data=[])
    node.pub_cmd = _Pub()
    node.node = SimpleNamespace(get_logger=lambda: SimpleNamespace(warning=lambda m: None))
    node.on_estop(SimpleNamespace(data=True))
    assert [(m.layout.dim[0].label, list(m.data)) for m in node.pub_cmd.msgs] == [("safe", [0.0] * 7)]
    assert node.motion.shield.state.estop_reason == "bremen/estop"
    node.on_estop(SimpleNamespace(data=True))  # latched already: nothing more
    node.state = "waiting"
    node.estopped = False
    node.on_estop(SimpleNamespace(data=True))  # between resets the runner's stop holds the robot
    assert len(node.pub_cmd.msgs) == 1
