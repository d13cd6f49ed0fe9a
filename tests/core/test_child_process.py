"""A child started with ``die_with_parent`` ends when its parent is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

PARENT = """
import subprocess, sys, time
from bremen_robot.child_process import die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn={preexec})
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (exited, not yet reaped by init) is gone too
        return f.read().split(")")[-1].split()[0] != "Z"


def _orphan_survives(preexec: str) -> bool:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT.format(preexec=preexec)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)  # no handler, no cleanup: only the kernel can end the child
    parent.wait()
    end = time.monotonic() + 5.0
    while _alive(child) and time.monotonic() < end:
        time.sleep(0.05)
    survived = _alive(child)
    if survived:
        os.kill(child, signal.SIGKILL)
    return survived


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_child_ends_with_its_killed_parent_and_without_it_would_not() -> None:
    assert _orphan_survives("die_with_parent") is False
    assert _orphan_survives("None") is True  # the check itself can tell an orphan apart
