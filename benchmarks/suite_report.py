"""Issue 16's suite report: the four robots' reproduction results in one figure, one markdown
table per robot, and a plain verdict per robot against the targets.

Reads the JSON files that ``benchmarks/reproduce.py`` writes (one per robot, all methods in it,
e.g. ``benchmarks/results/halfcheetah-cpu.json``) and never re-runs anything::

    python benchmarks/suite_report.py benchmarks/results/{halfcheetah,hopper,walker2d,ant}-cpu.json \\
        --figure benchmarks/results/suite-cpu.png --markdown benchmarks/results/suite-cpu.md

The targets (issue 16), all on the candidate proposed after each deployment:

* no regression: on every seed, no candidate's return is more than 10 % below its
  predecessor's (deployment 1's predecessor is the random policy); 10 % of the larger of the
  predecessor's and the random policy's return magnitude (``allowed_floor``);
* HalfCheetah >= 4,000 after 5 deployments with selection (mean of 3 seeds);
* BREMEN with selection >= recursive TD3+BC at every deployment (means across seeds).

A check that lacks data says "undecided" and why, never "met".
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from reproduce_common import METHODS, SHORT, draw_method_curves  # noqa: E402
from reproduce_td3bc import BREMEN_TRAINED, bremen_seconds, flushed_seconds  # noqa: E402

REGRESSION_TOLERANCE = 0.10  # a candidate may lose at most 10 % of its predecessor's return
HALFCHEETAH_TARGET = 4000.0
HALFCHEETAH_TARGET_DEPLOYMENTS = 5
SELECT, TD3BC = "bremen_select", "td3bc"
SUITE_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Regression:
    """One candidate that fell more than the tolerance below its predecessor."""

    method: str
    seed: str
    deployment: int
    before: float
    after: float

    def __str__(self) -> str:
        return (
            f"{SHORT[self.method]} seed {self.seed}: deployment {self.deployment} "
            f"{self.after:,.0f} after {self.before:,.0f}"
        )


def allowed_floor(before: float, random: float, tolerance: float = REGRESSION_TOLERANCE) -> float:
    """Lowest return that is not a regression after ``before``: ``tolerance`` of the larger of
    |before| and |random| (the seed's random-policy return). Measured from magnitudes so that a
    negative predecessor (a random HalfCheetah scores about -280) is handled the same way, and
    at least the random policy's scale so that a policy stuck near zero return (recursive BC on
    HalfCheetah scores -1 to -2) does not count 1.4 -> 1.8 below zero as a 30 % regression."""
    return before - tolerance * max(abs(before), abs(random))


def regressions(
    result: dict[str, Any], method: str, tolerance: float = REGRESSION_TOLERANCE
) -> list[Regression]:
    """Every (seed, deployment) of ``method`` whose candidate fell below ``allowed_floor`` of the
    candidate before it. A pair with a missing side (a deployment not run or not evaluated) is
    skipped; a gap never hides a drop between two later deployments."""
    found = []
    for seed, curve in result["methods"].get(method, {}).get("seeds", {}).items():
        returns = curve.get("returns", [])
        for k in range(1, len(returns)):
            before, after = returns[k - 1], returns[k]
            if before is None or after is None:
                continue
            if after < allowed_floor(before, returns[0], tolerance):
                found.append(Regression(method, seed, k, float(before), float(after)))
    return found


def _mean(result: dict[str, Any], method: str, k: int) -> tuple[float | None, int]:
    rows = result["per_deployment"]
    if k >= len(rows) or method not in rows[k]:
        return None, 0
    cell = rows[k][method]
    return cell["mean"], int(cell["n_seeds"])


def verdict(result: dict[str, Any], seeds_needed: int = 3) -> list[str]:
    """Plain-language lines, one per target, for one robot's result."""
    lines = []
    K = int(result["deployments"])
    methods = list(result["methods"])
    complete = {
        m: sum(1 for c in result["methods"][m]["seeds"].values() if c.get("complete")) for m in methods
    }
    for m in methods:
        found = regressions(result, m)
        done = f"{complete[m]} of {len(result['methods'][m]['seeds'])} seeds complete"
        if found:
            lines.append(f"no regression ({SHORT[m]}): NOT met ({done}): " + "; ".join(map(str, found)))
        elif complete[m] >= seeds_needed:
            lines.append(f"no regression ({SHORT[m]}): met on every seed ({done})")
        else:
            lines.append(f"no regression ({SHORT[m]}): none so far, undecided ({done})")
    if result["task"] == "halfcheetah" and SELECT in methods:
        mean, n = _mean(result, SELECT, HALFCHEETAH_TARGET_DEPLOYMENTS)
        if mean is None or n < seeds_needed:
            lines.append(
                f"HalfCheetah >= {HALFCHEETAH_TARGET:,.0f} after {HALFCHEETAH_TARGET_DEPLOYMENTS} "
                f"deployments with selection: undecided ({n} seeds reached deployment "
                f"{HALFCHEETAH_TARGET_DEPLOYMENTS})"
            )
        else:
            met = "met" if mean >= HALFCHEETAH_TARGET else "NOT met"
            lines.append(
                f"HalfCheetah >= {HALFCHEETAH_TARGET:,.0f} after {HALFCHEETAH_TARGET_DEPLOYMENTS} "
                f"deployments with selection: {met} ({mean:,.0f}, {n} seeds)"
            )
    if SELECT in methods and TD3BC in methods:
        behind, compared = [], 0
        for k in range(1, K + 1):
            a, na = _mean(result, SELECT, k)
            b, nb = _mean(result, TD3BC, k)
            if a is None or b is None or min(na, nb) < seeds_needed:
                continue
            compared += 1
            if a < b:
                behind.append(f"deployment {k}: {a:,.0f} < {b:,.0f}")
        if behind:
            lines.append("selection >= TD3+BC at every deployment: NOT met: " + "; ".join(behind))
        elif compared == K:
            lines.append("selection >= TD3+BC at every deployment: met")
        else:
            lines.append(f"selection >= TD3+BC at every deployment: undecided ({compared} of {K} compared)")
    if "bremen" in methods and TD3BC in methods:
        lines.append(budget_line(result))
    return lines


def budget_line(result: dict[str, Any]) -> str:
    """Whether TD3+BC trained at least BREMEN's time at each deployment (issue 16's fair budget):
    its mean seconds across seeds against the budget the harness gives it
    (:func:`reproduce_td3bc.bremen_seconds`: the longest BREMEN or selection training with
    subnormals flushed, else BREMEN's mean); deployments where TD3+BC has no time are not
    compared."""
    reference, why = bremen_seconds(result, int(result["deployments"]))
    if reference is None:
        return f"TD3+BC's training time >= BREMEN's: undecided ({why})"
    short, compared = [], 0
    for row in result["per_deployment"][1:]:
        mine = row.get(TD3BC, {}).get("train_s", {}).get("mean")
        if mine is None:
            continue
        theirs = reference[row["deployments"] - 1]
        compared += 1
        if mine < theirs:
            short.append(f"deployment {row['deployments']}: {mine:,.0f} s < {theirs:,.0f} s")
    if short:
        return "TD3+BC's training time >= BREMEN's: NOT at " + "; ".join(short)
    if not compared:
        return "TD3+BC's training time >= BREMEN's: undecided (no deployment with both times)"
    return f"TD3+BC's training time >= BREMEN's: at every deployment compared ({compared})"


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
    for m in METHODS:
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
                f"--seeds {' '.join(map(str, todo))} --methods {m} --jobs 1"
            )
            if m == TD3BC and not bremen_done:  # reproduce.py refuses it until then
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


def markdown_table(result: dict[str, Any], parked: Path | None = None, runs: Path | None = None) -> str:
    """Mean ± std across seeds per deployment, per-seed values and training wall time, the
    verdict, and what is still to run (``parked``, ``runs``: see :func:`unfinished`)."""
    methods = list(result["methods"])
    head = (
        "| deployments | samples | " + " | ".join(f"{SHORT[m]} (per seed; train s)" for m in methods) + " |"
    )
    lines = [
        f"### {result['task']} (`{result['campaign']}`, {result['deployments']} x "
        f"{result['steps_per_deployment']:,} samples, seeds {result['seeds']})",
        "",
        head,
        "|" + "---|" * (2 + len(methods)),
    ]
    for row in result["per_deployment"]:
        cells = []
        for m in methods:
            c = row[m]
            if c["mean"] is None:
                cells.append("-")
                continue
            per_seed = " / ".join(f"{v:,.0f}" for v in c["per_seed"])
            secs = c.get("train_s", {}).get("mean")  # results before 2026-12-04 lack it
            cells.append(
                f"{c['mean']:,.0f} ± {c['std']:,.0f} ({per_seed}"
                + ("" if secs is None else f"; {secs:,.0f} s")
                + ")"
            )
        k = "0 (random)" if row["deployments"] == 0 else str(row["deployments"])
        lines.append(f"| {k} | {row['samples']:,} | " + " | ".join(cells) + " |")
    lines += ["", "Verdict:", *(f"- {v}" for v in verdict(result))]
    differ = [
        f"{SHORT[m]} seed {seed}: went on after a session with re-collected data that differ from the "
        f"original ({', '.join(rec['recollected_differ'])}; another CPU, benchmarks/park_runs.py)"
        for m, entry in result["methods"].items()
        for seed, rec in entry["seeds"].items()
        if rec.get("recollected_differ")
    ]
    if differ:
        lines += ["", "Notes:", *(f"- {v}" for v in differ)]
    left = remaining(result, parked=parked, runs=runs)
    if left:
        lines += ["", "Still to run:", *(_item(v) for v in left)]
        lines.append(f"- {training_left(result, parked=parked, runs=runs).line()}")
    return "\n".join(lines)


def _item(line: str) -> str:
    """A markdown list item; a command in code style, the note after it (`` (...)``) as text."""
    if not line.startswith("python "):
        return f"- {line}"
    command, sep, note = line.partition(" (")
    return f"- `{command}`" + (f" ({note}" if sep else "")


def figure(results: list[dict[str, Any]], path: Path) -> Path:
    """One panel per robot: mean ± std across seeds against deployments, every method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
    for ax, result in zip(axes[0], results):
        draw_method_curves(ax, result)
        ax.set_title(f"{result['task']} ({result['campaign']})", fontsize=9)
        ax.set_xlabel("deployments")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("evaluation return (mean action)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def not_measured(path: Path) -> str:
    """The section of a robot whose results file does not exist yet (named ``<campaign>.json``)."""
    methods = " ".join(METHODS)
    return "\n".join(
        [
            f"### `{path.stem}`: no results yet ({path} does not exist)",
            "",
            "Still to run:",
            f"- `python benchmarks/reproduce.py --campaign {path.stem} --seeds "
            f"{' '.join(map(str, SUITE_SEEDS))} --methods {methods} --jobs 2`",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="result JSON files of benchmarks/reproduce.py")
    p.add_argument("--figure", type=Path, help="write the one-figure-per-suite PNG here")
    p.add_argument("--markdown", type=Path, help="write the tables and verdicts here as markdown")
    p.add_argument(
        "--parked", type=Path, default=HERE / "parked", help="parked runs (benchmarks/park_runs.py)"
    )
    p.add_argument(
        "--runs",
        type=Path,
        default=HERE / "runs",
        help="the harness's workspaces on this machine (a run there resumes from where it is)",
    )
    args = p.parse_args(argv)
    results, sections = [], []
    total = TrainingLeft()
    for path in args.results:
        if not path.exists():  # a robot not measured yet: said, not an error
            sections.append(not_measured(path))
            total.unmeasured.append(path.stem)
            continue
        try:
            results.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read a reproduce.py result ({exc}); run benchmarks/reproduce.py first")
            return 2
        sections.append(markdown_table(results[-1], args.parked, args.runs))
        total.add(training_left(results[-1], parked=args.parked, runs=args.runs))
    if total.seconds or total.unknown or total.unmeasured:
        sections.append(f"The whole suite: {total.line()}.")
    text = "\n\n".join(sections)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    if args.figure and results:
        print(f"figure: {figure(results, args.figure)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
