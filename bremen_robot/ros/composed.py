"""Several nodes of the collect graph in one process, on one executor.

``python -m bremen_robot.ros.composed sim_bridge policy_runner --ros-args --params-file F ...``
(console script ``composed`` of the ``bremen`` package). The parameters file has one section
per node name. Used for lockstep simulation, where sim_bridge and policy_runner hand every
step to each other: in one process that hand-off skips the inter-process wake-up, which is
most of a step's cost on a small machine (docs/perf-ros.md). The nodes, names, topics,
parameters and QoS are those of the separate processes; other nodes still see them over DDS.
A real robot never runs this way: policy_runner is its own process there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from bremen_robot.errors import ConfigError
from bremen_robot.ros import _node


def _builder(name: str) -> Callable[[Any], Any]:
    if name == "sim_bridge":
        from bremen_robot.ros.sim_bridge import SimBridge

        return SimBridge
    if name == "policy_runner":
        from bremen_robot.ros.policy_runner import PolicyRunner

        return PolicyRunner
    if name == "trajectory_logger":
        from bremen_robot.ros.trajectory_logger import TrajectoryLogger

        return TrajectoryLogger
    raise ConfigError(f"composed: unknown node '{name}'; use sim_bridge, policy_runner or trajectory_logger")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv if argv is None else argv)
    cut = args.index("--ros-args") if "--ros-args" in args else len(args)
    names = args[1:cut]
    if not names:
        print("composed: name the nodes to run, e.g. 'sim_bridge policy_runner'", file=sys.stderr)
        return 2
    try:
        builds = [_builder(n) for n in names]
    except ConfigError as exc:
        print(f"composed: error: {exc}", file=sys.stderr)
        return 2
    return _node.run_nodes(builds, [args[0], *args[cut:]], "+".join(names))


if __name__ == "__main__":
    sys.exit(main())
