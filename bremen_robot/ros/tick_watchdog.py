"""Realtime ``policy_runner``: a watchdog thread for a control tick that hangs altogether.

The control thread (``PolicyRunner._control_loop``) runs the policy and publishes the shielded
command once per period; the shield's own checks run only inside that tick. A tick that hangs
(policy inference stuck, a long I/O stall; it holds the runner's lock meanwhile) would leave the
last policy command standing on the robot until it returns. :class:`TickWatchdog` is a thread of
its own that takes neither the runner's lock nor the shield (which is not thread-safe): when no
command has followed a policy command within :func:`tick_timeout`, it publishes the safe command
the control thread left with that policy command, once, and logs why. It latches nothing: a
load spike on a shared machine stops the robot while the tick is late and one period after.

The race with the hung tick, which publishes what it computed when it returns: the control
thread publishes only inside :meth:`TickWatchdog.publishing`, which holds the gate that the
watchdog holds to check and send, and hands over the stop the watchdog made since the control
thread last published. So either the tick's command goes out first (and re-arms the watchdog,
which then finds it fresh), or the watchdog's safe command goes out first and the tick learns of
it before it publishes: the runner then sends the safe command instead of the tick's (computed
from an observation the watchdog had already judged too old) and counts the stop as one
``stale_observation`` intervention (``RunnerCore.after_watchdog``). That holds for the first
publication after a stop even from a tick that began after it: its shield step ran before it
knew, with rate limits from a policy command the robot no longer has. The tick after that acts
again, its rate limits starting from rest. A tick that never returns leaves the stop in the log
only; the halt (deactivate) ends the episode.

Limits: the watchdog is Python, so a stall that keeps the GIL (a long garbage collection, C code
that does not release it) delays it too; the driver's own command timeout stays the second line
of defence (docs/ros.md). No rclpy here: the runner passes the publication and the log in.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np


def tick_timeout(rate_hz: float, max_observation_age: float) -> float:
    """Seconds a policy command may stand before the watchdog sends the safe command.

    The next command is due one period (``1 / rate_hz``) after a policy command; the watchdog
    lets it be late by the observation age the shield accepts (the limits'
    ``max_observation_age``, tightened by the collect config's ``observation_timeout_s``:
    ``runner_limits``). A later command would act on a state older than the shield allows. The
    period is added so that a limits file whose age is shorter than the runner's period (states
    arrive faster than the runner acts) never stops an on-time tick.
    """
    return 1.0 / float(rate_hz) + float(max_observation_age)


class TickWatchdog:
    """Sends the safe command when the control tick leaves a policy command standing too long.

    ``send(command)`` publishes the safe command (the runner's ``bremen/command``, labelled
    ``safe``: not an answer to any state, so ingest pairs no transition with it); ``log(line)``
    says why. ``clock`` is monotonic seconds (a fake one in tests).
    """

    def __init__(
        self,
        timeout: float,
        send: Callable[[np.ndarray], object],
        log: Callable[[str], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = float(timeout)
        self._send, self._log, self._clock = send, log, clock
        self._gate = threading.Lock()
        self._since: float | None = None  # when the standing policy command went out; None: none
        self._safe: np.ndarray | None = None  # what a stop sends instead of it
        self._stop: str | None = None  # a stop the control thread has not taken yet
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        self.stops = 0

    # ------------------------------------------------------------------ the control thread's side
    @contextlib.contextmanager
    def publishing(self) -> Iterator[str | None]:
        """Hold the gate while the control thread decides and publishes a command; yields the
        watchdog's stop since the last publication (what it logged) or None, and clears it.
        Call :meth:`sent` inside, once the command is out (or not)."""
        with self._gate:
            stop, self._stop = self._stop, None
            yield stop

    def sent(self, safe_command: np.ndarray | None) -> None:
        """Inside :meth:`publishing`: a policy command just went out (``safe_command``: what a
        stop would send instead; the watchdog is armed from now), or none did (None: the safe
        command, or nothing, stands; the watchdog has nothing to guard)."""
        if safe_command is None:
            self._since = self._safe = None
        else:
            self._since, self._safe = self._clock(), safe_command

    def disarm(self) -> None:
        """The runner sent the safe command outside a tick (a stop, a failed tick): no policy
        command stands any more."""
        with self._gate:  # and a stop not yet taken: the safe command the runner sent supersedes it
            self._since = self._safe = self._stop = None

    # ------------------------------------------------------------------ the watchdog's side
    def poll(self) -> float:
        """One check: if the standing policy command is overdue, send the safe command (once per
        standing command). Returns the seconds until the next check is due."""
        with self._gate:
            if self._since is None or self._safe is None or self._quit.is_set():
                return self.timeout
            late = self._clock() - self._since
            if late <= self.timeout:
                return self.timeout - late
            self._since = None  # one stop; the next policy command arms the watchdog again
            self.stops += 1
            self._stop = (
                f"tick watchdog: no command for {late:.3f} s after a policy command (limit "
                f"{self.timeout:.3f} s): the control tick overran; sent the safe command"
            )
            line = self._stop
            try:
                self._send(self._safe)
            except Exception as exc:  # the middleware is going down: say so, go on checking
                line = f"{line}, which failed ({type(exc).__name__}: {exc})"
        self._log(line)
        return self.timeout

    def _run(self) -> None:
        while not self._quit.is_set():
            self._quit.wait(self.poll())

    def start(self) -> None:
        """Start the thread (activate, realtime mode), with nothing armed."""
        self.stop()
        with self._gate:
            self._since = self._safe = self._stop = None
        self._quit.clear()
        self._thread = threading.Thread(target=self._run, name="bremen_tick_watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; no command is sent after this returns (a send under way finishes
        first, unless the middleware blocks it for more than a second)."""
        self._quit.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(1.0)
        self._thread = None
