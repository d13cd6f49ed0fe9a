"""When has the logger received every message of a stopped episode? (pure, no rclpy)

The logger's subscriptions are separate queues, and its executor takes one message from each
ready queue in turn. So when the logger falls behind (a loaded machine), the few
``bremen/episode`` events overtake a backlog of ``joint_states`` and commands: the stop event
of episode k, and even the start of k+1, arrive while k's last states are still queued. Closing
k's segment on those events would put k's tail into the next segment, and a crash during k+1
would lose it while k is recorded complete.

Each stream that defines transitions comes from one writer, reliably and in order, and carries
the stamp of the state it belongs to (``joint_states``/``odom``: ``header.stamp``; commands: the
tag's observation stamp, see :mod:`bremen_robot.ros.topics`). Stamps only grow, across episodes
too (sim time in lockstep, wall time in realtime). So once a stream delivers a message stamped
after the episode's last observation, everything it had for that episode has arrived.

A realtime wall clock that steps back breaks that order: the runner ends the episode there
(``stamp_went_back``) and every later message is stamped before its last state, so waiting for
a later stamp would keep the segment open (taking the next episodes' messages) until the clock
caught up. For such a stop each stream instead crosses at its own step back: the first message
stamped before the one it delivered just before (the logger tracks each stream's last stamp).
:class:`EpisodeDrain` tracks that per stream. The logger closes the segment when every stream
has crossed, or when nothing at all arrived for a grace period (no backlog left: a lockstep
simulator that stopped stepping between episodes sends nothing more), or when a stream sent
no part of the tail for ``segment_drain_max_s`` (it may have stopped).

Sparse streams (``bremen/safety``, ``bremen/raw_action``) are not waited for: they send
nothing between interventions, so they cannot tell a backlog from silence.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from bremen_robot.ros import topics as T

STAMPED_HEADER_TOPICS = (T.JOINT_STATES, T.ODOM)
"""Topics whose messages start with a ``std_msgs/Header`` (stamp = the state's stamp)."""
TAGGED_COMMAND_TOPICS = (T.COMMAND,)
"""Topics whose ``Float64MultiArray`` carries the answered state's stamp in its first label."""
DRAINED_TOPICS = STAMPED_HEADER_TOPICS + TAGGED_COMMAND_TOPICS


def _endian(raw: bytes | memoryview) -> str | None:
    """Byte order of plain CDR (encapsulation 0x0000 big, 0x0001 little); None for others."""
    if len(raw) < 12 or raw[0] != 0 or raw[1] not in (0, 1):
        return None  # XCDR2 and parameter lists lay fields out differently: not read here
    return "<" if raw[1] else ">"


def header_stamp_ns(raw: bytes | memoryview) -> int | None:
    """The ``header.stamp`` of a serialized message that starts with a Header, in ns."""
    e = _endian(raw)
    if e is None:
        return None
    sec, nsec = struct.unpack_from(e + "iI", raw, 4)
    return int(sec) * 1_000_000_000 + int(nsec)


def command_stamp_ns(raw: bytes | memoryview) -> int | None:
    """The observation stamp in a serialized command's tag (``layout.dim[0].label``), or None."""
    e = _endian(raw)
    if e is None or struct.unpack_from(e + "I", raw, 4)[0] == 0:
        return None
    (n,) = struct.unpack_from(e + "I", raw, 8)  # string length, with its NUL
    if n < 1 or 12 + n > len(raw):
        return None
    tag = T.parse_tag(bytes(raw[12 : 12 + n - 1]).decode("utf-8", "replace"))
    return tag[1] if tag else None


def stream_stamp_ns(topic: str, raw: bytes | memoryview) -> int | None:
    """The state stamp a message of ``topic`` belongs to (None: not a drained topic, or untagged)."""
    if topic in STAMPED_HEADER_TOPICS:
        return header_stamp_ns(raw)
    if topic in TAGGED_COMMAND_TOPICS:
        return command_stamp_ns(raw)
    return None


class EpisodeDrain:
    """The streams still owing messages of a stopped episode whose last state is ``last_stamp_ns``.

    ``stepped_back_from``: given when the runner cut the episode because a state's stamp went
    back (reason ``stamp_went_back``): the stamp each stream had last delivered when the stop
    arrived. A stream whose stamps then drop has passed the step back, so the episode's tail.
    """

    def __init__(
        self,
        last_stamp_ns: int,
        streams: Iterable[str],
        stepped_back_from: Mapping[str, int] | None = None,
    ) -> None:
        self.last_stamp_ns = int(last_stamp_ns)
        self.pending = {t for t in streams if t in DRAINED_TOPICS}
        self._previous = None if stepped_back_from is None else dict(stepped_back_from)

    @property
    def done(self) -> bool:
        return not self.pending

    def see(self, topic: str, raw: bytes | memoryview) -> bool | None:
        """Account for one serialized message of ``topic`` (see :meth:`see_stamp`)."""
        return self.see_stamp(topic, stream_stamp_ns(topic, raw))

    def see_stamp(self, topic: str, stamp: int | None) -> bool | None:
        """Account for one message of ``topic`` whose state stamp is ``stamp`` (None: unknown).

        Returns True once every stream has crossed, None when the message was part of the
        episode's queued tail (stamped before its last state: the backlog is still draining),
        else False.
        """
        if topic in self.pending and stamp is not None:
            previous = None if self._previous is None else self._previous.get(topic)
            if self._previous is not None:
                self._previous[topic] = stamp
            if stamp > self.last_stamp_ns or (previous is not None and stamp < previous):
                self.pending.discard(topic)
            elif stamp < self.last_stamp_ns:
                return None
        return not self.pending
