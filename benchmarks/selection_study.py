"""Which selection rule would have kept a finished campaign from regressing? (issue 16)

A ``bremen_select`` run keeps every snapshot it scored (``d<k>/train/snapshots/``) and the
campaign's decision (``d<k>/selection.json``: offline lower bound and twin score per snapshot).
This study evaluates each of those snapshots in the true environment (the campaign's own
evaluation: mean action, ``evaluation.episodes`` episodes, the campaign's evaluation seed). It then replays
several selection rules on the same evidence, one deployment at a time (counterfactual: the
data of later deployments stay what the campaign collected), and reports each rule's proposed
snapshot, its true return, and whether it regresses: more than 10 % below the deployed policy's
true return (the predecessor), as in docs/results.md's verdicts.

Measures, never tests: results go to a JSON file and a printed table. Resumable: evaluated
snapshots are cached in the output JSON and not run again.

    python benchmarks/selection_study.py \
        --run benchmarks/runs/halfcheetah-cpu-select/bremen_select --seeds 0 1 2 \
        --deployments 2 3 4 5 --out benchmarks/results/selection-study-halfcheetah.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.reproduce_common import stored_campaign  # noqa: E402
from bremen_robot.campaign.seeds import evaluation_seed  # noqa: E402

REGRESSION = 0.10  # docs/results.md: a candidate may lose at most 10 % of its predecessor's return


def run_arguments(description: str) -> argparse.ArgumentParser:
    """The arguments every study of a finished bremen_select run takes: which run, which
    decisions, and the JSON file that is also its cache."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--run", type=Path, required=True, help="the method's folder: <runs>/<campaign>/bremen_select"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--deployments", type=int, nargs="+", default=[2, 3, 4, 5])
    p.add_argument("--out", type=Path, required=True, help="JSON file (also the cache)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return run_arguments(__doc__.split("\n\n")[0]).parse_args(argv)


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def save(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def true_returns(snapshot: Path, env: str, episodes: int, seed: int) -> list[float]:
    from bremen_robot.campaign.runner import evaluate_policy

    return [float(r) for r in evaluate_policy(snapshot, env, episodes, seed)["returns"]]


def shifts(snapshots: list[Path], obs: np.ndarray, actions: np.ndarray) -> list[float]:
    """Each snapshot's action shift from BC (``snapshots[0]``) in units of the data's own action
    spread, as the trainer measures it (bremen_robot.selection.action_shift); unit action boxes."""
    from bremen_robot.policy.artifact import load_artifact
    from bremen_robot.selection import action_shift

    means = np.stack([load_artifact(p).act(obs) for p in snapshots])  # (S, N, A)
    return [float(x) for x in action_shift(means, actions, np.ones(actions.shape[1]))[0]]


# ------------------------------------------------------------------ rules on one deployment's evidence
Row = dict[str, Any]
Rule = Callable[[list[Row], dict[str, Any]], str | None]


def _passing(rows: list[Row], rec: dict[str, Any]) -> list[Row]:
    """Snapshots that beat the deployed policy offline and that the recorded twin did not veto."""
    from bremen_robot.selection import beats, clearly_below

    twin = rec.get("twin") or {}
    ok = []
    for r in rows:
        if r["twin"] is None or not beats(r["offline_estimate"], rec["deployed_estimate"], rec["margin"]):
            continue
        if twin and clearly_below(r["twin"], twin["deployed"], twin["tolerance"]):
            continue
        ok.append(r)
    return ok


def rule_recorded(rows: list[Row], rec: dict[str, Any]) -> str | None:
    return rec["proposed"]


def rule_best_twin(rows: list[Row], rec: dict[str, Any]) -> str | None:
    ok = _passing(rows, rec)
    return max(ok, key=lambda r: r["twin"])["snapshot"] if ok else None


SHIFT_LIMITS = (0.5, 0.6, 0.7)  # the limits replayed (max_action_shift)


RECORDED = "recorded"  # a shift_rule limit: the run's own max_action_shift


def shift_rule(
    limit: float | str | None, with_twin: bool, pick: Literal["best", "earliest"] = "best"
) -> Rule:
    """The trainer's choice under ``max_action_shift = limit`` (:data:`RECORDED`: the run's own)
    and ``selection.pick = pick`` among eligible snapshots, then, ``with_twin``, the campaign's
    twin veto on the recorded scores; None (keep deployed) when nothing eligible beats the
    deployed policy."""
    from bremen_robot.selection import SnapshotScore, select_offline, select_with_twin

    def rule(rows: list[Row], rec: dict[str, Any]) -> str | None:
        lim = rec.get("max_action_shift") if limit == RECORDED else limit
        assert lim is None or isinstance(lim, float | int)
        scores = [
            SnapshotScore(r["snapshot"], 0, [], r["offline_estimate"], r["twin"], False, r["shift"])
            for r in rows
        ]
        if with_twin and rec.get("twin"):
            tw = rec["twin"]
            idx, _ = select_with_twin(
                scores, rec["deployed_estimate"], tw["deployed"], rec["margin"], tw["tolerance"], lim, pick
            )
            return None if idx is None else rows[idx]["snapshot"]
        best, ok = select_offline(scores, rec["deployed_estimate"], rec["margin"], lim, pick)
        return rows[best]["snapshot"] if ok else None

    return rule


def rule_oracle(rows: list[Row], rec: dict[str, Any]) -> str | None:
    return max(rows, key=lambda r: r["true"])["snapshot"]


RULES: dict[str, Rule] = {
    "recorded": rule_recorded,
    # selection.pick: earliest (the trainer's and the campaign's own functions)
    "earliest_passing": shift_rule(RECORDED, True, "earliest"),
    "earliest_offline": shift_rule(RECORDED, False, "earliest"),
    "best_twin_mean": rule_best_twin,
    **{f"shift<={x:g}": shift_rule(x, False) for x in SHIFT_LIMITS},
    **{f"shift<={x:g}+twin": shift_rule(x, True) for x in SHIFT_LIMITS},
    "oracle": rule_oracle,
}


def study_case(
    run: Path, seed: int, k: int, cache: dict[str, Any], flush: Callable[[], None]
) -> dict[str, Any]:
    ws = run / f"seed{seed}"
    harness = load(ws / "harness.json")
    camp = harness["campaign"]
    sel = load(ws / f"d{k}" / "selection.json")
    report = load(ws / f"d{k}" / "train" / "report.json")
    prev = load(ws / f"d{k - 1}" / "eval.json")  # the deployed policy: the candidate proposed after k-1
    # the run's own candidates' evaluation seed: its layout's (a harness.json without the field is sliding)
    layout = stored_campaign(camp)["seed_layout"]
    eval_seed = evaluation_seed(int(camp["seed"]), layout, random_policy=False)
    env, episodes = prev["env"], int(camp["evaluation"]["episodes"])
    key = f"seed{seed}/d{k}"
    case = cache.setdefault(key, {"snapshots": {}})
    snaps = ws / f"d{k}" / "train" / "snapshots"
    rows = []
    if "shifts" not in case:
        data = np.load(ws / f"d{k}" / "data.npz")
        step = max(1, len(data["obs"]) // 2048)  # the trainer's SHIFT_STATES rows, evenly spaced
        names = [row["snapshot"] for row in sel["table"]]
        case["shifts"] = dict(
            zip(
                names,
                shifts(
                    [snaps / n for n in names], data["obs"][::step][:2048], data["actions"][::step][:2048]
                ),
                strict=True,
            )
        )
    for row in sel["table"]:
        name = row["snapshot"]
        got = case["snapshots"].setdefault(name, {})
        if "true" not in got:
            got["true"] = true_returns(snaps / name, env, episodes, eval_seed)
            flush()
        rows.append(
            {
                **row,
                "true": float(np.mean(got["true"])),
                "shift": case["shifts"][name],
            }
        )
    margin = float(report["config"]["selection"]["margin"])
    rec = {**sel, "margin": margin}
    deployed_true = float(prev["mean"])
    picks = {}
    for name, rule in RULES.items():
        pick = rule(rows, rec)
        value = deployed_true if pick is None else next(r["true"] for r in rows if r["snapshot"] == pick)
        floor = deployed_true - REGRESSION * abs(deployed_true)
        picks[name] = {"pick": pick or "keep deployed", "true": value, "regresses": bool(value < floor)}
    # the recorded evidence the rules replay on, kept so the study outlives its workspaces
    evidence = {k: rec.get(k) for k in ("deployed_estimate", "twin", "max_action_shift", "pick")} | {
        "margin": margin
    }
    return {"case": key, "deployed_true": deployed_true, "evidence": evidence, "rows": rows, "picks": picks}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = load(args.out)
    cache = data.setdefault("cache", {})
    data["command"] = "python benchmarks/selection_study.py " + " ".join(sys.argv[1:])

    def flush() -> None:
        save(args.out, data)

    results = [study_case(args.run, s, k, cache, flush) for s in args.seeds for k in args.deployments]
    data["cases"] = [{k: v for k, v in r.items() if k != "rows"} | {"rows": r["rows"]} for r in results]
    totals = {name: sum(r["picks"][name]["regresses"] for r in results) for name in RULES}
    data["regressions"] = totals
    flush()
    print("true return of each rule's proposal (! = more than 10 % below the deployed policy's)")
    print(f"{'rule':<20} " + " ".join(f"{r['case']:>10}" for r in results) + "  regressions  mean")
    print(f"{'deployed':<20} " + " ".join(f"{r['deployed_true']:>10.0f}" for r in results))
    for n in RULES:
        cells = [
            f"{r['picks'][n]['true']:>9.0f}{'!' if r['picks'][n]['regresses'] else ' '}" for r in results
        ]
        mean = np.mean([r["picks"][n]["true"] for r in results])
        print(f"{n:<20} " + " ".join(cells) + f"  {totals[n]:>11}  {mean:>4.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
