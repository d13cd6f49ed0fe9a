import numpy as np
import pytest

from bremen_robot.data.dataset import Dataset, merge
from bremen_robot.errors import DatasetError, TaskError


def test_roundtrip_keeps_digest(tmp_path, point_data):
    path = point_data.save(tmp_path / "d.npz")
    back = Dataset.load(path)
    assert back.digest() == point_data.digest()
    assert len(back) == 2000 and back.task == "point"
    assert back.timeouts.sum() == 50 and back.terminals.sum() == 0


def test_digest_changes_with_any_value(point_data):
    other = point_data.select(np.arange(len(point_data)))
    other.rewards[7] += 1e-3
    assert other.digest() != point_data.digest()


def test_truncated_and_corrupt_files_give_one_line(tmp_path, point_data):
    path = point_data.save(tmp_path / "d.npz")
    raw = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    for name in ("trunc.npz", "junk.npz"):
        with pytest.raises(DatasetError, match="unreadable") as info:
            Dataset.load(tmp_path / name)
        assert "\n" not in str(info.value)


def test_a_lone_npy_array_is_refused_in_one_line_not_a_crash(tmp_path, point_data):
    """np.load returns a plain array for .npy, which the loader used as an archive (TypeError)."""
    np.save(tmp_path / "obs.npy", point_data.obs)
    with pytest.raises(DatasetError) as info:
        Dataset.load(tmp_path / "obs.npy")
    assert str(info.value).startswith(f"dataset '{tmp_path / 'obs.npy'}' is a single numpy array, not a")
    assert "\n" not in str(info.value)


def test_save_appends_npz_to_a_name_with_dots_and_writes_where_it_says(tmp_path, point_data):
    """Until 2026-12-07 the last dotted part was replaced: 'data.2026.12.07' was written as
    'data.2026.12.npz', and loading the name given found nothing."""
    written = point_data.save(tmp_path / "data.2026.12.07")
    assert written == tmp_path / "data.2026.12.07.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.2026.12.07.npz"]
    assert Dataset.npz_path(tmp_path / "data") == tmp_path / "data.npz"
    assert Dataset.npz_path(tmp_path / "d.npz") == tmp_path / "d.npz"
    assert Dataset.load(written).digest() == point_data.digest()


def test_from_columns_names_a_missing_obs_column():
    cols = {"actions": np.zeros((3, 2)), "rewards": np.zeros(3), "next_obs": np.zeros((3, 4))}
    with pytest.raises(DatasetError) as info:
        Dataset.from_columns("point", cols)
    assert str(info.value) == "missing required column(s) obs"


def test_save_refuses_to_overwrite_different_data(tmp_path, point_data):
    path = point_data.save(tmp_path / "d.npz")
    before = path.read_bytes()
    with pytest.raises(DatasetError, match="already exists"):
        point_data.select(np.arange(10)).save(path)
    assert path.read_bytes() == before
    assert point_data.save(path) == path  # same content: a no-op


def test_validate_rejects_nan_empty_and_wrong_size(point_data):
    bad = point_data.select(np.arange(len(point_data)))
    bad.next_obs[3, 1] = np.nan
    with pytest.raises(DatasetError, match="next_obs.*NaN"):
        bad.validate()
    with pytest.raises(DatasetError, match="empty"):
        point_data.select(np.zeros(len(point_data), bool)).validate()
    from bremen_robot.tasks import get_task

    with pytest.raises(TaskError, match="expects 17"):
        point_data.validate(get_task("halfcheetah"))


def test_merge_renumbers_episodes_and_keeps_deployments(point_data):
    second = point_data.select(np.arange(400))
    second.deployment_ids[:] = 2
    m = merge([point_data, second])
    assert len(m) == 2400
    assert len(m.episode_keys()) == 50 + 10
    assert m.deployments() == [1, 2]
    assert len(m.latest_deployment()) == 400
    with pytest.raises(DatasetError, match="different tasks"):
        merge(
            [
                point_data,
                Dataset.from_columns(
                    "halfcheetah",
                    {k: np.zeros((1, 17 if "obs" in k else 6)) for k in ("obs", "next_obs", "actions")}
                    | {"rewards": np.zeros(1)},
                ),
            ]
        )


def test_split_is_per_episode_and_disjoint(point_data):
    train, hold = point_data.split_by_episode(0.2)
    assert len(train) + len(hold) == len(point_data)
    assert not set(train.episode_ids) & set(hold.episode_ids)
    assert 3 <= len(set(hold.episode_ids)) <= 20  # about 20% of 50 episodes


def test_split_is_stable_when_data_grows(point_data):
    """Re-fitting on more data never moves an episode the ensemble trained on into the holdout."""
    early = point_data.select(point_data.episode_ids < 30)
    train_early, _ = early.split_by_episode(0.2)
    _, hold_all = point_data.split_by_episode(0.2)
    firsts = {row.tobytes() for row in train_early.obs}
    assert not any(row.tobytes() in firsts for row in hold_all.obs)


def _home_pose_deployment(deployment: int, episodes: int = 40, steps: int = 10) -> Dataset:
    """Episodes that all start from one state (a robot reset to its home pose), then diverge."""
    rng = np.random.default_rng(deployment)
    obs = rng.normal(size=(episodes * steps, 2)).astype(np.float32)
    obs[::steps] = 0.0
    n = len(obs)
    return Dataset.from_columns(
        "point",
        {
            "obs": obs,
            "actions": rng.uniform(-1, 1, (n, 2)),
            "rewards": np.zeros(n),
            "next_obs": obs + 0.1,
            "episode_ids": np.repeat(np.arange(episodes), steps),
            "deployment_ids": np.full(n, deployment),
        },
    )


def test_episodes_with_one_start_state_are_split_one_by_one():
    """Hashed on its first state alone, every episode of such a deployment landed on one side:
    all 40 of deployment 4 in the holdout once merged (the ensemble never trained on them), none of
    the others'. Each episode must still draw its own side, about 15% held out per deployment,
    and the sides must not move when the next deployment is merged in."""
    deps = [_home_pose_deployment(d) for d in range(1, 7)]
    data = merge(deps)
    train, hold = data.split_by_episode(0.15)
    for d in range(1, 7):
        held = len(set(hold.episode_ids[hold.deployment_ids == d]))
        assert 1 <= held <= 12, (d, held)  # of 40: neither none nor most
        assert len(set(train.episode_ids[train.deployment_ids == d])) == 40 - held
    _, hold_early = merge(deps[:3]).split_by_episode(0.15)
    early = {row.tobytes() for row in hold_early.obs}
    assert early == {row.tobytes() for row in hold.obs[hold.deployment_ids <= 3]}


def _write_npz(path, header, columns):
    """An .npz laid out like Dataset.save's, with whatever header and columns a test gives."""
    import io
    import json

    buf = io.BytesIO()
    np.savez(buf, header=np.array(json.dumps(header)), **columns)
    path.write_bytes(buf.getvalue())
    return path


def test_a_column_of_another_dtype_or_shape_is_refused_not_cast(tmp_path, point_data):
    """A hand-made or foreign .npz: float terminals (2.5 would read as True), fractional episode
    ids (0.5 would merge into episode 0), rewards N x 1 (broadcasts in any N-row arithmetic)."""
    from bremen_robot.data.dataset import COLUMNS

    cols = {k: getattr(point_data, k) for k in COLUMNS}
    header = {"format_version": 1, "task": "point", "meta": {}, "digest": point_data.digest()}
    cases = {
        "terminals": np.full(len(point_data), 2.5),
        "episode_ids": point_data.episode_ids + 0.5,
        "obs": point_data.obs.astype(np.complex64),
        "policy_sha256": np.full(len(point_data), "x" * 100),
        "rewards": point_data.rewards.reshape(-1, 1),
    }
    for name, bad in cases.items():
        # the file records the digest of its data as load reads it (cast), so the digest check
        # alone would let it through
        as_read = point_data.select(np.arange(len(point_data)))
        setattr(as_read, name, np.ascontiguousarray(np.real(bad).astype(COLUMNS[name])))
        digest = as_read.digest()
        path = _write_npz(tmp_path / f"{name}.npz", dict(header, digest=digest), {**cols, name: bad})
        with pytest.raises(DatasetError, match=f"column '{name}'") as info:
            Dataset.load(path)
        assert "\n" not in str(info.value)


def test_a_file_without_a_digest_is_refused(tmp_path, point_data):
    """Every file save ever wrote records its digest; one without it was not written by save and
    its content (here a NaN reward) cannot be checked."""
    from bremen_robot.data.dataset import COLUMNS

    cols = {k: getattr(point_data, k).copy() for k in COLUMNS}
    cols["rewards"][0] = np.nan
    path = _write_npz(tmp_path / "d.npz", {"format_version": 1, "task": "point", "meta": {}}, cols)
    with pytest.raises(DatasetError, match="no recorded digest"):
        Dataset.load(path)


def test_a_malformed_header_or_column_is_one_line(tmp_path, point_data):
    from bremen_robot.data.dataset import COLUMNS

    cols = {k: getattr(point_data, k) for k in COLUMNS}
    good = {"format_version": 1, "task": "point", "meta": {}, "digest": point_data.digest()}
    cases = {
        "no_task": ({"format_version": 1, "digest": point_data.digest()}, cols),
        "header_list": ([1, 2], cols),
        "meta_number": (dict(good, meta=5), cols),
        "string_obs": (good, {**cols, "obs": np.full(point_data.obs.shape, "abc")}),
        "scalar_obs": (good, {**cols, "obs": np.float32(1.0)}),
    }
    for name, (header, columns) in cases.items():
        path = _write_npz(tmp_path / f"{name}.npz", header, columns)
        with pytest.raises(DatasetError) as info:
            Dataset.load(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value), name


def test_a_per_row_column_that_is_not_one_value_per_row_is_refused(point_data):
    """A D4RL-style source with rewards or terminals stored N x 1 ('bremen dataset convert'):
    accepted, it was saved and failed later ('object too deep' in episode_returns)."""
    cols = {k: getattr(point_data, k) for k in ("obs", "actions", "next_obs")}
    for name in ("rewards", "terminals"):
        given = {**cols, "rewards": point_data.rewards, name: getattr(point_data, name).reshape(-1, 1)}
        with pytest.raises(DatasetError, match=f"column '{name}' has shape \\(2000, 1\\)"):
            Dataset.from_columns("point", given)


def test_of_two_writers_racing_for_one_path_the_second_never_replaces_the_first(
    tmp_path, point_data, monkeypatch
):
    """Two 'bremen dataset ingest --out d.npz' at once: both see no file, then both write."""
    import bremen_robot.data.dataset as dataset_module

    path = tmp_path / "d.npz"
    first = point_data.select(np.arange(10))
    real_write = dataset_module.atomic_write_bytes

    def other_writer_wins(target, data, **kwargs):
        monkeypatch.setattr(dataset_module, "atomic_write_bytes", real_write)
        first.save(path)  # lands between our existence check and our write
        real_write(target, data, **kwargs)

    monkeypatch.setattr(dataset_module, "atomic_write_bytes", other_writer_wins)
    with pytest.raises(DatasetError, match="already exists"):
        point_data.save(path)
    assert len(Dataset.load(path)) == 10


def test_merge_refuses_an_episode_that_two_inputs_both_hold(point_data):
    """'bremen dataset merge d1.npz d1.npz' or 'merge d1.npz d1+d2.npz': merged, every episode of
    d1 counted twice (double weight in training, doubled returns statistics) without a word."""
    part = point_data.select(point_data.episode_ids >= 40)  # 10 of the 50 episodes
    for inputs in ([point_data, point_data], [part, point_data]):
        with pytest.raises(DatasetError, match="dataset 2 repeats an episode of dataset 1") as info:
            merge(inputs)
        assert "\n" not in str(info.value)
    assert len(merge([point_data.select(point_data.episode_ids < 40), part])) == 2000
