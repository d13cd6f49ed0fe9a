"""Dataset behaviour that a hand mutation read (2026-12-07) found no test held.

Every dataset here has a few hand-built rows and every expectation is written out by hand (the
split's episode hash from its documented formula with ``hashlib``); each test names the one-line
mutant of ``bremen_robot/data/dataset.py`` it fails on (docs/testing.md, "Mutations the suite
catches").
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from bremen_robot.data.dataset import Dataset, merge
from bremen_robot.errors import DatasetError
from bremen_robot.tasks import get_task


def _rows(n: int, **cols) -> Dataset:
    """``n`` point-task rows: obs (r, 10 r), actions (0.1 r, -0.1 r), rewards r, next_obs obs + 1."""
    r = np.arange(n, dtype=np.float32)
    obs = np.stack([r, 10 * r], axis=1)
    base = {"obs": obs, "actions": np.stack([0.1 * r, -0.1 * r], 1), "rewards": r, "next_obs": obs + 1}
    return Dataset.from_columns("point", {**base, **cols})


def _columns(d: Dataset) -> dict:
    names = ("obs", "actions", "rewards", "next_obs", "terminals", "timeouts", "episode_ids")
    return {k: getattr(d, k) for k in (*names, "deployment_ids", "policy_sha256", "interventions")}


def _three_wide_actions(n: int) -> Dataset:
    """``n`` zero rows of the point task whose actions have 3 entries (the task has 2)."""
    zeros = {"obs": np.zeros((n, 2)), "rewards": np.zeros(n), "next_obs": np.zeros((n, 2))}
    return Dataset.from_columns("point", {**zeros, "actions": np.zeros((n, 3))})


# ------------------------------------------------------------------ construction and validation
def test_a_column_with_another_row_count_or_shape_is_refused_at_construction():
    """Mutants: the robot column's row check dropped; the row check run over obs, actions and
    next_obs only (``_MATRIX_COLUMNS``); the next_obs-vs-obs shape check dropped; the actions
    ``ndim`` check dropped."""
    d = _rows(3)
    cols = _columns(d)
    with pytest.raises(DatasetError, match="column 'robot' has 2 rows but obs has 3"):
        Dataset(task="point", **cols, robot=np.array(["a", "b"]))
    with pytest.raises(DatasetError, match="column 'rewards' has 2 rows but obs has 3"):
        Dataset(task="point", **{**cols, "rewards": np.zeros(2)})
    with pytest.raises(DatasetError, match=r"next_obs \(3, 3\)"):
        Dataset(task="point", **{**cols, "next_obs": np.zeros((3, 3))})
    with pytest.raises(DatasetError, match=r"actions \(3,\) .*must be N x D, N x D and N x A"):
        Dataset(task="point", **{**cols, "actions": np.zeros(3)})


def test_validate_names_the_action_size_a_nan_reward_and_the_first_bad_row():
    """Mutants: the action-size check dropped; rewards left out of the finite check; the first
    bad row read from the last hit (``argwhere(bad)[-1]``)."""
    three = _three_wide_actions(2)
    with pytest.raises(DatasetError, match="dataset actions have size 3 but task 'point' expects 2"):
        three.validate(get_task("point"))
    rewards = np.arange(5, dtype=np.float32)
    rewards[[1, 3]] = [np.nan, np.inf]
    with pytest.raises(DatasetError, match=r"column 'rewards' has 2 NaN/inf values \(first at row 1\)"):
        _rows(5, rewards=rewards).validate()


def test_from_columns_defaults_name_deployment_1():
    """Mutant: the default ``deployment_ids`` 0 (deployments are 1-based: 1 is the random policy's)."""
    d = _rows(3)
    assert d.deployment_ids.tolist() == [1, 1, 1] and d.deployments() == [1]


# ------------------------------------------------------------------ digest, select, episodes
def test_the_digest_covers_the_task_and_a_robot_named_on_some_rows():
    """Mutants: the task name left out of the digest; the ``robot`` column counted only when
    every row names a robot (``np.all``) instead of some (``np.any``)."""
    d = _rows(3)
    other_task = Dataset(task="halfcheetah", **_columns(d))
    assert other_task.digest() != d.digest()
    named = Dataset(task="point", **_columns(d), robot=np.array(["arm-a", "", ""]))
    assert "robot" in named.columns() and named.columns()["robot"].tolist() == ["arm-a", "", ""]
    assert named.digest() != d.digest()


def test_select_keeps_the_robot_column_and_the_meta():
    """Mutants: ``select`` over ``COLUMNS`` only (the robot names replaced by ""); ``meta={}``."""
    d = Dataset(task="point", **_columns(_rows(3)), robot=np.array(["a", "b", "c"]), meta={"source": "bag-7"})
    part = d.select(np.array([0, 2]))
    assert part.robot.tolist() == ["a", "c"]
    assert part.meta == {"source": "bag-7"}


def test_episode_keys_and_returns_follow_first_appearance_not_the_sorted_ids():
    """Mutants: ``episode_ids[first]`` (unsorted first rows: the sorted ids) and ``sums`` without
    ``argsort(first)``. Ids 5, 5, 2, 2, 9 with rewards 0..4: keys 5, 2, 9; returns 1, 5, 4."""
    d = _rows(5, episode_ids=np.array([5, 5, 2, 2, 9]))
    assert d.episode_keys().tolist() == [5, 2, 9]
    assert d.episode_returns().tolist() == [1.0, 5.0, 4.0]


# ------------------------------------------------------------------ the holdout split
def test_one_episode_is_split_by_time_with_both_sides_non_empty():
    """Mutants: ``cut = round(n * holdout_fraction)`` (the sides swapped in size), the holdout
    from ``cut + 1`` (a row lost), ``min(len(self), ...)`` (4 rows at 0.1: round(3.6) = 4, no
    holdout), ``max(0, ...)`` (2 rows at 0.9: round(0.2) = 0, no training row)."""
    for n, frac, train_rows in ((10, 0.2, 8), (4, 0.1, 3), (2, 0.9, 1)):
        train, hold = _rows(n).split_by_episode(frac)
        assert train.obs[:, 0].tolist() == list(range(train_rows)), (n, frac)
        assert hold.obs[:, 0].tolist() == list(range(train_rows, n)), (n, frac)


def test_two_episodes_are_split_whole():
    """Mutant: the time split for fewer than 3 episodes (``len(keys) <= 2``). Episodes of 4 and
    2 rows at 0.5 would be cut after row 3, inside the first episode."""
    train, hold = _rows(6, episode_ids=np.array([0, 0, 0, 0, 1, 1])).split_by_episode(0.5)
    assert sorted([train.obs[:, 0].tolist(), hold.obs[:, 0].tolist()]) == [[0, 1, 2, 3], [4, 5]]


def _unit_hash(deployment: int, first_obs: np.ndarray, repeat: int = 0) -> float:
    """The documented formula: sha256 over the deployment (8 bytes, little-endian, signed), the
    first state's float32 bytes and, for the k-th later episode with that first state, k."""
    key = deployment.to_bytes(8, "little", signed=True) + np.asarray(first_obs, np.float32).tobytes()
    if repeat:
        key += repeat.to_bytes(8, "little")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") / 2**64


def test_an_episode_with_its_own_first_state_keeps_the_side_its_content_hash_gives():
    """Mutant: ``if True:`` for ``if repeat:`` (every episode hashed with a repeat count: every
    split ever made changes sides). 8 episodes of 2 rows, deployment 3, first states (2k, 20k);
    the holdout at 0.5 is exactly the episodes whose hash is below 0.5."""
    d = _rows(16, episode_ids=np.repeat(np.arange(8), 2), deployment_ids=np.full(16, 3))
    u = [_unit_hash(3, [2 * k, 20 * k]) for k in range(8)]
    want = sorted(k for k in range(8) if u[k] < 0.5)
    assert 0 < len(want) < 8  # no forced move: the comparison below is the hash's alone
    _, hold = d.split_by_episode(0.5)
    assert sorted(set(hold.episode_ids.tolist())) == want


def _home_pose(deployment: int, episodes: int = 20) -> Dataset:
    """``episodes`` episodes of 2 rows that all start at (0, 0), then each at (k + 1, 0)."""
    obs = np.zeros((2 * episodes, 2), np.float32)
    obs[1::2, 0] = np.arange(1, episodes + 1)
    n = len(obs)
    return Dataset.from_columns(
        "point",
        {
            "obs": obs,
            "actions": np.zeros((n, 2)),
            "rewards": np.zeros(n),
            "next_obs": obs + 1,
            "episode_ids": np.repeat(np.arange(episodes), 2),
            "deployment_ids": np.full(n, deployment),
        },
    )


def test_a_deployments_episodes_keep_their_sides_when_merged_after_another_deployment():
    """Mutants: the hash keyed on the episode id instead of the deployment (ids are renumbered
    by every merge) and the repeat count kept across deployments (``key = row.tobytes()``: the
    second deployment's home-pose episodes counted from 20, not 0). Deployment 2 merged after
    deployment 1 must hold out the very episodes it holds out alone: the k-th home-pose episode
    hashes (2, (0, 0), k)."""
    alone = _home_pose(2)
    want = sorted(k for k in range(20) if _unit_hash(2, [0, 0], k) < 0.3)
    assert 0 < len(want) < 20
    _, hold_alone = alone.split_by_episode(0.3)
    assert sorted(set(hold_alone.episode_ids.tolist())) == want
    merged = merge([_home_pose(1), alone])
    _, hold = merged.split_by_episode(0.3)
    held_2 = sorted(set(hold.episode_ids[hold.deployment_ids == 2].tolist()))
    assert [i - 20 for i in held_2] == want  # merge numbers deployment 2's episodes from 20


def test_the_forced_holdout_or_training_episode_is_chosen_by_hash_not_by_position():
    """Mutants: ``held[0] = True`` for ``held[np.argmin(u)]`` and ``held[-1] = False`` for
    ``held[np.argmax(u)]``, and either forcing dropped (an empty side). At 0.0 the holdout is
    the episode of lowest hash, at 1.0 training keeps the one of highest hash; both whatever the
    episodes' order. Three episodes of 2 rows, deployment 1, first states (0, 0), (2, 20), (4, 40)."""
    d = _rows(6, episode_ids=np.repeat([0, 1, 2], 2))
    u = [_unit_hash(1, [2 * k, 20 * k]) for k in range(3)]
    low, high = int(np.argmin(u)), int(np.argmax(u))
    for order in ([0, 1, 2, 3, 4, 5], [4, 5, 2, 3, 0, 1], [2, 3, 4, 5, 0, 1]):
        data = d.select(np.array(order))
        _, hold = data.split_by_episode(0.0)
        assert set(hold.episode_ids.tolist()) == {low}, order
        train, _ = data.split_by_episode(1.0)
        assert set(train.episode_ids.tolist()) == {high}, order


# ------------------------------------------------------------------ save and load
def test_save_with_overwrite_replaces_other_data(tmp_path):
    """Mutant: ``if path.exists():`` for ``path.exists() and not overwrite`` (``overwrite=True``
    refused whenever the data differ)."""
    path = _rows(3).save(tmp_path / "d.npz")
    assert _rows(5).save(path, overwrite=True) == path
    assert Dataset.load(path).obs[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_the_robot_column_and_the_meta_survive_a_round_trip(tmp_path):
    """Mutants: the optional ``robot`` column never read back (the file then fails its own
    digest); ``meta={}`` at load."""
    d = Dataset(task="point", **_columns(_rows(3)), robot=np.array(["a", "", "b"]), meta={"source": "bag-7"})
    back = Dataset.load(d.save(tmp_path / "d.npz"))
    assert back.robot.tolist() == ["a", "", "b"]
    assert back.meta == {"source": "bag-7"}


def _rewrite(path, header=None, **columns):
    """Copy of ``path`` with its header and some columns replaced, arrays otherwise as saved."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if header is not None:
        arrays["header"] = np.array(json.dumps(header))
    arrays.update(columns)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


def test_load_refuses_another_format_and_data_that_no_longer_match_the_recorded_digest(tmp_path):
    """Mutants: the format-version check dropped; the digest comparison dropped (a reward
    edited after saving loads silently)."""
    d = _rows(3)
    header = {"format_version": 1, "task": "point", "meta": {}, "digest": d.digest()}
    path = d.save(tmp_path / "v2.npz")
    _rewrite(path, header={**header, "format_version": 2})
    with pytest.raises(DatasetError, match="has format 2, expected 1"):
        Dataset.load(path)
    path = d.save(tmp_path / "edited.npz")
    _rewrite(path, rewards=np.array([0, 1, 7], np.float32))
    assert zipfile.is_zipfile(path)
    with pytest.raises(DatasetError, match="does not match its recorded digest"):
        Dataset.load(path)


# ------------------------------------------------------------------ merge
def test_merge_renumbers_ids_by_order_and_records_its_inputs():
    """Mutants: the input ids plus the offset instead of their ranks (ids 5, 5, 0 then 3 give
    5, 5, 0, 5: two episodes merged into one); ``merged_from`` left empty. Expected ids 1, 1, 0
    then 2, and the inputs' digests in order."""
    a = _rows(3, episode_ids=np.array([5, 5, 0]))
    b = Dataset.from_columns(
        "point",
        {
            "obs": np.full((1, 2), 9.0),
            "actions": np.zeros((1, 2)),
            "rewards": np.zeros(1),
            "next_obs": np.ones((1, 2)),
            "episode_ids": np.array([3]),
        },
    )
    m = merge([a, b])
    assert m.episode_ids.tolist() == [1, 1, 0, 2]
    assert m.meta == {"merged_from": [a.digest(), b.digest()]}


def test_merge_takes_one_recording_per_deployment_and_refuses_other_sizes():
    """Mutants: the deployment left out of the episode fingerprint (a deployment that replayed
    deployment 1's states and actions exactly refused as a repeat); the size check dropped (numpy's
    concatenate error instead of one line)."""
    d1 = _rows(3)
    d2 = Dataset(task="point", **{**_columns(d1), "deployment_ids": np.full(3, 2)})
    assert merge([d1, d2]).deployment_ids.tolist() == [1, 1, 1, 2, 2, 2]
    wide = _three_wide_actions(1)
    with pytest.raises(DatasetError, match=r"different \(obs, action\) sizes: \[\(2, 2\), \(2, 3\)\]"):
        merge([d1, wide])
