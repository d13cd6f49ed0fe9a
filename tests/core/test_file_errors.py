"""Paths, permissions and full disks a user can get wrong: one line naming the path and the fix,
exit 2, nothing already written touched (issue 15, items 12 and 13).

Root ignores file modes, so permission errors are provoked where even root cannot write
(``/sys``: sysfs refuses new entries), full disks with ``/dev/full`` (every write fails with
ENOSPC), and a path whose parent is a file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest

from bremen_robot import fsutil
from bremen_robot.cli import main
from bremen_robot.cli.common import describe_os_error

SYS = Path("/sys")
needs_sys = pytest.mark.skipif(not (SYS / "kernel").is_dir(), reason="needs Linux sysfs")


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "internal error" not in err, err
    return err


def test_train_refuses_a_non_empty_out_folder_and_leaves_it_alone(tmp_path, point_data, capsys):
    data = point_data.save(tmp_path / "d.npz")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.json").write_text('{"mine": true}')
    assert main(["train", "--config", "point-demo", "--data", str(data), "--out", str(out)]) == 2
    assert _one_line(capsys) == (
        f"error: --out {out} exists and is not empty; artifacts are never overwritten, pick a new folder"
    )
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text() == '{"mine": true}'


def test_out_and_workspace_that_are_files(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    assert main(["train", "--config", "point-demo", "--data", str(f), "--out", str(f)]) == 2
    assert _one_line(capsys) == f"error: --out {f} is a file, not a folder; pass a new folder path"
    assert main(["campaign", "--config", "quickstart", "--workspace", str(f)]) == 2
    assert _one_line(capsys) == f"error: --workspace {f} is a file, not a folder; pass a folder path"
    argv = ["collect", "--config", "configs/collect/halfcheetah.yaml", "--random", "--steps", "5"]
    assert main([*argv, "--out", str(f)]) == 2
    assert _one_line(capsys) == f"error: --out {f} is a file, not a folder; pass a new folder path"
    assert main(["campaign", "--config", "quickstart", "--workspace", str(f / "ws")]) == 2
    assert _one_line(capsys) == (
        f"error: {f / 'ws'}: a part of this path is a file, not a folder; "
        "pass a path whose parents are folders"
    )
    assert f.read_text() == "keep me"


@needs_sys
def test_a_folder_nobody_may_write(tmp_path, capsys):
    ws = SYS / "bremen-test-ws"
    assert main(["campaign", "--config", "quickstart", "--workspace", str(ws)]) == 2
    err = _one_line(capsys)
    assert err.startswith(f"error: {ws}: ") and err.endswith(
        "use a folder you can write to, or fix its permissions"
    )
    assert main(["dataset", "collect", "--env", "point", "--steps", "10", "--out", str(SYS / "d.npz")]) == 2
    err = _one_line(capsys)  # the target is named, not the temporary file the write went to
    assert err.startswith(f"error: {SYS / 'd.npz'}: ") and err.endswith("or fix its permissions")


def test_a_full_disk_names_the_file_and_keeps_what_was_there(tmp_path, monkeypatch, capsys):
    out = tmp_path / "d.npz"
    real_mkstemp = tempfile.mkstemp

    def mkstemp_on_a_full_disk(**kwargs):  # the temporary file exists; its writes go to /dev/full
        fd, name = real_mkstemp(**kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(fsutil.tempfile, "mkstemp", mkstemp_on_a_full_disk)
    assert main(["dataset", "collect", "--env", "point", "--steps", "10", "--out", str(out)]) == 2
    assert _one_line(capsys) == (
        f"error: {out}: no space left on the device; free space, or use a folder on another disk, "
        "and re-run (files already written are kept)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no half-written file, no temporary left


def test_a_full_disk_without_a_file_name(capsys, monkeypatch):
    # no sections: the run goes straight to writing its --json (an unknown --only is refused first)
    monkeypatch.setattr("bremen_robot.bench.sections", lambda: [])
    assert main(["bench", "--quick", "--threads", "1", "--json", "/dev/full"]) == 2
    assert _one_line(capsys).startswith("error: no space left on the device while writing; free space")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.EROFS, "/w: read-only file system; use a folder on a writable disk"),
        (
            errno.EDQUOT,
            "/w: disk quota exceeded; free space within your quota, or use another disk, and re-run",
        ),
        (errno.EACCES, "/w: permission denied; use a folder you can write to, or fix its permissions"),
        (errno.ENAMETOOLONG, "/w: file name too long; use a shorter path"),
    ],
)
def test_errno_mapping(code, expected):
    assert describe_os_error(OSError(code, os.strerror(code), "/w")).startswith(expected)


def test_other_os_errors_stay_internal(capsys):
    assert describe_os_error(OSError(errno.ECONNREFUSED, "refused")) is None
    assert describe_os_error(OSError(errno.EACCES, "denied")) is None  # no path: nothing to name


def test_saving_an_ensemble_on_a_full_disk_is_an_os_error_naming_it(tmp_path, monkeypatch):
    from bremen_robot.models.ensemble import DynamicsEnsemble
    from bremen_robot.trainer import save_ensemble

    real_mkstemp = tempfile.mkstemp

    def mkstemp_on_a_full_disk(**kwargs):
        fd, name = real_mkstemp(**kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(fsutil.tempfile, "mkstemp", mkstemp_on_a_full_disk)
    path = tmp_path / "ensemble.pt"
    with pytest.raises(OSError) as info:  # was torch's bare RuntimeError: an internal error
        save_ensemble(DynamicsEnsemble(3, 2, members=2, hidden=[8]), path)
    assert describe_os_error(info.value) == (
        f"{path}: no space left on the device; free space, or use a folder on another disk, and re-run "
        "(files already written are kept)"
    )
    assert list(tmp_path.iterdir()) == []


def test_archives_from_other_machines_are_unpacked_only_with_the_data_filter(tmp_path, monkeypatch):
    import io
    import tarfile

    from bremen_robot.errors import BremenError
    from bremen_robot.fsutil import extract_tar

    def archive(name: str) -> tarfile.TarFile:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"ok"))
        buf.seek(0)
        return tarfile.open(fileobj=buf)

    extract_tar(archive("a/b.txt"), tmp_path / "in")
    assert (tmp_path / "in" / "a" / "b.txt").read_bytes() == b"ok"
    with pytest.raises(tarfile.OutsideDestinationError):  # what the filter is for
        extract_tar(archive("../escaped.txt"), tmp_path / "in2")
    assert not (tmp_path / "escaped.txt").exists()
    monkeypatch.delattr(tarfile, "data_filter")  # a Python before 3.10.12 / 3.11.4
    with pytest.raises(BremenError, match="no 'data' extraction filter.*use Python 3.10.12"):
        extract_tar(archive("a/c.txt"), tmp_path / "in3")
    assert not (tmp_path / "in3").exists()
