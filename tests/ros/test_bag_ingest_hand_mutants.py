"""Bag ingest edges found by a hand mutation read of ``data/bag_ingest.py`` (2026-12-07).

Every bag here is a few states and commands written out by hand; the expected columns, counts
and flags are worked out by hand from the module's documented rules (docs/testing.md, "Mutations
the suite catches"). Each test names the one-line mutant(s) it guards.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from bremen_robot.data.bag_ingest import _damage_report, _episode_plan, ingest_bags
from bremen_robot.errors import DatasetError
from bremen_robot.ros import topics as T
from bremen_robot.ros.bagfile import SegmentedBagWriter, typestore
from tests.ros.test_ingest import _header, _ser

JS, ARR, STR = "sensor_msgs/msg/JointState", "std_msgs/msg/Float64MultiArray", "std_msgs/msg/String"
CHEETAH = ["rootx", "rootz", "rooty", "bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"]
HOPPER = ["rootx", "rootz", "rooty", "thigh_joint", "leg_joint", "foot_joint"]
S = 10**9  # one second: state k of an episode is stamped at eid * 100 s + k s


def _bag(path: Path, episodes: list[dict[str, Any]], custom: dict[str, str] | None = None) -> None:
    """Write ``episodes`` into a bag as the graph logs them.

    Each episode: ``id``; ``states``: (q, qd) per state k, stamped ``id * 100 s + k s``;
    ``commands``: (k, data) answering state k, in the order sent; ``start``/``stop``: extra fields
    of the runner's events (``stop`` None: no stop event); ``status``: the logger's listing.
    """
    t = typestore().types
    w = SegmentedBagWriter(
        path, {"bremen.task": "halfcheetah", "bremen.mode": "lockstep"} if custom is None else custom
    )
    log_ns = iter(range(S, S + 10**6))

    def write(topic: str, msgtype: str, msg: Any) -> None:
        w.write("/" + topic, msgtype, next(log_ns), _ser(msg, msgtype))

    for ep in episodes:
        eid = ep["id"]
        names = ep.get("names", CHEETAH)
        common = {"id": eid, "source": "policy_runner", **ep.get("start", {})}
        w.episode(eid, status="open")
        write(T.EPISODE, STR, t[STR](data=json.dumps({"event": "start", "deployment": 1, **common})))
        for k, (q, qd) in enumerate(ep["states"]):
            hdr = _header(typestore(), eid * 100 * S + k * S)
            write(
                T.JOINT_STATES,
                JS,
                t[JS](
                    header=hdr,
                    name=names,
                    position=np.array(q, float),
                    velocity=np.array(qd, float),
                    effort=np.zeros(0),
                ),
            )
        for seq, (k, data) in enumerate(ep["commands"], 1):
            tag = T.make_tag(eid, eid * 100 * S + k * S, seq)
            dim = t["std_msgs/msg/MultiArrayDimension"](label=tag, size=len(data), stride=len(data))
            layout = t["std_msgs/msg/MultiArrayLayout"](dim=[dim], data_offset=0)
            write(T.COMMAND, ARR, t[ARR](layout=layout, data=np.array(data, float)))
        if ep.get("stop") is not None:
            stop = {"event": "stop", "complete": True, "reason": "time_limit", **common, **ep["stop"]}
            stop.setdefault("last_obs_stamp_ns", eid * 100 * S + (len(ep["states"]) - 1) * S)
            write(T.EPISODE, STR, t[STR](data=json.dumps(stop)))
        w.episode(eid, status=ep.get("status", "complete"))
    w.close()


def _cheetah(v: float) -> tuple[list[float], list[float]]:
    """A HalfCheetah state whose forward velocity (obs 8, qvel.rootx) is ``v``; obs 0 is 0.5."""
    return [0.0, 0.5, 0, 0, 0, 0, 0, 0, 0], [v, 0, 0, 0, 0, 0, 0, 0, 0]


def _hopper(height: float, v: float = 0.0) -> tuple[list[float], list[float]]:
    """A Hopper state of this height (obs 0) and forward velocity (obs 5); upright (obs 1 = 0)."""
    return [0.0, height, 0.0, 0.0, 0.0, 0.0], [v, 0, 0, 0, 0, 0]


A = [0.5, 0, 0, 0, 0, 0]  # |a|^2 = 0.25: HalfCheetah reward = next v - 0.025


def test_incomplete_episodes_are_counted_and_an_unfinished_stop_reason_is_still_a_timeout(tmp_path):
    """Mutants: ``skipped_incomplete += 0``; the reason of an incomplete episode's stop read as
    given (``if True else "interrupted"``); an incomplete episode without a usable transition
    named as an unusable complete one (``if rec["complete"]`` -> ``if True``).

    Episode 1 complete (1 step); episode 2 stopped by the shadow's ``acting_restarted``, which is
    no timeout reason, with ``complete: False``; episode 3 never stopped and its states are NaN
    (two commands: one pair, dropped; the last command has no next state)."""
    nan = ([np.nan] * 9, [0.0] * 9)
    _bag(
        tmp_path / "bag",
        [
            {"id": 1, "states": [_cheetah(0), _cheetah(1)], "commands": [(0, A)], "stop": {}},
            {
                "id": 2,
                "states": [_cheetah(0), _cheetah(2), _cheetah(3)],
                "commands": [(0, A), (1, A)],
                "stop": {"reason": "acting_restarted", "complete": False},
                "status": "incomplete",
            },
            {"id": 3, "states": [nan, nan], "commands": [(0, A), (1, A)], "stop": None, "status": "open"},
        ],
    )
    d = ingest_bags([tmp_path / "bag"])
    (rep,) = d["report"]
    assert (rep["episodes"], rep["skipped_incomplete"], rep["dropped_transitions"]) == (1, 2, 0)
    assert d["timeouts"].tolist() == [True]

    d = ingest_bags([tmp_path / "bag"], include_incomplete=True)
    (rep,) = d["report"]
    assert (rep["episodes"], rep["skipped_incomplete"], rep["dropped_transitions"]) == (2, 0, 1)
    assert d["episode_ids"].tolist() == [0, 1, 1]
    np.testing.assert_allclose(d["rewards"], [1 - 0.025, 2 - 0.025, 3 - 0.025], rtol=1e-6)
    # an incomplete episode's end is a cut whatever its stop says: the last transition a timeout
    assert d["timeouts"].tolist() == [True, False, True] and not d["terminals"].any()
    assert rep.get("unusable_episodes", []) == [] and rep.get("warnings", []) == []


def test_terminals_come_from_the_next_state_and_the_stop_reason_marks_only_a_live_last_step(tmp_path):
    """Mutants: ``t.terminated(o, a, o)`` (termination judged on the state acted in);
    ``timeouts[-1]`` set also when the last transition is terminal (``and not term[-1]``
    dropped); ``not term.any()`` for ``not term[-1]``; ``"budget"`` left out of the timeout reasons.

    Hopper falls when its height (obs 0) is not above 0.7. Episode 1 falls on its last step
    (budget ran out on the same step): terminal, no timeout. Episode 2 ends by the budget
    standing: a timeout. Episode 3 is judged fallen in the middle (an older runner went on) and
    ends by its time limit standing: terminal in the middle, timeout at the end."""
    a = [0.1, 0.0, 0.0]  # |a|^2 = 0.01: reward = next v - 1e-5 + 1
    _bag(
        tmp_path / "bag",
        [
            {
                "id": 1,
                "names": HOPPER,
                "states": [_hopper(1.25), _hopper(1.2, 2.0), _hopper(0.5, 3.0)],
                "commands": [(0, a), (1, a)],
                "stop": {"reason": "budget"},
            },
            {
                "id": 2,
                "names": HOPPER,
                "states": [_hopper(1.25), _hopper(1.2, 4.0)],
                "commands": [(0, a)],
                "stop": {"reason": "budget"},
            },
            {
                "id": 3,
                "names": HOPPER,
                "states": [_hopper(1.25), _hopper(0.6), _hopper(1.25)],
                "commands": [(0, a), (1, a)],
                "stop": {"reason": "time_limit"},
            },
        ],
        {"bremen.task": "hopper", "bremen.mode": "lockstep"},
    )
    d = ingest_bags([tmp_path / "bag"])
    assert d["episode_ids"].tolist() == [0, 0, 1, 2, 2]
    assert d["terminals"].tolist() == [False, True, False, True, False]
    assert d["timeouts"].tolist() == [False, False, True, False, True]
    np.testing.assert_allclose(
        d["rewards"], [3.0 - 1e-5, 4.0 - 1e-5, 5.0 - 1e-5, 1 - 1e-5, 1 - 1e-5], rtol=1e-6
    )


def test_a_command_of_the_wrong_size_or_not_finite_is_dropped_and_counted(tmp_path):
    """Mutants: the action-size check dropped (``or a.shape[0] != t.action_dim``); the finite
    check on the action dropped. Three steps: commands of 5 entries, of 6 with a NaN, and of 6."""
    bad = [0.1, np.nan, 0, 0, 0, 0]
    _bag(
        tmp_path / "bag",
        [
            {
                "id": 1,
                "states": [_cheetah(0), _cheetah(1), _cheetah(2), _cheetah(3)],
                "commands": [(0, [0.1] * 5), (1, bad), (2, A)],
                "stop": {},
            }
        ],
    )
    d = ingest_bags([tmp_path / "bag"])
    assert d["report"][0]["dropped_transitions"] == 2
    np.testing.assert_array_equal(d["actions"], np.array([A], dtype=np.float32))
    np.testing.assert_allclose(d["obs"][:, 8], [2.0])
    np.testing.assert_allclose(d["next_obs"][:, 8], [3.0])


def test_a_last_state_the_logger_lacks_ends_the_pairs_without_counting_a_drop(tmp_path):
    """Mutant: the stop's ``last_obs_stamp_ns`` appended although the bag has no such state
    (``and last in bag.states`` dropped): the last command's transition then counts as dropped.

    Three states logged, three commands; the stop names a fourth state the logger never got:
    two transitions, nothing dropped (the last command simply has no next state)."""
    _bag(
        tmp_path / "bag",
        [
            {
                "id": 1,
                "states": [_cheetah(0), _cheetah(1), _cheetah(2)],
                "commands": [(0, A), (1, A), (2, A)],
                "stop": {"last_obs_stamp_ns": 100 * S + 3 * S},
            }
        ],
    )
    d = ingest_bags([tmp_path / "bag"])
    assert d["report"][0]["dropped_transitions"] == 0
    np.testing.assert_allclose(d["next_obs"][:, 8], [1.0, 2.0])


def test_deployment_and_policy_come_from_each_episodes_start(tmp_path):
    """Mutant: every row's deployment forced to 1 (``int(dep) if isinstance(dep, int) else -1``).

    Episode 1 started under deployment 3 with policy ``aa``; episode 2's start names no
    deployment (-1) and policy ``bb``."""
    _bag(
        tmp_path / "bag",
        [
            {
                "id": 1,
                "states": [_cheetah(0), _cheetah(1)],
                "commands": [(0, A)],
                "stop": {},
                "start": {"deployment": 3, "policy_sha256": "aa"},
            },
            {
                "id": 2,
                "states": [_cheetah(0), _cheetah(1)],
                "commands": [(0, A)],
                "stop": {},
                "start": {"deployment": None, "policy_sha256": "bb"},
            },
        ],
    )
    d = ingest_bags([tmp_path / "bag"])
    assert d["deployment_ids"].tolist() == [3, -1]
    assert d["policy_sha256"].tolist() == ["aa", "bb"]


def test_a_bag_whose_task_is_another_spelling_or_unsaid_is_ingested_for_the_task_given(tmp_path):
    """Mutants: the bag's task compared by its raw name (``bag_task != the_task.name``); a bag
    without ``bremen.task`` looked up anyway (``elif bag_task and`` dropped: ``get_task("")``)."""
    ep = [{"id": 1, "states": [_cheetah(0), _cheetah(1)], "commands": [(0, A)], "stop": {}}]
    _bag(tmp_path / "alias", ep, {"bremen.task": "Half-Cheetah", "bremen.mode": "lockstep"})
    _bag(tmp_path / "unsaid", ep, {"bremen.mode": "lockstep"})
    for name in ("alias", "unsaid"):
        d = ingest_bags([tmp_path / name], "halfcheetah")
        assert d["task"] == "halfcheetah"
        np.testing.assert_allclose(d["rewards"], [1 - 0.025], rtol=1e-6)


def test_one_bag_named_by_two_spellings_of_its_path_is_refused(tmp_path):
    """Mutant: the paths compared as given, not resolved (``Path(p).resolve()`` -> ``Path(p)``)."""
    ep = [{"id": 1, "states": [_cheetah(0), _cheetah(1)], "commands": [(0, A)], "stop": {}}]
    _bag(tmp_path / "bag", ep)
    (tmp_path / "x").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "bag")
    for other in (tmp_path / "x" / ".." / "bag", tmp_path / "link"):
        with pytest.raises(DatasetError, match="given twice"):
            ingest_bags([tmp_path / "bag", other])


def test_a_message_that_does_not_decode_in_an_intact_segment_is_an_error(tmp_path):
    """Mutant: ``if r.problem is None: raise`` inverted (an undecodable message in a segment read
    whole counted as salvage damage instead of refused)."""
    _bag(
        tmp_path / "bag", [{"id": 1, "states": [_cheetah(0), _cheetah(1)], "commands": [(0, A)], "stop": {}}]
    )
    w = SegmentedBagWriter(tmp_path / "bad", {"bremen.task": "halfcheetah", "bremen.mode": "lockstep"})
    w.write("/" + T.JOINT_STATES, JS, S, b"\x07\x07\x07\x07\x07\x07\x07\x07")
    w.close()
    with pytest.raises(DatasetError, match=f"message of type {JS} is not CDR data; the bag is corrupt"):
        ingest_bags([tmp_path / "bag", tmp_path / "bad"])


def test_the_episode_plan_orders_by_id_and_reads_completeness_from_stop_and_listing():
    """Mutants: ``for k in recs`` for ``sorted(recs)``; a stop whose start is missing raising
    (``eid in recs`` dropped); ``stop.get("complete", False)``; the listing's ``incomplete``
    ignored.

    Starts 5, 2, 7 in that order; 2's stop (an older runner) has no ``complete`` field; a stop of
    episode 9, whose start was lost, means nothing; 7 stopped complete but the logger listed it
    incomplete; 5 never stopped."""
    runner = {"source": "policy_runner"}
    events = [
        {**runner, "event": "start", "id": 5},
        {**runner, "event": "start", "id": 2},
        {**runner, "event": "stop", "id": 2, "reason": "time_limit"},
        {**runner, "event": "stop", "id": 9, "complete": True},
        {**runner, "event": "start", "id": 7},
        {**runner, "event": "stop", "id": 7, "complete": True},
    ]
    listed = json.dumps([{"id": 2, "status": "complete"}, {"id": 7, "status": "incomplete"}])
    plan = _episode_plan(SimpleNamespace(events=events, custom={"bremen.episodes": listed}, path=Path("bag")))
    assert [(r["id"], r["complete"]) for r in plan] == [(2, True), (5, False), (7, False)]


def test_only_episodes_listed_complete_are_reported_lost_to_damage():
    """Mutant: lost episodes read as every listed one not ``incomplete`` (an ``open`` one, whose
    end was never logged, reported as a complete episode lost to the damage)."""
    bag = SimpleNamespace(
        path=Path("bag"),
        damaged=[{"segment": "s.mcap", "problem": "is missing", "recovered_messages": 0}],
        custom={
            "bremen.episodes": json.dumps(
                [
                    {"id": 1, "status": "complete"},
                    {"id": 2, "status": "open"},
                    {"id": 3, "status": "complete"},
                ]
            )
        },
    )
    rep = _damage_report(bag, {1})
    assert rep["lost_episodes"] == [3]
    assert rep["warnings"][-1] == (
        "bag: episode(s) 3 logged as complete lost their end in a damaged segment and were left out "
        "(--include-incomplete keeps what remains of them)"
    )
