"""What the readers of provider-managed runtime event streams share: an incremental reader of
server-sent events that parses only the events a reader asks for, and the bookkeeping of steps
that start in one event and end in another."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

__all__ = ["SseEvents", "iso_ns"]


def iso_ns(value: Any) -> int | None:
    """An RFC 3339 timestamp (`2026-11-02T10:00:00.123456Z`) in ns since the epoch."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


class SseEvents:
    """Splits a server-sent-events body into events as its bytes arrive. `wanted(name)` says
    whether an event (by its `event:` field) is parsed; events without one are parsed only
    when `wanted(None)` says so (their `data` then names its `type`). Parsed events go to
    `take(name, data)`. An event whose data is not JSON counts in `malformed`; bytes left
    after the last complete event count as `truncated` at `close()`."""

    __slots__ = ("buf", "wanted", "take", "malformed", "truncated")

    def __init__(self, wanted: Any, take: Any) -> None:
        self.buf = b""
        self.wanted = wanted
        self.take = take
        self.malformed = 0
        self.truncated = False

    def feed(self, chunk: bytes) -> None:
        buf = self.buf + chunk if self.buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        end = buf.rfind(b"\n\n")
        if end < 0:
            self.buf = buf
            return
        self.buf = buf[end + 2 :]
        for block in buf[:end].split(b"\n\n"):
            self._block(block)

    def _block(self, block: bytes) -> None:
        name: str | None = None
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
        if not data or not self.wanted(name):
            return
        try:
            obj = json.loads(b"\n".join(data))
        except ValueError:
            self.malformed += 1
            return
        if isinstance(obj, dict):
            self.take(name, obj)
        else:
            self.malformed += 1

    def close(self) -> None:
        rest = self.buf.strip()
        self.buf = b""
        if rest:
            self.truncated = True
