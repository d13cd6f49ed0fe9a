"""What a bag's metadata lists (the logger's episode records), read from outside the logger.

The trajectory logger lists an episode in ``metadata.yaml`` (``bremen.episodes``) once its
segment is closed, so the listing is what the bag holds for certain. ``bremen collect`` reports
the bag from it, and before it stops the logger it waits for the listing to hold every episode
the runner reported: on a loaded machine the logger can be seconds behind the runner, and a
logger stopped then would close the bag without the last episodes (a fleet test saw 12 of 15).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bremen_robot.errors import BremenError
from bremen_robot.ros.bagfile import read_custom


def listed_episodes(bag: Path) -> list[Any]:
    """The bag's episode records, in order ([] when it has no readable metadata yet)."""
    try:
        listed = json.loads(read_custom(bag).get("bremen.episodes", "[]") or "[]")
    except (BremenError, ValueError, OSError):
        return []  # no metadata: the logger never listed anything, so the bag holds nothing
    return listed if isinstance(listed, list) else []


def stored_episodes(bag: Path, with_reset: bool = False) -> int:
    """How many episodes the bag's metadata lists as stopped (their segments are closed). With
    ``with_reset``, an episode counts only once its reset record is in too (``reset_stamp_ns``):
    a simulator's reset event carries the task's extras, such as a reach goal, without which the
    episode's observations cannot be built. It comes from another node than the runner's stop,
    so it can arrive seconds later: a loaded fleet test lost five episodes' goals that way."""
    return sum(
        1
        for e in listed_episodes(bag)
        if isinstance(e, dict) and e.get("status") != "open" and (not with_reset or "reset_stamp_ns" in e)
    )


def await_stored(
    bag: Path,
    expected: int,
    timeout_s: float,
    poll_s: float = 0.05,
    writer_alive: Callable[[], bool] | None = None,
    with_reset: bool = False,
) -> bool:
    """Wait until the bag lists ``expected`` stopped episodes (with their reset records, see
    :func:`stored_episodes`), at most ``timeout_s`` and only while ``writer_alive()`` (the
    logger's process) holds; True if so."""
    end = time.monotonic() + timeout_s
    while stored_episodes(bag, with_reset) < expected:
        if time.monotonic() >= end or (writer_alive is not None and not writer_alive()):
            return False
        time.sleep(poll_s)
    return True
