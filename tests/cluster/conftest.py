"""A real multi-node Ray cluster on this machine, shared by the live cluster tests: a head and two
robot nodes, each its own ``ray start`` process (the robot nodes through ``bremen robot join``),
token authentication on, every node on its own loopback address and each robot node with its own
ROS_DOMAIN_ID. The whole lab runs in a network namespace whose only interface is the loopback
(:mod:`tests.cluster.island`), since Ray listens on every interface it has; ``lab["prefix"]`` runs
a command in there."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.island import Island
from tests.ros_domains import random_domains

REPO = Path(__file__).resolve().parents[2]
HEAD_IP, NODE_IPS = "127.0.0.2", {"panda-a": "127.0.0.3", "panda-b": "127.0.0.4"}
RAY = str(Path(sys.executable).parent / "ray")


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    pytest.importorskip("ray", reason="ray (cluster extra) missing: pip install -e '.[cluster]'")
    pytest.importorskip("mujoco", reason="mujoco (sim extra) missing")
    from bremen_robot.campaign.runner import DEMO_OPERATOR
    from bremen_robot.registry import init_operator

    tmp = tmp_path_factory.mktemp("lab")
    ws = tmp / "ws"
    _, demo_pub = init_operator(DEMO_OPERATOR, ws / "keys")  # what --auto-approve signs with
    token = tmp / "ray_token"
    token.write_text(secrets.token_hex(32))
    temp_dir = Path(f"/tmp/brray-{secrets.token_hex(3)}")  # short: Ray's socket paths
    env = dict(
        os.environ,
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token),
        RAY_USAGE_STATS_ENABLED="0",
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    island, why = Island.open()
    prefix = island.prefix if island is not None else []
    if island is None:
        warnings.warn(
            f"the test cluster runs on loopback addresses in the host network namespace: {why}", stacklevel=1
        )
    port = random.SystemRandom().randint(20000, 40000)
    head = f"{HEAD_IP}:{port}"
    common = ["--object-store-memory", str(80 * 1024 * 1024), "--temp-dir", str(temp_dir)]
    configs, domain_of = {}, {}
    try:
        _run(
            [
                *prefix,
                RAY,
                "start",
                "--head",
                "--node-ip-address",
                HEAD_IP,
                "--port",
                str(port),
                "--num-cpus",
                "1",
                "--num-gpus",
                "0",
                "--include-dashboard=false",
                "--disable-usage-stats",
                *common,
            ],
            env,
        )
        domains = random_domains(110, 199, 2)  # the island keeps them apart too, where it opens
        for name, domain in zip(NODE_IPS, domains, strict=True):
            robot = yaml.safe_load((REPO / "configs/robots/panda.yaml").read_text())
            robot.pop("reset")  # its relative limits path; a simulated fleet needs no scripted reset
            robot.update(
                safety=str(REPO / "configs/safety/panda.yaml"), trusted_operator_keys=[str(demo_pub)]
            )
            cfg = tmp / f"{name}.yaml"
            cfg.write_text(yaml.safe_dump(robot))
            configs[name] = cfg
            domain_of[name] = domain
            _run(
                [*prefix, *_join_command(head, name, cfg, tmp, domain)], {**env, "RAY_TMPDIR": str(temp_dir)}
            )
        yield {
            "head": head,
            "ws": ws,
            "tmp": tmp,
            "configs": configs,
            "env": env,
            "domains": domain_of,
            "temp_dir": temp_dir,
            "prefix": prefix,
            "island": island,
            "island_why": why,
        }
    finally:
        _stop_processes_of(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        if island is not None:
            island.close()


def _join_command(head: str, name: str, cfg: Path, tmp: Path, domain: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bremen_robot",
        "robot",
        "join",
        "--address",
        head,
        "--robot",
        str(cfg),
        "--name",
        name,
        "--workspace-dir",
        str(tmp / f"node-{name}"),
        "--node-ip-address",
        NODE_IPS[name],
        "--ros-domain-id",
        str(domain),
        "--object-store-mb",
        "80",
    ]


def rejoin(lab: dict[str, Any], name: str) -> None:
    """Join robot ``name`` again, as its PC's admin would after its node went down."""
    tmp, temp_dir = Path(str(lab["tmp"])), Path(str(lab["temp_dir"]))
    cmd = _join_command(str(lab["head"]), name, Path(str(lab["configs"][name])), tmp, lab["domains"][name])
    _run([*lab["prefix"], *cmd], {**dict(lab["env"]), "RAY_TMPDIR": str(temp_dir)})


def kill_node(lab: dict[str, Any], name: str) -> list[int]:
    """SIGKILL robot ``name``'s Ray node (its raylet and the processes started with it), as a
    crash of Ray on that PC would; its workers then lose their raylet and exit."""
    import signal

    marks = (str(lab["temp_dir"]).encode(), f"ip_address={NODE_IPS[name]}".encode())
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"-", b"_")
        except OSError:
            continue
        if marks[0].replace(b"-", b"_") in cmd and marks[1] in cmd:
            pids.append(int(proc.name))
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _stop_processes_of(temp_dir: Path) -> None:
    """Kill this lab's Ray processes only: those whose command line names its own temp dir.
    `ray stop --force` would also kill every other Ray on the machine (a developer's benchmark
    run by benchmarks/reproduce.py, another test session's cluster)."""
    import signal

    mine = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if str(temp_dir).encode() in (proc / "cmdline").read_bytes():
                mine.append(int(proc.name))
        except OSError:
            continue
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in mine:
            with contextlib.suppress(OSError):  # already gone
                os.kill(pid, sig)
        if sig == signal.SIGTERM:
            time.sleep(2.0)


def _fleet_campaign(lab: dict[str, Any], name: str, **overrides: Any) -> Path:
    """A campaign config: the quickstart's settings on the fleet [panda-a, panda-b], a tiny
    training preset, ``overrides`` on top; written under the lab's folder."""
    tmp = Path(str(lab["tmp"]))
    train = tmp / "train.yaml"
    if not train.is_file():
        train.write_text(
            yaml.safe_dump(
                {
                    "name": "tiny-panda",
                    "task": "panda_reach",
                    "threads": 1,
                    "ensemble": {
                        "members": 2,
                        "hidden": [32],
                        "max_epochs": 5,
                        "patience": 5,
                        "batch_size": 64,
                    },
                    "bc": {"hidden": [16], "steps": 50},
                    "trpo": {
                        "iterations": 1,
                        "steps_per_iteration": 200,
                        "horizon": 20,
                        "init_log_std": -1.0,
                    },
                }
            )
        )
    quick = yaml.safe_load((REPO / "configs/campaigns/quickstart.yaml").read_text())
    quick.update(
        name=name,
        robot=str(REPO / "configs/robots/panda.yaml"),
        collect=str(REPO / "configs/collect/panda-mujoco.yaml"),
        train=str(train),
        deployments=2,
        steps_per_deployment=400,
        evaluation={"episodes": 1},
        fleet=["panda-a", "panda-b"],
    )
    quick.update(overrides)
    camp = tmp / f"{name}.yaml"
    camp.write_text(yaml.safe_dump(quick))
    return camp


@pytest.fixture(scope="package")
def run_campaign(lab: dict[str, Any]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The workstation's own command, as a user runs it (its Ray driver gets the token from the env)."""

    def run(camp: Path, ws: Path, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        keys = Path(str(lab["ws"])) / "keys"  # the demo operator the robot nodes trust
        if not (ws / "keys").exists():
            shutil.copytree(keys, ws / "keys")
        cmd = [
            *lab["prefix"],
            sys.executable,
            "-m",
            "bremen_robot",
            "campaign",
            "--config",
            str(camp),
            "--workspace",
            str(ws),
            "--cluster",
            str(lab["head"]),
            "--auto-approve",
            "--quiet",
        ]
        return subprocess.run(cmd, env=dict(lab["env"]), capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="package")
def fleet_campaign(lab: dict[str, Any]) -> Callable[..., Path]:
    """``fleet_campaign(name, **overrides)``: a fleet campaign config (see :func:`_fleet_campaign`)."""
    return lambda name, **overrides: _fleet_campaign(lab, name, **overrides)
