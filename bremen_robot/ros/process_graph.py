"""The node processes of one collection run: start them in order, watch them, stop them in
the order that keeps the robot safe (runner first to stop, logger last to exit: DESIGN.md §3)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bremen_robot.child_process import die_with_parent
from bremen_robot.ros.graph import ProcessSpec
from bremen_robot.ros.stop_signals import unblock_stop_signals


def _pdeathsig() -> None:  # runs in the child before exec
    # a blocked mask survives exec: a node started from a Ray worker would never see the SIGINT
    # that stops it in order, and be killed at the timeout (its bag left unclosed)
    unblock_stop_signals()
    die_with_parent()
    os.setpgrp()  # Ctrl-C in a terminal reaches us only; we stop the nodes in order


class Graph:
    """The node processes of one run; a context manager that always cleans up.

    ``procs`` and ``logs`` are keyed by node name; nodes that share a process share its entry.
    """

    def __init__(self, processes: list[ProcessSpec], workdir: Path, env: dict[str, str]) -> None:
        self.processes = processes
        self.workdir = workdir
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self) -> None:
        order = {"trajectory_logger": 0, "sim_bridge": 1, "policy_runner": 2}
        for proc in sorted(self.processes, key=lambda p: min(order.get(n.executable, 3) for n in p.nodes)):
            params = proc.write_params(self.workdir / "params" / f"{proc.name}.yaml")
            log = self.workdir / "logs" / f"{proc.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "wb") as out:
                popen = subprocess.Popen(
                    proc.command(params),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    preexec_fn=_pdeathsig,
                )
            for node in proc.nodes:
                self.procs[node.name] = popen
                self.logs[node.name] = log

    def process_label(self, name: str) -> str:
        """'node X', or 'process sim_bridge+policy_runner' for nodes that share one."""
        proc = next((p for p in self.processes if any(n.name == name for n in p.nodes)), None)
        if proc is None or len(proc.nodes) == 1:
            return f"node {name}"
        return f"process {proc.name}"

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def tail(self, name: str, n: int = 6) -> str:
        try:
            lines = self.logs[name].read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-n:])

    def exit_failures(self) -> list[str]:
        """One line per exited process whose code was not 0 (nodes sharing a process: once),
        with its log's last lines: what the operator reads when a run ends badly."""
        lines, seen = [], set()
        for name, p in self.procs.items():
            if p.returncode in (0, None) or id(p) in seen:
                continue
            seen.add(id(p))
            lines.append(f"{self.process_label(name)} exited with code {p.returncode}: {self.tail(name)}")
        return lines

    def stop(self, names: list[str], timeout: float, *, signalled: bool = False) -> None:
        """SIGINT (unless ``signalled`` already: a second one would cut short a process that is
        stopping), wait up to ``timeout``, then SIGKILL."""
        procs = list({id(self.procs[n]): (n, self.procs[n]) for n in names if n in self.procs}.values())
        for _, p in procs:
            if p.poll() is None and not signalled:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for _, p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(
        self,
        halted: Callable[[float], bool] | None = None,
        grace_s: float = 0.5,
        lifecycle: Any = None,
        settle: Callable[[], None] | None = None,
    ) -> dict[str, int | None]:
        """Runner first to stop and last to exit (module docstring); ``halted(timeout)`` returns
        once the runner said it sent the safe command (or it exited); ``lifecycle``: a
        :class:`~bremen_robot.ros.lifecycle_client.LifecycleClient` of the runner; ``settle()``
        runs once the runner is halted and before any other node stops (the logger catching up
        while every publisher is still there)."""
        # first the scripted reset, so nothing but the runner's safe command reaches the robot;
        # stopped mid-reset it holds the safe command for grace_s (stop_grace_s) before it exits
        self.stop([n for n in ("reset_node",) if n in self.procs], grace_s + 5.0)
        runner = self.procs.get("policy_runner")
        alive = runner is not None and runner.poll() is None
        # deactivate answers once the safe command was held; no answer: SIGINT does it (close())
        answered = (
            alive and lifecycle is not None and lifecycle.change("deactivate", grace_s + 5.0) is not None
        )
        signalled = alive and not answered
        if runner is not None and signalled:
            runner.send_signal(signal.SIGINT)
            if halted is not None:
                halted(grace_s + 5.0)
        if settle is not None:
            settle()
        mates = [n for n, p in self.procs.items() if p is runner]
        self.stop([n for n in ("sim_bridge", "shadow_runner") if n not in mates], 10.0)
        self.stop(["trajectory_logger"], 20.0)
        finalized = False
        if answered and runner is not None and runner.poll() is None:
            lifecycle.change("cleanup", 35.0)  # waits for the deployment record (30 s at most)
            finalized = lifecycle.change("shutdown", 5.0) is True
        # finalized, the runner exits itself: a SIGINT then can land while the process tears down
        # with the default handler back in place and end it with -2 (a CI run saw that)
        self.stop(mates, grace_s + 10.0, signalled=signalled or finalized)
        self.stop(list(self.procs), 5.0)
        return {n: p.returncode for n, p in self.procs.items()}
