"""Real rollouts: stepping an actual environment (simulator or the toy env) with a policy.

This is *collection*: the data that reaches the trainer. Imagined rollouts in learned models
live in :mod:`bremen_robot.imagination` and never go through here.

Environment specs accepted by :func:`make_env`:
    ``point``                      the toy task's numpy env (no simulator needed)
    ``HalfCheetah-v5`` etc.        a Gymnasium id of a task in :mod:`bremen_robot.tasks`
    ``sim:<robot>[/<backend>]``    an env from this project's ``sim`` package (e.g. ``sim:panda/mujoco``)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bremen_robot.data.dataset import Dataset
from bremen_robot.errors import BremenError
from bremen_robot.tasks import Task, get_task, task_names

ActFn = Callable[[np.ndarray], np.ndarray]


def task_for_env_spec(spec: str) -> Task:
    """The task whose observation layout an env spec produces."""
    if spec.startswith("sim:"):
        sim = _import_sim(spec)
        return get_task(sim.get_robot(spec[4:].split("/")[0]).default_task)
    for name in task_names():
        task = get_task(name)
        if spec in (task.name, task.gym_id):
            return task
    raise BremenError(
        f"unknown env '{spec}'; use 'point', a Gymnasium id ({', '.join(t for t in _gym_ids())}) "
        "or 'sim:<robot>/<backend>'"
    )


def check_env_spec(spec: str, task_name: str) -> None:
    """Refuse, before any work, an env spec that names no env, an unknown simulator backend, or an
    env of another task than ``task_name`` (its returns would not be the robot's task)."""
    if spec.startswith("sim:"):
        backend = spec[4:].partition("/")[2] or "mujoco"
        backends = _import_sim(spec).BACKENDS
        if backend not in backends:
            raise BremenError(
                f"unknown simulator backend '{backend}' in '{spec}'; use one of {', '.join(backends)}"
            )
    task = task_for_env_spec(spec)
    if task.name != task_name:
        raise BremenError(f"'{spec}' is an env of task '{task.name}', not of the robot's task '{task_name}'")


def _import_sim(spec: str) -> Any:
    try:
        import sim
    except ImportError as exc:
        raise BremenError(f"'{spec}' needs the sim extra: pip install 'bremen-robot[sim]' ({exc})") from None
    return sim


def _gym_ids() -> list[str]:
    return [t.gym_id for t in map(get_task, task_names()) if t.gym_id]


def make_env(spec: str) -> tuple[Any, Task]:
    """Create the real environment named by ``spec`` and its task (see the module docstring)."""
    task = task_for_env_spec(spec)
    if task.name == "point" and not spec.startswith("sim:"):
        from bremen_robot.tasks.toy import PointEnv

        return PointEnv(), task
    if spec.startswith("sim:"):
        sim = _import_sim(spec)
        robot, _, backend = spec[4:].partition("/")
        return sim.make(robot, backend=backend or "mujoco"), task
    try:
        import gymnasium
    except ImportError:
        raise BremenError(f"'{spec}' needs gymnasium: pip install 'bremen-robot[sim]'") from None
    if task.gym_id is None:
        raise BremenError(f"task '{task.name}' has no Gymnasium env; use 'sim:<robot>/<backend>'")
    return _gym_env(gymnasium, task), task


def _gym_env(gymnasium: Any, task: Task) -> Any:
    """``gymnasium.make`` of the task's env; a stock model MuJoCo warns about (settotalmass) is
    loaded from a copy without the attribute and stepped with the exact same model."""
    from sim.mjcf_compat import gym_xml_file, use_exact_model
    from sim.robots import ROBOTS

    robot = ROBOTS.get(task.name)
    asset = robot.asset_path() if robot is not None and robot.kind == "mjcf" else None
    fixed = gym_xml_file(asset) if asset is not None else None
    if asset is None or fixed is None:
        return gymnasium.make(task.gym_id, **task.gym_kwargs)
    env = gymnasium.make(task.gym_id, **task.gym_kwargs, xml_file=str(fixed))
    use_exact_model(env.unwrapped, asset)
    return env


def uniform_policy(task: Task, rng: np.random.Generator) -> ActFn:
    """The first deployment's policy: uniform in the action box."""
    low, high = np.asarray(task.action_low), np.asarray(task.action_high)
    return lambda obs: rng.uniform(low, high)


def noisy_policy(act: ActFn, task: Task, sigma: float, rng: np.random.Generator) -> ActFn:
    """Collection policy of later deployments: mean + N(0, sigma^2), clipped to the box."""
    low, high = np.asarray(task.action_low), np.asarray(task.action_high)
    return lambda obs: np.clip(act(obs) + sigma * rng.standard_normal(len(low)), low, high)


def rollout(
    env: Any,
    task: Task,
    act: ActFn,
    *,
    episodes: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    deployment_id: int = 1,
    policy_sha256: str = "unknown",
    max_episode_steps: int | None = None,
) -> Dataset:
    """Run ``act`` in ``env`` for ``episodes`` whole episodes or ``steps`` transitions.

    With ``steps``, the last episode is cut where the budget ends and marked as a timeout.
    Episodes also end at ``max_episode_steps`` (default: the task's time limit).
    """
    if (episodes is None) == (steps is None):
        raise BremenError("give exactly one of episodes or steps")
    limit = max_episode_steps or task.max_episode_steps
    low, high = np.asarray(task.action_low), np.asarray(task.action_high)
    rows: dict[str, list[Any]] = {
        k: [] for k in ("obs", "actions", "rewards", "next_obs", "terminals", "timeouts", "episode_ids")
    }
    ep = 0
    total = 0
    while (episodes is not None and ep < episodes) or (steps is not None and total < steps):
        obs, _ = env.reset(seed=seed + ep)
        for t in range(limit):
            action = np.clip(np.asarray(act(np.asarray(obs, dtype=np.float32)), dtype=np.float64), low, high)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            total += 1
            out_of_budget = steps is not None and total >= steps
            timeout = bool(truncated) or t == limit - 1 or out_of_budget
            for key, val in (
                ("obs", obs),
                ("actions", action),
                ("rewards", reward),
                ("next_obs", next_obs),
                ("terminals", bool(terminated)),
                ("timeouts", timeout and not terminated),
                ("episode_ids", ep),
            ):
                rows[key].append(val)
            obs = next_obs
            if terminated or timeout:
                break
        ep += 1
    n = len(rows["obs"])
    cols = {k: np.asarray(v) for k, v in rows.items()}
    cols["deployment_ids"] = np.full(n, deployment_id)
    cols["policy_sha256"] = np.full(n, policy_sha256)
    return Dataset.from_columns(task.name, cols, meta={"source": "real_rollout", "seed": seed})
