"""``bremen demo``: the offline demo. Collect random HalfCheetah data, train, compare.

Prints a table of the data-collecting (random) policy, behavior cloning and BREMEN, each
evaluated in Gymnasium's HalfCheetah-v5 with the deterministic mean action.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="offline demo: random HalfCheetah data -> BC vs BREMEN (minutes on 2 cores)",
        description="Collect one deployment of random data in HalfCheetah-v5, train BREMEN with a "
        "demo-sized preset, and compare BREMEN with behavior cloning and the random policy.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="folder for data, artifacts and summary"
    )
    p.add_argument("--steps", type=int, default=50_000, help="transitions to collect (default 50,000)")
    p.add_argument("--config", default="halfcheetah-demo", help="training preset (default halfcheetah-demo)")
    p.add_argument("--episodes", type=int, default=3, help="evaluation episodes per policy")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from bremen_robot.cli.evaluate_cmd import evaluate_artifact
    from bremen_robot.config.train import load_train_config
    from bremen_robot.data.dataset import Dataset
    from bremen_robot.data.real_rollout import make_env, rollout, task_for_env_spec, uniform_policy
    from bremen_robot.errors import BremenError
    from bremen_robot.progress import Reporter
    from bremen_robot.tasks import get_task
    from bremen_robot.trainer import train

    for option, value in (("--steps", args.steps), ("--episodes", args.episodes)):
        if value < 1:  # checked before the run folder exists: a refused run leaves nothing behind
            raise BremenError(f"{option} must be at least 1 (got {value})")
    t0 = time.perf_counter()
    env_id = "HalfCheetah-v5"
    cfg = load_train_config(args.config).model_copy(update={"seed": args.seed})
    demo_task = task_for_env_spec(env_id)
    # the trainer would refuse the preset only after minutes of collection into a run folder
    if cfg.task is not None and get_task(cfg.task).name != demo_task.name:
        raise BremenError(
            f"--config {args.config} trains task '{cfg.task}', but the demo collects {env_id} data "
            f"(task '{demo_task.name}'); pass a {demo_task.name} preset, e.g. --config halfcheetah-demo "
            "(the default)"
        )
    run_dir = args.out / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    data_path = run_dir / "deployment1.npz"
    print(f"[1/3] collecting {args.steps} random transitions in {env_id}")
    env, task = make_env(env_id)
    data = rollout(
        env,
        task,
        uniform_policy(task, np.random.default_rng(args.seed)),
        steps=args.steps,
        seed=args.seed,
        policy_sha256="random",
    )
    env.close()
    data.save(data_path)
    print(f"[2/3] training BREMEN ({cfg.name}: {cfg.expected_time})")
    train(cfg, Dataset.load(data_path), run_dir / "bremen", reporter=Reporter())
    print(f"[3/3] evaluating over {args.episodes} episodes each")
    behavior = data.episode_returns()
    rows = [("random (collected data)", float(np.mean(behavior)), float(np.std(behavior)))]
    for name, path in (("behavior cloning", run_dir / "bremen" / "bc"), ("BREMEN", run_dir / "bremen")):
        r = evaluate_artifact(path, env_id, args.episodes, seed=10_000)
        rows.append((name, float(np.mean(r)), float(np.std(r))))
    print(f"\n{'policy':26s} {'return (mean ± std)':>22s}")
    for name, mean, std in rows:
        print(f"{name:26s} {mean:12.1f} ± {std:7.1f}")
    summary = {
        "env": env_id,
        "steps": args.steps,
        "config": cfg.name,
        "rows": [{"policy": n, "return_mean": m, "return_std": s} for n, m, s in rows],
        "seconds": time.perf_counter() - t0,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nartifacts and report in {run_dir} ({summary['seconds']:.0f} s)")
    return 0
