"""How much subnormal ensemble weights cost: one saved ensemble re-fitted twice, as the trainer did
before 2026-12-06 and as it does now (a measurement, not a test; docs/performance.md).

Loads ``<workspace>/d<k>/train/ensemble.pt``, counts its subnormal weights, and re-fits a copy
for ``--epochs`` epochs on ``d<k>/data.npz`` (one torch thread, the settings that deployment trained with)
first with subnormals left alone, then with :func:`flush_denormals` and the per-epoch cleaning.
Prints both times, their ratio and the holdout MSE of each, which should agree::

    python benchmarks/subnormal_probe.py benchmarks/runs/ant-cpu/bremen/seed0 --deployment 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import bremen_robot.models.ensemble_fit as ensemble_fit
from bremen_robot.config.train import TrainConfig
from bremen_robot.data.dataset import Dataset
from bremen_robot.models.subnormal import flush_denormals, zero_subnormal_
from bremen_robot.trainer import load_ensemble


def refit(path: Path, data: Dataset, cfg: TrainConfig, epochs: int, fixed: bool) -> tuple[float, list[float]]:
    """Seconds of ``epochs`` epochs re-fitting the ensemble at ``path``, and the last holdout MSE."""
    model = load_ensemble(path, torch.device("cpu"))
    ecfg = cfg.ensemble.model_copy(update={"max_epochs": epochs, "patience": epochs + 1})
    train, holdout = data.split_by_episode(cfg.ensemble.holdout_fraction)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    if fixed:
        with flush_denormals():
            hist = ensemble_fit.fit_ensemble(model, train, holdout, ecfg, gen)
    else:
        keep = ensemble_fit.zero_subnormal_
        ensemble_fit.zero_subnormal_ = lambda tensors: 0  # the trainer before 2026-12-06
        try:
            hist = ensemble_fit.fit_ensemble(model, train, holdout, ecfg, gen)
        finally:
            ensemble_fit.zero_subnormal_ = keep
    return time.perf_counter() - t0, hist.holdout_mse[-1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "workspace", type=Path, help="a campaign workspace (benchmarks/runs/<campaign>/<method>/seed<s>)"
    )
    p.add_argument("--deployment", type=int, required=True, help="k: re-fit d<k>'s ensemble on d<k>'s data")
    p.add_argument("--epochs", type=int, default=2, help="epochs per re-fit (default 2)")
    args = p.parse_args(argv)
    d = args.workspace / f"d{args.deployment}"
    path, data_path, report = d / "train" / "ensemble.pt", d / "data.npz", d / "train" / "report.json"
    for f in (path, data_path, report):
        if not f.is_file():
            print(
                f"subnormal_probe: '{f}' not found; pick a deployment whose ensemble and data are there",
                file=sys.stderr,
            )
            return 2
    torch.set_num_threads(1)
    cfg = TrainConfig.model_validate(json.loads(report.read_text())["config"])  # the preset it trained with
    weights = list(load_ensemble(path, torch.device("cpu")).parameters())
    count, total = zero_subnormal_([w.detach().clone() for w in weights]), sum(w.numel() for w in weights)
    print(f"{path}: {count:,} of {total:,} weights subnormal ({count / total:.1%})")
    data = Dataset.load(data_path)
    slow, slow_mse = refit(path, data, cfg, args.epochs, fixed=False)
    fast, fast_mse = refit(path, data, cfg, args.epochs, fixed=True)
    for name, secs, mse in (("subnormals kept", slow, slow_mse), ("subnormals flushed", fast, fast_mse)):
        print(f"{name:>18}: {secs:7.1f} s for {args.epochs} epochs; holdout MSE {[round(m, 4) for m in mse]}")
    print(f"ratio: {slow / fast:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
