"""What the live cluster tests share besides the lab itself: reading a bag's episode list
(independently of the code under test), a fault that fires once a bag lists its first complete
episode, short-episode collect configs, and the registry's session rows."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

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


def short_episodes(lab: dict[str, Any]) -> Path:
    """The quickstart's collect config with EP-step episodes (a share is then many episodes)."""
    repo = Path(__file__).resolve().parents[2]
    cfg = yaml.safe_load((repo / "configs/collect/panda-mujoco.yaml").read_text())
    cfg.update(robot=str(repo / "configs/robots/panda.yaml"), episode_steps=EP)
    path = Path(str(lab["tmp"])) / "collect-short.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def node_round(lab: dict[str, Any], robot: str, campaign: str, k: int) -> Path:
    return Path(str(lab["tmp"])) / f"node-{robot}" / campaign / f"d{k}"


def session_rows(ws: Path) -> list[tuple[int, str, int, int]]:
    from bremen_robot.registry import Registry
    from bremen_robot.registry.sessions import sessions

    with Registry.open(ws, readonly=True) as reg:
        return [(s.round, s.robot, s.samples, s.episodes) for s in sessions(reg)]
