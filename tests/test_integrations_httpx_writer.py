"""The httpx capture hands each call over at the end of its body and the meter's writer thread
describes it: the events are the ones a capture describing every request on the sending thread
records (that path stays for sessions it cannot hand over), and what fails on the writer is
counted, never raised."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import weakref
from pathlib import Path
from typing import Any

import httpx2
import pytest
import statemeter as sm
from loopback import Loopback, json_answer, sse_answer
from statemeter.integrations import httpx as capture

VOLATILE = {"id", "ts", "duration_ns", "seq", "session_id", "session_tag"}

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-5-2025-08-07",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}}],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 192},
    },
}
CHUNKS: list[tuple[str | None, Any]] = [
    (None, {"id": "chatcmpl-2", "model": "gpt-5", "choices": [{"delta": {"content": "Hel"}}]}),
    (None, {"id": "chatcmpl-2", "model": "gpt-5", "choices": [{"delta": {"content": "lo"}}]}),
    (
        None,
        {
            "id": "chatcmpl-2",
            "model": "gpt-5",
            "choices": [],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2},
        },
    ),
    (None, "[DONE]"),
]
MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "hi"}],
    "usage": {
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 50,
    },
}


class Described:
    """A session seen through a plain object: the capture cannot hand its calls to the writer
    and describes each request on the sending thread, as it does for runtime sessions."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def chat_or_stream(req: dict[str, Any]) -> Any:
    streamed = json.loads(req["body"] or b"{}").get("stream") is True
    return sse_answer(CHUNKS) if streamed else json_answer(CHAT)


@pytest.fixture(scope="module")
def server() -> Any:
    with Loopback() as lb:
        lb.route("POST", "/v1/chat/completions", chat_or_stream)
        lb.route("POST", "/v1/messages", json_answer(MESSAGE))
        lb.route("POST", "/v1/embeddings", (429, "application/json", b'{"error": {}}', {}))
        lb.route("POST", "/mcp", json_answer({"jsonrpc": "2.0", "id": 1, "result": {}}))
        lb.route("GET", "/healthz", json_answer({"ok": True}))
        yield lb


def traffic(lb: Loopback, client: httpx2.Client) -> None:
    """Chat (JSON and streamed), Anthropic messages, an HTTP error, a stream closed early, an
    MCP tool call and a request to no AI API."""
    chat = {"model": "gpt-5", "messages": [{"role": "user", "content": "2+2?"}], "store": True}
    assert client.post(lb.base + "/v1/chat/completions", json=chat).json()["id"] == "chatcmpl-1"
    url = lb.base + "/v1/chat/completions"
    with client.stream("POST", url, json={**chat, "stream": True}) as r:
        assert b"[DONE]" in b"".join(r.iter_bytes())
    with client.stream("POST", url, json={**chat, "stream": True}) as r:
        pass  # closed before reading: cancelled
    msg = {"model": "claude-sonnet-4-6", "max_tokens": 9, "messages": chat["messages"]}
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "k"}
    assert client.post(lb.base + "/v1/messages", json=msg, headers=headers).status_code == 200
    assert client.post(lb.base + "/v1/embeddings", json={"model": "e", "input": "x"}).status_code
    client.post(
        lb.base + "/mcp",
        headers={"Mcp-Session-Id": "sess-1"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search"}},
    )
    assert client.get(lb.base + "/healthz").json() == {"ok": True}


def recorded(lb: Loopback, target: Any, meter: sm.Meter) -> list[dict[str, Any]]:
    with httpx2.Client() as client:
        # The loopback host is nobody's endpoint: provider unknown, the API from the path.
        capture.instrument(client, target, venues={"127.0.0.1": "azure"})
        traffic(lb, client)
    meter.flush()
    events = meter.ledger.events().to_pylist()
    assert meter.stats()["integration_errors"] == {}
    return [
        {k: v for k, v in e.items() if k not in VOLATILE}
        for e in events
        if e["kind"] in ("model_call", "tool_call")
    ]


@pytest.mark.parametrize("in_session", [True, False], ids=["session", "meter"])
def test_the_writer_records_what_the_sending_thread_would(
    server: Loopback, in_session: bool
) -> None:
    def run(handed_over: bool) -> list[dict[str, Any]]:
        meter = sm.Meter()
        s = meter.session("bot", tenant="acme", venue="on_prem") if in_session else meter
        out = recorded(server, s if handed_over else Described(s), meter)
        meter.close()
        return out

    written = run(True)
    described = run(False)
    assert [(e["kind"], e.get("api"), e["status"]) for e in written] == [
        ("model_call", "chat.completions", "ok"),
        ("model_call", "chat.completions", "ok"),
        ("model_call", "chat.completions", "cancelled"),
        ("model_call", "messages", "ok"),
        ("model_call", "embeddings", "error"),
        ("tool_call", None, "ok"),
    ]
    assert [(e.get("input_tokens"), e["attrs"].get("gen_ai.response.id")) for e in written] == [
        (1200, "chatcmpl-1"),
        (7, "chatcmpl-2"),
        (0, None),
        (1150, "msg_01"),
        (0, None),
        (None, None),
    ]
    assert written[0]["attrs"]["gen_ai.usage.reasoning.output_tokens"] == 192
    assert written[3]["attrs"]["gen_ai.usage.cache_creation.input_tokens"] == 50
    assert {e.get("agent") for e in written} == ({"bot"} if in_session else {None})
    assert len(written) == len(described)
    for a, b in zip(written, described, strict=True):
        diff = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        assert a == b, diff


def test_the_event_is_recorded_when_the_stream_ends(server: Loopback) -> None:
    meter = sm.Meter()
    with meter.session("bot") as s, httpx2.Client() as client:
        capture.instrument(client, s, providers={"127.0.0.1": "openai"})
        chat = {"model": "gpt-5", "messages": [], "stream": True}
        with client.stream("POST", server.base + "/v1/chat/completions", json=chat) as r:
            chunks = r.iter_bytes()
            next(chunks)
            meter.flush()
            assert len(meter.ledger.events(kind="model_call")) == 0  # still streaming
            rest = b"".join(chunks)
        assert b"[DONE]" in rest
        meter.flush()
        [call] = meter.ledger.events(kind="model_call").to_pylist()
    assert (call["status"], call["input_tokens"], call["output_tokens"]) == ("ok", 7, 2)
    assert call["duration_ns"] > 0
    assert call["attrs"]["http.response.status_code"] == 200


def answer(request: Any) -> Any:
    return httpx2.Response(200, json=CHAT)


def test_a_failure_on_the_writer_is_counted_not_raised() -> None:
    """A request the writer cannot describe (a method no HTTP method is spelled like) is
    counted; the caller's response and the calls around it are untouched."""
    meter = sm.Meter()
    with meter.session("bot") as s:
        client = capture.instrument(httpx2.Client(transport=httpx2.MockTransport(answer)), s)
        url = "https://api.openai.com/v1/chat/completions"
        body = json.dumps({"model": "gpt-5", "messages": []})
        assert client.post(url, content=body).json()["id"] == "chatcmpl-1"
        assert client.request("M-POST", url, content=body).json()["id"] == "chatcmpl-1"
        assert client.post(url, content=body).json()["id"] == "chatcmpl-1"
        client.close()
    meter.flush()
    stats = meter.stats()
    assert stats["integration_errors"] == {"httpx": 1}
    assert len(meter.ledger.events(kind="model_call")) == 2
    # session_start, two calls, session_end: the failed one is not counted as accepted.
    assert (stats["accepted"], stats["written"], stats["pending"]) == (4, 4, 0)


def test_no_ai_api_is_not_recorded_nor_accepted() -> None:
    meter = sm.Meter()
    client = capture.instrument(httpx2.Client(transport=httpx2.MockTransport(answer)), meter)
    for _ in range(3):
        client.get("https://example.com/status")
    client.post("https://api.openai.com/v1/chat/completions", json={"model": "gpt-5"})
    client.close()
    meter.flush()
    stats = meter.stats()
    assert (stats["accepted"], stats["written"], stats["integration_errors"]) == (1, 1, {})
    [call] = meter.ledger.events().to_pylist()
    assert (call["provider"], call["session_id"], call["input_tokens"]) == ("openai", None, 1200)


def test_sync_durability_records_before_the_call_returns(tmp_path: Path) -> None:
    meter = sm.Meter(tmp_path / "l.db", durability="sync")
    with meter.session("bot") as s:
        client = capture.instrument(httpx2.Client(transport=httpx2.MockTransport(answer)), s)
        client.post("https://api.openai.com/v1/chat/completions", json={"model": "gpt-5"})
        client.request("M-POST", "https://api.openai.com/v1/chat/completions", json={})
        assert meter.stats()["written"] == 2  # session_start and the call, already committed
        assert meter.stats()["integration_errors"] == {"httpx": 1}
        client.close()
    meter.close()


def refuse(request: Any) -> Any:
    """Refuses `/v1/refused` before any response (a connection error), answers the rest."""
    if request.url.path == "/v1/refused":
        raise httpx2.ConnectError("refused", request=request)
    return answer(request)


def test_requests_that_never_get_a_response_are_not_kept() -> None:
    """A request that fails before any response (here: refused by the transport) reaches the
    caller as it failed and is not kept by the capture; answered requests are still recorded
    after many of them. A sync client's requests pass through the capture's transport, which
    keeps nothing between a request and its response."""
    meter = sm.Meter()
    client = capture.instrument(httpx2.Client(transport=httpx2.MockTransport(refuse)), meter)
    url = "https://api.openai.com/v1/"
    refs = []
    for _ in range(1000):
        request = client.build_request("POST", url + "refused", json={"model": "gpt-5"})
        refs.append(weakref.ref(request))
        with pytest.raises(httpx2.ConnectError):
            client.send(request)
        del request
    client.post(url + "chat/completions", json={"model": "gpt-5"})
    gc.collect()
    assert sum(r() is not None for r in refs) == 0
    client.close()
    meter.flush()
    [call] = meter.ledger.events().to_pylist()
    assert (call["api"], call["input_tokens"]) == ("chat.completions", 1200)


def test_an_async_client_prunes_requests_that_never_got_a_response() -> None:
    """An async client's hooks note each request until its response: those that failed
    before any response leave the pending map once they are gone."""

    async def refuse_async(request: Any) -> Any:
        return refuse(request)

    async def run(client: Any) -> None:
        url = "https://api.openai.com/v1/"
        for _ in range(1000):
            with pytest.raises(httpx2.ConnectError):
                await client.post(url + "refused", json={"model": "gpt-5"})
        await client.post(url + "chat/completions", json={"model": "gpt-5"})
        await client.aclose()

    meter = sm.Meter()
    client = capture.instrument(
        httpx2.AsyncClient(transport=httpx2.MockTransport(refuse_async)), meter
    )
    asyncio.run(run(client))
    pending = client.event_hooks["request"][0]._statemeter_capture.pending
    assert isinstance(pending, dict)
    assert len(pending) < 300  # pruned at 256, not 1000
    meter.flush()
    [call] = meter.ledger.events().to_pylist()
    assert (call["api"], call["input_tokens"]) == ("chat.completions", 1200)


class Tracked(httpx2.MockTransport):
    """A mock transport that counts how often it was entered and closed."""

    def __init__(self) -> None:
        super().__init__(answer)
        self.entered = 0
        self.closed = 0

    def __enter__(self) -> Tracked:
        self.entered += 1
        return self

    def close(self) -> None:
        self.closed += 1


def test_a_sync_client_sends_through_the_capture_and_gets_its_transports_back() -> None:
    """Instrumenting a sync client wraps its transport and those mounted for some URLs (once,
    however often it is instrumented): requests to either are recorded, entering and closing
    the client reach the wrapped transports, and uninstrumenting puts the very same transports
    back."""
    own, mounted = Tracked(), Tracked()
    client = httpx2.Client(transport=own, mounts={"https://gw.example.com": mounted})
    mounts = dict(client._mounts)
    meter = sm.Meter()
    capture.instrument(client, meter)
    capture.instrument(client, meter)
    assert client._transport.inner is own
    assert [t.inner for t in client._mounts.values()] == [mounted]
    with client:
        client.post("https://api.openai.com/v1/chat/completions", json={"model": "gpt-5"})
        client.post("https://gw.example.com/v1/chat/completions", json={"model": "gpt-5"})
    assert (own.entered, own.closed, mounted.entered, mounted.closed) == (1, 1, 1, 1)
    capture.uninstrument(client)
    assert client._transport is own and client._mounts == mounts
    assert client.event_hooks == {"request": [], "response": []}
    meter.flush()
    calls = meter.ledger.events().to_pylist()
    assert [(c["provider"], c["api"]) for c in calls] == [
        ("openai", "chat.completions"),
        ("unknown", "chat.completions"),
    ]


@pytest.fixture
def no_span_processor() -> Any:
    """No `MeterSpanProcessor` follows traces (one left alive by an earlier test would have
    every call described on the sending thread, through the Python observer)."""
    from statemeter.integrations import _join

    gc.collect()
    followed = set(_join._processors.data)  # type: ignore[attr-defined]
    _join._processors.data.clear()  # type: ignore[attr-defined]
    yield
    _join._processors.data.update(followed)  # type: ignore[attr-defined]


def test_the_capture_transport_wraps_bodies_in_an_observed_body_class_only(
    server: Loopback, no_span_processor: None
) -> None:
    """The transport makes each response's body wrapper itself, of the class it was given: a
    class that is no `_ObservedBody` is refused when the transport is made, and the wrapper a
    response gets is an instance of the given class and of the client's stream type."""
    from statemeter import _core

    meter = sm.Meter()
    client = capture.instrument(httpx2.Client(), meter, providers={"127.0.0.1": "openai"})
    transport = client._transport
    for cls in (httpx2.SyncByteStream, object):
        with pytest.raises(sm.ValidationError) as info:
            type(transport)(transport.inner, transport.capture, None, cls)
        assert info.value.field == "body_cls"
    with pytest.raises(TypeError):
        _core._ObservedBody()  # made only by the transport
    seen: list[Any] = []
    client.event_hooks["response"].append(lambda r: seen.append(r.stream._stream))
    chat = {"model": "gpt-5", "messages": []}
    assert client.post(server.base + "/v1/chat/completions", json=chat).json() == CHAT
    [body] = seen  # inside httpx2's own timing wrapper
    assert isinstance(body, _core._ObservedBody) and isinstance(body, httpx2.SyncByteStream)
    client.close()
    meter.flush()
    [call] = meter.ledger.events(kind="model_call").to_pylist()
    assert (call["provider"], call["input_tokens"]) == ("openai", 1200)


@pytest.mark.parametrize("read_by", ["transport", "client"])
def test_the_request_body_is_read_where_httpx_keeps_it_and_released(
    server: Loopback, read_by: str, no_span_processor: None
) -> None:
    """The writer reads the request's body in the `bytes` object httpx keeps (never changed
    once made) rather than a copy: what it describes is that body, and the reference the call
    held is released once the call is recorded. Both hand-overs: a body the Rust observer read
    from the network, and a response the transport had already read (observed in Python)."""
    meter = sm.Meter()
    transport = httpx2.MockTransport(answer) if read_by == "transport" else None
    client = capture.instrument(
        httpx2.Client(transport=transport), meter, providers={"127.0.0.1": "openai"}
    )
    base = "https://api.openai.com" if read_by == "transport" else server.base
    body = json.dumps({"model": "gpt-5", "messages": [], "store": True}).encode()
    before = sys.getrefcount(body)
    for _ in range(3):
        assert client.post(base + "/v1/chat/completions", content=body).status_code == 200
    meter.flush()
    meter.stats()  # entering the extension releases what the writer thread let go of
    assert sys.getrefcount(body) == before
    calls = meter.ledger.events(kind="model_call").to_pylist()
    assert [(c["model"], c["request"]) for c in calls] == [("gpt-5", {"store": True})] * 3
    client.close()
