"""Process plumbing of the nodes: the composed launcher's arguments and the SCHED_FIFO request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from bremen_robot.ros import _node
from bremen_robot.ros.composed import main as composed_main
from bremen_robot.ros.config import load_collect_config
from bremen_robot.ros.graph import node_specs
from tests.ros.conftest import CONFIGS, write_collect_config


def test_composed_refuses_unknown_or_missing_nodes(capsys):
    assert composed_main(["composed", "sim_bridge", "teleporter", "--ros-args"]) == 2
    assert "unknown node 'teleporter'" in capsys.readouterr().err
    assert composed_main(["composed", "--ros-args"]) == 2
    assert "name the nodes" in capsys.readouterr().err


def test_fifo_priority_zero_is_a_no_op_and_refusal_is_a_warning_with_the_fix(monkeypatch):
    called = []
    monkeypatch.setattr(os, "sched_setscheduler", lambda *a: called.append(a))
    assert _node.request_fifo_priority(0) is None and not called

    def refuse(*a):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    msg = _node.request_fifo_priority(40)
    assert msg is not None and "SCHED_FIFO priority 40" in msg and "rtprio" in msg and "\n" not in msg


def test_fifo_priority_applies_to_every_thread_of_the_process():
    """In a child process (never this one): threads started before and after the request."""
    code = (
        "import os, threading, time\n"
        "from bremen_robot.ros._node import request_fifo_priority\n"
        "ev = threading.Event(); before = threading.Thread(target=ev.wait); before.start()\n"
        "warning = request_fifo_priority(5)\n"
        "after = threading.Thread(target=ev.wait); after.start()\n"
        "pols = {os.sched_getscheduler(int(t)) for t in os.listdir('/proc/self/task')}\n"
        "ev.set(); print(repr(warning), sorted(pols))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    warning, pols = out.stdout.strip().split(" ", 1)
    if warning != "None":  # no rtprio rights here: the warning is the documented outcome
        pytest.skip(f"no SCHED_FIFO rights on this machine: {warning}")
    assert pols == f"[{os.SCHED_FIFO}]"


def test_runner_priority_reaches_the_policy_runner_parameters(tmp_path):
    cfg = load_collect_config(
        write_collect_config(tmp_path, base="halfcheetah-robot", runner_realtime_priority=70)
    )
    runner = next(s for s in node_specs(cfg, policy="random") if s.name == "policy_runner")
    assert runner.parameters["realtime_priority"] == 70
    default = load_collect_config(CONFIGS / "collect" / "halfcheetah.yaml")
    assert (
        next(s for s in node_specs(default, policy="random") if s.name == "policy_runner").parameters[
            "realtime_priority"
        ]
        == 0
    )


def test_nodes_with_different_remappings_cannot_share_a_process():
    from dataclasses import replace

    from bremen_robot.errors import ConfigError
    from bremen_robot.ros.graph import ProcessSpec

    cfg = load_collect_config(CONFIGS / "collect" / "halfcheetah.yaml")
    sim, runner = node_specs(cfg, policy="random")[:2]
    with pytest.raises(ConfigError, match="same remappings"):
        ProcessSpec((sim, replace(runner, remappings=(("bremen/command", "/x"),))))


def test_a_process_that_exits_non_zero_is_named_once_with_its_last_log_lines(tmp_path, monkeypatch):
    """The operator's only view of why a node failed: the run's summary names the process (not
    each node it carries) and quotes its log; a clean exit is not mentioned."""
    from bremen_robot.ros.collect import CollectResult
    from bremen_robot.ros.graph import ProcessSpec, process_specs
    from bremen_robot.ros.process_graph import Graph

    cfg = load_collect_config(write_collect_config(tmp_path, compose_lockstep=True))
    procs = process_specs(cfg, node_specs(cfg, policy="random"))
    assert [p.name for p in procs][0] == "sim_bridge+policy_runner"
    scripts = {
        "sim_bridge+policy_runner": "print('starting'); print('composed: error: boom'); raise SystemExit(3)",
    }

    def command(self, params_file, python=sys.executable):
        return [python, "-c", scripts.get(self.name, "pass")]

    monkeypatch.setattr(ProcessSpec, "command", command)
    graph = Graph(procs, tmp_path / "run", dict(os.environ))
    graph.start()
    for p in graph.procs.values():
        p.wait(30)
    failures = graph.exit_failures()
    assert failures == [
        "process sim_bridge+policy_runner exited with code 3: starting | composed: error: boom"
    ]
    result = CollectResult(bag=tmp_path / "run", exit_failures=failures)
    assert failures[0] in result.summary().splitlines()


def _stand_in_graph(tmp_path, monkeypatch, body: str, cfg=None):
    """The graph of ``cfg`` (default: the lockstep graph as three separate processes), each
    process a stand-in running ``body`` with ``name`` and ``marks`` (a folder) set; started, and
    returned once each touched ``marks/<name>.up``."""
    from bremen_robot.ros.graph import ProcessSpec, process_specs
    from bremen_robot.ros.process_graph import Graph

    lockstep = cfg is None
    if lockstep:
        cfg = load_collect_config(write_collect_config(tmp_path, compose_lockstep=False))
    procs = process_specs(cfg, node_specs(cfg, policy="random"))
    if lockstep:
        assert sorted(p.name for p in procs) == ["policy_runner", "sim_bridge", "trajectory_logger"]
    marks = tmp_path / "marks"
    marks.mkdir()
    script = (
        "import pathlib, signal, sys, time\nname, marks = sys.argv[1], pathlib.Path(sys.argv[2])\n" + body
    )

    def command(self, params_file, python=sys.executable):
        return [python, "-c", script, self.name, str(marks)]

    monkeypatch.setattr(ProcessSpec, "command", command)
    graph = Graph(procs, tmp_path / "run", dict(os.environ))
    graph.start()
    deadline = time.monotonic() + 30
    while len(list(marks.glob("*.up"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    return graph, marks


def test_the_logger_catches_up_after_the_runner_halts_and_before_any_other_node_stops(tmp_path, monkeypatch):
    """stop_all's ``settle`` (bremen collect: wait until the bag lists every episode the runner
    reported) runs once the runner has its SIGINT and before the nodes whose messages the
    logger may still be missing stop, the logger itself included."""
    graph, marks = _stand_in_graph(
        tmp_path,
        monkeypatch,
        "def stop(*_):\n"
        "    (marks / name).write_text(str(time.monotonic()))\n"
        "    raise SystemExit(0)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "(marks / (name + '.up')).touch()\n"
        "time.sleep(60)\n",
    )
    calls: list[str] = []

    def halted(timeout: float) -> bool:  # after the runner's SIGINT (the runner says it is halted)
        calls.append("halted")
        return True

    def settle() -> None:
        alive = [n for n in ("sim_bridge", "trajectory_logger") if graph.procs[n].poll() is None]
        signalled = sorted(p.name for p in marks.iterdir() if not p.name.endswith(".up"))
        calls.append(f"settle: alive {alive}, stopped {signalled}")

    codes = graph.stop_all(halted=halted, settle=settle)
    assert codes == {"policy_runner": 0, "sim_bridge": 0, "trajectory_logger": 0}
    assert calls[0] == "halted"
    assert calls[1] in (  # the runner's own SIGINT handler may not have run yet
        "settle: alive ['sim_bridge', 'trajectory_logger'], stopped ['policy_runner']",
        "settle: alive ['sim_bridge', 'trajectory_logger'], stopped []",
    )
    assert len(calls) == 2


def test_await_stored_returns_once_the_bag_lists_the_episodes_and_gives_up_after_its_timeout(tmp_path):
    import threading

    import yaml

    from bremen_robot.ros.bag_listing import await_stored

    bag = tmp_path / "bag"
    bag.mkdir()

    def listing(*statuses: str) -> None:
        episodes = [{"id": i + 1, "status": s} for i, s in enumerate(statuses)]
        info = {"custom_data": {"bremen.episodes": json.dumps(episodes)}}
        (bag / "metadata.yaml").write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}))

    assert await_stored(bag, 1, timeout_s=0.2) is False  # no metadata yet: nothing stored
    listing("complete", "open")
    assert await_stored(bag, 2, timeout_s=0.2) is False  # an open episode is not stored
    later = threading.Timer(0.3, listing, ("complete", "incomplete"))
    later.start()
    start = time.monotonic()
    assert await_stored(bag, 2, timeout_s=10.0) is True
    assert 0.25 < time.monotonic() - start < 5.0
    later.join()
    listing("complete", "open")
    start = time.monotonic()  # a logger that died will list nothing more: no waiting for it
    assert await_stored(bag, 2, timeout_s=10.0, writer_alive=lambda: False) is False
    assert time.monotonic() - start < 1.0


def test_with_resets_an_episode_is_stored_once_its_reset_record_is_in_too(tmp_path):
    """In simulation the reset event (the reach goal) comes from sim_bridge, not from the runner
    that stops the episode, and can arrive seconds later; the wait counts it."""
    import yaml

    from bremen_robot.ros.bag_listing import await_stored, stored_episodes

    bag = tmp_path / "bag"
    bag.mkdir()
    episodes = [
        {"id": 1, "status": "complete", "reset_stamp_ns": 1_050_000_000, "extras": {"goal.x": 0.4}},
        {"id": 2, "status": "complete"},  # stopped, its reset event still on its way
    ]
    info = {"custom_data": {"bremen.episodes": json.dumps(episodes)}}
    (bag / "metadata.yaml").write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}))
    assert (stored_episodes(bag), stored_episodes(bag, with_reset=True)) == (2, 1)
    assert await_stored(bag, 2, timeout_s=0.2) is True
    assert await_stored(bag, 2, timeout_s=0.2, with_reset=True) is False


def test_only_a_graph_with_a_simulator_has_resets_to_wait_for(tmp_path):
    from bremen_robot.ros.collect import resets_logged
    from bremen_robot.ros.graph import process_specs
    from bremen_robot.ros.process_graph import Graph

    def graph(**fields):
        cfg = load_collect_config(write_collect_config(tmp_path, **fields))
        return Graph(process_specs(cfg, node_specs(cfg, policy="random")), tmp_path / "run", {})

    assert resets_logged(graph(compose_lockstep=True)) is True  # sim_bridge inside a composed process
    assert resets_logged(graph(compose_lockstep=False)) is True
    assert resets_logged(graph(sim="none", mode="realtime")) is False  # a robot: no sim_bridge


def test_the_logger_is_waited_for_after_a_finished_or_an_interrupted_run_but_not_after_a_crash():
    """A Ctrl-C'd run's last event is its interrupted episode's record (with its steps): stopping
    the logger before it stored that left the bag listing the episode with no steps (a CI run)."""
    from bremen_robot.ros.collect import logger_catch_up_due

    assert logger_catch_up_due(done=True, halted=True, logger=True, episodes_logged=True)
    assert logger_catch_up_due(done=False, halted=True, logger=True, episodes_logged=True)  # Ctrl-C
    assert not logger_catch_up_due(done=False, halted=False, logger=True, episodes_logged=True)  # died
    assert not logger_catch_up_due(done=True, halted=True, logger=False, episodes_logged=True)
    assert not logger_catch_up_due(done=True, halted=True, logger=True, episodes_logged=False)


def test_a_runner_finalized_through_its_lifecycle_is_waited_for_and_not_signalled(tmp_path, monkeypatch):
    """After an answered ``shutdown`` the runner exits by itself; a SIGINT sent then could land in
    its teardown, with the default handler back, and end it with -2 (a fresh-clone CI run did)."""
    # every stand-in records a SIGINT; the runner's exits by itself once it is "finalized"
    graph, marks = _stand_in_graph(
        tmp_path,
        monkeypatch,
        "def stop(*_):\n"
        "    (marks / (name + '.sigint')).touch()\n"
        "    raise SystemExit(0)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "(marks / (name + '.up')).touch()\n"
        "while not (marks / 'finalized').exists():\n"
        "    time.sleep(0.01)\n"
        "time.sleep(0.5 if name == 'policy_runner' else 60)\n",
    )

    class Lifecycle:  # the runner's lifecycle services, answering every transition
        def __init__(self) -> None:
            self.asked: list[str] = []

        def change(self, label: str, timeout: float) -> bool:
            self.asked.append(label)
            if label == "shutdown":
                (marks / "finalized").touch()
            return True

    lifecycle = Lifecycle()
    codes = graph.stop_all(grace_s=0.5, lifecycle=lifecycle)
    assert lifecycle.asked == ["deactivate", "cleanup", "shutdown"]
    assert codes == {"policy_runner": 0, "sim_bridge": 0, "trajectory_logger": 0}
    assert sorted(p.name for p in marks.glob("*.sigint")) == ["sim_bridge.sigint", "trajectory_logger.sigint"]


def test_a_ctrl_c_in_the_event_hook_keeps_the_episode_it_was_handling():
    """The Ctrl-C lands in the caller's hook while it handles an episode's stop: that episode is
    still in the result, so the logger is waited for until the bag lists it."""
    from types import SimpleNamespace

    from bremen_robot.ros.collect import CollectResult, _EventWatch

    def ctrl_c(evt):
        if evt.get("event") == "stop":
            raise KeyboardInterrupt

    watch = _EventWatch(CollectResult(bag=None), ctrl_c)  # type: ignore[arg-type]
    stop = {"event": "stop", "id": 1, "steps": 40, "source": "policy_runner"}
    with pytest.raises(KeyboardInterrupt):
        watch.handle(SimpleNamespace(data=json.dumps(stop)))
    assert [e["id"] for e in watch.result.episodes] == [1]
    assert watch.result.episodes[0]["steps"] == 40


def test_simulation_with_states_logged_waits_for_the_logger_before_episode_one(tmp_path):
    """A logger that matched the simulator late lost episode 1's states: realtime, its first
    states (a live test, one run in five on three test workers); lockstep, every state of a short
    run (a fresh-clone CI run, 2026-12-06). In lockstep sim_bridge re-sends its startup state until
    episode 1, so the wait ends there too. On a robot reset_node waits for the logger itself."""
    from bremen_robot.ros.collect import logger_recording_due
    from bremen_robot.ros.graph import process_specs
    from bremen_robot.ros.process_graph import Graph

    def due(**fields):
        cfg = load_collect_config(write_collect_config(tmp_path, **fields))
        graph = Graph(process_specs(cfg, node_specs(cfg, policy="random")), tmp_path / "run", {})
        return logger_recording_due(graph, cfg.mode, cfg.log_topics)

    assert due(mode="realtime") is True
    assert due(mode="lockstep") is True
    assert due(mode="lockstep", log_topics=["bremen/episode", "bremen/command"]) is False
    assert due(mode="realtime", log_topics=["bremen/episode", "bremen/command"]) is False
    assert due(sim="none", mode="realtime") is False


def test_the_wait_for_the_logger_ends_at_its_event_and_fails_in_one_line_without_it():
    from types import SimpleNamespace

    from bremen_robot.ros.collect import CollectError, CollectResult, _EventWatch, await_logger_recording

    watch = _EventWatch(CollectResult(bag=None), None)  # type: ignore[arg-type]
    spins: list[float] = []
    events = [
        {"event": "recording", "source": "policy_runner"},  # not the logger's
        {"event": "started", "source": "trajectory_logger"},  # the logger's, another event
        {"event": "recording", "topics": ["joint_states"], "source": "trajectory_logger"},
    ]

    def spin(timeout: float) -> None:
        spins.append(timeout)
        watch.handle_logger(SimpleNamespace(data=json.dumps(events[len(spins) - 1])))

    await_logger_recording(watch, spin, lambda: True, timeout_s=30.0)
    assert len(spins) == 3 and watch.logger_recording is True

    silent = _EventWatch(CollectResult(bag=None), None)  # type: ignore[arg-type]
    start = time.monotonic()
    with pytest.raises(CollectError, match="trajectory_logger received no joint_states within 0.3 s"):
        await_logger_recording(silent, lambda t: time.sleep(t), lambda: True, timeout_s=0.3)
    assert 0.3 <= time.monotonic() - start < 5.0
    # a logger that died: no error here, the caller's wait names the dead node
    await_logger_recording(silent, lambda t: time.sleep(t), lambda: False, timeout_s=30.0)


def test_bring_up_runs_the_callers_wait_between_configure_and_activate():
    from bremen_robot.ros.lifecycle_client import LifecycleClient

    client = LifecycleClient.__new__(LifecycleClient)
    steps: list[str] = []

    def change(label: str, timeout: float) -> bool:
        steps.append(label)
        return True

    client.change = change  # type: ignore[method-assign]
    assert client.bring_up(5.0, before_activate=lambda: steps.append("wait")) is True
    assert steps == ["configure", "wait", "activate"]


def test_a_logger_that_died_mid_run_has_its_bag_recovered_although_the_run_fails(tmp_path, monkeypatch):
    """A logger that crashes by itself makes the wait fail (CollectError, "node trajectory_logger
    exited ..."); its open episode must still be marked incomplete, as after a logger crash that
    ends a run (the hook in collect_faults.py only covered that one)."""
    from types import SimpleNamespace

    from bremen_robot.ros import collect as collect_mod
    from bremen_robot.ros.bagfile import SegmentedBagWriter, read_custom
    from bremen_robot.ros.collect import CollectError, CollectResult

    bag = tmp_path / "bag"
    w = SegmentedBagWriter(bag, {"bremen.task": "point"})
    w.episode(1, status="complete", steps=5)
    w.finish_segment()
    w.episode(2, status="open")
    w.write_metadata()  # the logger is SIGKILLed here: episode 2 is listed open

    def run(rclpy, graph, cfg, watch, show, timeout_s, hooks, stopping=None):
        # what _run leaves when _wait sees the dead logger: the exit codes, then the error
        watch.result.exit_codes = {"policy_runner": 0, "sim_bridge": 0, "trajectory_logger": -9}
        raise CollectError("node trajectory_logger exited with code -9: ")

    monkeypatch.setattr(collect_mod, "_run", run)
    monkeypatch.setattr(collect_mod, "require_rclpy", lambda: None)
    monkeypatch.setattr(collect_mod, "apply_ros_env", lambda: None)
    cfg = SimpleNamespace(log_topics=["bremen/episode"], workspace=None)
    result = CollectResult(bag=bag)
    with pytest.raises(CollectError, match="trajectory_logger exited with code -9"):
        collect_mod._collect_locked(cfg, bag, result, False, 0.0, None, None, None)
    eps = {e["id"]: e for e in json.loads(read_custom(bag)["bremen.episodes"])}
    assert eps[1]["status"] == "complete"
    assert eps[2]["status"] == "incomplete" and eps[2]["reason"] == "logger_crashed"


def test_reset_node_stopped_mid_reset_may_hold_the_safe_command_for_its_whole_grace(tmp_path, monkeypatch):
    """A Ctrl-C during a scripted reset: reset_node sends the safe command for ``stop_grace_s``
    (0.1-10 s) before it exits. The stop gave it a fixed 5 s, so a grace of 7 s was cut short by
    SIGKILL (its hold and its ``end`` event lost, the run reporting "reset_node exited -9")."""
    hw = load_collect_config(write_collect_config(tmp_path, "panda-robot", stop_grace_s=7.0))
    # every stand-in exits 0 on SIGINT; reset_node first holds for 7 s, as mid-reset
    body = (
        "def stop(*_):\n"
        "    time.sleep(7.0 if name == 'reset_node' else 0.0)\n"
        "    raise SystemExit(0)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "(marks / (name + '.up')).touch()\n"
        "time.sleep(60)\n"
    )
    graph, marks = _stand_in_graph(tmp_path, monkeypatch, body, cfg=hw)
    assert sorted(p.stem for p in marks.glob("*.up")) == ["policy_runner", "reset_node", "trajectory_logger"]
    codes = graph.stop_all(grace_s=7.0)
    assert codes == {"policy_runner": 0, "reset_node": 0, "trajectory_logger": 0}


def test_a_logger_that_died_before_its_bag_existed_leaves_the_runs_own_summary(tmp_path, monkeypatch):
    """Ctrl-C while the graph comes up, the logger having failed at its start (no metadata.yaml
    yet): the run is reported as interrupted, with the logger's failure line, not as a missing
    metadata.yaml."""
    from types import SimpleNamespace

    from bremen_robot.ros import collect as collect_mod
    from bremen_robot.ros.collect import CollectResult

    bag = tmp_path / "bag"

    def run(rclpy, graph, cfg, watch, show, timeout_s, hooks, stopping=None):
        watch.result.interrupted = True
        watch.result.exit_codes = {"policy_runner": 0, "trajectory_logger": 1}
        watch.result.exit_failures = ["node trajectory_logger exited with code 1: error: boom"]

    monkeypatch.setattr(collect_mod, "_run", run)
    monkeypatch.setattr(collect_mod, "require_rclpy", lambda: None)
    monkeypatch.setattr(collect_mod, "apply_ros_env", lambda: None)
    cfg = SimpleNamespace(log_topics=["bremen/episode"], workspace=None)
    result = collect_mod._collect_locked(cfg, bag, CollectResult(bag=bag), False, 0.0, None, None, None)
    assert result.interrupted and result.episodes == []
    assert "node trajectory_logger exited with code 1: error: boom" in result.summary().splitlines()
