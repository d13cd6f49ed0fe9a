"""Reading the policy's action, and the OOD gate that may replace it (docs/safety.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from safety.types import Intervention, Reason

INF = math.inf

OodScore = Callable[[np.ndarray, np.ndarray], float]
"""``(observation, action) -> disagreement`` of the dynamics ensemble (injected; no torch here)."""
FallbackPolicy = Callable[[np.ndarray], Any]
"""``observation -> action`` of the fallback policy, e.g. the behavior-cloned one."""


def read_action(action: Any, names: Sequence[str]) -> tuple[list[float] | None, Reason, str]:
    """(values or None, reason if None, problem if None) for one value per joint in ``names``."""
    n = len(names)
    if type(action) is np.ndarray and action.ndim == 1 and action.dtype.kind in "fiu":
        act = action.tolist()
    else:
        try:
            arr = np.asarray(action)
        except Exception:
            return None, "shape_mismatch", f"action of type {type(action).__name__} is not an array"
        if arr.ndim != 1:
            return None, "shape_mismatch", f"action has shape {arr.shape}, expected ({n},)"
        if arr.dtype.kind not in "fiu":
            return None, "nan_action", f"action has dtype {arr.dtype}, not real numbers"
        act = arr.tolist()
    if len(act) != n:
        return None, "shape_mismatch", f"action has {len(act)} values, expected {n}"
    s = sum(act)
    if s - s != 0.0 and not all(map(math.isfinite, act)):
        bad = next(nm for nm, a in zip(names, act, strict=True) if not math.isfinite(a))
        return None, "nan_action", f"action for '{bad}' is not finite"
    return act, "nan_action", ""


class OodGate:
    """Sends the safe command, or the fallback policy's action, when the ensemble disagrees.

    ``fallback`` None: the safe command (``ood.fallback: safe``).
    """

    def __init__(
        self, score: OodScore, threshold: float, fallback: FallbackPolicy | None, names: Sequence[str]
    ) -> None:
        self._score = score
        self._threshold = threshold
        self._fallback = fallback
        self._names = list(names)

    def __call__(
        self, pos: list[float], vel: list[float], act: list[float], obs: np.ndarray | None
    ) -> tuple[list[float] | None, Intervention | None]:
        """(action to use or None for the safe command, intervention or None).

        A malformed ``obs`` gives None and a ``shape_mismatch`` intervention."""
        try:
            o = (
                np.asarray(obs, dtype=np.float64)
                if obs is not None
                else np.array(pos + vel, dtype=np.float64)
            )
        except Exception as exc:  # the caller's obs, not a bug here
            detail = f"malformed input: obs for the OOD gate: {type(exc).__name__}: {exc}"
            return None, Intervention("shape_mismatch", None, None, None, detail)
        try:
            score = float(self._score(o, np.array(act, dtype=np.float64)))
        except Exception as exc:
            score, why = math.nan, f"ood_score failed ({type(exc).__name__}: {exc})"
        else:
            # a plain `score <= threshold` would let -inf through
            if -INF < score <= self._threshold:
                return act, None
            if math.isfinite(score):
                why = f"ensemble disagreement {score:.4g} > threshold {self._threshold:g}"
            else:
                why = f"ensemble disagreement {score} is not finite"
        requested = score if math.isfinite(score) else None
        if self._fallback is None:
            return None, Intervention("ood", None, requested, None, f"{why}; sent the safe command")
        try:
            fb, _, problem = read_action(self._fallback(o), self._names)
        except Exception as exc:
            fb, problem = None, f"{type(exc).__name__}: {exc}"
        if fb is None:
            detail = f"{why}; fallback policy failed ({problem}); sent the safe command"
            return None, Intervention("ood", None, requested, None, detail)
        return fb, Intervention("ood", None, requested, None, f"{why}; sent the fallback policy's action")
