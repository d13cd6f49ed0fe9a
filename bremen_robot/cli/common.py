"""Small helpers shared by CLI subcommands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bremen_robot.data.dataset import Dataset, merge


def load_datasets(paths: Sequence[str | Path]) -> Dataset:
    """Load one or more ``.npz`` datasets; several are merged (episode ids renumbered)."""
    sets = [Dataset.load(Path(p)) for p in paths]
    return sets[0] if len(sets) == 1 else merge(sets)


def mean_std(values: Sequence[float]) -> str:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    return f"{arr.mean():.1f} ± {arr.std():.1f}"
