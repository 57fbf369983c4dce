"""Integrations never break the host application: `shielded(meter, source)` catches any
exception raised inside statemeter code, counts it in `meter.stats()["integration_errors"]`
and logs it once per (source, exception type)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("statemeter")
_seen: set[tuple[str, str]] = set()
_lock = threading.Lock()


def note(meter: Any, source: str, exc: BaseException) -> None:
    """Counts and (once per source and exception type) logs a failure."""
    try:
        meter._note_integration_error(source)
    except Exception:  # a closed or broken meter must not raise either
        pass
    key = (source, type(exc).__name__)
    with _lock:
        first = key not in _seen
        _seen.add(key)
    if first:
        log.warning(
            "statemeter %s integration failed (counted in meter.stats(); further "
            "%s errors from it are counted silently): %r",
            source,
            type(exc).__name__,
            exc,
        )


@contextlib.contextmanager
def shielded(meter: Any, source: str) -> Iterator[None]:
    """Runs the block; any `Exception` is counted and logged instead of raised."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the whole point is to contain everything
        note(meter, source, exc)
