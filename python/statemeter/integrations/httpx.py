"""Capture the model calls an SDK really sends, at the HTTP level.

    import openai, statemeter as sm
    from statemeter.integrations import httpx as capture

    meter = sm.Meter("audit.db")
    with meter.session(agent="support-bot") as s:
        client = capture.instrument(openai.OpenAI(), s)      # or anthropic.Anthropic(), an
        client.responses.create(model="gpt-5", input="hi")   # httpx/httpx2 Client, AsyncClient

`instrument(client, session, *, venues=None, providers=None)` attaches to an `httpx.Client` /
`AsyncClient`, their `httpx2` counterparts (what `openai` >= 3 and `anthropic` >= 2 are built
on), or an SDK client that keeps one of those in its private `_client` attribute
(`openai.OpenAI`, `AzureOpenAI`, `anthropic.Anthropic` and their async variants). A sync
client's requests pass through a transport wrapping its own (`_core._CaptureTransport`, in
place of the client's transport and of those mounted for some URLs; `uninstrument` puts them
back); an async client's go through its public `event_hooks`:

- when the request is sent its time is noted; the request is described (as `classify_request`
  does: provider, venue, api, model, the non-content parameters) when its call is recorded, by
  the meter's writer thread, so the sending thread does not pay for it. Requests that are no AI
  API at all (neither the host nor the path shape is one: provider and api `unknown`) are not
  recorded. An AI API on a host statemeter does not know (a gateway, a proxy) is recorded
  with provider `unknown` unless `providers` names the host's operator;
- when the response arrives its `stream` is wrapped so that the bytes are observed as the
  caller reads them — a non-streamed response is read by the SDK at once, a streamed one as the
  caller iterates — and the call is recorded when the stream ends or is closed: one
  `model_call` (or MCP `tool_call`) per HTTP request, retries included, with usage read from
  the JSON or server-sent events body, `duration_ns` from request to end of body, `status`
  (`error` for HTTP >= 400 or a failed read, `cancelled` when the caller closed a stream early)
  and the response id in attrs. The wrapping comes before any response hook of the client, so
  that a hook reading the body (raise_for_status) reads it through the capture.
  At the end of the body the sending thread hands the request and the body read over as they
  are; describing the request, reading usage and building the event happen on the meter's
  writer thread (a failure there is counted like any other). For a sync client the transport
  and the stream wrapper are Rust (`_core._CaptureTransport`, `_ObservedBody`): no Python code
  of statemeter's runs per request; async clients, and bodies read for usage in a content
  encoding (decoded with httpx's own decoders), are observed in Python. Responses that
  report a provider-managed runtime's inner steps, and calls while a `MeterSpanProcessor` follows
  traces, are described on the sending thread, since the capture needs the description then;
  A response whose body the transport already read (`httpx.MockTransport`, respx, pytest-httpx,
  vcrpy replays, caching transports) is never streamed to the caller: it is observed at once
  from the body httpx holds and recorded when it arrives, the same event a streamed
  network response with that body makes (`duration_ns` ends when the response arrived).

With a `MeterSpanProcessor` of the same meter, a model call sent while a span of a trace it
follows is current is handed to it and recorded as one event with the span that describes the
call (session and agent from the span, request, venue and usage from the wire; see
docs/integrations.md, "One call, one event").

Claude Managed Agents: the session events a response carries (`GET /v1/sessions/{id}/events`
and its `/stream`) are read in full for the runtime's inner steps — model requests, tool uses,
MCP tool uses, memory-store reads and writes — each recorded as a child of that request
(`parent_id`) in the same session (docs/integrations.md, "Inside provider-managed runtimes").

The request and the bytes the caller gets are never altered. Prompt and completion text never
reach the ledger: bodies are read in memory for parameters and usage only. Nothing inside
statemeter can raise into the caller: failures are counted in
``meter.stats()["integration_errors"]["httpx"]`` and logged once. Not seen: requests that fail
before any response arrives (connection errors, timeouts before the headers) and WebSocket
traffic (Realtime, Gemini Live).
"""

from __future__ import annotations

import importlib
import weakref
from collections import deque
from time import perf_counter_ns, time_ns
from types import ModuleType
from typing import Any, TypeVar

from statemeter import _core
from statemeter.errors import invalid
from statemeter.integrations import _join
from statemeter.integrations._capture import (
    JSON_LIMIT,
    STREAM_KEEP,
    Target,
    finish_event,
    status_for,
)
from statemeter.integrations._runtime_steps import RuntimeSteps

__all__ = ["instrument", "uninstrument"]

C = TypeVar("C")
_MARK = "_statemeter_capture"


def _modules() -> list[ModuleType]:
    """The installed HTTP client packages, `httpx2` first."""
    out = []
    for name in ("httpx2", "httpx"):
        try:
            out.append(importlib.import_module(name))
        except ImportError:
            continue
    return out


def _client_kind(obj: Any) -> tuple[ModuleType, bool] | None:
    """`(package, is_async)` when `obj` is a Client or AsyncClient of httpx or httpx2."""
    for mod in _modules():
        if isinstance(obj, mod.AsyncClient):
            return mod, True
        if isinstance(obj, mod.Client):
            return mod, False
    return None


def _resolve(client: Any) -> tuple[Any, ModuleType, bool]:
    kind = _client_kind(client)
    if kind is not None:
        return client, *kind
    inner = getattr(client, "_client", None)
    kind = _client_kind(inner) if inner is not None else None
    if kind is None:
        raise invalid(
            "client",
            "expected an httpx/httpx2 Client or AsyncClient, or an SDK client built on one "
            f"(openai.OpenAI, anthropic.Anthropic, ...), not {type(client).__name__}",
        )
    return inner, *kind


def instrument(
    client: C,
    session: Any,
    *,
    venues: dict[str, str] | None = None,
    providers: dict[str, str] | None = None,
) -> C:
    """Records every provider API request `client` sends into `session` (a `Session`, or a
    `Meter` for events outside any session). `venues` maps hosts to venues (`{"llm-proxy.internal":
    "on_prem", "*.gw.example.com": "oracle"}`), `providers` maps hosts to the provider operating
    them (`{"llm-proxy.internal": "openai"}`: without it, an OpenAI-compatible API on a host
    statemeter does not know is provider `unknown`); both are checked before the built-in
    endpoint tables. Instrumenting again replaces the earlier capture. Returns `client`."""
    http, mod, is_async = _resolve(client)
    capture = _Capture(
        Target(session, "httpx"),
        dict(venues) if venues else None,
        dict(providers) if providers else None,
        mod,
    )
    hooks = _without_ours(http.event_hooks)
    _unwrap_transports(http)
    if is_async:
        req, resp = capture.async_hooks()
        http.event_hooks = {
            "request": [*hooks["request"], req],
            # First, so that a later hook reading the body (raise_for_status) reads it through
            # us.
            "response": [resp, *hooks["response"]],
        }
    else:
        http.event_hooks = hooks
        _wrap_transports(http, capture)
    return client


def uninstrument(client: C) -> C:
    """Removes the capture `instrument` attached. Returns `client`."""
    http, _, _ = _resolve(client)
    http.event_hooks = _without_ours(http.event_hooks)
    _unwrap_transports(http)
    return client


def _wrap_transports(http: Any, capture: _Capture) -> None:
    """Puts a `_CaptureTransport` in front of each of the sync client's transports (its own
    and those mounted for some URLs): each request the client sends passes through it."""
    cls = _transport_class(capture.mod)
    body_cls = capture.streams[2]

    def wrap(transport: Any) -> Any:
        return cls(transport, capture, capture.calls, body_cls)

    http._transport = wrap(http._transport)
    http._mounts = {
        pattern: None if transport is None else wrap(transport)
        for pattern, transport in http._mounts.items()
    }


def _unwrap_transports(http: Any) -> None:
    """Puts the transports a capture wrapped back in place (async clients have none)."""
    transport = getattr(http, "_transport", None)
    if isinstance(transport, _core._CaptureTransport):
        http._transport = transport.inner
    mounts = getattr(http, "_mounts", None)
    if isinstance(mounts, dict):
        http._mounts = {
            pattern: t.inner if isinstance(t, _core._CaptureTransport) else t
            for pattern, t in mounts.items()
        }


def _without_ours(hooks: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        k: [h for h in hooks.get(k, []) if not getattr(h, _MARK, False)]
        for k in ("request", "response")
    }


def _mark(fn: Any, capture: _Capture) -> Any:
    setattr(fn, _MARK, capture)
    return fn


class _Capture:
    """One instrumented client: the pending requests and the hooks."""

    def __init__(
        self,
        target: Target,
        venues: dict[str, str] | None,
        providers: dict[str, str] | None,
        mod: ModuleType,
    ) -> None:
        self.target = target
        self.venues = venues
        self.providers = providers
        self.mod = mod
        # An async client's requests sent and not yet answered (a sync client's transport holds
        # each between the two itself), by `id()`: a weak reference to the request
        # (it tells a reused id apart), its event (`None` until described: on the writer
        # thread, or here when the call needs it), the times and the span. A plain dict with
        # weak references costs a fraction of a `WeakKeyDictionary` per request; the entries
        # of requests that never got a response are dropped in `keep`.
        self.pending: dict[int, tuple[Any, dict[str, Any] | None, int, int, Any]] = {}
        self.prune_at = _PRUNE_AT
        # Where calls described on the writer thread go (`None` for a duck-typed session
        # that is neither a statemeter Session nor a Meter: every call is described here).
        try:
            self.calls: Any = _core._CapturedCalls(target.session, "httpx", venues, providers)
        except (TypeError, ValueError):
            self.calls = None
        self.streams = _stream_classes(mod)
        self.runtimes = RuntimeSteps()  # readers of provider-managed runtimes' inner steps
        try:
            self.decoders = importlib.import_module(mod.__name__ + "._decoders").SUPPORTED_DECODERS
        except (ImportError, AttributeError):  # pragma: no cover - both packages have it
            self.decoders = {}

    # The hooks catch everything themselves (`_guard.shielded` semantics, without a
    # generator-based context manager per request: this is the per-request hot path).

    def on_request(self, request: Any) -> None:
        try:
            ts = time_ns()
            t0 = perf_counter_ns()
            # `data`: the weak set's own set, read without a call (a dead processor not yet
            # removed only sends the call the described way).
            if self.calls is not None and not _join._processors.data:  # type: ignore[attr-defined]
                path = request.url.raw_path
                if b"/sessions" not in path and b"/threads" not in path:
                    # Described with its response, on the writer thread.
                    self.keep(request, None, ts, t0, None)
                    return
            self.pending_described(request, ts, t0)
        except Exception as exc:  # noqa: BLE001 - capture never breaks the caller
            self.target.failed(exc)

    def keep(self, request: Any, event: dict[str, Any] | None, ts: int, t0: int, span: Any) -> None:
        """Notes a request until its response arrives. (Each dict operation is atomic: no
        lock.)"""
        pending = self.pending
        if len(pending) >= self.prune_at:
            self.prune()
        pending[id(request)] = (weakref.ref(request), event, ts, t0, span)

    def prune(self) -> None:
        """Past `prune_at` pending requests, drops those whose request is gone (it failed
        before any response: a connection error, a timeout)."""
        pending = self.pending
        if len(pending) < self.prune_at:
            return
        for key, item in list(pending.items()):
            if item[0]() is None:
                pending.pop(key, None)
        self.prune_at = max(_PRUNE_AT, 2 * len(pending))

    def pending_described(self, request: Any, ts: int, t0: int) -> None:
        """Describes the request now (`described`) and notes it until its response arrives."""
        item = self.described(request, ts, t0)
        if item is not None:
            self.keep(request, *item[1:])

    def described(
        self, request: Any, ts: int, t0: int
    ) -> tuple[Any, dict[str, Any], int, int, Any] | None:
        """The request described now, with its times and the current span (`None` when it
        is no AI API call): a provider-managed runtime's session and run requests (their
        readers are chosen from the description as the response arrives), calls a span
        processor may take, and every call of a target that is neither a statemeter Session
        nor a Meter. Never raises (the sync transport calls it)."""
        try:
            event = self.describe(request)
            return None if event is None else (request, event, ts, t0, self.target.span())
        except Exception as exc:  # noqa: BLE001 - capture never breaks the caller
            self.target.failed(exc)
            return None

    def describe(self, request: Any) -> dict[str, Any] | None:
        """The event dict of `request`, `None` when it is no AI API call."""
        try:
            body = request.content
        except Exception:  # noqa: BLE001 - a streamed (e.g. multipart file) body not read yet: not read
            body = None
        event = _core._describe_request(
            request.method,
            str(request.url),
            request.headers.raw,
            body,
            self.venues,
            None,
            self.providers,
        )
        if (
            event["kind"] == "model_call"
            and event["provider"] == "unknown"
            and event["api"] == "unknown"
        ):
            return None  # no AI API: neither the host nor the path shape is one
        return event

    def on_response(self, response: Any, is_async: bool) -> None:
        try:
            request = response.request
            item = self.pending.pop(id(request), None)
            if item is None or item[0]() is not request:
                return
            self.watch(response, request, item, is_async)
        except Exception as exc:  # noqa: BLE001 - capture never breaks the caller
            self.target.failed(exc)

    def watch(
        self,
        response: Any,
        request: Any,
        item: tuple[Any, dict[str, Any] | None, int, int, Any],
        is_async: bool = False,
    ) -> None:
        """Observes the body of `response` to `request` in Python (async clients, requests
        described when sent, responses already read, bodies in a content encoding): the sync
        transport in Rust observes the others itself."""
        watch = _Watch(self, item, response, request)
        if response.is_stream_consumed or response.is_closed:
            # Read before it reached the client: its stream will never be iterated.
            watch.read_already(response)
            return
        sync_cls, async_cls, _ = self.streams
        response.stream = (async_cls if is_async else sync_cls)(response.stream, watch)

    def failed(self, exc: BaseException) -> None:
        """Counts a failure (the Rust body observer reports its own here)."""
        self.target.failed(exc)

    def finish_described(
        self,
        request: Any,
        ts: int,
        duration_ns: int,
        http_status: int,
        outcome: str,
        content_type: str | None,
        body: bytes | None,
        unread: str | None,
    ) -> None:
        """Records an observed call on this thread (a span processor started following
        traces while its body was read: it records the call's response id)."""
        event = self.describe(request)
        if event is None:
            return
        usage = _core._read_usage(body, content_type) if body is not None else None
        self.target.record(
            finish_event(
                event,
                ts=ts,
                duration_ns=duration_ns,
                status=status_for(http_status, outcome),
                http_status=http_status,
                usage=usage,
                extra_attrs={"usage_unread": unread} if unread is not None else None,
            )
        )

    def async_hooks(self) -> tuple[Any, Any]:
        async def request_hook(request: Any) -> None:
            self.on_request(request)

        async def response_hook(response: Any) -> None:
            self.on_response(response, True)

        return _mark(request_hook, self), _mark(response_hook, self)


class _Watch:
    """Observes one response body as the caller reads it and records the call at its end."""

    __slots__ = (
        "capture",
        "request",
        "event",
        "ts",
        "t0",
        "span",
        "status",
        "ctype",
        "decoder",
        "head",
        "tail",
        "size",
        "tail_size",
        "stream",
        "overflow",
        "unread",
        "done",
        "steps",
    )

    def __init__(
        self,
        capture: _Capture,
        item: tuple[Any, dict[str, Any] | None, int, int, Any],
        response: Any,
        request: Any,
    ):
        self.capture = capture
        self.request = request
        _, self.event, self.ts, self.t0, self.span = item
        self.status: int = response.status_code
        ctype, encoding = _content_headers(response.headers.raw)
        self.stream = "event-stream" in ctype
        # Usage is read only from JSON and event-stream bodies.
        self.ctype: str | None = ctype if (self.stream or "json" in ctype) else None
        self.decoder = None
        if self.ctype and encoding and encoding != "identity":
            cls = capture.decoders.get(encoding)
            self.decoder = cls() if cls is not None else None
            if cls is None:
                self.ctype = None  # an encoding we cannot decode: usage not read
        self.head: list[bytes] = []
        self.tail: deque[bytes] | None = None  # past the head's limit: the last chunks
        self.size = 0
        self.tail_size = 0
        self.overflow = False
        self.unread: str | None = None
        self.done = False
        # A runtime's session events: its inner steps, read from the whole body.
        self.steps = (
            capture.runtimes.reader(self.event, self.stream)
            if self.ctype and self.event is not None
            else None
        )

    def feed(self, chunk: bytes) -> None:
        if self.ctype is None or self.done:
            return
        try:
            if self.decoder is not None:
                out = self.decoder.decode(chunk)
                chunk = bytes(out) if isinstance(out, (bytes, bytearray)) else b"".join(out)
            if not chunk:
                return
            if self.steps is not None and self.stream:
                self.steps.feed(chunk)
            if self.size < (STREAM_KEEP if self.stream else JSON_LIMIT):
                self.head.append(chunk)
                self.size += len(chunk)
            elif self.stream:
                if self.tail is None:
                    self.tail = deque()
                self.tail.append(chunk)
                self.tail_size += len(chunk)
                while self.tail_size - len(self.tail[0]) >= STREAM_KEEP:
                    self.tail_size -= len(self.tail.popleft())
                self.overflow = True
            else:
                self.ctype = None
                self.overflow = True
                self.head.clear()
        except Exception as exc:  # noqa: BLE001 - observing must never break the caller
            self.ctype = None
            self.capture.target.failed(exc)

    def read_already(self, response: Any) -> None:
        """Records a response whose body the transport read before the client got it. httpx
        keeps that body decoded (content-encoding undone), so it is fed without our decoder, in
        the chunk size a network stream arrives in, so that the size limits cut it alike."""
        try:
            body = response.content
        except Exception:  # noqa: BLE001 - consumed without being kept: nothing to read
            body = None
        if body is None:
            if self.ctype is not None:
                self.unread = "response body consumed before it reached the client"
            self.ctype = None
        else:
            self.decoder = None
            if len(body) <= _CHUNK:
                self.feed(body)
            else:
                view = memoryview(body)
                for i in range(0, len(body), _CHUNK):
                    if self.ctype is None:
                        break
                    self.feed(bytes(view[i : i + _CHUNK]))
        self.finish("complete")

    def ended(self) -> bool:
        """Whether the event stream reached its provider's end marker (SDKs stop reading and
        close the response at `[DONE]` / `message_stop` / `response.completed`, before the
        transport's own end): one among the last `_END_WINDOW` bytes read."""
        last = b""
        for chunk in [*reversed(self.tail or ()), *reversed(self.head)]:
            last = chunk[len(chunk) - min(len(chunk), _END_WINDOW - len(last)) :] + last
            if len(last) >= _END_WINDOW:
                break
        return any(m in last for m in _END_MARKERS)

    def finish(self, outcome: str) -> None:
        if self.done:
            return
        # Closed, or failed (a drain that iterates a one-shot stream again), after the
        # provider's end marker: the call itself completed.
        if outcome != "complete" and self.stream and self.ended():
            outcome = "complete"
        self.done = True
        target = self.capture.target
        try:
            end = perf_counter_ns()
            if self.event is None:
                if not _join._processors.data:  # type: ignore[attr-defined]
                    self._hand_over(outcome, end)
                    return
                # A span processor started following traces meanwhile: it may take the call.
                event = self.capture.describe(self.request)
                if event is None:
                    return
                self.event = event
            usage = None
            extra: dict[str, Any] = {}
            if self.ctype is not None and self.head:
                body = b"".join(self.head)
                if self.tail:
                    body += b"\n\n" + b"".join(self.tail)
                usage = _core._read_usage(body, self.ctype)
            elif self.overflow:
                extra["usage_unread"] = f"response body over {JSON_LIMIT} bytes"
            elif self.unread is not None:
                extra["usage_unread"] = self.unread
            event = finish_event(
                self.event,
                ts=self.ts,
                duration_ns=end - self.t0,
                status=status_for(self.status, outcome),
                http_status=self.status,
                usage=usage,
                extra_attrs=extra,
            )
            found = self._steps(outcome)
            if found:
                event["attrs"]["statemeter.inner_steps"] = len(found)
            outer = target.record(event, self.span)
            if found:
                target.record_children(outer, found)
            if self.ctype is not None and self.head and not self.stream:
                self.capture.runtimes.learn(self.event, b"".join(self.head))
        except Exception as exc:  # noqa: BLE001 - capture never breaks the caller
            target.failed(exc)

    def _hand_over(self, outcome: str, end: int) -> None:
        """Hands the call over as observed: the writer thread describes the request, reads
        the usage and records the event (or nothing, for a request that is no AI API)."""
        request = self.request
        try:
            body = request.content
        except Exception:  # noqa: BLE001 - a streamed body not read: not read
            body = None
        response_body = None
        unread = None
        if self.ctype is not None and self.head:
            response_body = b"".join(self.head) if len(self.head) > 1 else self.head[0]
            if self.tail:
                response_body += b"\n\n" + b"".join(self.tail)
        elif self.overflow:
            unread = f"response body over {JSON_LIMIT} bytes"
        elif self.unread is not None:
            unread = self.unread
        self.capture.calls.record(
            request.method,
            str(request.url),
            request.headers.raw,
            body,
            self.ts,
            end - self.t0,
            self.status,
            outcome,
            self.ctype if response_body is not None else None,
            response_body,
            unread,
        )

    def _steps(self, outcome: str) -> list[dict[str, Any]]:
        """The inner steps a runtime's session events reported (none for other responses);
        malformed or truncated events are counted as capture errors."""
        steps = self.steps
        if steps is None:
            return []
        if not self.stream and self.head:
            steps.read_page(b"".join(self.head))
        found = steps.finish(outcome)
        if steps.errors:
            self.capture.target.failed(
                ValueError(f"runtime session events: {steps.errors} malformed or cut off")
            )
        return found


def _content_headers(raw: list[tuple[bytes, bytes]]) -> tuple[str, str]:
    """The response's content type and content encoding, lowercased (`""` when absent;
    repeated headers joined by ", ", as `Headers.get` does), in one pass over the raw headers
    (each `Headers.get` decodes and searches them again, and raises inside for a missing
    one)."""
    ctype: list[str] = []
    encoding: list[str] = []
    for name, value in raw:
        name = name.lower()
        if name == b"content-type":
            ctype.append(value.decode("latin-1"))
        elif name == b"content-encoding":
            encoding.append(value.decode("latin-1"))
    return ", ".join(ctype).lower(), ", ".join(encoding).strip().lower()


def _stream_classes(mod: ModuleType) -> tuple[type, type, type]:
    """Byte-stream wrappers subclassing `mod`'s own stream types (httpx checks them): the
    `_Watch` wrappers, sync and async, and the Rust observer of a sync stream."""
    cached = _STREAMS.get(mod.__name__)
    if cached is not None:
        return cached

    class ObservedBody(_core._ObservedBody, mod.SyncByteStream):  # type: ignore[name-defined,misc]
        __slots__ = ()

    class ObservedStream(mod.SyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any, watch: _Watch) -> None:
            self._inner = inner
            self._watch = watch

        def __iter__(self) -> Any:
            watch = self._watch
            try:
                for chunk in self._inner:
                    watch.feed(chunk)
                    yield chunk
            except GeneratorExit:
                watch.finish("cancelled")
                raise
            except BaseException:
                watch.finish("error")
                raise
            watch.finish("complete")

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._watch.finish("cancelled")

    class ObservedAsyncStream(mod.AsyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any, watch: _Watch) -> None:
            self._inner = inner
            self._watch = watch

        async def __aiter__(self) -> Any:
            watch = self._watch
            try:
                async for chunk in self._inner:
                    watch.feed(chunk)
                    yield chunk
            except GeneratorExit:
                watch.finish("cancelled")
                raise
            except BaseException:
                watch.finish("error")
                raise
            watch.finish("complete")

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._watch.finish("cancelled")

    _STREAMS[mod.__name__] = (ObservedStream, ObservedAsyncStream, ObservedBody)
    return ObservedStream, ObservedAsyncStream, ObservedBody


def _transport_class(mod: ModuleType) -> type:
    """The `_CaptureTransport` subclassing `mod`'s own `BaseTransport`, which enters, exits
    and closes the transport it wraps with the client."""
    cached = _TRANSPORTS.get(mod.__name__)
    if cached is not None:
        return cached

    class CaptureTransport(_core._CaptureTransport, mod.BaseTransport):  # type: ignore[name-defined,misc]
        __slots__ = ()

        def __enter__(self) -> Any:
            self.inner.__enter__()
            return self

        def __exit__(self, *exc: Any) -> None:
            self.inner.__exit__(*exc)

        def close(self) -> None:
            self.inner.close()

    _TRANSPORTS[mod.__name__] = CaptureTransport
    return CaptureTransport


_STREAMS: dict[str, tuple[type, type, type]] = {}
_TRANSPORTS: dict[str, type] = {}
_PRUNE_AT = 256
"""Pending requests past which those that will never get a response are looked for."""
_CHUNK = 64 * 1024
"""The chunk size an already-read body is observed in (what httpx reads from a socket)."""
_END_WINDOW = 1024
"""How far back from the last byte read an event stream's end marker is looked for."""
_END_MARKERS = (
    b"[DONE]",
    b"message_stop",
    b"response.completed",
    b"response.incomplete",
    b"response.failed",
    b"finishReason",
    b"session.status_idle",
    b"agent.session.idle",
)
