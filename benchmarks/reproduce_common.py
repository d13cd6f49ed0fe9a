"""Shared pieces of the reproduction harness (``benchmarks/reproduce.py``): the methods, a
(method, seed) job, the training-config overrides, and the per-workspace settings guard.

Kept apart so that the TD3+BC loop and the aggregation import them without importing the
command-line entry point.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
METHODS = ("bremen", "bremen_select", "bc", "td3bc")
LABELS = {
    "bremen": "BREMEN",
    "bremen_select": "BREMEN + selection",
    "bc": "recursive BC",
    "td3bc": "recursive TD3+BC (d3rlpy)",
}
SHORT = {
    "bremen": "BREMEN",
    "bremen_select": "BREMEN + selection",
    "bc": "recursive BC",
    "td3bc": "recursive TD3+BC",
}
COLORS = {"bremen": "tab:blue", "bremen_select": "tab:purple", "bc": "tab:orange", "td3bc": "tab:green"}
# What makes bremen_select differ from bremen: the trainer keeps and scores snapshots, and the
# campaign runs the surviving ones in the twin (the engine that did not collect the data).
SELECT_TRAIN = {"selection.enabled": True}
# ... with the action-shift limit where a study chose one for the robot (docs/algorithm.md,
# "Candidate selection"; the limit is in units of the data's own action spread, and that scale is
# per robot): HalfCheetah 0.6 (selection study). Hopper has none: there even TRPO's 10th iteration
# sits 1.3-1.7 spreads from BC, so 0.6 left only BC and froze the campaign at BC's return, while
# the unlimited rule climbed without regressing (docs/results.md). A --train-override of it wins,
# e.g. selection.max_action_shift=null for the rule the HalfCheetah runs before 2026-12-05 used
SELECT_SHIFT_LIMITS = {"halfcheetah": 0.6}
SELECT_CAMPAIGN = {"selection.twin": True, "selection.data_engine": "mujoco"}  # collect_direct is MuJoCo
# Recursive BC for a campaign without a '<name>-bc' preset: the campaign's own training preset with
# TRPO off (job_train) and the ensemble shrunk as in train preset halfcheetah-cpu-bc, because the
# BC candidate never uses it (it only feeds the report's imagined figures).
BC_DERIVED_TRAIN = {"ensemble.members": 2, "ensemble.hidden": [32], "ensemble.max_epochs": 2}
TD3BC_PYTHON = HERE / ".venv-d3rlpy" / "bin" / "python"
TARGET_RETURN = 4000.0  # DESIGN.md §5, HalfCheetah, mean of 3 seeds after <= 5 deployments
TARGET_DEPLOYMENTS = 5
# TD3+BC's least gradient steps per deployment. The budget that makes it fair is in seconds: at
# least BREMEN's mean training time at each deployment (reproduce_td3bc.bremen_seconds, issue 16).
TD3BC_STEPS = 50_000
TD3BC_STEPS_FOR = {"hopper-cpu": 60_000, "walker2d-cpu": 60_000}


def td3bc_steps_for(campaign: str) -> int:
    """TD3+BC's gradient steps per deployment for campaign ``campaign`` (a preset name or path)."""
    return TD3BC_STEPS_FOR.get(Path(campaign).stem, TD3BC_STEPS)


def parse_overrides(
    pairs: list[str], flag: str = "--train-override", example: str = "trpo.iterations=2"
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ValueError(f"{flag} '{pair}' is not KEY=VALUE (e.g. {example})")
        out[key] = yaml.safe_load(raw)
    return out


def _overridden(cfg: Any, overrides: dict[str, Any], flag: str, what: str) -> dict[str, Any]:
    data: dict[str, Any] = cfg.model_dump(mode="json")
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise SystemExit(f"{flag} {key}: '{part}' is not a section of the {what}")
            node = node[part]
        if parts[-1] not in node:
            raise SystemExit(f"{flag} {key}: unknown field '{parts[-1]}'; check the spelling")
        node[parts[-1]] = value
    return data


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """A validated copy of a TrainConfig with dotted-key overrides; unknown keys are errors."""
    from pydantic import ValidationError

    from bremen_robot.config.loading import describe_validation_error
    from bremen_robot.config.train import TrainConfig

    data = _overridden(cfg, overrides, "--train-override", "training config")
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise SystemExit(describe_validation_error(exc, "--train-override")) from None


def apply_campaign_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """A validated copy of a CampaignConfig with dotted-key overrides; unknown keys are errors."""
    from pydantic import ValidationError

    from bremen_robot.campaign.config import CampaignConfig
    from bremen_robot.config.loading import describe_validation_error

    if not overrides:
        return cfg
    data = _overridden(cfg, overrides, "--campaign-override", "campaign config")
    try:
        return CampaignConfig.model_validate(data)
    except ValidationError as exc:
        raise SystemExit(describe_validation_error(exc, "--campaign-override")) from None


def method_campaign_overrides(method: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The campaign overrides of one method's runs. The ``selection`` section acts only where the
    training selects (bremen_select), so it stays out of the other methods' settings: tuning it
    never orphans their workspaces."""
    if method == "bremen_select":
        return {**SELECT_CAMPAIGN, **overrides}
    return {k: v for k, v in overrides.items() if k.split(".")[0] != "selection"}


def campaign_task(cfg: Any) -> str:
    """The task a campaign trains for (its training preset's)."""
    from bremen_robot.config.train import load_train_config

    return str(load_train_config(cfg.train).task)


def method_train_overrides(
    method: str, overrides: dict[str, Any], bc_derived: bool, task: str = ""
) -> dict[str, Any]:
    """The training overrides of one method's runs on ``task`` (bremen_select always selects)."""
    if method == "bremen_select":
        limit = SELECT_SHIFT_LIMITS.get(task)
        shift = {} if limit is None else {"selection.max_action_shift": limit}
        return {**shift, **overrides, **SELECT_TRAIN}
    if method == "bc" and bc_derived:
        return {**BC_DERIVED_TRAIN, **overrides}
    return dict(overrides)


@dataclass
class Job:
    method: str
    seed: int
    workspace: Path
    campaign_path: str
    campaign_update: dict[str, Any]
    overrides: dict[str, Any]
    td3bc: dict[str, Any] = field(default_factory=dict)
    campaign_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"[{self.method} seed {self.seed}]"


def campaign_update(args: argparse.Namespace, cfg: Any, seed: int) -> dict[str, Any]:
    update: dict[str, Any] = {"seed": seed}
    if args.deployments:
        update["deployments"] = args.deployments
    if args.steps_per_deployment:
        update["steps_per_deployment"] = args.steps_per_deployment
    if args.eval_episodes:
        update["evaluation"] = cfg.evaluation.model_copy(update={"episodes": args.eval_episodes})
    return update


def _log(job: Job, msg: str) -> None:
    line = f"{job.tag} {msg}"
    print(line, flush=True)
    job.workspace.mkdir(parents=True, exist_ok=True)
    with open(job.workspace / "harness.log", "a") as f:
        f.write(f"{datetime.now().isoformat(timespec='seconds')} {line}\n")


def job_campaign(job: Job) -> Any:
    from bremen_robot.campaign.config import load_campaign_config

    cfg = apply_campaign_overrides(load_campaign_config(job.campaign_path), job.campaign_overrides)
    out = cfg.model_copy(update=job.campaign_update)
    _check_campaign_update(out)
    return out


def _check_campaign_update(cfg: Any) -> None:
    """``--deployments``, ``--steps-per-deployment``, ``--eval-episodes`` and ``--seeds`` reach the
    campaign through ``model_copy``, which does not validate: one line (SystemExit) for a value
    the campaign config refuses (deployments <= 50, seed 0..1,000,000), before any run, instead of
    a ValueError from campaign/seeds.py at deployment 64 or a negative simulator seed."""
    from pydantic import ValidationError

    from bremen_robot.campaign.config import CampaignConfig
    from bremen_robot.config.loading import describe_validation_error

    try:
        CampaignConfig.model_validate(cfg.model_dump())
    except ValidationError as exc:
        raise SystemExit(
            describe_validation_error(exc, "--deployments/--steps-per-deployment/--eval-episodes/--seeds")
        ) from None


def job_train(job: Job) -> Any:
    """The training config of a bremen/bc job: the campaign's preset with the overrides."""

    from bremen_robot.config.train import SelectionConfig, load_train_config

    train = apply_overrides(load_train_config(job_campaign(job).train), job.overrides)
    # recursive BC is BC: no TRPO, whatever an override says
    if job.method == "bc" and train.trpo.iterations != 0:
        train = train.model_copy(update={"trpo": train.trpo.model_copy(update={"iterations": 0})})
    # selection settings act only with selection on, so an override of them (or a preset's) is
    # not part of a bremen or bc run's settings; the campaign's own digest still covers the
    # preset file's bytes, so editing a preset does orphan its workspaces
    if not train.selection.enabled:
        train = train.model_copy(update={"selection": SelectionConfig()})
    return train


def job_record(job: Job) -> dict[str, Any]:
    """Everything that decides a workspace's contents (the campaign digest misses train overrides)."""
    record: dict[str, Any] = {"method": job.method, "campaign": job_campaign(job).model_dump(mode="json")}
    if job.method == "td3bc":
        record["td3bc"] = {k: v for k, v in job.td3bc.items() if k != "python"}
    else:
        record["train"] = job_train(job).model_dump(mode="json")
    return record


def same_settings(have: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    """``have`` (a workspace's harness.json) describes the same run as ``record`` (a fresh job
    record, or another stored one: park_runs.py compares a workspace's with its results record).
    Both sides' configs are re-validated first, so a config field added later with a default
    that keeps the old behavior does not orphan runs made before it existed, whichever side is
    old; the prose fields are not compared."""
    if have is None:
        return False
    try:
        return _without_prose(_normalized(have)) == _without_prose(_normalized(record))
    except (KeyError, ValueError):
        return False


def _normalized(side: dict[str, Any]) -> dict[str, Any]:
    """A harness record as this checkout reads it: config paths of another checkout mapped into
    this one, configs re-validated (defaults of later fields filled in), TD3+BC's seconds budget
    None where it predates it. KeyError or ValueError if its configs do not validate."""
    from bremen_robot.campaign.config import CampaignConfig
    from bremen_robot.config.train import TrainConfig

    out = dict(side)
    if not isinstance(out["campaign"], dict):  # as before the refactor: no settings, no match
        raise ValueError("the record's campaign is not a config")
    campaign = stored_campaign(out["campaign"])
    for key in ("robot", "collect"):  # another checkout's config paths, as in this one
        if key in campaign:
            campaign[key] = _in_this_checkout(campaign[key])
    out["campaign"] = CampaignConfig.model_validate(campaign).model_dump(mode="json")
    if "train" in out:
        out["train"] = TrainConfig.model_validate(out["train"]).model_dump(mode="json")
    if isinstance(out.get("td3bc"), dict):
        out["td3bc"] = with_td3bc_budget(out["td3bc"])
    return out


def stored_campaign(campaign: dict[str, Any]) -> dict[str, Any]:
    """A campaign config as a harness record stored it, with ``seed_layout: sliding`` where the
    record predates the field: every run made before it was collected with those seeds, and
    reading it as the new default (spaced) would re-collect or compare it with other seeds."""
    return {"seed_layout": "sliding", **campaign}


def with_td3bc_budget(td3bc: dict[str, Any]) -> dict[str, Any]:
    """TD3+BC's settings with its seconds budget None where they predate it (runs before the
    budget had steps alone)."""
    return {"min_seconds": None, **td3bc}


def _without_prose(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without its configs' prose: editing a preset's description must not orphan the
    runs made with it (the campaign's identity leaves the same fields out)."""
    from bremen_robot.campaign.config import PROSE_FIELDS

    out = dict(record)
    for key in ("train", "campaign"):
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if k not in PROSE_FIELDS}
    return out


def _in_this_checkout(path: Any) -> Any:
    """A config path of another checkout as it reads in this one: records hold absolute paths
    (``/work/main/configs/robots/hopper.yaml``), and results files are committed and read in
    other checkouts (``/home/me/bremen/configs/robots/hopper.yaml`` is the same file)."""
    if isinstance(path, str) and "/configs/" in path:
        return str(REPO / "configs" / path.rsplit("/configs/", 1)[1])
    return path


def _guard(job: Job) -> None:
    """A workspace belongs to one set of settings; refuse to mix."""
    from bremen_robot.campaign.workspace import read_json, write_json_atomic

    record = job_record(job)
    path = job.workspace / "harness.json"
    have = read_json(path)
    if have is None:
        write_json_atomic(path, record)
    elif not same_settings(have, record):
        sliding = {**record, "campaign": {**record["campaign"], "seed_layout": "sliding"}}
        if same_settings(have, sliding):  # a run from before 2026-12-07, of a campaign now spaced
            raise SystemExit(
                f"workspace '{job.workspace}' was collected with the sliding seed layout (see {path}); "
                "resume it with a campaign config that sets 'seed_layout: sliding' (or with "
                "--campaign-override seed_layout=sliding --name NAME), or use another --out"
            )
        raise SystemExit(
            f"workspace '{job.workspace}' was run with other settings (see {path}); "
            "use another --out or the original options"
        )


def _add_time(job: Job, wall_s: float, complete: bool) -> None:
    from bremen_robot.campaign.workspace import read_json, write_json_atomic

    path = job.workspace / "timing.json"
    data = read_json(path) or {"runs": []}
    data["runs"].append(
        {"ended": datetime.now(timezone.utc).isoformat(), "wall_s": wall_s, "complete": complete}
    )
    data["wall_s_total"] = float(sum(r["wall_s"] for r in data["runs"]))
    write_json_atomic(path, data)


def draw_method_curves(ax: Any, result: dict[str, Any], key: str = "deployments") -> None:
    """Each method's mean ± std across seeds of a reproduce.py result on ``ax`` (matplotlib),
    against ``key`` ("deployments" or "samples"); a method with no value yet is left out. Points
    averaged over fewer seeds than the method's most (a seed still running) are hollow, and the
    label gives the range of n: such a point may move when the other seeds arrive."""
    import numpy as np

    for method in result["methods"]:
        pts = [(r[key], r[method]) for r in result["per_deployment"] if r[method]["mean"] is not None]
        if not pts:
            continue
        xs = np.array([p[0] for p in pts], float)
        mean = np.array([p[1]["mean"] for p in pts])
        std = np.array([p[1]["std"] for p in pts])
        counts = np.array([p[1]["n_seeds"] for p in pts])
        n, fewest = int(counts.max()), int(counts.min())
        label = (
            f"{LABELS[method]} (n={n})"
            if fewest == n
            else f"{LABELS[method]} (n={fewest}-{n}; hollow: fewer)"
        )
        ax.plot(xs, mean, marker="o", color=COLORS[method], label=label)
        if fewest < n:
            few = counts < n
            ax.plot(
                xs[few],
                mean[few],
                linestyle="none",
                marker="o",
                color=COLORS[method],
                markerfacecolor="white",
            )
        ax.fill_between(xs, mean - std, mean + std, color=COLORS[method], alpha=0.2)
