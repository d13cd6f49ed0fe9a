"""SIGINT and SIGTERM start the ordered stop of a collection, whatever the process inherited.

A process started in the background by a shell (``cmd &``, ``nohup``, many supervisors) inherits
SIGINT *ignored*, and Python then installs no KeyboardInterrupt handler: a Ctrl-C or a
``kill -INT`` would be lost and the robot would keep running. And SIGTERM (what systemd, docker
and ``kill`` send) would end the process at once, skipping the ordered stop (docs/ros.md,
"Stopping"). So while a graph runs, both signals raise KeyboardInterrupt once; a second signal
while the stop is under way is reported and otherwise ignored, since cutting the stop short
would leave the last command standing. Every step of the stop is bounded in time.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside the block, the first SIGINT/SIGTERM raises KeyboardInterrupt; later ones only say
    that the stop is under way. Outside the main thread (where Python delivers no signals) it
    does nothing. The previous handlers come back on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if fired:
            print(
                f"{signal.Signals(signum).name}: already stopping the graph in order, please wait",
                file=sys.stderr,
            )
            return
        fired.append(signum)
        raise KeyboardInterrupt

    saved: dict[int, Any] = {sig: signal.signal(sig, interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
