"""The console's SVG chart data (console/charts.py), checked by value on a hand-built timeline.

Expected coordinates are worked out by hand from the chart's geometry: width 360, plot area
x 48..348 with 6 % padding either side, y 14..166 with 5 % padding (none for success rates).
"""

from __future__ import annotations

from typing import Any

from bremen_robot.console.charts import timeline_charts


def _row(k: int, trained_on: int, mean: float, std: float, success: float) -> dict[str, Any]:
    return {
        "deployment": k,
        "trained_on": trained_on,
        "eval_return_mean": mean,
        "eval_return_std": std,
        "success_rate": success,
        "interventions": k,
    }


FINISHED = {
    "rows": [_row(1, 0, -50.0, 5.0, 0.1), _row(2, 300, -20.0, 2.0, 0.6), _row(3, 500, -12.0, 1.0, 0.7)],
    "final": {
        "after_deployment": 3,
        "trained_on": 700,
        "eval_return_mean": -10.0,
        "eval_return_std": 1.0,
        "success_rate": 0.8,
    },
}


def _by_title(title: str) -> dict[str, Any]:
    return next(c for c in timeline_charts(FINISHED) if c["title"] == title)


def _x_ticks(c: dict[str, Any]) -> list[str]:
    return [t["text"] for t in c["texts"] if t["y"] == 180]  # 200 - 34 + 14: below the x axis


def test_the_final_candidate_is_a_labelled_point_at_its_deployment_not_a_fourth_deployment():
    c = _by_title("return ± std against deployment")
    assert _x_ticks(c) == ["1", "2", "3"]
    # x: 1..3 padded to 0.88..3.12; y: -55..-9 (means ± std) padded to -57.3..-6.7
    assert c["circles"] == [
        {"cx": 64.1, "cy": 144.1, "r": 4, "cls": "marker"},
        {"cx": 198.0, "cy": 54.0, "r": 4, "cls": "marker"},
        {"cx": 331.9, "cy": 29.9, "r": 4, "cls": "marker"},
        {"cx": 331.9, "cy": 23.9, "r": 4, "cls": "candidate"},
    ]
    assert c["path"] == "M64.1,144.1 L198.0,54.0 L331.9,29.9"  # the deployments only
    assert {"x": 324.9, "y": 16.9, "anchor": "end", "text": "candidate after 3"} in c["texts"]


def test_the_final_candidate_success_rate_sits_at_its_deployment_too():
    c = _by_title("success rate against deployment")
    assert _x_ticks(c) == ["1", "2", "3"]
    assert [(m["cx"], m["cy"], m["cls"]) for m in c["circles"]] == [
        (64.1, 150.8, "marker"),
        (198.0, 74.8, "marker"),
        (331.9, 59.6, "marker"),
        (331.9, 44.4, "candidate"),
    ]


def test_against_samples_the_candidate_stands_at_the_samples_it_was_trained_on():
    c = _by_title("return ± std against samples")
    assert _x_ticks(c) == ["0", "300", "500"]
    # x: 0..700 padded to -42..742
    assert [(m["cx"], m["cls"]) for m in c["circles"]] == [
        (64.1, "marker"),
        (178.9, "marker"),
        (255.4, "marker"),
        (331.9, "candidate"),
    ]
    assert c["path"] == "M64.1,144.1 L178.9,54.0 L255.4,29.9"


def test_a_timeline_without_a_candidate_has_no_candidate_point():
    c = timeline_charts({**FINISHED, "final": None})[0]
    assert [m["cls"] for m in c["circles"]] == ["marker", "marker", "marker"]
    assert not [t for t in c["texts"] if t["text"].startswith("candidate")]
