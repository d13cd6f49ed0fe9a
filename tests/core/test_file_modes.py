"""Files the tool writes get the permissions of any file a program creates (0666 less the umask),
so a console or a colleague running as another user can read them; operator private keys stay
0600 whatever the umask.

mkstemp, under the atomic writer, creates its file 0600: review pages, reports, datasets and
campaign records were private to their writer while the PNGs beside them were not.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bremen_robot import fsutil
from bremen_robot.registry import init_operator


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    def set_to(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    try:
        yield set_to
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_the_atomic_writer_follows_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    fsutil.atomic_write_bytes(tmp_path / "report.json", b"{}")
    assert _mode(tmp_path / "report.json") == expected
    assert fsutil.current_umask() == mask


def test_a_replaced_file_gets_the_mode_too_and_an_explicit_mode_wins(tmp_path, umask):
    path = tmp_path / "summary.json"
    path.write_bytes(b"old")
    path.chmod(0o600)
    fsutil.atomic_write_bytes(path, b"new")
    assert (_mode(path), path.read_bytes()) == (0o644, b"new")
    fsutil.atomic_write_bytes(tmp_path / "private", b"x", mode=0o600)
    assert _mode(tmp_path / "private") == 0o600
    fsutil.atomic_write_bytes(tmp_path / "once", b"x", exclusive=True)
    assert _mode(tmp_path / "once") == 0o644


def test_operator_keys_keep_their_own_modes_under_a_permissive_umask(tmp_path, umask):
    umask(0o000)
    priv, pub = init_operator("alice", tmp_path / "ops")
    assert (_mode(priv), _mode(pub)) == (0o600, 0o644)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640)])
def test_the_campaign_status_file_follows_the_umask(tmp_path, umask, mask, expected):
    """status.json has its own writer (no fsync): 'bremen console' as another user reads it too."""
    from bremen_robot.campaign.status import STATUS_FILE, StatusWriter

    umask(mask)
    writer = StatusWriter(tmp_path, campaign="q", deployments=1, steps_target=10, log=print)
    writer.stage("collecting", 1)
    assert _mode(tmp_path / STATUS_FILE) == expected
