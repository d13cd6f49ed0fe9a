"""Shadow mode for ``policy_runner`` (``shadow: true``; docs/ros.md "Shadow mode").

A shadow runner is a second ``policy_runner`` (node ``shadow_runner``) on the live robot state.
It computes what the candidate would do and what its own shield would send, and publishes that
only on ``bremen/shadow/*`` (:class:`bremen_robot.ros.runner_io.RunnerPublishers` with
``shadow``): never ``bremen/command``, never an episode event, no services (start/stop and the
e-stop reset stay the acting runner's). Its episodes follow the acting runner's
``bremen/episode`` events (:class:`EpisodeFollower`); it counts no deployment
(:class:`NoDeployment`) and loads the candidate through the registry without an approval
(:func:`load_shadow_policy`: the stored artifact, digest-verified).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.ros import topics as T

SHADOW_NODE = "shadow_runner"


class NoDeployment:
    """The shadow runner's stand-in for ``DeploymentCounter``: a shadow run is not a deployment."""

    triggered = True  # nothing to trigger, ever
    error: str | None = None
    recorded: int | None = None

    def trigger(self) -> None:
        pass

    def wait(self, timeout: float = 30.0) -> None:
        pass


def load_shadow_policy(params: dict[str, Any], robot: Any, task: Any) -> dict[str, Any]:
    """The candidate, as ``deployment.load_policy`` returns a policy (deployment -1: none)."""
    from bremen_robot.errors import ConfigError
    from bremen_robot.registry import Registry, default_workspace
    from bremen_robot.registry.shadow_runs import verify_for_shadow

    ws = Path(params["workspace"]) if params["workspace"] else default_workspace()
    reg = Registry.open(ws, readonly=True)  # reading only: a shadow run writes nothing here
    try:
        fp = verify_for_shadow(params["policy"], robot, reg)
    finally:
        reg.close()
    m = fp.manifest
    if m.task != task.name:
        raise ConfigError(
            f"shadow policy was trained for task '{m.task}' but the graph runs '{task.name}'; "
            "pick a matching candidate"
        )
    import torch

    torch.set_num_threads(1)
    for _ in range(3):  # warm TorchScript up here, not on the first control ticks
        fp.act(np.zeros(len(m.observation_names), dtype=np.float32))
    return {
        "act": fp.act,
        "sha256": fp.sha256,
        "deployment": -1,
        "joint_order": list(m.joint_order),
        "low": list(m.action_low),
        "high": list(m.action_high),
        "rate": m.control_rate_hz,
    }


class EpisodeFollower:
    """Mirrors the acting runner's episodes onto the shadow runner's ``RunnerCore``.

    The acting runner's ``start`` opens an episode with the same id (and a fresh shield: the
    shadow's own e-stop latch, e.g. from leaving the envelope, lasts one episode, since no one
    can reset it); its ``stop`` ends it. ``sim_bridge``'s ``reset`` and ``end``, and
    ``reset_node``'s ``reset`` (scripted resets on hardware), go to the core as in the acting
    runner. Events of two publishers arrive in no fixed order, so a ``reset`` that
    overtakes its ``start`` is kept until the start comes.
    """

    def __init__(self, core: Any, shield: Any) -> None:
        self.core = core
        self.shield = shield
        self._resets: dict[Any, dict[str, Any]] = {}

    def handle(self, data: str, now_ns: int) -> tuple[bool, list[dict[str, Any]]]:
        """One ``bremen/episode`` message: (step the buffered state now?, events to publish: none)."""
        return self._handle(data, now_ns), []

    def _handle(self, data: str, now_ns: int) -> bool:
        core = self.core
        evt = T.episode_event(data, "policy_runner")
        if evt is not None:
            kind, eid = evt.get("event"), evt.get("id")
            if kind == "start" and isinstance(eid, int):
                if core.episode is not None:
                    core.end_episode("acting_restarted", now_ns, complete=False)
                self.shield.reset()
                core.next_id = eid
                core.start_episode(now_ns)
                reset = self._resets.pop(eid, None)
                if reset is not None:
                    return bool(core.on_sim_event(reset, now_ns)[0])
            elif kind == "stop" and core.episode is not None and core.episode.id == eid:
                core.end_episode(str(evt.get("reason", "stopped")), now_ns)
            return False
        # the reset that starts the episode's motion: sim_bridge's, or reset_node's on a robot
        # with scripted resets (without it the shadow episode never ran: 0 paired steps)
        evt = T.episode_event(data, "sim_bridge") or T.episode_event(data, "reset_node")
        if evt is None:
            return False
        ep = core.episode
        if evt.get("event") == "reset" and (ep is None or ep.id != evt.get("id")):
            if len(self._resets) > 16:  # only the next start can use one: keep few
                self._resets.clear()
            self._resets[evt.get("id")] = evt
            return False
        return bool(core.on_sim_event(evt, now_ns)[0])
