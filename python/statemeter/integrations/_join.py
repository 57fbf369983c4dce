"""One call, one event: HTTP capture (`httpx`, `botocore`) hands a model call to the
`MeterSpanProcessor` of the same meter when the request was sent while a span of a trace that
processor is following was current; the processor joins it with the span that describes the same
call when the trace is mapped (`src/otel/join.rs`). Without such a span, capture records the call
itself, as it always did, and notes the response id so that the processor counts a span
reporting that response as joined instead of recording the call twice.

Nothing here imports OpenTelemetry: the current span is read only when `opentelemetry.trace` is
already imported and a processor exists, so capture without OpenTelemetry pays one check.
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from statemeter.integrations.otel import MeterSpanProcessor

_processors: weakref.WeakSet[MeterSpanProcessor] = weakref.WeakSet()
_lock = threading.Lock()


def register(processor: MeterSpanProcessor) -> None:
    """Makes `processor` known to capture (held weakly: a dropped processor is forgotten)."""
    with _lock:
        _processors.add(processor)


def _of(meter: Any) -> list[MeterSpanProcessor]:
    if not _processors:
        return []
    key = meter._key()
    with _lock:
        return [p for p in _processors if p._meter_key == key]


def current_span(meter: Any) -> tuple[MeterSpanProcessor, int, int] | None:
    """At request time: the processor of `meter` following the trace of the current span, and
    that span's trace and span ids; `None` when there is none (capture then records as usual)."""
    if not _processors:
        return None
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    processors = _of(meter)
    if not processors:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    for p in processors:
        if p._mapper.is_open(ctx.trace_id):
            return p, ctx.trace_id, ctx.span_id
    return None


def hand_over(
    span: tuple[MeterSpanProcessor, int, int], event: dict[str, Any], session: Any
) -> bool:
    """Gives a captured model call to the processor of the span it was sent under; `False` when
    the trace was mapped meanwhile (the caller records the call itself). A capture recording into
    a `Session` passes its session id, agent and tenant along: the span's conversation and agent
    win, the session's id wins over the trace id."""
    processor, trace_id, span_id = span
    handed = dict(event)
    for field in ("session_id", "agent", "tenant"):
        value = getattr(session, field, None)
        if isinstance(value, str) and value:
            handed.setdefault(field, value)
    return bool(processor._mapper.attach(trace_id, span_id, handed))


def recorded(meter: Any, event: dict[str, Any]) -> None:
    """Notes a call capture recorded itself: a span reporting its response id is that call."""
    rid = (event.get("attrs") or {}).get("gen_ai.response.id")
    if not isinstance(rid, str) or not rid:
        return
    for p in _of(meter):
        p._note_captured(rid)
