"""benchmarks/subnormal_probe.py on a hand-built workspace: it counts the planted subnormal
weights, re-fits copies both ways, and leaves the saved ensemble as it was."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

from bremen_robot.config.train import load_train_config
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.trainer import save_ensemble
from tests.benchmark_scripts import load_benchmark_script


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    return load_benchmark_script("subnormal_probe.py", "bremen_subnormal_probe")


def test_the_probe_counts_subnormals_and_refits_both_ways(
    probe: ModuleType, tmp_path: Path, point_data, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "ws" / "d1"
    (d / "train").mkdir(parents=True)
    torch.manual_seed(0)
    ens = DynamicsEnsemble(2, 2, members=2, hidden=(8,))  # 2 * (4*8 + 8 + 8*2 + 2) = 116 weights
    with torch.no_grad():
        ens.linear_layers()[0].weight[0, 0, :3] = 2.0**-130
    save_ensemble(ens, d / "train" / "ensemble.pt")
    saved = (d / "train" / "ensemble.pt").read_bytes()
    point_data.save(d / "data.npz")
    cfg = load_train_config("point-demo")
    cfg = cfg.model_copy(update={"ensemble": cfg.ensemble.model_copy(update={"batch_size": 256})})
    (d / "train" / "report.json").write_text(json.dumps({"config": cfg.model_dump(mode="json")}))
    assert probe.main([str(tmp_path / "ws"), "--deployment", "1", "--epochs", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("ensemble.pt: 3 of 116 weights subnormal (2.6%)")
    assert out[1].startswith("   subnormals kept:") and out[2].startswith("subnormals flushed:")
    assert out[1].split("holdout MSE")[1] == out[2].split("holdout MSE")[1]  # same fit, to 4 digits
    assert out[3].startswith("ratio: ")
    assert (d / "train" / "ensemble.pt").read_bytes() == saved


def test_a_deployment_without_its_files_is_named(
    probe: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert probe.main([str(tmp_path), "--deployment", "3"]) == 2
    assert capsys.readouterr().err == (
        f"subnormal_probe: '{tmp_path}/d3/train/ensemble.pt' not found; "
        "pick a deployment whose ensemble and data are there\n"
    )
