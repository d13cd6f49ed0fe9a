"""policy_runner's step logic (bremen_robot/ros/runner_core.py) against one-line mutants a hand
mutation read found the other RunnerCore tests let through (docs/testing.md, "Mutations the
suite catches"). Joint states are written by hand, so each return, step count and stop is worked
out by hand: HalfCheetah's reward is qvel.rootx (the state's first velocity here) minus
0.1 x |command|^2; Hopper's is qvel.rootx + 1 - 1e-3 x |command|^2, and it terminates when the
next state's rootz is at most 0.7."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import safety
from bremen_robot.ros.runner_core import RunnerCore
from bremen_robot.ros.topics import parse_tag
from bremen_robot.tasks import get_task
from tests.ros.conftest import CONFIGS
from tests.ros.test_runner_core import NAMES, make

ZEROS = np.zeros(9)


def vel(v: float) -> np.ndarray:
    """HalfCheetah joint velocities with qvel.rootx = v (NAMES starts with rootx)."""
    qd = np.zeros(9)
    qd[0] = v
    return qd


def cheetah_step(core: RunnerCore, k: int, v: float = 0.0, echo: str = ""):
    """One step on the state with stamp k s, at k s, moving forward at v."""
    return core.step(NAMES, ZEROS, vel(v), k * 10**9, float(k), float(k), 0, echo=echo)


def test_exploration_noise_is_sigma_times_the_seeded_generators_normals():
    """Mutants: the noise added twice (`a + 2 * sigma * n`), sigma squared (`sigma**2 * n`)."""
    outs = {}
    for sigma in (0.1, 0.3):
        core = make(policy=lambda o: np.zeros(6), noise_sigma=sigma, seed=11)
        core.start_episode(0)
        outs[sigma] = cheetah_step(core, 1)
    draws = np.random.default_rng([11, 0xB3E]).standard_normal(6)  # the runner's documented seeding
    assert np.allclose(outs[0.1].raw_action, 0.1 * draws) and np.allclose(outs[0.1].command, 0.1 * draws)
    # the same draws scaled by sigma: three times the noise for three times sigma
    assert np.allclose(outs[0.3].command, 3.0 * outs[0.1].command)


def test_the_return_scores_the_command_sent_not_the_policys_raw_action():
    """Mutant: `ep.prev = (obs, action)` (the transition's action is the policy's output before
    the shield). The policy asks 1.5 on every joint; the box sends 1.0. From rootx velocity 0 to
    2: 2 - 0.1 x 6 x 1.0 = 1.4 (the raw action would give 2 - 0.1 x 6 x 2.25 = 0.65)."""
    core = make(policy=lambda o: np.full(6, 1.5), episode_steps=100)
    core.start_episode(0)
    first = cheetah_step(core, 1, 0.0)
    assert np.allclose(first.raw_action, 1.5) and np.allclose(first.command, 1.0)
    cheetah_step(core, 2, 2.0)
    assert core.episode is not None and core.episode.steps == 1
    assert core.episode.ret == pytest.approx(1.4)


HOPPER = get_task("hopper")
HOPPER_NAMES = ("rootx", "rootz", "rooty") + tuple(HOPPER.action_names)


def hopper_core(limits: Any = None, lockstep: bool = True, **kw) -> RunnerCore:
    """A runner for Hopper's joints under ``limits`` (default: configs/safety/hopper.yaml)."""
    if limits is None:
        limits = safety.load_limits(CONFIGS / "safety" / "hopper.yaml", joint_names=list(HOPPER.action_names))
    return RunnerCore(
        task=HOPPER,
        joint_order=HOPPER.action_names,
        shield=safety.SafetyShield(limits),
        policy=lambda o: np.zeros(3),
        action_low=HOPPER.action_low,
        action_high=HOPPER.action_high,
        lockstep=lockstep,
        **kw,
    )


def hopper_state(height: float) -> np.ndarray:
    return np.array([0.0, height, 0.0, -0.1, -0.1, 0.0])


def test_termination_is_judged_on_the_state_stepped_to():
    """Mutants: `terminated(o, a, o)` (the state acted in), and `if term` never true. Heights
    0.65 (unhealthy, the first state), 1.25, 0.6: the step 0.65 -> 1.25 lands healthy and goes
    on; 1.25 -> 0.6 lands below 0.7 and ends the episode as terminated after 2 steps, return
    (0 + 1) x 2 = 2 (zero velocities, zero commands)."""
    core = hopper_core()
    core.start_episode(0)
    qd = np.zeros(6)
    outs = [
        core.step(HOPPER_NAMES, hopper_state(h), qd, k * 10**9, float(k), float(k), 0)
        for k, h in ((1, 0.65), (2, 1.25))
    ]
    assert all(not o.events and not o.safe for o in outs)
    last = core.step(HOPPER_NAMES, hopper_state(0.6), qd, 3 * 10**9, 3.0, 3.0, 0)
    (stop,) = last.events
    assert (stop["reason"], stop["steps"], stop["return"]) == ("terminated", 2, pytest.approx(2.0))
    assert core.episode is None


def test_the_step_budget_ends_an_episode_on_the_step_that_uses_it_up_across_episodes():
    """Mutants: the budget stop at `total + steps > max_steps`, or on `ep.steps` alone; `finished`
    at `total_steps > max_steps`, or with `total_steps = ep.steps`; `can_start` without its
    `finished` check. Budget 5: episode 1 takes 2
    transitions (states at 1, 2, 3 s) and is stopped; episode 2's third transition (states at
    10 ... 13 s) is the fifth: it ends there as `budget`, and the runner is finished."""
    core = make(policy=lambda o: np.zeros(6), episode_steps=100, max_steps=5)
    core.start_episode(0)
    for k in (1, 2, 3):
        assert not cheetah_step(core, k).events
    stop1 = core.end_episode("stopped", 0)
    assert stop1 is not None and (stop1["steps"], stop1["finished"]) == (2, False)
    assert core.can_start() == (True, "")
    core.start_episode(0)
    for k in (10, 11, 12):
        assert not cheetah_step(core, k).events
    (stop2,) = cheetah_step(core, 13).events
    assert (stop2["reason"], stop2["steps"], stop2["finished"]) == ("budget", 3, True)
    assert core.total_steps == 5 and core.can_start() == (False, "the collection budget is used up")


def test_max_episodes_finishes_the_runner_after_that_many_episodes():
    """Mutants: `episodes_done > max_episodes`; `episodes_done` never counted. Two episodes
    allowed: the first stop is not finished, the second is."""
    core = make(policy=lambda o: np.zeros(6), max_episodes=2)
    finished = []
    for _ in range(2):
        core.start_episode(0)
        stop = core.end_episode("stopped", 0)
        assert stop is not None
        finished.append(stop["finished"])
    assert finished == [False, True] and core.episodes_done == 2
    assert core.can_start() == (False, "the collection budget is used up")


def test_the_state_at_the_reset_stamp_is_the_episodes_first():
    """Mutants: `stamp_ns > reset_stamp_ns` (either of the two checks). Waiting for the reset,
    states at 5 and 6 s are not the episode's; the reset stamped 7 s makes the state at 7 s its
    first (tagged for episode 1, the policy's command), and 8 s its first transition."""
    core = make(policy=lambda o: np.full(6, 0.5), wait_for_reset=True, episode_steps=100)
    core.start_episode(0)
    assert cheetah_step(core, 5).command is None  # lockstep, before the reset: nothing
    process, events = core.on_sim_event({"event": "reset", "id": 1, "stamp_ns": 7 * 10**9}, 0)
    assert process is True and events == []
    assert cheetah_step(core, 6).command is None  # older than the reset
    first = cheetah_step(core, 7)
    assert parse_tag(first.tag) == (1, 7 * 10**9) and np.allclose(first.command, 0.5)
    cheetah_step(core, 8)
    stop = core.end_episode("stopped", 0)
    assert stop is not None and (stop["first_obs_stamp_ns"], stop["steps"]) == (7 * 10**9, 1)


def test_an_estop_during_a_tick_drops_its_transition_counts_once_and_gets_a_new_tag():
    """Mutants (before_publish): the episode's intervention not counted; `prev` kept (the next
    state's transition scored with the policy command the robot never got); the replaced
    command keeping the computed command's tag. Realtime, policy 0.5: rootx velocity 0 -> 1 scores
    1 - 0.1 x 6 x 0.25 = 0.85; the command computed on the state at 2 s is replaced, so the step
    to 3 s (velocity 2) adds nothing. Interventions: the replaced tick's e-stop and the next
    step's latched e-stop, 2."""
    core = make(policy=lambda o: np.full(6, 0.5), lockstep=False, episode_steps=100)
    core.start_episode(0)
    cheetah_step(core, 1, 0.0)
    out = cheetah_step(core, 2, 1.0)
    assert core.episode is not None and core.episode.ret == pytest.approx(0.85)
    flag = threading.Event()
    flag.set()
    sent = core.before_publish(out, flag)
    assert sent.safe and np.allclose(sent.command, 0.0)
    assert sent.tag != out.tag and parse_tag(sent.tag) == parse_tag(out.tag) == (1, 2 * 10**9)
    after = cheetah_step(core, 3, 2.0)
    assert after.safe and [iv.reason for iv in after.interventions] == ["estop"]
    assert core.episode.steps == 2 and core.episode.ret == pytest.approx(0.85)
    assert core.episode.interventions == 2


def test_a_tick_the_watchdog_stopped_leaves_no_transition_and_one_intervention():
    """Mutants (after_watchdog): the episode's intervention not counted; `prev` kept. As above:
    0.85 from the first step; the stopped tick's command never reached the robot, so the step
    to 3 s adds nothing; one `stale_observation` intervention in the episode."""
    core = make(policy=lambda o: np.full(6, 0.5), lockstep=False, episode_steps=100)
    core.start_episode(0)
    cheetah_step(core, 1, 0.0)
    out = cheetah_step(core, 2, 1.0)
    sent = core.after_watchdog(out, "tick watchdog: no command for 0.300 s")
    assert sent.safe and np.allclose(sent.command, 0.0)
    assert core.episode is not None and core.episode.interventions == 1
    after = cheetah_step(core, 3, 2.0)
    assert not after.safe and np.allclose(after.command, 0.5)
    assert core.episode.steps == 2 and core.episode.ret == pytest.approx(0.85)
    assert core.episode.interventions == 1


def test_a_watchdog_stop_with_nothing_to_publish_publishes_nothing():
    """Mutant: after_watchdog turns a tick that sent nothing into the safe command (`cmd = safe`).
    Realtime between episodes with `idle_commands=False` the tick sends nothing; a watchdog stop
    during it adds an intervention and still sends nothing."""
    core = make(policy=lambda o: np.full(6, 0.5), lockstep=False, idle_commands=False)
    out = cheetah_step(core, 1)
    assert out.command is None
    sent = core.after_watchdog(out, "tick watchdog: no command for 0.300 s")
    assert sent.command is None and [iv.reason for iv in sent.interventions] == ["stale_observation"]


def test_the_realtime_observation_watchdog_drops_the_transition_and_counts_its_intervention():
    """Mutants (watchdog): realtime `prev` kept after the watchdog's safe command; the episode's
    interventions not counted. The states stop coming after 2 s: at 5 s the watchdog sends the
    safe command (one `stale_observation`); the state at 6 s (velocity 3) scores nothing, since
    the robot got the safe command, not the policy's 0.5. Return 0.85, as above."""
    core = make(policy=lambda o: np.full(6, 0.5), lockstep=False, episode_steps=100)
    core.start_episode(0)
    cheetah_step(core, 1, 0.0)
    cheetah_step(core, 2, 1.0)
    stop = core.watchdog(5.0)
    assert stop is not None and stop.safe and np.allclose(stop.command, 0.0)
    assert [iv.reason for iv in stop.interventions] == ["stale_observation"]
    assert core.episode is not None and core.episode.interventions == 1
    core.step(NAMES, ZEROS, vel(3.0), 6 * 10**9, 6.0, 6.0, 0)
    assert core.episode.steps == 2 and core.episode.ret == pytest.approx(0.85)


def test_every_intervention_of_a_step_is_counted():
    """Mutant: `ep.interventions += bool(out.interventions)` (one per step). The policy asks 1.5
    on all six joints: the command box clips each, six interventions in one step."""
    core = make(policy=lambda o: np.full(6, 1.5))
    core.start_episode(0)
    out = cheetah_step(core, 1)
    assert len(out.interventions) == 6
    assert core.episode is not None and core.episode.interventions == 6


def test_an_infinite_velocity_is_no_observation_and_scores_nothing():
    """Mutant: the observation's finite check `s != s` (NaN only, an inf passes). A state with
    rootx velocity inf is unusable: the safe command, and no transition is scored into it or out
    of it; the steps 0 -> inf -> 2 give return 0 and 2 steps (the middle state still counts as
    a step, the next state's transition has no action to score)."""
    core = make(policy=lambda o: np.zeros(6), episode_steps=100)
    core.start_episode(0)
    cheetah_step(core, 1, 0.0)
    bad = cheetah_step(core, 2, np.inf)
    assert bad.safe and np.allclose(bad.command, 0.0)
    cheetah_step(core, 3, 2.0)
    assert core.episode is not None and core.episode.steps == 2
    assert core.episode.ret == 0.0


def test_an_unreadable_first_state_is_not_the_episodes_and_the_next_readable_one_is():
    """Mutant: the `first_stamp_ns < 0` check dropped from the not-acting test (the runner acts
    on a state before the episode has its first one). Realtime: a NaN first state gets the idle
    safe command tagged for no episode and counts nothing; the state at 2 s is the first, the
    one at 3 s the first transition."""
    core = make(policy=lambda o: np.full(6, 0.5), lockstep=False, episode_steps=100)
    core.start_episode(0)
    bad = core.step(NAMES, np.full(9, np.nan), ZEROS, 10**9, 1.0, 1.0, 0)
    assert bad.safe and np.allclose(bad.command, 0.0) and bad.interventions == ()
    assert parse_tag(bad.tag)[0] == -1
    first = cheetah_step(core, 2)
    assert parse_tag(first.tag) == (1, 2 * 10**9) and not first.safe
    cheetah_step(core, 3)
    stop = core.end_episode("stopped", 0)
    assert stop is not None
    assert (stop["first_obs_stamp_ns"], stop["steps"], stop["interventions"]) == (2 * 10**9, 1, 0)


PANDA = get_task("panda_reach")
PANDA_NAMES = tuple(PANDA.action_names)


def test_a_lockstep_episodes_first_command_is_rate_limited_from_rest():
    """Mutant: `start_episode` without `shield.forget_commands()`. Lockstep sends nothing between
    episodes, so only the start forgets episode 1's last command (-1 rad/s on every joint).
    configs/safety/panda.yaml: joint 1 may change by 15 x 0.05 = 0.75 per period, joint 2 by
    7.5 x 0.05 = 0.375; from rest episode 2's first command is -0.75 and -0.375 (from -1 it
    would be -1)."""
    limits = safety.load_limits(CONFIGS / "safety" / "panda.yaml", joint_names=list(PANDA_NAMES))
    core = RunnerCore(
        task=PANDA,
        joint_order=PANDA_NAMES,
        shield=safety.SafetyShield(limits),
        policy=lambda obs: np.full(7, -1.0),
        action_low=PANDA.action_low,
        action_high=PANDA.action_high,
        lockstep=True,
        extras={"goal.x": 0.4, "goal.y": 0.0, "goal.z": 0.5},
    )
    q, qd = np.array([0.0, 0.0, 0.0, -1.5, 0.0, 1.8, 0.0]), np.zeros(7)
    core.start_episode(0)
    for t in range(1, 5):
        out = core.step(PANDA_NAMES, q, qd, t * 10**8, t * 0.1, t * 0.1, 0)
    assert np.allclose(out.command, -1.0)
    core.end_episode("stopped", 0)
    core.start_episode(0)
    first = core.step(PANDA_NAMES, q, qd, 5 * 10**8, 0.5, 0.5, 0)
    assert first.command[0] == pytest.approx(-0.75) and first.command[1] == pytest.approx(-0.375)


def test_a_second_reset_event_for_a_running_episode_changes_nothing():
    """Mutant: a `reset` event handled while the episode already runs (`and not ep.running`
    dropped). A repeated reset stamped 20 s must not move the episode's start: the state at 9 s
    is still its second transition, and the reset's extras are the first one's."""
    core = make(policy=lambda o: np.zeros(6), wait_for_reset=True, episode_steps=100)
    core.start_episode(0)
    assert core.on_sim_event({"event": "reset", "id": 1, "stamp_ns": 7 * 10**9, "extras": {"a": 1}}, 0)[0]
    cheetah_step(core, 7)
    cheetah_step(core, 8)
    again = core.on_sim_event({"event": "reset", "id": 1, "stamp_ns": 20 * 10**9, "extras": {"a": 2}}, 0)
    assert again == (False, [])
    out = cheetah_step(core, 9)
    assert parse_tag(out.tag) == (1, 9 * 10**9)
    assert core.episode is not None and core.episode.steps == 2 and core.episode.extras == {"a": 1.0}


def test_the_resets_extras_replace_the_configured_ones_in_the_observation():
    """Mutant: `observe` ignores the episode's extras (the configured goal always). The runner is
    configured with the goal (0.4, 0.0, 0.5); the simulator's reset names (0.7, -0.2, 0.3), and
    the observation's goal.x, goal.y, goal.z (entries 14 to 16) are those."""
    limits = safety.load_limits(CONFIGS / "safety" / "panda.yaml", joint_names=list(PANDA_NAMES))
    core = RunnerCore(
        task=PANDA,
        joint_order=PANDA_NAMES,
        shield=safety.SafetyShield(limits),
        policy=lambda obs: np.zeros(7),
        action_low=PANDA.action_low,
        action_high=PANDA.action_high,
        wait_for_reset=True,
        extras={"goal.x": 0.4, "goal.y": 0.0, "goal.z": 0.5},
    )
    q, qd = np.array([0.0, 0.0, 0.0, -1.5, 0.0, 1.8, 0.0]), np.zeros(7)
    assert np.allclose(core.observe(PANDA_NAMES, q, qd)[14:17], [0.4, 0.0, 0.5])
    core.start_episode(0)
    goal = {"goal.x": 0.7, "goal.y": -0.2, "goal.z": 0.3}
    assert core.on_sim_event({"event": "reset", "id": 1, "stamp_ns": 10**9, "extras": goal}, 0)[0]
    assert np.allclose(core.observe(PANDA_NAMES, q, qd)[14:17], [0.7, -0.2, 0.3])


def test_the_watchdog_sends_no_position_hold_before_any_pose_was_measured():
    """Until 2026-12-07 a runner on a position robot, active before its first joint states, sent
    the middle of each joint's range every tick ("no joint_states received yet"). Now nothing
    (the position controller holds on silence); an effort robot still gets its zero command."""
    limits = safety.parse_limits(
        {
            "robot": "arm",
            "command_interface": "position",
            "safe_command": "hold",
            "command_box": {"min": -3.0, "max": 3.0},
            "joints": {j: {"position": {"min": -2.0, "max": 1.0}} for j in HOPPER.action_names},
            "timing": {"control_period": 0.008, "max_observation_age": 0.05},
        }
    )
    core = hopper_core(limits, lockstep=False)
    assert core.watchdog(10.0) is None
    core.shield.state.last_measured = [0.5, -1.5, 0.25]
    out = core.watchdog(10.0)
    assert out is not None and out.command.tolist() == [0.5, -1.5, 0.25]
    # between episodes (idle commands on) a state that cannot be read leaves nothing measured:
    # nothing is sent, where the middle of each range, [-0.5] * 3, went out every tick before
    idle = hopper_core(limits, lockstep=False, idle_commands=True)
    nan = np.full(6, np.nan)
    assert idle.step(HOPPER_NAMES, nan, np.zeros(6), 10**9, 1.0, 1.0, 0).command is None
    assert idle.sent_outside_filter() is None  # the halt and the stops send nothing either
    effort = hopper_core()  # its safe command, zero, is never a guess
    out = effort.watchdog(10.0)
    assert out is not None and out.command.tolist() == [0.0, 0.0, 0.0]
