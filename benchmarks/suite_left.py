"""What issue 16's suite still has to run, and about how long its training takes: the
"Still to run" part of ``benchmarks/suite_report.py``.

A (method, seed) is unfinished until its record in the robot's results file is complete. It
resumes from a workspace on this machine (``benchmarks/runs``) or from a parked copy
(``benchmarks/parked``, ``park_runs.py``); without either it starts over. The time left is the
sum of the measured training seconds per deployment it still has to train.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from reproduce_common import METHODS, SHORT, td3bc_steps_for  # noqa: E402
from reproduce_td3bc import BREMEN_TRAINED, bremen_seconds, flushed_seconds  # noqa: E402

SELECT, TD3BC = "bremen_select", "td3bc"
SUITE_SEEDS = (0, 1, 2)


def is_variant(result: dict[str, Any]) -> bool:
    """Whether a results file is not a robot's own suite file: made under another ``--name``, or
    with overrides (``smoke``; reproduce.py names those ``<campaign>-smoke`` unless told)."""
    return bool(result.get("name", result["campaign"]) != result["campaign"] or result.get("smoke"))


def suite_methods(result: dict[str, Any]) -> list[str]:
    """The methods a results file is expected to hold: all four in a robot's own file, only those
    it was run with in a variant (:func:`is_variant`; e.g. ``ant-cpu-select-earliest``, selection
    alone), which never runs the others."""
    if not is_variant(result):
        return list(METHODS)
    return [m for m in METHODS if m in result["methods"]]


def override_value(value: Any) -> str:
    """``value`` as ``--train-override KEY=VALUE`` needs it: YAML that reads back as ``value``
    (reproduce_common.parse_overrides reads it with yaml.safe_load): the string 'true' quoted,
    1e-05 as 1.0e-05, None as null."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31).strip()
    return text.removesuffix("...").strip()  # a plain scalar's document end marker


def run_flags(result: dict[str, Any]) -> str:
    """The ``reproduce.py`` flags, besides campaign, seeds, methods and jobs, that made this
    results file (a variant's ``--name`` and the overrides it records), so that the command the
    report prints resumes the same runs; empty for a robot's own file run at its preset."""
    flags = []
    if is_variant(result):
        flags.append(f"--name {shlex.quote(result.get('name', result['campaign']))}")
    o = result.get("overrides", {})
    for key in ("deployments", "steps_per_deployment", "eval_episodes"):
        if o.get(key) is not None:
            flags.append(f"--{key.replace('_', '-')} {o[key]}")
    for key, flag in (("train", "--train-override"), ("campaign", "--campaign-override")):
        if o.get(key):
            pairs = (f"{k}={override_value(v)}" for k, v in o[key].items())
            flags.append(flag + "".join(f" {shlex.quote(p)}" for p in pairs))
    steps = o.get("td3bc_steps")
    if TD3BC in result["methods"] and steps is not None and steps != td3bc_steps_for(result["campaign"]):
        flags.append(f"--td3bc-steps {steps}")
    # run with --td3bc-seconds none (a smoke run, a budget by steps): its record says so with a
    # None budget. Without the flag reproduce.py refuses the command (or, once BREMEN's seeds
    # are complete, runs the seeds with another budget than the file's); a file from before the
    # budget existed has no such key and resumes with the default
    if td3bc_by_steps(result):
        flags.append("--td3bc-seconds none")
    elif o.get("td3bc_seconds_from"):  # a named rerun's own times (reproduce.py --td3bc-seconds-from)
        flags.append(f"--td3bc-seconds-from {shlex.quote(o['td3bc_seconds_from'])}")
    return "".join(f" {f}" for f in flags)


def td3bc_by_steps(result: dict[str, Any]) -> bool:
    """Whether the file's TD3+BC ran with ``--td3bc-seconds none``: its training summary holds
    a budget of None (a file from before the budget existed holds no budget at all)."""
    train = result["methods"].get(TD3BC, {}).get("train") or {}
    return "min_seconds" in train and train["min_seconds"] is None


def parked_deployments(parked: Path | None, name: str, method: str, seed: int) -> int | None:
    """Deployments done in the parked copy of a run (``benchmarks/park_runs.py``), None if none."""
    import re
    import tarfile

    archive = None if parked is None else parked / name / method / f"seed{seed}.tar.gz"
    if archive is None or not archive.is_file():
        return None
    with tarfile.open(archive, mode="r:gz") as tar:
        return sum(1 for n in tar.getnames() if re.fullmatch(r"d\d+/eval\.json", n))


def workspace_deployments(runs: Path | None, name: str, method: str, seed: int) -> int | None:
    """Deployments evaluated, in order from the first, in a workspace of this machine's
    ``runs`` folder (the harness's ``benchmarks/runs``), None when there is no such workspace."""
    ws = None if runs is None else runs / name / method / f"seed{seed}"
    if ws is None or not ws.is_dir():
        return None
    k = 0
    while (ws / f"d{k + 1}" / "eval.json").is_file():
        k += 1
    return k


@dataclass(frozen=True)
class Unfinished:
    """One (method, seed) the suite still needs, and the deployment it resumes after."""

    method: str
    seed: int
    state: str  # what the report says about it
    resumes_after: int  # deployments it keeps (a parked copy's); 0 starts it over


def unfinished(
    result: dict[str, Any],
    seeds: tuple[int, ...] = SUITE_SEEDS,
    parked: Path | None = None,
    runs: Path | None = None,
) -> list[Unfinished]:
    """Each (method, seed) of this robot that is not complete. A seed with a parked copy
    (``parked``, the folder ``park_runs.py`` writes) resumes from it after ``unpark``; a partial
    record without one is a seed whose workspace was lost with a session (benchmarks/runs/ is
    scratch), and it starts again from deployment 1. A workspace in ``runs`` (this machine's,
    in progress or unparked) resumes from where it is and comes before a parked copy."""
    K = int(result["deployments"])
    out = []
    for m in suite_methods(result):
        records = result["methods"].get(m, {}).get("seeds", {})
        for s in seeds:
            if records.get(str(s), {}).get("complete"):
                continue
            done = len(records.get(str(s), {}).get("returns", [])) - 1  # k = 0 is the random policy
            name = result.get("name", result["campaign"])
            here = workspace_deployments(runs, name, m, s)
            at = parked_deployments(parked, name, m, s)
            if here is not None:
                state = f"{here} of {K} deployments in its workspace here (benchmarks/runs): "
                state += "the command resumes it"
                at = here
            elif at is not None:
                state = f"parked after {at} of {K} deployments: unpark it, then the command resumes it"
            elif done < 1:
                state = "not run"
            else:
                state = f"{done} of {K} deployments recorded, reruns from deployment 1"
            out.append(Unfinished(m, s, state, at or 0))
    return out


def remaining(
    result: dict[str, Any],
    seeds: tuple[int, ...] = SUITE_SEEDS,
    parked: Path | None = None,
    runs: Path | None = None,
) -> list[str]:
    """What the suite still needs for this robot: one line per (method, seed) that is not
    complete (:func:`unfinished`), then the commands that run them (one per method)."""
    left = unfinished(result, seeds, parked, runs)
    commands = []
    bremen_done = not any(u.method in ("bremen", SELECT) for u in left)
    for m in METHODS:
        todo = [u.seed for u in left if u.method == m]
        if todo:
            commands.append(
                f"python benchmarks/reproduce.py --campaign {result['campaign']} "
                f"--seeds {' '.join(map(str, todo))} --methods {m} --jobs 1{run_flags(result)}"
            )
            if m == TD3BC and not bremen_done and not td3bc_by_steps(result):  # refused until then
                commands[-1] += (
                    " (once BREMEN's and selection's seeds are complete: their training time is its budget)"
                )
    return [f"{SHORT[u.method]} seed {u.seed}: {u.state}" for u in left] + commands


# A method with no training time of its own on a robot yet is estimated from BREMEN's: selection
# trains BREMEN and then scores snapshots, and TD3+BC is given at least BREMEN's wall time.
STAND_IN = {SELECT: "bremen", TD3BC: "bremen"}


def seconds_per_deployment(result: dict[str, Any], method: str, k: int) -> tuple[float | None, str]:
    """Training seconds of ``method`` at deployment ``k`` on this robot, and the method they were
    measured on (``method`` itself, else its :data:`STAND_IN`); ``(None, "")`` if neither has a
    measured time there. Times trained with subnormals flushed (``train_flushed``, since
    2026-12-06) come first, as their mean; times from before were 10-20x inflated and count only
    where there is nothing newer."""
    rows = [r for r in result["per_deployment"] if r["deployments"] == k]

    def measured(source: str) -> float | None:
        secs = rows[0].get(source, {}).get("train_s", {}).get("mean") if rows else None
        return None if secs is None else float(secs)

    if method == TD3BC and (budgeted := td3bc_seconds(result, k)) is not None:
        return budgeted
    sources = [m for m in (method, STAND_IN.get(method)) if m is not None]
    for source in sources:
        flushed = flushed_seconds(result.get("methods", {}).get(source, {}).get("seeds", {}), k)
        if flushed:
            return sum(flushed) / len(flushed), source
        if source not in BREMEN_TRAINED and (own := measured(source)) is not None:
            return own, source  # TD3+BC's and BC's own times never had the trainer's defect
    for source in sources:
        if (secs := measured(source)) is not None:
            return secs, source
    return None, ""


BUDGET = "budget"  # a seconds_per_deployment source: TD3+BC's time budget (reproduce_td3bc)
BUDGET_ONLY = "budget, floor untimed"  # ... where TD3+BC has no time at all, so its step floor none


def td3bc_seconds(result: dict[str, Any], k: int) -> tuple[float, str] | None:
    """TD3+BC's training seconds at deployment ``k`` once the harness has fixed its budget
    (BREMEN's and selection's seeds complete): its own mean where it trained ``k``, else the
    budget there (:func:`reproduce_td3bc.bremen_seconds`), but no less than the least time its
    step floor took at any deployment (the floor's steps take about as long each time; with no
    time of its own yet, the budget alone, a lower bound); None while the budget is not fixed."""
    budget, _ = bremen_seconds(result, int(result["deployments"]))
    if budget is None:
        return None
    own = {
        row["deployments"]: float(secs)
        for row in result["per_deployment"]
        if row["deployments"] >= 1 and (secs := row.get(TD3BC, {}).get("train_s", {}).get("mean")) is not None
    }
    if k in own:
        return own[k], TD3BC
    if not own:
        return budget[k - 1], BUDGET_ONLY
    return max(budget[k - 1], min(own.values())), BUDGET


@dataclass
class TrainingLeft:
    """Training time the unfinished runs still need, from the measured seconds per deployment."""

    seconds: float = 0.0
    stand_ins: set[str] = field(default_factory=set)  # methods estimated from BREMEN's times
    budgeted: bool = False  # TD3+BC estimated from its time budget somewhere
    floor_untimed: list[str] = field(default_factory=list)  # campaigns where that is a lower bound
    unknown: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # campaign -> method -> seeds
    unmeasured: list[str] = field(default_factory=list)  # campaigns without a results file

    def add(self, other: TrainingLeft) -> None:
        self.seconds += other.seconds
        self.stand_ins |= other.stand_ins
        self.budgeted |= other.budgeted
        self.floor_untimed += other.floor_untimed
        for campaign, methods in other.unknown.items():
            for method, seeds in methods.items():
                self.unknown.setdefault(campaign, {}).setdefault(method, []).extend(seeds)
        self.unmeasured += other.unmeasured

    def line(self) -> str:
        """One line for the report."""
        if self.seconds == 0 and (self.unknown or self.unmeasured):
            text = "training time left: no estimate"
        else:
            text = (
                f"about {self.seconds / 3600:.1f} core-hours of training left "
                f"(about {self.seconds / 3600 / 2:.1f} h with one run per core on 2 cores; "
                "collection, evaluation and twin runs come on top)"
            )
        if self.stand_ins:
            names = ", ".join(SHORT[m] for m in METHODS if m in self.stand_ins)
            text += f"; {names} estimated from BREMEN's times where it has none of its own"
        if self.budgeted:
            text += (
                "; recursive TD3+BC estimated from its time budget where it has no time of its own "
                "(BREMEN's and selection's, or the least its step floor took)"
            )
        for campaign in self.floor_untimed:
            text += (
                f"; on `{campaign}` only a lower bound for recursive TD3+BC: its step floor has no time "
                "there yet and may take longer than the budget"
            )
        for campaign, methods in self.unknown.items():
            which = "; ".join(
                f"{SHORT[m]} seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
                for m, seeds in methods.items()
            )
            text += f"; not estimated on `{campaign}` (no measured time): {which}"
        for campaign in self.unmeasured:
            text += f"; not estimated: everything on `{campaign}` (no results yet)"
        return text


def training_left(
    result: dict[str, Any],
    seeds: tuple[int, ...] = SUITE_SEEDS,
    parked: Path | None = None,
    runs: Path | None = None,
) -> TrainingLeft:
    """Sum, over each unfinished (method, seed) and each deployment it has still to train, of
    that deployment's mean training seconds on this robot (:func:`seconds_per_deployment`)."""
    left = TrainingLeft()
    for u in unfinished(result, seeds, parked, runs):
        per_k = [
            seconds_per_deployment(result, u.method, k)
            for k in range(u.resumes_after + 1, int(result["deployments"]) + 1)
        ]
        if any(secs is None for secs, _ in per_k):
            left.unknown.setdefault(result["campaign"], {}).setdefault(u.method, []).append(u.seed)
            continue
        left.seconds += sum(secs for secs, _ in per_k if secs is not None)
        if any(source in (BUDGET, BUDGET_ONLY) for _, source in per_k):
            left.budgeted = True
        if any(source == BUDGET_ONLY for _, source in per_k) and result["campaign"] not in left.floor_untimed:
            left.floor_untimed.append(result["campaign"])
        if any(source not in (u.method, BUDGET, BUDGET_ONLY) for _, source in per_k):
            left.stand_ins.add(u.method)
    return left
