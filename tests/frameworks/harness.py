"""What every framework test shares: a loopback model server answering OpenAI-compatible Chat
Completions and Responses calls, a process-wide OpenTelemetry tracer provider whose processors
each test chooses, the OTLP/JSON file export of the spans a test saw, and the comparison of the
recorded events with the compatibility table (compat.json, rendered in docs/integrations.md).

The canned model makes every turn two model calls and one tool call: a request whose last
message is the user's gets a `get_weather` tool call back; a request whose last message is a tool
result gets the final answer. Usage differs between the two replies, so each event's tokens say
which call it was."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the loopback server

import statemeter as sm  # noqa: E402
from loopback import Answer, Loopback, json_answer, sse_answer  # noqa: E402
from statemeter.integrations.otel import MeterSpanProcessor, import_otlp_json  # noqa: E402

HERE = Path(__file__).resolve().parent
COMPAT = json.loads((HERE / "compat.json").read_text())

MODEL = "gpt-4.1-mini"
TOOL = "get_weather"
AGENT = "weather_agent"
INSTRUCTIONS = "Answer weather questions with the get_weather tool."
QUESTIONS = ("What is the weather in Paris?", "And in Oslo?")
# (input, output) tokens of the tool-call reply and of the final reply.
TOOL_CALL_USAGE = (21, 7)
# The loopback server's host as a venue: an event with this venue read `server.address` (or the
# framework's equivalent); a real deployment maps its gateways the same way.
VENUES = {"127.0.0.1": "loopback"}
FINAL_USAGE = (34, 9)


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


# --- The loopback model server ----------------------------------------------------------------


class ModelServer(Loopback):
    """Loopback routes for `/v1/chat/completions` and `/v1/responses` (streamed or not)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self._lock = threading.Lock()
        self.route("POST", "/v1/chat/completions", self._chat)
        self.route("POST", "/v1/responses", self._responses)

    @property
    def url(self) -> str:
        return self.base + "/v1"

    def _next(self) -> int:
        with self._lock:
            self.calls += 1
            return self.calls

    def _chat(self, req: dict[str, Any]) -> Answer:
        body = json.loads(req["body"])
        n = self._next()
        final = body["messages"][-1]["role"] in ("tool", "function")
        city = "Oslo" if "Oslo" in json.dumps(body["messages"]) else "Paris"
        (inp, out) = FINAL_USAGE if final else TOOL_CALL_USAGE
        usage = {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}
        call = {
            "id": f"call_{n}",
            "type": "function",
            "function": {"name": TOOL, "arguments": json.dumps({"city": city})},
        }
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if final:
            message["content"] = f"Sunny in {city}."
        else:
            message["tool_calls"] = [call]
        reason = "stop" if final else "tool_calls"
        head = {"id": f"chatcmpl-{n}", "created": 1_800_000_000, "model": MODEL}
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": reason}
            return json_answer(
                {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        chunk = {**head, "object": "chat.completion.chunk"}
        if final:
            delta: dict[str, Any] = {"role": "assistant", "content": message["content"]}
        else:
            delta = {"role": "assistant", "tool_calls": [{"index": 0, **call}]}
        events: list[tuple[str | None, Any]] = [
            (None, {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}),
            (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}),
            (None, {**chunk, "choices": [], "usage": usage}),
            (None, "[DONE]"),
        ]
        return sse_answer(events)

    def _responses(self, req: dict[str, Any]) -> Answer:
        body = json.loads(req["body"])
        n = self._next()
        items = body["input"] if isinstance(body["input"], list) else [body["input"]]
        last = items[-1] if items else {}
        final = isinstance(last, dict) and last.get("type") == "function_call_output"
        city = "Oslo" if "Oslo" in json.dumps(items) else "Paris"
        (inp, out) = FINAL_USAGE if final else TOOL_CALL_USAGE
        if final:
            text = {"type": "output_text", "text": f"Sunny in {city}.", "annotations": []}
            output: dict[str, Any] = {
                "type": "message",
                "id": f"msg_{n}",
                "role": "assistant",
                "status": "completed",
                "content": [text],
            }
        else:
            output = {
                "type": "function_call",
                "id": f"fc_{n}",
                "call_id": f"call_{n}",
                "name": TOOL,
                "arguments": json.dumps({"city": city}),
                "status": "completed",
            }
        response = {
            "id": f"resp_{n}",
            "object": "response",
            "created_at": 1_800_000_000,
            "status": "completed",
            "model": MODEL,
            "output": [output],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "previous_response_id": body.get("previous_response_id"),
            "store": body.get("store", True),
            "usage": {
                "input_tokens": inp,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": out,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": inp + out,
            },
        }
        if not body.get("stream"):
            return json_answer(response)
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        return sse_answer(
            [
                ("response.created", {"type": "response.created", "response": started}),
                (
                    "response.output_item.done",
                    {"type": "response.output_item.done", "output_index": 0, "item": output},
                ),
                ("response.completed", {"type": "response.completed", "response": response}),
            ]
        )


# --- Tracing -----------------------------------------------------------------------------------


class Relay(SpanProcessor):
    """The processors of the test running now, behind the process-wide tracer provider (a
    process has one global provider; frameworks that take the global one see this relay)."""

    def __init__(self) -> None:
        self.targets: list[SpanProcessor] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        for t in self.targets:
            t.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for t in self.targets:
            t.on_end(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(t.force_flush(timeout_millis) for t in self.targets)


class Collector(SpanProcessor):
    """Keeps every ended span for the OTLP/JSON file export."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


RELAY = Relay()
PROVIDER = TracerProvider(resource=Resource.create({"service.name": "weather-app"}))
PROVIDER.add_span_processor(RELAY)
trace_api.set_tracer_provider(PROVIDER)


class Traced:
    """One test's tracing: the live meter, and the spans for the file export."""

    def __init__(self) -> None:
        self.meter = sm.Meter()
        self.processor = MeterSpanProcessor(self.meter, venues=VENUES)
        self.collector = Collector()

    def imported(self) -> sm.Meter:
        """A second meter holding the same spans exported to an OTLP/JSON file and imported."""
        meter = sm.Meter()
        import_otlp_json(json.dumps(otlp_json(self.collector.spans)).encode(), meter, venues=VENUES)
        return meter


@contextmanager
def traced() -> Iterator[Traced]:
    t = Traced()
    RELAY.targets = [t.processor, t.collector]
    try:
        yield t
    finally:
        PROVIDER.force_flush()
        RELAY.targets = []


# --- OTLP/JSON ---------------------------------------------------------------------------------


def _any_value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, bytes):
        return {"bytesValue": v.hex()}
    return {"arrayValue": {"values": [_any_value(x) for x in v]}}


def _attributes(attrs: Any) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in (attrs or {}).items()]


# The Python SDK numbers span kinds from INTERNAL = 0; OTLP from UNSPECIFIED = 0, INTERNAL = 1.
def otlp_json(spans: list[ReadableSpan]) -> dict[str, Any]:
    """The spans as one OTLP/JSON document, as the OpenTelemetry Collector's file exporter
    writes it (hex ids, 64-bit integers as strings, kinds and status codes as numbers)."""
    scopes: dict[tuple[str, str], list[dict[str, Any]]] = {}
    resource = spans[0].resource.attributes if spans else {}
    for s in spans:
        scope = s.instrumentation_scope
        key = (scope.name if scope else "", (scope.version or "") if scope else "")
        ctx, parent = s.context, s.parent
        out: dict[str, Any] = {
            "traceId": f"{ctx.trace_id:032x}",
            "spanId": f"{ctx.span_id:016x}",
            "name": s.name,
            "kind": s.kind.value + 1,
            "startTimeUnixNano": str(s.start_time),
            "endTimeUnixNano": str(s.end_time),
            "attributes": _attributes(s.attributes),
            "status": {"code": s.status.status_code.value},
        }
        if parent is not None:
            out["parentSpanId"] = f"{parent.span_id:016x}"
        if s.status.description:
            out["status"]["message"] = s.status.description
        scopes.setdefault(key, []).append(out)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attributes(resource)},
                "scopeSpans": [
                    {"scope": {"name": n, "version": v}, "spans": ss}
                    for (n, v), ss in scopes.items()
                ],
            }
        ]
    }


# --- What the events say ------------------------------------------------------------------------


def events(meter: sm.Meter) -> list[dict[str, Any]]:
    meter.flush()
    return sorted(meter.ledger.events().to_pylist(), key=lambda e: (e["ts"], e["kind"]))


def _tokens(seen: list[tuple[int | None, int | None]]) -> str | list[Any]:
    """ "exact" (each call's usage as the server reported it), "none" (no call has any), or
    what was seen."""
    if seen == [TOOL_CALL_USAGE, FINAL_USAGE] * (len(seen) // 2) and seen:
        return "exact"
    if all(not i and not o for i, o in seen):
        return "none"
    return [list(x) for x in seen]


def observe(evs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the compatibility table says of a two-turn run, read from its events."""
    calls = [e for e in evs if e["kind"] == "model_call"]
    tools = [e for e in evs if e["kind"] == "tool_call"]
    sessions = {e["session_id"] for e in calls + tools}
    return {
        "events": [e["kind"] for e in evs],
        "provider": sorted({e["provider"] for e in calls}),
        "model": sorted({e["model"] for e in calls}),
        "api": sorted({e["api"] for e in calls}),
        "tokens": _tokens([(e["input_tokens"], e["output_tokens"]) for e in calls]),
        "session": "one" if len(sessions) == 1 else f"{len(sessions)} sessions",
        "agent": sorted({e["agent"] or "-" for e in calls + tools}),
        "venue": sorted({e["venue"] or "-" for e in calls}),
        "tool": sorted({(e["tool"], e.get("tool_kind") or "-") for e in tools}),
        "tag": sorted({e["tag"] for e in calls}),
    }


CHECKED: set[tuple[str, str, str]] = set()


def row(framework: str, plugin: str, api: str) -> dict[str, Any] | None:
    for r in COMPAT["rows"]:
        if (r["framework"], r["plugin"], r["api"]) == (framework, plugin, api):
            return dict(r)
    return None


def expected(framework: str, plugin: str, api: str) -> dict[str, Any] | None:
    """The table's row as `observe` reports it (None: the table has no such row)."""
    r = row(framework, plugin, api)
    if r is None:
        return None
    if not r.get("records", True):
        return observe([])
    turn = ["model_call", "tool_call", "model_call"]
    return {
        "events": turn * 2,
        "provider": [r["provider"]],
        "model": [r["model"]],
        "api": [r.get("api_recorded", api)],
        "tokens": "exact" if r["tokens"] else "none",
        "session": "one" if r["session"] != "trace" else "2 sessions",
        "agent": [r["agent"] if r["agent"] else "-"],
        "venue": [r["venue"] if r["venue"] else "-"],
        "tool": [(TOOL, r["tool_kind"] or "-")],
        "tag": [r["tag"]],
    }


def check(framework: str, plugin: str, api: str, t: Traced) -> list[dict[str, Any]]:
    """The events recorded live equal the table's row, and the file import records the same;
    no span was dropped without a reason. Returns the live events."""
    live = events(t.meter)
    obs = observe(live)
    want = expected(framework, plugin, api)
    assert obs == want, (framework, plugin, api, json.dumps(obs, default=str))
    CHECKED.add((framework, plugin, api))
    imported_meter = t.imported()
    imported = events(imported_meter)
    strip = lambda evs: [  # noqa: E731
        {k: v for k, v in e.items() if k not in ("seq", "id", "parent_id")} for e in evs
    ]
    assert strip(imported) == strip(live)
    assert t.meter.stats()["integration_errors"] == {}
    # Nothing dropped silently: every span the SDK ended is counted, recorded or skipped with a
    # reason (in-process agents and workflow steps, spans of no GenAI operation).
    spans = t.meter.stats()["spans"]
    assert spans["seen"] == len(t.collector.spans)
    assert spans["errors"] == 0
    assert spans["recorded"] + spans["joined"] + sum(spans["skipped"].values()) == spans["seen"]
    assert spans["recorded"] == len(live)
    assert imported_meter.stats()["spans"] == spans  # the file's spans count alike
    return live
