"""One call, one event: HTTP capture and an OpenTelemetry span describing the same model call,
live (the openai package against the loopback server, inside spans as a framework makes them)
and through an OTLP/JSON import."""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest
import statemeter as sm
from loopback import Loopback, json_answer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from statemeter.integrations import httpx as capture
from statemeter.integrations.otel import MeterSpanProcessor, import_otlp_json

OPENAI = {"127.0.0.1": "openai"}
VENUES = {"127.0.0.1": "on_prem"}
USAGE = {
    "input_tokens": 900,
    "input_tokens_details": {"cached_tokens": 256},
    "output_tokens": 80,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 980,
}


def response(rid: str) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": 1,
        "model": "gpt-5",
        "output": [],
        "status": "completed",
        "usage": USAGE,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


@pytest.fixture
def server() -> Any:
    with Loopback() as lb:
        lb.route("POST", "/v1/responses", json_answer(response("resp_1")))
        yield lb


@pytest.fixture
def client(server: Loopback) -> Any:
    c = openai.OpenAI(api_key="sk-test", base_url=server.base + "/v1", max_retries=0)
    yield c
    c.close()


def traced(meter: sm.Meter | None) -> tuple[TracerProvider, Any, InMemorySpanExporter]:
    """A tracer provider with the meter's processor (when given) and an in-memory exporter."""
    provider = TracerProvider()
    if meter is not None:
        provider.add_span_processor(MeterSpanProcessor(meter))
    exported = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider, provider.get_tracer("framework"), exported


def framework_turn(tracer: Any, client: Any, *, span_response_id: bool = True) -> Any:
    """One agent turn as frameworks trace it: an agent span naming agent and conversation, and a
    chat span around the model call whose attributes carry no request parameters (so the span
    alone would say stateless)."""
    with tracer.start_as_current_span(
        "invoke_agent support",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "gen_ai.conversation.id": "conv-join",
        },
    ):
        with tracer.start_as_current_span(
            "chat gpt-5",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-5",
            },
        ) as chat:
            r = client.responses.create(model="gpt-5", input="hi", previous_response_id="resp_0")
            if span_response_id:
                chat.set_attribute("gen_ai.response.id", r.id)
            chat.set_attribute("gen_ai.usage.input_tokens", 1)  # what a span may get wrong
            chat.set_attribute("gen_ai.usage.output_tokens", 1)
    return r


def model_calls(meter: sm.Meter) -> list[dict[str, Any]]:
    meter.flush()
    return meter.ledger.events(kind="model_call").to_pylist()


@pytest.mark.parametrize("span_response_id", [True, False], ids=["response-id", "trace-context"])
def test_a_captured_call_and_its_span_are_one_event(client: Any, span_response_id: bool) -> None:
    meter = sm.Meter()
    capture.instrument(client, meter, providers=OPENAI, venues=VENUES)
    provider, tracer, _ = traced(meter)
    framework_turn(tracer, client, span_response_id=span_response_id)
    [e] = model_calls(meter)
    chat_span = e["attrs"]["otel.span_id"]
    # Who: from the spans.
    assert (e["session_id"], e["agent"]) == ("conv-join", "support")
    assert e["id"] == f"otel:{e['attrs']['otel.trace_id']}:{chat_span}"
    # What: from the wire, so the verdict is the wire's.
    assert (e["provider"], e["model"], e["api"], e["venue"]) == (
        "openai",
        "gpt-5",
        "responses",
        "on_prem",
    )
    assert e["request"] == {"previous_response_id": "resp_0"}
    assert (e["tag"], e["consumes_state"]) == ("stateful", True)
    assert (e["input_tokens"], e["output_tokens"], e["cached_tokens"]) == (900, 80, 256)
    assert e["attrs"]["gen_ai.response.id"] == "resp_1"
    assert e["attrs"]["joined"] == {
        "by": "response_id" if span_response_id else "trace_context",
        "span": f"{e['attrs']['otel.trace_id']}:{chat_span}",
    }
    assert e["attrs"]["venue_evidence"]["rule"] == "venue-user-mapping"
    stats = meter.stats()
    assert stats["spans"] == {
        "seen": 2,
        "recorded": 0,
        "joined": 1,
        "errors": 0,
        "skipped": {"agent_or_workflow": 1},
    }
    assert stats["integration_errors"] == {}
    # The session is stateful because the call was.
    assert e["session_tag"] == "stateful"


def test_without_the_processor_capture_and_spans_are_as_before(client: Any) -> None:
    """Capture alone records the call into its session; spans nobody meters change nothing."""
    meter = sm.Meter()
    with meter.session("bot", session_id="user-7") as s:
        capture.instrument(client, s, providers=OPENAI)
        _, tracer, exported = traced(None)
        framework_turn(tracer, client)
    [e] = model_calls(meter)
    assert (e["session_id"], e["agent"], e["tag"]) == ("user-7", "bot", "stateful")
    assert "joined" not in e["attrs"] and "otel.span_id" not in e["attrs"]
    assert len(exported.get_finished_spans()) == 2
    assert meter.stats()["spans"]["seen"] == 0


def test_the_processor_without_capture_records_the_span_as_it_says(client: Any) -> None:
    """The span lacks the request parameter: without capture the call reads stateless (why
    capture is the recommended companion)."""
    meter = sm.Meter()
    _, tracer, _ = traced(meter)
    framework_turn(tracer, client)
    [e] = model_calls(meter)
    assert (e["session_id"], e["agent"], e["tag"], e["input_tokens"]) == (
        "conv-join",
        "support",
        "stateless",
        1,
    )
    assert meter.stats()["spans"]["recorded"] == 1


def test_a_capture_session_is_kept_when_the_spans_name_no_conversation(client: Any) -> None:
    meter = sm.Meter()
    _, tracer, _ = traced(meter)
    with meter.session("bot", session_id="user-7") as s:
        capture.instrument(client, s, providers=OPENAI)
        with tracer.start_as_current_span(
            "chat gpt-5",
            kind=SpanKind.CLIENT,
            attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"},
        ):
            client.responses.create(model="gpt-5", input="hi")
    [e] = model_calls(meter)
    assert (e["session_id"], e["agent"], e["attrs"]["joined"]["by"]) == (
        "user-7",
        "bot",
        "trace_context",
    )


def test_a_call_under_a_span_that_is_no_model_call_takes_its_context(client: Any) -> None:
    """A framework that traces agents and tools but not model calls: the captured call is
    recorded once, in the agent's session, beneath the tool that made it."""
    meter = sm.Meter()
    capture.instrument(client, meter, providers=OPENAI)
    _, tracer, _ = traced(meter)
    with tracer.start_as_current_span(
        "invoke_agent support",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "session.id": "s-42",
        },
    ):
        with tracer.start_as_current_span(
            "execute_tool summarize",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "summarize"},
        ):
            client.responses.create(model="gpt-5", input="hi", previous_response_id="resp_0")
    meter.flush()
    tool, call = sorted(meter.ledger.events().to_pylist(), key=lambda e: e["kind"] != "tool_call")
    assert (call["session_id"], call["agent"], call["parent_id"], call["tag"]) == (
        "s-42",
        "support",
        tool["id"],
        "stateful",
    )
    assert call["attrs"]["otel.span_id"] == tool["attrs"]["otel.span_id"]
    assert meter.stats()["spans"] == {
        "seen": 2,
        "recorded": 1,
        "joined": 0,
        "errors": 0,
        "skipped": {"agent_or_workflow": 1},
    }


def test_a_call_captured_outside_the_trace_joins_its_span_by_response_id(client: Any) -> None:
    """A span made after the call (outside it) that reports the response id is that call:
    counted as joined, not recorded again."""
    meter = sm.Meter()
    capture.instrument(client, meter, providers=OPENAI)
    _, tracer, _ = traced(meter)
    r = client.responses.create(model="gpt-5", input="hi", previous_response_id="resp_0")
    with tracer.start_as_current_span(
        "chat gpt-5",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.response.id": r.id,
        },
    ):
        pass
    [e] = model_calls(meter)
    assert e["tag"] == "stateful" and "joined" not in e["attrs"]
    assert (meter.stats()["spans"]["joined"], meter.stats()["spans"]["recorded"]) == (1, 0)


def otlp(spans: list[ReadableSpan]) -> dict[str, Any]:
    """Finished SDK spans as an OTLP/JSON document (what the collector's file exporter writes)."""

    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        if isinstance(v, bytes):
            return {"bytesValue": base64.b64encode(v).decode()}
        return {"stringValue": str(v)}

    out = []
    for s in spans:
        ctx = s.get_span_context()
        assert ctx is not None
        span: dict[str, Any] = {
            "traceId": f"{ctx.trace_id:032x}",
            "spanId": f"{ctx.span_id:016x}",
            "name": s.name,
            "kind": s.kind.value + 1,
            "startTimeUnixNano": str(s.start_time),
            "endTimeUnixNano": str(s.end_time),
            "attributes": [{"key": k, "value": value(v)} for k, v in (s.attributes or {}).items()],
        }
        if s.parent is not None:
            span["parentSpanId"] = f"{s.parent.span_id:016x}"
        out.append(span)
    return {"resourceSpans": [{"scopeSpans": [{"spans": out}]}]}


def test_importing_the_spans_of_captured_calls_records_nothing_twice(client: Any) -> None:
    # Live capture and spans joined; then the same spans arrive as a file.
    meter = sm.Meter()
    capture.instrument(client, meter, providers=OPENAI)
    _, tracer, exported = traced(meter)
    framework_turn(tracer, client, span_response_id=False)
    doc = otlp(list(exported.get_finished_spans()))
    summary = import_otlp_json(doc, meter)
    assert (summary["seen"], summary["recorded"], summary["joined"]) == (2, 0, 1)
    assert len(model_calls(meter)) == 1
    assert meter.stats()["spans"]["joined"] == 2  # once live, once from the file

    # Capture alone (no processor); the spans, exported elsewhere, are imported later: the span
    # reporting the captured response id is that call.
    other = sm.Meter()
    capture.instrument(client, other, providers=OPENAI)
    _, tracer, exported = traced(None)
    framework_turn(tracer, client)
    summary = import_otlp_json(otlp(list(exported.get_finished_spans())), other)
    assert summary == {
        "seen": 2,
        "recorded": 0,
        "joined": 1,
        "errors": 0,
        "skipped": {"agent_or_workflow": 1},
    }
    [e] = model_calls(other)
    assert (e["tag"], e["input_tokens"]) == ("stateful", 900)

    # A span whose response id nothing captured is recorded.
    fresh = sm.Meter()
    assert import_otlp_json(otlp(list(exported.get_finished_spans())), fresh)["recorded"] == 1
