"""statemeter.integrations.botocore with real boto3 clients, offline: a loopback endpoint_url
answers canned JSON and AWS event streams, and a Stubber answers at before-call."""

from __future__ import annotations

import base64
import binascii
import json
import struct
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import botocore.exceptions
import pytest
import statemeter as sm
from botocore.config import Config
from botocore.stub import Stubber
from loopback import Loopback, json_answer
from statemeter.integrations import botocore as capture

MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
MODEL_PATH = quote(MODEL, safe="")
ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/support_agent-AbC123"
VENUES = {"127.0.0.1": "aws"}
# The loopback endpoint_url is nobody's endpoint: who operates it is the user's say.
PROVIDERS = {"127.0.0.1": "aws.bedrock"}
CONVERSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "4"}]}},
    "stopReason": "end_turn",
    "usage": {
        "inputTokens": 30,
        "outputTokens": 5,
        "totalTokens": 135,
        "cacheReadInputTokens": 100,
    },
    "metrics": {"latencyMs": 120},
}


def event_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message (prelude, string headers, JSON payload, CRCs)."""
    headers = b""
    for name, value in (
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ):
        n, v = name.encode(), value.encode()
        headers += struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack("!II", total, len(headers))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def event_stream(events: list[tuple[str, dict[str, Any]]]) -> tuple[int, str, Any, dict]:
    return (
        200,
        "application/vnd.amazon.eventstream",
        [event_message(t, p) for t, p in events],
        {"x-amzn-requestid": "req-stream"},
    )


def b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


@pytest.fixture
def server() -> Any:
    with Loopback() as lb:
        lb.route(
            "POST",
            f"/model/{MODEL_PATH}/converse",
            json_answer(CONVERSE, headers={"x-amzn-requestid": "req-1"}),
        )
        yield lb


def client(lb: Loopback, service: str = "bedrock-runtime", **kw: Any) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=lb.base,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}),
        **kw,
    )


def calls(meter: sm.Meter) -> list[dict[str, Any]]:
    meter.flush()
    return meter.ledger.events(kind="model_call").to_pylist()


def test_converse_records_the_exact_event(server: Loopback) -> None:
    meter = sm.Meter()
    with meter.session("bot") as s:
        rt = capture.instrument(client(server), s, venues=VENUES, providers=PROVIDERS)
        out = rt.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "2+2"}]}])
    assert out["output"]["message"]["content"][0]["text"] == "4"
    [e] = calls(meter)
    assert {
        k: e[k]
        for k in (
            "provider",
            "api",
            "model",
            "venue",
            "request",
            "status",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "tag",
            "consumes_state",
            "creates_state",
        )
    } == {
        "provider": "aws.bedrock",
        "api": "converse",
        "model": MODEL,
        "venue": "aws",
        "request": {},
        "status": "ok",
        "input_tokens": 130,
        "output_tokens": 5,
        "cached_tokens": 100,
        "tag": "stateless",
        "consumes_state": False,
        "creates_state": False,
    }
    assert [x["rule"] for x in e["evidence"]] == ["bedrock-invoke-model-converse"]
    attrs = e["attrs"]
    assert (
        attrs["aws.operation"],
        attrs["aws.request_id"],
        attrs["http.response.status_code"],
    ) == ("Converse", "req-1", 200)
    assert (attrs["provider_evidence"]["rule"], attrs["provider_evidence"]["shape"]) == (
        "provider-user-mapping",
        "bedrock-runtime",
    )
    assert attrs["venue_evidence"]["rule"] == "venue-user-mapping"
    assert e["endpoint"] == f"{server.base}/model/{MODEL_PATH}/converse"


def test_a_custom_endpoint_nobody_names_is_read_but_not_attributed(server: Loopback) -> None:
    """The service says how to read the request; it does not say who operates the host."""
    meter = sm.Meter()
    with meter.session("bot") as s:
        rt = capture.instrument(client(server), s)
        rt.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "2+2"}]}])
    [e] = calls(meter)
    assert (e["provider"], e["api"], e["model"], e["venue"]) == (
        "unknown",
        "converse",
        MODEL,
        "unknown",
    )
    evidence = e["attrs"]["provider_evidence"]
    assert (evidence["rule"], evidence["shape"]) == ("provider-unknown-host", "bedrock-runtime")
    assert "bedrock-runtime" in evidence["explain"]


def test_invoke_model_usage_from_headers_and_body_untouched(server: Loopback) -> None:
    body = {"content": [{"type": "text", "text": "4"}], "usage": {"input_tokens": 9}}
    server.route(
        "POST",
        f"/model/{MODEL_PATH}/invoke",
        json_answer(
            body,
            headers={
                "x-amzn-bedrock-input-token-count": "12",
                "x-amzn-bedrock-output-token-count": "4",
            },
        ),
    )
    meter = sm.Meter()
    with meter.session("bot") as s:
        rt = capture.instrument(client(server), s, providers=PROVIDERS)
        out = rt.invoke_model(
            modelId=MODEL,
            body=json.dumps(
                {
                    "anthropic_version": "bedrock-2023-05-31",
                    "max_tokens": 10,
                    "messages": [{"role": "user", "content": "hi"}],
                }
            ),
        )
        assert json.loads(out["body"].read()) == body  # the caller still reads the whole body
    [e] = calls(meter)
    assert (e["api"], e["input_tokens"], e["output_tokens"]) == ("invoke_model", 12, 4)


def test_converse_stream_is_observed_and_recorded_at_its_end(server: Loopback) -> None:
    events = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        ("messageStop", {"stopReason": "end_turn"}),
        (
            "metadata",
            {
                "usage": {"inputTokens": 11, "outputTokens": 2, "totalTokens": 13},
                "metrics": {"latencyMs": 50},
            },
        ),
    ]
    server.route("POST", f"/model/{MODEL_PATH}/converse-stream", event_stream(events))
    meter = sm.Meter()
    with meter.session("bot") as s:
        rt = capture.instrument(client(server), s, providers=PROVIDERS)
        out = rt.converse_stream(
            modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
        assert calls(meter) == []
        got = list(out["stream"])
    assert [next(iter(ev)) for ev in got] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "messageStop",
        "metadata",
    ]
    assert (
        "".join(ev["contentBlockDelta"]["delta"]["text"] for ev in got if "contentBlockDelta" in ev)
        == "Hello"
    )
    [e] = calls(meter)
    assert (e["api"], e["input_tokens"], e["output_tokens"], e["status"]) == (
        "converse_stream",
        11,
        2,
        "ok",
    )


def test_invoke_agent_session_and_memory_are_stateful(server: Loopback) -> None:
    path = "/agents/AGENT12345/agentAliases/TSTALIASID/sessions/session-001/text"
    trace = {
        "trace": {
            "orchestrationTrace": {
                "modelInvocationOutput": {
                    "metadata": {"usage": {"inputTokens": 300, "outputTokens": 40}}
                }
            }
        }
    }
    server.route(
        "POST",
        path,
        event_stream(
            [
                (
                    "trace",
                    {"agentId": "AGENT12345", "sessionId": "session-001", "trace": trace["trace"]},
                ),
                ("chunk", {"bytes": base64.b64encode(b"Hello from the agent").decode()}),
            ]
        ),
    )
    meter = sm.Meter()
    with meter.session("bot") as s:
        agent = capture.instrument(client(server, "bedrock-agent-runtime"), s, providers=PROVIDERS)
        out = agent.invoke_agent(
            agentId="AGENT12345",
            agentAliasId="TSTALIASID",
            sessionId="session-001",
            memoryId="user-42",
            inputText="what did we say?",
            enableTrace=True,
        )
        text = b"".join(ev["chunk"]["bytes"] for ev in out["completion"] if "chunk" in ev)
    assert text == b"Hello from the agent"
    e, inner = calls(meter)
    assert (e["api"], e["tag"], e["consumes_state"], e["creates_state"]) == (
        "invoke_agent",
        "stateful",
        True,
        True,
    )
    assert e["request"] == {"sessionId": "session-001", "memoryId": "user-42", "enableTrace": True}
    assert [x["rule"] for x in e["evidence"]] == [
        "bedrock-invoke-agent-session-id",
        "bedrock-invoke-agent-memory-id",
    ]
    # The trace's model invocation is an inner call of its own, carrying the tokens.
    assert (e["input_tokens"], e["output_tokens"]) == (0, 0)
    assert (inner["parent_id"], inner["input_tokens"], inner["output_tokens"]) == (e["id"], 300, 40)
    assert e["attrs"]["gen_ai.agent.id"] == "AGENT12345"


def test_agentcore_runtime_session_and_memory_event(server: Loopback) -> None:
    server.route(
        "POST",
        f"/runtimes/{quote(ARN, safe='')}/invocations",
        json_answer({"result": "ok"}, headers={"content-type": "application/json"}),
    )
    server.route(
        "POST",
        "/memories/mem-abc123456/events",
        json_answer(
            {
                "event": {
                    "memoryId": "mem-abc123456",
                    "actorId": "user-1",
                    "sessionId": "s-1",
                    "eventId": "e-1",
                    "eventTimestamp": 1767225600,
                    "payload": [],
                }
            }
        ),
    )
    meter = sm.Meter()
    with meter.session("bot") as s:
        core = capture.instrument(client(server, "bedrock-agentcore"), s, providers=PROVIDERS)
        sid = "dfmeoagmreaklgmrkleafremoigrmtesogmtrskhmtkrlshmt"
        out = core.invoke_agent_runtime(
            agentRuntimeArn=ARN, runtimeSessionId=sid, payload=b'{"prompt": "hi"}'
        )
        assert json.loads(out["response"].read()) == {"result": "ok"}
        core.invoke_agent_runtime(agentRuntimeArn=ARN, payload=b'{"prompt": "hi"}')
        core.create_event(
            memoryId="mem-abc123456",
            actorId="user-1",
            sessionId="s-1",
            eventTimestamp=1767225600,
            payload=[{"conversational": {"content": {"text": "hi"}, "role": "USER"}}],
        )
    first, second, third = calls(meter)
    assert (first["api"], first["request"]["runtimeSessionId"], first["tag"]) == (
        "invoke_agent_runtime",
        sid,
        "stateful",
    )
    assert first["attrs"]["gen_ai.agent.id"] == ARN
    # botocore fills runtimeSessionId itself (an idempotency token) when the caller gives none,
    # so on the wire every InvokeAgentRuntime names a runtime session.
    generated = second["request"]["runtimeSessionId"]
    assert len(generated) >= 33 and generated != sid
    assert (second["tag"], second["consumes_state"]) == ("stateful", True)
    assert (third["api"], third["request"], third["creates_state"]) == (
        "create_event",
        {"memoryId": "mem-abc123456", "actorId": "user-1", "sessionId": "s-1"},
        True,
    )


def test_stubbed_calls_are_seen_at_call_level(server: Loopback) -> None:
    meter = sm.Meter()
    rt = client(server)
    with meter.session("bot") as s:
        capture.instrument(rt, s)
        with Stubber(rt) as stub:
            stub.add_response("converse", CONVERSE)
            out = rt.converse(
                modelId="amazon.nova-pro-v1:0",
                messages=[{"role": "user", "content": [{"text": "hi"}]}],
            )
    assert out["usage"]["inputTokens"] == 30
    assert not server.received  # the stubber answered; nothing went over HTTP
    [e] = calls(meter)
    assert (e["model"], e["input_tokens"], e["status"]) == ("amazon.nova-pro-v1:0", 130, "ok")


def test_a_boto3_session_captures_the_clients_it_creates_later(server: Loopback) -> None:
    meter = sm.Meter()
    boto = boto3.Session(
        region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret"
    )
    with meter.session("bot") as s:
        capture.instrument(boto, s)
        rt = boto.client("bedrock-runtime", endpoint_url=server.base)
        rt.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
        capture.uninstrument(boto)
        boto.client("bedrock-runtime", endpoint_url=server.base).converse(
            modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
    assert len(calls(meter)) == 1


def test_errors_are_recorded_and_raised_unchanged(server: Loopback) -> None:
    server.route(
        "POST",
        f"/model/{MODEL_PATH}/converse",
        json_answer(
            {"message": "Too many tokens"},
            400,
            headers={"x-amzn-errortype": "ValidationException", "x-amzn-requestid": "req-e"},
        ),
    )
    meter = sm.Meter()
    with meter.session("bot") as s:
        rt = capture.instrument(client(server), s, providers=PROVIDERS)
        with pytest.raises(botocore.exceptions.ClientError, match="Too many tokens"):
            rt.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "x"}]}])
        dead = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            aws_access_key_id="a",
            aws_secret_access_key="b",
            config=Config(retries={"max_attempts": 1}, connect_timeout=1),
        )
        capture.instrument(dead, s)
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            dead.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "x"}]}])
    bad, unreachable = calls(meter)
    assert (
        bad["status"],
        bad["attrs"]["error.type"],
        bad["attrs"]["http.response.status_code"],
    ) == ("error", "ValidationException", 400)
    assert (unreachable["status"], unreachable["attrs"]["error.type"]) == (
        "error",
        "EndpointConnectionError",
    )


def test_other_operations_and_services_are_left_alone(server: Loopback) -> None:
    server.route("GET", "/async-invoke", json_answer({"asyncInvokeSummaries": []}))
    meter = sm.Meter()
    with meter.session("bot") as s:
        rt = capture.instrument(client(server), s, providers=PROVIDERS)
        rt.list_async_invokes()
        with pytest.raises(sm.ValidationError, match="client_or_session") as info:
            capture.instrument(boto3.client("s3", region_name="us-east-1"), s)
        assert info.value.field == "client_or_session"
    assert calls(meter) == []


def test_content_never_reaches_the_ledger(server: Loopback, tmp_path: Path) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    path = tmp_path / "audit.db"
    meter = sm.Meter(path)
    with meter.session("bot") as s:
        rt = capture.instrument(client(server), s, providers=PROVIDERS)
        rt.converse(
            modelId=MODEL,
            messages=[{"role": "user", "content": [{"text": marker}]}],
            system=[{"text": marker}],
        )
    meter.close()
    assert any(marker.encode() in r["body"] for r in server.received)
    for f in [path, *tmp_path.glob("audit.db-*")]:
        assert marker.encode() not in f.read_bytes()


def test_a_failure_inside_the_hook_leaves_the_call_untouched(server: Loopback) -> None:
    meter = sm.Meter()
    s = meter.session("bot")
    rt = capture.instrument(client(server), s, providers=PROVIDERS)
    meter.close()
    out = rt.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "x"}]}])
    assert out["usage"] == CONVERSE["usage"]
    assert meter.stats()["integration_errors"] == {"botocore": 1}
