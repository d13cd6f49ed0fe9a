"""Every way the graph stops leaves the safe command standing on ``bremen/command``.

An independent node (the test's probe, not part of the graph) records ``bremen/command`` and
judges the last commands it received after the graph is gone. A forward command controller
applies the last command until it gets another, so the last one must be the safe command, and
it must have been repeated for the grace period (a single message can be lost).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bremen_robot.ros import topics as T
from bremen_robot.ros.bagfile import read_custom
from bremen_robot.ros.collect import collect
from bremen_robot.ros.graph import collect_specs
from bremen_robot.ros.topics import parse_tag
from tests.ros.conftest import (
    REPO,
    held_over_grace,
    log_tails,
    require_mujoco,
    requires_rclpy,
    write_collect_config,
)

pytestmark = [requires_rclpy, pytest.mark.ros]
GRACE = 0.5
RATE_HZ = 50  # every graph here runs at 50 Hz
CHEETAH_NAMES = ["rootx", "rootz", "rooty", "bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"]
# realtime Panda (velocity interface) at 50 Hz: its safe command is zero velocity
PANDA = {"base": "panda-mujoco", "mode": "realtime", "control_rate_hz": RATE_HZ, "episode_steps": 100000}

FAULTY_RUNNER = """
import sys
from bremen_robot.ros import policy_runner, runner_core
real, calls = runner_core.RunnerCore.step, [0]
def step(self, *a, **k):
    calls[0] += 1
    if calls[0] > 100:  # 2 s of acting first: the probe must see the policy act under load
        raise RuntimeError("injected fault")
    return real(self, *a, **k)
runner_core.RunnerCore.step = step
sys.exit(policy_runner.main())
"""

# one control tick hangs for 1 s in the policy (stuck inference), then the runner goes on; the
# log says when, on the monotonic clock, which the probe's receive times share
HANGING_RUNNER = """
import sys, time
from bremen_robot.ros import policy_runner, runner_core
real, calls = runner_core.RunnerCore._action, [0]
def action(self, obs):
    calls[0] += 1
    if calls[0] == 60:
        print(f"HANG {time.monotonic()!r}", flush=True)
        time.sleep(1.0)
        print(f"BACK {time.monotonic()!r}", flush=True)
    return real(self, obs)
runner_core.RunnerCore._action = action
sys.exit(policy_runner.main())
"""


def is_safe(msg) -> bool:
    return bool(np.all(np.asarray(msg.data) == 0.0))


def acted(cmds) -> bool:
    return any(not is_safe(m) and (parse_tag(m.layout.dim[0].label) or (0,))[0] > 0 for _, m in cmds)


def acting_steps(cmds) -> int:
    """States the policy acted on in an episode: from the second, a transition is complete."""
    tags = {parse_tag(m.layout.dim[0].label) for _, m in cmds if not is_safe(m)}
    return len({t for t in tags if t is not None and t[0] > 0})


def assert_ends_safe(cmds, grace: float = GRACE) -> None:
    """The last command is the safe one, repeated over (most of) the grace period."""
    assert cmds, "no command received at all"
    assert acted(cmds), "the policy never acted: the stop was not tested"
    assert is_safe(cmds[-1][1]), f"last command {list(cmds[-1][1].data)} is not the safe command"
    tail = []
    for t, m in reversed(cmds):
        if not is_safe(m):
            break
        tail.append(t)
    assert held_over_grace(tail, grace, RATE_HZ), (len(tail), tail[0] - tail[-1])


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))


@pytest.fixture
def runner_alone(tmp_path, procs, probe):
    """policy_runner alone (sim: none, realtime 50 Hz, halfcheetah); the probe plays the robot."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, String

    cfg = write_collect_config(
        tmp_path,
        sim="none",
        mode="realtime",
        log_topics=[T.COMMAND],
        episode_steps=100000,
        control_rate_hz=RATE_HZ,
        stop_grace_s=GRACE,
    )
    runner = next(
        s for s in collect_specs(cfg, policy="random", workspace=tmp_path / "ws") if s.name == "policy_runner"
    )
    pub = probe.node.create_publisher(JointState, T.JOINT_STATES, T.qos("state_pub"))
    cmds = probe.record(Float64MultiArray, T.COMMAND, T.qos("command"))
    events = probe.record(String, T.EPISODE, T.qos("episode"))

    def start(script: str | None = None) -> subprocess.Popen[bytes]:
        params = runner.write_params(tmp_path / "params" / "policy_runner.yaml")
        argv = runner.command(params)
        if script is not None:
            argv = [sys.executable, "-c", script, *argv[3:]]
        with open(tmp_path / "runner.log", "wb") as log:
            p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env())
        procs.append(p)
        probe.activate()  # a lifecycle node: commands only once active
        assert probe.spin_until(lambda: pub.get_subscription_count() > 0, 30), "runner did not come up"
        return p

    def stream(seconds: float, until=None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until()):
            m = JointState()
            m.header.stamp = probe.node.get_clock().now().to_msg()
            m.name = CHEETAH_NAMES
            m.position, m.velocity = [0.0] * 9, [0.0] * 9
            pub.publish(m)
            probe.spin_for(0.02)

    def episode() -> None:
        from std_srvs.srv import Trigger

        stream(0.3)
        assert probe.call(Trigger, T.START_EPISODE).success
        stream(10, until=lambda: acted(cmds))

    def halts():
        return [e for _, m in events if (e := json.loads(m.data)).get("event") == "halt"]

    return {
        "start": start,
        "stream": stream,
        "episode": episode,
        "cmds": cmds,
        "halts": halts,
        "ws": tmp_path / "ws",
        "log": tmp_path / "runner.log",
    }


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_runner_sends_and_holds_the_safe_command(runner_alone, probe, sig):
    g = runner_alone
    proc = g["start"]()
    g["episode"]()
    proc.send_signal(sig)  # the states keep coming: the robot is still there
    g["stream"](GRACE + 3, until=lambda: proc.poll() is not None)
    assert proc.wait(10) == 0, g["log"].read_text()[-2000:]
    probe.spin_for(0.3)
    assert_ends_safe(g["cmds"])
    halt = g["halts"]()
    assert len(halt) == 1 and halt[0]["command"] == [0.0] * 6 and halt[0]["grace_s"] == GRACE


def test_an_exception_in_the_runner_ends_on_the_held_safe_command(runner_alone, probe):
    g = runner_alone
    proc = g["start"](FAULTY_RUNNER)
    g["episode"]()
    g["stream"](15, until=lambda: proc.poll() is not None)  # 50 failed ticks at 50 Hz, then the hold
    assert proc.wait(10) == 1 and "injected fault" in g["log"].read_text()
    probe.spin_for(0.3)
    assert_ends_safe(g["cmds"])
    assert "RuntimeError: injected fault" in g["halts"]()[0]["reason"]


def test_a_hung_control_tick_is_stopped_by_the_watchdog_and_control_resumes(runner_alone, probe):
    """Realtime at 50 Hz, halfcheetah (max_observation_age 0.15 s): during a 1 s hang the watchdog
    sends the safe command 0.17 s after the last command, the hung tick's own command goes out as
    the safe command when it returns, and the policy acts again (no latch)."""
    from diagnostic_msgs.msg import DiagnosticArray

    g = runner_alone
    safety = probe.record(DiagnosticArray, T.SAFETY, T.qos("safety"))
    proc = g["start"](HANGING_RUNNER)
    g["episode"]()

    def times() -> dict[str, float]:
        words = (ln.split() for ln in g["log"].read_text().splitlines())
        return {w[0]: float(w[1]) for w in words if len(w) == 2 and w[0] in ("HANG", "BACK")}

    def acting_after(t: float) -> int:
        return sum(1 for at, m in g["cmds"] if at > t and not is_safe(m))

    g["stream"](15, until=lambda: "BACK" in times() and acting_after(times()["BACK"]) >= 10)
    hang, back = times()["HANG"], times()["BACK"]
    cmds = [(t, m.layout.dim[0].label, m) for t, m in g["cmds"]]
    # Found by order, not by the probe's receive times: a probe starved under load once received
    # the watchdog's command after BACK, and once, 0.65 s before BACK, a safe command a tick had
    # sent before the hang (stale states under load: episode-1 tag, all zeros). One publisher, so
    # the probe receives in sending order: the watchdog's command (labelled "safe") comes first ...
    w = next((k for k, (t, label, _) in enumerate(cmds) if t > hang and label == "safe"), None)
    assert w is not None and is_safe(cmds[w][2]), "no safe command while the tick hung"
    # ... then the hung tick's own command (sent after BACK) as the safe command, episode-1 tag
    j = next(
        (
            k
            for k in range(w + 1, len(cmds))
            if is_safe(cmds[k][2]) and (parse_tag(cmds[k][1]) or (0,))[0] == 1
        ),
        None,
    )
    assert j is not None, "the hung tick's own command did not go out as the safe command"
    late = cmds[j]
    assert late[0] > back
    assert cmds[j - 1][1] == "safe", "the hung tick's command did not follow the watchdog's"
    assert acting_after(late[0]) >= 10 and proc.poll() is None  # acting again, still running
    stops = [s for t, m in safety if t > hang for s in m.status if s.name.endswith("/stale_observation")]
    assert stops and "tick watchdog" in stops[0].message


def test_a_runner_stopped_before_its_first_transition_counts_no_deployment(runner_alone, probe):
    from bremen_robot.registry import Registry

    g = runner_alone
    proc = g["start"]()
    probe.spin_for(0.5)  # loaded, no state ever arrived: nothing was collected
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    with Registry.open(g["ws"]) as reg:
        assert reg.deployment_count() == 0
    proc = g["start"]()
    g["episode"]()  # this time it acts on states: one transition is enough
    # a transition is logged when the state after an action arrives, so wait for a second
    # action (the first alone raced the stop under load: "episode 1 interrupted: 0 steps")
    g["stream"](10, until=lambda: acting_steps(g["cmds"]) >= 2)
    proc.send_signal(signal.SIGINT)
    g["stream"](GRACE + 3, until=lambda: proc.poll() is not None)
    assert proc.wait(10) == 0
    with Registry.open(g["ws"]) as reg:
        assert reg.deployment_count() == 1 and reg.get("random").deployments == [1]


# ---------------------------------------------------------------- the whole graph: bremen collect
def children(pid: int) -> dict[str, int]:
    """Child processes of ``pid`` by node name (from their command lines)."""
    out: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            for name in ("trajectory_logger", "sim_bridge", "policy_runner"):
                if f"bremen_robot.ros.{name}" in cmd:
                    out[name] = int(child)
    return out


def _inherit(how: str) -> None:
    """What the collect process inherits, as from a shell's background job (SIGINT ignored) or
    from a Ray worker (SIGINT blocked: a blocked mask survives fork and exec)."""
    if how == "ignored":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


@pytest.fixture
def panda_collect(request, tmp_path, procs, probe):
    require_mujoco()
    inherited = getattr(request, "param", "ignored")
    from std_msgs.msg import Float64MultiArray

    base = PANDA["base"]
    cfg = write_collect_config(tmp_path, base, **{k: v for k, v in PANDA.items() if k != "base"})
    cmds = probe.record(Float64MultiArray, T.COMMAND, T.qos("command"))
    argv = [
        sys.executable,
        "-m",
        "bremen_robot",
        "collect",
        "--config",
        str(cfg),
        "--random",
        "--steps",
        "100000",
        "--out",
        str(tmp_path / "bag"),
        "--workspace",
        str(tmp_path / "ws"),
    ]
    # output to a file, not a pipe: a pipe nobody reads while the graph runs can fill and block it
    log = tmp_path / "collect.log"
    with open(log, "wb") as sink:
        # started as a shell starts a background job: SIGINT ignored. The stop must not depend on
        # what the process inherited (a lost Ctrl-C once left a graph running in a full run).
        proc = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env(),
            preexec_fn=lambda: _inherit(inherited),
        )
    procs.append(proc)
    # longer than collect's own waits (bring-up, then the logger's first state: 60 s each), so a
    # graph that never acts fails with collect's one-line error and every node's log
    up = probe.spin_until(lambda: (acted(cmds) and len(cmds) > 25) or proc.poll() is not None, 150)
    if not up or proc.poll() is not None:
        if proc.poll() is None:  # the CLI prints every thread's stack on SIGUSR1
            proc.send_signal(signal.SIGUSR1)
            time.sleep(2.0)
        logs = log_tails(log, tmp_path / "bag" / "logs")
        pytest.fail(f"the graph never acted (exit {proc.poll()}):\n{logs}")
    return {"proc": proc, "cmds": cmds, "bag": tmp_path / "bag", "log": log}


def finish(g, probe, limit_s: float = 60.0) -> str:
    """Keep receiving while the graph stops; a graph that does not stop in ``limit_s`` fails."""
    end = time.monotonic() + limit_s
    while g["proc"].poll() is None and time.monotonic() < end:
        probe.spin_for(0.1)
    if g["proc"].poll() is None:  # stuck: the CLI prints every thread's stack on SIGUSR1
        g["proc"].send_signal(signal.SIGUSR1)
        time.sleep(2.0)
    out = g["log"].read_bytes().decode(errors="replace")
    assert g["proc"].poll() is not None, (
        f"bremen collect still running {limit_s:.0f} s after the stop:\n{out}"
    )
    probe.spin_for(0.3)
    return g["log"].read_bytes().decode(errors="replace")


@pytest.mark.parametrize(
    "panda_collect,sig",
    [("ignored", signal.SIGINT), ("ignored", signal.SIGTERM), ("blocked", signal.SIGINT)],
    ids=["SIGINT", "SIGTERM", "SIGINT-inherited-blocked"],
    indirect=["panda_collect"],
)
def test_ctrl_c_of_bremen_collect_ends_on_the_safe_command_and_reports_the_bag(panda_collect, probe, sig):
    g = panda_collect
    g["proc"].send_signal(sig)
    out = finish(g, probe)
    assert g["proc"].returncode == 130, out
    assert_ends_safe(g["cmds"])
    eps = json.loads(read_custom(g["bag"])["bremen.episodes"])
    steps = sum(int(e.get("steps") or 0) for e in eps)
    assert [e["status"] for e in eps] == ["incomplete"] and steps > 0
    assert f"collected 1 episodes (0 complete, 1 incomplete), {steps} steps (interrupted)" in out


@pytest.mark.parametrize("victim", ["trajectory_logger", "sim_bridge"])
def test_a_crashed_sibling_node_ends_on_the_safe_command(panda_collect, probe, victim):
    g = panda_collect
    os.kill(children(g["proc"].pid)[victim], signal.SIGKILL)
    out = finish(g, probe)
    assert g["proc"].returncode != 0 and f"node {victim} exited with code -9" in out, out
    assert_ends_safe(g["cmds"])


def test_summary_counts_the_bags_episodes_even_when_ctrl_c_lands_in_an_event(tmp_path):
    """The Ctrl-C arrives while this process handles the first episode's stop event: the old
    summary said 'collected 0 episodes ... 0 steps' while the bag held that finished episode."""
    require_mujoco()
    cfg = write_collect_config(tmp_path, episode_steps=40, seed=3)

    pressed = []

    def ctrl_c(evt):  # one Ctrl-C, landing in the handler of the first stop event
        if evt.get("event") == "stop" and not pressed:
            pressed.append(evt["id"])
            raise KeyboardInterrupt

    res = collect(
        cfg,
        random=True,
        episodes=5,
        out=tmp_path / "bag",
        workspace=tmp_path / "ws",
        timeout_s=120,
        on_event=ctrl_c,
    )
    eps = json.loads(read_custom(tmp_path / "bag")["bremen.episodes"])
    assert pressed == [1] and res.interrupted
    assert eps[0]["status"] == "complete" and eps[0]["steps"] == 40
    assert [(e["id"], e["complete"], e["steps"]) for e in res.episodes][0] == (1, True, 40)
    assert len(res.episodes) == len(eps) and res.steps == sum(int(e.get("steps") or 0) for e in eps)
    # lockstep may finish later episodes before the Ctrl-C lands: the summary says what the bag holds
    done = sum(e["status"] == "complete" for e in eps)
    assert res.summary().startswith(f"collected {len(eps)} episodes ({done} complete, {len(eps) - done} inc")
