"""Faults on a real two-robot Ray cluster (the package's ``lab``), with ``fleet_on_robot_loss:
finish_with_others``: a robot's collection killed mid-way keeps the episodes its logger had
closed and the deployment finishes, an e-stop stops one robot alone, and a resume counts nothing
twice (docs/cluster.md "Faults"). A whole robot node that dies, with ``wait``, is in
test_cluster_live.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bremen_robot.ros import rclpy_status
from tests.cluster.lab_tools import (
    EP,
    SHARE,
    AfterFirstEpisode,
    kill_collection,
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


def estop_button(lab: dict[str, Any], robot: str, bag: Path) -> subprocess.Popen[str]:
    """A latched ``bremen/estop`` = true on ``robot``'s DDS domain once ``bag`` lists a complete
    episode (a process of its own, started early so that rclpy is loaded when it matters)."""
    script = f"""
import json, time, yaml
from pathlib import Path
from bremen_robot.ros import apply_ros_env
apply_ros_env()
import rclpy
from std_msgs.msg import Bool
from bremen_robot.ros import topics as T
rclpy.init()
node = rclpy.create_node("test_estop_button")
pub = node.create_publisher(Bool, T.ESTOP, T.qos("latched"))
meta = Path({str(bag)!r}) / "metadata.yaml"
def complete():
    try:
        info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
        return any(e.get("status") == "complete" for e in json.loads(info["custom_data"]["bremen.episodes"]))
    except Exception:
        return False
while not complete():
    time.sleep(0.02)
pub.publish(Bool(data=True))
print("ESTOP", flush=True)
while True:
    rclpy.spin_once(node, timeout_sec=0.1)
"""
    env = {**lab["env"], "ROS_DOMAIN_ID": str(lab["domains"][robot])}
    return subprocess.Popen(
        [*lab["prefix"], sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )


@pytest.fixture(scope="module")
def faults(lab: dict[str, Any], run_campaign: Any, fleet_campaign: Any) -> Iterator[dict[str, Any]]:
    """Deployment 1: panda-a's collection is killed after its first episode; deployment 2: panda-b's
    e-stop latches after its first episode. fleet_on_robot_loss: finish_with_others (the default)."""
    name = "faults"
    camp = fleet_campaign(name, steps_per_deployment=2 * SHARE, collect=str(short_episodes(lab)))
    ws = Path(str(lab["tmp"])) / "ws-faults"
    kill = AfterFirstEpisode(
        node_round(lab, "panda-a", name, 1) / "bag",
        kill_collection(node_round(lab, "panda-a", name, 1) / "bag"),
    )
    kill.start()
    button = estop_button(lab, "panda-b", node_round(lab, "panda-b", name, 2) / "bag")
    try:
        proc = run_campaign(camp, ws)
    finally:
        kill.done.set()
        button.kill()
        button.wait(10)
    yield {"proc": proc, "ws": ws, "camp": camp, "name": name, "kill": kill.result, "button": button}


def test_a_killed_collection_keeps_its_closed_episodes_and_the_deployment_finishes(
    lab: dict[str, Any], faults: dict[str, Any]
) -> None:
    from bremen_robot.data.dataset import Dataset

    proc, ws = faults["proc"], faults["ws"]
    assert faults["kill"].startswith("killed ["), faults["kill"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    d1 = node_round(lab, "panda-a", faults["name"], 1)
    kept = d1 / "bag.interrupted-1"  # the killed collection's bag, set aside, never deleted
    closed = listed(kept)
    assert 1 <= len(closed) < SHARE // EP, closed
    assert not (d1 / "bag").exists()  # nothing was collected anew: the deployment went on
    rows = {r[1]: r for r in session_rows(ws) if r[0] == 1}
    a, b = rows["panda-a"], rows["panda-b"]
    assert a[3] == len(closed)  # exactly the episodes the logger had closed, no more
    assert 0.9 * sum(int(e["steps"]) for e in closed) <= a[2] <= sum(int(e["steps"]) for e in closed)
    assert b[2] >= 0.9 * SHARE
    data = Dataset.load(ws / "d1" / "data.npz")
    assert {r: int((data.robot == r).sum()) for r in ("panda-a", "panda-b")} == {
        "panda-a": a[2],
        "panda-b": b[2],
    }
    marker = json.loads((ws / "d1" / "collect.json").read_text())
    assert {s["robot"]: s["partial"] for s in marker["sessions"]} == {"panda-a": True, "panda-b": False}
    notes = {s["robot"]: s["note"] for s in marker["sessions"]}
    assert f"{a[2]} samples salvaged, 0 steps collected anew" in notes["panda-a"], notes
    assert notes["panda-b"] == ""


def test_an_estop_stops_that_robot_alone_and_its_share_is_kept(
    lab: dict[str, Any], faults: dict[str, Any]
) -> None:
    proc, ws = faults["proc"], faults["ws"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r[1]: r for r in session_rows(ws) if r[0] == 2}
    assert sorted(rows) == ["panda-a", "panda-b"], proc.stdout[-3000:]
    closed = listed(node_round(lab, "panda-b", faults["name"], 2) / "bag")
    assert 1 <= len(closed) < SHARE // EP, closed  # it stopped before its share was done
    assert rows["panda-b"][3] == len(closed)
    assert 0.9 * EP <= rows["panda-b"][2] < SHARE  # at least one episode was cut short
    assert rows["panda-a"][2] >= 0.9 * SHARE  # the other robot finished its share
    marker = json.loads((ws / "d2" / "collect.json").read_text())
    assert marker["estop"] == ["panda-b"] and marker["lost"] == []
    assert {s["robot"]: s["estop"] for s in marker["sessions"]} == {"panda-a": False, "panda-b": True}


def test_resuming_the_finished_campaign_counts_nothing_twice(
    lab: dict[str, Any], faults: dict[str, Any], run_campaign: Any
) -> None:
    from bremen_robot.registry import Registry

    ws = faults["ws"]
    before = session_rows(ws)
    with Registry.open(ws, readonly=True) as reg:
        counts = {r.sha256: r.deployments for r in reg.policies()}
    again = run_campaign(faults["camp"], ws)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert session_rows(ws) == before and len(before) == 4
    with Registry.open(ws, readonly=True) as reg:
        assert {r.sha256: r.deployments for r in reg.policies()} == counts
