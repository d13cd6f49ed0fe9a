"""Racing approvals and processes killed mid-write leave a consistent, intact database.

Racing approvals are defined as: exactly one wins; the other gets ApprovalError
"already approved by ..." and writes nothing (each approval is one BEGIN IMMEDIATE transaction
that re-reads the state under the write lock).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from registry_helpers import ArtifactFactory

from bremen_robot.policy.artifact import sha256_file
from bremen_robot.registry import Registry, verify_for_deployment
from bremen_robot.robot_config import RobotConfig

HERE = Path(__file__).resolve().parent


def _approve_worker(ws: str, pid: str, key: str, name: str, barrier: Any, out: Any) -> None:
    try:
        with Registry.open(Path(ws)) as reg:
            barrier.wait(timeout=20)
            reg.approve(pid, name, Path(key), note=f"by {name}")
        out.put((name, "ok"))
    except Exception as exc:  # reported to the parent, which asserts on it
        out.put((name, f"{type(exc).__name__}: {exc}"))


@pytest.mark.timeout(60)
def test_racing_approvals_exactly_one_wins(
    registry: Registry,
    artifact_factory: ArtifactFactory,
    alice: tuple[Path, Path],
    operator_dir: Path,
    robot: RobotConfig,
) -> None:
    from bremen_robot.registry import init_operator

    bob_key, _ = init_operator("bob", operator_dir)
    ctx = mp.get_context("fork")
    for _ in range(3):  # several rounds: the race must be decided by the database every time
        rec = registry.register(artifact_factory())
        barrier, out = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(
                target=_approve_worker, args=(str(registry.workspace), rec.id, str(k), n, barrier, out)
            )
            for n, k in (("alice", alice[0]), ("bob", bob_key))
        ]
        for p in procs:
            p.start()
        results = dict(out.get(timeout=30) for _ in procs)
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0
        winners = [n for n, r in results.items() if r == "ok"]
        assert len(winners) == 1, results
        loser = next(n for n in results if n not in winners)
        assert results[loser].startswith("ApprovalError: ") and "already approved by" in results[loser]
        assert winners[0] in results[loser]

        final = registry.get(rec.id)
        assert final.state == "approved"
        assert final.approval is not None and final.approval.operator == winners[0]
        moves = [(a.from_state, a.to_state, a.actor) for a in registry.audit(rec.id)]
        assert moves[1:] == [("candidate", "approved", winners[0])]
        if winners[0] == "alice":  # the robot trusts alice only
            verify_for_deployment(rec.id, robot, registry)
    seqs = [a.seq for a in registry.audit()]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)) == 6


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {here!r})
    from registry_helpers import make_artifact
    from bremen_robot.registry import Registry, init_operator

    ws, exports, mode = Path({ws!r}), Path({exports!r}), {mode!r}
    key, _ = init_operator("kim", exports / "keys")
    reg = Registry.open(ws)
    if mode == "hang-in-transaction":
        rec = reg.register(make_artifact(exports / "hang", seed=999))
        original = Registry._append_audit
        def append_then_hang(self, *args):
            original(self, *args)
            print("IN-TRANSACTION", rec.sha256, flush=True)
            time.sleep(60)
        Registry._append_audit = append_then_hang
        reg.approve(rec.id, "kim", key)
    else:
        i = 0
        while True:
            rec = reg.register(make_artifact(exports / f"a{{i}}", seed=1000 + i))
            reg.approve(rec.id, "kim", key)
            reg.mark_deployed(rec.id)
            if i % 2:
                reg.retire(rec.id)
            print("DONE", i, flush=True)
            i += 1
    """
)


def _spawn(tmp_path: Path, ws: Path, mode: str) -> subprocess.Popen[str]:
    exports = tmp_path / f"child-{mode}"
    exports.mkdir()
    script = CHILD.format(here=str(HERE), ws=str(ws), exports=str(exports), mode=mode)
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(proc: subprocess.Popen[str], prefix: str, count: int, timeout: float = 40.0) -> list[str]:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"child exited early: {err[-2000:]}")
        if line.startswith(prefix):
            seen.append(line.strip())
        assert time.monotonic() < deadline, "child too slow"
    return seen


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _assert_consistent(ws: Path) -> None:
    """integrity_check ok; every row complete; the audit log agrees with the states."""
    conn = sqlite3.connect(ws / "registry.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        states = dict(conn.execute("SELECT sha256, state FROM policies").fetchall())
        approved = {r[0] for r in conn.execute("SELECT policy_sha256 FROM approvals")}
        deployed = dict(conn.execute("SELECT policy_sha256, number FROM deployments").fetchall())
        for sha, state in states.items():
            moves = conn.execute(
                "SELECT from_state, to_state FROM audit WHERE policy_sha256 = ? ORDER BY seq", (sha,)
            ).fetchall()
            assert moves[0] == (None, "candidate")
            assert moves[-1][1] == state
            assert all(moves[i][1] == moves[i + 1][0] for i in range(len(moves) - 1))
            assert (sha in approved) == (state != "candidate")
            assert (sha in deployed) == any(m[1] == "deployed" for m in moves)
            entry = ws / "artifacts" / sha
            assert sha256_file(entry / "policy.pt") == sha and (entry / "manifest.json").is_file()
        assert sorted(deployed.values()) == list(range(1, len(deployed) + 1))
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_killed_mid_transaction_leaves_nothing_behind(tmp_path: Path, workspace: Path) -> None:
    Registry.open(workspace).close()
    proc = _spawn(tmp_path, workspace, "hang-in-transaction")
    try:
        (line,) = _wait_for(proc, "IN-TRANSACTION", 1)
        # approval row, state change and audit row are written, COMMIT has not happened
        with Registry.open(workspace) as reg:  # a reader meanwhile sees the committed state only
            assert reg.get(line.split()[1]).state == "candidate"
    finally:
        _kill(proc)
    sha = line.split()[1]
    _assert_consistent(workspace)
    with Registry.open(workspace) as reg:
        rec = reg.get(sha)
        assert rec.state == "candidate" and rec.approval is None
        assert [a.to_state for a in reg.audit(sha)] == ["candidate"]


@pytest.mark.timeout(120)
def test_killed_while_writing_in_a_loop(
    tmp_path: Path, workspace: Path, artifact_factory: ArtifactFactory
) -> None:
    Registry.open(workspace).close()
    proc = _spawn(tmp_path, workspace, "loop")
    try:
        _wait_for(proc, "DONE", 3)
        time.sleep(0.05)  # somewhere inside the next iteration's writes
    finally:
        _kill(proc)
    _assert_consistent(workspace)
    with Registry.open(workspace) as reg:  # and the registry keeps working afterwards
        n = reg.deployment_count()
        assert n >= 3
        rec = reg.register(artifact_factory())
        assert rec.state == "candidate"
        assert len(reg.policies()) >= 4
    _assert_consistent(workspace)
