"""Children that do not outlive their parent.

A child process whose parent is killed (a Ray worker stopped with its driver, ``kill -9`` on a
command) is re-parented and runs on: a collection writing into a bag that a later task salvages,
or a TD3+BC fit eating a core after its harness stopped. Linux ends it instead when asked.
"""

from __future__ import annotations

import contextlib
import signal


def die_with_parent() -> None:
    """Ask the kernel to send this process SIGTERM when its parent dies (``PR_SET_PDEATHSIG``).
    Meant as ``preexec_fn`` of ``subprocess``: it runs in the child before exec and survives the
    exec. A no-op where prctl is missing (not Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
