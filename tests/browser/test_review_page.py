"""The review page in a real headless Chromium: no console errors, the video loads and plays, the
images are there, and hostile text is shown, never run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bremen_robot.registry import Approval, PolicyRecord
from bremen_robot.registry.page import PageData, write_page
from bremen_robot.registry.review import write_plots
from bremen_robot.registry.verdict import Evaluation, Evidence, Interventions, PolicyEvidence, build_verdict
from bremen_robot.registry.video import side_by_side
from tests.browser.conftest import console_errors

SCRIPT = "<script>window.__pwned=1</script>"
IMG = "<img src=x onerror=window.__pwned=2>"


def _record() -> PolicyRecord:
    report = {
        "ensemble": {
            "train_mse": [1.0, 0.5, 0.3, 0.2],
            "holdout_mse": [[1.1, 1.3], [0.6, 0.8], [0.4, 0.7], [0.35, 0.72]],
            "best_holdout_mse": [0.35, 0.7],
        },
        "bc": {"loss": [2.0, 1.0, 0.6]},
        "trpo": {"kl": [0.004, 0.006, 0.009], "imagined_return": [-30.0, -20.0, -12.5]},
        "config": {"name": SCRIPT},
    }
    return PolicyRecord(
        id="9e4edb2bd2f5",
        sha256="9e4edb2bd2f5" + "0" * 52,
        state="approved",  # type: ignore[arg-type]
        kind="bremen",
        robot="panda",
        task="panda_reach",
        created_at="2026-12-04T00:00:00Z",
        registered_at="2026-12-04T00:00:01Z",
        manifest_digest="ab" * 32,
        manifest={},
        lineage={"parent": "random", "deployment": 1, "data_digests": [SCRIPT]},
        report=report,
        approval=Approval(f"eve{IMG}", "2026-12-04T01:00:00Z", f"checked {SCRIPT}", "x", "{}", "0" * 64),
    )


def _uniform(seed: int):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(-1.0, 1.0, 7)


@pytest.fixture
def review_page(tmp_path: Path) -> Path:
    import importlib.util

    if importlib.util.find_spec("mujoco") is None:  # find_spec: sim must choose the GL platform first
        pytest.skip("mujoco (sim extra) missing")
    rec = _record()
    ev = Evidence(
        candidate=PolicyEvidence(
            rec.id, "approved", Evaluation("d1/eval.json", "sim:panda/mujoco", 20, -5.3, 1.6, 0.8)
        ),
        deployed=PolicyEvidence(
            "random",
            "deployed",
            Evaluation("d1/eval_random.json", "sim:panda/mujoco", 20, -38.4, 10.6, 0.0),
            Interventions("collection of deployment 1", 30, 60, {"rate_limit": 50, "joint_limit": 10}),
        ),
        behavior_shift=0.8,
        noise_sigma=0.1,
        selection_warning=f"{IMG} is proposed although it does not beat the deployed policy",
        signature=f"signed by eve{IMG}",
        signature_ok=True,
        needs_signature=True,
    )
    video = side_by_side("sim:panda/mujoco", _uniform(0), _uniform(1), max_frames=40)
    assert video.data is not None, video.reason
    out = tmp_path / "reviews" / rec.id
    data = PageData(
        workspace=tmp_path / f"ws{SCRIPT}",
        text=f"report text {SCRIPT}",
        plots=write_plots(rec, out),
        video=video,
        deployed_label="random",
    )
    return write_page(rec, build_verdict(ev), data, out)


def test_review_page_renders_plays_and_escapes(browser, review_page: Path, artifacts_dir: Path) -> None:
    browser.get(review_page.as_uri())
    assert browser.title == "review 9e4edb2bd2f5"
    assert console_errors(browser) == []
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    # hostile strings are visible as text
    assert f"eve{IMG} at 2026-12-04" in browser.find_element("id", "approver").text
    assert f"checked {SCRIPT}" in browser.find_element("id", "approval-note").text
    assert f"RED FLAG: {IMG} is proposed" in browser.find_element("id", "flags").text
    assert SCRIPT in browser.find_element("id", "report-text").text
    # the verdict first, the commands to copy
    assert browser.find_element("css selector", "h2").get_attribute("id") == "verdict"
    assert "-5.3 ± 1.6 (20 episodes, d1/eval.json)" in browser.find_element("id", "verdict-table").text
    assert browser.find_element("id", "approve-cmd").text.startswith(
        "bremen approve 9e4edb2bd2f5 --operator NAME --note 'what you checked' --workspace "
    )
    # images decoded: ensemble, bc, trpo, holdout per member, imagined vs real return
    widths = browser.execute_script("return Array.from(document.images).map(i => i.naturalWidth)")
    assert len(widths) == 5 and all(w > 0 for w in widths), widths
    # the video loads and plays
    state = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        const v = document.getElementById('policy-video');
        const start = Date.now();
        (function wait() {
          if (v.readyState >= 2) {
            const t0 = v.currentTime;
            v.play().then(() => setTimeout(() => done({ready: v.readyState, t0: t0, t1: v.currentTime,
              w: v.videoWidth, err: v.error && v.error.code}), 800), e => done({err: String(e)}));
          } else if (Date.now() - start > 10000) {
            done({ready: v.readyState, err: v.error && v.error.code});
          }
          else { setTimeout(wait, 100); }
        })();"""
    )
    assert state.get("err") is None and state["ready"] >= 2, state
    assert state["t1"] > state["t0"] and state["w"] == 2 * 256 + 4, state
    assert console_errors(browser) == []
    shot = artifacts_dir / "review-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
