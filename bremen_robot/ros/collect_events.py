"""What ``bremen collect`` learns from a running graph: the result it builds from the runner's
``bremen/episode`` events (:class:`CollectResult`, kept by :class:`_EventWatch`), and the small
pure decisions about when to wait for the trajectory logger (before episode 1, and before the
logger stops). Split from :mod:`bremen_robot.ros.collect`, which runs the graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bremen_robot.errors import BremenError
from bremen_robot.ros import topics as T
from bremen_robot.ros.graph import NodeSpec, ProcessSpec
from bremen_robot.ros.process_graph import Graph


def resets_logged(graph: Graph) -> bool:
    """Whether every episode of this graph has a reset event to wait for: a simulator's
    (``sim_bridge`` sends one at each episode start; a scripted hardware reset may be skipped)."""
    return any(n.name == "sim_bridge" for p in graph.processes for n in p.nodes)


def logger_recording_due(graph: Graph, mode: str, log_topics: Sequence[str]) -> bool:
    """Whether ``bremen collect`` waits for the logger's ``recording`` event (its first
    ``joint_states``) before it activates the runner, in simulation: a logger that matched the
    simulator late lost episode 1's first states under load (realtime, where states flow from
    the start), or every state of a short lockstep run (sim_bridge re-sends its startup state
    until episode 1, so the event comes in lockstep too). Not on hardware (reset_node waits for
    the event itself)."""
    return resets_logged(graph) and T.JOINT_STATES in log_topics


def await_logger_recording(
    watch: _EventWatch, spin: Callable[[float], None], logger_alive: Callable[[], bool], timeout_s: float
) -> None:
    """Spin until the logger's ``recording`` event reached ``watch``; returns early if the logger
    died (the caller's wait names the dead node). Raises a one-line CollectError after
    ``timeout_s`` with the logger alive but no state in its bag."""
    end = time.monotonic() + timeout_s
    while not watch.logger_recording and logger_alive() and time.monotonic() < end:
        spin(0.05)
    if not watch.logger_recording and logger_alive():
        raise CollectError(
            f"trajectory_logger received no joint_states within {timeout_s:g} s of the simulator "
            "starting; see sim_bridge's and trajectory_logger's logs (a simulator that publishes "
            "nothing, or a remapped joint_states topic)"
        )


def logger_catch_up_due(done: bool, halted: bool, logger: bool, episodes_logged: bool) -> bool:
    """Whether ``bremen collect`` waits, before it stops the logger, until the bag lists every
    episode the runner reported: when the runner finished its budget or halted in order (a
    Ctrl-C too: its interrupted episode's record, with its steps, is the last event it sends),
    and a running logger records the episode events. Not after a runner that died (its last
    events may never come) or with the logger gone: the wait would only delay the error."""
    return (done or halted) and logger and episodes_logged


class CollectError(BremenError):
    """The graph could not start or a node died."""


class ResetFailedError(CollectError):
    """A scripted reset failed (reset_node's one line): the graph was stopped, an operator is needed."""


@dataclass
class CollectResult:
    bag: Path
    deployment: int | None = None
    policy_sha256: str = ""
    episodes: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    logger_crashed: bool = False
    estop: bool = False  # the run ended because bremen/estop latched (stop_on_estop)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    exit_failures: list[str] = field(default_factory=list)  # a line per process that exited non-zero
    specs: list[NodeSpec] = field(default_factory=list)
    processes: list[ProcessSpec] = field(default_factory=list)
    shadow: dict[str, Any] | None = None  # the recorded shadow run's summary (--shadow)
    resets: list[dict[str, Any]] = field(default_factory=list)  # reset_node's end events
    registry: str = ""  # where the runner records the deployment: database and workspace, one line

    @property
    def steps(self) -> int:
        return sum(int(e.get("steps", 0)) for e in self.episodes)

    @property
    def returns(self) -> list[float]:
        return [
            float(e["return"])
            for e in self.episodes
            if e.get("complete", True) and e.get("return") is not None
        ]

    @property
    def interventions(self) -> int:
        return sum(int(e.get("interventions", 0)) for e in self.episodes)

    def summary(self) -> str:
        done = [e for e in self.episodes if e.get("complete", True)]
        rets = self.returns
        lines = [
            f"collected {len(self.episodes)} episodes ({len(done)} complete, "
            f"{len(self.episodes) - len(done)} incomplete), {self.steps} steps"
            + (" (interrupted)" if self.interrupted else "")
            + (" (stopped: e-stop latched)" if self.estop else ""),
            f"deployment {self.deployment}, policy {self.policy_sha256[:12] or '?'}",
        ]
        if rets:
            mean = sum(rets) / len(rets)
            lines.append(f"returns: mean {mean:.3f}, min {min(rets):.3f}, max {max(rets):.3f}")
        lines.append(f"interventions: {self.interventions}")
        if self.resets:
            ok = sum(1 for r in self.resets if r.get("success"))
            lines.append(f"scripted resets: {len(self.resets)} ({ok} succeeded)")
        if self.logger_crashed:
            lines.append("logger crashed: the episode it was writing is marked incomplete")
        lines.extend(self.exit_failures)
        if self.shadow is not None:
            lines.append(
                f"shadow run {self.shadow['seq']} of {self.shadow['policy']} recorded (not a deployment): "
                f"{self.shadow['paired_steps']} paired steps; see '{self.shadow['review']}'"
            )
        lines.append(f"bag: {self.bag}")
        if self.registry:
            lines.append(f"registry: {self.registry}")
        return "\n".join(lines)


class _EventWatch:
    """What this process learns from ``bremen/episode`` (the runner's events) during a run."""

    def __init__(
        self,
        result: CollectResult,
        on_event: Callable[[dict[str, Any]], None] | None,
        stop_on_estop: bool = False,
    ) -> None:
        self.result = result
        self.on_event = on_event
        self.stop_on_estop = stop_on_estop
        self.done = False  # the runner's budget is used up
        self.halted = False  # the runner said it sent the safe command on its way out
        self.current_id: Any = None
        self.current_steps = 0  # steps of the episode in progress
        self.reset_failure: str | None = None  # reset_node's line when a reset failed
        self.logger_recording = False  # trajectory_logger said the robot's states reach its bag

    def handle_logger(self, msg: Any) -> None:
        evt = T.episode_event(msg.data, "trajectory_logger")
        if evt is not None and evt.get("event") == "recording":
            self.logger_recording = True

    def handle_reset(self, msg: Any) -> None:
        evt = T.episode_event(msg.data, "reset_node")
        if evt is None or evt.get("event") != "end":
            return
        self.result.resets.append(evt)
        if evt.get("operator_needed") and self.reset_failure is None:
            self.reset_failure = str(evt.get("message") or evt.get("reason"))

    def done_steps(self) -> int:
        return self.result.steps + self.current_steps

    def handle(self, msg: Any) -> None:
        evt = T.episode_event(msg.data, "policy_runner")
        if evt is None:
            return
        kind = evt.get("event")
        if kind == "start":
            self.result.deployment = evt.get("deployment")
            self.result.policy_sha256 = evt.get("policy_sha256", "")
            self.current_id, self.current_steps = evt.get("id"), 0
        elif kind == "progress":
            self.current_steps = evt.get("steps", 0)
        elif kind == "stop":
            if not any(e.get("id") == evt.get("id") for e in self.result.episodes):
                self.result.episodes.append(evt)
            self.current_id, self.current_steps = None, 0
            if evt.get("finished"):
                self.done = True
        elif kind == "done":
            self.done = True
        elif kind == "halt":
            self.halted = True
        # the caller's hook last: a Ctrl-C that lands in it (a live view's handler) must not lose
        # this event; a stop left out of ``episodes`` was not waited for in the logger's bag
        if self.on_event is not None:
            self.on_event(evt)

    def handle_estop(self, msg: Any) -> None:
        """``bremen/estop`` (latched): passed on as an ``estop`` event for a live view; with
        ``stop_on_estop`` (a fleet robot) the run ends there and stops in order."""
        if self.stop_on_estop and msg.data:
            self.result.estop = self.done = True
        if self.on_event is not None:
            self.on_event({"event": "estop", "latched": bool(msg.data), "source": T.ESTOP})
