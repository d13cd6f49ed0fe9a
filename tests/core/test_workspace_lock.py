"""One writer per workspace / --out folder, with real processes (issue 15, item 11).

A second ``bremen campaign`` / ``collect --out`` / ``train --out`` on a folder another live
process holds is refused at once, in one line naming the holder's pid and host; once the holder
is killed with SIGKILL (no clean-up ran, the lock file stays) the same command proceeds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bremen_robot.cli import main
from bremen_robot.workspace_lock import LOCK_FILE, LockedError, folder_lock

ROOT = Path(__file__).resolve().parents[2]


def _spawn(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _hold(folder: Path) -> subprocess.Popen:
    """A separate process that takes the folder's lock and keeps it until killed."""
    code = (
        "import sys, time\n"
        "from bremen_robot.workspace_lock import folder_lock\n"
        f"with folder_lock({str(folder)!r}, 'test'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(300)\n"
    )
    proc = _spawn(["-c", code])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _wait_for_lock_of(proc: subprocess.Popen, folder: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads((folder / LOCK_FILE).read_text() or "{}").get("pid") == proc.pid:
                return
        except (OSError, ValueError):
            pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the holder never took the lock")


def _kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture
def dataset(tmp_path, point_data):
    return point_data.save(tmp_path / "d.npz")


def test_every_writing_command_is_refused_at_once_naming_the_holder(tmp_path, dataset, capsys):
    folder = tmp_path / "shared"
    holder = _hold(folder)
    try:
        commands = [
            ["campaign", "--config", "quickstart", "--workspace", str(folder)],
            ["collect", "--config", "configs/collect/halfcheetah.yaml", "--random", "--steps", "5"]
            + ["--out", str(folder)],
            ["train", "--config", "point-demo", "--data", str(dataset), "--out", str(folder)],
        ]
        for argv in commands:
            t0 = time.monotonic()
            assert main(argv) == 2, argv
            err = capsys.readouterr().err.strip()
            assert err.count("\n") == 0, err
            assert f"is in use by pid {holder.pid} on host {socket.gethostname()}" in err, err
            assert time.monotonic() - t0 < 30  # refused, not queued behind the holder
        _kill9(holder)
        assert (folder / LOCK_FILE).is_file()  # SIGKILL ran no clean-up: a stale lock file is left
        # ... and does not block: the campaign gets past the lock to its own next check
        (folder / "campaign.json").write_text(json.dumps({"name": "other", "config_digest": "0" * 64}))
        assert main(["campaign", "--config", "quickstart", "--workspace", str(folder)]) == 2
        assert "belongs to campaign 'other'" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_train_leaves_a_lock_that_does_not_block(tmp_path, dataset, capsys):
    out = tmp_path / "cand"
    trainer = _spawn(
        ["-m", "bremen_robot", "train", "--config", "point-demo", "--data", str(dataset)]
        + ["--out", str(out), "--quiet"]
    )
    try:
        _wait_for_lock_of(trainer, out)
        assert main(["train", "--config", "point-demo", "--data", str(dataset), "--out", str(out)]) == 2
        assert f"in use by pid {trainer.pid}" in capsys.readouterr().err
        _kill9(trainer)
        # proceeds: past the lock and the emptiness check, it stops only at the missing dataset
        assert (
            main(["train", "--config", "point-demo", "--data", str(tmp_path / "no.npz"), "--out", str(out)])
            == 2
        )
        err = capsys.readouterr().err
        assert "no.npz' not found" in err and "in use" not in err
    finally:
        trainer.kill()
        trainer.wait()


def test_a_clean_release_removes_the_lock_and_a_folder_it_created_empty(tmp_path):
    fresh = tmp_path / "new"
    with folder_lock(fresh, "test") as lock:
        assert json.loads(lock.read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}
    assert not fresh.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    with folder_lock(kept, "test"):
        (kept / "result.json").write_text("{}")
    assert sorted(p.name for p in kept.iterdir()) == ["result.json"]


def test_a_campaign_run_from_python_is_refused_while_another_process_holds_the_workspace(tmp_path):
    """The lock is in Campaign.run itself, so library callers (the harness) are covered too; in
    the holding process a nested lock of the same folder just enters (the CLI locks, then runs)."""
    from bremen_robot.campaign.config import load_campaign_config
    from bremen_robot.campaign.runner import Campaign

    folder = tmp_path / "ws"
    holder = _hold(folder)
    try:
        camp = Campaign(load_campaign_config("quickstart"), folder, auto_approve=True)
        with pytest.raises(LockedError, match=f"is in use by pid {holder.pid}"):
            camp.run()
    finally:
        _kill9(holder)
    with folder_lock(folder, "workspace") as outer:
        with folder_lock(folder, "workspace"):
            assert json.loads(outer.read_text())["pid"] == os.getpid()
        # leaving the inner block keeps the outer's lock: another process is still refused
        assert json.loads(outer.read_text())["pid"] == os.getpid()
        code = "from bremen_robot.workspace_lock import folder_lock\n"
        code += f"folder_lock({str(folder)!r}, 'w').__enter__()"
        probe = _spawn(["-c", code])
        _, err = probe.communicate(timeout=60)
        assert probe.returncode != 0 and f"pid {os.getpid()}" in err, err
    assert not (folder / LOCK_FILE).exists()


def test_library_train_and_collect_are_refused_while_another_process_holds_their_output(tmp_path, point_data):
    """The lock is in trainer.train and ros.collect.collect themselves, not only in the CLI."""
    from bremen_robot.config.train import TrainConfig
    from bremen_robot.ros.collect import collect
    from bremen_robot.trainer import train

    out = tmp_path / "out"
    holder = _hold(out)
    try:
        with pytest.raises(LockedError, match=f"is in use by pid {holder.pid}"):
            tiny = {"members": 2, "hidden": [8], "max_epochs": 1}  # fast if ever run (it must not be)
            cfg = TrainConfig.model_validate(
                {
                    "task": "point",
                    "ensemble": tiny,
                    "bc": {"hidden": [8], "steps": 5},
                    "trpo": {"iterations": 1},
                }
            )
            train(cfg, point_data, out)
        with pytest.raises(LockedError, match=f"is in use by pid {holder.pid}"):
            collect(ROOT / "configs" / "collect" / "halfcheetah.yaml", random=True, steps=10, out=out)
    finally:
        _kill9(holder)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing written under the holder
