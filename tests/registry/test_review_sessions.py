"""``bremen review`` shows a fleet policy's collection sessions (robot, node, samples, episodes,
interventions) in the terminal and on the page (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import ArtifactFactory
from review_fixtures import campaign_like

from bremen_robot.cli import main
from bremen_robot.registry import Registry
from bremen_robot.registry.sessions import record_session


def test_review_shows_the_policys_collection_sessions(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    rec = campaign_like(workspace, registry, artifact_factory)
    other = registry.register(artifact_factory(), report={}, lineage={"parent": "random"})
    rows = [
        ("panda-a", "lab-pc-1:panda-a", 198, 2, 3),
        ("panda-b", "lab-pc-2:panda-b", 97, 1, 41),  # stopped on its e-stop after one episode
    ]
    for robot, node, samples, episodes, interventions in rows:
        record_session(
            registry,
            {
                "policy_id": rec.id,
                "round": 2,
                "robot": robot,
                "node": node,
                "samples": samples,
                "episodes": episodes,
                "interventions": interventions,
            },
        )
    # another policy's session is not this policy's
    record_session(
        registry,
        {
            "policy_id": other.id,
            "round": 3,
            "robot": "panda-c",
            "node": "x:panda-c",
            "samples": 5,
            "episodes": 1,
        },
    )
    assert main(["review", rec.id, "--workspace", str(workspace), "--no-video", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "collection sessions (2; a fleet deployment counts once" in out
    assert "  round 2  robot panda-a  node lab-pc-1:panda-a  samples 198  episodes 2  interventions 3" in out
    assert "  round 2  robot panda-b  node lab-pc-2:panda-b  samples 97  episodes 1  interventions 41" in out
    assert "panda-c" not in out
    html = (workspace / "reviews" / rec.id / "review.html").read_text()
    assert (
        "<tr><td>2</td><td>panda-b</td><td>lab-pc-2:panda-b</td>\n<td>97</td><td>1</td><td>41</td></tr>"
        in html
    )
    assert "<td>198</td><td>2</td><td>3</td>" in html and "panda-c" not in html
    assert 'id="no-sessions"' not in html


def test_review_of_a_policy_without_sessions_says_none(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    rec = campaign_like(workspace, registry, artifact_factory)
    assert main(["review", rec.id, "--workspace", str(workspace), "--no-video", "--no-plots"]) == 0
    assert "collection sessions" not in capsys.readouterr().out
    html = (workspace / "reviews" / rec.id / "review.html").read_text()
    assert '<p id="no-sessions">none recorded' in html and 'id="sessions-table"' not in html
