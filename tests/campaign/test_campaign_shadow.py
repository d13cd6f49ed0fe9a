"""The campaign's shadow step: off by default (presets keep their identity), and when on, each
new candidate runs in shadow beside the deployed policy before its approval is asked, once."""

from __future__ import annotations

from pathlib import Path

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
        return {"paired_steps": 123, "command_difference": {"mean_abs_all": 0.5}}

    camp = Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(), log=lambda m: None)
    camp.shadow_fn = fake_shadow
    camp.run()
    with Registry.open(tmp_path / "ws") as reg:
        first = next(r for r in reg.policies() if not r.is_random and 2 in r.deployments)
    assert calls == [(2, first.id, "random", "candidate", 123, "shadow_bag")]
    assert (tmp_path / "ws" / "d2" / "shadow.json").is_file()
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
