"""``bremen sim2real``: the transfer check an operator runs before approving a policy for hardware.

The frozen policy runs (deterministic mean) N episodes on the engine it was trained on, N on the
other engine, and N on the training engine under domain randomization; the command prints mean ±
std return, success rate (where the task defines success), safety interventions (with
``--shield``) and the transfer ratio, and writes ``sim2real.json`` and ``sim2real.png``.
``sim`` (MuJoCo, PyBullet) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sim2real",
        help="evaluate a frozen policy on both physics engines and under randomization; transfer ratio",
        description=(
            "Evaluate one frozen policy on its training engine, on the other engine and on the training "
            "engine with domain randomization (N episodes each). Prints mean ± std return, success rate, "
            "safety interventions (with --shield) and the transfer ratio (other ÷ training engine); writes "
            "sim2real.json and a bar chart sim2real.png into --out."
        ),
    )
    p.add_argument("artifact", type=Path, help="policy artifact directory (or its policy.pt / manifest.json)")
    p.add_argument(
        "--robot",
        default=None,
        help="sim robot: ant, halfcheetah, hopper, panda, walker2d (default: the manifest's robot)",
    )
    p.add_argument("--task", default=None, help="task (default: the manifest's task)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per condition (default 10)")
    p.add_argument(
        "--train-backend",
        default="mujoco",
        help="engine the policy was trained on: mujoco | pybullet (default mujoco)",
    )
    p.add_argument(
        "--randomization",
        type=Path,
        default=None,
        help="randomization YAML (default: configs/sim/randomization-default.yaml's values)",
    )
    p.add_argument(
        "--shield", type=Path, default=None, help="safety limits YAML (configs/safety/...): filter actions"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="output folder (default ./sim2real/<robot>-<sha12>)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    p.set_defaults(func=run)


def _shield_filter_factory(path: Path, joint_names: tuple[str, ...], dt: float) -> Any:
    """A factory of per-episode action filters backed by the ``safety`` package's shield."""
    from bremen_robot.errors import BremenError

    try:
        import safety
    except ImportError:
        raise BremenError(
            "--shield needs the 'safety' package, which is not available in this install"
        ) from None
    try:
        limits = safety.load_limits(path, joint_names=list(joint_names))
    except ValueError as exc:  # safety.SafetyConfigError: one line naming the field and the fix
        raise BremenError(str(exc)) from None
    from bremen_robot.limits_fit import ood_problem

    if (why := ood_problem(limits, path)) is not None:
        raise BremenError(why)
    period = float(limits.timing.control_period)
    if abs(period - dt) > 1e-9:
        raise BremenError(
            f"{path}: timing.control_period is {period:g} s but the task steps every {dt:g} s; "
            "use a limits file written for this control rate"
        )

    def factory() -> Any:
        import numpy as np

        shield = safety.SafetyShield(limits)

        def filt(env: Any, action: np.ndarray, now: float) -> tuple[np.ndarray, int]:
            b = env.backend
            q = b.joint_positions()
            state = safety.JointState(tuple(b.joint_names), q, b.joint_velocities(), now)
            pose = b.base_pose()  # envelope extras: what a robot's odometry would give
            extras = {"body_height": float(pose[0][2])} if pose is not None else None
            if extras is None and "rootz" in b.joint_names:
                extras = {"body_height": float(q[b.joint_names.index("rootz")])}
            out = shield.filter(state, action, now, extras=extras)
            return np.asarray(out.command, dtype=np.float64), len(out.interventions)

        return filt

    return factory


def run(args: argparse.Namespace) -> int:
    from bremen_robot.errors import BremenError
    from bremen_robot.policy.artifact import load_artifact
    from bremen_robot.tasks import get_task

    try:
        import sim
        from sim.randomization import DEFAULT_RANDOMIZATION, load_randomization
        from sim.sim2real import run_sim2real, write_report
    except ImportError as exc:
        raise BremenError(f"sim2real needs the simulators: pip install 'bremen-robot[sim]' ({exc})") from None

    if args.episodes < 1:
        raise BremenError(f"--episodes must be at least 1 (got {args.episodes})")
    if args.train_backend not in sim.backend_names():
        raise BremenError(
            f"unknown backend '{args.train_backend}'; valid backends: {', '.join(sim.backend_names())}"
        )
    randomization = (
        load_randomization(args.randomization) if args.randomization is not None else DEFAULT_RANDOMIZATION
    )
    policy = load_artifact(args.artifact)
    manifest = policy.manifest
    robot = sim.get_robot(args.robot or manifest.robot).name
    task = get_task(args.task or manifest.task)
    valid = sim.tasks_for_robot(robot)
    if task.name not in valid:
        raise BremenError(f"task '{task.name}' does not fit robot '{robot}'; valid tasks: {', '.join(valid)}")
    if list(manifest.observation_names) != list(task.obs_names):
        raise BremenError(
            f"policy '{args.artifact}' observes {len(manifest.observation_names)} entries "
            f"({', '.join(manifest.observation_names[:3])}, ...) but task '{task.name}' has "
            f"{task.obs_dim} ({', '.join(task.obs_names[:3])}, ...); pick the task it was trained for"
        )
    if list(manifest.action_names) != list(task.action_names):
        raise BremenError(
            f"policy '{args.artifact}' acts on {manifest.action_names} but task '{task.name}' on "
            f"{list(task.action_names)}; pick the task it was trained for"
        )
    make_filter = None
    if args.shield is not None:
        make_filter = _shield_filter_factory(args.shield, task.action_names, task.dt)
    report = run_sim2real(
        policy=lambda obs: policy.act(obs.astype("float32")),
        robot=robot,
        task=task.name,
        episodes=args.episodes,
        train_backend=args.train_backend,
        randomization=randomization,
        seed=args.seed,
        make_filter=make_filter,
        policy_name=policy.sha256[:12],
        shield=str(args.shield) if args.shield is not None else None,
    )
    out = args.out or Path("sim2real") / f"{robot}-{policy.sha256[:12]}"
    json_path, png_path = write_report(report, out)
    print(report.table())
    print(f"wrote {json_path} and {png_path}")
    return 0
