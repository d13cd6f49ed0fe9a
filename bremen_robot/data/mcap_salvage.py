"""Read one MCAP segment of a bag, and salvage what a damaged one still holds.

An intact segment is read with ``rosbags`` (its index, in timestamp order). A segment that
``rosbags`` refuses (truncated by a full disk or a failed copy, so no footer; a damaged
chunk; a crash before it was closed) is scanned record by record from the start instead, the
way MCAP allows without a summary: every complete record before the damage is kept, including
the complete records at the front of an uncompressed chunk cut short (the writer's chunks are
uncompressed). Compressed chunks are kept only whole and with a matching checksum. Scanning
needs no footer and no index; messages come out in the order they were written.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"\x89MCAP0\r\n"
_OP_HEADER, _OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = (
    0x01,
    0x02,
    0x03,
    0x04,
    0x05,
    0x06,
    0x0F,
)


@dataclass
class SegmentRead:
    """Messages of one segment as ``(topic, msgtype, cdr_bytes)``; ``problem`` is None when intact."""

    path: Path
    messages: list[tuple[str, str, bytes]] = field(default_factory=list)
    problem: str | None = None


class _TruncatedError(Exception):
    pass


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise _TruncatedError
    return buf[pos + 4 : end].decode("utf-8", "replace"), end


class _Scanner:
    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.channels: dict[int, tuple[str, int]] = {}
        self.messages: list[tuple[str, str, bytes]] = []
        self.problems: list[str] = []
        self.done = False

    def record(self, op: int, body: bytes) -> None:
        if op == _OP_SCHEMA:
            (sid,) = struct.unpack_from("<H", body, 0)
            self.schemas[sid] = _string(body, 2)[0]
        elif op == _OP_CHANNEL:
            cid, sid = struct.unpack_from("<HH", body, 0)
            self.channels[cid] = (_string(body, 4)[0], sid)
        elif op == _OP_MESSAGE:
            (cid,) = struct.unpack_from("<H", body, 0)
            channel = self.channels.get(cid)
            if channel is not None:
                self.messages.append((channel[0], self.schemas.get(channel[1], ""), bytes(body[22:])))
        elif op == _OP_CHUNK:
            self.chunk(body, whole=True)
        elif op in (_OP_FOOTER, _OP_DATA_END):
            self.done = True

    def chunk(self, body: bytes, whole: bool) -> None:
        """A chunk record's body; ``whole`` is False for one cut short by the end of the file."""
        if len(body) < 28:
            raise _TruncatedError
        size, crc = struct.unpack_from("<QI", body, 16)
        compression, pos = _string(body, 28)
        if pos + 8 > len(body):
            raise _TruncatedError
        (length,) = struct.unpack_from("<Q", body, pos)
        data = body[pos + 8 : pos + 8 + length]
        if compression == "":
            self.records(data, nested=True)  # an uncompressed chunk cut short still yields its front
            return
        if not whole or len(data) < length:
            raise _TruncatedError
        from rosbags.rosbag2.storage_mcap import decompress

        try:
            raw = decompress(data, compression, size, crc)
        except Exception as exc:
            self.problems.append(f"a {compression} chunk is damaged ({exc})")
            return
        self.records(raw, nested=True)

    def records(self, buf: bytes, nested: bool = False) -> int:
        """Walk records in ``buf``; returns where the complete ones end."""
        pos = 0
        while pos < len(buf) and not self.done:
            if pos + 9 > len(buf):
                if nested:
                    return pos
                raise _TruncatedError
            op = buf[pos]
            (length,) = struct.unpack_from("<Q", buf, pos + 1)
            start, end = pos + 9, pos + 9 + length
            if end > len(buf):
                if op == _OP_CHUNK and not nested:
                    self.chunk(buf[start:], whole=False)
                if nested:
                    return pos
                raise _TruncatedError
            try:
                self.record(op, buf[start:end])
            except (struct.error, _TruncatedError):
                self.problems.append(f"a record at byte {pos} is malformed")
            pos = end
        return pos


def scan_segment(path: Path) -> SegmentRead:
    """Every complete message in ``path``, read without footer or index (see module doc)."""
    out = SegmentRead(Path(path))
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        out.problem = f"cannot be read ({exc.strerror})"
        return out
    if not data.startswith(MAGIC):
        out.problem = "is not an MCAP file (bad magic)"
        return out
    scan = _Scanner()
    try:
        scan.records(data[len(MAGIC) :])
        truncated = not scan.done
    except _TruncatedError:
        truncated = True
    out.messages = scan.messages
    issues = (["is truncated (no footer)"] if truncated else []) + scan.problems
    out.problem = "; ".join(issues) if issues else "has a damaged index"
    return out


def read_segment(path: Path) -> SegmentRead:
    """All messages of one segment: with ``rosbags`` when intact, else salvaged by scanning."""
    from rosbags.rosbag2.storage_mcap import McapReader

    reader = McapReader(Path(path))
    try:
        reader.open()
    except Exception:
        return scan_segment(path)
    try:
        messages = [(c.topic, c.msgtype, bytes(raw)) for c, _, raw in reader.messages(reader.connections)]
    except Exception:
        return scan_segment(path)
    finally:
        reader.close()
    return SegmentRead(Path(path), messages)
