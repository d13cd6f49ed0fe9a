"""Faults on a real two-robot Ray cluster (the package's ``lab``): a robot's collection killed
mid-way keeps the episodes its logger had closed, an e-stop stops one robot alone, and neither a
resume nor a re-run counts anything twice (docs/cluster.md "Faults")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
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
# steps per robot in 30-step episodes: a fault after the first lands mid-way. 15 episodes, since
# under load the e-stop's publisher is discovered by the robot's runner only seconds after it
# publishes (one CI run: 9 of 10 episodes were done by then)
SHARE, EP = 450, 30


def listed(bag: Path, status: str = "complete") -> list[dict[str, Any]]:
    """The episodes a bag's metadata lists with ``status`` (read here, not through the code under test)."""
    try:
        info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        return [e for e in json.loads(info["custom_data"]["bremen.episodes"]) if e.get("status") == status]
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return []


def _collection_pids(bag: Path) -> list[int]:
    """The node's collection process for ``bag`` (a session leader: its graph shares its group)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "collect_through_graph" in cmd and str(bag) in cmd:
            pids.append(int(d.name))
    return pids


class AfterFirstEpisode(threading.Thread):
    """Calls ``action`` once ``bag`` lists a complete episode (a fault in the middle of a share)."""

    def __init__(self, bag: Path, action: Callable[[], str]) -> None:
        super().__init__(daemon=True)
        self.bag, self.action, self.done = bag, action, threading.Event()
        self.result = "never triggered"

    def run(self) -> None:
        while not self.done.is_set():
            if listed(self.bag):
                self.result = self.action()
                return
            time.sleep(0.02)


def kill_collection(bag: Path) -> Callable[[], str]:
    def act() -> str:
        pids = _collection_pids(bag)
        for pid in pids:
            os.killpg(pid, signal.SIGKILL)  # the collection and its ROS 2 graph, no clean stop
        return f"killed {pids}" if pids else "no collection process found"

    return act


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


def short_episodes(lab: dict[str, Any]) -> Path:
    """The quickstart's collect config with EP-step episodes (a share is then many episodes)."""
    repo = Path(__file__).resolve().parents[2]
    cfg = yaml.safe_load((repo / "configs/collect/panda-mujoco.yaml").read_text())
    cfg.update(robot=str(repo / "configs/robots/panda.yaml"), episode_steps=EP)
    path = Path(str(lab["tmp"])) / "collect-short.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def one_round_that_waits(lab: dict[str, Any], fleet_campaign: Any, name: str) -> Path:
    """One deployment of two shares in short episodes; a lost robot stops the campaign (``wait``)."""
    return Path(
        fleet_campaign(
            name,
            deployments=1,
            steps_per_deployment=2 * SHARE,
            fleet_on_robot_loss="wait",
            collect=str(short_episodes(lab)),
        )
    )


def node_round(lab: dict[str, Any], robot: str, campaign: str, k: int) -> Path:
    return Path(str(lab["tmp"])) / f"node-{robot}" / campaign / f"d{k}"


def session_rows(ws: Path) -> list[tuple[int, str, int, int]]:
    from bremen_robot.registry import Registry
    from bremen_robot.registry.sessions import sessions

    with Registry.open(ws, readonly=True) as reg:
        return [(s.round, s.robot, s.samples, s.episodes) for s in sessions(reg)]


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


def test_a_robot_node_that_dies_mid_collection_keeps_its_episodes_for_the_rerun(
    lab: dict[str, Any], run_campaign: Any, fleet_campaign: Any
) -> None:
    """The node itself dies (Ray on panda-a's PC: raylet and all, SIGKILL) after the first episode:
    the campaign (``fleet_on_robot_loss: wait``) stops and says to re-run, keeping panda-b's
    shard. The collection is its own process on the robot PC and ends on its own (it finishes its
    share, or stops in order when its Ray worker goes), so its bag stays on the robot's disk; once
    the PC joins again, the re-run salvages its closed episodes and collects only the steps still
    missing (none if it had finished), and does not ask panda-b again.

    A collection killed while its node lives fails its Ray task the same way (``_gather``), and
    its bag is salvaged by the same code: the ``faults`` campaign above covers that case."""
    from tests.cluster.conftest import kill_node, rejoin

    name = "node-gone"
    camp = one_round_that_waits(lab, fleet_campaign, name)
    ws = Path(str(lab["tmp"])) / "ws-node-gone"
    d1a = node_round(lab, "panda-a", name, 1)
    killer = AfterFirstEpisode(d1a / "bag", lambda: f"killed node {kill_node(lab, 'panda-a')}")
    killer.start()
    try:
        first = run_campaign(camp, ws)
    finally:
        killer.done.set()
        rejoin(lab, "panda-a")  # the later tests of the package need the node back either way
    assert killer.result.startswith("killed node [") and killer.result != "killed node []", killer.result
    out = first.stdout + first.stderr
    assert first.returncode != 0 and "re-run the same command" in out, out[-3000:]
    assert "panda-a" in out and not (ws / "d1" / "shards" / "panda-a.json").exists()
    assert (ws / "d1" / "shards" / "panda-b.json").is_file()
    b_shard = (ws / "d1" / "shards" / "panda-b.npz").read_bytes()
    second = run_campaign(camp, ws)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    salvaged, anew = listed(d1a / "bag.interrupted-1"), listed(d1a / "bag")
    assert salvaged, listed(d1a / "bag.interrupted-1", "incomplete")
    assert not (d1a / "bag.interrupted-2").exists()  # one interrupted bag, no fresh one beside it
    steps = sum(int(e["steps"]) for e in salvaged) + sum(int(e["steps"]) for e in anew)
    assert SHARE <= steps < SHARE + EP  # nothing collected twice, nothing missing
    rows = {r[1]: r for r in session_rows(ws)}
    assert sorted(rows) == ["panda-a", "panda-b"] and len(session_rows(ws)) == 2
    assert rows["panda-a"][3] == len(salvaged) + len(anew)
    assert rows["panda-a"][2] >= 0.9 * SHARE
    # panda-b was not asked again: its shard is the one stored before, its bag was never set aside
    assert (ws / "d1" / "shards" / "panda-b.npz").read_bytes() == b_shard
    assert not list(node_round(lab, "panda-b", name, 1).glob("bag.interrupted-*"))
