"""Hostile text (notes, operator names, config strings, a workspace path) on the review page and in
the terminal: shown as text, never run as HTML/JS and never sent to the terminal as escapes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from registry_helpers import ArtifactFactory
from review_fixtures import REPORT, campaign_like

from bremen_robot.cli import main
from bremen_robot.registry import Approval, PolicyRecord, Registry
from bremen_robot.registry.page import PageData, render_page
from bremen_robot.registry.reviewing import make_review

SCRIPT = "<script>window.__pwned=1</script>"
IMG = "<img src=x onerror=window.__pwned=2>"
ESCAPED = ("&lt;script&gt;window.__pwned=1&lt;/script&gt;", "&lt;img src=x onerror=window.__pwned=2&gt;")
TERMINAL = "\x1b]0;owned\x07\x1b[2J"  # set the window title, clear the screen


def hostile_report() -> dict[str, Any]:
    return {
        **REPORT,
        "config": {"name": SCRIPT},
        "data": {"source": IMG, "transitions": 300},
        "campaign_selection": {
            "line": f"proposing {SCRIPT}",
            "warning": f"{IMG} is proposed although it does not beat the deployed policy",
            "proposed": SCRIPT,
            "table": [{"snapshot": IMG, "offline_estimate": -10.0, "twin": None, "chosen": True}],
            "twin": None,
        },
    }


def hostile_record(ws: Path, reg: Registry, factory: ArtifactFactory) -> PolicyRecord:
    rec = campaign_like(ws, reg, factory, report=hostile_report())
    approval = Approval(
        operator=f"eve{SCRIPT}", time="2026-12-04T00:00:00Z", note=f"{IMG} {TERMINAL}", signature="x",
        payload="{}", key_fingerprint="0" * 64,
    )  # fmt: skip
    lineage = {**rec.lineage, "data_digests": [SCRIPT]}
    return dataclasses.replace(rec, approval=approval, lineage=lineage)


def hostile_page(tmp_path: Path, reg: Registry, factory: ArtifactFactory) -> str:
    ws = tmp_path / f"ws{SCRIPT}"
    rec = hostile_record(ws, reg, factory)
    review = make_review(rec, reg.policies(), ws, None)
    return render_page(rec, review.verdict, PageData(workspace=ws, text=review.text))


def test_the_page_shows_hostile_text_escaped(
    tmp_path: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    html = hostile_page(tmp_path, registry, artifact_factory)
    assert SCRIPT not in html and IMG not in html
    assert "<script" not in html.lower() and "onerror=" not in html.replace(
        "onerror=window.__pwned=2&gt;", ""
    )
    for text in ESCAPED:
        assert text in html
    assert f"eve{ESCAPED[0]} at 2026-12-04" in html  # operator name, as text
    assert f"RED FLAG: {ESCAPED[1]} is proposed" in html  # a config string in a flag, as text


def test_the_terminal_shows_escapes_as_text(
    capsys: pytest.CaptureFixture[str], workspace: Path, registry: Registry, artifact_factory: ArtifactFactory
) -> None:
    rec = campaign_like(workspace, registry, artifact_factory, report=hostile_report())
    (workspace / "trusted_operators").mkdir()
    registry.close()
    with Registry.open(workspace) as reg:  # a real approval carrying the hostile note
        from bremen_robot.registry import init_operator

        priv, _ = init_operator("alice", workspace / "keys")
        reg.approve(rec.id, "alice", priv, note=f"{SCRIPT} {TERMINAL}")
    assert main(["review", rec.id, "--workspace", str(workspace), "--no-video", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert f"{SCRIPT} \\x1b]0;owned\\x07\\x1b[2J" in out  # visible, inert
    html = (workspace / "reviews" / rec.id / "review.html").read_text()
    assert SCRIPT not in html and ESCAPED[0] in html
    # the approval's signature is checked against the key in the workspace
    assert "signed by alice at" in out and "verified with alice.pub" in out
