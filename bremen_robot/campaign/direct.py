"""A collector without the ROS 2 graph: real rollouts stepped directly in the simulator.

For benchmarks and reproductions on machines where the graph's overhead is not what is being
measured. It writes the deployment's dataset (``data.npz`` beside ``out_bag``) instead of a
bag, applies no safety shield (its summary says ``shielded: false`` and has no intervention
count), and still refuses policies the registry would not deploy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bremen_robot.campaign.collecting import CollectRequest
from bremen_robot.data.real_rollout import make_env, noisy_policy, rollout, uniform_policy
from bremen_robot.robot_config import load_robot_config


def collect_direct(req: CollectRequest) -> dict[str, Any]:
    """Collect ``req.steps`` transitions in ``sim:<sim_model>/mujoco``; returns the summary."""
    from bremen_robot.registry import Registry, verify_for_deployment

    robot = load_robot_config(req.robot_config)
    env, task = make_env(f"sim:{robot.sim_model or robot.name}/mujoco")
    rng = np.random.default_rng(req.seed)
    if req.policy_id == "random":
        act, sha = uniform_policy(task, rng), "random"
    else:
        with Registry.open(req.workspace) as reg:
            frozen = verify_for_deployment(req.policy_id, robot, reg)
        act, sha = noisy_policy(frozen.act, task, req.sigma, rng), frozen.sha256
    data = rollout(
        env, task, act, steps=req.steps, seed=req.seed, deployment_id=req.deployment, policy_sha256=sha
    )
    env.close()
    req.out_bag.mkdir(parents=True, exist_ok=True)  # marks the stage; holds no bag
    data.save(req.out_bag.parent / "data.npz")
    returns = data.episode_returns()
    return {
        "steps": len(data),
        "episodes": len(returns),
        "interventions": None,  # no shield ran: not "zero interventions"
        "shielded": False,
        "return_mean": float(np.mean(returns)),
        "collector": "direct",
    }
