"""The shadow runner's episodes follow the acting runner's, without ROS (EpisodeFollower)."""

from __future__ import annotations

import json

import numpy as np

import safety
from bremen_robot.ros.runner_core import RunnerCore
from bremen_robot.ros.shadow import EpisodeFollower
from bremen_robot.tasks import get_task
from tests.ros.conftest import CONFIGS

PANDA = get_task("panda_reach")
NAMES = tuple(PANDA.action_names)


def _shadow_core() -> tuple[RunnerCore, EpisodeFollower]:
    limits = safety.load_limits(CONFIGS / "safety" / "panda.yaml", joint_names=list(NAMES))
    shield = safety.SafetyShield(limits)
    core = RunnerCore(
        task=PANDA,
        joint_order=NAMES,
        shield=shield,
        policy=lambda obs: np.zeros(7),
        action_low=PANDA.action_low,
        action_high=PANDA.action_high,
        lockstep=False,
        wait_for_reset=True,  # as collect_specs sets it with sim: none and a reset section
    )
    return core, EpisodeFollower(core, shield)


def _evt(**kw) -> str:
    return json.dumps(kw)


def test_a_scripted_reset_by_reset_node_starts_the_shadow_episode():
    """On a robot with a `reset` section (sim: none), the episode's motion begins with
    reset_node's `reset` event. The shadow runner ignored it (it listened to sim_bridge only), so
    its episode never ran: a shadow run on hardware recorded 0 paired steps of 100."""
    core, follower = _shadow_core()
    goal = {"goal.x": 0.4, "goal.y": 0.1, "goal.z": 0.3}
    follower.handle(_evt(event="start", id=1, source="policy_runner"), 10)
    assert (core.episode.id, core.episode.running) == (1, False)
    process, events = follower.handle(
        _evt(event="reset", id=1, reset=1, stamp_ns=20, extras=goal, source="reset_node"), 30
    )
    assert (process, events) == (True, [])
    assert (core.episode.running, core.episode.reset_stamp_ns, core.episode.extras) == (True, 20, goal)


def test_a_reset_node_reset_that_overtakes_its_start_is_kept_for_it():
    core, follower = _shadow_core()
    follower.handle(_evt(event="reset", id=2, reset=2, stamp_ns=50, extras={}, source="reset_node"), 40)
    assert core.episode is None
    assert follower.handle(_evt(event="start", id=2, source="policy_runner"), 60) == (True, [])
    assert (core.episode.id, core.episode.running, core.episode.reset_stamp_ns) == (2, True, 50)


def test_events_of_other_senders_start_nothing():
    core, follower = _shadow_core()
    follower.handle(_evt(event="start", id=1, source="policy_runner"), 10)
    assert follower.handle(_evt(event="reset", id=1, stamp_ns=20, source="someone_else"), 30) == (False, [])
    assert core.episode.running is False
