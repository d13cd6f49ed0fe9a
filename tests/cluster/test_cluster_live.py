"""A real multi-node Ray cluster on this machine: a head and two robot nodes, each its own
``ray start`` process (the robot nodes through ``bremen robot join``), token authentication on,
every node on its own loopback address and each robot node with its own ROS_DOMAIN_ID.

The quickstart campaign on the fleet [panda-a, panda-b] runs as a lab would live it: deployment 1
goes through cleanly; in deployment 2 the Ray node on panda-a's PC dies (raylet and all, SIGKILL)
after the first episode. With ``fleet_on_robot_loss: wait`` the campaign stops and says to re-run;
the PC joins again and the same command finishes the campaign. One campaign for both stories,
since every fleet campaign costs seconds of start-up for each robot and deployment."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bremen_robot.ros import rclpy_status
from tests.cluster.lab_tools import (
    EP,
    SHARE,
    AfterFirstEpisode,
    listed,
    node_round,
    session_rows,
    short_episodes,
)

pytest.importorskip("ray", reason="ray (cluster extra) missing: pip install -e '.[cluster]'")
RCLPY_OK, RCLPY_WHY = rclpy_status()
pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(not RCLPY_OK, reason=RCLPY_WHY or "rclpy (ros extra) missing"),
]
NAME = "fleet-quickstart"


@pytest.fixture(scope="module")
def fleet(lab: dict[str, Any], run_campaign: Any, fleet_campaign: Any) -> dict[str, Any]:
    """The campaign's two runs (see the module docstring) and what the workstation held between them."""
    from tests.cluster.conftest import kill_node, rejoin

    camp = fleet_campaign(
        NAME,
        steps_per_deployment=2 * SHARE,
        fleet_on_robot_loss="wait",
        collect=str(short_episodes(lab)),
    )
    ws = Path(str(lab["ws"]))
    d2a = node_round(lab, "panda-a", NAME, 2)
    killer = AfterFirstEpisode(d2a / "bag", lambda: f"killed node {kill_node(lab, 'panda-a')}")
    killer.start()
    try:
        first = run_campaign(camp, ws)
    finally:
        killer.done.set()
        rejoin(lab, "panda-a")  # the later tests of the package need the node back either way
    between = {
        "rows": session_rows(ws),
        "b_shard": (ws / "d2" / "shards" / "panda-b.npz").read_bytes()
        if (ws / "d2" / "shards" / "panda-b.npz").is_file()
        else None,
        "a_shard_stored": (ws / "d2" / "shards" / "panda-a.json").exists(),
        "b_record_stored": (ws / "d2" / "shards" / "panda-b.json").is_file(),  # what the re-run skips by
    }
    second = run_campaign(camp, ws)
    return {"first": first, "second": second, "killed": killer.result, "between": between, "ws": ws}


def test_fleet_campaign_records_one_deployment_per_policy_with_a_session_per_robot(
    lab: dict[str, Any], fleet: dict[str, Any]
) -> None:
    from bremen_robot.data.dataset import Dataset
    from bremen_robot.registry import Registry
    from bremen_robot.registry.sessions import sessions

    second, ws = fleet["second"], fleet["ws"]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert json.loads((ws / "summary.json").read_text())["deployment_count"] == 2
    with Registry.open(ws, readonly=True) as reg:
        rows = sessions(reg)
        deployed = {r.sha256: r.deployments for r in reg.policies() if r.deployments}
    assert sorted(deployed.values()) == [[1], [2]]  # one deployment per policy, the re-run counted none
    for k in (1, 2):
        mine = [s for s in rows if s.round == k]
        assert sorted(s.robot for s in mine) == ["panda-a", "panda-b"]
        assert len({s.policy_sha256 for s in mine}) == 1
        data = Dataset.load(ws / f"d{k}" / "data.npz")
        assert sum(s.samples for s in mine) == len(data)
        assert {r: int((data.robot == r).sum()) for r in ("panda-a", "panda-b")} == {
            s.robot: s.samples for s in mine
        }
        assert all(s.samples >= 0.9 * SHARE for s in mine)  # each robot ran its half of the steps
    # the bags stayed on the robot nodes' disks; the workstation holds shards only
    assert not list(ws.glob("d*/bag"))
    assert listed(node_round(lab, "panda-a", NAME, 1) / "bag")
    assert listed(node_round(lab, "panda-b", NAME, 1) / "bag")
    out = subprocess.run(
        [sys.executable, "-m", "bremen_robot", "policies", "--workspace", str(ws)],
        capture_output=True,
        text=True,
        env=dict(lab["env"]),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("panda-a") >= 2 and "collection sessions" in out.stdout


def test_a_robot_node_that_dies_mid_collection_keeps_its_episodes_for_the_rerun(
    lab: dict[str, Any], fleet: dict[str, Any]
) -> None:
    """The node dies after panda-a's first episode of deployment 2: the first run stops and says to
    re-run, keeping panda-b's shard. The collection is its own process on the robot PC and ends on
    its own (it finishes its share, or stops in order when its Ray worker goes), so its bag stays
    on the robot's disk; once the PC joins again, the re-run salvages its closed episodes and
    collects only the steps still missing (none if it had finished), and does not ask panda-b again.

    A collection killed while its node lives fails its Ray task the same way (``_gather``), and
    its bag is salvaged by the same code: test_cluster_faults.py covers that case."""
    first, second, between, ws = fleet["first"], fleet["second"], fleet["between"], fleet["ws"]
    killed = fleet["killed"]
    assert killed.startswith("killed node [") and killed != "killed node []", killed
    out = first.stdout + first.stderr
    assert first.returncode != 0 and "re-run the same command" in out, out[-3000:]
    assert "panda-a" in out and not between["a_shard_stored"]
    assert between["b_shard"] is not None and between["b_record_stored"]
    assert sorted((r[0], r[1]) for r in between["rows"]) == [(1, "panda-a"), (1, "panda-b")]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    d2a = node_round(lab, "panda-a", NAME, 2)
    salvaged, anew = listed(d2a / "bag.interrupted-1"), listed(d2a / "bag")
    assert salvaged, listed(d2a / "bag.interrupted-1", "incomplete")
    assert not (d2a / "bag.interrupted-2").exists()  # one interrupted bag, no fresh one beside it
    steps = sum(int(e["steps"]) for e in salvaged) + sum(int(e["steps"]) for e in anew)
    assert SHARE <= steps < SHARE + EP  # nothing collected twice, nothing missing
    rows = {r[1]: r for r in session_rows(ws) if r[0] == 2}
    assert sorted(rows) == ["panda-a", "panda-b"] and len(session_rows(ws)) == 4
    assert rows["panda-a"][3] == len(salvaged) + len(anew)
    assert rows["panda-a"][2] >= 0.9 * SHARE
    # panda-b was not asked again: its shard is the one stored before, its bag was never set aside
    assert (ws / "d2" / "shards" / "panda-b.npz").read_bytes() == between["b_shard"]
    assert not list(node_round(lab, "panda-b", NAME, 2).glob("bag.interrupted-*"))


def test_a_node_that_does_not_trust_the_approver_refuses_the_policy(
    lab: dict[str, object], fleet: dict[str, Any]
) -> None:
    from bremen_robot.registry import init_operator

    tmp = Path(str(lab["tmp"]))
    ws = Path(str(lab["ws"]))
    _, other = init_operator("someone-else", tmp / "other-keys")
    cfg = Path(lab["configs"]["panda-b"])  # type: ignore[index]
    before = cfg.read_text()
    robot = yaml.safe_load(before)
    robot["trusted_operator_keys"] = [str(other)]  # the robot PC's admin trusts only someone else
    cfg.write_text(yaml.safe_dump(robot))
    try:
        _refused(lab, ws, tmp, robot)
    finally:
        cfg.write_text(before)  # the other live tests (same cluster) need panda-b as it was


def _refused(lab: dict[str, object], ws: Path, tmp: Path, robot: dict[str, object]) -> None:
    from bremen_robot.cluster.fleet import policy_bundle
    from bremen_robot.registry import Registry

    with Registry.open(ws, readonly=True) as reg:
        approved = [r for r in reg.policies() if r.approval is not None][0]
        bundle = policy_bundle(reg, approved.id)
    job = {
        "campaign": "refusal",
        "round": 1,
        "policy": bundle,
        "collect_yaml": "",
        "sigma": 0.0,
        "steps": 100,
        "seed": 0,
        "kind": {"name": "panda", "task": "panda_reach", "joints": robot["joints"]},
    }
    (tmp / "job.pkl").write_bytes(pickle.dumps(job))
    script = f"""
import pickle, ray
from bremen_robot.cluster.fleet import _one_line
from bremen_robot.cluster.node import collect_on_node
ray.init(address={str(lab["head"])!r}, logging_level="ERROR", log_to_driver=False)
job = pickle.loads(open({str(tmp / "job.pkl")!r}, "rb").read())
task = ray.remote(num_cpus=0, resources={{"robot:panda-b": 1}}, max_retries=0)(collect_on_node)
try:
    ray.get(task.remote(job), timeout=120)
    print("RAN")
except Exception as exc:
    print("REFUSED " + _one_line(exc))
"""
    env = dict(lab["env"])  # type: ignore[call-overload]
    proc = subprocess.run(
        [*lab["prefix"], sys.executable, "-c", script],  # type: ignore[misc]
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert line.startswith("REFUSED "), line
    assert "robot 'panda' " in line and "refuses policy" in line and "'demo-operator'" in line, line
    assert not any((tmp / "node-panda-b" / "refusal").glob("d1/bag")), "nothing may run"
    assert not (tmp / "node-panda-b" / "refusal" / "registry.sqlite").exists()


def test_every_ray_process_of_the_lab_can_be_reached_on_the_loopback_only(lab: dict[str, Any]) -> None:
    """Ray listens on every interface it has: each of the lab's Ray processes (GCS, the three
    raylets) must sit in the lab's network namespace, whose only interface is ``lo``."""
    island = lab["island"]
    if island is None:
        pytest.skip(f"no loopback-only namespace on this machine: {lab['island_why']}")
    assert island.interfaces() == ["lo"]
    ns = os.readlink(f"/proc/{island.holder.pid}/ns/net")
    assert ns != os.readlink("/proc/self/ns/net")  # not the machine's own network
    temp = str(lab["temp_dir"]).encode()
    found: dict[str, list[str]] = {}
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes()
            if not proc.name.isdigit() or temp not in cmd:
                continue
            exe = Path(cmd.split(b"\0", 1)[0].decode()).name
            found.setdefault(exe, []).append(os.readlink(proc / "ns/net"))
        except OSError:
            continue
    assert len(found.get("gcs_server", [])) == 1 and len(found.get("raylet", [])) == 3, sorted(found)
    assert {n for spaces in found.values() for n in spaces} == {ns}


def test_robot_nodes_run_no_log_monitor(lab: dict[str, Any]) -> None:
    """The workstation's driver takes no worker logs (``log_to_driver=False``), so a robot node's
    log monitor would only tail files for nobody, on the PC that runs the robot's control loop:
    ``bremen robot join`` starts Ray without it. The head (plain ``ray start``) keeps its own."""
    temp = str(lab["temp_dir"]).encode()
    monitors = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and temp in cmd and b"log_monitor.py" in cmd:
            monitors.append(cmd.replace(b"\0", b" ").decode(errors="replace"))
    assert len(monitors) == 1, monitors
