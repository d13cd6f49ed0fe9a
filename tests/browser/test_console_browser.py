"""``bremen console`` in a real headless Chromium: hostile strings stay text, and a running
campaign's progress advances without a reload, then its finished timeline shows."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.browser.conftest import console_errors
from tests.console.console_helpers import HOSTILE, build_workspace
from tests.ros_domains import random_domain

REPO = Path(__file__).resolve().parents[2]


def wait_for(what: str, check: Callable[[], Any], timeout: float, poll: float = 0.2) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The console app of a hostile workspace, served in this process by uvicorn."""
    import uvicorn

    from bremen_robot.cli.console_cmd import bind
    from bremen_robot.console.app import create_app

    build_workspace(tmp_path / "ws", monkeypatch, hostile=True)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(tmp_path / "ws"), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(10)


def test_hostile_strings_are_shown_as_text_and_never_run(browser, served: str) -> None:
    browser.get(served)
    # the script has refreshed the tables from /api/view (textContent) at least once
    wait_for("the audit log", lambda: len(browser.find_elements("css selector", "#audit tbody tr")) == 5, 15)
    time.sleep(1.5)
    assert browser.execute_script("return window.__pwned") is None
    assert browser.find_element("id", "campaign-name").text == f"demo{HOSTILE}"
    notes = [td.text for td in browser.find_elements("css selector", "#audit tbody td:last-child")]
    assert f"looks fine{HOSTILE}" in notes and f"too jerky{HOSTILE}" in notes
    assert browser.find_element("id", "st-message").text == HOSTILE
    assert browser.find_element("id", "st-warning").text == HOSTILE
    assert console_errors(browser) == []


def _small_campaign(tmp_path: Path) -> Path:
    """The quickstart's robot and collect graph with two short deployments and a tiny trainer."""
    train = tmp_path / "train.yaml"
    train.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-panda",
                "task": "panda_reach",
                "threads": 1,
                "ensemble": {"members": 2, "hidden": [32], "max_epochs": 5, "batch_size": 256},
                "bc": {"hidden": [32], "steps": 200},
                "trpo": {"iterations": 2, "steps_per_iteration": 500, "horizon": 50, "init_log_std": -1.0},
            }
        )
    )
    camp = tmp_path / "campaign.yaml"
    quick = yaml.safe_load((REPO / "configs/campaigns/quickstart.yaml").read_text())
    quick.update(
        name="console-demo",
        robot=str(REPO / "configs/robots/panda.yaml"),
        collect=str(REPO / "configs/collect/panda-mujoco.yaml"),
        train=str(train),
        deployments=2,
        steps_per_deployment=1500,
        evaluation={"episodes": 3, "env": "sim:panda/mujoco"},
    )
    camp.write_text(yaml.safe_dump(quick))
    return camp


def _start(args: list[str], **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bremen_robot", *args], text=True, start_new_session=True, **kw
    )


def test_console_follows_a_running_campaign_to_its_finished_timeline(
    browser, tmp_path: Path, artifacts_dir: Path
) -> None:
    from bremen_robot.ros import rclpy_status

    ok, why = rclpy_status()
    if not ok:
        pytest.skip(why or "rclpy missing")
    pytest.importorskip("mujoco")
    ws = tmp_path / "ws"
    ws.mkdir()
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(random_domain(101, 200)),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
    )
    log = open(tmp_path / "campaign.log", "w")  # noqa: SIM115
    campaign = _start(
        [
            "campaign",
            "--config",
            str(_small_campaign(tmp_path)),
            "--workspace",
            str(ws),
            "--auto-approve",
            "--quiet",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    console = _start(
        ["console", "--workspace", str(ws), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        url = console.stdout.readline().split()[2]  # type: ignore[union-attr]
        browser.get(url)
        browser.execute_script("window.__loaded_once = 'yes'")  # gone if the page reloads

        def text(id_: str) -> str:
            return str(browser.find_element("id", id_).text)

        def steps_while_collecting() -> int:
            if campaign.poll() is not None:
                raise AssertionError((tmp_path / "campaign.log").read_text()[-3000:])
            s = text("st-steps")
            return int(s) if text("st-stage") == "collecting" and s.isdigit() and int(s) > 0 else 0

        first = wait_for("collection progress", steps_while_collecting, 180)
        later = wait_for(
            "the steps figure to advance", lambda: (n := steps_while_collecting()) > first and n, 60
        )
        assert later > first
        assert browser.execute_script("return window.__loaded_once") == "yes"
        browser.save_screenshot(str(artifacts_dir / "console-running.png"))

        assert campaign.wait(300) == 0, (tmp_path / "campaign.log").read_text()[-3000:]
        wait_for("the finished stage", lambda: text("st-stage") == "finished", 30)
        rows = lambda: [r.text for r in browser.find_elements("css selector", "#timeline tbody tr")]  # noqa: E731
        wait_for("the whole timeline", lambda: len(rows()) == 3, 30)
        assert [r.split()[0] for r in rows()] == ["1", "2", "candidate"]
        assert len(browser.find_elements("css selector", "#charts svg")) == 5
        assert browser.execute_script("return window.__loaded_once") == "yes"
        assert browser.execute_script("return window.__pwned") is None
        assert text("liveness").startswith("finished; last update")
        browser.save_screenshot(str(artifacts_dir / "console-finished.png"))
        assert console_errors(browser) == []
    finally:
        for proc in (campaign, console):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    shutil.copy(artifacts_dir / "console-finished.png", tmp_path / "console.png")


def test_a_warning_written_while_the_page_is_open_appears_without_a_reload(
    browser, served: str, tmp_path: Path
) -> None:
    from tests.console.console_helpers import status, write_json

    browser.get(served)
    wait_for("the first status", lambda: browser.find_element("id", "st-warning").text == HOSTILE, 15)
    warning = "the twin has vetoed every snapshot it ran at 2 deployments in a row"
    write_json(tmp_path / "ws" / "status.json", status(stage="collecting", warning=warning))
    wait_for("the new warning", lambda: browser.find_element("id", "st-warning").text == warning, 15)
    write_json(tmp_path / "ws" / "status.json", status(stage="collecting", warning=None))
    wait_for("the warning cleared", lambda: browser.find_element("id", "st-warning").text == "", 15)
    assert console_errors(browser) == []


def test_a_failure_turns_red_without_a_reload_and_audit_times_keep_one_line(
    browser, served: str, tmp_path: Path
) -> None:
    """At the fixture's 1280 px the hostile notes make the audit log wide: its time column wrapped."""
    from tests.console.console_helpers import status, write_json

    browser.get(served)
    wait_for("the audit log", lambda: len(browser.find_elements("css selector", "#audit tbody tr")) == 5, 15)

    def color(id_: str) -> str:
        return str(
            browser.execute_script(
                "return getComputedStyle(document.getElementById(arguments[0])).color", id_
            )
        )

    assert color("st-stage") == "rgb(29, 29, 31)"  # the body's text colour while it waits
    reason = "out of disk space while collecting deployment 2 into /runs/q/d2/bag; free space and re-run"
    write_json(tmp_path / "ws" / "status.json", status(stage="failed", message=reason))
    wait_for("the failed stage", lambda: browser.find_element("id", "st-stage").text == "failed", 15)
    assert browser.find_element("id", "st-message").text == reason
    assert color("st-stage") == color("st-message") == "rgb(176, 0, 32)"
    # line boxes of each time cell's text, in the rows the script wrote from /api/view
    lines = browser.execute_script(
        "return Array.from(document.querySelectorAll('#audit tbody tr')).map(function (tr) {"
        "  var r = document.createRange(); r.selectNodeContents(tr.cells[1]);"
        "  return r.getClientRects().length; });"
    )
    assert lines == [1, 1, 1, 1, 1]
    assert browser.execute_script("return window.innerWidth") <= 1280
    assert console_errors(browser) == []
