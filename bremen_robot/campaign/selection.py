"""What a campaign proposes after a deployment's training (issue 16; docs/algorithm.md, "Selection").

The trainer scored BC and its TRPO snapshots offline (``report.json``'s ``selection``). Here the
campaign adds the twin check when asked (each snapshot that beats the deployed policy offline,
and the deployed policy, run in the simulator engine that did not collect the data, randomized)
and decides: propose a snapshot, or, when none beats the deployed policy on this evidence, keep
collecting with the deployed policy or propose the best with a warning
(``selection.when_none_beats``). The decision is written once to ``d<k>/selection.json``, so a
resumed campaign repeats it without running the twin again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.campaign.config import CampaignConfig, data_engine
from bremen_robot.campaign.seeds import twin_seed
from bremen_robot.campaign.workspace import move_aside, read_json, write_json_atomic
from bremen_robot.review_figures import with_figures_of
from bremen_robot.selection import (
    SNAPSHOTS_DIR,
    SnapshotScore,
    select_offline,
    select_with_twin,
    twin_candidate,
    twin_engine,
)

SELECTION_FILE = "selection.json"
Act = Callable[[np.ndarray], np.ndarray]


@dataclass
class Proposal:
    """``keep``: collect again with the deployed policy; else register ``artifact`` with ``report``."""

    keep: bool
    artifact: Path | None
    report: dict[str, Any] | None
    record: dict[str, Any] | None  # the campaign's selection record (None: the trainer did not select)


def twin_score(
    act: Act, robot: str, task: str, engine: str, episodes: int, seed: int, rand: Any
) -> tuple[float, int]:
    """Mean return of ``act`` over ``episodes`` twin episodes, and the simulated steps it took."""
    from sim.sim2real import evaluate

    res = evaluate(act, robot, task, engine, episodes, seed, rand, label="twin")
    return res.mean, int(sum(res.lengths))


def _randomization(cfg: CampaignConfig) -> Any:
    from sim.randomization import DEFAULT_RANDOMIZATION, load_randomization

    path = cfg.selection.twin_randomization
    return DEFAULT_RANDOMIZATION if path is None else load_randomization(path)


def _act(artifact: Path | None, task_name: str, seed: int) -> Act:
    if artifact is None:  # deployment 1's uniform random policy
        from bremen_robot.data.real_rollout import uniform_policy
        from bremen_robot.tasks import get_task

        return uniform_policy(get_task(task_name), np.random.default_rng(seed))
    from bremen_robot.policy.artifact import load_artifact

    return load_artifact(artifact).act


def propose(
    cfg: CampaignConfig,
    k: int,
    train_dir: Path,
    deployed: Path | None,
    sim_robot: str,
    task: str,
    log: Callable[[str], None],
) -> Proposal:
    """The campaign's decision for deployment ``k``'s training in ``train_dir`` (see the module)."""
    report = json.loads((train_dir / "report.json").read_text())
    sel = report.get("selection")
    if sel is None:  # the trainer did not select: its candidate is proposed, as without selection
        return Proposal(False, train_dir, None, None)
    path = train_dir.parent / SELECTION_FILE
    record = read_json(path)
    if record is not None and not decided_on(record, sel):  # the training was redone since
        aside = move_aside(path, "other-training")
        log(
            f"deployment {k}: the selection record was for another training (kept at {aside}); deciding again"
        )
        record = None
    if record is None:
        margin = float(report["config"]["selection"]["margin"])
        record = _decide(cfg, k, sel, margin, train_dir, deployed, sim_robot, task)
        record["training"] = training_digest(sel)
        streak = twin_veto_streak(train_dir.parent.parent, k, record)
        record["twin_veto_streak"] = streak
        record["twin_warning"] = None
        if streak >= cfg.selection.twin_veto_warning:
            record["twin_warning"] = (
                "the twin has vetoed every snapshot it ran (those that beat the deployed policy "
                f"offline) at {streak} deployments in a row: it may not rank policies as the robot "
                "does; compare its scores with the robot's (bremen review) or set selection.twin: "
                "false in the campaign"
            )
            record["line"] += f"; WARNING: {record['twin_warning']}"
        write_json_atomic(path, record)
    if record.get("line"):
        log(f"deployment {k}: {record['line']}")
    report = {**report, "campaign_selection": record}
    if record["keep_deployed"]:
        return Proposal(True, deployed, report, record)
    # the review must describe the snapshot proposed, which the twin may have changed
    report = with_figures_of(report, record["proposed"])
    return Proposal(False, train_dir / SNAPSHOTS_DIR / record["proposed"], report, record)


def twin_froze(record: dict[str, Any]) -> bool:
    """Whether a decision kept the deployed policy because the twin vetoed every snapshot that
    beat it offline (not because none beat it offline: then the twin had nothing to veto)."""
    twin = record.get("twin")
    return bool(record.get("keep_deployed") and isinstance(twin, dict) and twin.get("vetoed"))


def twin_veto_streak(root: Path, k: int, record: dict[str, Any]) -> int:
    """Deployments in a row, ending with ``record`` (deployment ``k``'s decision), that
    :func:`twin_froze`; the earlier decisions are read from ``root/d<j>/selection.json``."""
    streak = 0
    current: dict[str, Any] | None = record
    while current is not None and twin_froze(current):
        streak += 1
        current = read_json(root / f"d{k - streak}" / SELECTION_FILE) if k - streak >= 1 else None
    return streak


def training_digest(sel: dict[str, Any]) -> str:
    """Identity of a training's selection table (``report.json``'s ``selection``)."""
    return hashlib.sha256(json.dumps(sel, sort_keys=True).encode()).hexdigest()


def decided_on(record: dict[str, Any], sel: dict[str, Any]) -> bool:
    """Whether a ``selection.json`` record was decided on this training's selection ``sel``.

    A rejected candidate's training is moved aside and redone, while the record sits beside it
    in ``d<k>``: a stale record would propose from the old table without running the twin.
    Records from before the digest match when they name the same offline choice and estimates.
    """
    if "training" in record:
        return bool(record["training"] == training_digest(sel))
    old = [row.get("offline_estimate") for row in record.get("table", [])]
    return record.get("offline_chosen") == sel.get("chosen") and old == [
        row.get("estimate") for row in sel.get("snapshots", [])
    ]


def _decide(
    cfg: CampaignConfig,
    k: int,
    sel: dict[str, Any],
    margin: float,
    train_dir: Path,
    deployed: Path | None,
    sim_robot: str,
    task: str,
) -> dict[str, Any]:
    sc = cfg.selection
    scores = [SnapshotScore(**{**row, "twin": None, "chosen": False}) for row in sel["snapshots"]]
    ref = sel.get("deployed_estimate")
    max_shift = sel.get("max_action_shift")  # None in reports from before the limit existed
    offline_choice = next(i for i, row in enumerate(sel["snapshots"]) if row["chosen"])
    record: dict[str, Any] = {"deployment": k, "twin": None, "twin_steps": 0, "warning": None, "line": ""}
    chosen: int | None = offline_choice if sel["beats_deployed"] else None
    evidence = "offline lower bound"
    if sc.twin:
        engine = twin_engine(data_engine(cfg), sc.twin_engine)
        rand, seed = _randomization(cfg), twin_seed(cfg.seed, k, cfg.seed_layout)

        def run(art: Path | None) -> tuple[float, int]:
            return twin_score(_act(art, task, seed), sim_robot, task, engine, sc.twin_episodes, seed, rand)

        deployed_twin, steps = run(deployed)
        for s in scores:
            if twin_candidate(s, ref, margin, max_shift):  # only snapshots that could be proposed
                s.twin, n = run(train_dir / SNAPSHOTS_DIR / s.name)
                steps += n
        chosen, notes = select_with_twin(
            scores, ref, deployed_twin, margin, sc.twin_tolerance, max_shift, sel.get("pick", "best")
        )
        evidence = f"offline lower bound and {engine} twin"
        record["twin"] = {
            "engine": engine,
            "episodes": sc.twin_episodes,
            "deployed": deployed_twin,
            "tolerance": sc.twin_tolerance,
            "vetoed": notes,
        }
        record["twin_steps"] = steps
    keep = False
    if chosen is None:
        record["line"] = f"no snapshot beats the deployed policy on this evidence ({evidence})"
        if sc.when_none_beats == "keep_deployed":
            keep = True
            record["line"] += "; collecting again with the deployed policy (not a new deployment)"
        else:
            # the best offline snapshot, whatever selection.pick: the earliest winner may be the very
            # snapshot the twin just vetoed (docs/algorithm.md, "When nothing beats the deployed policy")
            chosen = select_offline(scores, ref, margin, max_shift, "best")[0]
            record["warning"] = (
                f"{scores[chosen].name} is proposed although it does not beat the deployed policy "
                f"({evidence}); review before approving"
            )
            record["line"] += f"; proposing {scores[chosen].name} with a warning for the operator"
    if chosen is not None:
        scores[chosen].chosen = True
        if record["warning"] is None:  # the operator's log says what is proposed and on what evidence
            record["line"] = f"proposing snapshot {scores[chosen].name} of {len(scores)} ({evidence})"
    if record["twin"] is not None:
        record["line"] = (
            record["line"] + "; " if record["line"] else ""
        ) + f"{record['twin_steps']} twin steps"
    record |= {
        "keep_deployed": keep,
        "proposed": None if chosen is None else scores[chosen].name,
        "offline_chosen": sel["chosen"],
        "deployed_estimate": ref,
        "margin": margin,
        "max_action_shift": max_shift,
        "pick": sel.get("pick", "best"),  # absent in reports from before the earliest rule existed
        "table": [
            {
                "snapshot": s.name,
                "offline_estimate": s.estimate,
                "shift": s.shift,
                "twin": s.twin,
                "chosen": s.chosen,
            }
            for s in scores
        ],
    }
    return record
