"""How ``policy_runner`` leaves: the safe command, held for a grace period, on every exit path.

A forward command controller (ros2_control's ``forward_command_controller``, most velocity
drivers) keeps applying the last command it received. So whatever ends the runner (SIGINT or
SIGTERM from ``bremen collect``, the campaign or ``ros2 launch``, a crashed sibling node that
makes the orchestrator stop the graph, an exception in the runner, the node being done) must
not leave a policy command standing: the runner's ``close()`` publishes the shield's safe
command (zero, or hold, per the safety limits' ``safe_command``) and keeps publishing it at
the control rate for ``stop_grace_s`` (collect config), so that a driver that drops one
message or starts late still ends on it. It says so on ``bremen/episode`` (a ``halt`` event)
right after the first safe command, which tells the orchestrator it may now stop the other
nodes. The driver's own command timeout is the second line of defence (docs/ros.md).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable


def hold_safe(
    publish: Callable[[], None],
    period_s: float,
    grace_s: float,
    *,
    on_first: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Publish at once, then every ``period_s`` until ``grace_s`` has passed; returns the count.

    ``on_first`` runs after the first publication (the ``halt`` event). A failing publication
    (the middleware already shut down) ends the hold: nothing more can be sent.
    """
    period_s = max(float(period_s), 0.001)
    start = clock()
    end = start + max(float(grace_s), 0.0)
    sent = 0
    next_at = start
    while True:
        try:
            publish()
        except Exception:
            return sent
        sent += 1
        if sent == 1 and on_first is not None:
            with contextlib.suppress(Exception):  # an event that fails must not end the hold
                on_first()
        next_at += period_s
        if next_at > end:
            return sent
        delay = next_at - clock()
        if delay > 0:
            sleep(delay)
