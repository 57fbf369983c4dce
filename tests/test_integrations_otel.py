"""OpenTelemetry: live SDK spans through `MeterSpanProcessor`, OTLP/JSON files in both attribute
styles, and the export -> import round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import statemeter as sm
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from statemeter.integrations.otel import (
    MeterSpanProcessor,
    export_otlp_json,
    import_otlp_json,
)

DATA = Path(__file__).parent / "data" / "otlp"
#: OTLP exports of other projects in the shared test data beside the repository.
SHARED_OTLP = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "otlp"
VERCEL = SHARED_OTLP / "openinference-vercel_v6_all-spans.otlp.json"


def tracer_for(meter: sm.Meter, **kw):
    provider = TracerProvider()
    provider.add_span_processor(MeterSpanProcessor(meter, **kw))
    return provider, provider.get_tracer("test")


def agent_run(tracer, *, conversation: str | None = "conv_1", tokens=(1200, 300, 200)):
    """An in-process agent: invoke_agent > chat, execute_tool (MCP) > chat, memory write."""
    agent_attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"}
    if conversation:
        agent_attrs["gen_ai.conversation.id"] = conversation
    with tracer.start_as_current_span("invoke_agent support", attributes=agent_attrs):
        with tracer.start_as_current_span(
            "chat gpt-5",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-5",
                "server.address": "api.openai.com",
                "gen_ai.input.messages": "SECRET PROMPT",
            },
        ) as chat:
            chat.set_attribute("gen_ai.response.id", "chatcmpl-1")
            chat.set_attribute("gen_ai.usage.input_tokens", tokens[0])
            chat.set_attribute("gen_ai.usage.output_tokens", tokens[1])
            chat.set_attribute("gen_ai.usage.cache_read.input_tokens", tokens[2])
        with tracer.start_as_current_span(
            "execute_tool search_docs",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "search_docs",
                "mcp.method.name": "tools/call",
                "mcp.session.id": "mcp-77",
                "gen_ai.tool.call.arguments": "SECRET ARGS",
            },
        ):
            with tracer.start_as_current_span(
                "chat gpt-5",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "az.ai.openai",
                    "gen_ai.request.model": "gpt-5",
                    "gen_ai.response.id": "resp_2",
                    "server.address": "contoso.openai.azure.com:443",
                    "statemeter.request.previous_response_id": "resp_1",
                },
            ):
                pass
        with tracer.start_as_current_span(
            "update_memory notes",
            attributes={
                "gen_ai.operation.name": "update_memory",
                "gen_ai.memory.store.id": "notes",
            },
        ):
            pass


def test_live_spans_become_classified_events():
    meter = sm.Meter()
    provider, tracer = tracer_for(meter)
    agent_run(tracer)
    provider.force_flush()
    events = meter.ledger.events()
    kinds = [(e.kind, e.tool or e.api or e.op) for e in events]
    assert kinds == [
        ("model_call", "chat.completions"),
        ("model_call", "responses"),
        ("tool_call", "search_docs"),
        ("state_op", "write"),
    ]
    chat, nested, tool, mem = events
    assert {e.session_id for e in events} == {"conv_1"}
    assert {e.agent for e in events} == {"support"}
    assert (chat.provider, chat.venue, chat.tag, chat.input_tokens, chat.cached_tokens) == (
        "openai",
        "openai",
        "stateless",
        1200,
        200,
    )
    assert chat.attrs["venue_evidence"]["rule"] == "venue-endpoint"
    assert (nested.provider, nested.venue, nested.tag) == ("azure.ai.openai", "azure", "stateful")
    assert nested.request == {"previous_response_id": "resp_1"}
    assert [ev.rule for ev in nested.evidence] == [
        "openai-responses-store-default",
        "openai-responses-previous-response-id",
    ]
    assert nested.parent_id == tool.id
    assert (tool.tool_kind, tool.mcp_session_id, tool.tag) == ("mcp", "mcp-77", "stateful")
    assert (mem.op, mem.holder, mem.store, mem.tag) == ("write", "client", "notes", "stateful")
    assert all(e.session_tag == "stateful" for e in events)
    # Content is never read, let alone stored.
    dump = json.dumps(events.to_pylist())
    assert "SECRET" not in dump
    assert meter.stats()["integration_errors"] == {}


def test_trace_is_the_session_without_conversation_id():
    meter = sm.Meter()
    provider, tracer = tracer_for(meter)
    agent_run(tracer, conversation=None)
    agent_run(tracer, conversation=None)
    provider.force_flush()
    sessions = {e.session_id for e in meter.ledger.events()}
    assert len(sessions) == 2 and all(len(s) == 32 for s in sessions)


def test_user_venue_mapping():
    meter = sm.Meter()
    provider, tracer = tracer_for(meter, venues={"llm-gw.corp": "on_prem"})
    with tracer.start_as_current_span(
        "chat m",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "m",
            "server.address": "llm-gw.corp",
        },
    ):
        pass
    (e,) = meter.ledger.events()
    assert e.venue == "on_prem"
    assert e.attrs["venue_evidence"]["rule"] == "venue-user-mapping"


def test_span_error_status():
    meter = sm.Meter()
    provider, tracer = tracer_for(meter)
    with pytest.raises(RuntimeError):
        with tracer.start_as_current_span(
            "execute_tool t",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "t"},
        ):
            raise RuntimeError("tool failed")
    with tracer.start_as_current_span(
        "chat m",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "m",
        },
    ) as s:
        s.set_status(Status(StatusCode.ERROR, "rate limited"))
    tool, chat = meter.ledger.events()
    assert (tool.status, chat.status) == ("error", "error")


def test_host_run_survives_a_closed_meter_and_malformed_spans(caplog):
    meter = sm.Meter()
    provider, tracer = tracer_for(meter)
    # A malformed span: negative token counts.
    with tracer.start_as_current_span(
        "chat m",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "gen_ai.usage.input_tokens": -5,
        },
    ):
        pass
    with tracer.start_as_current_span(
        "chat m",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "gen_ai.usage.cache_read.input_tokens": "lots",
        },
    ):
        pass
    assert meter.stats()["integration_errors"] == {"otel": 2}
    meter.close()
    result = []
    agent_run(tracer)  # every recording span now fails inside the processor
    result.append("host finished")
    assert result == ["host finished"]
    assert meter.stats()["integration_errors"]["otel"] == 2 + 4
    provider.force_flush()  # flushing a closed meter is shielded too
    assert len(meter.ledger.events()) == 0


def test_import_current_style_fixture():
    meter = sm.Meter()
    summary = import_otlp_json(DATA / "genai-current.json", meter)
    assert summary == {
        "seen": 7,
        "recorded": 5,
        "joined": 0,
        "errors": 0,
        "skipped": {"agent_or_workflow": 1, "not_genai": 1},
    }
    assert meter.stats()["spans"] == summary
    events = meter.ledger.events()
    got = [(e.kind, e.provider or e.tool or e.op, e.api, e.venue, e.tag) for e in events]
    assert got == [
        ("model_call", "azure.ai.openai", "responses", "azure", "stateful"),
        ("tool_call", "get_weather", None, None, "stateful"),
        ("state_op", "read", None, None, "stateful"),
        ("model_call", "aws.bedrock", "invoke_agent", "aws", "stateful"),
        ("model_call", "aws.bedrock", "converse", "aws", "stateless"),
    ]
    chat, tool, mem, remote, inner = events
    assert chat.session_id == tool.session_id == mem.session_id == "conv_6801"
    assert chat.agent == "triage"
    assert remote.attrs["agent_id"] == "AGENT12345"
    assert (chat.input_tokens, chat.output_tokens, chat.cached_tokens) == (1200, 300, 1024)
    assert chat.duration_ns == 1_000_000_000 and chat.ts == 1767225600100000000
    assert chat.request == {"previous_response_id": "resp_6790"}
    assert tool.status == "error" and tool.tool_kind == "mcp"
    assert tool.mcp_session_id == "191c4850af6c49e08843a3f6c80e5046"
    assert (mem.holder, mem.scope, mem.store) == ("provider", "user", "user-prefs")
    assert remote.request == {"sessionId": "sess-42"}
    assert [ev.rule for ev in remote.evidence] == ["bedrock-invoke-agent-session-id"]
    assert inner.parent_id == remote.id and inner.session_id == "sess-42"
    assert chat.attrs["service"] == "support-bot"
    assert "never stored" not in json.dumps(events.to_pylist())


def test_import_pre_1_37_fixture_json_lines():
    meter = sm.Meter()
    summary = import_otlp_json(str(DATA / "genai-pre-1.37.jsonl"), meter)
    assert (summary["seen"], summary["recorded"], summary["skipped"]) == (5, 5, {})
    got = [
        (e.kind, e.provider, e.api, e.venue, e.input_tokens, e.output_tokens)
        for e in meter.ledger.events()
    ]
    assert got == [
        ("model_call", "azure.ai.openai", "chat.completions", "azure", 520, 80),
        ("tool_call", None, None, None, None, None),
        ("model_call", "gcp.vertex_ai", "generate_content", "gcp", 300, 40),
        ("model_call", "x_ai", "chat", "x_ai", 10, 5),  # api.x.ai is xAI's own endpoint
        ("model_call", "openai", "embeddings", "openai", 64, 0),
    ]
    events = meter.ledger.events()
    assert events[0].id == "otel:a3ce929d0e0e47364bf92f3577b34da6:a2fb4a1d1a96d312"
    assert events[1].parent_id == events[0].id
    assert all(e.tag == "stateless" for e in events)
    assert "never stored" not in json.dumps(events.to_pylist())


def test_import_is_idempotent_and_atomic(tmp_path):
    meter = sm.Meter()
    import_otlp_json(DATA / "genai-current.json", meter)
    import_otlp_json(DATA / "genai-current.json", meter)
    meter.flush()
    assert len(meter.ledger.events()) == 5
    assert meter.stats()["duplicates"] == 5

    doc = json.loads((DATA / "genai-current.json").read_text())
    spans = doc["resourceSpans"][1]["scopeSpans"][0]["spans"]
    spans[1]["attributes"][3]["value"] = {"intValue": "-800"}
    fresh = sm.Meter()
    with pytest.raises(sm.ValidationError, match="gen_ai.usage.input_tokens"):
        import_otlp_json(doc, fresh)
    spans[1]["attributes"][3]["value"] = {"intValue": "800"}
    spans[1]["spanId"] = "7u4ZtsPBsXQ="  # base64, not hex
    where = r"resourceSpans\[1\]\.scopeSpans\[0\]\.spans\[1\]\.spanId"
    with pytest.raises(sm.ValidationError, match=where):
        import_otlp_json(doc, fresh)
    bad = tmp_path / "bad.jsonl"
    bad.write_text((DATA / "genai-current.json").read_text().replace("\n", "") + '\n{"x": 1}\n')
    with pytest.raises(sm.ValidationError, match="resourceSpans.*line 2"):
        import_otlp_json(bad, fresh)
    with pytest.raises(sm.ValidationError, match="not JSON at line 1"):
        import_otlp_json(b'{"resourceSpans": [', fresh)
    with pytest.raises(sm.ValidationError) as info:
        import_otlp_json(b"\xff", fresh)
    assert info.value.field == "otlp"
    assert len(fresh.ledger.events()) == 0


@pytest.mark.parametrize("durability", ["sync", "batch"])
def test_an_import_that_conflicts_with_the_ledger_records_nothing(durability):
    """All or nothing: a span whose event is already recorded with another payload fails the
    whole import, also when the spans before it are new."""
    doc = json.loads((DATA / "genai-current.json").read_text())
    meter = sm.Meter(durability=durability)
    import_otlp_json({"resourceSpans": doc["resourceSpans"][1:]}, meter)
    meter.flush()
    before = len(meter.ledger.events())
    assert before == 2
    seen = meter.stats()["spans"]["seen"]
    doc["resourceSpans"][1]["scopeSpans"][0]["spans"][1]["attributes"][3]["value"] = {
        "intValue": "801"
    }
    with pytest.raises(sm.ValidationError, match="already recorded.*nothing of this batch"):
        import_otlp_json(doc, meter)
    meter.flush()
    assert len(meter.ledger.events()) == before
    assert meter.stats()["written"] == before
    # The same file without the conflict imports whole.
    doc["resourceSpans"][1]["scopeSpans"][0]["spans"][1]["attributes"][3]["value"] = {
        "intValue": "800"
    }
    # The failed import counted nothing.
    assert meter.stats()["spans"]["seen"] == seen
    assert import_otlp_json(doc, meter)["recorded"] == 5
    assert meter.stats()["spans"]["seen"] == seen + 7
    meter.flush()
    assert len(meter.ledger.events()) == 5


def record_everything(meter: sm.Meter) -> None:
    with meter.session(
        "bot",
        tenant="acme",
        venue="aws",
        runtime="agentcore",
        runtime_session_id="rt-1",
        attrs={"team": "claims"},
    ) as s:
        first = s.model_call(
            provider="openai",
            model="gpt-5",
            api="responses",
            input_tokens=900,
            output_tokens=80,
            cached_tokens=512,
            endpoint="https://api.openai.com/v1/responses",
            request={"store": True},
            duration_ns=1_500_000,
        )
        s.model_call(
            provider="openai",
            model="gpt-5",
            api="responses",
            venue="openai",
            request={"previous_response_id": "resp_1", "conversation": {"id": "c"}},
            parent_id=first.id,
            attrs={"nested": {"x": [1, 2.5, "y", None, True]}},
        )
        s.model_call(provider="openai", model="gpt-5", api="chat.completions", status="error")
        s.tool_call("search", effect="read", mcp_session_id="m-1", tool_kind="mcp")
        s.tool_call("calc", duration_ns=0)
        s.state_op("write", store="ckpt", holder="client", key="k", bytes=2048)
        s.state_op("read", store="agentcore-memory", holder="provider", scope="user")
    with meter.session("other") as s:
        s.model_call(
            provider="anthropic",
            model="claude",
            api="messages",
            request={"cache_control": {"type": "ephemeral"}},
        )
        s.state_op("delete", store="ckpt", holder="client", scope="global")


@pytest.mark.parametrize("ruleset", [sm.Ruleset.default, sm.Ruleset.strict])
def test_export_import_round_trip_preserves_every_field(tmp_path, ruleset):
    source = sm.Meter(ruleset=ruleset())
    record_everything(source)
    original = source.ledger.events()
    path = tmp_path / "export.json"
    doc = export_otlp_json(original, path)
    assert json.loads(path.read_text()) == doc
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert len(spans) == len(original)
    target = sm.Meter(ruleset=ruleset())
    assert import_otlp_json(path, target) == {
        "seen": len(original),
        "recorded": len(original),
        "joined": 0,
        "errors": 0,
        "skipped": {},
    }
    back = target.ledger.events()
    for a, b in zip(original.to_pylist(), back.to_pylist(), strict=True):
        assert a == b
    # The verdict travels as attributes.
    stateful = next(
        s
        for s in spans
        if any(
            kv["key"] == "statemeter.request"
            and "previous_response_id" in kv["value"]["stringValue"]
            for kv in s["attributes"]
        )
    )
    attrs = {kv["key"]: kv["value"] for kv in stateful["attributes"]}
    assert attrs["statemeter.tag"] == {"stringValue": "stateful"}
    assert attrs["statemeter.consumes_state"] == {"boolValue": True}
    assert attrs["statemeter.session_tag"] == {"stringValue": "stateful"}
    rules = [v["stringValue"] for v in attrs["statemeter.evidence"]["arrayValue"]["values"]]
    assert "openai-responses-previous-response-id" in rules
    assert attrs["gen_ai.usage.input_tokens"] == {"intValue": "0"}


def test_export_accepts_events_and_dicts():
    meter = sm.Meter()
    with meter.session("a") as s:
        e = s.tool_call("x")
    from_events = export_otlp_json([e])
    from_dicts = export_otlp_json([e.to_dict()])
    assert from_events == from_dicts
    with pytest.raises(sm.ValidationError, match=r"events\[0\]"):
        export_otlp_json([{"kind": "tool_call"}])


@pytest.mark.skipif(
    not VERCEL.is_file(),
    reason=f"the recorded Vercel AI SDK export is not on this machine at {VERCEL}",
)
def test_import_vercel_ai_sdk_export_without_operation_names():
    meter = sm.Meter()
    summary = import_otlp_json(VERCEL, meter)
    # Ten spans: four provider calls (doGenerate x3, doStream), their four wrappers (no
    # gen_ai.system) and an embedding pair that carries no gen_ai usage.
    assert (summary["seen"], summary["recorded"], summary["skipped"]) == (10, 4, {"not_genai": 6})
    calls = meter.ledger.events().to_pylist()
    assert [
        (c["kind"], c["provider"], c["api"], c["model"], c["input_tokens"], c["output_tokens"])
        for c in calls
    ] == [
        ("model_call", "openai", "responses", "gpt-4o-mini", 14, 20),
        ("model_call", "openai", "responses", "gpt-4o-mini", 50, 9),
        ("model_call", "openai", "responses", "gpt-4o-mini", 63, 156),
        ("model_call", "openai", "responses", "gpt-4o-mini", 15, 112),
    ]
    assert [c["attrs"]["otel.span_name"] for c in calls] == [
        "ai.generateText.doGenerate",
        "ai.generateText.doGenerate",
        "ai.generateObject.doGenerate",
        "ai.streamText.doStream",
    ]
    for c in calls:
        assert c["attrs"]["inferred"]["from"] == [
            "gen_ai.system",
            "gen_ai.request.model",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
        ]
        assert c["attrs"]["response_id"].startswith("resp_")
        assert c["attrs"]["provider_evidence"].startswith("gen_ai.system openai.responses")
        # Responses with store left at its default: kept by OpenAI, the call itself stateless.
        assert (c["tag"], c["creates_state"], c["state_holder"]) == ("stateless", True, "provider")
    # Prompts and answers in the export's ai.* attributes never reach the ledger.
    assert "haiku" not in json.dumps(calls).lower()


def test_import_spans_without_operation_and_request_attributes():
    meter = sm.Meter()
    summary = import_otlp_json(DATA / "genai-no-operation-and-request-attributes.json", meter)
    assert (summary["seen"], summary["recorded"], summary["skipped"]) == (
        13,
        8,
        {"not_genai": 3, "repeats_model_call": 2},
    )
    ev = {e["attrs"]["otel.span_id"]: e for e in meter.ledger.events().to_pylist()}
    conv = "conv_689667905b048191b4740501625afd940c7533ace33a2dab"

    # Vercel AI SDK spans: the provider id names provider and API; wrappers, tool and embedding
    # spans are not model calls.
    claude, mini = ev["a000000000000002"], ev["a000000000000004"]
    assert (claude["provider"], claude["api"], claude["input_tokens"]) == (
        "anthropic",
        "messages",
        120,
    )
    assert claude["attrs"]["api_inferred_from"] == "gen_ai.response.id"
    assert (mini["provider"], mini["api"], mini["attrs"]["api_inferred_from"]) == (
        "openai",
        "chat.completions",
        "gen_ai.system",
    )
    assert claude["session_id"] == mini["session_id"] == "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
    assert {claude["tag"], mini["tag"]} == {"stateless"}

    # Request attributes of the OpenAI instrumentations, under the provider's parameter names.
    unstored, chained, background, in_conv, timed_out = (
        ev[f"b00000000000000{i}"] for i in range(1, 6)
    )
    assert "inferred" in unstored["attrs"]  # no operation name either
    assert (unstored["request"], unstored["tag"], unstored["creates_state"]) == (
        {"store": False},
        "stateless",
        False,
    )
    assert (chained["request"], chained["tag"], chained["consumes_state"]) == (
        {"previous_response_id": "resp_b1"},
        "stateful",
        True,
    )
    assert [e["rule"] for e in chained["evidence"]] == [
        "openai-responses-store-default",
        "openai-responses-previous-response-id",
    ]
    assert background["request"] == {"background": True, "store": True}
    assert "openai-responses-background" in [e["rule"] for e in background["evidence"]]
    assert (in_conv["request"], in_conv["session_id"], in_conv["tag"]) == (
        {"conversation": conv},
        conv,
        "stateful",
    )
    assert in_conv["attrs"]["request_from"] == {"conversation": "gen_ai.conversation.id"}
    assert (timed_out["api"], timed_out["request"], timed_out["status"], timed_out["tag"]) == (
        "responses",
        {"conversation": conv},
        "error",
        "stateful",
    )
    assert timed_out["attrs"]["api_inferred_from"] == "gen_ai.openai.request.conversation_id"

    # A wrapper summing usage and an HTTP-level span beneath the chat span are the same call.
    assert "c000000000000001" not in ev and "c000000000000003" not in ev
    assert ev["c000000000000002"]["input_tokens"] == 400
    assert "SECRET" not in json.dumps(list(ev.values()))


def test_live_spans_without_operation_and_with_request_attributes():
    """The live processor: usage arrives at the end of a span, as the Vercel AI SDK sets it."""
    meter = sm.Meter()
    provider, tracer = tracer_for(meter)
    with tracer.start_as_current_span("ai.generateText"):  # a wrapper without gen_ai usage
        with tracer.start_as_current_span(
            "ai.generateText.doGenerate",
            attributes={"gen_ai.system": "openai.responses", "gen_ai.request.model": "gpt-5"},
        ) as span:
            span.set_attribute("gen_ai.response.id", "resp_live")
            span.set_attribute("gen_ai.usage.input_tokens", 14)
            span.set_attribute("gen_ai.usage.output_tokens", 20)
            span.set_attribute("ai.response.text", "SECRET")
    with tracer.start_as_current_span(
        "chat gpt-5",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-5",
            "gen_ai.openai.request.previous_response_id": "resp_live",
            "gen_ai.openai.request.store": False,
        },
    ):
        pass
    # A wrapper span with its own usage above an explicit call is that call, not another one.
    with tracer.start_as_current_span(
        "agent.run",
        attributes={"gen_ai.system": "openai", "gen_ai.request.model": "gpt-5"},
    ) as wrapper:
        with tracer.start_as_current_span(
            "chat gpt-5",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-5",
                "gen_ai.usage.input_tokens": 7,
            },
        ):
            pass
        wrapper.set_attribute("gen_ai.usage.input_tokens", 7)
    provider.force_flush()
    first, chained, inner = meter.ledger.events().to_pylist()
    assert (first["provider"], first["api"], first["input_tokens"], first["tag"]) == (
        "openai",
        "responses",
        14,
        "stateless",
    )
    assert first["attrs"]["inferred"]["kind"] == "model_call"
    assert (chained["api"], chained["request"], chained["tag"], chained["creates_state"]) == (
        "responses",
        {"previous_response_id": "resp_live", "store": False},
        "stateful",
        False,
    )
    assert inner["attrs"]["otel.span_name"] == "chat gpt-5" and inner["input_tokens"] == 7
    assert "SECRET" not in json.dumps([first, chained, inner])
    assert meter.stats()["integration_errors"] == {}


# --- One mapping, two doors: every OTLP fixture imported and replayed live -------------------


def _value(any_value: dict):
    """An OTLP `AnyValue` as the Python SDK takes it (None: a kind of value it does not take)."""
    if "stringValue" in any_value:
        return any_value["stringValue"]
    if "boolValue" in any_value:
        return any_value["boolValue"]
    if "intValue" in any_value:
        return int(any_value["intValue"])
    if "doubleValue" in any_value:
        return float(any_value["doubleValue"])
    if "bytesValue" in any_value:
        return any_value["bytesValue"]
    if "arrayValue" in any_value:
        values = [_value(v) for v in any_value["arrayValue"].get("values") or []]
        return values if values and len({type(v) for v in values}) == 1 else None
    return None


def otlp_spans(path: Path) -> list[tuple[dict, dict]]:
    """Every span of an OTLP/JSON file (one document or JSON Lines), with its resource."""
    text = path.read_text()
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while pos < len(text.rstrip()):
        while text[pos].isspace():
            pos += 1
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
    out = []
    for doc in docs:
        for rs in doc["resourceSpans"]:
            resource = {
                kv["key"]: _value(kv["value"])
                for kv in (rs.get("resource") or {}).get("attributes", [])
            }
            for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
                out.extend((resource, span) for span in ss.get("spans") or [])
    return out


_KINDS = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]


def _enum(value, prefix: str, names: list[str]) -> int:
    """An OTLP/JSON enum given as a number or its name."""
    if isinstance(value, str) and value.startswith(prefix):
        return names.index(value[len(prefix) :])
    return int(value or 0)


class _ReplayIds(IdGenerator):
    """Hands out the ids of the span being replayed."""

    trace_id = span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


def replay_live(path: Path, meter: sm.Meter, *, late_attributes: bool) -> None:
    """Replays a file's spans through real SDK `TracerProvider`s (one per resource) into one
    `MeterSpanProcessor`, with the file's ids, kinds, times, status and attributes. All spans of
    a trace start before the first of them ends (one process serving the trace), children end
    before parents. With `late_attributes`, every attribute is set after the span started (as
    instrumentations set agent names and usage during a run)."""
    processor = MeterSpanProcessor(meter)
    ids = _ReplayIds()
    providers: dict[str, TracerProvider] = {}
    items = otlp_spans(path)
    by_id = {(s["traceId"].lower(), s["spanId"].lower()): s for _, s in items}

    def depth(span: dict) -> int:
        d, cur = 0, span
        while cur.get("parentSpanId") and d < 100:
            cur = by_id.get((cur["traceId"].lower(), cur["parentSpanId"].lower()), {})
            d += 1
        return d

    traces: dict[str, list[tuple[dict, dict]]] = {}
    for resource, span in items:
        traces.setdefault(span["traceId"].lower(), []).append((resource, span))
    for spans in traces.values():
        live = []
        for resource, s in sorted(
            spans, key=lambda rs: (int(rs[1]["startTimeUnixNano"]), depth(rs[1]))
        ):
            key = json.dumps(resource, sort_keys=True)
            if key not in providers:
                providers[key] = TracerProvider(resource=Resource(resource), id_generator=ids)
                providers[key].add_span_processor(processor)
            tracer = providers[key].get_tracer("replay")
            ids.trace_id = int(s["traceId"], 16)
            ids.span_id = int(s["spanId"], 16)
            context = Context()
            if s.get("parentSpanId"):
                parent = SpanContext(
                    ids.trace_id,
                    int(s["parentSpanId"], 16),
                    is_remote=False,
                    trace_flags=TraceFlags(TraceFlags.SAMPLED),
                )
                context = trace_api.set_span_in_context(NonRecordingSpan(parent))
            attrs = {kv["key"]: _value(kv.get("value") or {}) for kv in s.get("attributes", [])}
            attrs = {k: v for k, v in attrs.items() if v is not None}
            kind = _enum(s.get("kind"), "SPAN_KIND_", _KINDS)
            span = tracer.start_span(
                s.get("name", ""),
                context=context,
                kind=SpanKind(kind - 1) if 1 <= kind <= 5 else SpanKind.INTERNAL,
                attributes=None if late_attributes else attrs,
                start_time=int(s["startTimeUnixNano"]),
            )
            live.append((span, s, attrs))
        for span, s, attrs in sorted(
            live, key=lambda x: (int(x[1].get("endTimeUnixNano") or 0), -depth(x[1]))
        ):
            if late_attributes:
                span.set_attributes(attrs)
            code = _enum(
                (s.get("status") or {}).get("code"), "STATUS_CODE_", ["UNSET", "OK", "ERROR"]
            )
            if code == 2:
                span.set_status(Status(StatusCode.ERROR, s["status"].get("message")))
            elif code == 1:
                span.set_status(Status(StatusCode.OK))
            end = int(s.get("endTimeUnixNano") or 0)
            span.end(end_time=max(end, int(s["startTimeUnixNano"])))
    processor.force_flush()


FIXTURES = sorted(DATA.glob("*.json*")) + (
    sorted(SHARED_OTLP.glob("*.json*")) if SHARED_OTLP.is_dir() else []
)


@pytest.mark.parametrize("late_attributes", [False, True], ids=["attrs-at-start", "attrs-late"])
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_gives_the_same_events_imported_and_live(path, late_attributes):
    imported, live = sm.Meter(), sm.Meter()
    import_otlp_json(path, imported)
    replay_live(path, live, late_attributes=late_attributes)

    def by_id(meter: sm.Meter) -> list[dict]:
        # `seq` is the order events reached the ledger: live, a trace's events are recorded
        # when its last span ends, in the order its spans ended.
        rows = meter.ledger.events().to_pylist()
        return sorted(
            ({k: v for k, v in e.items() if k != "seq"} for e in rows), key=lambda e: e["id"]
        )

    # Ids (otel:{trace}:{span}) and times come from the spans, so they are the same too.
    assert by_id(live) == by_id(imported)
    assert len(by_id(imported)) == import_otlp_json(path, sm.Meter())["recorded"]
    assert live.stats()["integration_errors"] == {}
    # Both doors account for every span alike.
    assert live.stats()["spans"] == imported.stats()["spans"]
    spans = live.stats()["spans"]
    assert spans["seen"] == len(otlp_spans(path))
    assert spans["seen"] == spans["recorded"] + spans["errors"] + sum(spans["skipped"].values())


def test_shared_otlp_exports_are_present():
    if not SHARED_OTLP.is_dir():
        pytest.skip(
            f"the recorded OTLP exports of real SDKs are not on this machine at {SHARED_OTLP}"
        )
    assert len(list(SHARED_OTLP.glob("*.json*"))) >= 2


def test_live_span_kinds_use_otlp_numbering():
    """The SDK numbers CLIENT 2, OTLP 3: a live CLIENT invoke_agent of a remote agent service is
    a model call; an in-process agent marked CLIENT (no provider, or a framework) is not."""
    meter = sm.Meter()
    provider, tracer = tracer_for(meter)
    with tracer.start_as_current_span(
        "invoke_agent claims",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": "aws.bedrock",
            "gen_ai.conversation.id": "sess-42",
        },
    ):
        pass
    with tracer.start_as_current_span(
        "invoke_agent helper",
        kind=SpanKind.CLIENT,
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.system": "strands-agents"},
    ) as agent:
        with tracer.start_as_current_span(
            "search_memory notes",
            kind=SpanKind.INTERNAL,
            attributes={"gen_ai.operation.name": "search_memory"},
        ):
            pass
        agent.set_attribute("gen_ai.agent.name", "helper")
    remote, memory = meter.ledger.events()
    assert (remote.kind, remote.api, remote.request) == (
        "model_call",
        "invoke_agent",
        {"sessionId": "sess-42"},
    )
    assert (memory.kind, memory.holder, memory.agent) == ("state_op", "client", "helper")


def test_framework_spans_openinference_traceloop_strands_adk():
    """Spans as Strands Agents, OpenInference (LlamaIndex), Traceloop (CrewAI) and Google ADK
    emit them: each mapped attribute says where it came from in `attrs.attributes_from`."""
    meter = sm.Meter()
    summary = import_otlp_json(DATA / "frameworks-openinference-traceloop-strands-adk.json", meter)
    assert (summary["seen"], summary["recorded"]) == (18, 11)
    assert summary["skipped"] == {"agent_or_workflow": 6, "unsupported_operation": 1}
    ev = {e["attrs"]["otel.span_id"]: e for e in meter.ledger.events().to_pylist()}
    row = lambda e: (  # noqa: E731
        e["kind"],
        e.get("provider") or e.get("tool") or e.get("op"),
        e.get("model"),
        e.get("input_tokens"),
        e.get("output_tokens"),
        e.get("cached_tokens"),
        e.get("session_id"),
        e.get("agent"),
    )
    claude = "us.anthropic.claude-sonnet-4-20250514-v1:0"
    # Strands: the framework is not the provider; the Bedrock model id names it. session.id is
    # the session of every turn, the agent name comes from the agent span.
    assert [row(ev[f"5a0000000000000{i}"]) for i in (3, 4, 5)] == [
        ("model_call", "aws.bedrock", claude, 500, 100, 0, "trip-2-turns", "TravelAgent"),
        ("tool_call", "search_flights", None, None, None, None, "trip-2-turns", "TravelAgent"),
        ("model_call", "aws.bedrock", claude, 483, 132, 0, "trip-2-turns", "TravelAgent"),
    ]
    chat = ev["5a00000000000003"]
    assert chat["attrs"]["framework"] == "strands-agents"
    assert chat["attrs"]["attributes_from"]["gen_ai.provider.name"] == "gen_ai.request.model"
    assert "5a00000000000001" not in ev  # the agent span sums its calls: not another call
    # OpenInference.
    llm, tool, retriever, mistral = (ev[f"0b0000000000000{i}"] for i in (2, 3, 4, 6))
    assert row(llm) == (
        "model_call",
        "openai",
        "gpt-4o-mini",
        120,
        30,
        64,
        "sess-oi-1",
        "researcher",
    )
    assert llm["attrs"]["user_id"] == "user-7"
    assert llm["attrs"]["attributes_from"] == {
        "gen_ai.operation.name": "openinference.span.kind",
        "gen_ai.provider.name": "llm.provider",
        "gen_ai.request.model": "llm.model_name",
        "gen_ai.usage.input_tokens": "llm.token_count.prompt",
        "gen_ai.usage.output_tokens": "llm.token_count.completion",
        "gen_ai.usage.cache_read.input_tokens": "llm.token_count.prompt_details.cache_read",
    }
    assert (tool["tool"], tool["attrs"]["tool_call_id"]) == ("lookup", "call_1")
    assert (retriever["kind"], retriever["op"], retriever.get("scope")) == (
        "state_op",
        "read",
        "global",
    )
    assert (mistral["provider"], mistral["session_id"]) == ("mistral_ai", "sess-oi-1")
    # Traceloop / OpenLLMetry: legacy usage names, llm.request.type, entity names.
    tl_chat, tl_tool = ev["7c00000000000003"], ev["7c00000000000004"]
    assert row(tl_chat)[:6] == ("model_call", "openai", "gpt-4o", 200, 50, 100)
    assert (tl_chat["agent"], tl_chat["api"]) == ("writer", "chat.completions")
    assert (tl_tool["tool"], tl_tool["agent"]) == ("search", "writer")
    # Google ADK: no operation on call_llm, the framework as gen_ai.system, FunctionTool.
    adk_llm, adk_tool = ev["ad00000000000002"], ev["ad00000000000003"]
    assert row(adk_llm) == (
        "model_call",
        "gcp.gemini",
        "gemini-2.0-flash",
        50,
        60,
        0,
        "adk-session-1",
        "weather_agent",
    )
    assert adk_llm["attrs"]["framework"] == "gcp.vertex.agent"
    assert (adk_tool["tool_kind"], adk_tool["attrs"]["tool_type"]) == ("function", "FunctionTool")
    assert "SECRET" not in json.dumps(list(ev.values()))


# --- Nothing dropped silently ----------------------------------------------------------------


def test_spans_that_look_like_model_calls_are_recorded_with_what_they_have():
    """A span with a model name, token usage or an LLM span kind is a model call even when it
    lacks the provider, the model, the operation or usage: `unknown` where needed, and the event
    says what was inferred (`attrs.inferred`, `attrs.attributes_from`) and what is missing."""
    meter = sm.Meter()
    summary = import_otlp_json(DATA / "genai-incomplete-model-calls.json", meter)
    assert summary == {
        "seen": 8,
        "recorded": 5,
        "joined": 0,
        "errors": 0,
        "skipped": {"agent_or_workflow": 1, "incomplete_genai": 1, "not_genai": 1},
    }
    ev = {e["attrs"]["otel.span_id"][-1]: e for e in meter.ledger.events().to_pylist()}
    assert sorted(ev) == ["1", "2", "3", "4", "5"]
    got = {
        k: (e["provider"], e["model"], e["input_tokens"], e["attrs"].get("missing"))
        for k, e in ev.items()
    }
    assert got == {
        # OpenInference LLM span without provider or usage: the model names the provider.
        "1": ("openai", "gpt-4o-mini", 0, ["usage"]),
        # An LLM span kind and nothing else.
        "2": ("unknown", "unknown", 0, ["provider", "model", "usage"]),
        # No operation, no provider: a model and usage.
        "3": ("anthropic", "claude-3-5-haiku-latest", 40, None),
        # An operation statemeter does not know, usage, the provider's own host.
        "4": ("mistral_ai", "unknown", 7, ["model"]),
        # Traceloop's request type, a model no provider is known for.
        "5": ("unknown", "llama3", 5, ["provider"]),
    }
    assert ev["1"]["attrs"]["attributes_from"]["gen_ai.provider.name"] == "gen_ai.request.model"
    assert ev["3"]["attrs"]["inferred"]["from"] == [
        "gen_ai.request.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
    ]
    assert ev["4"]["attrs"]["inferred"]["from"] == [
        "gen_ai.operation.name",
        "gen_ai.usage.input_tokens",
    ]
    assert "generate" in ev["4"]["attrs"]["inferred"]["explain"]
    assert ev["4"]["attrs"]["attributes_from"]["gen_ai.provider.name"] == "server.address"
    assert {(e["session_id"], e["agent"]) for e in ev.values()} == {("sess-incomplete", "helper")}
    assert "SECRET" not in json.dumps(list(ev.values()))


def test_live_stats_count_every_span():
    """`meter.stats()["spans"]`: seen, recorded, skipped by reason, errors; a trace counts when
    it is mapped (its root ended, or force_flush)."""
    meter = sm.Meter()
    provider, tracer = tracer_for(meter)
    agent_run(tracer)  # invoke_agent > 2 chat, 1 tool, 1 memory op
    with tracer.start_as_current_span("GET /health"):
        pass
    with tracer.start_as_current_span(
        "chat m",
        kind=SpanKind.CLIENT,
        attributes={"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": -1},
    ):
        pass
    with tracer.start_as_current_span("outer"):
        with tracer.start_as_current_span("plan", attributes={"gen_ai.operation.name": "plan"}):
            pass
        assert meter.stats()["spans"]["seen"] == 5 + 1 + 1  # the open trace is not mapped yet
    assert meter.stats()["spans"] == {
        "seen": 9,
        "recorded": 4,
        "joined": 0,
        "errors": 1,
        "skipped": {"agent_or_workflow": 2, "not_genai": 2},
    }
    assert meter.stats()["integration_errors"] == {"otel": 1}
