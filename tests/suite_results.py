"""Hand-built ``benchmarks/reproduce.py`` results for the suite report's tests
(tests/core/test_suite_report.py, tests/core/test_suite_left.py)."""

from __future__ import annotations

from typing import Any


def suite_result(task: str, curves: dict[str, dict[str, list[float]]], deployments: int) -> dict[str, Any]:
    """A reproduce.py result with the given per-seed curves (k = 0 is the random policy)."""
    import numpy as np

    methods = {
        m: {"seeds": {s: {"returns": r, "complete": len(r) == deployments + 1} for s, r in seeds.items()}}
        for m, seeds in curves.items()
    }
    rows = []
    for k in range(deployments + 1):
        row: dict[str, Any] = {"deployments": k, "samples": 1000 * k}
        for m, seeds in curves.items():
            vals = [r[k] for r in seeds.values() if len(r) > k and r[k] is not None]
            row[m] = {
                "mean": float(np.mean(vals)) if vals else None,
                "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                "n_seeds": len(vals),
                "per_seed": vals,
                "train_s": {"mean": 100.0, "per_seed": [100.0] * len(vals)},
            }
        rows.append(row)
    return {
        "task": task,
        "campaign": f"{task}-cpu",
        "deployments": deployments,
        "steps_per_deployment": 1000,
        "seeds": [0, 1, 2],
        "methods": methods,
        "per_deployment": rows,
    }


def with_train_seconds(
    result: dict[str, Any], method: str, train_s: dict[str, list[float | None]], flushed: bool = False
) -> dict[str, Any]:
    """Give ``method``'s seeds of ``result`` per-deployment training seconds, as the harness
    records them (k = 0 untrained), trained with subnormals flushed or not."""
    for s, secs in train_s.items():
        record = result["methods"][method]["seeds"][s]
        record["train_s"] = secs
        record["train_flushed"] = [False] + [flushed] * (len(secs) - 1)
    return result


def budget_case(td3bc_seconds: tuple[float | None, float | None]) -> dict[str, Any]:
    """A 2-deployment Hopper result whose BREMEN seeds trained (300 + 400 + 500) / 3 = 400 s at
    deployment 1 and (800 + 900 + 1000) / 3 = 900 s at 2, and TD3+BC ``td3bc_seconds`` there."""
    done = [0.0, 1.0, 2.0]
    three = {"0": done, "1": done, "2": done}
    result = suite_result("hopper", {"bremen": three, "bremen_select": three, "td3bc": {"0": done}}, 2)
    with_train_seconds(
        result, "bremen", {"0": [None, 300.0, 800.0], "1": [None, 400.0, 900.0], "2": [None, 500.0, 1000.0]}
    )
    rows = result["per_deployment"]
    rows[1]["td3bc"]["train_s"]["mean"], rows[2]["td3bc"]["train_s"]["mean"] = td3bc_seconds
    return result
