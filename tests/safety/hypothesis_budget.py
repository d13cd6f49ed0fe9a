"""How many examples a property test draws: its own figure, scaled by ``BREMEN_HYPOTHESIS_SCALE``.

``make mutate`` runs every property test once per mutant; it sets the scale below 1 so the
shield's few thousand mutants fit in an hour on two cores. ``make test`` and CI use the full
figures (scale 1).
"""

from __future__ import annotations

import os


def examples(n: int) -> int:
    """``n`` scaled by ``BREMEN_HYPOTHESIS_SCALE`` (default 1), at least 5."""
    raw = os.environ.get("BREMEN_HYPOTHESIS_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        scale = -1.0
    if not scale > 0:
        raise ValueError(f"BREMEN_HYPOTHESIS_SCALE={raw!r}: expected a number > 0, e.g. 0.25")
    return max(5, round(n * scale))
