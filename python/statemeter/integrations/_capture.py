"""What the HTTP and botocore capture integrations share: where events go, and how one captured
call (a described request, plus what its response said) becomes one recorded event."""

from __future__ import annotations

import time
from typing import Any

from statemeter._guard import note
from statemeter.errors import invalid
from statemeter.integrations import _join

#: Response size statemeter reads for usage (decoded bytes). Past it, a JSON body is not read
#: (noted in attrs) and an event stream keeps its first and last ``STREAM_KEEP`` bytes, where
#: the provider puts ids (first event) and usage (last events).
JSON_LIMIT = 8 * 1024 * 1024
STREAM_KEEP = 256 * 1024


class Target:
    """A `Session` (or a `Meter`) to record into, and the meter that counts capture failures.

    A model call sent while a span of a trace the meter's `MeterSpanProcessor` follows was
    current (`span()` at request time) goes to that processor, which records it as one event
    with the span describing the same call (`statemeter.integrations._join`)."""

    __slots__ = ("_record", "_model_call", "_tool_call", "_state_op", "meter", "session", "source")

    def __init__(self, session: Any, source: str) -> None:
        record = getattr(session, "record", None)
        if not callable(record):
            raise invalid(
                "session", f"expected a statemeter Session or Meter, not {type(session).__name__}"
            )
        self._record = record
        # Session.model_call takes the fields as arguments: cheaper than a mapping to convert.
        self._model_call = getattr(session, "model_call", None)
        self._tool_call = getattr(session, "tool_call", None)
        self._state_op = getattr(session, "state_op", None)
        # A Session knows its meter; a Meter is its own.
        self.meter = getattr(session, "meter", session)
        self.session = session
        self.source = source

    def span(self) -> Any:
        """At request time: the current span when the meter's span processor follows its trace
        (an opaque token for `record`), else `None`."""
        return _join.current_span(self.meter) if _join._processors else None

    def record(self, event: dict[str, Any], span: Any = None) -> Any:
        """Records one captured event through the public API: the session's keyword method
        (`Session.model_call(...)`, `tool_call`, `state_op`), `record(mapping)` for a `Meter`.
        A model call sent under `span` (from `span()`) goes to the span processor instead, when
        it still follows the trace (then there is no `Event` to return: `None`)."""
        kind = event.get("kind")
        if kind == "model_call":
            if span is not None and _join.hand_over(span, event, self.session):
                return None
            if self._model_call is not None:
                fields = dict(event)
                del fields["kind"]
                out = self._model_call(**fields)
            else:
                out = self._record(event)
            if _join._processors:
                _join.recorded(self.meter, event)
            return out
        if self._tool_call is not None and kind == "tool_call":
            fields = dict(event)
            del fields["kind"]
            return self._tool_call(fields.pop("tool"), **fields)
        if self._state_op is not None and kind == "state_op":
            fields = dict(event)
            del fields["kind"]
            return self._state_op(fields.pop("op"), **fields)
        return self._record(event)

    def record_children(self, parent: Any, events: list[dict[str, Any]]) -> None:
        """Records the inner steps a provider-managed runtime reported for one call: each a
        child of `parent` (the `Event` recorded for the call: `parent_id`), in the same
        session. A call handed to a span processor (`parent` None: its event is recorded with
        the span's id when the trace ends) leaves its steps without a parent. A step that fails
        to record is counted; the others are still recorded."""
        parent_id = getattr(parent, "id", None)
        for event in events:
            try:
                if parent_id is not None:
                    event["parent_id"] = parent_id
                self.record(event)
            except Exception as exc:  # noqa: BLE001 - capture never breaks the caller
                self.failed(exc)

    def failed(self, exc: BaseException) -> None:
        note(self.meter, self.source, exc)


def finish_event(
    event: dict[str, Any],
    *,
    ts: int,
    duration_ns: int,
    status: str,
    http_status: int | None,
    usage: dict[str, Any] | None,
    extra_attrs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Adds timing, status, usage and response ids to a described request's event dict.

    Usage goes to `input_tokens` (cache included), `output_tokens`, `cached_tokens`; reasoning
    and cache-creation tokens, the response id and model go to attrs under their OpenTelemetry
    names (`gen_ai.usage.reasoning.output_tokens`, `gen_ai.usage.cache_creation.input_tokens`,
    `gen_ai.response.id`, `gen_ai.response.model`).
    """
    event["ts"] = ts
    event["duration_ns"] = max(duration_ns, 0)
    event["status"] = status
    attrs = event.setdefault("attrs", {})
    if http_status is not None:
        attrs["http.response.status_code"] = http_status
    if usage:
        if event.get("kind") == "model_call":
            for key in ("input_tokens", "output_tokens", "cached_tokens"):
                if key in usage:
                    event[key] = usage[key]
            if "reasoning_tokens" in usage:
                attrs["gen_ai.usage.reasoning.output_tokens"] = usage["reasoning_tokens"]
            if "cache_creation_tokens" in usage:
                attrs["gen_ai.usage.cache_creation.input_tokens"] = usage["cache_creation_tokens"]
        if "response_id" in usage:
            attrs["gen_ai.response.id"] = usage["response_id"]
        if "response_model" in usage:
            attrs["gen_ai.response.model"] = usage["response_model"]
    if extra_attrs:
        attrs.update(extra_attrs)
    return event


def status_for(http_status: int | None, outcome: str) -> str:
    """`ok`, `error` (HTTP >= 400 or a failure while reading) or `cancelled` (the caller closed
    the stream before its end)."""
    if outcome == "error" or (http_status is not None and http_status >= 400):
        return "error"
    if outcome == "cancelled":
        return "cancelled"
    return "ok"


def now() -> tuple[int, int]:
    """(wall clock ns for `ts`, monotonic ns for durations)."""
    return time.time_ns(), time.perf_counter_ns()
