"""Which policy ``policy_runner`` runs, and when its deployment is counted.

The policy comes only through the registry (``verify_for_deployment``: registered, approved,
signed by an operator the robot config trusts) or is ``random`` (uniform actions, the first
deployment). Loading does not count a deployment: a deployment is a policy that collected
data, so :class:`DeploymentCounter` records it (``mark_deployed`` /
``record_random_deployment``) once the runner has logged its first transition. A runner
stopped before that (Ctrl-C during start-up, a refused reset, a crash) leaves the count alone.
The number the runner's episode events carry is the one that record will get; it is checked
when the record is written (``mark_deployed(..., deployment=N)``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.errors import ConfigError
from bremen_robot.ros.graph import RANDOM_POLICY


def _open_registry(workspace: str) -> Any:
    from bremen_robot.registry import Registry, default_workspace

    return Registry.open(Path(workspace) if workspace else default_workspace())


def expected_number(reg: Any, sha256: str) -> int:
    """The deployment number ``sha256`` has, or gets at its first transition (nothing written)."""
    from bremen_robot.registry import RANDOM_POLICY_ID, RegistryError

    try:
        numbers = reg.get(sha256).deployments
    except RegistryError:  # the random pseudo-policy before its first deployment
        numbers = []
    if numbers:
        return int(numbers[0])
    count = int(reg.deployment_count())
    if sha256 == RANDOM_POLICY_ID and count:
        raise ConfigError(
            f"the random policy can only be the first deployment, but this registry already has {count}; "
            "collect with an approved policy (--policy ID)"
        )
    return count + 1


def load_policy(params: dict[str, Any], robot: Any, task: Any) -> dict[str, Any]:
    """Resolve the policy through the registry; returns act fn, sha, deployment, layout, rate."""
    reg = _open_registry(params["workspace"])
    try:
        if params["policy"] == RANDOM_POLICY:
            return {
                "act": None,
                "sha256": RANDOM_POLICY,
                "deployment": expected_number(reg, RANDOM_POLICY),
                "joint_order": list(robot.joints),
                "low": list(task.action_low),
                "high": list(task.action_high),
                "rate": robot.control_rate_hz,
            }
        from bremen_robot.registry import verify_for_deployment

        fp = verify_for_deployment(params["policy"], robot, reg)
        number = expected_number(reg, fp.sha256)
    finally:
        reg.close()
    m = fp.manifest
    if m.task != task.name:
        raise ConfigError(
            f"policy was trained for task '{m.task}' but the graph runs '{task.name}'; pick a matching policy"
        )
    import torch

    torch.set_num_threads(1)
    # TorchScript's profiling executor re-optimizes the graph on the first calls (tens of ms
    # each): pay that here, not on the first control ticks
    for _ in range(3):
        fp.act(np.zeros(len(m.observation_names), dtype=np.float32))
    return {
        "act": fp.act,
        "sha256": fp.sha256,
        "deployment": number,
        "joint_order": list(m.joint_order),
        "low": list(m.action_low),
        "high": list(m.action_high),
        "rate": m.control_rate_hz,
    }


class DeploymentCounter:
    """Counts the deployment once, off the control thread (a registry write may wait on a lock).

    :meth:`trigger` is cheap and idempotent (call it on every step that logged a transition);
    :meth:`wait` joins the write at shutdown. ``error`` holds the reason a write failed.
    """

    def __init__(self, workspace: str, sha256: str, number: int, robot: str, task: str) -> None:
        self.workspace, self.sha256, self.number = workspace, sha256, int(number)
        self.robot, self.task = robot, task
        self.recorded: int | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def triggered(self) -> bool:
        return self._thread is not None

    def trigger(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._record, name="bremen_deployment", daemon=True)
            self._thread.start()

    def _record(self) -> None:
        try:
            reg = _open_registry(self.workspace)
            try:
                if self.sha256 == RANDOM_POLICY:
                    number = reg.record_random_deployment(
                        "bremen collect --random: first transition logged", robot=self.robot, task=self.task
                    )
                else:
                    number = reg.mark_deployed(
                        self.sha256, self.number, note="policy_runner: first transition logged"
                    )
            finally:
                reg.close()
            if number != self.number:
                raise ConfigError(f"the registry numbered this deployment {number}, not {self.number}")
            self.recorded = int(number)
        except Exception as exc:  # reported by the runner, which then stops safely
            self.error = f"could not record deployment {self.number}: {type(exc).__name__}: {exc}"

    def wait(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self.error is None:
                self.error = (
                    f"could not record deployment {self.number}: the registry write did not finish "
                    f"within {timeout:g} s; check the registry with 'bremen registry check'"
                )
