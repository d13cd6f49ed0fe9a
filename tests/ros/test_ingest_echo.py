"""Ingest keeps the command a lockstep step used: sim_bridge's echo of its tag (2026-12-06).

Lockstep, the policy's command for a state can be lost on the way to sim_bridge (best effort)
while the logger has it; the runner's watchdog then sends the safe command with the same state
stamp, and that one steps the physics. The state the step produced names it in its
``header.frame_id``; ingest must take that command, not the first one logged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bremen_robot.data.bag_ingest import _episode_steps, ingest_bags
from bremen_robot.ros import topics as T
from bremen_robot.ros.bagfile import SegmentedBagWriter, typestore
from tests.ros.test_ingest import NAMES, _header, _ser

JS, ARR, STR = "sensor_msgs/msg/JointState", "std_msgs/msg/Float64MultiArray", "std_msgs/msg/String"
T0, DT = 10**9, 5 * 10**7


def _write(w, topic, msgtype, stamp, msg):
    w.write("/" + topic, msgtype, stamp, _ser(msg, msgtype))


def lost_policy_command_bag(path: Path, *, echo: bool, seqs: bool = True, logged_safe: bool = True):
    """One lockstep episode of 3 steps, as the graph logs it. At state 1 the policy's command
    (seq 2) was logged but never reached the simulator; the watchdog's safe command (zeros, seq 3)
    stepped it. ``echo``: the states name the command they were stepped with (sim_bridge since
    2026-12-06); ``seqs``: tags with sequence numbers; ``logged_safe``: the logger has the safe one.
    Returns the policy's commands per state and the safe command."""
    ts = typestore()
    t = ts.types
    rng = np.random.default_rng(0)
    w = SegmentedBagWriter(path, {"bremen.task": "halfcheetah", "bremen.mode": "lockstep"})
    log_ns = iter(range(T0, T0 + 10**6))
    common = {"id": 1, "policy_sha256": "random", "deployment": 1, "source": "policy_runner"}

    def event(evt):
        _write(w, T.EPISODE, STR, next(log_ns), t[STR](data=json.dumps({**common, **evt})))

    def command(stamp, seq, data):
        tag = T.make_tag(1, stamp, seq if seqs else None)
        dim = t["std_msgs/msg/MultiArrayDimension"](label=tag, size=6, stride=6)
        layout = t["std_msgs/msg/MultiArrayLayout"](dim=[dim], data_offset=0)
        _write(w, T.COMMAND, ARR, next(log_ns), t[ARR](layout=layout, data=data))
        return tag

    def joint_states(stamp, stepped_with):
        q, qd = rng.normal(0, 0.1, 9), rng.normal(0, 1, 9)
        hdr = _header(ts, stamp, stepped_with if echo else "")
        js = t[JS](header=hdr, name=NAMES, position=q, velocity=qd, effort=np.zeros(0))
        _write(w, T.JOINT_STATES, JS, next(log_ns), js)

    w.episode(1, status="open")
    event({"event": "start"})
    policy, safe = [rng.uniform(-1, 1, 6) for _ in range(3)], np.zeros(6)
    stepped = ""
    seq = 0
    for k in range(4):
        stamp = T0 + k * DT
        joint_states(stamp, stepped)
        if k == 3:
            break
        seq += 1
        stepped = command(stamp, seq, policy[k])
        if k == 1:  # the policy's command is lost on the way; the watchdog's safe command steps
            seq += 1
            tag = T.make_tag(1, stamp, seq if seqs else None)
            if logged_safe:
                tag = command(stamp, seq, safe)
            stepped = tag
    event({"event": "stop", "reason": "time_limit", "complete": True, "last_obs_stamp_ns": T0 + 3 * DT})
    w.episode(1, status="complete", reason="time_limit")
    w.close()
    return policy, safe


def test_the_action_is_the_command_the_simulator_stepped_with(tmp_path):
    policy, safe = lost_policy_command_bag(tmp_path / "bag", echo=True)
    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    np.testing.assert_allclose(d["actions"], np.array([policy[0], safe, policy[2]]), rtol=1e-6)
    assert d["report"][0]["dropped_transitions"] == 0


def test_a_bag_without_the_echo_ingests_as_before_with_the_first_command(tmp_path):
    """Bags from before 2026-12-06 (two-part tags, no echo): the first command logged per state."""
    # an older runner and sim_bridge; a newer runner with an older sim_bridge; an older runner
    # with a newer sim_bridge (it echoes two-part tags, which name no one command)
    for seqs, echo in ((False, False), (True, False), (False, True)):
        path = tmp_path / f"bag-{seqs}-{echo}"
        policy, _ = lost_policy_command_bag(path, echo=echo, seqs=seqs)
        d = ingest_bags([path], "halfcheetah")
        np.testing.assert_allclose(d["actions"], np.array(policy), rtol=1e-6)


def test_a_step_whose_command_is_not_in_the_log_is_dropped(tmp_path):
    """The state names a command the logger lacks: the action is unknown, not the policy's."""
    policy, _ = lost_policy_command_bag(tmp_path / "bag", echo=True, logged_safe=False)
    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    np.testing.assert_allclose(d["actions"], np.array([policy[0], policy[2]]), rtol=1e-6)
    assert d["report"][0]["dropped_transitions"] == 1


def test_realtime_keeps_the_last_command_per_state_whatever_a_state_names():
    a, b = np.full(6, 0.1), np.full(6, 0.2)
    cmds = [(5, 1, a), (5, 2, b)]

    def actions(stepped_with, keep_last):
        return [x[1] for x in _episode_steps(cmds, stepped_with, keep_last)[0]]

    assert actions({5: 1}, True)[0] is b  # realtime: the last, as before
    assert actions({5: 1}, False)[0] is a and actions({5: 2}, False)[0] is b  # lockstep: the named
    assert actions({}, False)[0] is a  # lockstep without an echo: the first, as before
