"""Does the twin's worst episode predict a flip in the true environment? (issue 16)

A flip (the cheetah on its back) shows up as one very low episode among normal ones, so a twin
scored by its *worst* episode instead of its mean looked like the next selection rule to try
(docs/results.md, "Next to try"). This probe replays every twin decision of a finished
``bremen_select`` run with more twin episodes: for deployment k it runs the deployed policy (the
one that collected ``d<k>``) and the snapshot the campaign proposed, each for ``--episodes``
episodes in the campaign's own twin (engine, default randomization, twin seed), and sets them
beside the true returns the campaign measured (``d<k-1>/eval.json``, ``d<k>/eval.json``).

Measures, never tests: a printed table and a JSON file, which is also the cache (a re-run
evaluates only what is missing).

    python benchmarks/twin_episodes.py \
        --run benchmarks/runs/halfcheetah-cpu-select-shift/bremen_select --seeds 0 1 2 \
        --deployments 2 3 4 5 --episodes 10 --out benchmarks/results/twin-episodes-halfcheetah.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.reproduce_common import stored_campaign  # noqa: E402
from benchmarks.selection_study import REGRESSION, load, run_arguments, save  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = run_arguments(__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=10, help="twin episodes per policy (the campaign ran 3)")
    return p.parse_args(argv)


def deployed_artifact(ws: Path, k: int) -> Path:
    """The artifact that collected ``d<k>`` (its registry id is a prefix of the folder's name)."""
    pid = str(load(ws / f"d{k}" / "collect.json")["policy_id"])
    found = sorted(p for p in (ws / "artifacts").iterdir() if p.name.startswith(pid))
    if len(found) != 1:
        raise SystemExit(f"twin_episodes: policy {pid} of {ws}/d{k} is not one artifact in {ws}/artifacts")
    return found[0]


def twin_returns(artifact: Path, campaign: dict[str, Any], k: int, episodes: int) -> list[float]:
    """The campaign's twin (bremen_robot.campaign.selection), with ``episodes`` episodes."""
    from bremen_robot.campaign.config import CampaignConfig, data_engine
    from bremen_robot.campaign.seeds import twin_seed
    from bremen_robot.campaign.selection import _act, _randomization
    from bremen_robot.selection import twin_engine
    from sim.sim2real import evaluate

    cfg = CampaignConfig.model_validate(stored_campaign(campaign))
    engine = twin_engine(data_engine(cfg), cfg.selection.twin_engine)
    seed = twin_seed(cfg.seed, k, cfg.seed_layout)
    task = str(load(artifact / "manifest.json")["task"])
    res = evaluate(
        _act(artifact, task, seed), task, task, engine, episodes, seed, _randomization(cfg), label="twin"
    )
    return [float(r) for r in res.returns]


def study(run: Path, seed: int, k: int, episodes: int, cache: dict[str, Any]) -> dict[str, Any]:
    ws = run / f"seed{seed}"
    sel = load(ws / f"d{k}" / "selection.json")
    case = cache.setdefault(f"seed{seed}/d{k}", {})
    true_before = float(load(ws / f"d{k - 1}" / "eval.json")["mean"])
    true_after = float(load(ws / f"d{k}" / "eval.json")["mean"])
    case.update(
        proposed=sel["proposed"] or "keep deployed", true_deployed=true_before, true_proposed=true_after
    )
    case["regresses"] = true_after < true_before - REGRESSION * abs(true_before)
    camp = load(ws / "harness.json")["campaign"]
    policies = {"deployed": deployed_artifact(ws, k)}
    if sel["proposed"]:
        policies["proposed"] = ws / f"d{k}" / "train" / "snapshots" / sel["proposed"]
    for role, art in policies.items():
        if len(case.get(f"twin_{role}", [])) != episodes:
            case[f"twin_{role}"] = twin_returns(art, camp, k, episodes)
    return case


def row(key: str, c: dict[str, Any]) -> str:
    def stats(xs: list[float] | None) -> str:
        return "-" if not xs else f"mean {np.mean(xs):7.0f} worst {min(xs):7.0f}"

    return (
        f"{key:10} {c['proposed']:14} true {c['true_deployed']:6.0f} -> {c['true_proposed']:6.0f}"
        f"{' REGRESSES' if c['regresses'] else '          '}  twin deployed {stats(c.get('twin_deployed'))}"
        f"  proposed {stats(c.get('twin_proposed'))}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cache = load(args.out)
    cache["command"] = "python benchmarks/twin_episodes.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    cases = cache.setdefault("cases", {})
    for seed in args.seeds:
        for k in args.deployments:
            c = study(args.run, seed, k, args.episodes, cases)
            save(args.out, cache)
            print(row(f"seed{seed}/d{k}", c), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
