"""A tiny campaign end to end through the real ROS 2 graph (separate processes, real DDS)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bremen_robot.ros import rclpy_status
from tests.ros_domains import random_domain

REPO = Path(__file__).resolve().parents[2]
RCLPY_OK, RCLPY_WHY = rclpy_status()
pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(not RCLPY_OK, reason=RCLPY_WHY or "rclpy (ros extra) missing"),
]


@pytest.fixture
def tiny_campaign(tmp_path: Path) -> Path:
    pytest.importorskip("mujoco", reason="mujoco (sim extra) missing")
    train = tmp_path / "train.yaml"
    train.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-panda",
                "task": "panda_reach",
                "threads": 1,
                # enough epochs that training is still running when the test kills the campaign
                "ensemble": {
                    "members": 2,
                    "hidden": [256, 256],
                    "max_epochs": 300,
                    "patience": 300,
                    "batch_size": 64,
                },
                "bc": {"hidden": [32], "steps": 300},
                "trpo": {"iterations": 3, "steps_per_iteration": 500, "horizon": 50, "init_log_std": -1.0},
            }
        )
    )
    camp = tmp_path / "campaign.yaml"
    camp.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-ros",
                "robot": str(REPO / "configs/robots/panda.yaml"),
                "collect": str(REPO / "configs/collect/panda-mujoco.yaml"),
                "train": str(train),
                "deployments": 2,
                "steps_per_deployment": 200,
                "evaluation": {"episodes": 2},
            }
        )
    )
    return camp


def _campaign(camp: Path, ws: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(random_domain(101, 200)),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bremen_robot",
            "campaign",
            "--config",
            str(camp),
            "--workspace",
            str(ws),
            "--quiet",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_tiny_campaign_killed_in_training_resumes_to_the_same_count(tiny_campaign: Path, tmp_path: Path):
    ws = tmp_path / "ws"
    proc = _campaign(tiny_campaign, ws, "--auto-approve")
    try:
        deadline = time.time() + 240
        while not (ws / "d1" / "train").is_dir():  # the trainer has started on deployment 1
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.time() < deadline, "deployment 1 never reached training"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the campaign and every node it started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert not (ws / "d1" / "train" / "manifest.json").exists(), "killed too late to test the resume"
    collected = (ws / "d1" / "collect.json").read_bytes()
    data = (ws / "d1" / "data.npz").read_bytes()

    again = _campaign(tiny_campaign, ws, "--auto-approve")
    out, _ = again.communicate(timeout=400)
    assert again.returncode == 0, out.decode()[-3000:]
    summary = json.loads((ws / "summary.json").read_text())
    assert summary["deployment_count"] == 2
    assert [r["policy_id"] for r in summary["deployments"]][0] == "random"
    assert summary["deployments"][1]["samples"] > summary["deployments"][0]["samples"] > 0
    # finished work was not redone and nothing written was lost
    assert (ws / "d1" / "collect.json").read_bytes() == collected
    assert (ws / "d1" / "data.npz").read_bytes() == data
    assert (ws / "d1" / "train.incomplete-1").is_dir()
    assert (ws / "d2" / "bag" / "metadata.yaml").is_file()


def test_auto_approve_with_real_hardware_is_refused(tiny_campaign: Path, tmp_path: Path):
    robot = yaml.safe_load((REPO / "configs/robots/panda.yaml").read_text())
    robot.update(simulated=False, safety=str(REPO / "configs/safety/panda.yaml"))
    robot["reset"]["limits"] = str(REPO / "configs/safety/panda-reset.yaml")  # relative in the shipped file
    (tmp_path / "real.yaml").write_text(yaml.safe_dump(robot))
    camp = yaml.safe_load(tiny_campaign.read_text())
    camp["robot"] = str(tmp_path / "real.yaml")
    tiny_campaign.write_text(yaml.safe_dump(camp))
    proc = _campaign(tiny_campaign, tmp_path / "ws", "--auto-approve")
    out, _ = proc.communicate(timeout=60)
    text = out.decode().strip()
    assert proc.returncode == 2
    assert "--auto-approve is for simulators only" in text and text.count("\n") == 0
    assert not (tmp_path / "ws" / "registry.sqlite").exists()
