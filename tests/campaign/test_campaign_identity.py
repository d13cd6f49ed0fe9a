"""What a campaign's identity is made of. A workspace resumes only under a config with the same
identity, so a new config field with a default that enters the identity orphans every workspace
made before it (a field of 2026-12-06 did, until a second read caught it): the settings hashed
are listed here by hand, and adding one must be a decision, not an accident."""

from __future__ import annotations

import pytest

from bremen_robot.campaign.config import SelectionPolicy, load_campaign_config

# What changes the data a campaign collects, or what it trains and proposes.
IDENTITY = {
    "name",
    "robot",
    "collect",
    "train",
    "deployments",
    "steps_per_deployment",
    "exploration_sigma",
    "seed",
    "evaluation",
    "selection",
}
EVALUATION = {"env", "episodes", "sim2real"}
SELECTION = {
    "when_none_beats",
    "twin",
    "data_engine",
    "twin_engine",
    "twin_episodes",
    "twin_randomization",
    "twin_tolerance",
}


@pytest.mark.parametrize(
    "preset, layout",
    # seed_layout counts only when spaced: every workspace made before it was collected sliding
    [("quickstart", {"seed_layout"}), ("ant-cpu", set())],
)
def test_the_identity_hashes_exactly_the_settings_listed_here(preset, layout):
    fields = load_campaign_config(preset).identity_fields()
    assert set(fields) == IDENTITY | layout
    assert set(fields["evaluation"]) == EVALUATION
    assert set(fields["selection"]) == SELECTION


def test_when_to_warn_the_operator_is_not_part_of_the_identity_but_a_twin_setting_is():
    cfg = load_campaign_config("ant-cpu")
    warn_later = cfg.model_copy(
        update={"selection": cfg.selection.model_copy(update={"twin_veto_warning": 5})}
    )
    assert warn_later.digest() == cfg.digest()
    stricter = cfg.model_copy(update={"selection": SelectionPolicy(twin=False, twin_tolerance=0.05)})
    assert stricter.digest() != cfg.digest()


def test_the_spaced_seed_layout_is_another_campaign_than_the_sliding_one():
    cfg = load_campaign_config("ant-cpu")
    assert cfg.seed_layout == "sliding"
    assert cfg.model_copy(update={"seed_layout": "spaced"}).digest() != cfg.digest()
