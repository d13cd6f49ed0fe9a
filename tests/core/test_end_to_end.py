"""Tiny end-to-end runs on the toy point task, through the CLI a user would type."""

import json

import numpy as np
import pytest
import torch

from bremen_robot.cli import main
from bremen_robot.data.dataset import Dataset
from bremen_robot.policy.artifact import load_artifact
from bremen_robot.trainer import load_ensemble


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
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["data_digests"] == [report["data"]["digest"]]
    # the headline figures, recomputed from the saved files (2,000 rows: the anchor uses them all)
    data = Dataset.load(trained / "d1.npz")
    assert len(data) == 2000 == report["data"]["transitions"]
    ens = load_ensemble(art / "ensemble.pt", torch.device("cpu"))
    with torch.no_grad():
        z = ens.normalized_deltas(torch.as_tensor(data.obs), torch.as_tensor(data.actions)).numpy()
    behavior_dis = float(z.std(axis=0, ddof=1).mean(-1).mean())  # std across members, mean over D
    assert report["disagreement"]["behavior"] == pytest.approx(behavior_dis, rel=1e-4)
    bc_mean = load_artifact(art / "bc").act(data.obs).astype(np.float64)
    pi_mean = load_artifact(art).act(data.obs).astype(np.float64)
    noise = np.maximum(np.sqrt(((data.actions - bc_mean) ** 2).mean(0)), 1e-3)
    shift = float(np.sqrt((((pi_mean - bc_mean) / noise) ** 2).mean()))
    assert report["behavior_shift"] == pytest.approx(shift, rel=1e-3) and shift > 0.01


def test_training_into_an_existing_artifact_is_refused(trained, capsys):
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
