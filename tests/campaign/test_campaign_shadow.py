"""The campaign's shadow step: off by default (presets keep their identity), and when on, each
new candidate runs in shadow beside the deployed policy before its approval is asked, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.campaign.runner import Campaign
from tests.campaign.test_campaign_logic import DirectCollector, write_campaign


def test_presets_keep_their_identity_and_shadow_is_off_by_default():
    # The digest holds the configs' absolute paths (it differs per checkout), so the identity is
    # checked by comparison: turning shadow runs on or resizing them is the same campaign, and a
    # field that is part of the identity still changes it.
    from bremen_robot.campaign.config import ShadowSetting

    for name in ("quickstart", "halfcheetah-cpu"):
        cfg = load_campaign_config(name)
        assert cfg.shadow.enabled is False and cfg.shadow.steps == 1000
        shadowed = cfg.model_copy(update={"shadow": ShadowSetting(enabled=True, steps=7)})
        assert shadowed.digest() == cfg.digest()
        assert cfg.model_copy(update={"seed": cfg.seed + 1}).digest() != cfg.digest()


def _enable(path: Path, steps: int) -> Path:
    data = yaml.safe_load(path.read_text())
    data["shadow"] = {"enabled": True, "steps": steps}
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_candidate_runs_in_shadow_before_its_approval_once(tmp_path):
    from bremen_robot.registry import Registry

    cfg = load_campaign_config(_enable(write_campaign(tmp_path), 123))
    calls = []

    def fake_shadow(campaign, k, candidate, acting, bag):
        with Registry.open(campaign.ws.root) as reg:
            calls.append(
                (k, candidate, acting, reg.get(candidate).state, campaign.cfg.shadow.steps, bag.name)
            )
        return {
            "paired_steps": 123,
            "command_difference": {"mean_abs_all": 0.5},
            "review": f"bremen review {candidate} --workspace {campaign.ws.root}",
        }

    camp = Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None)
    camp.shadow_fn = fake_shadow
    camp.run()
    with Registry.open(tmp_path / "ws") as reg:
        first = next(r for r in reg.policies() if not r.is_random and 2 in r.deployments)
    assert calls == [(2, first.id, "random", "candidate", 123, "shadow_bag")]
    # the marker keeps no absolute path: a moved workspace would make the review hint wrong
    assert json.loads((tmp_path / "ws" / "d2" / "shadow.json").read_text()) == {
        "paired_steps": 123,
        "command_difference": {"mean_abs_all": 0.5},
        "candidate": first.id,
    }
    again = Campaign(
        cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None
    )
    again.shadow_fn = fake_shadow
    again.run()
    assert len(calls) == 1  # resumed: the recorded shadow step is not run again


def test_without_the_setting_no_shadow_run_happens(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path))
    camp = Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None)
    camp.shadow_fn = lambda *a: (_ for _ in ()).throw(AssertionError("shadow ran"))
    camp.run()
    assert not (tmp_path / "ws" / "d2" / "shadow.json").exists()


def test_a_candidate_trained_again_after_a_rejection_runs_in_shadow_too(tmp_path):
    """``d<k>/shadow.json`` marks deployment k's shadow step done; after a rejection the
    candidate is trained again, and the new one must run in shadow before its approval is asked,
    not inherit the rejected one's run."""
    from bremen_robot.registry import Registry

    cfg = load_campaign_config(_enable(write_campaign(tmp_path), 5))
    ws = tmp_path / "ws"
    calls: list[str] = []

    def fake_shadow(campaign, k, candidate, acting, bag):
        calls.append(candidate)
        return {"paired_steps": 5, "command_difference": {"mean_abs_all": 0.5}}

    def campaign(collector: DirectCollector) -> Campaign:
        camp = Campaign(cfg, ws, auto_approve=True, collect_fn=collector, log=lambda m: None)
        camp.shadow_fn = fake_shadow
        return camp

    with pytest.raises(KeyboardInterrupt):  # stopped as deployment 2 began: nothing collected
        campaign(DirectCollector(fail_at=2)).run()
    with Registry.open(ws) as reg:
        reg.reject(calls[0], "joint 3 oscillates", operator="alice")
    (ws / "d1" / "train").rename(ws / "d1" / "train.rejected")  # what the rejection message says
    campaign(DirectCollector()).run()
    assert len(calls) == 2 and calls[1] != calls[0]
    with Registry.open(ws) as reg:
        assert reg.get(calls[1]).deployments == [2]  # the candidate that ran in shadow was deployed
    assert (ws / "d2" / "shadow.json.other-candidate-1").is_file()  # the rejected one's run is kept


def test_the_shadow_log_line_names_the_campaigns_registry(tmp_path):
    """'see bremen review ID' alone opened the default registry, not the campaign's workspace."""
    cfg = load_campaign_config(_enable(write_campaign(tmp_path), 7))
    lines: list[str] = []
    camp = Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lines.append)
    camp.shadow_fn = lambda *a: {"paired_steps": 7, "command_difference": {"mean_abs_all": 0.1}}
    camp.run()
    (line,) = [m for m in lines if "shadow run recorded" in m]
    assert line.endswith(f"--workspace {tmp_path / 'ws'}")
