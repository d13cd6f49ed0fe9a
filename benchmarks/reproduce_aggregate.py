"""Aggregation of the reproduction harness: per-seed curves from the workspaces, mean ± std across
seeds per deployment, each deployment's training wall time and (with selection) twin steps, the
plot and the printed tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from reproduce_common import (
    LABELS,
    REPO,
    SHORT,
    TARGET_DEPLOYMENTS,
    TARGET_RETURN,
    Job,
    campaign_update,
    draw_method_curves,
    job_record,
    same_settings,
    with_td3bc_budget,
)


def train_seconds(ws: Path, k: int) -> float | None:
    """Wall time of deployment k's training: the trainer's total (ensemble, BC, TRPO and the
    offline scoring of snapshots; the twin runs after it, counted in twin steps), or TD3+BC's
    data preparation and fit; None when not recorded."""
    report = ws / f"d{k}" / "train" / "report.json"
    if report.is_file():
        return float(json.loads(report.read_text())["timing"]["total_s"])
    weights = ws / f"d{k}" / "td3bc" / "weights.npz"
    if weights.is_file():
        with np.load(weights, allow_pickle=False) as z:
            timing = json.loads(str(z["info"]))["timing"]
        return float(timing["prepare_s"] + timing["fit_s"])
    return None


def train_flushed(ws: Path, k: int) -> bool:
    """Whether deployment k was trained with subnormal floats flushed (trainer reports since
    2026-12-06); before, subnormal weights made the fits 10-20x slower."""
    report = ws / f"d{k}" / "train" / "report.json"
    return report.is_file() and json.loads(report.read_text())["timing"].get("subnormal_flush") is True


def read_seed(job: Job, deployments: int) -> dict[str, Any]:
    """Per-seed curve from a workspace: k = 0 is the random policy, k >= 1 the candidate
    trained on deployments 1..k (same layout for all methods), with each deployment's training
    wall time (``train_s``) and, where the campaign selected, its twin steps and whether it kept
    the deployed policy collecting. A workspace run with other settings than this command's is
    left out, never mixed in."""
    from bremen_robot.campaign.workspace import read_json

    ws = job.workspace
    have = read_json(ws / "harness.json")
    if have is None:
        return {"returns": [], "samples": [], "complete": False, "note": "not run"}
    if not same_settings(have, job_record(job)):
        return {"returns": [], "samples": [], "complete": False, "note": "left out: run with other settings"}
    returns: list[float | None] = []
    samples: list[int | None] = []
    train_s: list[float | None] = [None]  # k = 0: the random policy is not trained
    flushed = [False]
    twin_steps: list[int | None] = [None]
    kept: list[bool | None] = [None]
    rnd = read_json(ws / "d1" / "eval_random.json")
    returns.append(rnd["mean"] if rnd else None)
    samples.append(0)
    total = 0
    for k in range(1, deployments + 1):
        col = read_json(ws / f"d{k}" / "collect.json")
        ev = read_json(ws / f"d{k}" / "eval.json")
        if col is None or ev is None:
            break
        total += int(col["steps"])
        returns.append(float(ev["mean"]))
        samples.append(total)
        train_s.append(train_seconds(ws, k))
        flushed.append(train_flushed(ws, k))
        sel = read_json(ws / f"d{k}" / "selection.json")
        twin_steps.append(None if sel is None else int(sel["twin_steps"]))
        kept.append(None if sel is None else bool(sel["keep_deployed"]))
    timing = read_json(ws / "timing.json") or {}
    complete = len(returns) == deployments + 1 and returns[0] is not None
    out = {
        "settings": have,
        "returns": returns,
        "samples": samples,
        "complete": complete,
        "wall_s": timing.get("wall_s_total"),
        "train_s": train_s,
        "train_flushed": flushed,
    }
    if any(v is not None for v in twin_steps):
        out["twin_steps"] = twin_steps
        out["kept_deployed"] = kept
    if unparked := read_json(ws / "unparked.json"):  # park_runs.py --accept-different-data
        out["recollected_differ"] = unparked["recollected_differ"]
    return out


def overrides_record(args: argparse.Namespace) -> dict[str, Any]:
    """The command's overrides as the results file records them (``overrides``); the file TD3+BC's
    budget came from only when ``--td3bc-seconds-from`` named one (so a file without it reads as
    before), for the command the suite report prints to resume it."""
    out = {
        "deployments": args.deployments,
        "steps_per_deployment": args.steps_per_deployment,
        "eval_episodes": args.eval_episodes,
        "train": args.overrides,
        "campaign": getattr(args, "campaign_overrides", {}),
        "td3bc_steps": args.td3bc_steps,
    }
    if getattr(args, "td3bc_seconds_from", None) is not None:
        out["td3bc_seconds_from"] = str(args.td3bc_seconds_from)
    return out


def finished_elsewhere(
    jobs: list[Job], sources: list[dict[str, Any]], trains: dict[str, Any], overrides: dict[str, Any]
) -> list[Job]:
    """The jobs with no workspace here whose complete record a results file in ``sources`` holds,
    made with the same settings: a fresh checkout must not run a finished seed again."""
    out = []
    for job in jobs:
        if (job.workspace / "harness.json").is_file():
            continue  # a workspace here: the harness resumes it stage by stage
        record = carried_seed(sources, job, trains.get(job.method), overrides)
        if record is not None and record.get("complete"):
            out.append(job)
    return out


# what an override left out of an older results file meant; td3bc_steps is compared through the
# method's training summary (its effective steps), since its default became per campaign
_NO_OVERRIDES = {
    "deployments": None,
    "steps_per_deployment": None,
    "eval_episodes": None,
    "train": {},
    "campaign": {},
}


def _same_overrides(have: dict[str, Any] | None, want: dict[str, Any]) -> bool:
    def norm(o: dict[str, Any]) -> dict[str, Any]:
        return {k: o.get(k, v) for k, v in _NO_OVERRIDES.items()}

    return have is not None and norm(have) == norm(want)


def _training_summary(summary: Any) -> Any:
    """A results file's training summary of a method (``methods[m]["train"]``) as this checkout
    writes it: its selection configs re-validated, so that a field added since (with its
    default) does not make an older summary read as other settings, and TD3+BC's seconds budget
    None where the summary predates it (as :func:`reproduce_common.same_settings` reads a
    workspace's); None if the configs do not validate."""
    from pydantic import ValidationError

    from bremen_robot.campaign.config import SelectionPolicy
    from bremen_robot.config.train import SelectionConfig

    if not isinstance(summary, dict):
        return summary
    out = dict(summary)
    if out.get("algorithm") == "d3rlpy TD3PlusBC":
        out = with_td3bc_budget(out)
    try:
        for key, model in (("selection", SelectionConfig), ("campaign_selection", SelectionPolicy)):
            if isinstance(out.get(key), dict):
                out[key] = model.model_validate(out[key]).model_dump(mode="json")
    except ValidationError:
        return None
    return out


def carried_seed(
    sources: list[dict[str, Any]], job: Job, train: Any, overrides: dict[str, Any]
) -> dict[str, Any] | None:
    """``job``'s per-seed record in the first results file of ``sources`` (the file this command
    is about to rewrite, then any ``--carry-from``) that holds one made with the same settings;
    None otherwise. Workspaces are scratch (a fresh checkout has none) while results files are
    committed, so a seed whose workspace is gone must keep its record. A record stores its
    workspace's ``harness.json`` (``settings``) and is compared as a workspace is; a record
    written before records stored it is carried when its file's overrides and the method's
    training summary match this command's."""
    for source in sources:
        method = source.get("methods", {}).get(job.method, {})
        record = method.get("seeds", {}).get(str(job.seed))
        if not record or not record.get("returns"):
            continue
        if "settings" in record:
            same = same_settings(record["settings"], job_record(job))
        else:
            fresh = _training_summary(train)
            same = (
                _same_overrides(source.get("overrides"), overrides)
                and fresh is not None
                and _training_summary(method.get("train")) == fresh
            )
        if same:
            record = dict(record)
            record.setdefault(
                "carried_from", {"file": f"{source['name']}.json", "created": source.get("created")}
            )
            return record
    return None


def seed_record(fresh: dict[str, Any], carried: dict[str, Any] | None) -> dict[str, Any]:
    """The workspace's record unless the carried one reaches further (a rerun that has not yet
    caught up with the run the results file recorded); the two are never mixed."""
    if carried is not None and len(carried["returns"]) > len(fresh["returns"]):
        return carried
    return fresh


@contextmanager
def results_file_lock(json_path: Path) -> Iterator[None]:
    """Hold ``<name>.json.lock`` while this harness re-reads, aggregates and rewrites
    ``<name>.json``: harnesses on one campaign (one per method, say) take turns, so none writes
    over a version of the file it did not read. A blocking ``flock``: the kernel drops it with
    the process; the empty lock file stays (git ignores it)."""
    import fcntl

    lock = json_path.with_name(json_path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another harness that is writing {json_path}", flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def dropped_records(previous: dict[str, Any] | None, result: dict[str, Any]) -> list[str]:
    """``method seed`` of each record with returns in ``previous`` that ``result`` does not hold
    as it was or extended (returns starting with the old ones): left out (other settings, or
    outside this command's scope) or replaced (a rerun of the seed that caught up, with its own
    returns). The caller keeps the previous file whenever this is not empty."""
    if not previous:
        return []
    out = []
    for method, entry in previous.get("methods", {}).items():
        for seed, record in entry.get("seeds", {}).items():
            old = record.get("returns") or []
            new = result["methods"].get(method, {}).get("seeds", {}).get(seed, {}).get("returns") or []
            if old and new[: len(old)] != old:
                out.append(f"{method} seed {seed}")
    return out


def _column(seeds: dict[str, Any], key: str, k: int) -> list[Any]:
    return [v[key][k] for v in seeds.values() if len(v.get(key, [])) > k and v[key][k] is not None]


def aggregate(
    args: argparse.Namespace,
    name: str,
    jobs: list[Job],
    campaigns: dict[str, tuple[str, Any]],
    trains: dict[str, Any],
    sources: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The results file's contents: per-seed records (from the workspaces, or carried from
    ``sources``: the file being rewritten, then any ``--carry-from``), mean ± std per
    deployment, the target."""
    from bremen_robot.robot_config import load_robot_config

    base = campaigns["bremen"][1].model_copy(update=campaign_update(args, campaigns["bremen"][1], 0))
    K = base.deployments
    overrides = overrides_record(args)
    per_method: dict[str, Any] = {}
    for method in args.methods:
        seeds = {
            j.seed: seed_record(
                read_seed(j, K), carried_seed(sources or [], j, trains.get(method), overrides)
            )
            for j in jobs
            if j.method == method
        }
        per_method[method] = {
            "label": LABELS[method],
            "campaign": campaigns[method][1].name + (" + TD3+BC loop" if method == "td3bc" else ""),
            "train": trains.get(method),
            "seeds": {str(s): v for s, v in seeds.items()},
        }
    rows = []
    for k in range(K + 1):
        row: dict[str, Any] = {"deployments": k, "samples": k * base.steps_per_deployment}
        for method in args.methods:
            seeds = per_method[method]["seeds"]
            vals = _column(seeds, "returns", k)
            secs = _column(seeds, "train_s", k)
            row[method] = {
                "mean": float(np.mean(vals)) if vals else None,
                "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else None),
                "n_seeds": len(vals),
                "per_seed": vals,
                "train_s": {"mean": float(np.mean(secs)) if secs else None, "per_seed": secs},
            }
            if any("twin_steps" in v for v in seeds.values()):
                twin = _column(seeds, "twin_steps", k)
                row[method]["twin_steps"] = {
                    "mean": float(np.mean(twin)) if twin else None,
                    "per_seed": twin,
                }
                row[method]["kept_deployed"] = _column(seeds, "kept_deployed", k)
        rows.append(row)
    robot = load_robot_config(base.robot)
    target: dict[str, Any] = {"applies": robot.task == "halfcheetah"}
    if target["applies"]:
        kt = min(TARGET_DEPLOYMENTS, K)
        b = rows[kt].get("bremen", {})
        c = rows[kt].get("bc", {})
        target.update(
            {
                "rule": f"BREMEN mean of 3 seeds after <= {TARGET_DEPLOYMENTS} deployments "
                f">= {TARGET_RETURN:.0f} and above recursive BC at equal data (DESIGN.md §5)",
                "at_deployments": kt,
                "bremen": b.get("mean"),
                "bc": c.get("mean"),
            }
        )
        if b.get("n_seeds", 0) >= 3 and c.get("n_seeds", 0) >= 3 and kt == TARGET_DEPLOYMENTS:
            target["met"] = bool(b["mean"] >= TARGET_RETURN and b["mean"] > c["mean"])
        else:
            target["met"] = None
            target["why_undecided"] = "needs 3 complete seeds of bremen and bc with 5 deployments"
    import torch

    return {
        "name": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + shlex.join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]]),
        "smoke": args.overridden,
        "campaign": base.name,
        "task": robot.task,
        "deployments": K,
        "steps_per_deployment": base.steps_per_deployment,
        "exploration_sigma": base.exploration_sigma,
        "evaluation_episodes": base.evaluation.episodes,
        "overrides": overrides,
        "seeds": args.seeds,
        "std": "sample std across seeds (ddof=1) of each seed's mean evaluation return",
        "train_s": "wall time of each deployment's training in seconds (trainer report total_s: ensemble, "
        "BC, TRPO, offline snapshot scoring; TD3+BC: preparation + fit); twin runs are counted in "
        "twin_steps (d<k>/selection.json), not in train_s. Per seed, train_flushed[k] says whether the "
        "trainer flushed subnormal floats (since 2026-12-06); earlier times are inflated 10-20x by "
        "subnormal ensemble weights (docs/performance.md)",
        "x_axis": "deployments = number of deployments whose data trained the candidate (0 = the uniform "
        "random policy); samples = transitions collected in those deployments",
        "per_deployment": rows,
        "methods": per_method,
        "target": target,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        },
    }


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in (
        (axes[0], "deployments", "deployments"),
        (axes[1], "samples", "samples collected"),
    ):
        draw_method_curves(ax, result, key)
        if result["target"].get("applies"):
            ax.axhline(TARGET_RETURN, color="gray", ls="--", lw=1, label="DESIGN.md §5 target")
        if key == "deployments":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(label)
        ax.set_ylabel("evaluation return (mean action)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    title = f"{result['campaign']}: {result['task']}, mean ± std over seeds {result['seeds']}"
    if result["smoke"]:
        o = result["overrides"]
        pairs = {
            **{k: v for k, v in o.items() if k not in ("train", "campaign", "td3bc_steps") and v is not None},
            **o["train"],
            **o.get("campaign", {}),
        }
        changed = ", ".join(f"{k}={v}" for k, v in pairs.items()) or "sizes"
        title = f"OVERRIDDEN ({changed}), not the preset's result - " + title
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def table(result: dict[str, Any]) -> str:
    methods = list(result["methods"])
    head = f"{'deployments':>11} {'samples':>9} " + " ".join(f"{SHORT[m]:>26}" for m in methods)
    lines = [head]
    for r in result["per_deployment"]:
        cells = []
        for m in methods:
            c = r[m]
            cells.append(
                f"{'-':>26}"
                if c["mean"] is None
                else f"{c['mean']:9.1f} ± {c['std']:7.1f} (n={c['n_seeds']})".rjust(26)
            )
        k = "0 (random)" if r["deployments"] == 0 else str(r["deployments"])
        lines.append(f"{k:>11} {r['samples']:>9} " + " ".join(cells))
    lines += ["", "training wall time per deployment, s (mean over seeds); twin steps where selected"]
    lines.append(f"{'deployments':>11} {'':>9} " + " ".join(f"{SHORT[m]:>26}" for m in methods))
    for r in result["per_deployment"][1:]:
        cells = []
        for m in methods:
            c = r[m]
            t = "-" if c["train_s"]["mean"] is None else f"{c['train_s']['mean']:.0f} s"
            if c.get("twin_steps", {}).get("mean") is not None:
                t += f", {c['twin_steps']['mean']:.0f} twin steps"
            cells.append(t.rjust(26))
        lines.append(f"{r['deployments']:>11} {'':>9} " + " ".join(cells))
    return "\n".join(lines)
