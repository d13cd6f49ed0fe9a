"""Bag ingest and dataset edges found by a read-only review (2026-12-07).

Bags are written by hand with the helpers of ``test_bag_ingest_hand_mutants``; every expected
value is worked out by hand from docs/ros.md's ingest rules. Each test names the code that let
the edge through before.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from bremen_robot.data.bag_ingest import _damage_report, ingest_bags
from bremen_robot.errors import DatasetError
from tests.ros.test_bag_ingest_hand_mutants import HOPPER, A, _bag, _cheetah, _hopper


def test_a_value_past_float32_is_dropped_as_not_finite_not_written_as_inf(tmp_path):
    """Until 2026-12-07 finiteness was checked in float64 and the columns cast to float32 after,
    so a glitching sensor's 1e300 (finite) was stored as inf, and a finite action of 1e20 gave a
    reward of -0.1 * 1e40, past float32 too. Four HalfCheetah states with forward velocity 0,
    1e300, 2, 3 and one with 4; commands A, A, A, then 1e20 on the first joint. Transitions 0->1
    and 1->2 have the 1e300 state, 3->4 the reward overflow: all three dropped; 2->3 is kept,
    reward 3 - 0.1 * 0.25."""
    big = [1e20, 0, 0, 0, 0, 0]
    _bag(
        tmp_path / "bag",
        [
            {
                "id": 1,
                "states": [_cheetah(0), _cheetah(1e300), _cheetah(2), _cheetah(3), _cheetah(4)],
                "commands": [(0, A), (1, A), (2, A), (3, big)],
                "stop": {},
            }
        ],
    )
    d = ingest_bags([tmp_path / "bag"])
    assert d["report"][0]["dropped_transitions"] == 3
    np.testing.assert_allclose(d["obs"][:, 8], [2.0])
    np.testing.assert_allclose(d["rewards"], [3 - 0.025], rtol=1e-6)
    for name in ("obs", "actions", "next_obs", "rewards"):
        assert np.isfinite(d[name]).all(), name
    # the kept row is no longer the episode's end (3->4 was dropped): the data stops early
    assert d["timeouts"].tolist() == [True]


def test_a_terminated_episode_whose_last_transition_was_dropped_ends_in_a_timeout(tmp_path):
    """Until 2026-12-07 the last kept row of such an episode had neither flag, so it read as the
    episode going on. Hopper falls at height 0.5 (not above 0.7): the second command, the one
    that fell, is NaN and dropped; the first row (1.25 -> 1.2, standing) is the last kept one and
    is not terminal, so the data stops before the episode's end: a timeout."""
    a = [0.1, 0.0, 0.0]
    _bag(
        tmp_path / "bag",
        [
            {
                "id": 1,
                "names": HOPPER,
                "states": [_hopper(1.25), _hopper(1.2, 2.0), _hopper(0.5, 3.0)],
                "commands": [(0, a), (1, [np.nan, 0.0, 0.0])],
                "stop": {"reason": "terminated"},
            },
        ],
        {"bremen.task": "hopper", "bremen.mode": "lockstep"},
    )
    d = ingest_bags([tmp_path / "bag"])
    assert d["report"][0]["dropped_transitions"] == 1
    assert d["terminals"].tolist() == [False]
    assert d["timeouts"].tolist() == [True]


def _set_custom(bag: Path, key: str, value: object) -> None:
    meta = bag / "metadata.yaml"
    doc = yaml.safe_load(meta.read_text())
    doc["rosbag2_bagfile_information"]["custom_data"][key] = value
    meta.write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize(
    ("key", "value", "what"),
    [
        ("bremen.topics", "{bad", "a JSON map of role to topic name"),
        ("bremen.topics", '{"joint_states": 5}', "a JSON map of role to topic name"),
        ("bremen.episodes", '[{"id": 1, "status": "comp', "a JSON list of episode records"),
        ("bremen.episodes", '[{"status": "complete"}]', "a JSON list of episode records"),
        ("bremen.episodes", '{"1": "complete"}', "a JSON list of episode records"),
        # hand-edited so that YAML reads a map or a number, not a JSON string (TypeError before)
        ("bremen.topics", {"joint_states": "/js"}, "a JSON map of role to topic name"),
        ("bremen.episodes", 5, "a JSON list of episode records"),
    ],
)
def test_damaged_json_in_the_bags_metadata_is_one_line_naming_the_entry(tmp_path, key, value, what):
    """Until 2026-12-07 these raised JSONDecodeError, KeyError 'id' or TypeError."""
    bag = tmp_path / "bag"
    _bag(bag, [{"id": 1, "states": [_cheetah(0), _cheetah(1)], "commands": [(0, A)], "stop": {}}])
    _set_custom(bag, key, value)
    with pytest.raises(DatasetError) as info:
        ingest_bags([bag])
    msg = str(info.value)
    assert msg.startswith(f"{bag / 'metadata.yaml'}: custom_data {key} is not {what}"), msg
    assert "\n" not in msg and "delete that entry" in msg


def test_a_complete_episode_read_whole_but_unusable_is_not_reported_lost_to_damage():
    """Until 2026-12-07 every complete episode not used was said to have lost its end in a
    damaged segment, also one read whole and found unusable (reported as such elsewhere).
    Episode 1 used, 2 unusable, 3 lost."""
    listed = [{"id": k, "status": "complete"} for k in (1, 2, 3)]
    bag = SimpleNamespace(
        path=Path("bag"),
        damaged=[{"segment": "s.mcap", "problem": "is missing", "recovered_messages": 0}],
        custom={"bremen.episodes": json.dumps(listed)},
    )
    assert _damage_report(bag, {1}, [2])["lost_episodes"] == [3]


def test_the_dataset_commands_refuse_an_out_path_whose_npz_exists(tmp_path, point_data, capsys, monkeypatch):
    """``--out data`` is written as data.npz: the check before the work must look there (it
    looked at ``data``, so the refusal came only after the whole collection)."""
    import bremen_robot.data.real_rollout as real_rollout
    from bremen_robot.cli import main

    def no_work(*args, **kwargs):
        raise AssertionError("collected although the output exists")

    monkeypatch.setattr(real_rollout, "rollout", no_work)
    point_data.save(tmp_path / "data.npz")
    before = (tmp_path / "data.npz").read_bytes()
    rc = main(["dataset", "collect", "--env", "point", "--steps", "10", "--out", str(tmp_path / "data")])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"'{tmp_path / 'data.npz'}' already exists; choose another --out (nothing was written)" in err
    assert (tmp_path / "data.npz").read_bytes() == before
    (tmp_path / "folder").mkdir()  # refused up front too (a second read found it refused only after)
    rc = main(["dataset", "collect", "--env", "point", "--steps", "10", "--out", str(tmp_path / "folder")])
    assert rc == 2
    assert f"--out '{tmp_path / 'folder'}' is a folder; give a file name" in capsys.readouterr().err
