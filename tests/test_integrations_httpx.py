"""statemeter.integrations.httpx end to end with the real `openai` and `anthropic` SDKs (built on
httpx2) and plain httpx/httpx2 clients, offline: a loopback server answers canned JSON and SSE."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
import statemeter as sm
from loopback import Loopback, json_answer, sse_answer
from statemeter.integrations import httpx as capture

VENUES = {"127.0.0.1": "azure"}
# The loopback host is nobody's endpoint: who serves it is the user's say, per client.
OPENAI = {"127.0.0.1": "openai"}
ANTHROPIC = {"127.0.0.1": "anthropic"}
VOLATILE = {"id", "ts", "duration_ns", "seq", "session_id", "session_tag", "endpoint"}

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-5-2025-08-07",
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "4"}}
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 192},
    },
}


def response_obj(rid: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": 1,
        "model": "gpt-5",
        "output": [],
        "status": "completed" if usage else "in_progress",
        "usage": usage,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


RESP_USAGE = {
    "input_tokens": 900,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 80,
    "output_tokens_details": {"reasoning_tokens": 64},
    "total_tokens": 980,
}

CHAT_CHUNKS = [
    (
        None,
        {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-5",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}],
            "usage": None,
        },
    ),
    (
        None,
        {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-5",
            "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}],
            "usage": None,
        },
    ),
    (
        None,
        {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-5",
            "choices": [],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        },
    ),
    (None, "[DONE]"),
]

MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "4"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 50,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": 20,
    },
    "container": {"id": "container_1", "expires_at": "2026-12-01T00:00:00Z"},
}

MESSAGE_EVENTS = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_02",
                "type": "message",
                "role": "assistant",
                "model": "claude-haiku-4-6",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 25, "cache_read_input_tokens": 0, "output_tokens": 1},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Hello"},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 15},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


_OPEN: list[Any] = []


def track(client: Any) -> Any:
    """Closes `client` at the end of the test (an unclosed socket is a ResourceWarning)."""
    _OPEN.append(client)
    return client


@pytest.fixture
def server() -> Any:
    with Loopback() as lb:
        lb.route("POST", "/v1/chat/completions", json_answer(CHAT))
        lb.route("POST", "/v1/responses", json_answer(response_obj("resp_1", RESP_USAGE)))
        lb.route("POST", "/v1/messages", json_answer(MESSAGE))
        yield lb
        while _OPEN:
            c = _OPEN.pop()
            if hasattr(c, "aclose") or asyncio.iscoroutinefunction(getattr(c, "close", None)):
                asyncio.run(c.aclose() if hasattr(c, "aclose") else c.close())
            else:
                c.close()


def model_calls(meter: sm.Meter) -> list[dict[str, Any]]:
    meter.flush()
    return [
        {k: v for k, v in e.items() if k not in VOLATILE}
        for e in meter.ledger.events(kind="model_call").to_pylist()
    ]


def openai_client(lb: Loopback, **kw: Any) -> openai.OpenAI:
    return track(openai.OpenAI(api_key="sk-test", base_url=lb.base + "/v1", max_retries=0, **kw))


def venue_evidence() -> dict[str, str]:
    return {
        "venue": "azure",
        "rule": "venue-user-mapping",
        "explain": "host 127.0.0.1 is mapped to azure by the user's venue mapping (127.0.0.1)",
    }


def test_openai_chat_records_the_exact_event(server: Loopback) -> None:
    meter = sm.Meter()
    with meter.session("bot", tenant="acme") as s:
        client = capture.instrument(openai_client(server), s, venues=VENUES, providers=OPENAI)
        out = client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "2+2?"}], store=True
        )
    assert out.choices[0].message.content == "4"  # the caller's result is untouched
    assert out.usage.prompt_tokens == 1200
    [event] = model_calls(meter)
    assert event == {
        "kind": "model_call",
        "agent": "bot",
        "tenant": "acme",
        "parent_id": None,
        "provider": "openai",
        "model": "gpt-5",
        "api": "chat.completions",
        "venue": "azure",
        "request": {"store": True},
        "status": "ok",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cached_tokens": 1024,
        "attrs": {
            "gen_ai.response.id": "chatcmpl-1",
            "gen_ai.response.model": "gpt-5-2025-08-07",
            "gen_ai.usage.reasoning.output_tokens": 192,
            "http.request.method": "POST",
            "http.response.status_code": 200,
            "provider_evidence": {
                "provider": "openai",
                "rule": "provider-user-mapping",
                "shape": "openai",
                "explain": "host 127.0.0.1 is mapped to provider openai by the user's provider "
                "mapping (127.0.0.1)",
            },
            "server.address": "127.0.0.1",
            "venue_evidence": venue_evidence(),
        },
        "tag": "stateless",
        "consumes_state": False,
        "creates_state": False,
        "state_holder": None,
        "state_kinds": [],
        "evidence": [
            {
                "rule": "openai-chat-completions",
                "tag": "stateless",
                "signal": "api",
                "explain": sm.Ruleset.default().rules[0]["explain"],
                "state": None,
            },
            {
                "rule": "openai-chat-completions-store",
                "tag": "stateless",
                "signal": "request.store",
                "explain": sm.Ruleset.default().rules[1]["explain"],
                "state": None,
            },
        ],
    }


def test_openai_responses_continuation_is_stateful(server: Loopback) -> None:
    meter = sm.Meter()
    with meter.session("bot") as s:
        client = capture.instrument(openai_client(server), s, providers=OPENAI)
        r = client.responses.create(
            model="gpt-5", input="hi", previous_response_id="resp_0", store=False
        )
    assert r.id == "resp_1"
    [e] = model_calls(meter)
    assert (e["api"], e["request"], e["tag"], e["consumes_state"]) == (
        "responses",
        {"previous_response_id": "resp_0", "store": False},
        "stateful",
        True,
    )
    assert [x["rule"] for x in e["evidence"]] == ["openai-responses-previous-response-id"]
    assert (e["input_tokens"], e["output_tokens"], e["cached_tokens"]) == (900, 80, 0)
    assert e["venue"] == "unknown"  # no mapping for the loopback host: never a guess
    assert e["attrs"]["venue_evidence"]["rule"] == "venue-unknown-host"


def test_an_unmapped_host_is_recorded_with_an_unknown_provider(server: Loopback) -> None:
    """An OpenAI-compatible API on a host nobody names is an AI call all the same: recorded, read
    as the OpenAI shape, but never attributed to OpenAI."""
    meter = sm.Meter()
    with meter.session("bot") as s:
        client = capture.instrument(openai_client(server), s)
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    [e] = model_calls(meter)
    assert (e["provider"], e["api"], e["model"], e["venue"]) == (
        "unknown",
        "chat.completions",
        "gpt-5",
        "unknown",
    )
    evidence = e["attrs"]["provider_evidence"]
    assert (evidence["provider"], evidence["rule"], evidence["shape"]) == (
        "unknown",
        "provider-unknown-host",
        "openai",
    )
    assert "OpenAI-compatible" in evidence["explain"]
    assert e["attrs"]["http.request.method"] == "POST"


def test_streamed_chat_is_observed_not_consumed(server: Loopback) -> None:
    server.route("POST", "/v1/chat/completions", sse_answer(CHAT_CHUNKS))
    meter = sm.Meter()
    with meter.session("bot") as s:
        client = capture.instrument(openai_client(server), s)
        stream = client.chat.completions.create(
            model="gpt-5",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        assert model_calls(meter) == []  # nothing is recorded before the caller has read it
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello"
    [e] = model_calls(meter)
    assert (e["input_tokens"], e["output_tokens"], e["status"]) == (7, 2, "ok")
    assert e["request"] == {"stream": True}
    assert e["attrs"]["gen_ai.response.id"] == "chatcmpl-2"


def test_a_stream_closed_early_is_cancelled(server: Loopback) -> None:
    server.route("POST", "/v1/chat/completions", sse_answer(CHAT_CHUNKS))
    meter = sm.Meter()
    with meter.session("bot") as s:
        client = capture.instrument(openai_client(server), s)
        stream = client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        next(iter(stream))
        stream.close()
    [e] = model_calls(meter)
    assert e["status"] == "cancelled"


def test_anthropic_messages_container_and_cache_usage(server: Loopback) -> None:
    meter = sm.Meter()
    with meter.session("bot") as s:
        client = capture.instrument(
            track(anthropic.Anthropic(api_key="sk-ant-test", base_url=server.base, max_retries=0)),
            s,
            venues={"127.0.0.1": "anthropic"},
            providers=ANTHROPIC,
        )
        msg = client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            container="container_1",
            system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": "2+2?"}],
        )
    assert msg.content[0].text == "4"
    [e] = model_calls(meter)
    assert (e["provider"], e["api"], e["venue"], e["tag"]) == (
        "anthropic",
        "messages",
        "anthropic",
        "stateful",
    )
    assert e["request"] == {"container": "container_1", "cache_control": True}
    assert [x["rule"] for x in e["evidence"]] == [
        "anthropic-messages",
        "anthropic-messages-container",
        "anthropic-cache-control",
    ]
    # OpenTelemetry input tokens include cache reads and writes.
    assert (e["input_tokens"], e["cached_tokens"], e["output_tokens"]) == (1150, 1000, 20)
    assert e["attrs"]["gen_ai.usage.cache_creation.input_tokens"] == 100


def test_anthropic_stream(server: Loopback) -> None:
    server.route("POST", "/v1/messages", sse_answer(MESSAGE_EVENTS))
    meter = sm.Meter()
    with meter.session("bot") as s:
        client = capture.instrument(
            track(anthropic.Anthropic(api_key="k", base_url=server.base, max_retries=0)), s
        )
        with client.messages.stream(
            model="claude-haiku-4-6", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            text = "".join(stream.text_stream)
    assert text == "Hello"
    [e] = model_calls(meter)
    assert (e["input_tokens"], e["output_tokens"], e["cached_tokens"]) == (25, 15, 0)
    assert e["attrs"]["gen_ai.response.id"] == "msg_02"
    assert e["request"] == {"stream": True}


def test_azure_openai_client(server: Loopback) -> None:
    path = "/openai/deployments/gpt-4o-prod/chat/completions"
    server.route("POST", path, json_answer(CHAT))
    meter = sm.Meter()
    with meter.session("bot") as s:
        client = capture.instrument(
            track(
                openai.AzureOpenAI(
                    api_key="k",
                    api_version="2024-10-21",
                    max_retries=0,
                    azure_endpoint=server.base,
                    azure_deployment="gpt-4o-prod",
                )
            ),
            s,
            providers={"127.0.0.1": "azure.ai.openai"},
        )
        client.chat.completions.create(
            model="gpt-4o-prod", messages=[{"role": "user", "content": "hi"}]
        )
    [e] = model_calls(meter)
    assert (e["provider"], e["api"], e["model"]) == (
        "azure.ai.openai",
        "chat.completions",
        "gpt-4o-prod",
    )
    assert e["request"] == {"api-version": "2024-10-21"}


def test_async_clients(server: Loopback) -> None:
    server.route("POST", "/v1/messages", sse_answer(MESSAGE_EVENTS))
    meter = sm.Meter()

    async def main(s: sm.Session) -> None:
        oa = capture.instrument(
            openai.AsyncOpenAI(api_key="k", base_url=server.base + "/v1", max_retries=0),
            s,
            providers=OPENAI,
        )
        r = await oa.responses.create(model="gpt-5", input="hi", conversation="conv_1")
        assert r.id == "resp_1"
        an = capture.instrument(
            anthropic.AsyncAnthropic(api_key="k", base_url=server.base), s, providers=ANTHROPIC
        )
        stream = await an.messages.create(
            model="claude-haiku-4-6",
            max_tokens=5,
            stream=True,
            messages=[{"role": "user", "content": "hi"}],
        )
        async for _ in stream:
            pass
        await oa.close()
        await an.close()

    with meter.session("bot") as s:
        asyncio.run(main(s))
    first, second = model_calls(meter)
    assert (first["api"], first["request"], first["tag"]) == (
        "responses",
        {"conversation": "conv_1"},
        "stateful",
    )
    assert (second["provider"], second["output_tokens"], second["status"]) == (
        "anthropic",
        15,
        "ok",
    )


def test_http_errors_and_retries_each_record_one_call(server: Loopback) -> None:
    server.route("POST", "/v1/responses", json_answer({"error": {"message": "boom"}}, 500))
    meter = sm.Meter()
    with meter.session("bot") as s:
        client = capture.instrument(
            track(openai.OpenAI(api_key="k", base_url=server.base + "/v1", max_retries=1)), s
        )
        with pytest.raises(openai.InternalServerError):
            client.with_options(timeout=5).responses.create(model="gpt-5", input="x")
    calls = model_calls(meter)
    assert [(c["status"], c["attrs"]["http.response.status_code"]) for c in calls] == [
        ("error", 500),
        ("error", 500),
    ]


def test_plain_clients_mcp_and_non_provider_traffic(server: Loopback) -> None:
    server.route("POST", "/mcp", json_answer({"jsonrpc": "2.0", "id": 1, "result": {}}))
    server.route("GET", "/healthz", json_answer({"ok": True}))
    meter = sm.Meter()
    with meter.session("bot") as s:
        for client in (httpx.Client(), httpx2.Client()):
            capture.instrument(client, s)
            assert client.get(server.base + "/healthz").json() == {"ok": True}
            client.post(
                server.base + "/mcp",
                headers={"Mcp-Session-Id": "sess-1"},
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "search", "arguments": {"q": "x"}},
                },
            )
            client.close()
    meter.flush()
    tools = meter.ledger.events(kind="tool_call").to_pylist()
    assert [(t["tool"], t["tool_kind"], t["mcp_session_id"], t["tag"]) for t in tools] == [
        ("search", "mcp", "sess-1", "stateful")
    ] * 2
    assert model_calls(meter) == []  # /healthz is not a provider API: not recorded


def test_instrument_twice_replaces_and_uninstrument_removes(server: Loopback) -> None:
    meter = sm.Meter()
    with meter.session("bot") as s:
        client = openai_client(server)
        capture.instrument(client, s)
        capture.instrument(client, s)
        client.responses.create(model="gpt-5", input="x")
        capture.uninstrument(client)
        client.responses.create(model="gpt-5", input="x")
    assert len(model_calls(meter)) == 1


def test_bad_arguments_are_validation_errors() -> None:
    meter = sm.Meter()
    with pytest.raises(sm.ValidationError, match="client") as info:
        capture.instrument(object(), meter)
    assert info.value.field == "client"
    with httpx2.Client() as client, pytest.raises(sm.ValidationError, match="session") as info:
        capture.instrument(client, object())
    assert info.value.field == "session"


def test_content_never_reaches_the_ledger_file(server: Loopback, tmp_path: Path) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    server.route(
        "POST",
        "/v1/responses",
        json_answer(
            {
                **response_obj("resp_m", RESP_USAGE),
                "output": [
                    {
                        "type": "message",
                        "id": "msg_1",
                        "role": "assistant",
                        "status": "completed",
                        "content": [
                            {"type": "output_text", "text": f"echo {marker}", "annotations": []}
                        ],
                    }
                ],
            }
        ),
    )
    path = tmp_path / "audit.db"
    meter = sm.Meter(path)
    with meter.session("bot") as s:
        client = capture.instrument(openai_client(server), s)
        client.responses.create(
            model="gpt-5", input=f"say {marker}", instructions=marker, store=False
        )
        client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": marker}]
        )
    meter.flush()
    assert len(model_calls(meter)) == 2
    assert any(marker.encode() in r["body"] for r in server.received)  # it was really sent
    # Read in another process: opening and closing the ledger's files here would release the
    # meter's SQLite locks on them (POSIX locks belong to the process).
    read = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"
    for f in [path, *tmp_path.glob("audit.db-*")]:
        data = subprocess.run(
            [sys.executable, "-c", read, str(f)], capture_output=True, check=True, timeout=120
        ).stdout
        assert marker.encode() not in data, f
    meter.close()
    assert marker.encode() not in path.read_bytes()


def test_a_failure_inside_the_hook_leaves_the_call_untouched(server: Loopback) -> None:
    meter = sm.Meter()
    s = meter.session("bot")
    client = capture.instrument(openai_client(server), s)
    meter.close()  # recording will now fail inside the hook
    out = client.chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "2+2?"}]
    )
    assert out.choices[0].message.content == "4"
    assert out.usage.total_tokens == 1500
    assert meter.stats()["integration_errors"] == {"httpx": 1}


RESP_EVENTS = [
    (
        "response.created",
        {
            "type": "response.created",
            "sequence_number": 0,
            "response": response_obj("resp_s", None),
        },
    ),
    (
        "response.output_text.delta",
        {
            "type": "response.output_text.delta",
            "sequence_number": 1,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hi",
            "logprobs": [],
        },
    ),
    (
        "response.completed",
        {
            "type": "response.completed",
            "sequence_number": 2,
            "response": response_obj("resp_s", RESP_USAGE),
        },
    ),
]


def json_or_sse(body: dict[str, Any], events: list[tuple[str | None, Any]]) -> Any:
    """A route answering `events` as a stream when the request asks for one, else `body`."""

    def route(req: dict[str, Any]) -> Any:
        streamed = json.loads(req["body"] or b"{}").get("stream") is True
        return sse_answer(events) if streamed else json_answer(body)

    return route


def sdk_calls(lb: Loopback, meter: sm.Meter, transport: Any) -> None:
    """The same SDK calls, sync and async, streamed and not, through `transport(mod, is_async)`
    (None: the SDK's own network transport to the loopback server)."""

    def http(is_async: bool) -> Any:
        if transport is None:
            return None
        cls = httpx2.AsyncClient if is_async else httpx2.Client
        return cls(transport=transport(httpx2, is_async))

    def sync_run(s: sm.Session) -> None:
        oa = capture.instrument(
            track(
                openai.OpenAI(
                    api_key="k", base_url=lb.base + "/v1", max_retries=0, http_client=http(False)
                )
            ),
            s,
            venues=VENUES,
            providers=OPENAI,
        )
        msgs: Any = [{"role": "user", "content": "2+2?"}]
        oa.chat.completions.create(model="gpt-5", messages=msgs, store=True)
        stream = oa.chat.completions.create(
            model="gpt-5", messages=msgs, stream=True, stream_options={"include_usage": True}
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello"
        oa.responses.create(model="gpt-5", input="hi", previous_response_id="resp_0")
        events = [e.type for e in oa.responses.create(model="gpt-5", input="hi", stream=True)]
        assert events[-1] == "response.completed"
        with pytest.raises(openai.NotFoundError):
            oa.embeddings.create(model="text-embedding-3-small", input="x")
        an = capture.instrument(
            track(
                anthropic.Anthropic(
                    api_key="k", base_url=lb.base, max_retries=0, http_client=http(False)
                )
            ),
            s,
            providers=ANTHROPIC,
        )
        an.messages.create(
            model="claude-sonnet-4-6", max_tokens=9, container="container_1", messages=msgs
        )
        with an.messages.stream(model="claude-haiku-4-6", max_tokens=9, messages=msgs) as st:
            assert "".join(st.text_stream) == "Hello"

    async def async_run(s: sm.Session) -> None:
        oa = capture.instrument(
            openai.AsyncOpenAI(
                api_key="k", base_url=lb.base + "/v1", max_retries=0, http_client=http(True)
            ),
            s,
        )
        await oa.responses.create(model="gpt-5", input="hi", conversation="conv_1")
        stream = await oa.chat.completions.create(
            model="gpt-5",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _ in stream:
            pass
        an = capture.instrument(
            anthropic.AsyncAnthropic(
                api_key="k", base_url=lb.base, max_retries=0, http_client=http(True)
            ),
            s,
        )
        msgs: Any = [{"role": "user", "content": "hi"}]
        await an.messages.create(model="claude-sonnet-4-6", max_tokens=9, messages=msgs)
        async with an.messages.stream(model="claude-haiku-4-6", max_tokens=9, messages=msgs) as st:
            async for _ in st.text_stream:
                pass
        await oa.close()
        await an.close()

    with meter.session("bot", tenant="acme") as s:
        sync_run(s)
        asyncio.run(async_run(s))


@pytest.mark.parametrize("streamed", [False, True], ids=["body-read", "body-streamed"])
def test_mock_transport_records_what_the_network_records(server: Loopback, streamed: bool) -> None:
    server.route("POST", "/v1/chat/completions", json_or_sse(CHAT, CHAT_CHUNKS))
    server.route(
        "POST",
        "/v1/responses",
        json_or_sse(response_obj("resp_1", RESP_USAGE), RESP_EVENTS),
    )
    server.route("POST", "/v1/messages", json_or_sse(MESSAGE, MESSAGE_EVENTS))
    exclude = {"id", "session_id", "ts", "duration_ns"}

    def run(transport: Any) -> list[dict[str, Any]]:
        meter = sm.Meter()
        sdk_calls(server, meter, transport)
        meter.flush()
        events = meter.ledger.events().to_pylist()
        meter.close()
        assert all(e["duration_ns"] > 0 for e in events if e["kind"] == "model_call")
        return [{k: v for k, v in e.items() if k not in exclude} for e in events]

    network = run(None)
    sent = len(server.received)
    mocked = run(lambda mod, is_async: server.transport(mod, is_async=is_async, streamed=streamed))
    assert len(server.received) == 2 * sent  # the mock answered every request itself
    calls = [e for e in network if e["kind"] == "model_call"]
    # Every call has its status, usage and response id: none of them came out empty.
    assert [
        (c["status"], c["input_tokens"], c["attrs"].get("gen_ai.response.id")) for c in calls
    ] == [
        ("ok", 1200, "chatcmpl-1"),
        ("ok", 7, "chatcmpl-2"),
        ("ok", 900, "resp_1"),
        ("ok", 900, "resp_s"),
        ("error", 0, None),
        ("ok", 1150, "msg_01"),
        ("ok", 25, "msg_02"),
        ("ok", 900, "resp_1"),
        ("ok", 7, "chatcmpl-2"),
        ("ok", 1150, "msg_01"),
        ("ok", 25, "msg_02"),
    ]
    assert len(mocked) == len(network)
    for a, b in zip(mocked, network, strict=True):
        assert a == b, {
            k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)
        }


@pytest.mark.parametrize("mod", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_a_body_the_transport_read_is_recorded(server: Loopback, mod: Any) -> None:
    """httpx decodes a read body (here gzip) before the hook sees it: read once, not twice."""
    body = gzip.compress(json.dumps(CHAT).encode())
    answer = (200, "application/json", body, {"content-encoding": "gzip"})
    server.route("POST", "/v1/chat/completions", answer)
    chat = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
    meter = sm.Meter()

    async def run_async(s: sm.Session) -> None:
        async with mod.AsyncClient(transport=server.transport(mod, is_async=True)) as client:
            capture.instrument(client, s)
            r = await client.post(server.base + "/v1/chat/completions", json=chat)
            assert r.json()["id"] == "chatcmpl-1"

    with meter.session("bot") as s:
        with mod.Client(transport=server.transport(mod)) as client:
            capture.instrument(client, s)
            r = client.post(server.base + "/v1/chat/completions", json=chat)
            assert r.json()["id"] == "chatcmpl-1"  # the caller's response is untouched
        asyncio.run(run_async(s))
    calls = model_calls(meter)
    assert [
        (c["status"], c["input_tokens"], c["output_tokens"], c["cached_tokens"]) for c in calls
    ] == [("ok", 1200, 300, 1024)] * 2
    assert calls[0]["attrs"]["gen_ai.response.id"] == "chatcmpl-1"
