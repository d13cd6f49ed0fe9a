"""The campaign's PNG: return against deployments and against samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_campaign(summary: dict[str, Any], path: Path) -> Path:
    rows = list(summary["deployments"])
    final = summary.get("final_candidate") or {}
    xs_dep = [r["deployment"] for r in rows]
    # row k's policy was trained on the samples of deployments 1..k-1 (random: none)
    xs_smp = [0] + [r["samples"] for r in rows[:-1]]
    means = [r["eval_return_mean"] for r in rows]
    stds = [r["eval_return_std"] for r in rows]
    if final:  # the last candidate, not yet deployed, shown at the next deployment's position
        xs_dep.append(len(rows) + 1)
        xs_smp.append(final["trained_on_samples"])
        means.append(final["eval_return_mean"])
        stds.append(final["eval_return_std"])
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for a, xs, label in ((ax[0], xs_dep, "deployment"), (ax[1], xs_smp, "samples collected")):
        a.errorbar(xs, means, yerr=stds, marker="o", capsize=3)
        a.set_xlabel(label)
        a.set_ylabel("evaluation return (mean action)")
        a.grid(alpha=0.3)
    fig.suptitle(f"campaign {summary.get('campaign', '')}: {summary.get('task', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
