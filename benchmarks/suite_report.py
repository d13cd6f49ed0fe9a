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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from reproduce_common import METHODS, SHORT, draw_method_curves  # noqa: E402
from reproduce_td3bc import bremen_seconds  # noqa: E402
from suite_left import (  # noqa: E402
    SELECT,
    SUITE_SEEDS,
    TD3BC,
    TrainingLeft,
    remaining,
    training_left,
)

RESULT_KEYS = ("campaign", "deployments", "methods", "per_deployment")  # what every results file holds
REGRESSION_TOLERANCE = 0.10  # a candidate may lose at most 10 % of its predecessor's return
HALFCHEETAH_TARGET = 4000.0
HALFCHEETAH_TARGET_DEPLOYMENTS = 5


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
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read a reproduce.py result ({exc}); run benchmarks/reproduce.py first")
            return 2
        if not (isinstance(result, dict) and all(k in result for k in RESULT_KEYS)):
            # e.g. a selection study's or twin-episodes JSON beside them in benchmarks/results/
            print(
                f"{path}: not a results file of benchmarks/reproduce.py (no {', '.join(RESULT_KEYS)}); "
                "pass benchmarks/results/<campaign>.json files"
            )
            return 2
        results.append(result)
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
