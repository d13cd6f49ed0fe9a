"""The README's five-minute tour, run command by command as a new user would type it.

The commands come from README.md's tour code block, so this breaks when the README and the
code disagree. HOME is a temporary folder (``operator init`` writes its keys there) and each
command is its own process; the campaign runs in the background and the operator's commands
(`policies`, `review <id>`, `approve <id>`) run from other processes whenever it waits.

``test_readme_tour_exactly`` runs every command exactly as written (the quickstart through the
ROS 2 graph, twice: minutes, so it is slow). ``test_readme_manual_tour`` runs the same manual
approval commands against a tiny Panda campaign collected without ROS, in seconds.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.ros_domains import random_domain

REPO = Path(__file__).resolve().parents[2]
WAITING = re.compile(r"waiting for approval of candidate (\w+) for deployment (\d+)")


def tour_commands() -> list[list[str]]:
    """The ``bremen`` commands of README.md's tour block, in order, without the ``bremen``."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Five-minute tour", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README.md's tour has no ```bash block"
    commands = []
    for raw in match.group(1).splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line == ". .venv/bin/activate":
            continue
        words = shlex.split(line)
        assert words[0] == "bremen", f"the tour runs something this test does not know: {raw!r}"
        commands.append(words[1:])
    return commands


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREMEN_")}
    env.update(
        HOME=str(home),
        PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        ROS_DOMAIN_ID=str(random_domain(101, 200)),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        MPLBACKEND="Agg",
    )
    return env


def _bremen(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "bremen_robot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"bremen {shlex.join(args)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def run_tour(
    tmp_path: Path,
    commands: list[list[str]],
    rewrite: Callable[[list[str]], list[str]] = lambda a: a,
    timeout: float = 120,
) -> dict[str, object]:
    """Run the tour; returns what the campaign printed and the ids approved at each wait."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = _env(home)
    manual = next(i for i, c in enumerate(commands) if c[0] == "campaign" and "--auto-approve" not in c)
    for args in commands[:manual]:  # step 1 and the operator's set-up
        _bremen(rewrite(args), cwd, env, timeout)
    campaign = subprocess.Popen(
        [sys.executable, "-m", "bremen_robot", *rewrite(commands[manual])],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert campaign.stdout is not None
        for line in campaign.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    printed: list[str] = []
    approved: list[str] = []
    deadline = time.monotonic() + timeout * 4
    try:
        while (line := lines.get(timeout=max(1.0, deadline - time.monotonic()))) is not None:
            printed.append(line)
            if m := WAITING.search(line):  # "in another terminal": the operator's commands
                for args in commands[manual + 1 :]:
                    _bremen([m.group(1) if a == "<id>" else a for a in args], cwd, env, timeout)
                approved.append(m.group(1))
        assert campaign.wait(timeout=60) == 0, "".join(printed)[-4000:]
    finally:
        if campaign.poll() is None:
            os.killpg(campaign.pid, 9)
            campaign.wait()
    return {"home": home, "cwd": cwd, "printed": "".join(printed), "approved": approved, "env": env}


def _check_tour_result(result: dict[str, object], deployments: int) -> None:
    home, cwd = Path(str(result["home"])), Path(str(result["cwd"]))
    key = home / ".config" / "bremen" / "operators" / "alice.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ws = cwd / "runs" / "mine"
    summary = json.loads((ws / "summary.json").read_text())
    assert summary["deployment_count"] == deployments
    assert len(result["approved"]) == deployments - 1  # type: ignore[arg-type]
    from bremen_robot.registry import Registry

    with Registry.open(ws, create=False) as reg:
        for pid in result["approved"]:  # type: ignore[attr-defined]
            rec = reg.get(pid)
            assert rec.state == "deployed" and rec.approval is not None
            assert rec.approval.operator == "alice"
    robot = yaml.safe_load((ws / "robot.yaml").read_text())
    assert robot["trusted_operator_keys"] == [str((ws / "trusted_operators" / "alice.pub").resolve())]
    assert "trusts no operator keys" not in str(result["printed"])


def test_tour_block_has_the_manual_approval_path():
    commands = tour_commands()
    names = [c[0] for c in commands]
    assert names == ["campaign", "operator", "trust", "campaign", "policies", "review", "approve"]
    assert commands[2] == ["trust", "add", "alice", "--workspace", "runs/mine"]
    assert commands[-1][:4] == ["approve", "<id>", "--operator", "alice"]


@pytest.fixture
def tiny_panda_campaign(tmp_path: Path) -> Path:
    pytest.importorskip("mujoco", reason="mujoco (sim extra) missing")
    train = tmp_path / "tiny-panda.yaml"
    train.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-panda",
                "task": "panda_reach",
                "threads": 1,
                "ensemble": {"members": 2, "hidden": [32], "max_epochs": 3, "batch_size": 128},
                "bc": {"hidden": [16], "steps": 50},
                "trpo": {"iterations": 2, "steps_per_iteration": 200, "horizon": 20, "init_log_std": -1.0},
            }
        )
    )
    camp = tmp_path / "tiny-quickstart.yaml"
    camp.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-quickstart",
                "robot": str(REPO / "configs/robots/panda.yaml"),
                "collect": str(REPO / "configs/collect/panda-mujoco.yaml"),
                "train": str(train),
                "deployments": 2,
                "steps_per_deployment": 200,
                "approval_poll_seconds": 0.2,
                "evaluation": {"episodes": 2, "env": "sim:panda/mujoco"},
            }
        )
    )
    return camp


def test_readme_manual_tour(tiny_panda_campaign: Path, tmp_path: Path):
    """The tour's manual-approval commands as written, but with a tiny campaign collected
    directly (no ROS): checks the trust path end to end in seconds."""

    def rewrite(args: list[str]) -> list[str]:
        if args[0] != "campaign":
            return args
        args = [str(tiny_panda_campaign) if a == "quickstart" else a for a in args]
        return [*args, "--collector", "direct"]

    commands = [c for c in tour_commands() if not (c[0] == "campaign" and "--auto-approve" in c)]
    result = run_tour(tmp_path, commands, rewrite)
    _check_tour_result(result, deployments=2)


@pytest.mark.slow
@pytest.mark.ros
def test_readme_tour_exactly(tmp_path: Path):
    """Every command of the tour as written: the quickstart through the ROS 2 graph, twice."""
    from bremen_robot.ros import rclpy_status

    ok, why = rclpy_status()
    if not ok:
        pytest.skip(why or "rclpy (ros extra) missing")
    result = run_tour(tmp_path, tour_commands(), timeout=600)
    _check_tour_result(result, deployments=3)
    assert (
        json.loads((Path(str(result["cwd"])) / "runs/quickstart/summary.json").read_text())[
            "deployment_count"
        ]
        == 3
    )
