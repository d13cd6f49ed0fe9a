"""Hand mutation read of reset_node's logic (no ROS node: the handlers on a bare object with
stand-in publishers): each test pins one decision a one-line change left unnoticed by the rest of
the suite. Expected figures are worked out by hand in the comment beside them."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

import safety
from bremen_robot.robot_config import load_robot_config
from bremen_robot.ros.reset_node import ResetNode, failure_line
from bremen_robot.tasks import get_task
from tests.ros.conftest import CONFIGS

# configs/robots/panda.yaml reset.home; the reset runs at 20 Hz (0.05 s periods)
HOME = [0.0, -0.7854, 0.0, -2.3562, 0.0, 1.5708, 0.7854]
JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))


class _Pub:
    def __init__(self) -> None:
        self.msgs: list[Any] = []

    def publish(self, msg: Any) -> None:
        self.msgs.append(msg)

    def get_subscription_count(self) -> int:
        return 1


class _Future:
    def __init__(self, result: Any) -> None:
        self._result = result

    def result(self) -> Any:
        return self._result

    def add_done_callback(self, cb: Any) -> None:
        self.cb = cb


class _Client:
    def __init__(self) -> None:
        self.calls = 0

    def service_is_ready(self) -> bool:
        return True

    def call_async(self, request: Any) -> _Future:
        self.calls += 1
        return _Future(None)


_LOG = SimpleNamespace(info=lambda m: None, warning=lambda m: None, error=lambda m: None)


def make_node(state: str = "waiting", **reset: Any) -> ResetNode:
    """A ResetNode's logic with stand-ins for its publishers, client and logger."""
    robot = load_robot_config(CONFIGS / "robots" / "panda.yaml")
    node = object.__new__(ResetNode)
    node.cfg = robot.reset.model_copy(update=reset)
    node.joints = list(robot.joints)
    node.limits = safety.load_limits(robot.reset.limits, joint_names=node.joints)
    node._safety = safety
    node.task = get_task("panda_reach")
    node.rate = 20.0
    node.params = {"stop_grace_s": 0.5, "seed": 0, "ready_command_subscribers": 0}
    node.state, node.number, node.motion, node.episode_id = state, 0, None, None
    node.latest, node.logger_recording = None, True
    node.failed_at, node.failed, node.estopped, node.dry_run, node.done = None, None, False, False, False
    node._String, node._Dim, node._Trigger = SimpleNamespace, SimpleNamespace, SimpleNamespace
    node._Trigger = SimpleNamespace(Request=lambda: None)
    node._Array = lambda: SimpleNamespace(layout=SimpleNamespace(dim=[]), data=[])
    node.pub_cmd, node.pub_reset, node.pub_episode = _Pub(), _Pub(), _Pub()
    node.start_client = _Client()
    node.node = SimpleNamespace(
        get_logger=lambda: _LOG, get_clock=lambda: SimpleNamespace(now=lambda: SimpleNamespace(nanoseconds=5))
    )
    return node


def sent(node: ResetNode) -> list[tuple[str, list[float]]]:
    return [(m.layout.dim[0].label, list(m.data)) for m in node.pub_cmd.msgs]


def logged(node: ResetNode) -> list[dict[str, Any]]:
    out = []
    for m in node.pub_reset.msgs:
        e = json.loads(m.data)
        e.pop("stamp_ns")
        out.append(e)
    return out


def _evt(**payload: Any) -> SimpleNamespace:
    return SimpleNamespace(data=json.dumps({"source": "policy_runner", **payload}))


# ---------------------------------------------------------------- inputs


def test_an_estop_message_that_is_false_latches_nothing():
    node = make_node("resetting")
    node.motion = SimpleNamespace(shield=safety.SafetyShield(node.limits))
    node.on_estop(SimpleNamespace(data=False))
    assert node.estopped is False and node.motion.shield.state.estop_latched is False
    assert sent(node) == []


def test_the_runners_end_leaves_a_failed_reset_failed():
    node = make_node("failed")
    node.on_episode(_evt(event="done"))
    assert node.state == "failed"


@pytest.mark.parametrize(
    ("state", "stop_id", "finished", "expected"),
    [
        ("episode", 3, False, "episode"),  # the stop of another episode (4 runs)
        ("resetting", 4, False, "resetting"),  # a late stop of episode 4 while the next reset drives
        ("episode", 4, True, "done"),  # the last episode stopped: no more resets
        ("episode", 4, False, "next"),  # more episodes to come: the next reset
    ],
)
def test_only_the_stop_of_the_running_episode_moves_on(state, stop_id, finished, expected):
    node = make_node(state)
    node.episode_id = 4
    node.on_episode(_evt(event="stop", id=stop_id, finished=finished))
    assert node.state == expected


# ---------------------------------------------------------------- the loop


def test_after_a_failure_the_safe_command_goes_out_only_within_the_grace():
    # stop_grace_s 0.5: failed just now -> one safe command per tick; failed 10 s ago -> none
    node = make_node("failed")
    node.failed_at = time.monotonic()
    node.on_tick()
    assert sent(node) == [("safe", [0.0] * 7)]
    node.failed_at = time.monotonic() - 10.0
    node.on_tick()
    assert len(sent(node)) == 1


def test_the_next_reset_begins_after_an_episode_and_only_with_joint_states():
    node = make_node("next")
    began: list[float] = []
    node._begin = began.append  # type: ignore[method-assign]
    node.on_tick()  # no joint states yet
    assert began == []
    node.latest = (JOINTS, HOME, [0.0] * 7, time.monotonic())
    node.on_tick()
    assert len(began) == 1


def test_a_reset_begins_towards_its_own_pose_at_the_control_period():
    # poses used in turn: reset 1 takes poses[0] (home), not poses[1]; 20 Hz -> dt 0.05 s
    other = [0.1, -0.7854, 0.0, -2.3562, 0.0, 1.5708, 0.7854]
    node = make_node(box=None, poses=[HOME, other])
    node._begin(0.0)
    assert node.number == 1 and node.state == "resetting"
    assert node.motion.target.tolist() == HOME and node.motion.dt == 0.05
    assert logged(node) == [{"event": "start", "reset": 1, "target": HOME, "source": "reset_node"}]
    assert node.motion.shield.state.estop_latched is False


def test_a_reset_begun_after_an_estop_has_its_shield_latched():
    node = make_node()
    node.estopped = True
    node._begin(0.0)
    assert node.motion.shield.state.estop_latched is True
    assert node.motion.shield.state.estop_reason == "bremen/estop"


def test_a_reset_without_any_joint_states_fails_at_its_timeout():
    # begun 30 s ago with timeout_s 20, and never a joint state: failed, safe command, one line
    node = make_node()
    node._begin(time.monotonic() - 30.0)
    node._reset_tick(time.monotonic())
    reason = (
        "did not reach the start pose within timeout_s 20 s (no joint_states arrived; max_speed 0.5 rad/s)"
    )
    assert node.state == "failed"
    assert sent(node) == [("safe", [0.0] * 7)]
    end = logged(node)[-1]
    assert (end["event"], end["reset"], end["success"], end["reason"]) == ("end", 1, False, reason)
    assert end["operator_needed"] is True and end["message"] == failure_line(1, reason)


def test_a_failed_step_is_labelled_with_the_reset_then_the_safe_command_follows():
    # the state is 1 s old (stale, > 0.25): the step sends the safe command under reset:1, _fail
    # sends it again as "safe", and the next tick (within stop_grace_s) once more
    node = make_node()
    now = time.monotonic()
    node._begin(now)
    node.latest = (JOINTS, HOME, [0.0] * 7, now - 1.0)
    node._reset_tick(now)
    assert node.state == "failed" and node.failed is None and node.done is False
    assert sent(node) == [("reset:1", [0.0] * 7), ("safe", [0.0] * 7)]
    end = logged(node)[-1]
    assert (end["success"], end["operator_needed"]) == (False, True)
    node.on_tick()
    assert len(sent(node)) == 3


def test_a_dry_reset_that_arrives_ends_the_process():
    # at home, fresh, settle_s 0: arrived on the first tick
    node = make_node(settle_s=0.0, box=None)  # target: home
    node.dry_run = True
    now = time.monotonic()
    node._begin(now)
    node.latest = (JOINTS, HOME, [0.0] * 7, now)
    node._reset_tick(now)
    assert (node.state, node.done, node.failed) == ("done", True, None)
    assert node.start_client.calls == 0


def test_an_arrived_reset_asks_the_runner_and_announces_the_episode():
    node = make_node(settle_s=0.0, box=None)  # target: home
    now = time.monotonic()
    node._begin(now)
    node.latest = (JOINTS, HOME, [0.0] * 7, now)
    node._reset_tick(now)
    assert node.state == "starting" and node.start_client.calls == 1
    node._on_started(_Future(SimpleNamespace(success=True, message='{"id": 7}')))
    assert node.state == "episode" and node.episode_id == 7
    evt = json.loads(node.pub_episode.msgs[0].data)
    assert (evt["event"], evt["id"], evt["reset"], evt["stamp_ns"]) == ("reset", 7, 1, 5)


def test_a_start_answer_after_the_runner_ended_is_ignored():
    node = make_node("done")
    node._on_started(_Future(SimpleNamespace(success=True, message='{"id": 7}')))
    assert node.state == "done" and node.episode_id is None and node.pub_episode.msgs == []


def test_a_refusal_for_the_spent_budget_ends_quietly():
    node = make_node("starting")
    node._on_started(_Future(SimpleNamespace(success=False, message="episode budget spent")))
    assert node.state == "done" and node.pub_reset.msgs == [] and node.pub_cmd.msgs == []


def test_any_other_refusal_by_the_runner_fails_the_reset_for_an_operator():
    node = make_node("starting")
    node.number = 2
    node._on_started(_Future(SimpleNamespace(success=False, message="no policy loaded")))
    reason = "the runner refused to start the episode (no policy loaded)"
    assert node.state == "failed"
    assert logged(node) == [
        {
            "event": "end",
            "reset": 2,
            "success": False,
            "reason": reason,
            "operator_needed": True,
            "message": failure_line(2, reason),
            "source": "reset_node",
        }
    ]


def test_the_episode_extras_are_the_goal_only_and_drawn_per_episode():
    # panda_reach observes goal.x/y/z and ee.x/y/z besides joints: ee.* come from the joint states
    node = make_node()
    node.latest = (JOINTS, HOME, [0.0] * 7, 0.0)
    one, two = node._extras(1), node._extras(2)
    assert sorted(one) == ["goal.x", "goal.y", "goal.z"]
    assert one != two


def test_stopping_mid_reset_sends_the_safe_command_at_least_once_and_logs_the_end():
    # stop_grace_s 0: max(1, 0 x 20) = 1 safe command
    node = make_node("resetting")
    node.number = 2
    node.params["stop_grace_s"] = 0.0
    node.motion = SimpleNamespace(shield=safety.SafetyShield(node.limits))
    node.close()
    assert sent(node) == [("safe", [0.0] * 7)]
    assert logged(node) == [
        {"event": "end", "reset": 2, "success": False, "reason": "interrupted", "source": "reset_node"}
    ]


def test_stopping_a_failed_dry_reset_holds_the_safe_command():
    # stop_grace_s 0.1 at 20 Hz: int(0.1 x 20) = 2 safe commands, no end logged (already logged)
    node = make_node("failed")
    node.dry_run = True
    node.params["stop_grace_s"] = 0.1
    node.motion = SimpleNamespace(shield=safety.SafetyShield(node.limits))
    node._deliver_log = lambda: None  # type: ignore[method-assign]
    node.close()
    assert sent(node) == [("safe", [0.0] * 7)] * 2
    assert node.pub_reset.msgs == []


def test_a_failed_dry_reset_gives_its_line_to_the_process():
    node = make_node()
    node.dry_run = True
    node.number = 1
    node._fail("boom")
    assert (node.state, node.done, node.failed) == ("failed", True, failure_line(1, "boom"))
    assert sent(node) == [("safe", [0.0] * 7)]


def _position_limits() -> Any:
    """The Panda's joints on a position interface (hold), each range [-2, 2]."""
    return safety.parse_limits(
        {
            "robot": "panda",
            "command_interface": "position",
            "safe_command": "hold",
            "command_box": {"min": -3.0, "max": 3.0},
            "max_step": 0.05,
            "joints": {j: {"position": {"min": -2.0, "max": 2.0}} for j in JOINTS},
            "timing": {"control_period": 0.05, "max_observation_age": 0.25},
        }
    )


def test_a_position_reset_never_sends_a_hold_nobody_measured():
    """Until 2026-12-07 a reset stopped before its shield saw a state (an e-stop, the runner's
    halt in the tick between _begin and the first step) held the middle of each range, [0] * 7
    here, wherever the arm was. Now: nothing is sent while nothing was measured, and a state
    noted at _begin is held."""
    node = make_node("resetting")
    node.motion = SimpleNamespace(shield=safety.SafetyShield(_position_limits()))
    node._fail("the reset's shield intervened (estop: e-stop latched (bremen/estop))")
    assert sent(node) == []
    node = make_node("waiting")
    node.limits = _position_limits()
    at = [0.5, -0.7854, 0.0, -1.9, 0.0, 1.5708, 0.7854]
    node.latest = (JOINTS, at, [0.0] * 7, time.monotonic())
    node._begin(time.monotonic())
    node._fail("stopped")
    assert sent(node) == [("safe", at)]
