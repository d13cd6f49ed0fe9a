"""The campaign's ``status.json`` (campaign/status.py) and ``bremen console``'s one-line errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.campaign.runner import Campaign, CollectRequest
from bremen_robot.cli import main
from tests.campaign.test_campaign_logic import DirectCollector, write_campaign


class EventCollector(DirectCollector):
    """Sends the runner's episode events (and an e-stop) through ``req.on_event`` the way the
    graph's collect does, recording status.json after each one."""

    def __init__(self, ws: Path) -> None:
        super().__init__()
        self.ws = ws
        self.seen: list[dict] = []

    def __call__(self, req: CollectRequest):
        assert req.on_event is not None
        self.seen.append(json.loads((self.ws / "status.json").read_text()))
        for evt in (
            {"event": "start", "id": 0},
            {"event": "stop", "id": 0, "steps": 100, "interventions": 2},
            {"event": "estop", "latched": True},
            {"event": "start", "id": 1},
            {"event": "stop", "id": 1, "steps": 100, "interventions": 1},
        ):
            req.on_event(evt)
            self.seen.append(json.loads((self.ws / "status.json").read_text()))
        return super().__call__(req)


def test_the_campaign_writes_its_stage_and_live_collection_counts(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path))
    ws = tmp_path / "ws"
    collector = EventCollector(ws)
    Campaign(cfg, ws, auto_approve=True, collect_fn=collector, log=lambda m: None).run()
    seen = collector.seen
    assert [(s["stage"], s["deployment"]) for s in seen[:1] + seen[6:7]] == [
        ("collecting", 1),
        ("collecting", 2),
    ]
    assert [(s["episodes"], s["steps"], s["interventions"], s["estop"]) for s in seen[1:6]] == [
        (0, 0, 0, "unknown"),  # a start is written at most once a second, so this is the last write
        (1, 100, 2, "unknown"),
        (1, 100, 2, "latched"),
        (1, 100, 2, "latched"),
        (2, 200, 3, "latched"),
    ]
    assert seen[6]["episodes"] == 0 and seen[6]["policy_id"] != "random"  # a new deployment starts at 0
    # deployment 1's candidate is deployment 2's policy, not a candidate of deployment 2
    assert "candidate" not in seen[6] and "candidate" not in seen[0]
    final = json.loads((ws / "status.json").read_text())
    assert (final["stage"], final["deployment"], final["deployments"]) == ("finished", 2, 2)
    assert (final["steps"], final["steps_target"], final["interventions"]) == (200, 200, 3)


def _steps_through(writer, events) -> list[tuple[int, int, int]]:
    """(episodes, steps, steps_target) in status.json after each event or stage change."""
    seen = []
    for e in events:
        if isinstance(e, tuple):
            writer.stage(*e[:2], **(e[2] if len(e) > 2 else {}))
        else:
            writer.on_collect_event(e)
        st = json.loads(writer.path.read_text())
        seen.append((st["episodes"], st["steps"], st["steps_target"]))
    return seen


def test_the_step_count_starts_again_at_each_deployments_collection(tmp_path, monkeypatch):
    """Two deployments of 3000 steps, hand-built events: deployment 2 counts its own steps
    (the operator saw 4700 / 3000 and 6000 / 3000 there, episodes starting again at 1)."""
    from bremen_robot.campaign import status as status_mod

    monkeypatch.setattr(status_mod, "HEARTBEAT_S", 0.0)  # every progress event is written
    writer = status_mod.StatusWriter(tmp_path, campaign="q", deployments=3, steps_target=3000, log=print)
    one = [
        ("evaluating", 1),
        ("collecting", 1),
        {"event": "start", "id": 0},
        {"event": "progress", "steps": 1200},
        {"event": "stop", "id": 0, "steps": 1500, "interventions": 1},
        {"event": "start", "id": 1},
        {"event": "stop", "id": 1, "steps": 1500, "interventions": 0},
        ("ingesting", 1, {"episodes": 2, "steps": 3000, "interventions": 1}),
        ("training", 1),
    ]
    two = [
        ("evaluating", 2),
        ("collecting", 2),
        {"event": "start", "id": 0},
        {"event": "progress", "steps": 1700},
        {"event": "stop", "id": 0, "steps": 1500, "interventions": 0},
        {"event": "start", "id": 1},
        {"event": "progress", "steps": 200},
        {"event": "stop", "id": 1, "steps": 1500, "interventions": 0},
    ]
    assert _steps_through(writer, one)[-3:] == [(2, 3000, 3000), (2, 3000, 3000), (2, 3000, 3000)]
    assert _steps_through(writer, two) == [
        (0, 0, 3000),
        (0, 0, 3000),
        (0, 0, 3000),
        (0, 1700, 3000),
        (1, 1500, 3000),
        (1, 1500, 3000),
        (1, 1700, 3000),
        (2, 3000, 3000),
    ]
    assert "done_steps" not in json.loads(writer.path.read_text())


def test_while_waiting_for_approval_the_status_message_says_what_to_do(tmp_path, monkeypatch):
    from bremen_robot.registry import Registry
    from tests.campaign.test_campaign_logic import _with_trusted_operator

    cfg = _with_trusted_operator(tmp_path, monkeypatch)
    ws = tmp_path / "ws"
    messages: list[str] = []
    seen: dict = {}

    def operator() -> None:  # another terminal: reads the status while asked, then approves
        for _ in range(600):
            time.sleep(0.1)
            if any("waiting for approval" in m for m in messages):
                seen.update(json.loads((ws / "status.json").read_text()))
                with Registry.open(ws) as reg:
                    seen["id"] = next(r.id for r in reg.policies() if r.state == "candidate")
                    reg.approve(seen["id"], "alice")
                return

    t = threading.Thread(target=operator)
    t.start()
    summary = Campaign(cfg, ws, collect_fn=DirectCollector(), log=messages.append).run()
    t.join()
    c, where = seen["id"], f"--workspace {ws.resolve()}"
    assert [r["policy_id"] for r in summary["deployments"]][1] == c  # the approved one collected
    assert (seen["stage"], seen["policy_id"]) == ("waiting_for_approval", c)
    assert seen["message"] == (
        f"review candidate {c} (bremen review {c} {where}), then approve it "
        f"(bremen approve {c} --operator NAME {where}) or reject it (bremen reject {c} --reason TEXT {where})"
    )


def test_a_status_that_cannot_be_written_is_one_warning_and_the_campaign_goes_on(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path))
    ws = tmp_path / "ws"
    (ws / "status.json").mkdir(parents=True)  # os.replace onto a folder fails: an OSError
    messages: list[str] = []
    summary = Campaign(cfg, ws, auto_approve=True, collect_fn=EventCollectorless(), log=messages.append).run()
    assert [r["deployment"] for r in summary["deployments"]] == [1, 2]
    warnings = [m for m in messages if "status.json" in m]
    assert len(warnings) == 1 and warnings[0].startswith("warning: cannot write")
    assert (ws / "summary.json").is_file()


class EventCollectorless(DirectCollector):
    def __call__(self, req: CollectRequest):
        req.on_event({"event": "stop", "id": 0, "steps": 5, "interventions": 0})  # type: ignore[misc]
        return super().__call__(req)


def test_a_failed_campaign_says_why_in_its_status(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path))
    ws = tmp_path / "ws"
    with pytest.raises(KeyboardInterrupt):
        Campaign(cfg, ws, auto_approve=True, collect_fn=DirectCollector(fail_at=2), log=lambda m: None).run()
    st = json.loads((ws / "status.json").read_text())
    assert (st["stage"], st["deployment"], st["message"]) == ("failed", 2, "interrupted (Ctrl-C or SIGTERM)")


def test_console_refuses_a_missing_workspace_in_one_line(tmp_path, capsys):
    assert main(["console", "--workspace", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"error: --workspace {tmp_path / 'nope'}: does not exist; "
        "pass the folder of a campaign (bremen campaign --workspace)"
    )


def test_console_refuses_a_port_in_use_and_warns_about_other_hosts(tmp_path, capsys):
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        assert main(["console", "--workspace", str(tmp_path), "--host", "0.0.0.0", "--port", str(port)]) == 2
    finally:
        busy.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith(
        "warning: --host 0.0.0.0: the page is then reachable from the network and has no authentication"
    )
    assert lines[1] == f"error: --port {port}: already in use on 0.0.0.0; pass another --port"
    assert len(lines) == 2


def test_console_serves_on_localhost_by_default(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "bremen_robot", "console", "--workspace", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("bremen console: http://127.0.0.1:")
        url = line.split()[2]
        import urllib.request

        with urllib.request.urlopen(url + "api/status", timeout=10) as r:
            assert json.load(r)["liveness"] == "no campaign status yet"
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.stderr.read() == ""  # type: ignore[union-attr]
