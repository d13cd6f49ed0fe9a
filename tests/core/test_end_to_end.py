"""Tiny end-to-end runs on the toy point task, through the CLI a user would type."""

import json

import numpy as np
import pytest

from bremen_robot.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    assert (
        main(["dataset", "collect", "--env", "point", "--steps", "2000", "--out", str(root / "d1.npz")]) == 0
    )
    assert (
        main(
            [
                "train",
                "--config",
                "point-demo",
                "--data",
                str(root / "d1.npz"),
                "--out",
                str(root / "art"),
                "--quiet",
            ]
        )
        == 0
    )
    return root


def _returns(root, artifact, name):
    out = root / f"{name}.json"
    assert (
        main(
            [
                "evaluate",
                str(artifact),
                "--env",
                "point",
                "--episodes",
                "20",
                "--seed",
                "500",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    return np.array(json.loads(out.read_text())["returns"])


def test_bremen_beats_behavior_cloning(trained):
    """Paired over the same 20 start states. If BREMEN were no better than BC, a mean paired
    gain above 3.58 standard errors has a false-pass chance of at most 0.1% (one-sided paired
    t-test, 19 degrees of freedom); we also require an absolute gain of 5 return units."""
    bremen = _returns(trained, trained / "art", "bremen")
    bc = _returns(trained, trained / "art" / "bc", "bc")
    diff = bremen - bc
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert diff.mean() > 5.0, (bremen.mean(), bc.mean())
    assert diff.mean() > 3.58 * se


def test_training_writes_report_and_artifacts(trained):
    art = trained / "art"
    for name in ("policy.pt", "manifest.json", "report.json", "report.png", "ensemble.pt", "bc/policy.pt"):
        assert (art / name).is_file(), name
    report = json.loads((art / "report.json").read_text())
    assert len(report["trpo"]["kl"]) == 30
    assert max(report["trpo"]["kl"]) <= 0.05 + 1e-6
    assert len(report["ensemble"]["best_holdout_mse"]) == 3
    assert report["disagreement"]["behavior"] > 0
    assert report["behavior_shift"] > 0
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["data_digests"] == [report["data"]["digest"]]


def test_retrain_refits_previous_ensemble_and_refuses_overwrite(trained, capsys):
    code = main(
        [
            "train",
            "--config",
            "point-demo",
            "--data",
            str(trained / "d1.npz"),
            "--out",
            str(trained / "art"),
            "--quiet",
        ]
    )
    assert code == 2
    assert "already holds an artifact" in capsys.readouterr().err
    assert (trained / "art" / "manifest.json").is_file()
