"""Would a minimum improvement (``selection.margin``) have changed a finished campaign's decisions?

A margin never makes the campaign propose another snapshot: it only turns a proposal whose
offline lower bound beats the deployed policy's by less than ``margin`` x its magnitude into
"keep collecting with the deployed policy". (The snapshots the twin runs are those that beat the
deployed policy by the margin, each with the same episodes whatever else runs, and the proposal
is the best of those the twin passes: if the recorded proposal clears the margin, it stays the
proposal.) So the replay is exact for every decision up to a campaign's first changed one, and
needs no new evaluation: a changed decision's true return is the deployed policy's, already
measured (``d<k-1>/eval.json``). Later decisions of that campaign would see other data and are
not replayed.

That holds only for campaigns that keep the deployed policy when nothing beats it
(``selection.when_none_beats: keep_deployed``, read from the workspace's ``harness.json``) and
for a margin at least the one the run used (``selection.json``'s ``margin``; 0 before it was
recorded): under ``propose_best_with_warning`` a larger margin proposes the offline best with a
warning, possibly a snapshot the twin had vetoed, and a smaller margin would let through
snapshots the twin never ran. Such runs are refused, with the reason.

Measures, never tests: prints one row per changed decision and a count, and can write JSON.

    python benchmarks/margin_replay.py --margin 0.05 --runs \
        benchmarks/runs/halfcheetah-cpu-select-shift/bremen_select \
        benchmarks/runs/hopper-cpu/bremen_select
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

REGRESSION = 0.10  # docs/results.md: a candidate may lose at most 10 % of its predecessor's return


def read(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text())) if path.is_file() else None


def clears(estimate: float, deployed: float, margin: float) -> bool:
    """The rule of bremen_robot.selection.beats, restated here so that the replay does not
    depend on the code it judges."""
    return estimate > deployed + margin * abs(deployed)


def replay_seed(ws: Path, margin: float) -> list[dict[str, Any]]:
    """One row per recorded decision with a deployed policy to beat (deployment 2 on), up to and
    including the first that ``margin`` changes. SystemExit (one line) for a run the replay
    cannot answer exactly (module docstring)."""
    harness = read(ws / "harness.json") or {}
    keep = harness.get("campaign", {}).get("selection", {}).get("when_none_beats", "keep_deployed")
    if keep != "keep_deployed":
        raise SystemExit(f"{ws}: when_none_beats is '{keep}'; the replay is exact only for keep_deployed")
    rows: list[dict[str, Any]] = []
    k = 2
    while (sel := read(ws / f"d{k}" / "selection.json")) and (ev := read(ws / f"d{k}" / "eval.json")):
        before = read(ws / f"d{k - 1}" / "eval.json")
        if before is None:
            break
        if sel.get("pick", "best") != "best":  # a margin can move the earliest winner to a later snapshot
            raise SystemExit(
                f"{ws}: deployment {k} chose with selection.pick '{sel['pick']}'; the replay is exact only "
                "for pick 'best', where a margin can only turn a proposal into keeping the deployed policy"
            )
        used = float(sel.get("margin") or 0.0)
        if margin < used:
            raise SystemExit(f"{ws}: deployment {k} ran with margin {used:g}; replay {used:g} or more")
        row: dict[str, Any] = {"deployment": k, "before": before["mean"], "recorded": ev["mean"]}
        if sel["keep_deployed"] or sel["deployed_estimate"] is None:
            rows.append(row | {"kind": "kept", "changed": False})
        else:
            est = next(r["offline_estimate"] for r in sel["table"] if r["snapshot"] == sel["proposed"])
            ref = float(sel["deployed_estimate"])
            changed = not clears(est, ref, margin)
            rows.append(
                row
                | {
                    "kind": sel["proposed"],
                    "relative_margin": (est - ref) / abs(ref) if ref else float("inf"),
                    "changed": changed,
                    "with_margin": before["mean"] if changed else ev["mean"],
                }
            )
            if changed:
                break
        k += 1
    return rows


def regressed(after: float, before: float) -> bool:
    return after < before - REGRESSION * abs(before)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="<runs>/<campaign>/bremen_select")
    p.add_argument("--margin", type=float, default=0.05, help="the selection.margin to replay")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    out: dict[str, list[dict[str, Any]]] = {}
    decisions = 0
    for run in args.runs:
        for ws in sorted(run.glob("seed*")):
            rows = replay_seed(ws, args.margin)
            out[str(ws)] = rows
            decisions += len(rows)
            for r in rows:
                if r["changed"]:
                    print(
                        f"{ws}: deployment {r['deployment']} proposed {r['kind']} at "
                        f"{100 * r['relative_margin']:+.1f} %: true {r['before']:.1f} -> {r['recorded']:.1f} "
                        f"(regression: {regressed(r['recorded'], r['before'])}); with the margin it keeps "
                        f"{r['with_margin']:.1f}"
                    )
    changed = sum(r["changed"] for rows in out.values() for r in rows)
    print(f"margin {args.margin}: {changed} of {decisions} replayed decisions change")
    if args.json:
        args.json.write_text(json.dumps({"margin": args.margin, "runs": out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
