"""``bremen review`` rendering: every section shown when present, "not run" when absent."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import SYNTHETIC_REPORT, ArtifactFactory

from bremen_robot.registry import Registry
from bremen_robot.registry.review import holdout_per_member, render_text, series_of, write_plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_full_report(registry: Registry, artifact_factory: ArtifactFactory, tmp_path: Path) -> None:
    rec = registry.register(artifact_factory(), report=SYNTHETIC_REPORT, lineage={"deployment": 1})
    text = render_text(rec)
    for expected in (
        "ensemble.train_mse: 4 points, first 1 -> last 0.2",
        "bc.loss: 3 points",
        "trpo.kl: 3 points",
        "holdout error per ensemble member: #0 0.35, #1 0.7 (worst #1, 4 epochs)",
        "imagined vs real return: imagined -12.5, real -15, imagined - real 2.5",
        "KL(pi || pi_BC) 0.042 (not a distance to judge: read the behavior shift); last TRPO step KL 0.009",
        "the mean action moved 0.8 exploration-noise std from BC's",
        "disagreement on the policy's imagined states: 0.031 (for comparison: dataset 0.012)",
        "simulation evaluation: episodes 5, return_mean -15",
        "sim2real: not run",
        "safety interventions in evaluation: 3 (clip 3, estop 0)",
        "from deployment 1",
    ):
        assert expected in text, expected
    files = write_plots(rec, tmp_path / "plots")
    names = sorted(p.name.split("-", 1)[1] for p in files)
    assert names == ["bc.png", "ensemble.png", "holdout_members.png", "returns.png", "trpo.png"]
    for p in files:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 1000


def test_missing_sections_say_not_run(
    registry: Registry, artifact_factory: ArtifactFactory, tmp_path: Path
) -> None:
    rec = registry.register(artifact_factory())
    text = render_text(rec)
    for line in (
        "ensemble: not run",
        "bc: not run",
        "trpo: not run",
        "holdout error per ensemble member: not run",
        "imagined vs real return: not run",
        "KL to the behavior policy: not run",
        "distance from the deployed behavior: not run",
        "imagined states: not run",
        "simulation evaluation: not run",
        "sim2real: not run",
        "safety interventions in evaluation: not run",
    ):
        assert line in text, line
    assert write_plots(rec, tmp_path / "none") == []


@pytest.mark.parametrize(
    "report",
    [
        {"ensemble": "oops", "trpo": [1, "x"], "evaluation": 5, "disagreement": [None, 0.2]},
        {"ensemble": {"holdout_mse": [[1, 2], [3]]}, "bc": {"loss": [None, None]}, "kl_to_bc": "n/a"},
        {"trpo": [{"iteration": 0, "kl": 0.01}, {"iteration": 1, "kl": 0.02}], "sim2real": {"gap": 0.1}},
    ],
)
def test_odd_reports_do_not_crash(
    registry: Registry, artifact_factory: ArtifactFactory, tmp_path: Path, report: dict[str, object]
) -> None:
    rec = registry.register(artifact_factory(), report=report)
    assert render_text(rec).startswith(f"policy {rec.id}")
    write_plots(rec, tmp_path / "odd")


def test_series_and_members_shapes() -> None:
    assert series_of([{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.5}]) == {"loss": [1.0, 0.5]}
    assert series_of({"loss": [1, 2], "n": 3, "epochs": [0, 1]}) == {"loss": [1.0, 2.0]}
    final, mat = holdout_per_member({"ensemble": {"holdout_per_member": [[1, 2], [0.5, 0.6]]}})
    assert final == [0.5, 0.6] and mat == [[1.0, 2.0], [0.5, 0.6]]
    final, mat = holdout_per_member({"ensemble": {"holdout_per_member": [0.1, 0.2, 0.3]}})
    assert final == [0.1, 0.2, 0.3] and mat is None


def test_selection_lines_say_what_beating_the_deployed_policy_takes_under_a_margin() -> None:
    """A kept deployed policy beside a snapshot scoring above it (by less than the margin) must not
    read as a contradiction: the review states the bar, 100 + 0.05 x 100 = 105."""
    from bremen_robot.registry.review import selection_lines

    record = {
        "deployed_estimate": 100.0,
        "margin": 0.05,
        "max_action_shift": None,
        "twin": None,
        "keep_deployed": True,
        "line": "no snapshot beats the deployed policy on this evidence (offline lower bound)",
        "table": [
            {"snapshot": "bc", "offline_estimate": 98.0, "shift": 0.0, "twin": None, "chosen": False},
            {"snapshot": "trpo-0010", "offline_estimate": 104.0, "shift": 0.4, "twin": None, "chosen": False},
        ],
    }
    lines = selection_lines({"campaign_selection": record})
    bar = "  beating the deployed policy takes an offline estimate above 105.0 (its 100.0 + 0.05 x |100.0|)"
    assert bar in lines
    below_zero = selection_lines({"campaign_selection": {**record, "deployed_estimate": -100.0}})
    bar = "  beating the deployed policy takes an offline estimate above -95.0 (its -100.0 + 0.05 x |-100.0|)"
    assert bar in below_zero
    no_margin = selection_lines({"campaign_selection": {**record, "margin": 0.0}})
    assert not any("beating the deployed policy" in line for line in no_margin)
    earliest = "(selection.pick: earliest)"
    assert not any(earliest in line for line in lines)  # "best" and records from before the rule
    chose = {**record, "pick": "earliest", "keep_deployed": False, "proposed": "trpo-0010"}
    assert any(earliest in line for line in selection_lines({"campaign_selection": chose}))
    # only when the rule chose: not at deployment 1, not for a kept policy or a warned proposal
    for case in (
        {**chose, "deployed_estimate": None},
        {**chose, "keep_deployed": True, "proposed": None},
        {**chose, "warning": "trpo-0010 is proposed although it does not beat the deployed policy"},
    ):
        assert not any(earliest in line for line in selection_lines({"campaign_selection": case}))
    trained = {
        "selection": {"snapshots": [], "deployed_estimate": 3.0, "beats_deployed": True, "pick": "earliest"}
    }
    assert any(earliest in line for line in selection_lines(trained))
    trained["selection"]["beats_deployed"] = False
    assert not any(earliest in line for line in selection_lines(trained))
    older = {k: v for k, v in record.items() if k != "margin"}  # records from before the margin was kept
    assert not any(
        "beating the deployed policy" in line for line in selection_lines({"campaign_selection": older})
    )


def test_each_curve_is_plotted_over_what_it_was_measured_on(
    registry: Registry, artifact_factory: ArtifactFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ensemble.best_epoch`` holds one epoch per member, and was drawn over an axis labelled
    "epoch"; BC's loss is logged once per 1000 steps, and was labelled "step"."""
    from matplotlib.figure import Figure

    axes: dict[str, list[tuple[str, str, str, int]]] = {}

    def record(fig: Figure, path: Path, **kw: object) -> None:
        axes[Path(path).stem.split("-", 1)[1]] = [
            (a.get_title(), a.get_xlabel(), a.get_ylabel(), len(a.patches)) for a in fig.axes
        ]

    monkeypatch.setattr(Figure, "savefig", record)
    report = {**SYNTHETIC_REPORT, "ensemble": {**SYNTHETIC_REPORT["ensemble"], "best_epoch": [3, 1]}}
    write_plots(registry.register(artifact_factory(), report=report), tmp_path)
    assert sorted(axes["ensemble"]) == [
        ("best_epoch", "ensemble member", "epoch of its best holdout loss", 2),  # one bar per member
        ("train_mse", "epoch", "train_mse", 0),
    ]
    assert axes["bc"] == [("loss", "block of 1000 BC steps (mean loss)", "loss", 0)]
    assert {x for _, x, _, _ in axes["trpo"]} == {"TRPO iteration"}
