"""Fleet pieces without a cluster: splitting the budget, merging shards with provenance, the
dataset's optional robot column, sessions recorded once, and the node's own signature check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from bremen_robot.cluster.fleet import merge_shards, split_steps
from bremen_robot.data.dataset import Dataset
from bremen_robot.errors import BremenError


def _data(n: int, robot: str = "", seed: int = 0, action_dim: int = 1) -> Dataset:
    rng = np.random.default_rng(seed)
    cols = {
        "obs": rng.normal(size=(n, 2)),
        "actions": rng.normal(size=(n, action_dim)),
        "rewards": rng.normal(size=n),
        "next_obs": rng.normal(size=(n, 2)),
        "episode_ids": np.repeat(np.arange(n // 2 + 1), 2)[:n],
    }
    d = Dataset.from_columns("point", cols)
    d.robot[:] = robot
    return d


def test_split_steps_even_with_remainder_first() -> None:
    assert split_steps(3000, ["a", "b"]) == {"a": 1500, "b": 1500}
    assert split_steps(1001, ["a", "b", "c"]) == {"a": 334, "b": 334, "c": 333}
    with pytest.raises(BremenError, match="fewer than the fleet's 3 robots"):
        split_steps(2, ["a", "b", "c"])


def test_merge_shards_keeps_each_rows_robot_and_the_deployment() -> None:
    merged = merge_shards({"panda-a": _data(6, "panda-a", 1), "panda-b": _data(4, "panda-b", 2)}, 3)
    assert list(merged.robot) == ["panda-a"] * 6 + ["panda-b"] * 4
    assert set(merged.deployment_ids.tolist()) == {3}
    assert len(set(merged.episode_ids[:6]) & set(merged.episode_ids[6:])) == 0


def test_merge_shards_refuses_a_shard_labelled_with_another_robot() -> None:
    with pytest.raises(BremenError, match="shard from robot 'panda-b' labels its rows"):
        merge_shards({"panda-a": _data(4, "panda-a"), "panda-b": _data(4, "panda-a")}, 1)


def test_robot_column_round_trips_and_old_datasets_keep_their_digest(tmp_path: Path) -> None:
    plain = _data(6)
    # the digest as versions before the robot column computed it: these ten columns, in this order
    h = hashlib.sha256(b"bremen-dataset-v1:point")
    for name in (
        "obs",
        "actions",
        "rewards",
        "next_obs",
        "terminals",
        "timeouts",
        "episode_ids",
        "deployment_ids",
        "policy_sha256",
        "interventions",
    ):
        arr = getattr(plain, name)
        h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr.tobytes())
    before = h.hexdigest()
    assert plain.digest() == before
    assert "robot" not in plain.columns()
    path = plain.save(tmp_path / "plain.npz")
    with np.load(path) as z:
        assert "robot" not in z.files
    assert Dataset.load(path).digest() == before
    tagged = _data(6, "panda-a")
    assert tagged.digest() != before  # provenance is part of the identity once present
    back = Dataset.load(tagged.save(tmp_path / "tagged.npz"))
    assert list(back.robot) == ["panda-a"] * 6
    assert list(back.select(np.arange(6) < 2).robot) == ["panda-a"] * 2


def test_sessions_are_recorded_once(tmp_path: Path) -> None:
    from bremen_robot.registry import Registry
    from bremen_robot.registry.sessions import record_session, sessions

    with Registry.open(tmp_path) as reg:
        reg.record_random_deployment("test")
        s = {
            "policy_id": "random",
            "round": 1,
            "robot": "panda-a",
            "node": "h:panda-a",
            "samples": 100,
            "episodes": 1,
            "interventions": 0,
        }
        assert record_session(reg, s) is True
        assert record_session(reg, {**s, "samples": 999}) is False  # a resumed campaign re-sends it
        record_session(reg, {**s, "robot": "panda-b", "samples": 50})
        got = [(x.robot, x.samples) for x in sessions(reg)]
    assert got == [("panda-a", 100), ("panda-b", 50)]


def test_robot_join_refuses_a_robot_that_trusts_nobody_in_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from bremen_robot.cli import main

    repo = Path(__file__).resolve().parents[2]
    robot = yaml.safe_load((repo / "configs/robots/panda.yaml").read_text())
    robot["safety"] = str(repo / "configs/safety/panda.yaml")
    robot.pop("reset")  # its limits path is relative to configs/robots/
    cfg = tmp_path / "panda.yaml"
    cfg.write_text(yaml.safe_dump(robot))
    code = main(["robot", "join", "--address", "127.0.0.2:1", "--robot", str(cfg), "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "trusted_operator_keys: empty" in err, err


def test_a_cut_short_bag_is_set_aside_and_ingested_once_per_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """salvage_kept: an unreturned bag is renamed aside, its complete episodes ingested once
    (a second task for the round reuses them, never ingests them again), another policy's
    episodes are kept on disk but not returned, and a bag with no closed episode gives nothing."""
    import bremen_robot.campaign.runner as runner
    from bremen_robot.cluster.salvage import salvage_kept
    from bremen_robot.errors import DatasetError

    calls: list[str] = []

    def fake_ingest(bag: Path, k: int, task: str) -> Dataset:  # the bag's "content": rows, policy
        calls.append(bag.name)
        rows, policy = (bag / "content").read_text().split()
        if rows == "0":
            raise DatasetError(f"no complete episode with transitions in {bag}")
        d = _data(int(rows), seed=len(calls), action_dim=2)  # the point task's sizes
        d.policy_sha256[:] = policy
        return d

    monkeypatch.setattr(runner, "ingest_bag", fake_ingest)
    ddir = tmp_path / "d1"

    def bag(rows: int, policy: str) -> None:
        (ddir / "bag").mkdir(parents=True)
        (ddir / "bag" / "content").write_text(f"{rows} {policy}")

    bag(6, "random")
    parts, notes = salvage_kept(ddir, "random", "point", 1)
    assert [len(p) for p in parts] == [6] and (ddir / "bag.interrupted-1" / "content").is_file()
    assert not (ddir / "bag").exists() and calls == ["bag.interrupted-1"]
    parts, _ = salvage_kept(ddir, "random", "point", 1)  # the same round asked again
    assert [len(p) for p in parts] == [6] and calls == ["bag.interrupted-1"]
    bag(4, "f" * 64)  # a bag of another policy (the round's candidate was replaced meanwhile)
    parts, notes = salvage_kept(ddir, "random", "point", 1)
    assert [len(p) for p in parts] == [6] and any("not this round's" in n for n in notes)
    assert [len(p) for p in salvage_kept(ddir, "f" * 64, "point", 1)[0]] == [4]
    bag(0, "random")  # killed before its first episode closed
    parts, _ = salvage_kept(ddir, "random", "point", 1)
    assert [len(p) for p in parts] == [6] and (ddir / "bag.interrupted-3").is_dir()
    assert calls == ["bag.interrupted-1", "bag.interrupted-2", "bag.interrupted-3"]


def test_salvage_waits_for_a_logger_that_outlives_its_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed collection's logger stops in order on its own SIGTERM: the salvage moves the bag
    aside only once the logger is gone, so the logger cannot start a fresh d<k>/bag beside it; a
    logger that never stops makes the task fail in one line, the bag untouched."""
    import subprocess
    import sys
    import time

    import bremen_robot.cluster.salvage as salvage

    script = (
        "import sys, time\n"
        "from bremen_robot.ros.bagfile import SegmentedBagWriter\n"
        "w = SegmentedBagWriter(sys.argv[1]); print('OPEN', flush=True)\n"
        "time.sleep(float(sys.argv[2])); w.close(); time.sleep(600)\n"
    )
    ddir = tmp_path / "d1"

    def logger(hold_s: float) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, "-c", script, str(ddir / "bag"), str(hold_s)], stdout=subprocess.PIPE, text=True
        )
        assert p.stdout is not None and p.stdout.readline().strip() == "OPEN"
        return p

    proc = logger(1.5)
    try:
        t0 = time.monotonic()
        parts, notes = salvage.salvage_kept(ddir, "random", "point", 1)  # the bag has no episode
        assert time.monotonic() - t0 >= 1.0  # it waited for the logger's close
        assert parts == [] and (ddir / "bag.interrupted-1" / "metadata.yaml").is_file()
        assert not (ddir / "bag").exists()
    finally:
        proc.kill()
        proc.wait()
    monkeypatch.setattr(salvage, "WRITER_WAIT_S", 0.5)
    stuck = logger(600)
    try:
        with pytest.raises(BremenError, match="still being written .* stop that process"):
            salvage.salvage_kept(ddir, "random", "point", 1)
        assert (ddir / "bag" / ".partial").is_dir() and not (ddir / "bag.interrupted-2").exists()
    finally:
        stuck.kill()
        stuck.wait()


def test_a_robot_share_says_which_episodes_its_ingest_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's share carries the ingest's warnings into its note, which the campaign logs:
    a session of 10 usable episodes out of 15 complete ones must not pass as a clean share."""
    from types import SimpleNamespace

    import bremen_robot.campaign.runner as runner
    import bremen_robot.cluster.node as node

    left_out = "bag: episode(s) 11, 12 logged as complete gave no usable transition and were left out"

    def fake_ingest(bag: Path, k: int, task: str) -> Dataset:
        d = _data(6, action_dim=2)  # the point task's sizes
        d.meta = {"bags": [{"bag": str(bag), "warnings": [left_out]}]}
        return d

    monkeypatch.setattr(runner, "ingest_bag", fake_ingest)
    monkeypatch.setattr(node, "_collect_in_child", lambda req: {"steps": 6, "interventions": 0})
    job = {"round": 1, "steps": 6, "collect_yaml": "{}", "seed": 0, "sigma": 0.1}
    info = {"name": "panda-a", "robot_config": str(tmp_path / "panda-a.yaml")}
    robot = SimpleNamespace(task="point", name="point-robot")
    ddir = tmp_path / "d1"
    ddir.mkdir()
    out = node._share(job, info, robot, tmp_path, ddir, "random")  # type: ignore[arg-type]
    assert out["samples"] == 6
    assert out["note"] == left_out


def test_a_damaged_shard_fails_its_robot_only_and_the_others_are_stored(tmp_path: Path) -> None:
    """A shard that arrives truncated must not stop the gathering: the robots whose shards come
    after it are stored (and never asked again), the damaged one is a failure of its robot."""
    from types import SimpleNamespace

    from bremen_robot.cluster.fleet import FleetCollector

    good = _data(6, "panda-b", 1)
    good_path = good.save(tmp_path / "good.npz")
    results = {
        "ref-a": {"robot": "panda-a", "shard": good_path.read_bytes()[:100], "data_digest": "x" * 64},
        "ref-b": {"robot": "panda-b", "shard": good_path.read_bytes(), "data_digest": good.digest()},
    }
    fake_ray = SimpleNamespace(
        wait=lambda refs, num_returns: (refs[:1], refs[1:]), get=lambda ref: dict(results[ref])
    )
    logged: list[str] = []
    collector = FleetCollector(SimpleNamespace(ray=fake_ray, log=logged.append))  # type: ignore[arg-type]
    shards = tmp_path / "shards"
    shards.mkdir()
    failures = collector._gather({"panda-a": "ref-a", "panda-b": "ref-b"}, shards)
    assert failures == {
        "panda-a": "robot panda-a: its shard arrived damaged (unreadable, or its digest differs)"
    }
    assert sorted(p.name for p in shards.iterdir()) == ["panda-b.json", "panda-b.npz"]
    assert Dataset.load(shards / "panda-b.npz").digest() == good.digest()


def test_a_second_campaign_of_the_same_name_does_not_take_the_firsts_bags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node keeps one folder per campaign name. A fresh workspace running a campaign of the
    same name (a preset's name, a restart from scratch) must not salvage the first campaign's
    round-1 bag (the random policy in both) as its own deployment 1 without running the robot."""
    import json
    from types import SimpleNamespace

    import bremen_robot.campaign.runner as runner
    import bremen_robot.cluster.node as node

    node_dir = tmp_path / "node"
    node_dir.mkdir()
    (node_dir / "node.json").write_text(json.dumps({"name": "panda-a", "robot_config": "panda-a.yaml"}))
    monkeypatch.setenv("BREMEN_NODE_DIR", str(node_dir))
    monkeypatch.setattr(node, "load_robot_config", lambda path: SimpleNamespace(task="point", name="pt"))
    monkeypatch.setattr(node, "check_same_kind", lambda robot, kind: None)
    collected: list[int] = []

    def fake_collect(req: runner.CollectRequest) -> dict[str, int]:  # the robot runs: a bag appears
        collected.append(req.steps)
        req.out_bag.mkdir(parents=True)
        (req.out_bag / "content").write_text(str(req.steps))
        return {"steps": req.steps, "interventions": 0}

    def fake_ingest(bag: Path, k: int, task: str) -> Dataset:
        d = _data(int((bag / "content").read_text()), seed=len(collected), action_dim=2)
        d.policy_sha256[:] = "random"
        return d

    monkeypatch.setattr(node, "_collect_in_child", fake_collect)
    monkeypatch.setattr(runner, "ingest_bag", fake_ingest)
    job = {"campaign": "quickstart", "round": 1, "steps": 6, "collect_yaml": "{}", "seed": 0, "sigma": 0.0}
    job.update(kind={}, policy=None)
    first = node.collect_on_node({**job, "campaign_id": "a" * 32})
    assert first["samples"] == 6 and first["salvaged_samples"] == 0 and collected == [6]
    with pytest.raises(BremenError, match="holds the campaign of another workspace .* another name"):
        node.collect_on_node({**job, "campaign_id": "b" * 32})
    assert collected == [6] and (node_dir / "quickstart" / "d1" / "bag" / "content").is_file()
    again = node.collect_on_node({**job, "campaign_id": "a" * 32, "round": 2})  # the first goes on
    assert again["samples"] == 6 and collected == [6, 6]
    # the name is a folder under the node's dir: a job naming one elsewhere is refused before any
    with pytest.raises(BremenError, match=r"campaign name '\.\./outside' is not a plain name"):
        node.collect_on_node({**job, "campaign": "../outside", "campaign_id": "c" * 32})
    assert not (tmp_path / "outside").exists() and collected == [6, 6]


def test_a_workspace_keeps_one_campaign_id(tmp_path: Path) -> None:
    from bremen_robot.cluster.fleet import campaign_id

    (tmp_path / "campaign.json").write_text('{"name": "q", "config_digest": "00"}')
    got = campaign_id(tmp_path)
    assert len(got) == 32 and campaign_id(tmp_path) == got
    other = tmp_path / "other"
    other.mkdir()
    (other / "campaign.json").write_text('{"name": "q", "config_digest": "00"}')
    assert campaign_id(other) != got


@pytest.mark.parametrize(
    "layout, expected",
    # a share retried after 2 kept parts: spaced 2 << 16 = 131,072 on; sliding 2 * 7919 = 15,838
    [
        ({"seed_layout": "spaced"}, 5_000 + 131_072),
        ({"seed_layout": "sliding"}, 5_000 + 15_838),
        ({}, 5_000 + 15_838),
    ],
)
def test_a_retried_share_starts_past_the_episodes_its_kept_parts_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: dict[str, str], expected: int
) -> None:
    """A job from a workstation without the field (before the seed layouts) retries as sliding."""
    from types import SimpleNamespace

    import bremen_robot.campaign.runner as runner
    import bremen_robot.cluster.node as node
    import bremen_robot.cluster.salvage as salvage

    seeds: list[int] = []

    def fake_collect(req: runner.CollectRequest) -> dict[str, int]:
        seeds.append(req.seed)
        return {"steps": 0, "interventions": 0}

    kept = [_data(2, action_dim=2), _data(2, seed=1, action_dim=2)]
    monkeypatch.setattr(salvage, "salvage_kept", lambda *a: (kept, []))
    monkeypatch.setattr(node, "_collect_in_child", fake_collect)
    monkeypatch.setattr(runner, "ingest_bag", lambda bag, k, task: _data(2, seed=2, action_dim=2))
    job = {"round": 1, "steps": 10, "collect_yaml": "{}", "seed": 5_000, "sigma": 0.1, **layout}
    info = {"name": "panda-a", "robot_config": str(tmp_path / "panda-a.yaml")}
    ddir = tmp_path / "d1"
    ddir.mkdir()
    node._share(job, info, SimpleNamespace(task="point", name="pt"), tmp_path, ddir, "random")  # type: ignore[arg-type]
    assert seeds == [expected]
