"""A real multi-node Ray cluster on this machine: a head and two robot nodes, each its own
``ray start`` process (the robot nodes through ``bremen robot join``), token authentication on,
every node on its own loopback address and each robot node with its own ROS_DOMAIN_ID."""

from __future__ import annotations

import json
import os
import pickle
import random
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bremen_robot.ros import rclpy_status

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("ray", reason="ray (cluster extra) missing: pip install -e '.[cluster]'")
RCLPY_OK, RCLPY_WHY = rclpy_status()
pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(not RCLPY_OK, reason=RCLPY_WHY or "rclpy (ros extra) missing"),
]
HEAD_IP, NODE_IPS = "127.0.0.2", {"panda-a": "127.0.0.3", "panda-b": "127.0.0.4"}
RAY = str(Path(sys.executable).parent / "ray")


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
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
    port = random.SystemRandom().randint(20000, 40000)
    head = f"{HEAD_IP}:{port}"
    common = ["--object-store-memory", str(80 * 1024 * 1024), "--temp-dir", str(temp_dir)]
    configs = {}
    try:
        _run(
            [
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
        domains = random.SystemRandom().sample(range(110, 200), 2)
        for (name, ip), domain in zip(NODE_IPS.items(), domains, strict=True):
            robot = yaml.safe_load((REPO / "configs/robots/panda.yaml").read_text())
            robot.pop("reset")  # its relative limits path; a simulated fleet needs no scripted reset
            robot.update(
                safety=str(REPO / "configs/safety/panda.yaml"), trusted_operator_keys=[str(demo_pub)]
            )
            cfg = tmp / f"{name}.yaml"
            cfg.write_text(yaml.safe_dump(robot))
            configs[name] = cfg
            _run(
                [
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
                    ip,
                    "--ros-domain-id",
                    str(domain),
                    "--object-store-mb",
                    "80",
                ],
                {**env, "RAY_TMPDIR": str(temp_dir)},
            )
        yield {"head": head, "ws": ws, "tmp": tmp, "configs": configs, "env": env}
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def fleet_summary(lab: dict[str, object]) -> dict[str, object]:
    tmp = Path(str(lab["tmp"]))
    train = tmp / "train.yaml"
    train.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-panda",
                "task": "panda_reach",
                "threads": 1,
                "ensemble": {"members": 2, "hidden": [32], "max_epochs": 5, "patience": 5, "batch_size": 64},
                "bc": {"hidden": [16], "steps": 50},
                "trpo": {"iterations": 1, "steps_per_iteration": 200, "horizon": 20, "init_log_std": -1.0},
            }
        )
    )
    camp = tmp / "fleet.yaml"
    quick = yaml.safe_load((REPO / "configs/campaigns/quickstart.yaml").read_text())
    quick.update(
        robot=str(REPO / "configs/robots/panda.yaml"),
        collect=str(REPO / "configs/collect/panda-mujoco.yaml"),
        train=str(train),
        deployments=2,
        steps_per_deployment=400,
        evaluation={"episodes": 1},
        fleet=["panda-a", "panda-b"],
    )
    camp.write_text(yaml.safe_dump(quick))
    # the workstation's own command, as a user runs it (its Ray driver gets the token from the env)
    ws = Path(str(lab["ws"]))
    cmd = [
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
    env = dict(lab["env"])  # type: ignore[call-overload]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
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
    from bremen_robot.cluster.fleet import policy_bundle
    from bremen_robot.registry import Registry, init_operator

    tmp = Path(str(lab["tmp"]))
    ws = Path(str(lab["ws"]))
    _, other = init_operator("someone-else", tmp / "other-keys")
    cfg = Path(lab["configs"]["panda-b"])  # type: ignore[index]
    robot = yaml.safe_load(cfg.read_text())
    robot["trusted_operator_keys"] = [str(other)]  # the robot PC's admin trusts only someone else
    cfg.write_text(yaml.safe_dump(robot))
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
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=200
    )
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert line.startswith("REFUSED "), line
    assert "robot 'panda' " in line and "refuses policy" in line and "'demo-operator'" in line, line
    assert not any((tmp / "node-panda-b" / "refusal").glob("d1/bag")), "nothing may run"
    assert not (tmp / "node-panda-b" / "refusal" / "registry.sqlite").exists()
