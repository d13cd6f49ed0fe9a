"""``bremen console``'s routes on hand-built workspaces (FastAPI's TestClient, no server)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from bremen_robot.console.app import create_app
from tests.console.console_helpers import HOSTILE, IMG, SCRIPT, build_workspace, status, write_json
from tests.registry.registry_helpers import make_artifact

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROUTES = ["/", "/api/status", "/api/view", "/api/timeline", "/api/registry", "/static/console.js"]


def client(ws: Path) -> TestClient:
    return TestClient(create_app(ws), base_url="http://127.0.0.1:8765")


def test_page_shows_timeline_pending_candidate_and_audit_log(tmp_path, monkeypatch):
    ids = build_workspace(tmp_path / "ws", monkeypatch)
    page = client(tmp_path / "ws").get("/")
    assert page.status_code == 200
    html = page.text
    # deployments: return ± std, success, samples trained on, interventions (from the hand-built files)
    assert (
        "<td>1</td><td>random</td><td>0</td><td>300</td><td>-50.0 ± 5.0</td><td>10%</td><td>3</td><td>5</td>"
        in html
    )
    first = ids["first"]
    assert (
        f"<td>2</td><td>{first}</td><td>300</td><td>500</td><td>-20.0 ± 2.0</td><td>60%</td>"
        "<td>2</td><td>1</td>" in html
    )
    # the candidate registered after deployment 2 is named while the campaign runs (no summary.json)
    assert (
        f"<td>candidate after 2</td><td>{ids['second']} (candidate)</td><td>500</td><td></td>"
        "<td>-10.0 ± 1.0</td><td>80%</td>" in html
    )
    assert html.count("<svg") == 5  # return and success against deployment and samples, interventions
    # the waiting candidate, with the command that writes its review page
    ws = (tmp_path / "ws").resolve()
    assert f"<code>bremen review {ids['second']} --workspace {ws}</code>" in html
    assert f"<td>{ids['rejected']}</td><td>ops</td><td>candidate → rejected</td><td>too jerky</td>" in html
    assert f"<td>{first}</td><td>alice</td><td>candidate → approved</td><td>looks fine</td>" in html
    view = client(tmp_path / "ws").get("/api/view").json()
    assert [p["id"] for p in view["pending"]] == [ids["second"]]
    assert [a["seq"] for a in view["audit"]] == ["5", "4", "3", "2", "1"]


def test_a_written_review_page_is_linked_and_served_sandboxed(tmp_path, monkeypatch):
    ids = build_workspace(tmp_path / "ws", monkeypatch, reviewed=True)
    c = client(tmp_path / "ws")
    assert f'<a href="reviews/{ids["second"]}">open the review page</a>' in c.get("/").text
    page = c.get(f"/reviews/{ids['second']}")
    assert page.status_code == 200 and "<p>verdict</p>" in page.text
    assert page.headers["content-security-policy"].startswith("sandbox allow-scripts;")
    assert c.get(f"/reviews/{ids['first']}").status_code == 404  # never written
    assert c.get("/reviews/..%2F..%2Fcampaign.json").status_code == 404
    assert c.get("/static/app.py").status_code == 404


def test_a_review_page_written_while_the_console_runs_is_linked_at_once(tmp_path, monkeypatch):
    """'bremen review' writes reviews/<id>/review.html and leaves the registry as it was: the
    pending row must switch from the command to the link without a registry change."""
    ids = build_workspace(tmp_path / "ws", monkeypatch)
    c = client(tmp_path / "ws")
    ws = (tmp_path / "ws").resolve()
    command = {"text": f"bremen review {ids['second']} --workspace {ws}", "code": True}
    assert [p["review"] for p in c.get("/api/view").json()["pending"]] == [command]
    (ws / "reviews" / ids["second"]).mkdir(parents=True)
    (ws / "reviews" / ids["second"] / "review.html").write_text("<p>verdict</p>")
    link = {"text": "open the review page", "href": f"reviews/{ids['second']}"}
    assert [p["review"] for p in c.get("/api/view").json()["pending"]] == [link]
    assert c.get("/api/registry").json()["pending"][0]["review_url"] == f"reviews/{ids['second']}"


def test_the_last_candidate_shows_its_state_in_the_registry_not_the_summarys(tmp_path, monkeypatch):
    """summary.json records the final candidate's state when the campaign ends; approving it
    afterwards must not leave the page saying 'candidate'."""
    from bremen_robot.registry import Registry, key_paths

    ws = tmp_path / "ws"
    ids = build_workspace(ws, monkeypatch)
    second = ids["second"]
    final = {"policy_id": second, "state": "candidate", "eval_return_mean": -10.0, "eval_return_std": 1.0}
    write_json(ws / "summary.json", {"campaign": "demo", "deployments": [], "final_candidate": final})
    c = client(ws)
    assert f"<td>candidate after 2</td><td>{second} (candidate)</td>" in c.get("/").text
    with Registry.open(ws) as reg:
        reg.approve(second, "alice", key_paths("alice", tmp_path / "operators")[0], note="ok")
    assert f"<td>candidate after 2</td><td>{second} (approved)</td>" in c.get("/").text
    assert c.get("/api/view").json()["timeline"][-1]["policy"] == f"{second} (approved)"


def test_the_last_selection_warning_is_on_the_page_and_none_leaves_it_empty(tmp_path, monkeypatch):
    build_workspace(tmp_path / "ws", monkeypatch)
    assert '<dd id="st-warning" class="error"></dd>' in client(tmp_path / "ws").get("/").text
    warning = "the twin has vetoed every snapshot it ran at 2 deployments in a row"
    write_json(tmp_path / "ws" / "status.json", status(warning=warning))
    assert f'<dd id="st-warning" class="error">{warning}</dd>' in client(tmp_path / "ws").get("/").text
    assert client(tmp_path / "ws").get("/api/status").json()["warning"] == warning


def test_a_failed_stage_and_its_reason_render_as_errors_and_audit_times_do_not_wrap(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    build_workspace(ws, monkeypatch)
    reason = "interrupted (Ctrl-C or SIGTERM)"
    write_json(ws / "status.json", status(stage="failed", message=reason))
    html = client(ws).get("/").text
    assert '<dd id="st-stage" class="error">failed</dd>' in html
    assert f'<dd id="st-message" class="error">{reason}</dd>' in html
    assert '<th data-key="at" class="nowrap">time</th>' in html
    assert html.count('<td class="nowrap">') == 5  # the time of each of the 5 audit entries
    write_json(ws / "status.json", status(stage="collecting"))
    html = client(ws).get("/").text
    assert '<dd id="st-stage">collecting</dd>' in html and '<dd id="st-message"></dd>' in html


def test_hostile_names_notes_and_config_strings_are_sent_as_text(tmp_path, monkeypatch):
    build_workspace(tmp_path / "ws", monkeypatch, hostile=True)
    page = client(tmp_path / "ws").get("/")
    html = page.text
    assert SCRIPT not in html and IMG not in html
    escaped = "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=window.__pwned=2&gt;"
    # campaign name (config), approval note, rejection reason, actor (login name), status message
    # and warning
    assert html.count(escaped) >= 7
    assert f'<dd id="st-warning" class="error">{escaped}</dd>' in html
    assert f"<td>too jerky{escaped}</td>" in html and f"<td>ops{escaped}</td>" in html
    assert "script-src 'self'" in page.headers["content-security-policy"]
    view = client(tmp_path / "ws").get("/api/view")
    assert view.headers["content-type"] == "application/json"
    assert view.json()["campaign"] == f"demo{HOSTILE}"  # JSON carries the text; the script writes textContent


@pytest.mark.parametrize(
    ("host", "code"),
    [
        ("127.0.0.1:8765", 200),
        ("localhost:8765", 200),
        ("[::1]:8765", 200),
        ("192.168.1.20:8765", 200),  # --host 0.0.0.0, opened by the LAN address
        ("evil.example:8765", 400),  # a page's own DNS name rebound to 127.0.0.1
        ("evil.example", 400),
        ("127.0.0.1.evil.example", 400),
        ("", 400),
    ],
)
def test_a_request_naming_another_site_as_host_is_refused(tmp_path, monkeypatch, host, code):
    """DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1 sends its
    requests with 'Host: evil.example'; the console must not hand it the registry or the log."""
    build_workspace(tmp_path / "ws", monkeypatch)
    c = client(tmp_path / "ws")
    for route in ("/", "/api/registry", "/api/view"):
        got = c.get(route, headers={"host": host})
        assert got.status_code == code, (route, host)
        if code == 400:
            assert "alice" not in got.text and "DNS rebinding" in got.text


def test_the_host_the_console_was_started_with_is_accepted(tmp_path):
    c = TestClient(create_app(tmp_path, ["robot-pc.lab"]), base_url="http://robot-pc.lab:8765")
    assert c.get("/api/status").status_code == 200
    assert c.get("/api/status", headers={"host": "other.lab"}).status_code == 400


def _pid_of_an_ended_process() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


@pytest.mark.parametrize(
    ("fields", "running", "stale", "liveness"),
    [
        ({}, True, False, "running (process "),
        ({"pid": "DEAD"}, False, True, "not running (process "),
        ({"updated_at": "2020-01-01T00:00:00+00:00"}, False, True, "not running (no update for"),
        ({"stage": "training", "updated_at": "2020-01-01T00:00:00+00:00"}, True, False, "running (process "),
        ({"stage": "finished", "pid": "DEAD"}, False, False, "finished; last update"),
        ({"host": "elsewhere", "pid": "DEAD"}, True, False, "running on elsewhere; last update"),
    ],
)
def test_status_says_whether_the_campaign_still_runs(tmp_path, fields, running, stale, liveness):
    if fields.get("pid") == "DEAD":
        fields = {**fields, "pid": _pid_of_an_ended_process()}
    write_json(tmp_path / "status.json", status(**fields))
    got = client(tmp_path).get("/api/status").json()
    assert (got["running"], got["stale"]) == (running, stale)
    assert got["liveness"].startswith(liveness)
    assert got["steps"] == 700 and got["steps_target"] == 3000


def test_a_workspace_without_a_campaign_yet_renders(tmp_path):
    c = client(tmp_path)
    assert c.get("/").status_code == 200
    assert c.get("/api/status").json()["liveness"] == "no campaign status yet"
    assert c.get("/api/view").json()["timeline"] == []


def test_damaged_workspace_files_are_shown_as_such_not_a_server_error(tmp_path, monkeypatch):
    """Valid JSON with the wrong shape: NaN (Python's json writes it), text or a list where a
    figure or an object goes. Every route answers 200 and the page says what it found."""
    ws = tmp_path / "ws"
    build_workspace(ws, monkeypatch)
    (ws / "d1" / "eval.json").write_text('{"mean": NaN, "std": 2.0, "success_rate": "sixty"}')
    (ws / "d2" / "eval.json").write_text('{"mean": -10.0, "std": Infinity, "success_rate": 0.8}')
    (ws / "d2" / "collect.json").write_text('{"episodes": "two", "interventions": [1], "policy_id": "p"}')
    write_json(ws / "d1" / "collect.json", [300, 3])
    write_json(ws / "campaign.json", ["demo"])
    write_json(ws / "summary.json", {"final_candidate": ["not", "an", "object"]})
    c = client(ws)
    for route in ROUTES:
        assert c.get(route).status_code == 200, route
    rows = c.get("/api/view").json()["timeline"]
    assert [r["return"] for r in rows] == [
        "-50.0 ± 5.0",
        "NaN (not a number)",
        "-10.0 ± Infinity (not a number)",
    ]
    assert [r["success"] for r in rows] == ["10%", "sixty (not a number)", "80%"]
    assert rows[1]["episodes"] == "two (not a number)" and rows[1]["interventions"] == "[1] (not a number)"
    assert rows[0]["samples"] == "collecting" and rows[0]["episodes"] == ""  # collect.json not an object
    assert "<td>NaN (not a number)</td>" in c.get("/").text


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    } | {str(p.relative_to(root)) + "/": "dir" for p in root.rglob("*") if p.is_dir()}


def test_serving_every_route_never_writes_to_the_workspace(tmp_path, monkeypatch):
    from bremen_robot.registry import Registry

    ws = tmp_path / "ws"
    ids = build_workspace(ws, monkeypatch, reviewed=True)
    c = client(ws)
    routes = [*ROUTES, f"/reviews/{ids['second']}", "/static/console.css"]
    writer = None
    try:
        for n in range(3):  # the campaign moves on between polls
            write_json(ws / "status.json", status(steps=700 + n * 100))
            if n == 1:  # a campaign opens the registry (its -wal and -shm files appear) and registers
                writer = Registry.open(ws)
                late = writer.register(make_artifact(tmp_path / "late", 9), lineage={"deployment": 2}).id
            before = _hashes(ws)
            for route in routes:
                assert c.get(route).status_code == 200, route
            assert _hashes(ws) == before
            assert c.get("/api/status").json()["steps"] == 700 + n * 100
        assert Path(f"{ws / 'registry.sqlite'}-wal").is_file()  # the new policy is in the WAL only
        assert [p["id"] for p in c.get("/api/view").json()["pending"]] == [ids["second"], late]
    finally:
        if writer is not None:
            writer.close()
