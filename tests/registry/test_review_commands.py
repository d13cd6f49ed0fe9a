"""What ``bremen review`` and ``bremen reject`` tell the operator about deciding.

The terminal said "approval is a signed command-line act (commands below)" and printed no
command (only review.html had them); the page was headed "with your operator key" although a
rejection takes none; review.html was written 0600 beside 0644 PNGs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_helpers import SYNTHETIC_REPORT, ArtifactFactory

from bremen_robot.cli import main
from bremen_robot.registry import Registry

NOTE = (
    "approving signs with NAME's private key; rejecting needs no key (a rejection can only stop a "
    "policy, never run one; the name is recorded as given) and a campaign waiting for this candidate "
    "trains another (docs/registry.md, 'Rejecting a candidate')"
)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _register(capsys: pytest.CaptureFixture[str], export: Path, *ws: str) -> str:
    assert main(["policies", "register", str(export), *ws]) == 0
    return capsys.readouterr().out.split()[2]


def test_review_prints_the_commands_it_promises_with_the_workspace_passed(
    capsys: pytest.CaptureFixture[str], workspace: Path, tmp_path: Path, artifact_factory: ArtifactFactory
) -> None:
    mine = tmp_path / "runs" / "mine"
    pid = _register(capsys, artifact_factory(), "--workspace", str(mine))
    assert main(["review", pid, "--workspace", str(mine), "--no-plots", "--no-video"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  signature: not signed: approval is a signed command-line act (commands below)" in out
    assert out[-4:] == [
        "decide (NAME: your operator name, from 'bremen operator init NAME'):",
        f"  bremen approve {pid} --operator NAME --note 'what you checked' --workspace {mine}",
        f"  bremen reject {pid} --reason 'why' --operator NAME --workspace {mine}",
        NOTE,
    ]


def test_in_the_default_workspace_the_commands_stay_short_and_a_decided_policy_gets_none(
    capsys: pytest.CaptureFixture[str], workspace: Path, artifact_factory: ArtifactFactory
) -> None:
    pid = _register(capsys, artifact_factory())
    assert main(["review", pid, "--no-plots", "--no-video"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-3:-1] == [
        f"  bremen approve {pid} --operator NAME --note 'what you checked'",
        f"  bremen reject {pid} --reason 'why' --operator NAME",
    ]
    assert main(["reject", pid, "--reason", "KL too large", "--operator", "bob"]) == 0
    capsys.readouterr()
    assert main(["review", pid, "--no-plots", "--no-video"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("review page: ") and not any(line.startswith("decide") for line in out)
    assert "  signature: not signed" in out


def test_a_rejection_by_a_name_without_any_key_is_recorded_as_given_and_says_it_is_unsigned(
    capsys: pytest.CaptureFixture[str], workspace: Path, operator_dir: Path, artifact_factory: ArtifactFactory
) -> None:
    pid = _register(capsys, artifact_factory())
    assert not operator_dir.exists()  # mallory has no key anywhere, nor does anybody
    assert main(["reject", pid, "--reason", "joint 3 oscillates", "--operator", "mallory"]) == 0
    assert capsys.readouterr().out == (
        f"rejected policy {pid} as mallory (unsigned: the name is recorded as given): joint 3 oscillates\n"
    )
    with Registry.open(workspace, readonly=True) as reg:
        last = reg.audit(pid)[-1]
    assert (last.actor, last.from_state, last.to_state, last.note) == (
        "mallory",
        "candidate",
        "rejected",
        "joint 3 oscillates",
    )


def test_in_a_campaign_workspace_reject_says_the_campaign_trains_another(
    capsys: pytest.CaptureFixture[str], workspace: Path, artifact_factory: ArtifactFactory
) -> None:
    pid = _register(capsys, artifact_factory())
    (workspace / "campaign.json").write_text('{"name": "tiny", "config_digest": "0"}')
    assert main(["reject", pid, "--reason", "why", "--operator", "alice"]) == 0
    assert capsys.readouterr().out == (
        f"rejected policy {pid} as alice (unsigned: the name is recorded as given): why; "
        "a campaign waiting for it trains another candidate\n"
    )


def test_the_page_says_a_rejection_takes_no_key_and_is_readable_like_its_plots(
    capsys: pytest.CaptureFixture[str], workspace: Path, artifact_factory: ArtifactFactory, umask_022: None
) -> None:
    unevaluated = {k: v for k, v in SYNTHETIC_REPORT.items() if k != "evaluation"}
    pid = _register(capsys, artifact_factory(report=unevaluated))
    assert main(["review", pid, "--no-video", "--out", str(workspace / "r")]) == 0
    page = workspace / "r" / "review.html"
    html = page.read_text()
    assert '<h2 id="commands">Decide (in a terminal)</h2>' in html
    assert "with your operator key" not in html
    assert "Rejecting needs no key: a rejection can only stop a policy, never run one" in html
    # no recorded evaluation: the not_evaluated flag, with what it means and that it is advisory
    assert "means:\na simulated return to compare is missing or not a finite number</span>" in html
    assert (
        '<p class="note" id="advisory">red flags are advisory: &#39;bremen approve&#39; signs a flagged '
        "candidate too; each says what to check before signing (docs/review.md, &#39;Red flags&#39;)</p>"
    ) in html
    pngs = sorted((workspace / "r").glob("*.png"))
    assert pngs
    assert {stat.S_IMODE(p.stat().st_mode) for p in [page, *pngs]} == {0o644}
