"""Item 11 (registry part): concurrent writers, including the ones that create the database.

Registry writers lock with SQLite itself: every change is one ``BEGIN IMMEDIATE`` transaction
(the database's single write lock, waited for up to the busy timeout), and a new database is
built in a temporary file and linked into place, so no process ever opens a half-made one.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from registry_helpers import ArtifactFactory
from test_registry_concurrency import _assert_consistent

from bremen_robot.registry import Registry
from bremen_robot.registry import db as regdb


@pytest.mark.timeout(60)
def test_a_database_being_created_is_invisible_to_other_writers(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The creator stalls inside its schema transaction; another writer neither waits for it
    nor sees its half-made file, and both end up on one complete registry."""
    inside, calls = threading.Event(), {"creator": 0}
    release = threading.Event()
    original = regdb.schema_version

    def stalling_schema_version(conn: Any) -> int:
        if threading.current_thread().name == "creator":
            calls["creator"] += 1
            if calls["creator"] == 2:  # migrate's second read is under BEGIN IMMEDIATE
                inside.set()
                release.wait(3)
        return original(conn)

    monkeypatch.setattr(regdb, "schema_version", stalling_schema_version)
    opened: list[Registry] = []
    creator = threading.Thread(target=lambda: opened.append(Registry.open(workspace)), name="creator")
    creator.start()
    assert inside.wait(10)
    t0 = time.monotonic()
    with Registry.open(workspace) as reg:
        assert reg.record_random_deployment("first") == 1
    waited = time.monotonic() - t0
    release.set()
    creator.join(10)
    assert waited < 2.0, f"the second writer waited {waited:.1f} s for the creator"
    with opened[0] as reg:
        assert reg.deployment_count() == 1
    assert sorted(p.name for p in workspace.iterdir()) == ["registry.sqlite"]


def _writer(ws: str, export: str, key: str, barrier: Any, out: Any) -> None:
    try:
        barrier.wait(timeout=30)
        with Registry.open(Path(ws)) as reg:
            rec = reg.register(Path(export))
            reg.approve(rec.id, "alice", Path(key))
            reg.mark_deployed(rec.id)
        out.put("ok")
    except Exception as exc:  # reported to the parent, which asserts on it
        out.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.timeout(120)
def test_concurrent_writers_on_a_new_workspace(
    tmp_path: Path, artifact_factory: ArtifactFactory, alice: tuple[Path, Path]
) -> None:
    ctx = mp.get_context("fork")
    n = 4
    for round_ in range(3):
        ws = tmp_path / f"ws{round_}"
        exports = [artifact_factory() for _ in range(n)]
        barrier, out = ctx.Barrier(n), ctx.Queue()
        procs = [
            ctx.Process(target=_writer, args=(str(ws), str(e), str(alice[0]), barrier, out)) for e in exports
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert results == ["ok"] * n
        _assert_consistent(ws)
        with Registry.open(ws, readonly=True) as reg:
            assert reg.deployment_count() == n
            assert {r.approval.operator for r in reg.policies() if r.approval} == {"alice"}
        assert not [p for p in ws.iterdir() if p.name.startswith(".registry.sqlite.new-")]
