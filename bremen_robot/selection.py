"""Candidate selection inside one deployment's training (issue 16; docs/algorithm.md).

A deployment's training yields several policies: BC and TRPO snapshots along the way. Each is
scored offline by a *pessimistic* imagined return: every ensemble member rolls the snapshot's
mean action on its own (``ModelEnv.fixed_member``) from the same real start states, each member's
mean return is one opinion, and the score is a lower bound across members (the minimum, or a low
quantile). A snapshot whose return only one member believes in scores that member's rivals'
figure, so TRPO's model exploitation (the return one model over-promises) does not win.

The twin check (a simulator engine other than the one that collected the data, randomized)
is a veto on top: :func:`twin_survivors`. Its runs happen in the campaign, which knows the robot.

Shapes: S snapshots, E ensemble members, B start states, T imagined steps, D observation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from bremen_robot.config.train import SelectionConfig
from bremen_robot.errors import BremenError
from bremen_robot.imagination.model_env import ModelEnv, imagine
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.policy.gaussian import GaussianPolicy
from bremen_robot.rl.behavior import evenly_spaced
from bremen_robot.tasks import Task

Rule = Literal["min", "quantile"]
Pick = Literal["best", "earliest"]
SNAPSHOTS_DIR = "snapshots"  # inside a training output folder
ENGINES = ("mujoco", "pybullet")


def first_segment_returns(rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
    """Return of each rollout up to and including its first ``done``: ``(T, B), (T, B) -> (B,)``.

    An imagined batch restarts a terminated rollout from a fresh state; only the part that began
    at the given start state counts here, so a snapshot that falls early scores its short return.
    """
    d = dones.to(rewards.dtype)
    before = torch.cumsum(d, dim=0) - d  # (T, B): dones strictly before step t
    return (rewards * (before == 0).to(rewards.dtype)).sum(dim=0)


def lower_bound(per_member: np.ndarray, rule: Rule = "min", quantile: float = 0.2) -> np.ndarray:
    """Pessimistic score of each snapshot from its members' mean returns: ``(S, E) -> (S,)``."""
    per_member = np.asarray(per_member, dtype=np.float64)
    if per_member.ndim != 2 or per_member.shape[1] == 0:
        raise ValueError(f"per-member returns must be (snapshots, members), got shape {per_member.shape}")
    if rule == "min":
        return per_member.min(axis=1)
    if rule == "quantile":
        return np.quantile(per_member, quantile, axis=1)
    raise ValueError(f"unknown selection rule '{rule}'; use min or quantile")


MIN_SPREAD = 1e-6  # per half range: below it the data shows no exploration (float32 rounding)


def action_shift(
    means: np.ndarray, behavior_actions: np.ndarray, half_range: np.ndarray
) -> tuple[np.ndarray, float]:
    """How far each snapshot acts from BC, in units of the data's own action spread.

    ``means`` are the snapshots' mean actions on N behavior states, BC first: ``(S, N, A)``;
    ``behavior_actions`` the actions the data recorded in those states ``(N, A)``; ``half_range``
    each action's half range ``(A,)``. Returns each snapshot's RMS mean-action change from BC
    divided by the RMS spread of the recorded actions around BC's mean ``(S,)``, and that spread
    (both RMS values per unit of half range). BC's own shift is 0.
    """
    means = np.asarray(means, dtype=np.float64)
    acts = np.asarray(behavior_actions, dtype=np.float64)
    half = np.asarray(half_range, dtype=np.float64)
    if means.ndim != 3 or acts.shape != means.shape[1:] or half.shape != means.shape[2:]:
        raise ValueError(
            f"shapes must be (S, N, A), (N, A), (A,); got {means.shape}, {acts.shape}, {half.shape}"
        )
    diff = (means - means[:1]) / half  # (S, N, A): change from BC, per unit of half range
    spread = float(np.sqrt(np.mean(((acts - means[0]) / half) ** 2)))  # (N, A) -> scalar
    if not spread > MIN_SPREAD:
        raise ValueError(
            f"the behavior actions stay within {MIN_SPREAD:g} of BC's mean: no spread to measure a shift in"
        )
    return np.sqrt(np.mean(diff**2, axis=(1, 2))) / spread, spread  # (S, N, A) -> (S,)


def eligible(shift: float, max_shift: float | None) -> bool:
    """Whether a snapshot with this ``shift`` (see :func:`action_shift`) may be proposed."""
    return max_shift is None or shift <= max_shift


def choose(estimates: Sequence[float]) -> int:
    """Index of the best estimate; ties go to the earliest snapshot (nearest the behavior policy).
    A NaN estimate is no score at all, so it ranks below every number (np.argmax would pick it)."""
    if not len(estimates):
        raise ValueError("no snapshots to choose from")
    est = np.asarray(estimates, dtype=np.float64)
    return int(np.argmax(np.where(np.isnan(est), -np.inf, est)))  # argmax keeps the first of ties


def beats(estimate: float, reference: float | None, margin: float = 0.0) -> bool:
    """Whether ``estimate`` beats the deployed policy's ``reference`` by ``margin`` × |reference|.

    With no reference (deployment 1's random policy is not scored) anything beats it.
    """
    if reference is None:
        return True
    return estimate > reference + margin * abs(reference)


def clearly_below(score: float, reference: float, tolerance: float) -> bool:
    """Twin veto: ``score`` is more than ``tolerance`` × max(|reference|, 1) under ``reference``
    (the floor of 1 keeps a near-zero reference from vetoing every snapshot by noise).

    A score or reference that is not a finite number (a twin run whose physics blew up) vetoes:
    NaN compares false with everything, so it would otherwise pass every snapshot."""
    if not (np.isfinite(score) and np.isfinite(reference)):
        return True
    return score < reference - tolerance * max(abs(reference), 1.0)


def twin_survivors(twin: Mapping[str, float], deployed: float, tolerance: float) -> list[str]:
    """Names of the snapshots whose twin score is not clearly below the deployed policy's."""
    return [name for name, score in twin.items() if not clearly_below(score, deployed, tolerance)]


def twin_engine(data_engine: str, requested: str | None = None) -> str:
    """The twin's engine: the other one than ``data_engine``. A twin on the engine that
    collected the data would grade the candidate on the data's own physics, so it is refused.
    Data from real hardware (``none``) may use either engine (default: the first)."""
    if data_engine == "none":
        if requested is not None and requested not in ENGINES:
            raise BremenError(f"unknown twin engine '{requested}'; use one of {', '.join(ENGINES)}")
        return requested or ENGINES[0]
    if data_engine not in ENGINES:
        raise BremenError(
            f"the data was collected on '{data_engine}', which has no simulator twin; "
            f"a twin check needs data from one of {', '.join(ENGINES)} (or turn the twin check off)"
        )
    other = next(e for e in ENGINES if e != data_engine)
    if requested == data_engine:
        raise BremenError(
            f"twin engine '{requested}' is the engine that collected the data; "
            f"the twin must be the other engine: set it to '{other}' or leave it unset"
        )
    if requested is not None and requested != other:
        raise BremenError(f"unknown twin engine '{requested}'; use '{other}' or leave it unset")
    return other


class MeanActionPolicy(torch.nn.Module):
    """A mean-only module (a frozen artifact's ``policy.pt``) shaped like a GaussianPolicy for
    :func:`imagine` with ``deterministic=True``: ``(B, D) -> mean (B, A), log_std (B, A)``."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.module = module

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.module(obs.cpu()).to(obs.device)
        return mean, torch.zeros_like(mean)


@torch.no_grad()
def member_returns(
    env: ModelEnv, policy: torch.nn.Module, start: torch.Tensor, horizon: int, generator: torch.Generator
) -> torch.Tensor:
    """Each member's imagined return of ``policy``'s mean action from each start state: ``(E, B)``.

    ``env`` is put in fixed-member mode for one member at a time and restored afterwards; the
    rollouts are deterministic, so every snapshot and member sees the same start states.
    """
    saved = env.fixed_member
    out = []
    try:
        for member in range(env.ensemble.members):
            env.fixed_member = member
            batch = imagine(env, policy, len(start), horizon, generator, start=start, deterministic=True)  # type: ignore[arg-type]
            out.append(first_segment_returns(batch.rewards, batch.dones))  # (B,)
    finally:
        env.fixed_member = saved
    return torch.stack(out).cpu()  # E x (B,) -> (E, B)


def pick_start_states(obs: np.ndarray, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` real states (rows of ``obs``, ``(N, D)``) drawn without replacement when possible."""
    if len(obs) == 0:
        raise BremenError("candidate selection needs dataset states; the behavior data is empty")
    if n <= len(obs):
        idx = torch.randperm(len(obs), generator=generator, device=generator.device)[:n]
    else:
        idx = torch.randint(len(obs), (n,), generator=generator, device=generator.device)
    return torch.as_tensor(obs[idx.cpu().numpy()], dtype=torch.float32)  # (n, D)


@dataclass
class SnapshotScore:
    """One row of the selection table."""

    name: str  # "bc", "trpo-0010", ...
    iteration: int  # TRPO updates done (0 for BC)
    per_member: list[float]  # each member's mean imagined return over the start states
    estimate: float  # the lower bound across members
    twin: float | None = None  # mean return in the twin, when it ran
    chosen: bool = False
    shift: float = 0.0  # mean-action change from BC in units of the data's action spread
    # review figures (review_figures.policy_figures) of a snapshot the campaign could propose
    figures: dict[str, float] | None = None


@dataclass
class Selection:
    """The offline selection of one training run (``report.json``'s ``selection``)."""

    rule: str
    quantile: float
    start_states: int
    horizon: int
    snapshots: list[SnapshotScore]
    chosen: str
    deployed_estimate: float | None = None
    beats_deployed: bool = True
    notes: list[str] = field(default_factory=list)
    max_action_shift: float | None = None  # the eligibility limit on ``SnapshotScore.shift``
    action_spread: float | None = None  # the data's action spread around BC (per half range)
    margin: float = 0.0  # beating the deployed policy takes more than margin x |deployed_estimate|
    pick: Pick = "best"  # which snapshot among those that beat the deployed policy (pick_among)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_snapshots(
    names: Sequence[str],
    iterations: Sequence[int],
    per_member: np.ndarray,
    rule: Rule,
    quantile: float,
) -> list[SnapshotScore]:
    """Rows of the selection table from per-member mean returns ``(S, E)``; none chosen yet."""
    est = lower_bound(per_member, rule, quantile)
    return [
        SnapshotScore(n, int(i), [float(x) for x in row], float(e))
        for n, i, row, e in zip(names, iterations, np.asarray(per_member), est, strict=True)
    ]


def pick_among(
    scores: Sequence[SnapshotScore], candidates: Sequence[int], pick: Pick, deployed_estimate: float | None
) -> int:
    """Which of ``candidates`` (indices into ``scores``, in training order, each of which beats
    the deployed policy) to propose: the best lower bound, or (``pick="earliest"``) the first in
    training order, the one TRPO moved least from the data. With no deployed policy to beat
    (deployment 1) every snapshot "beats" it, so the first would always be BC: both take the best."""
    if not candidates:
        raise ValueError("no candidates to pick from")
    if pick == "earliest" and deployed_estimate is not None:
        return candidates[0]
    return candidates[choose([scores[i].estimate for i in candidates])]


def select_offline(
    scores: list[SnapshotScore],
    deployed_estimate: float | None,
    margin: float,
    max_shift: float | None = None,
    pick: Pick = "best",
) -> tuple[int, bool]:
    """Index of the eligible snapshot (``shift <= max_shift``; BC always is) to propose, and
    whether it beats the deployed policy: among the eligible ones that beat it, :func:`pick_among`;
    when none does, the best lower bound (which then does not beat it)."""
    ok = [i for i, s in enumerate(scores) if eligible(s.shift, max_shift)]
    if not ok:
        raise ValueError(f"no snapshot within the action-shift limit {max_shift}; BC (shift 0) always is")
    winners = [i for i in ok if beats(scores[i].estimate, deployed_estimate, margin)]
    if winners:
        return pick_among(scores, winners, pick, deployed_estimate), True
    return ok[choose([scores[i].estimate for i in ok])], False


def select_with_twin(
    scores: list[SnapshotScore],
    deployed_estimate: float | None,
    deployed_twin: float,
    margin: float,
    tolerance: float,
    max_shift: float | None = None,
    pick: Pick = "best",
) -> tuple[int | None, list[str]]:
    """After the twin ran (``scores[i].twin`` set for the snapshots it ran): among eligible
    snapshots (``shift <= max_shift``) the twin does not veto that also beat the deployed policy
    offline, the one :func:`pick_among` picks, or None; and one line per vetoed snapshot."""
    notes, ok = [], []
    for i, s in enumerate(scores):
        if s.twin is None or not twin_candidate(s, deployed_estimate, margin, max_shift):
            continue
        if not (np.isfinite(s.twin) and np.isfinite(deployed_twin)):
            notes.append(
                f"{s.name}: twin {s.twin:.1f} against the deployed policy's {deployed_twin:.1f} "
                "is no evidence (not a finite number)"
            )
        elif clearly_below(s.twin, deployed_twin, tolerance):
            notes.append(
                f"{s.name}: twin {s.twin:.1f} is clearly below the deployed policy's {deployed_twin:.1f}"
            )
        else:
            ok.append(i)
    if not ok:
        return None, notes
    return pick_among(scores, ok, pick, deployed_estimate), notes  # the offline rule, on the survivors


def twin_candidate(
    score: SnapshotScore, deployed_estimate: float | None, margin: float, max_shift: float | None
) -> bool:
    """Whether the twin should run ``score``'s snapshot: within the action-shift limit and
    beating the deployed policy offline (no other could be proposed)."""
    return eligible(score.shift, max_shift) and beats(score.estimate, deployed_estimate, margin)


def add_snapshot_figures(
    selection: Selection,
    snapshots: Sequence[Snapshot],
    chosen_figures: dict[str, float],
    figures_of: Callable[[GaussianPolicy], dict[str, float]],
) -> None:
    """Put review figures on each row the campaign could propose: the chosen one's
    (``chosen_figures``, already computed) and each other :func:`twin_candidate`'s
    (``figures_of``), so a review describes whichever snapshot the twin leaves standing."""
    for snap, row in zip(snapshots, selection.snapshots, strict=True):
        if row.chosen:
            row.figures = chosen_figures
        elif twin_candidate(row, selection.deployed_estimate, selection.margin, selection.max_action_shift):
            row.figures = figures_of(snap.policy)


# ------------------------------------------------------------------ training-time wiring
@dataclass
class Snapshot:
    """A policy kept along training: BC (iteration 0) or TRPO after ``iteration`` updates."""

    name: str
    iteration: int
    policy: GaussianPolicy


class SnapshotKeeper:
    """``run_trpo``'s ``on_iteration`` hook: keeps a copy every ``every`` updates and at the end."""

    def __init__(self, bc: GaussianPolicy, every: int, iterations: int) -> None:
        self.every, self.iterations = every, iterations
        self.snapshots = [Snapshot("bc", 0, bc)]

    def __call__(self, it: int, policy: GaussianPolicy, stats: dict[str, list[float]]) -> None:
        done = it + 1
        if done % self.every == 0 or done == self.iterations:
            self.snapshots.append(Snapshot(f"trpo-{done:04d}", done, policy.clone()))


def offline_selection(
    cfg: SelectionConfig,
    horizon: int,
    ensemble: DynamicsEnsemble,
    task: Task,
    behavior_obs: np.ndarray,
    snapshots: Sequence[Snapshot],
    deployed: torch.nn.Module | None,
    generator: torch.Generator,
    behavior_actions: np.ndarray | None = None,
) -> tuple[Selection, Snapshot]:
    """Score every snapshot (and the deployed policy, when given) and choose one.

    The scoring env has no uncertainty penalty: the estimate is in the task's return units, so it
    compares with the deployed policy's and with real returns; pessimism comes from the bound.
    With ``cfg.max_action_shift`` only snapshots acting near the data are eligible; their shift is
    measured against ``behavior_actions`` (the rows of ``behavior_obs``' actions, ``(N, A)``).
    """
    env = ModelEnv(ensemble, task, generator, start_states=behavior_obs, use_reset_distribution=False)
    start = pick_start_states(behavior_obs, cfg.start_states, generator).to(env.device)  # (B, D)
    T = cfg.horizon or horizon
    # (E, B) per snapshot -> mean over start states -> (S, E)
    per_member = np.stack(
        [member_returns(env, s.policy, start, T, generator).mean(dim=1).numpy() for s in snapshots]
    )
    scores = score_snapshots(
        [s.name for s in snapshots], [s.iteration for s in snapshots], per_member, cfg.rule, cfg.quantile
    )
    deployed_estimate = None
    if deployed is not None:
        mine = member_returns(env, deployed, start, T, generator).mean(dim=1).numpy()[None]  # (1, E)
        deployed_estimate = float(lower_bound(mine, cfg.rule, cfg.quantile)[0])
    spread = None
    if cfg.max_action_shift is not None:
        if behavior_actions is None:
            raise ValueError("max_action_shift needs the behavior data's actions")
        try:
            shifts, spread = snapshot_shifts(snapshots, behavior_obs, behavior_actions, task, env.device)
        except ValueError as exc:  # data without exploration: the limit has no unit
            raise BremenError(
                f"selection.max_action_shift: {exc}; collect with exploration noise or set it to null"
            ) from None
        for row, shift in zip(scores, shifts, strict=True):
            row.shift = float(shift)
    best, ok = select_offline(scores, deployed_estimate, cfg.margin, cfg.max_action_shift, cfg.pick)
    scores[best].chosen = True
    sel = Selection(
        rule=cfg.rule,
        quantile=cfg.quantile,
        start_states=len(start),
        horizon=T,
        snapshots=scores,
        chosen=scores[best].name,
        deployed_estimate=deployed_estimate,
        beats_deployed=ok,
        max_action_shift=cfg.max_action_shift,
        action_spread=spread,
        margin=cfg.margin,
        pick=cfg.pick,
    )
    if not ok:
        sel.notes.append(
            f"no snapshot beats the deployed policy offline: best {scores[best].name} "
            f"{scores[best].estimate:.1f} against {deployed_estimate:.1f}"
        )
    return sel, snapshots[best]


SHIFT_STATES = 2048  # behavior rows the action shift is measured on (evenly spaced)


@torch.no_grad()
def snapshot_shifts(
    snapshots: Sequence[Snapshot],
    behavior_obs: np.ndarray,
    behavior_actions: np.ndarray,
    task: Task,
    device: torch.device | str,
) -> tuple[np.ndarray, float]:
    """:func:`action_shift` of ``snapshots`` (BC first) on up to :data:`SHIFT_STATES` evenly
    spaced rows of the behavior data: ``(S,)`` and the data's spread."""
    if snapshots[0].iteration != 0:
        raise ValueError("the first snapshot must be BC: shifts are measured from it")
    rows = evenly_spaced(len(behavior_obs), SHIFT_STATES)  # across all the data, newest rows too
    obs = torch.as_tensor(np.asarray(behavior_obs[rows]), dtype=torch.float32, device=device)  # (N, D)
    acts = np.asarray(behavior_actions[rows], dtype=np.float64)  # (N, A)
    means = np.stack([s.policy(obs)[0].cpu().numpy() for s in snapshots])  # S x (N, A) -> (S, N, A)
    half = (np.asarray(task.action_high, np.float64) - np.asarray(task.action_low, np.float64)) / 2
    return action_shift(means, acts, half)


def load_deployed(path: Path, task: Task) -> MeanActionPolicy:
    """The deployed policy's frozen artifact as a mean-action policy for :func:`member_returns`."""
    from bremen_robot.policy.artifact import load_artifact

    frozen = load_artifact(path)
    if frozen.obs_dim != task.obs_dim or frozen.action_dim != task.action_dim:
        raise BremenError(
            f"deployed policy '{path}' has {frozen.obs_dim} observations and {frozen.action_dim} actions, "
            f"task '{task.name}' has {task.obs_dim} and {task.action_dim}; "
            "pass the policy that collected this data"
        )
    return MeanActionPolicy(frozen.module)


def export_snapshots(
    selection: Selection, snapshots: Sequence[Snapshot], out_dir: Path, **common: Any
) -> None:
    """Every snapshot as its own frozen artifact in ``out_dir/<name>/``, so a campaign can propose
    another one when the twin vetoes the offline choice."""
    from bremen_robot.policy.artifact import export_policy

    by_name = {s.name: s for s in selection.snapshots}
    for snap in snapshots:
        row = by_name[snap.name]
        export_policy(
            snap.policy.clone(),
            out_dir / snap.name,
            kind="bc" if snap.iteration == 0 else "bremen",
            metrics={"selection_estimate": row.estimate, "trpo_iterations": snap.iteration},
            **common,
        )
