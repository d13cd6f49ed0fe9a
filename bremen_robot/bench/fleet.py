"""Bench section (``bremen bench --cluster``): fleet collection on a real local Ray cluster.

Starts a head and two robot nodes on this machine, as ``tests/cluster/test_cluster_live.py``
does: each its own ``ray start --block`` process (the robot nodes through ``bremen robot join``)
on its own loopback address, token authentication on, the dashboard off, each robot node with
its own ``ROS_DOMAIN_ID``. Then, in the same run, two deployments of the random policy through
the ROS 2 graph of simulated Pandas, as a fleet campaign sends them (``collect_on_node`` pinned to
a node by its ``robot:<name>`` resource, the shard sent back and checked against its digest):

* one robot collecting ``STEPS`` steps, then two robots collecting ``STEPS / 2`` each;
* ``fleet_collect_samples_per_s_{1,2}``: samples that came back ÷ the deployment's wall time on
  the workstation (first task submitted to the last shard stored);
* ``fleet_collect_speedup_2``: their ratio;
* ``fleet_deployment_overhead_s``: what the cluster adds to a deployment: its wall time minus the
  longest time a node spent inside its collection task (receiving the job, the ROS 2 graph,
  ingesting the bag); i.e. scheduling, worker start-up on the node, moving the job and the
  shard, and storing and checking the shard. The mean of the two deployments; each is also given.

The processes are stopped by their process group (never ``ray stop``, which would stop every Ray
on the machine). Needs ray, rclpy and mujoco; takes a few minutes, so it runs only on request.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

TITLE = "cluster fleet collection (Ray, head + 2 robot nodes on loopback)"
ORDER = 90
OPT_IN = "cluster"  # runs only with `bremen bench --cluster`, never with --quick
STEPS = 800
REPO = Path(__file__).resolve().parents[2]
HEAD_IP, NODE_IPS = "127.0.0.12", {"panda-a": "127.0.0.13", "panda-b": "127.0.0.14"}


def timed_collect(job: dict[str, Any]) -> dict[str, Any]:
    """The Ray task on a robot node: ``collect_on_node`` and the time spent inside it."""
    from bremen_robot.cluster.node import collect_on_node

    t0 = time.perf_counter()
    out = collect_on_node(job)
    out["node_s"] = time.perf_counter() - t0
    return out


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 30
    for p in procs:
        with suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        with suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)  # daemons of the group that ignored SIGTERM


@contextmanager
def local_lab(tmp: Path) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
    """Head + two robot nodes; yields (head address, driver env, robot configs by node name)."""
    import yaml

    from bremen_robot.registry import init_operator

    token = tmp / "ray_token"
    token.touch(mode=0o600)
    token.write_text(secrets.token_hex(32))
    temp_dir = Path(tempfile.mkdtemp(prefix="brbench-", dir="/tmp"))  # short: Ray's socket paths
    env = dict(
        os.environ,
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_TMPDIR=str(temp_dir),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    )
    port = random.SystemRandom().randint(20000, 40000)
    head = f"{HEAD_IP}:{port}"
    ray_bin = str(Path(sys.executable).parent / "ray")
    _, pub = init_operator("bench-operator", tmp / "keys")  # a robot node must trust someone
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(cmd: list[str], log: str) -> None:
        with open(tmp / log, "wb") as f:
            procs.append(
                subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
            )

    try:
        spawn(
            [ray_bin, "start", "--head", "--block", "--node-ip-address", HEAD_IP, "--port", str(port),
             "--num-cpus", "1", "--num-gpus", "0", "--include-dashboard=false", "--disable-usage-stats",
             "--object-store-memory", str(80 * 1024 * 1024), "--temp-dir", str(temp_dir)],
            "head.log",
        )  # fmt: skip
        _wait_for(lambda: _ray_up(ray_bin, head, env), 120, "the head", tmp / "head.log")
        configs: dict[str, str] = {}
        for (name, ip), domain in zip(
            NODE_IPS.items(), random.SystemRandom().sample(range(110, 200), 2), strict=True
        ):
            robot = yaml.safe_load((REPO / "configs/robots/panda.yaml").read_text())
            robot.pop("reset", None)  # a relative path; a simulated fleet needs no scripted reset
            robot.update(safety=str(REPO / "configs/safety/panda.yaml"), trusted_operator_keys=[str(pub)])
            cfg = tmp / f"{name}.yaml"
            cfg.write_text(yaml.safe_dump(robot))
            configs[name] = str(cfg)
            spawn(
                [sys.executable, "-m", "bremen_robot", "robot", "join", "--address", head, "--robot",
                 str(cfg), "--name", name, "--workspace-dir", str(tmp / f"node-{name}"),
                 "--node-ip-address", ip, "--ros-domain-id", str(domain), "--object-store-mb", "80",
                 "--block"],
                f"node-{name}.log",
            )  # fmt: skip
        yield head, env, configs
    finally:
        _stop(procs)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _ray_up(ray_bin: str, head: str, env: dict[str, str]) -> bool:
    proc = subprocess.run([ray_bin, "status", "--address", head], env=env, capture_output=True, timeout=60)
    return proc.returncode == 0


def _wait_for(check: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1.0)
    tail = log.read_text(errors="replace")[-600:] if log.is_file() else ""
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s: {tail}")


def _deployment(ray: Any, robots: list[str], k: int, tmp: Path) -> dict[str, float]:
    """One deployment of ``STEPS`` steps split over ``robots``; its wall time, samples, node time."""
    from bremen_robot.cluster.fleet import split_steps
    from bremen_robot.cluster.ray_env import robot_resource
    from bremen_robot.data.dataset import Dataset

    job = {
        "campaign": "bench-fleet",
        "round": k,
        "policy": None,  # the random policy: what deployment 1 of every campaign runs
        "collect_yaml": (REPO / "configs/collect/panda-mujoco.yaml").read_text(),
        "sigma": 0.1,
        "kind": {"name": "panda", "task": "panda_reach", "joints": _panda_joints()},
    }
    budget = split_steps(STEPS, robots)
    t0 = time.perf_counter()
    refs = [
        ray.remote(num_cpus=0, resources={robot_resource(r): 1}, max_retries=0)(timed_collect).remote(
            {**job, "steps": budget[r], "seed": 100 * k + i}
        )
        for i, r in enumerate(robots)
    ]
    samples, node_s = 0, 0.0
    for r, ref in zip(robots, refs, strict=True):
        try:
            out = ray.get(ref)
        except Exception as exc:  # the node's graph logs go away with the temporary folder
            logs = sorted((tmp / f"node-{r}").glob(f"*/d{k}/bag/logs/*.log"))
            tail = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in logs)
            raise RuntimeError(f"robot {r}, deployment {k}: {exc}\n{tail}") from None
        path = tmp / f"d{k}-{out['robot']}.npz"
        path.write_bytes(out.pop("shard"))
        if Dataset.load(path).digest() != out["data_digest"]:
            raise RuntimeError(f"the shard from {out['robot']} arrived damaged")
        samples += int(out["samples"])
        node_s = max(node_s, float(out["node_s"]))
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "samples": samples, "node_s": node_s}


def _panda_joints() -> list[str]:
    from bremen_robot.robot_config import load_robot_config

    return list(load_robot_config(REPO / "configs/robots/panda.yaml").joints)


def run(quick: bool) -> dict[str, Any]:
    from bremen_robot.ros import rclpy_status

    ok, why = rclpy_status()
    if not ok:
        raise ImportError(why)
    from sim._gl import import_mujoco

    import_mujoco()  # ImportError skips the section; the GL platform is chosen first, as sim does
    import ray

    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    with tempfile.TemporaryDirectory(prefix="bremen-bench-fleet-") as d:
        tmp = Path(d)
        try:
            with local_lab(tmp) as (head, env, _):
                _driver_token_auth(env["RAY_AUTH_TOKEN_PATH"])
                ray.init(address=head, logging_level=logging.ERROR, log_to_driver=False)
                try:
                    _wait_for(
                        lambda: _robots_offered(ray) >= 2, 120, "the robot nodes", tmp / "node-panda-b.log"
                    )
                    one = _deployment(ray, ["panda-a"], 1, tmp)
                    two = _deployment(ray, ["panda-a", "panda-b"], 2, tmp)
                finally:
                    ray.shutdown()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    rate1, rate2 = one["samples"] / one["wall_s"], two["samples"] / two["wall_s"]
    over1, over2 = one["wall_s"] - one["node_s"], two["wall_s"] - two["node_s"]
    return {
        "fleet_steps_per_deployment": STEPS,
        "fleet_collect_samples_per_s_1": round(rate1, 1),
        "fleet_collect_samples_per_s_2": round(rate2, 1),
        "fleet_collect_speedup_2": round(rate2 / rate1, 3),
        "fleet_deployment_wall_s_1": round(one["wall_s"], 2),
        "fleet_deployment_wall_s_2": round(two["wall_s"], 2),
        "fleet_deployment_overhead_s_1": round(over1, 2),
        "fleet_deployment_overhead_s_2": round(over2, 2),
        "fleet_deployment_overhead_s": round((over1 + over2) / 2, 2),
        "fleet_load_avg_1min": round(os.getloadavg()[0], 2),
    }


def _driver_token_auth(token_path: str) -> None:
    """This process presents the lab's token. Ray reads RAY_AUTH_MODE into a cached config when it
    is imported, and ``ray.init`` with an explicit address never turns token mode on by itself,
    so do what Ray's own local start-up does: set the variable and re-read the config."""
    from ray._private.authentication.authentication_token_setup import _enable_token_auth
    from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]

    os.environ["RAY_AUTH_TOKEN_PATH"] = token_path
    _enable_token_auth()
    AuthenticationTokenLoader.instance().reset_cache()


def _robots_offered(ray: Any) -> int:
    from bremen_robot.cluster.ray_env import robot_nodes

    return len(robot_nodes(ray))
