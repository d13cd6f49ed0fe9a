"""A collection's start-up imports no torch where it loads no policy: the registry's checks,
``bremen collect``'s check before the graph starts, the graph's modules, the runner with the
random policy, a campaign's collection and a fleet node, which also receives a policy without
loading it (its runner does; torch costs seconds of each start-up: docs/performance.md). Run in a
fresh interpreter, since this one has torch loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bremen_robot.registry import PolicyRecord
from bremen_robot.robot_config import RobotConfig

PROBE = """
import json, sys
from pathlib import Path

import bremen_robot.campaign.runner, bremen_robot.cluster.node, bremen_robot.ros.collect
import bremen_robot.ros.policy_runner, bremen_robot.ros.sim_bridge, bremen_robot.ros.trajectory_logger
from bremen_robot.cluster.fleet import policy_bundle
from bremen_robot.cluster.node import receive_policy
from bremen_robot.registry import Registry, check_for_deployment, verify_for_deployment
from bremen_robot.robot_config import RobotConfig
from bremen_robot.ros.deployment import load_policy
from bremen_robot.tasks import get_task

robot = RobotConfig.model_validate(json.loads(sys.argv[1]))
ws, policy, node_ws = sys.argv[2], sys.argv[3], Path(sys.argv[4])
seen = {}
with Registry.open(Path(ws), readonly=True) as reg:
    pid, _ = check_for_deployment(policy, robot, reg)
    seen["after_check"] = "torch" in sys.modules
    received = receive_policy(node_ws, policy_bundle(reg, policy), robot)  # a robot node's registry
    seen["after_receive"] = "torch" in sys.modules
    random = load_policy({"policy": "random", "workspace": ws}, robot, get_task(robot.task))
    seen["after_random_policy"] = "torch" in sys.modules
    loaded = verify_for_deployment(policy, robot, reg)  # loading the TorchScript does need torch
    seen["after_load"] = "torch" in sys.modules
with Registry.open(node_ws, readonly=True) as node_reg:
    state = node_reg.get(received).state
print(json.dumps({**seen, "pid": pid, "random": random["sha256"], "loaded": loaded.sha256,
                  "received": received, "node_state": state}))
"""


def test_checks_and_the_random_policy_import_no_torch_and_loading_does(
    approved: PolicyRecord,
    robot: RobotConfig,
    workspace: Path,
    tmp_path: Path,
) -> None:
    node_ws = tmp_path / "node"
    res = subprocess.run(
        [sys.executable, "-c", PROBE, robot.model_dump_json(), str(workspace), approved.id, str(node_ws)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    assert seen == {
        "after_check": False,
        "after_receive": False,
        "after_random_policy": False,
        "after_load": True,
        "pid": approved.id,
        "random": "random",
        "loaded": approved.sha256,
        "received": approved.sha256,
        "node_state": "approved",
    }
