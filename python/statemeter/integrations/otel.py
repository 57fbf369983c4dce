"""OpenTelemetry GenAI spans in and out.

- `MeterSpanProcessor(meter)`: add it to an OpenTelemetry SDK `TracerProvider`; every GenAI
  semantic-convention span (`chat`, `generate_content`, `text_completion`, `embeddings`, remote
  `invoke_agent`, `execute_tool`, memory operations, `retrieval`) becomes a classified event as
  it ends; so does a span without an operation statemeter records that carries a model name or
  token usage (Vercel AI SDK spans), with `attrs.inferred` saying so, and a model call missing
  its provider, model or usage is recorded with `unknown` and `attrs.missing`. Both
  `gen_ai.provider.name` and the pre-1.37 `gen_ai.system` are understood;
  `gen_ai.conversation.id` is the session (else the trace), `mcp.session.id` marks MCP sessions
  and `server.address` gives the venue through `statemeter.venue_for_host`. The Responses
  request attributes (`gen_ai.openai.request.previous_response_id`, `.conversation_id`,
  `.store`, `.background`) become the event's `request` under the provider's parameter names.
- `import_otlp_json(path_or_mapping, meter)`: the same mapping for OTLP/JSON trace files.
- With HTTP capture on the same meter (`statemeter.integrations.httpx` / `botocore`), a call
  and the span that describes it are one event: who from the span, what from the wire (the
  recommended setup when spans lack request parameters; docs/integrations.md, "One call, one
  event"). The import counts a span whose call capture recorded already as joined.
- Every span either door is given is counted in ``meter.stats()["spans"]``: ``seen``,
  ``recorded``, ``joined``, ``errors`` and ``skipped`` by reason (docs/integrations.md,
  "Nothing dropped silently").
- `export_otlp_json(events)`: events back out as GenAI spans carrying `statemeter.tag`,
  `statemeter.consumes_state`, `statemeter.creates_state`, `statemeter.session_tag` and the
  evidence rule ids; importing the export rebuilds the same events.

The span → event mapping lives in Rust (`src/otel/`); see docs/integrations.md for the table.
The processor never raises into the host: OpenTelemetry's SDK does not shield an application
from its processors, so every failure is caught, counted in
`meter.stats()["integration_errors"]["otel"]` and logged once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statemeter import _core
from statemeter._guard import note
from statemeter._records import FROM_RECORDS, event_key
from statemeter.errors import invalid
from statemeter.integrations import _join
from statemeter.integrations._sessions import SessionCache

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span

    from statemeter import Event, EventTable, Meter

try:  # the processor subclasses the SDK's interface when the SDK is installed
    from opentelemetry.sdk.trace import SpanProcessor as _SpanProcessorBase
except ImportError:  # pragma: no cover - exercised only without opentelemetry-sdk
    _SpanProcessorBase = object  # type: ignore[assignment,misc]

__all__ = ["MeterSpanProcessor", "export_otlp_json", "import_otlp_json"]

SOURCE = "otel"
_SESSION_KINDS = ("model_call", "tool_call", "state_op")
_CAPTURED_KEPT = 10_000
"""Response ids of calls capture recorded itself that a processor remembers."""


class MeterSpanProcessor(_SpanProcessorBase):
    """An OpenTelemetry SDK span processor that records GenAI spans into `meter`.

    ``provider.add_span_processor(MeterSpanProcessor(meter))``. ``venues`` maps host patterns
    to venues for gateways and proxies (see `statemeter.venue_for_host`). Content attributes
    (messages, instructions, tool arguments and results) are never read.
    """

    def __init__(self, meter: Meter, *, venues: Mapping[str, str] | None = None) -> None:
        self._meter = meter
        self._meter_key = meter._key()
        self._mapper = _core._SpanMapper(dict(venues) if venues else None)
        self._sessions = SessionCache(meter)
        # Response ids of calls HTTP capture recorded itself (no span of a followed trace was
        # current): a span reporting one of them is that call, counted as joined.
        self._captured: dict[str, None] = {}
        _join.register(self)

    def _note_captured(self, response_id: str) -> None:
        if len(self._captured) >= _CAPTURED_KEPT:
            self._captured.pop(next(iter(self._captured)), None)
        self._captured[response_id] = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            self._mapper.start(span.context.trace_id)
        except Exception as exc:  # noqa: BLE001 - never raise into the host
            note(self._meter, SOURCE, exc)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            ctx = span.context
            parent = span.parent
            status = span.status
            resource = span.resource
            service = resource.attributes.get("service.name") if resource is not None else None
            outcomes = self._mapper.end(
                ctx.trace_id,
                ctx.span_id,
                parent.span_id if parent is not None else None,
                span.name,
                span.kind.value,  # the SDK's numbering; converted to OTLP's in Rust
                span.start_time,
                span.end_time,
                status.status_code.value if status is not None else 0,
                status.description if status is not None else None,
                span.attributes,
                service if isinstance(service, str) else None,
            )
        except Exception as exc:  # noqa: BLE001 - never raise into the host
            note(self._meter, SOURCE, exc)
            return
        self._record(outcomes)

    def _record(self, outcomes: list[Any]) -> None:
        """Records the events of mapped spans and of captured calls handed over; every span is
        counted in ``meter.stats()["spans"]`` (recorded, joined, skipped by reason, or errors)."""
        if not outcomes:
            return
        recorded = joined = errors = 0
        skipped: dict[str, int] = {}
        for outcome in outcomes:
            if isinstance(outcome, str):
                skipped[outcome] = skipped.get(outcome, 0) + 1
                continue
            if isinstance(outcome, BaseException):
                note(self._meter, SOURCE, outcome)
                errors += 1
                continue
            event, role = outcome if isinstance(outcome, tuple) else (outcome, "span")
            if role == "span" and self._captured and event["kind"] == "model_call":
                rid = event["attrs"].get("response_id")
                if rid in self._captured:
                    self._captured.pop(rid, None)
                    joined += 1  # HTTP capture recorded this call already
                    continue
            try:
                if event.get("session_id") and event["kind"] in _SESSION_KINDS:
                    self._sessions.emit(event)
                else:
                    self._meter.record(event)
            except Exception as exc:  # noqa: BLE001 - never raise into the host
                note(self._meter, SOURCE, exc)
                errors += role != "captured"
                continue
            if role == "span":
                recorded += 1
            elif role == "joined":
                joined += 1
        try:
            self._meter._note_spans(recorded, joined, errors, skipped)
        except Exception as exc:  # noqa: BLE001 - a closed meter must not raise either
            note(self._meter, SOURCE, exc)

    def shutdown(self) -> None:
        self.force_flush()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Records the spans that ended in traces still open, then flushes the meter."""
        try:
            outcomes = self._mapper.flush()
        except Exception as exc:  # noqa: BLE001
            note(self._meter, SOURCE, exc)
            outcomes = []
        self._record(outcomes)
        try:
            self._meter.flush()
        except Exception as exc:  # noqa: BLE001
            note(self._meter, SOURCE, exc)
            return False
        return True


def import_otlp_json(
    path_or_mapping: str | os.PathLike[str] | bytes | Mapping[str, Any],
    meter: Meter,
    *,
    venues: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Records the GenAI spans of an OTLP/JSON trace file into `meter`.

    Takes a path (a file holding one OTLP/JSON document, or JSON Lines of them as the collector's
    file exporter writes), the file's bytes, or the parsed document. Ids are hex, 64-bit integers
    may be strings, unknown fields are ignored. Every span is mapped and validated before the
    first event is recorded: bad input raises `ValidationError` naming the JSON path (or span)
    and records nothing. The events are then appended in one transaction: a span whose event id
    is already recorded with another payload raises `ValidationError` and records nothing.
    Spans exported by statemeter come back as the exact events. Event ids are derived from
    trace and span ids, so importing a file twice records its events once.

    Returns what became of the file's spans, in the shape of ``meter.stats()["spans"]`` (to
    which they are added): ``{"seen": n, "recorded": n, "joined": n, "errors": 0, "skipped":
    {reason: n}}``; skipped spans are those that are not operations statemeter records (e.g.
    HTTP spans, ``not_genai``, or an in-process `invoke_agent`, ``agent_or_workflow``).
    """
    # Hostile input raises ValidationError, never a UnicodeError, TypeError or RecursionError
    # (docs/classification.md, "Limits"); a path that cannot be read raises OSError as open() does.
    try:
        if isinstance(path_or_mapping, Mapping):
            text = json.dumps(path_or_mapping, allow_nan=False)
        elif isinstance(path_or_mapping, (bytes, bytearray, memoryview)):
            text = bytes(path_or_mapping).decode("utf-8")
        else:
            text = Path(path_or_mapping).read_text(encoding="utf-8")
        events, skipped = _core._otel_import(text, dict(venues) if venues else None)
    except (UnicodeError, TypeError, ValueError, RecursionError) as exc:
        if isinstance(exc, _core.StatemeterError):
            raise
        raise invalid("otlp", f"not an OTLP/JSON document: {exc}") from exc
    # Calls HTTP capture recorded already (live, joined with these very spans, or on their own
    # with the response id a span reports) are not recorded twice.
    captured = _captured_already(meter, events)
    if captured:
        events = [e for e in events if e["id"] not in captured]
    # All or nothing: appended in one transaction, none when one conflicts with the ledger.
    meter._record_all(events)
    meter._note_spans(len(events), len(captured), 0, skipped)
    return {
        "seen": len(events) + len(captured) + sum(skipped.values()),
        "recorded": len(events),
        "joined": len(captured),
        "errors": 0,
        "skipped": skipped,
    }


_BY_ID = f"""SELECT eid FROM (SELECT {event_key("id")} AS eid,
{event_key("attrs.joined")} AS joined FROM {FROM_RECORDS} WHERE instr(r.record, '"joined"') > 0)
WHERE joined IS NOT NULL AND eid IN (SELECT value FROM json_each(?1))"""
_BY_RESPONSE_ID = f"""SELECT rid FROM (SELECT {event_key('attrs."gen_ai.response.id"')} AS rid
FROM {FROM_RECORDS} WHERE instr(r.record, '"gen_ai.response.id"') > 0)
WHERE rid IN (SELECT value FROM json_each(?1))"""


def _captured_already(meter: Meter, events: list[dict[str, Any]]) -> set[str]:
    """Ids of the model-call events of an import whose call the ledger holds from HTTP capture:
    the same event id recorded joined (the live processor joined capture and this span), or a
    captured call (`attrs["gen_ai.response.id"]`) with the response id the span reports."""
    calls = [e for e in events if e["kind"] == "model_call"]
    if not calls:
        return set()
    ledger = meter.ledger
    out = {row[0] for row in ledger.sql(_BY_ID, [json.dumps([e["id"] for e in calls])])}
    by_rid: dict[str, list[str]] = {}
    for e in calls:
        rid = e["attrs"].get("response_id")
        if isinstance(rid, str) and e["id"] not in out:
            by_rid.setdefault(rid, []).append(e["id"])
    if by_rid:
        for (rid,) in ledger.sql(_BY_RESPONSE_ID, [json.dumps(list(by_rid))]):
            out.update(by_rid.get(rid, ()))
    return out


def export_otlp_json(
    events: EventTable | Iterable[Event] | Iterable[Mapping[str, Any]],
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The events as one OTLP/JSON document of GenAI spans (written to `path` when given).

    Takes an `EventTable` (e.g. ``ledger.events()``), `Event` objects or their ``to_dict()``
    mappings. One span per event: the session is the trace (and ``gen_ai.conversation.id``),
    ``parent_id`` the parent span; the classification is in ``statemeter.tag``,
    ``statemeter.consumes_state``, ``statemeter.creates_state``, ``statemeter.state_holder``,
    ``statemeter.state_kinds`` (when there are any), ``statemeter.session_tag`` and
    ``statemeter.evidence`` (rule ids).
    """
    rows = [e.to_dict() if hasattr(e, "to_dict") else dict(e) for e in events]
    doc: dict[str, Any] = _core._otel_export(rows)
    if path is not None:
        Path(path).write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    return doc
