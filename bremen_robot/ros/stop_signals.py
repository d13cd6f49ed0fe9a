"""SIGINT and SIGTERM start the ordered stop of a collection, whatever the process inherited.

A process started in the background by a shell (``cmd &``, ``nohup``, many supervisors) inherits
SIGINT *ignored*, and Python then installs no KeyboardInterrupt handler: a Ctrl-C or a
``kill -INT`` would be lost and the robot would keep running. And SIGTERM (what systemd, docker
and ``kill`` send) would end the process at once, skipping the ordered stop (docs/ros.md,
"Stopping"). So while a graph runs, both signals raise KeyboardInterrupt once; a second signal
while the stop is under way is reported and otherwise ignored, since cutting the stop short
would leave the last command standing. Every step of the stop is bounded in time.

A process can also inherit the signals *blocked* (a Ray worker blocks SIGINT, and a blocked mask
survives fork and exec): the signal then stays pending forever. So the block unblocks both
signals for its thread, and the graph's node processes start with them unblocked
(:func:`unblock_stop_signals`, also run before each node's exec).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)


def unblock_stop_signals() -> None:
    """Deliver SIGINT/SIGTERM to this thread again, whatever mask it inherited."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class StopInProgress:
    """Handed to the block: :meth:`begin` marks that the ordered stop has started (for any
    reason: budget used up, a dead node, a timeout), after which signals no longer interrupt."""

    def __init__(self) -> None:
        self.fired: list[int] = []

    def begin(self) -> None:
        if not self.fired:
            self.fired.append(0)


@contextmanager
def stop_on_signals() -> Iterator[StopInProgress]:
    """Inside the block, the first SIGINT/SIGTERM raises KeyboardInterrupt; later ones, and any
    after :meth:`StopInProgress.begin`, only say that the stop is under way. Outside the main
    thread (where Python delivers no signals) it installs nothing. The previous handlers come
    back on exit."""
    stop = StopInProgress()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    fired = stop.fired

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if fired:
            print(
                f"{signal.Signals(signum).name}: already stopping the graph in order, please wait",
                file=sys.stderr,
            )
            return
        fired.append(signum)
        raise KeyboardInterrupt

    saved: dict[int, Any] = {}
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        for sig in STOP_SIGNALS:  # one by one inside the try: an early signal still restores them
            saved[sig] = signal.signal(sig, interrupt)
        yield stop
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
