"""Ingest of a bag with a damaged segment: the other segments whole, the damaged one salvaged."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import yaml

from bremen_robot.cli import main
from bremen_robot.data.bag_ingest import ingest_bags
from bremen_robot.ros.bagfile import SegmentedBagWriter
from tests.ros.test_ingest import write_episode

N = 8  # steps per episode


def three_episode_bag(path):
    """Episodes 1..3, one closed segment each, logged in the live logger's order."""
    w = SegmentedBagWriter(path, {"bremen.task": "halfcheetah", "bremen.mode": "lockstep"})
    segments, actions = [], []
    for eid in (1, 2, 3):
        _, cmds = write_episode(w, eid, n=N, scramble=False, t0_ns=eid * 10**10, events_first=False)
        segments.append(w.finish_segment())
        actions.append(np.array(cmds))
    w.close()
    return segments, actions


def _data_end(data: bytes) -> int:
    """Offset of the MCAP DataEnd record: everything after it is index, summary and footer."""
    pos = 8
    while data[pos] != 0x0F:
        pos += 9 + struct.unpack_from("<Q", data, pos + 1)[0]
    return pos


def _by_episode(d):
    return [d["actions"][d["episode_ids"] == e] for e in np.unique(d["episode_ids"])]


def test_a_segment_cut_in_the_middle_costs_only_its_own_episode(tmp_path):
    segments, actions = three_episode_bag(tmp_path / "bag")
    os.truncate(segments[1], segments[1].stat().st_size // 2)  # episode 2's end and the footer gone

    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    kept = _by_episode(d)
    assert len(kept) == 2 and len(d["obs"]) == 2 * N
    np.testing.assert_allclose(kept[0], actions[0], rtol=1e-6)
    np.testing.assert_allclose(kept[1], actions[2], rtol=1e-6)
    rep = d["report"][0]
    assert rep["lost_episodes"] == [2]
    (damage,) = rep["damaged_segments"]
    assert damage["segment"] == segments[1].name and "truncated" in damage["problem"]
    assert 0 < damage["recovered_messages"] < 2 * N + 3  # the front of the segment was salvaged
    assert any(segments[1].name in w for w in rep["warnings"])

    # --include-incomplete keeps what survived of episode 2: its first steps, exactly as sent
    d = ingest_bags([tmp_path / "bag"], "halfcheetah", include_incomplete=True)
    kept = _by_episode(d)
    assert len(kept) == 3 and 0 < len(kept[1]) < N
    np.testing.assert_allclose(kept[1], actions[1][: len(kept[1])], rtol=1e-6)
    np.testing.assert_allclose(kept[2], actions[2], rtol=1e-6)
    assert d["report"][0]["lost_episodes"] == []


def test_a_segment_missing_only_its_footer_loses_nothing(tmp_path):
    segments, actions = three_episode_bag(tmp_path / "bag")
    # the index and footer come after the data: cut them all, keep every data record
    data = segments[1].read_bytes()
    os.truncate(segments[1], _data_end(data))

    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    kept = _by_episode(d)
    assert len(kept) == 3 and len(d["obs"]) == 3 * N
    for got, sent in zip(kept, actions, strict=True):
        np.testing.assert_allclose(got, sent, rtol=1e-6)
    assert d["report"][0]["lost_episodes"] == []
    assert d["report"][0]["damaged_segments"][0]["segment"] == segments[1].name


def test_cli_ingest_names_the_damaged_segment_and_keeps_the_rest(tmp_path, capsys):
    segments, _ = three_episode_bag(tmp_path / "bag")
    os.truncate(segments[2], 100)
    assert main(["dataset", "ingest", str(tmp_path / "bag"), "--out", str(tmp_path / "d.npz")]) == 0
    out = capsys.readouterr()
    assert f"{2 * N} transitions, 2 episodes" in out.out
    assert f"segment {segments[2].name} is truncated" in out.err and "episode(s) 3" in out.err


def test_a_missing_segment_is_named(tmp_path):
    segments, _ = three_episode_bag(tmp_path / "bag")
    segments[0].unlink()
    d = ingest_bags([tmp_path / "bag"], "halfcheetah")
    assert len(_by_episode(d)) == 2
    assert d["report"][0]["damaged_segments"][0] == {
        "segment": segments[0].name,
        "problem": "is missing",
        "recovered_messages": 0,
    }
    assert d["report"][0]["lost_episodes"] == [1]


def test_an_unfinished_segment_under_partial_is_salvaged_only_on_request(tmp_path):
    """A logger killed mid-episode leaves the segment under .partial/ and the episode open."""
    bag = tmp_path / "bag"
    segments, actions = three_episode_bag(bag)
    # as if the logger died before closing episode 3's segment: the file (chunks flushed, no
    # footer) sits under .partial/, unlisted, and the log says the episode is still open
    data = segments[2].read_bytes()
    partial = bag / ".partial" / segments[2].stem
    partial.mkdir(parents=True)
    (partial / segments[2].name).write_bytes(data[: _data_end(data)])
    segments[2].unlink()
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())
    info = meta["rosbag2_bagfile_information"]
    info["relative_file_paths"] = info["relative_file_paths"][:2]
    info["files"] = info["files"][:2]
    episodes = json.loads(info["custom_data"]["bremen.episodes"])
    episodes[2]["status"] = "incomplete"
    info["custom_data"]["bremen.episodes"] = json.dumps(episodes)
    (bag / "metadata.yaml").write_text(yaml.safe_dump(meta))

    d = ingest_bags([bag], "halfcheetah")
    assert len(_by_episode(d)) == 2 and "damaged_segments" not in d["report"][0]
    d = ingest_bags([bag], "halfcheetah", include_incomplete=True)
    kept = _by_episode(d)
    assert len(kept) == 3
    np.testing.assert_allclose(kept[2], actions[2], rtol=1e-6)
    (damage,) = d["report"][0]["damaged_segments"]
    assert damage["segment"] == f".partial/{segments[2].stem}/{segments[2].name}"
