"""Which reset seeds a campaign's simulated runs use (``seed_layout``; docs/architecture.md,
"A campaign's seeds"). The expected seeds are written out by hand: ``seed << 36 | stream << 28``
for the spaced layout, ``seed * 1000 + k`` and the rest for the sliding one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.campaign.runner import Campaign, CollectRequest
from bremen_robot.campaign.seeds import (
    collection_seed,
    evaluation_seed,
    fleet_robot_seed,
    retry_seed,
    twin_seed,
)
from bremen_robot.errors import BremenError
from tests.campaign.test_campaign_logic import DirectCollector, write_campaign

BLOCK = 2**20  # episode seeds each spaced run owns


def test_spaced_seeds_are_the_campaign_seed_and_the_stream_in_their_own_bits() -> None:
    # seed 2: 2 * 2**36 = 137,438,953,472; stream k: k * 2**28 = k * 268,435,456
    assert collection_seed(2, 3, "spaced") == 137_438_953_472 + 3 * 268_435_456
    assert twin_seed(2, 3, "spaced") == 137_438_953_472 + 67 * 268_435_456
    for random_policy in (True, False):  # one set of start states for every policy evaluated
        assert (
            evaluation_seed(2, "spaced", random_policy=random_policy) == 137_438_953_472 + 128 * 268_435_456
        )
    assert fleet_robot_seed(1_000, 3, "spaced") == 1_000 + 3 * 1_048_576
    assert collection_seed(0, 1, "spaced") == 268_435_456


def test_sliding_seeds_are_those_of_campaigns_made_before_the_layout() -> None:
    assert collection_seed(2, 3, "sliding") == 2_003
    assert twin_seed(2, 3, "sliding") == 2_503
    assert evaluation_seed(2, "sliding", random_policy=True) == 2
    assert evaluation_seed(2, "sliding", random_policy=False) == 9
    assert fleet_robot_seed(2_003, 1, "sliding") == 200_301


def test_the_sliding_layout_shares_start_states_the_spaced_one_does_not() -> None:
    """The defect the layout fixes: deployment 2's episode 0 resets like deployment 1's episode 1,
    and seed 0's candidates are evaluated on deployment 1's start states (episodes 6-10)."""
    assert collection_seed(0, 2, "sliding") + 0 == collection_seed(0, 1, "sliding") + 1
    assert evaluation_seed(0, "sliding", random_policy=False) == collection_seed(0, 1, "sliding") + 6
    assert collection_seed(0, 2, "spaced") - collection_seed(0, 1, "spaced") == 268_435_456


@given(seed=st.integers(0, 1_000_000), robots=st.integers(1, 256))
def test_no_two_spaced_runs_of_a_campaign_share_an_episode_seed(seed: int, robots: int) -> None:
    """Every run's block [base, base + 2**20), fleet robots' blocks included, apart from every
    other's, for any campaign seed the config allows and the 50 deployments it allows."""
    bases = [collection_seed(seed, k, "spaced") for k in range(1, 51)]
    bases += [twin_seed(seed, k, "spaced") for k in range(1, 51)]
    bases.append(evaluation_seed(seed, "spaced", random_policy=False))
    starts = sorted({fleet_robot_seed(b, i, "spaced") for b in bases for i in (0, robots - 1)})
    assert len(starts) == 101 * (2 if robots > 1 else 1)
    assert all(b - a >= BLOCK for a, b in zip(starts, starts[1:], strict=False))
    assert starts[-1] + BLOCK <= 2**63  # a ROS 2 integer parameter


@pytest.mark.parametrize("bad", [0, 64])
def test_a_deployment_outside_the_streams_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match=f"deployment {bad} is outside 1..63"):
        collection_seed(0, bad, "spaced")


def test_a_retried_fleet_share_moves_on_by_a_block_of_its_own() -> None:
    assert retry_seed(1_000, 0, "spaced") == 1_000
    assert retry_seed(1_000, 3, "spaced") == 1_000 + 3 * 65_536
    assert retry_seed(1_000, 3, "sliding") == 1_000 + 3 * 7_919
    with pytest.raises(ValueError, match="16 retries of one robot's share is more than its seed block"):
        retry_seed(1_000, 16, "spaced")


def test_a_fleet_of_more_robots_than_blocks_is_refused() -> None:
    with pytest.raises(ValueError, match="a fleet has at most 256 robots"):
        fleet_robot_seed(0, 256, "spaced")


# ---------------------------------------------------------------- a campaign's runs


class SeedRecorder(DirectCollector):
    def __init__(self) -> None:
        super().__init__()
        self.seeds: list[int] = []

    def __call__(self, req: CollectRequest) -> dict[str, Any]:
        self.seeds.append(req.seed)
        return super().__call__(req)


def _with_layout(camp: Path, layout: str | None) -> Path:
    data = yaml.safe_load(camp.read_text())
    if layout is not None:
        data["seed_layout"] = layout
    data["seed"] = 3
    camp.write_text(yaml.safe_dump(data))
    return camp


@pytest.mark.parametrize(
    "layout, collected, evaluated",
    [
        # 3 * 2**36 = 206,158,430,208
        (None, [206_158_430_208 + 268_435_456, 206_158_430_208 + 536_870_912], [240_518_168_576] * 3),
        ("sliding", [3_001, 3_002], [3, 10, 10]),
    ],
)
def test_a_campaign_collects_and_evaluates_with_its_layouts_seeds(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    layout: str | None,
    collected: list[int],
    evaluated: list[int],
) -> None:
    """Two deployments: the random policy's evaluation, then each candidate's (spaced: 3 << 36 |
    128 << 28 = 240,518,168,576 for all three)."""
    import bremen_robot.campaign.runner as runner

    seen: list[int] = []
    real_evaluate = runner.evaluate_policy

    def record(artifact: Any, env: str, episodes: int, seed: int, **kw: Any) -> dict[str, Any]:
        seen.append(seed)
        return dict(real_evaluate(artifact, env, episodes, seed, **kw))

    monkeypatch.setattr(runner, "evaluate_policy", record)
    cfg = load_campaign_config(_with_layout(write_campaign(tmp_path), layout))
    collector = SeedRecorder()
    Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=collector, log=lambda m: None).run()
    assert collector.seeds == collected
    assert seen == evaluated
    # the workspace records them: collect.json its base seed and layout, eval.json its seed
    for k in (1, 2):
        marker = json.loads((tmp_path / "ws" / f"d{k}" / "collect.json").read_text())
        assert (marker["seed"], marker["seed_layout"]) == (collected[k - 1], layout or "spaced")
        assert json.loads((tmp_path / "ws" / f"d{k}" / "eval.json").read_text())["seed"] == evaluated[k]


def test_a_sliding_workspace_resumed_without_the_setting_is_refused_naming_it(tmp_path: Path) -> None:
    """A config of before the field, resumed after it: its workspace was collected with the
    sliding seeds, and the config now means spaced ones."""
    camp = _with_layout(write_campaign(tmp_path), "sliding")
    sliding = load_campaign_config(camp)
    Campaign(sliding, tmp_path / "ws", collect_fn=DirectCollector(), log=lambda m: None).ws.claim(
        sliding.name, sliding.digest()
    )
    spaced = load_campaign_config(_with_layout(camp, "spaced"))
    collector = DirectCollector()
    with pytest.raises(BremenError) as info:
        Campaign(spaced, tmp_path / "ws", auto_approve=True, collect_fn=collector, log=lambda m: None).run()
    assert str(info.value) == (
        f"workspace '{tmp_path / 'ws'}' was collected with the sliding seed layout (campaigns made "
        "before 2026-12-07); add 'seed_layout: sliding' to the campaign config to resume it, or "
        "start a new --workspace"
    )
    assert collector.calls == []
    assert (tmp_path / "ws" / "d1").exists() is False


# ---------------------------------------------------------------- review (s25): bounds in the config


@pytest.mark.parametrize("layout", ["spaced", "sliding"])
def test_a_fleet_larger_than_the_robot_blocks_is_a_config_error_not_a_late_value_error(
    tmp_path: Path, layout: str
) -> None:
    """fleet_robot_seed refuses robot index 256 (both layouts), but the config took any fleet: the
    ValueError came from FleetCollector.collect, at deployment 1, as a traceback. The config says
    it first, in one line."""
    from bremen_robot.errors import ConfigError

    camp = _with_layout(write_campaign(tmp_path), layout)
    data = yaml.safe_load(camp.read_text())
    data["fleet"] = [f"r{i}" for i in range(257)]
    camp.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_campaign_config(camp)
    assert "fleet" in str(info.value) and "\n" not in str(info.value)


def test_a_candidates_shadow_run_starts_where_its_twin_check_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """seeds.twin_seed: "the twin check of deployment k's training and of its candidate's shadow
    run". The candidate of deployment 2's training is twin-checked with twin_seed(2) (selection
    ._decide(k=2)) and shadowed before deployment 3 (shadow_before_approval(k=3)): its shadow run
    must reset from twin_seed(2) as well, not from twin_seed(3), the next candidate's twin check."""
    from types import SimpleNamespace

    import bremen_robot.ros.collect as ros_collect
    from bremen_robot.campaign.shadow import shadow_through_graph

    cfg = load_campaign_config(_with_layout(write_campaign(tmp_path), "spaced"))
    seen: list[int] = []

    def collect(config: Path, **kw: Any) -> Any:
        seen.append(int(yaml.safe_load(Path(config).read_text())["seed"]))
        return SimpleNamespace(shadow={"steps": 1})

    monkeypatch.setattr(ros_collect, "collect", collect)
    campaign = SimpleNamespace(
        cfg=cfg,
        ws=SimpleNamespace(root=tmp_path / "ws"),
        _robot_config_for_graph=lambda: tmp_path / "robot.yaml",
    )
    (tmp_path / "ws" / "d3").mkdir(parents=True)
    shadow_through_graph(campaign, 3, "cand", "deployed", tmp_path / "ws" / "d3" / "shadow_bag")
    assert seen == [twin_seed(cfg.seed, 2, "spaced")]
