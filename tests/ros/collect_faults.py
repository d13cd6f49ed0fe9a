"""Fault injection for `collect` runs in tests, through its CollectHooks seam.

A uniquely named module (not conftest) so test files can import it unambiguously.
"""

from __future__ import annotations

from bremen_robot.ros.bag_listing import stored_episodes
from bremen_robot.ros.collect import CollectResult, Graph


class KillAfterSteps:
    """SIGKILL node ``name`` once ``steps`` steps were reported and the bag lists every episode
    the runner finished as stored (so the kill lands mid-episode, after the logger closed the
    earlier episodes' segments); its exit then ends the run instead of failing it."""

    def __init__(self, name: str, steps: int) -> None:
        self.name = name
        self.steps = steps

    def on_poll(self, graph: Graph, result: CollectResult, done_steps: int) -> None:
        if done_steps >= self.steps and stored_episodes(result.bag) >= len(result.episodes):
            victim = graph.procs.get(self.name)
            if victim is not None and victim.poll() is None:
                victim.kill()
                victim.wait()

    def exit_expected(self, graph: Graph, name: str) -> bool:
        return graph.procs[name] is graph.procs.get(self.name)
