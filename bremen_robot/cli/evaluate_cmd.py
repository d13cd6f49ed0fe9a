"""``bremen evaluate``: run a frozen policy's mean action in a real environment."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="run a frozen policy (deterministic mean) and print mean ± std return",
        description="Evaluate an artifact in 'point', a Gymnasium id (HalfCheetah-v5, ...) "
        "or 'sim:<robot>/<backend>'.",
    )
    p.add_argument("artifact", type=Path, help="artifact directory (or its policy.pt / manifest.json)")
    p.add_argument(
        "--env", required=True, help="environment spec, e.g. HalfCheetah-v5 or sim:halfcheetah/pybullet"
    )
    p.add_argument("--episodes", type=int, default=5, help="number of episodes (default 5)")
    p.add_argument("--max-steps", type=int, default=None, help="cut episodes at this many steps")
    p.add_argument("--seed", type=int, default=10_000, help="seed of the first episode")
    p.add_argument("--json", type=Path, default=None, help="also write the returns as JSON")
    p.set_defaults(func=run)


def evaluate_artifact(
    artifact: Path, env_spec: str, episodes: int, seed: int, max_steps: int | None = None
) -> list[float]:
    """Episode returns of the artifact's mean action in ``env_spec``."""
    from bremen_robot.data.real_rollout import make_env, rollout, task_for_env_spec
    from bremen_robot.errors import BremenError
    from bremen_robot.policy.artifact import load_artifact

    if episodes < 1:
        raise BremenError("--episodes must be at least 1")
    if max_steps is not None and max_steps < 1:  # 0 ran whole episodes, a negative count crashed
        raise BremenError(f"--max-steps must be at least 1 (got {max_steps})")
    if seed < 0:  # the environments' generators take no negative seed
        raise BremenError(f"--seed must be 0 or more (got {seed})")
    task_for_env_spec(env_spec)  # reject a bad spec before loading anything
    policy = load_artifact(artifact)
    env, task = make_env(env_spec)
    task.check_obs_dim(policy.obs_dim, f"policy '{artifact}'", "pass the --env the policy was trained for")
    data = rollout(env, task, policy.act, episodes=episodes, seed=seed, max_episode_steps=max_steps)
    env.close()
    return [float(r) for r in data.episode_returns()]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from bremen_robot.cli.common import check_report_file

    if args.json:  # before the episodes run: a wrong --json must not cost them, nor replace a file
        check_report_file(args.json, "--json")
    returns = evaluate_artifact(args.artifact, args.env, args.episodes, args.seed, args.max_steps)
    print(f"{args.env}: return {np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes")
    if args.json:
        args.json.write_text(json.dumps({"env": args.env, "returns": returns}))
    return 0
