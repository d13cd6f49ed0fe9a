"""The reproduction harness mixes a workspace into a result only if it ran with the same settings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.config.train import load_train_config

REPRODUCE = Path(__file__).resolve().parents[2] / "benchmarks" / "reproduce.py"


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bremen_reproduce", REPRODUCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _record(**train_update: Any) -> dict[str, Any]:
    campaign = load_campaign_config("halfcheetah-cpu")
    train = load_train_config(campaign.train).model_copy(update=train_update)
    return {
        "method": "bremen",
        "campaign": campaign.model_dump(mode="json"),
        "train": train.model_dump(mode="json"),
    }


def test_an_edited_description_keeps_the_workspace() -> None:
    harness = _harness()
    ran = _record(description="the wording the run was made with", expected_time="an hour")
    assert harness.same_settings(ran, _record())


def test_a_changed_setting_orphans_the_workspace() -> None:
    harness = _harness()
    preset = load_train_config("halfcheetah-cpu")
    flipped = preset.ensemble.model_copy(update={"warm_start": not preset.ensemble.warm_start})
    assert not harness.same_settings(_record(ensemble=flipped), _record())
    assert not harness.same_settings(None, _record())
