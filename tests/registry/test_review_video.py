"""Without OpenGL the page says why in one line instead of carrying a broken video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from registry_helpers import ArtifactFactory
from review_fixtures import campaign_like

from bremen_robot.registry import Registry
from bremen_robot.registry import video as video_mod
from bremen_robot.registry.reviewing import make_review


class _NoGL:
    metadata: dict[str, Any] = {"render_fps": 20}

    def reset(self, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
        return np.zeros(2), {}

    def render(self) -> np.ndarray:
        raise RuntimeError("MuJoCo offscreen rendering failed: no OpenGL platform")

    def close(self) -> None:
        pass


def test_no_gl_gives_one_line_instead_of_a_video(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workspace: Path, registry: Registry,
    artifact_factory: ArtifactFactory,
) -> None:  # fmt: skip
    import sim

    monkeypatch.setattr(sim, "make", lambda *a, **k: _NoGL())
    rec = campaign_like(workspace, registry, artifact_factory)
    # the fixture's evaluation ran in 'point'; pretend it was a MuJoCo one to reach the renderer
    reason = video_mod.side_by_side("sim:panda/mujoco", lambda o: o, None).reason
    assert reason == (
        "no video: rendering failed (RuntimeError: MuJoCo offscreen rendering failed: no OpenGL platform)"
    )
    review = make_review(rec, registry.policies(), workspace, tmp_path / "out", plots=False)
    assert review.video_reason == "no video: the evaluation environment 'point' is not a MuJoCo simulator"
    html = (tmp_path / "out" / "review.html").read_text()
    assert '<p id="no-video">no video: the evaluation environment' in html and "<video" not in html
