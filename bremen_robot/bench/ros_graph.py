"""Bench section: the ROS 2 collect graph (DESIGN.md §5), over real DDS between processes.

* ``runner_p50_ms_<rate>hz`` / ``runner_p99_ms_<rate>hz``: policy_runner's latency from taking the
  newest ``joint_states`` on its control tick to ``bremen/command`` published (observation ->
  task observation -> TorchScript policy (2 x 200 MLP) + noise -> safety shield -> publish), at
  100 Hz and 500 Hz, realtime mode, with the trajectory logger recording, and the runner's
  SCHED_FIFO priority as ``configs/collect/halfcheetah-robot.yaml`` ships it
  (``runner_realtime_priority``). The "robot" is this process publishing ``joint_states`` at the
  same rate from a thread. ``runner_age_p99_ms_<rate>hz`` adds the wait from the state's arrival
  to the tick (up to one period on an unsynchronized timer); ``runner_missed_ticks_<rate>hz``
  counts control periods that ended before their tick started (no command in them), and
  ``runner_late_ticks_<rate>hz`` ticks that started more than half a period late but inside
  their period (``runner_wiring.tick_accounting``). ``*_500hz_normal_sched`` (full run only): the
  same without the priority.
* ``platform_missed_periods_<rate>hz`` / ``platform_worst_stall_ms_<rate>hz``: bare sleeping
  loops, one pinned to each CPU, at the runner's rate one FIFO level above it, over the runner's
  whole life (``bench/wake_jitter.py``; the worst CPU's count), i.e. what the machine itself
  delivers; ``runner_missed_ticks_<rate>hz_own``: the runner's missed periods that machine
  stalls do not cover, the part the runner cannot blame on the machine; and
  ``runner_missed_ticks_<rate>hz_chance``: what the same rule attributes with the stalls moved
  in time, the coincidence level.
* ``lockstep_steps_per_s``: HalfCheetah (MuJoCo) collected through the lockstep graph as
  ``bremen collect`` runs it (sim_bridge and policy_runner with an approved TorchScript policy
  composed in one process, trajectory_logger in another), steps per second from the first
  episode start to the last stop; ``lockstep_separate_steps_per_s`` (full run only): every node
  its own process. ``direct_steps_per_s``: the same work in one process with no ROS (env.step,
  the same policy, noise and shield); ``lockstep_vs_direct`` is their ratio. ``env_steps_per_s``
  is bare ``env.step`` with uniform random actions and ``lockstep_vs_env_step`` the graph
  against it.

Raises ImportError (section skipped) without rclpy or mujoco.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.policy.untrained import approved_untrained_policy

TITLE = "ROS 2 graph: policy_runner latency, lockstep collection"
ORDER = 70


def _config(tmp: Path, name: str, **fields: Any) -> Path:
    import yaml

    from bremen_robot.ros.config import config_root

    data = yaml.safe_load((config_root() / "collect" / "halfcheetah.yaml").read_text())
    data.update(fields)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _runner_latency(
    tmp: Path, ap: dict[str, Any], rate: float, seconds: float, priority: int = 0
) -> dict[str, Any]:
    from dataclasses import replace

    from sensor_msgs.msg import JointState
    from std_srvs.srv import Trigger

    from bremen_robot.ros import require_rclpy
    from bremen_robot.ros import topics as T
    from bremen_robot.ros.graph import collect_specs

    rclpy = require_rclpy()
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    cfg = _config(
        tmp,
        f"latency{int(rate)}",
        robot=str(ap["robot"]),
        sim="none",
        mode="realtime",
        control_rate_hz=rate,
        episode_steps=10**8,
        runner_realtime_priority=priority,
    )
    lat_file = tmp / f"latency{int(rate)}.json"
    jit_tag = f"jitter{int(rate)}_{priority}"
    specs = collect_specs(cfg, policy=ap["id"], workspace=ap["workspace"], out=tmp / f"bag{int(rate)}")
    procs = []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("bench_robot", context=ctx)
    stop = threading.Event()
    reference: list[subprocess.Popen[bytes]] = []
    try:
        # the machine's own wake-up stalls over the runner's whole life (bench/wake_jitter.py)
        reference = _start_reference(tmp, jit_tag, rate, priority, env)
        for spec in specs:
            if spec.name == "policy_runner":
                spec = replace(spec, parameters={**spec.parameters, "latency_log": str(lat_file)})
            params = spec.write_params(tmp / "params" / f"{spec.name}{int(rate)}.yaml")
            with open(tmp / f"{spec.name}{int(rate)}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(spec.command(params), stdout=log, stderr=subprocess.STDOUT, env=env)
                )
        pub = node.create_publisher(JointState, T.JOINT_STATES, T.qos("state_pub"))
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        cli = node.create_client(Trigger, T.START_EPISODE)
        end = time.monotonic() + 60
        while not cli.service_is_ready() and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.05)
        names = ["rootx", "rootz", "rooty", "bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"]
        rng = np.random.default_rng(0)

        def robot() -> None:  # joint_state_broadcaster stand-in, paced on the monotonic clock
            period, t_next = 1.0 / rate, time.monotonic()
            msg = JointState()
            msg.name = names
            while not stop.is_set():
                msg.header.stamp = node.get_clock().now().to_msg()
                msg.position = rng.uniform(-0.3, 0.3, 9).tolist()
                msg.velocity = rng.uniform(-1, 1, 9).tolist()
                pub.publish(msg)
                t_next += period
                delay = t_next - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    t_next = time.monotonic()

        th = threading.Thread(target=robot, daemon=True)
        th.start()
        time.sleep(0.5)
        fut = cli.call_async(Trigger.Request())
        end = time.monotonic() + 10
        while not fut.done() and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.05)
        time.sleep(seconds)
    finally:
        stop.set()
        _interrupt(procs, 15.0)
        platform = _stop_reference(reference, tmp, jit_tag)
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
    stats: dict[str, Any] = json.loads(lat_file.read_text())
    stats["platform"] = platform
    return stats


def _interrupt(procs: list[Any], timeout: float) -> None:
    """SIGINT every process (they shut down cleanly on it), then kill what outlives ``timeout``."""
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _start_reference(tmp: Path, tag: str, rate: float, priority: int, env: dict[str, str]) -> list[Any]:
    """One bare reference loop per CPU, pinned, one FIFO level above the runner (FIFO 1 when the
    runner has no priority), so that no runner thread can delay them: they see only the machine."""
    for old in tmp.glob(f"{tag}.cpu*.json"):
        old.unlink()
    ref_priority = min(priority + 1, 99) if priority > 0 else 1
    procs: list[Any] = []
    try:
        for cpu in sorted(os.sched_getaffinity(0)):
            out = tmp / f"{tag}.cpu{cpu}.json"
            cmd = [sys.executable, "-m", "bremen_robot.bench.wake_jitter", str(rate), "3600"]
            procs.append(subprocess.Popen([*cmd, str(ref_priority), str(out), str(cpu)], env=env))
    except BaseException:
        _stop_reference(procs, tmp, tag)
        raise
    return procs


def _stop_reference(procs: list[Any], tmp: Path, tag: str) -> list[dict[str, Any]] | None:
    """Stop the reference loops; their results, or None unless every CPU's loop reported."""
    _interrupt(procs, 10.0)
    files = sorted(tmp.glob(f"{tag}.cpu*.json"))
    if not procs or any(p.returncode != 0 for p in procs) or len(files) != len(procs):
        return None  # no attribution rather than one over some CPUs only
    return [json.loads(f.read_text()) for f in files]


def _platform_keys(s: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The machine reference (bench/wake_jitter.py, one loop per CPU) beside runner stats ``s``.

    ``platform_missed_periods_<suffix>``: the worst CPU's missed periods.
    ``runner_missed_ticks_<suffix>_own``: the runner's missed periods whose window machine stalls
    do not cover by half (``covered_by_stalls``), plus any the loops did not watch.
    ``runner_missed_ticks_<suffix>_chance``: the periods the same rule "explains" with every stall
    moved half the watched time away, i.e. how much of the attribution coincidence alone gives.
    The runner logs its first 200 late ticks; past that, the rest count as its own.
    """
    from bremen_robot.bench.wake_jitter import covered_by_stalls

    plat = s["platform"]
    if not plat:  # a reference loop did not report: no attribution, rather than a guess
        return {f"platform_cpus_reported_{suffix}": 0}
    t0, t1 = max(c["t_start"] for c in plat), min(c["t_end"] for c in plat)
    stalls = [st for c in plat for st in c["stalls"]]
    misses = [m for m in s["missed_at"] if m[2] > 0 and t0 <= m[4] - m[1] / 1e3 and m[4] <= t1]
    windows = [(m[4], m[1] / 1e3) for m in misses]  # (start, seconds behind)
    half = (t1 - t0) / 2

    def moved(st: list[float]) -> list[float]:
        return [t0 + (st[0] - t0 + half) % (2 * half), st[1]] if half > 0 else st

    explained = sum(m[2] for m, ok in zip(misses, covered_by_stalls(windows, stalls)) if ok)
    chance = sum(
        m[2] for m, ok in zip(misses, covered_by_stalls(windows, [moved(st) for st in stalls])) if ok
    )
    worst = max((late for _, late in stalls), default=0.0)
    return {
        f"platform_cpus_reported_{suffix}": len(plat),
        f"platform_sched_fifo_{suffix}": all(c["sched_fifo"] for c in plat),
        f"platform_missed_periods_{suffix}": max(int(c["missed_periods"]) for c in plat),
        f"platform_worst_stall_ms_{suffix}": round(worst * 1e3, 2),
        f"runner_missed_ticks_{suffix}_own": int(s["missed_ticks"]) - explained,
        f"runner_missed_ticks_{suffix}_chance": chance,
    }


def _shipped_robot_priority() -> int:
    """policy_runner's SCHED_FIFO priority as configs/collect/halfcheetah-robot.yaml ships it."""
    from bremen_robot.ros.config import config_root, load_collect_config

    return load_collect_config(config_root() / "collect" / "halfcheetah-robot.yaml").runner_realtime_priority


def _lockstep(tmp: Path, ap: dict[str, Any], steps: int, compose: bool = True) -> float:
    from bremen_robot.ros.collect import collect

    cfg = _config(
        tmp, f"lockstep{int(compose)}", robot=str(ap["robot"]), episode_steps=1000, compose_lockstep=compose
    )
    t: dict[str, float] = {}

    def on_event(e: dict[str, Any]) -> None:
        if e.get("event") == "start":
            t.setdefault("t0", time.monotonic())
        elif e.get("event") == "stop":
            t["t1"] = time.monotonic()

    res = collect(
        cfg,
        policy=ap["id"],
        steps=steps,
        out=tmp / f"bag_lockstep{int(compose)}",
        workspace=ap["workspace"],
        on_event=on_event,
        progress=False,
        timeout_s=600,
    )
    return res.steps / (t["t1"] - t["t0"])


def _direct(ap: dict[str, Any], steps: int) -> tuple[float, float]:
    """The lockstep graph's work in one process, and bare env.step, in steps per second."""
    import safety
    from bremen_robot.policy.artifact import load_artifact
    from bremen_robot.ros.config import config_root
    from sim.env import BremenSimEnv

    fp = load_artifact(ap["artifact"])
    limits = safety.load_limits(
        config_root() / "safety" / "halfcheetah.yaml", joint_names=fp.manifest.joint_order
    )
    shield = safety.SafetyShield(limits)
    env = BremenSimEnv("halfcheetah", backend="mujoco")
    b = env.backend
    names = tuple(b.joint_names)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    t0 = time.perf_counter()
    for k in range(steps):
        a = fp.act(obs).astype(np.float64) + 0.1 * rng.standard_normal(6)
        q, qd = b.joint_state()
        now = time.monotonic()
        cmd = shield.filter(safety.JointState(names, q, qd, now), a, now).command
        obs, _, term, trunc, _ = env.step(cmd)
        if term or (k + 1) % 1000 == 0:
            obs, _ = env.reset(seed=k)
    direct = steps / (time.perf_counter() - t0)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for k in range(steps):
        env.step(rng.uniform(-1.0, 1.0, 6))
        if (k + 1) % 1000 == 0:
            env.reset(seed=k)
    bare = steps / (time.perf_counter() - t0)
    env.close()
    return direct, bare


def run(quick: bool) -> dict[str, Any]:
    from bremen_robot.ros import rclpy_status

    ok, why = rclpy_status()
    if not ok:
        raise ImportError(why)
    from sim._gl import import_mujoco

    import_mujoco()  # ImportError skips the section; the GL platform is chosen first, as sim does
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bremen-bench-ros-") as d:
        tmp = Path(d)
        old = os.environ.get("BREMEN_OPERATOR_DIR")
        os.environ["BREMEN_OPERATOR_DIR"] = str(tmp / "operators")
        try:
            ap = approved_untrained_policy(tmp)
            seconds = 3.0 if quick else 10.0
            priority = _shipped_robot_priority()
            out["runner_realtime_priority"] = priority
            for rate in (100, 500):
                s = _runner_latency(tmp, ap, float(rate), seconds, priority)
                out[f"runner_p50_ms_{rate}hz"] = round(s["p50_ms"], 3)
                out[f"runner_p99_ms_{rate}hz"] = round(s["p99_ms"], 3)
                out[f"runner_age_p99_ms_{rate}hz"] = round(s["age_p99_ms"], 3)
                out[f"runner_missed_ticks_{rate}hz"] = int(s["missed_ticks"])
                out[f"runner_late_ticks_{rate}hz"] = int(s["late_ticks"])
                out[f"runner_ticks_{rate}hz"] = int(s["ticks"])
                out[f"runner_sched_fifo_{rate}hz"] = bool(s["sched_fifo"])  # the priority was granted
                out.update(_platform_keys(s, f"{rate}hz"))
            if not quick and priority:  # the same at 500 Hz without the priority, for comparison
                s = _runner_latency(tmp, ap, 500.0, seconds, 0)
                out["runner_p99_ms_500hz_normal_sched"] = round(s["p99_ms"], 3)
                out["runner_missed_ticks_500hz_normal_sched"] = int(s["missed_ticks"])
                out["runner_late_ticks_500hz_normal_sched"] = int(s["late_ticks"])
                out.update(_platform_keys(s, "500hz_normal_sched"))
            steps = 3000 if quick else 20000
            graph = _lockstep(tmp, ap, steps)
            direct, bare = _direct(ap, min(steps, 5000))
            if not quick:  # every node its own process, for comparison
                out["lockstep_separate_steps_per_s"] = round(_lockstep(tmp, ap, 5000, compose=False), 1)
            out["lockstep_steps_per_s"] = round(graph, 1)
            out["direct_steps_per_s"] = round(direct, 1)
            out["env_steps_per_s"] = round(bare, 1)
            out["lockstep_vs_direct"] = round(graph / direct, 3)
            out["lockstep_vs_env_step"] = round(graph / bare, 3)
        finally:
            if old is None:
                os.environ.pop("BREMEN_OPERATOR_DIR", None)
            else:
                os.environ["BREMEN_OPERATOR_DIR"] = old
    return out
