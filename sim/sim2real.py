"""Sim-to-real testing: how much of a frozen policy's performance survives a change of physics.

One policy is evaluated, N episodes each, on the engine it was trained on, on the other engine,
and on the training engine under domain randomization. The transfer ratio is the other
engine's mean return divided by the training engine's. ``bremen sim2real`` wraps this; the
policy and the optional safety filter are plain callables, so this module needs neither torch
nor the safety package.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.env import BremenSimEnv, make
from sim.randomization import Randomization

Policy = Callable[[np.ndarray], np.ndarray]
# (env, action, time) -> (command to send, interventions this step); one per episode
ActionFilter = Callable[[BremenSimEnv, np.ndarray, float], tuple[np.ndarray, int]]


@dataclass
class ConditionResult:
    """Episodes of one condition (engine, with or without randomization)."""

    label: str
    backend: str
    randomized: bool
    returns: list[float]
    lengths: list[int]
    successes: list[bool] | None = None
    interventions: list[int] | None = None

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    @property
    def success_rate(self) -> float | None:
        return None if self.successes is None else float(np.mean(self.successes))

    @property
    def interventions_per_episode(self) -> float | None:
        return None if self.interventions is None else float(np.mean(self.interventions))

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "backend": self.backend,
            "randomized": self.randomized,
            "episodes": len(self.returns),
            "return_mean": self.mean,
            "return_std": self.std,
            "success_rate": self.success_rate,
            "interventions_per_episode": self.interventions_per_episode,
            "mean_length": float(np.mean(self.lengths)),
        }


def evaluate(
    policy: Policy,
    robot: str,
    task: str | None,
    backend: str,
    episodes: int,
    seed: int = 0,
    randomization: Randomization | None = None,
    make_filter: Callable[[], ActionFilter] | None = None,
    label: str | None = None,
) -> ConditionResult:
    """Run ``episodes`` episodes (seeds ``seed, seed+1, ...``) with the deterministic policy.

    Success (where the task defines it) is judged on the episode's last step.
    """
    env = make(robot, task, backend=backend, randomization=randomization)
    try:
        has_success = env.task.name in _success_tasks()
        returns, lengths, successes, interventions = [], [], [], []
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            filt = make_filter() if make_filter is not None else None
            total, n_int, t, success = 0.0, 0, 0, False
            while True:
                action = np.asarray(policy(obs), dtype=np.float64)
                if filt is not None:
                    action, k = filt(env, action, t * env.task.dt)
                    n_int += k
                if not np.all(np.isfinite(action)):  # a broken policy scores NaN on every engine
                    total, t = float("nan"), t + 1
                    break
                obs, reward, terminated, truncated, info = env.step(action)
                # a blown-up step scores NaN (MuJoCo resets the state itself, so its reward would look
                # sane): the condition's mean is NaN, which the twin check takes as a veto
                total += float("nan") if info.get("physics_diverged") else reward
                t += 1
                success = bool(info.get("is_success", False))
                if terminated or truncated or not math.isfinite(total):
                    break
            returns.append(total)
            lengths.append(t)
            successes.append(success)
            interventions.append(n_int)
        return ConditionResult(
            label=label or backend,
            backend=backend,
            randomized=randomization is not None and not randomization.is_nominal,
            returns=returns,
            lengths=lengths,
            successes=successes if has_success else None,
            interventions=interventions if make_filter is not None else None,
        )
    finally:
        env.close()


def _success_tasks() -> set[str]:
    from sim.env import SUCCESS_FNS

    return set(SUCCESS_FNS)


@dataclass
class Sim2RealReport:
    robot: str
    task: str
    policy: str
    train_backend: str
    other_backend: str
    episodes: int
    seed: int
    conditions: list[ConditionResult]
    randomization: dict[str, Any]
    shield: str | None = None
    notes: list[str] = field(default_factory=list)

    def _by(self, randomized: bool, backend: str) -> ConditionResult:
        return next(c for c in self.conditions if c.randomized == randomized and c.backend == backend)

    @property
    def transfer_ratio(self) -> float:
        """Other engine's mean return / training engine's (nan when the latter is 0)."""
        train = self._by(False, self.train_backend).mean
        other = self._by(False, self.other_backend).mean
        return other / train if train != 0 else float("nan")

    @property
    def randomized_ratio(self) -> float:
        train = self._by(False, self.train_backend).mean
        # the randomized run is the last one on the training engine: looked up by place, since a
        # nominal randomization file (randomization-none.yaml) leaves its ``randomized`` false
        rand = [c for c in self.conditions if c.backend == self.train_backend][-1].mean
        return rand / train if train != 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["conditions"] = [c.summary() | {"returns": c.returns} for c in self.conditions]
        d["transfer_ratio"] = self.transfer_ratio
        d["randomized_ratio"] = self.randomized_ratio
        return d

    def table(self) -> str:
        cols = ["condition", "return (mean ± std)"]
        if self.conditions[0].successes is not None:
            cols.append("success")
        if self.conditions[0].interventions is not None:
            cols.append("interventions/ep")
        rows = []
        for c in self.conditions:
            row = [c.label, f"{c.mean:.1f} ± {c.std:.1f}"]
            if c.success_rate is not None:
                row.append(f"{100 * c.success_rate:.0f}%")
            if c.interventions_per_episode is not None:
                row.append(f"{c.interventions_per_episode:.1f}")
            rows.append(row)
        widths = [max(len(r[i]) for r in [cols, *rows]) for i in range(len(cols))]
        line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True))  # noqa: E731
        out = [
            f"sim2real: {self.robot}/{self.task}, policy {self.policy}, "
            f"{self.episodes} episodes per condition",
            line(cols),
            line(["-" * w for w in widths]),
            *[line(r) for r in rows],
            f"transfer ratio ({self.other_backend} / {self.train_backend}): {self.transfer_ratio:.3f}",
            f"randomized ratio ({self.train_backend}+randomization / {self.train_backend}): "
            f"{self.randomized_ratio:.3f}",
        ]
        return "\n".join(out + [f"note: {n}" for n in self.notes])


def run_sim2real(
    policy: Policy,
    robot: str,
    task: str | None,
    episodes: int,
    train_backend: str,
    randomization: Randomization,
    seed: int = 0,
    make_filter: Callable[[], ActionFilter] | None = None,
    policy_name: str = "policy",
    shield: str | None = None,
) -> Sim2RealReport:
    """Evaluate on the training engine, the other engine, and the training engine randomized."""
    from sim.backends import BACKENDS

    other = next(b for b in BACKENDS if b != train_backend)
    conds = [
        evaluate(
            policy,
            robot,
            task,
            train_backend,
            episodes,
            seed,
            None,
            make_filter,
            f"{train_backend} (training)",
        ),
        evaluate(policy, robot, task, other, episodes, seed, None, make_filter, other),
        evaluate(
            policy,
            robot,
            task,
            train_backend,
            episodes,
            seed,
            randomization,
            make_filter,
            f"{train_backend} + randomization",
        ),
    ]
    task_name = make_task_name(robot, task)
    report = Sim2RealReport(
        robot=robot,
        task=task_name,
        policy=policy_name,
        train_backend=train_backend,
        other_backend=other,
        episodes=episodes,
        seed=seed,
        conditions=conds,
        randomization=randomization.model_dump(mode="json"),
        shield=shield,
    )
    if conds[0].mean <= 0:
        report.notes.append(
            "the training-engine mean return is not positive, so the ratios do not read as 'fraction kept'; "
            "compare the returns (and success rates) directly"
        )
    return report


def make_task_name(robot: str, task: str | None) -> str:
    from bremen_robot.tasks import get_task
    from sim.robots import get_robot

    return get_task(task or get_robot(robot).default_task).name


def plot_report(report: Sim2RealReport, path: Path) -> Path:
    """Bar chart of mean return ± std per condition (and success rate, if defined) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = report.conditions
    has_success = conds[0].successes is not None
    fig, axes = plt.subplots(
        1, 2 if has_success else 1, figsize=(9 if has_success else 5.5, 4), squeeze=False
    )
    ax = axes[0, 0]
    x = np.arange(len(conds))
    colors = ["#4c72b0", "#dd8452", "#55a868"]
    ax.bar(x, [c.mean for c in conds], yerr=[c.std for c in conds], capsize=6, color=colors[: len(conds)])
    ax.set_xticks(x, [c.label for c in conds], rotation=12)
    ax.set_ylabel(f"episode return ({report.episodes} episodes)")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_title(f"{report.robot}/{report.task}: transfer ratio {report.transfer_ratio:.2f}")
    if has_success:
        ax2 = axes[0, 1]
        ax2.bar(x, [100 * (c.success_rate or 0.0) for c in conds], color=colors[: len(conds)])
        ax2.set_xticks(x, [c.label for c in conds], rotation=12)
        ax2.set_ylim(0, 100)
        ax2.set_ylabel("success rate (%)")
        ax2.set_title("success at the last step")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: Sim2RealReport, out_dir: Path) -> tuple[Path, Path]:
    """``sim2real.json`` (the table and every return) and ``sim2real.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "sim2real.json"
    json_path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=True))
    return json_path, plot_report(report, out_dir / "sim2real.png")
