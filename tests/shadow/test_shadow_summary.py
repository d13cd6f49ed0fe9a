"""The shadow run summary: hand-computed expectations (bremen_robot.shadow_summary.summarize)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bremen_robot.shadow_summary import summarize, summary_lines

A = np.array


def _run(noise):
    return summarize(
        acting_cmd={
            (1, 10): A([0.0, 0.0]),
            (1, 20): A([1.0, 1.0]),
            (-1, 5): A([9.0, 9.0]),
            (1, 30): A([0.0, 0.0]),
        },
        shadow_cmd={(1, 10): A([0.5, -1.0]), (1, 20): A([1.0, 3.0]), (-1, 5): A([0.0, 0.0])},
        acting_raw={(1, 10): A([0.0, 0.0]), (1, 20): A([0.0, 0.0])},
        shadow_raw={(1, 10): A([0.2, 0.0]), (1, 20): A([0.0, 0.4]), (-1, 5): A([5.0, 5.0])},
        acting_interventions=[],
        shadow_interventions=["clipped_box", "rate_limit", "clipped_box"],
        noise=noise,
        joints=["a", "b"],
    )


def test_command_difference_pairs_by_tag_inside_episodes_only():
    s = _run(0.1)
    # (1, 30) has no shadow answer; (-1, 5) is between episodes: neither counts
    assert (s["acting_steps"], s["shadow_steps"], s["paired_steps"]) == (3, 2, 2)
    cmd = s["command_difference"]
    # |diffs| = [0.5, 1] and [0, 2]
    assert cmd["mean_abs"] == pytest.approx({"a": 0.25, "b": 1.5})
    assert cmd["max_abs"] == pytest.approx({"a": 0.5, "b": 2.0})
    assert cmd["mean_abs_all"] == pytest.approx(0.875)
    assert cmd["max_abs_all"] == pytest.approx(2.0)


def test_interventions_it_would_have_caused_per_reason():
    s = _run(0.1)
    assert s["interventions"] == {"shadow": {"clipped_box": 2, "rate_limit": 1}, "acting": {}}


def test_ood_score_in_units_of_the_collection_noise():
    s = _run(0.1)
    # steps: (0.2, 0)/0.1 = (2, 0) -> sqrt(4/2) = sqrt 2; (0, 0.4)/0.1 = (0, 4) -> sqrt(16/2) = sqrt 8
    assert s["ood"]["steps"] == 2
    assert s["ood"]["mean"] == pytest.approx((math.sqrt(2) + math.sqrt(8)) / 2)
    assert s["ood"]["max"] == pytest.approx(math.sqrt(8))
    per_joint = _run([0.1, 0.2])["ood"]  # (2, 0) and (0, 2): sqrt 2 each
    assert per_joint["mean"] == pytest.approx(math.sqrt(2)) and per_joint["max"] == pytest.approx(
        math.sqrt(2)
    )
    assert _run(None)["ood"]["mean"] is None


def test_nothing_paired_gives_no_figures_and_readable_lines():
    s = summarize(
        acting_cmd={(1, 1): A([0.0])},
        shadow_cmd={},
        acting_raw={},
        shadow_raw={},
        acting_interventions=["estop"],
        shadow_interventions=[],
        noise=0.1,
        joints=["j"],
    )
    assert s["paired_steps"] == 0 and s["command_difference"]["mean_abs_all"] is None
    lines = summary_lines(s)
    assert lines[0] == "paired steps 0 of 1 acting steps"
    assert "the acting controller's: 1 (estop 1)" in lines[2]
    full = summary_lines(_run(0.1))
    assert "mean |d| 0.875, max 2; per joint mean/max: a 0.25/0.5, b 1.5/2" in full[1]
    assert "would have caused: 3 (clipped_box 2, rate_limit 1)" in full[2]
