"""PNG figures of a training report (matplotlib, Agg backend: headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_training_report(report: dict[str, Any], path: Path) -> Path:
    """Four panels: ensemble train/holdout MSE, BC loss, imagined return, KL per TRPO step."""
    fig, ax = plt.subplots(2, 2, figsize=(11, 7))
    ens = report.get("ensemble", {})
    if ens.get("train_mse"):
        ax[0, 0].plot(ens["train_mse"], label="train (mean of members)")
        hold = np.asarray(ens["holdout_mse"])
        for m in range(hold.shape[1]):
            ax[0, 0].plot(hold[:, m], alpha=0.6, label=f"holdout member {m}")
        ax[0, 0].set_yscale("log")
        ax[0, 0].legend(fontsize=7)
    ax[0, 0].set_title("dynamics ensemble MSE (normalized)")
    ax[0, 0].set_xlabel("epoch")
    ax[0, 1].plot(report.get("bc", {}).get("loss", []))
    ax[0, 1].set_title("behavior cloning loss")
    ax[0, 1].set_xlabel("x1000 steps")
    trpo = report.get("trpo", {})
    ax[1, 0].plot(trpo.get("imagined_return", []))
    ax[1, 0].set_title("imagined return per TRPO iteration")
    ax[1, 1].plot(trpo.get("kl", []))
    ax[1, 1].set_title("KL per TRPO step")
    for a in ax[1]:
        a.set_xlabel("TRPO iteration")
    fig.suptitle(f"BREMEN training report: {report.get('task', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
