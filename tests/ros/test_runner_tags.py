"""policy_runner's step logic without ROS, on stamps and tags: a command's tag names the state
it answers, a stamp that goes back cuts the episode, and in lockstep the return is scored with
the command the simulator says it stepped with."""

from __future__ import annotations

import numpy as np
import pytest

import safety
from bremen_robot.ros.runner_core import RunnerCore
from bremen_robot.ros.topics import parse_tag
from tests.ros.conftest import CONFIGS
from tests.ros.test_runner_core import NAMES, TASK, make, state


def test_commands_that_answer_one_state_carry_different_tags_and_a_repeat_the_same():
    """Lockstep: the policy's command and a watchdog's safe command for the same state must be
    told apart (sim_bridge names the one it stepped with); a re-sent state's identical answer
    keeps its tag."""
    from bremen_robot.ros.topics import parse_command_id

    core = make(policy=lambda o: np.full(6, 0.5))
    core.start_episode(0)
    q, qd = state(np.random.default_rng(4))
    first = core.step(NAMES, q, qd, 10**9, 1.0, 1.0, 0)
    again = core.step(NAMES, q, qd, 10**9, 1.0, 1.0, 0)  # sim_bridge re-sent the state
    assert again.tag == first.tag and np.array_equal(again.command, first.command)
    stop = core.watchdog(5.0)  # the simulator did not answer: the safe command, same state
    assert stop is not None and stop.safe
    a, b = parse_command_id(first.tag), parse_command_id(stop.tag)
    assert a is not None and b is not None
    assert a[:2] == b[:2] == (1, 10**9) and a[2] is not None and b[2] is not None and a[2] != b[2]


@pytest.mark.parametrize("lockstep", [False, True], ids=["realtime", "lockstep"])
def test_a_state_stamp_that_goes_back_cuts_the_episode_before_it(lockstep):
    """Realtime, a wall clock that steps back mid-episode makes the stamps go back; ingest pairs
    by stamp order, so no transition may span the step: the episode ends at the last state
    before it, as a cut (complete, its transitions kept), and says why."""
    core = make(policy=lambda o: np.full(6, 0.5), lockstep=lockstep, episode_steps=100)
    core.start_episode(0)
    q, qd = state(np.random.default_rng(4))
    for k in (10, 11, 12):  # three states: two transitions
        out = core.step(NAMES, q, qd, k * 10**9, float(k), float(k), 0)
        assert not out.events and parse_tag(out.tag) == (1, k * 10**9)
    back = core.step(NAMES, q, qd, 11 * 10**9 + 5, 13.0, 13.0, 7)  # 1 s minus 5 ns earlier
    (stop,) = back.events
    assert (stop["event"], stop["reason"], stop["complete"]) == ("stop", "stamp_went_back", True)
    assert (stop["steps"], stop["first_obs_stamp_ns"], stop["last_obs_stamp_ns"]) == (
        2,
        10 * 10**9,
        12 * 10**9,
    )
    assert "went back by 0.999999995 s" in stop["detail"] and core.episode is None
    assert parse_tag(back.tag)[0] == -1  # the state after the step belongs to no episode
    if lockstep:
        assert back.command is None
    else:
        assert back.safe and np.allclose(back.command, 0.0)
    # the next episode runs on the new clock
    core.start_episode(0)
    for k in (1, 2):
        out = core.step(NAMES, q, qd, k * 10**9, 20.0 + k, 20.0 + k, 0)
        assert not out.events and parse_tag(out.tag) == (2, k * 10**9) and not out.safe
    assert core.episode is not None and core.episode.steps == 1


def test_a_repeated_stamp_is_not_a_step_back():
    core = make(policy=lambda o: np.full(6, 0.5), lockstep=False)
    core.start_episode(0)
    q, qd = state(np.random.default_rng(4))
    for k in (1, 2, 2, 2, 3):  # realtime ticks faster than the states come
        assert not core.step(NAMES, q, qd, k * 10**9, float(k), float(k), 0).events
    assert core.episode is not None and core.episode.steps == 2


def test_the_runner_logs_why_an_episode_was_cut_as_a_warning():
    from types import SimpleNamespace

    from bremen_robot.ros.policy_runner import PolicyRunner

    logged: list[tuple[str, str]] = []
    log = SimpleNamespace(
        info=lambda m: logged.append(("info", m)), warning=lambda m: logged.append(("warning", m))
    )
    runner = SimpleNamespace(
        out=SimpleNamespace(event=lambda e: None),
        core=SimpleNamespace(finished=False),
        _done_sent=False,
        node=SimpleNamespace(get_logger=lambda: log),
    )
    stop = {"event": "stop", "id": 4, "reason": "time_limit", "steps": 9, "return": 1.5, "interventions": 0}
    PolicyRunner._publish_events(
        runner, [stop, {**stop, "reason": "stamp_went_back", "detail": "a clock step"}]
    )
    assert logged == [
        ("info", "episode 4 time_limit: 9 steps, return 1.500, 0 interventions"),
        ("warning", "episode 4 stamp_went_back: 9 steps, return 1.500, 0 interventions; a clock step"),
    ]


def test_a_tick_the_watchdog_stopped_sends_the_safe_command_and_the_next_one_starts_from_rest():
    """Realtime: the tick watchdog sent the safe command while this tick ran (tick_watchdog).
    The tick's own command, computed on a state that is now too old, must not undo that stop;
    nothing latches, and since the robot got the safe command, the next command is limited
    from rest, not from the policy's last command."""
    import yaml

    data = yaml.safe_load((CONFIGS / "safety" / "halfcheetah.yaml").read_text())
    data["max_step"] = 0.1  # a command may change by 0.1 per step: ramps show where it starts
    limits = safety.parse_limits(data, joint_names=list(TASK.action_names))
    core = RunnerCore(
        task=TASK,
        joint_order=TASK.action_names,
        shield=safety.SafetyShield(limits),
        policy=lambda o: np.full(6, 0.5),
        action_low=TASK.action_low,
        action_high=TASK.action_high,
    )
    core.start_episode(0)
    zeros = np.zeros(9)
    for k in range(1, 7):  # 0.1, 0.2, ... up to the policy's 0.5
        out = core.step(NAMES, zeros, zeros, k * 10**9, float(k), float(k), 0)
    assert np.allclose(out.command, 0.5) and not out.safe
    assert core.after_watchdog(out, None) is out  # no stop: unchanged
    before = core.episode.interventions
    stop = "tick watchdog: no command for 0.300 s after a policy command"
    sent = core.after_watchdog(out, stop)
    assert sent.safe and np.allclose(sent.command, 0.0) and sent.tag == out.tag
    iv = sent.interventions[-1]
    assert iv.reason == "stale_observation" and iv.detail.startswith(stop) and iv.joint is None
    assert core.episode.interventions == before + 1 and not core.shield.state.estop_latched
    nxt = core.step(NAMES, zeros, zeros, 7 * 10**9, 7.0, 7.0, 0)
    assert not nxt.safe and np.allclose(nxt.command, 0.1)  # acting again, ramping up from 0


@pytest.mark.parametrize("stepped", ["policy", "safe", "no echo"])
def test_lockstep_return_uses_the_command_the_simulator_names(stepped):
    """Lockstep: the runner's policy command and, after its watchdog fired, the safe command both
    answer one state; the next state's echo names the one the physics stepped with, and the
    episode's return scores that one (as ingest does), not none of them."""
    core = make(policy=lambda o: np.full(6, 0.5))
    core.start_episode(0)
    rng = np.random.default_rng(7)
    q1, qd1 = state(rng)
    q2, qd2 = state(rng)
    first = core.step(NAMES, q1, qd1, 10**9, 1.0, 1.0, 0)
    stop = core.watchdog(5.0)  # the simulator was slow to answer
    assert stop is not None and np.allclose(stop.command, 0.0) and np.allclose(first.command, 0.5)
    echo = {"policy": first.tag, "safe": stop.tag, "no echo": ""}[stepped]
    core.step(NAMES, q2, qd2, 2 * 10**9, 6.0, 6.0, 0, echo=echo)
    o1, o2 = core.observe(NAMES, q1, qd1), core.observe(NAMES, q2, qd2)
    action = np.zeros(6) if stepped == "safe" else np.full(6, 0.5)  # without an echo: the first
    expected = float(TASK.reward(o1[None], action[None], o2[None])[0])
    assert core.episode.steps == 1 and core.episode.ret == pytest.approx(expected)
    other = np.full(6, 0.5) if stepped == "safe" else np.zeros(6)
    assert expected != pytest.approx(float(TASK.reward(o1[None], other[None], o2[None])[0]))


@pytest.mark.parametrize("stepped", ["first", "again", "no echo"])
def test_lockstep_a_state_answered_again_after_a_stop_keeps_every_answer(stepped):
    """Lockstep: the watchdog fired, then sim_bridge re-sent the state and the runner answered it
    anew (no cache replay after a stop). The simulator may step with the first answer or the new
    one; the return scores the one it names (without an echo the first, as ingest does)."""
    answers = iter([np.full(6, 0.5), np.full(6, 0.9)])
    core = make(policy=lambda o: next(answers))
    core.start_episode(0)
    rng = np.random.default_rng(8)
    q1, qd1 = state(rng)
    q2, qd2 = state(rng)
    first = core.step(NAMES, q1, qd1, 10**9, 1.0, 1.0, 0)
    assert core.watchdog(5.0) is not None
    again = core.step(NAMES, q1, qd1, 10**9, 5.1, 5.1, 0)  # re-sent, answered anew
    assert again.tag != first.tag and np.allclose(again.command, 0.9) and np.allclose(first.command, 0.5)
    echo = {"first": first.tag, "again": again.tag, "no echo": ""}[stepped]
    core.step(NAMES, q2, qd2, 2 * 10**9, 5.2, 5.2, 0, echo=echo)
    o1, o2 = core.observe(NAMES, q1, qd1), core.observe(NAMES, q2, qd2)
    action = again.command if stepped == "again" else first.command
    expected = float(TASK.reward(o1[None], action[None], o2[None])[0])
    assert core.episode.steps == 1 and core.episode.ret == pytest.approx(expected)
