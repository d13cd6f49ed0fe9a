"""Fixtures for the ROS 2 tests: a random ROS_DOMAIN_ID per run, node processes that are always
cleaned up, an in-process rclpy probe node, and a registry with an approved policy."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bremen_robot.ros import apply_ros_env, rclpy_status
from tests.ros_domains import random_domain

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"

# One random domain per test run: parallel runs on this machine never hear each other.
_DOMAIN = os.environ.get("BREMEN_TEST_ROS_DOMAIN_ID") or str(random_domain(1, 100))
os.environ["ROS_DOMAIN_ID"] = _DOMAIN
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
apply_ros_env()

RCLPY_OK, RCLPY_WHY = rclpy_status()
requires_rclpy = pytest.mark.skipif(not RCLPY_OK, reason=RCLPY_WHY or "rclpy missing")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test; SIGINT, then SIGKILL, whatever the test did."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    for p in started:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def spawn_spec(spec: Any, tmp: Path, procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    params = spec.write_params(tmp / "params" / f"{spec.name}.yaml")
    log = tmp / "logs" / f"{spec.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:
        p = subprocess.Popen(spec.command(params), stdout=out, stderr=subprocess.STDOUT, env=env)
    procs.append(p)
    return p


class Probe:
    """An in-process rclpy node for tests: publish, record, call services, spin until."""

    def __init__(self, rclpy: Any, name: str) -> None:
        from rclpy.signals import SignalHandlerOptions

        self.rclpy = rclpy
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self.ctx)
        from rclpy.executors import SingleThreadedExecutor

        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self.records: dict[str, list[tuple[float, Any]]] = {}

    def record(self, msg_cls: Any, topic: str, qos: Any) -> list[tuple[float, Any]]:
        lst: list[tuple[float, Any]] = []
        self.records[topic] = lst
        self.node.create_subscription(msg_cls, topic, lambda m: lst.append((time.monotonic(), m)), qos)
        return lst

    def spin_until(self, pred: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            self.ex.spin_once(timeout_sec=0.02)
        return pred()

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def call(self, srv_cls: Any, name: str, timeout: float = 10.0) -> Any:
        cli = self.node.create_client(srv_cls, name)
        assert self.spin_until(cli.service_is_ready, timeout), f"service {name} not available"
        fut = cli.call_async(srv_cls.Request())
        assert self.spin_until(fut.done, timeout), f"service {name} did not answer"
        return fut.result()

    def lifecycle(self, target: str = "policy_runner") -> Any:
        """A lifecycle client of ``target`` on this probe (bremen collect's own client)."""
        from bremen_robot.ros.lifecycle_client import LifecycleClient

        return LifecycleClient(self.node, lambda s: self.ex.spin_once(timeout_sec=s), target)

    def activate(self, target: str = "policy_runner", timeout: float = 30.0) -> None:
        """configure + activate ``target`` (a policy_runner comes up unconfigured)."""
        assert self.lifecycle(target).bring_up(timeout), f"{target} died before it was active"

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.ctx)


@pytest.fixture
def probe() -> Iterator[Probe]:
    if not RCLPY_OK:
        pytest.skip(RCLPY_WHY)
    from bremen_robot.ros import require_rclpy

    p = Probe(require_rclpy(), f"test_probe_{os.getpid()}")
    yield p
    p.close()


def write_collect_config(tmp: Path, base: str = "halfcheetah", **fields: Any) -> Path:
    """A collect config derived from configs/collect/<base>.yaml with ``fields`` changed."""
    data = yaml.safe_load((CONFIGS / "collect" / f"{base}.yaml").read_text())
    data["robot"] = str((CONFIGS / "collect" / data["robot"]).resolve())
    data.update(fields)
    path = tmp / f"collect-{base}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def approved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A registry workspace with an approved halfcheetah policy and a robot config trusting it."""
    from bremen_robot.policy.untrained import approved_untrained_policy

    monkeypatch.setenv("BREMEN_OPERATOR_DIR", str(tmp_path / "operators"))
    return approved_untrained_policy(tmp_path, operator="alice", hidden=(32, 32))


def require_mujoco() -> None:
    try:
        from sim._gl import import_mujoco

        import_mujoco()  # through sim: a later offscreen render in this process still works
    except ImportError as exc:
        pytest.skip(f"mujoco not importable ({exc}); install the 'sim' extra")


def free_disk_ok() -> bool:
    return shutil.disk_usage("/tmp").free > 200 * 2**20


def held_over_grace(times: list[float], grace_s: float, rate_hz: float) -> bool:
    """Whether safe commands received at ``times`` (the probe's clock) were held over most of the
    grace period: their span covers 60 % of it, or, when the probe received them in a burst
    under load (its clock then squeezes the span), their number does, since the runner paces
    them at ``rate_hz`` by its own clock. A single message, or a hold cut short, fails both."""
    if len(times) < 5:
        return False
    return max(times) - min(times) >= 0.6 * grace_s or len(times) >= 0.6 * grace_s * rate_hz


def log_tails(*paths: Path, lines: int = 60) -> str:
    """The last ``lines`` of each log file under ``paths`` (files, or folders of ``*.log``), for a
    failure message: a graph that never acted must say which node waited for what."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.log")) if path.is_dir() else [path]
    out = []
    for f in files:
        text = f.read_text(errors="replace").splitlines()[-lines:] if f.exists() else ["(no file)"]
        out.append(f"--- {f}\n" + "\n".join(text))
    return "\n".join(out)


def finite(a: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(a)))


__all__ = ["Probe", "requires_rclpy", "spawn_spec", "write_collect_config", "require_mujoco", "sys"]
