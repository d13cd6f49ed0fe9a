"""A real multi-node Ray cluster on this machine: a head and two robot nodes, each its own
``ray start`` process (the robot nodes through ``bremen robot join``), token authentication on,
every node on its own loopback address and each robot node with its own ROS_DOMAIN_ID."""

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

pytest.importorskip("ray", reason="ray (cluster extra) missing: pip install -e '.[cluster]'")
RCLPY_OK, RCLPY_WHY = rclpy_status()
pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(not RCLPY_OK, reason=RCLPY_WHY or "rclpy (ros extra) missing"),
]


@pytest.fixture(scope="module")
def fleet_summary(lab: dict[str, object], run_campaign: Any, fleet_campaign: Any) -> dict[str, object]:
    camp = fleet_campaign("fleet-quickstart")
    ws = Path(str(lab["ws"]))
    proc = run_campaign(camp, ws)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(json.loads((ws / "summary.json").read_text()))


def test_fleet_campaign_records_one_deployment_per_policy_with_a_session_per_robot(
    lab: dict[str, object], fleet_summary: dict[str, object]
) -> None:
    from bremen_robot.data.dataset import Dataset
    from bremen_robot.registry import Registry
    from bremen_robot.registry.sessions import sessions

    ws = Path(str(lab["ws"]))
    assert fleet_summary["deployment_count"] == 2
    with Registry.open(ws, readonly=True) as reg:
        rows = sessions(reg)
        deployed = {r.sha256: r.deployments for r in reg.policies() if r.deployments}
    assert len(deployed) == 2
    for k in (1, 2):
        mine = [s for s in rows if s.round == k]
        assert sorted(s.robot for s in mine) == ["panda-a", "panda-b"]
        assert len({s.policy_sha256 for s in mine}) == 1
        data = Dataset.load(ws / f"d{k}" / "data.npz")
        assert sum(s.samples for s in mine) == len(data)
        assert {r: int((data.robot == r).sum()) for r in ("panda-a", "panda-b")} == {
            s.robot: s.samples for s in mine
        }
        assert all(s.samples >= 150 for s in mine)  # each robot ran its half of the 400 steps
    # the bags stayed on the robot nodes' disks; the workstation holds shards only
    assert not (ws / "d1" / "bag").exists()
    assert (Path(str(lab["tmp"])) / "node-panda-a" / "fleet-quickstart" / "d1" / "bag").is_dir() or any(
        (Path(str(lab["tmp"])) / "node-panda-a").glob("*/d1/bag")
    )
    out = subprocess.run(
        [sys.executable, "-m", "bremen_robot", "policies", "--workspace", str(ws)],
        capture_output=True,
        text=True,
        env=dict(lab["env"]),  # type: ignore[arg-type]
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("panda-a") >= 2 and "collection sessions" in out.stdout


def test_a_node_that_does_not_trust_the_approver_refuses_the_policy(
    lab: dict[str, object], fleet_summary: dict[str, object]
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
