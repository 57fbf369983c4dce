"""Capture Bedrock, Bedrock Agents and AgentCore calls made with boto3 / botocore.

    import boto3, statemeter as sm
    from statemeter.integrations import botocore as capture

    meter = sm.Meter("audit.db")
    with meter.session(agent="support-bot") as s:
        runtime = capture.instrument(boto3.client("bedrock-runtime"), s)
        runtime.converse(modelId="...", messages=[...])

`instrument(client_or_session, session, *, venues=None, providers=None)` takes a botocore client of
`bedrock-runtime`, `bedrock-agent-runtime` or `bedrock-agentcore`, or a `boto3.Session` /
`botocore.session.Session` (clients created from it afterwards are captured).

Design: call-level event hooks, not HTTP-level ones. `before-call` hands over the serialized
request (method, URL, headers, body) before it is signed — statemeter classifies exactly those
bytes with the same Rust classifier as HTTP capture (`classify_request`) — and `after-call` hands
over the parsed response, where usage is (`usage` of Converse, the
`X-Amzn-Bedrock-*-Token-Count` headers of InvokeModel, the `metadata` event of ConverseStream,
`amazon-bedrock-invocationMetrics` of InvokeModelWithResponseStream). InvokeAgent with
`enableTrace=True` reports the agent's inner steps in its stream's `trace` events: each model
invocation, action group, knowledge-base lookup, code-interpreter run and collaborator call is
recorded as an event of its own, a child (`parent_id`) of the InvokeAgent call in the same
session, with the tokens on the model invocations (the outer call carries none of them, and
`attrs["statemeter.inner_steps"]` counts its children); see `docs/integrations.md`. The trace
is read from the stream's raw bytes once the stream has ended: while the caller reads, the
capture only keeps a copy of each chunk of the response body and when it came; into a
`Session` of a batch meter the bytes and the outer call are then handed to the meter's writer
thread, which reads the trace and records the call and its steps.

Call-level hooks also see calls a `botocore.stub.Stubber` answers (it answers at
`before-call`; statemeter's handler is registered first on the same `before-call.*.*` node, so
it runs before the stubber's — instrument before activating a Stubber). An event-stream
response (ConverseStream, InvokeModelWithResponseStream, InvokeAgent's `completion`) is replaced
in the parsed dict by a transparent `EventStream` subclass that yields the very same events and
records the call when the caller has read the stream (or closed it, or dropped it). A failed call
(`after-call-error`, e.g. a connection error) is recorded with `status="error"`.

Captured operations — everything else on these clients is left alone:
"""

from __future__ import annotations

import inspect
from typing import Any

from statemeter import _core
from statemeter._guard import shielded
from statemeter.errors import invalid
from statemeter.integrations import _join
from statemeter.integrations._capture import Target, finish_event, now, status_for

__all__ = ["OPERATIONS", "instrument", "uninstrument"]

#: The operations recorded, per botocore service (model calls and the agent/session/memory
#: calls that read or leave provider-held state).
OPERATIONS: dict[str, frozenset[str]] = {
    "bedrock-runtime": frozenset(
        {"InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"}
    ),
    "bedrock-agent-runtime": frozenset(
        {
            "InvokeAgent",
            "InvokeInlineAgent",
            "CreateSession",
            "CreateInvocation",
            "PutInvocationStep",
            "GetInvocationStep",
            "EndSession",
            "GetAgentMemory",
            "RetrieveAndGenerate",
            "RetrieveAndGenerateStream",
        }
    ),
    "bedrock-agentcore": frozenset(
        {
            "InvokeAgentRuntime",
            "StopRuntimeSession",
            "CreateEvent",
            "RetrieveMemoryRecords",
            "ListEvents",
            "GetEvent",
            "ListMemoryRecords",
            "GetMemoryRecord",
        }
    ),
}
__doc__ = (
    (__doc__ or "")
    + "".join(f"\n- `{svc}`: {', '.join(sorted(ops))}" for svc, ops in OPERATIONS.items())
    + "\n"
)

#: Event-stream members of parsed responses.
_STREAMS = {
    "ConverseStream": "stream",
    "InvokeModelWithResponseStream": "body",
    "InvokeAgent": "completion",
    "InvokeInlineAgent": "completion",
    "RetrieveAndGenerateStream": "stream",
}
#: Operations whose stream's `trace` events report the agent's inner steps.
_AGENT_TRACES = frozenset({"InvokeAgent", "InvokeInlineAgent"})
_TOKEN_HEADERS = {
    "x-amzn-bedrock-input-token-count": "inputTokens",
    "x-amzn-bedrock-output-token-count": "outputTokens",
    "x-amzn-bedrock-cache-read-input-token-count": "cacheReadInputTokens",
    "x-amzn-bedrock-cache-write-input-token-count": "cacheWriteInputTokens",
}
_KEY = "statemeter.capture"


def _emitters(obj: Any) -> tuple[Any, list[str]]:
    """The event emitter to register on and the services to capture there."""
    meta = getattr(obj, "meta", None)
    if meta is not None and hasattr(meta, "events") and hasattr(meta, "service_model"):
        service = meta.service_model.service_id.hyphenize()
        if service not in OPERATIONS:
            raise invalid(
                "client_or_session",
                f"a {service} client; statemeter captures {', '.join(OPERATIONS)}",
            )
        return meta.events, [service]
    events = getattr(obj, "events", None)  # boto3.Session
    if events is None and hasattr(obj, "get_component"):  # botocore.session.Session
        events = obj.get_component("event_emitter")
    if events is None or not hasattr(events, "register_first"):
        raise invalid(
            "client_or_session",
            f"expected a botocore client or a boto3/botocore Session, not {type(obj).__name__}",
        )
    return events, list(OPERATIONS)


def instrument(
    client_or_session: Any,
    session: Any,
    *,
    venues: dict[str, str] | None = None,
    providers: dict[str, str] | None = None,
) -> Any:
    """Records the captured operations of `client_or_session` into `session` (a `Session`, or
    a `Meter`). `venues` maps hosts to venues and `providers` to the provider operating them,
    for a custom `endpoint_url` statemeter does not recognise (a proxy, a test server): there
    the service says how to read the request, but the provider is `unknown` unless `providers`
    names it (`{"bedrock.proxy.internal": "aws.bedrock"}`). Bedrock's own regional and VPC
    endpoint hosts need neither. Instrumenting again replaces the earlier capture. Returns
    `client_or_session`."""
    events, services = _emitters(client_or_session)
    capture = _Capture(
        Target(session, "botocore"),
        dict(venues) if venues else None,
        dict(providers) if providers else None,
    )
    _unregister(events, services)
    # before-call on the `*.*` node, first in its list: botocore calls handlers of deeper
    # nodes first, and a Stubber answers from `before-call.*.*`; the handler filters services.
    events.register_first("before-call.*.*", capture.before_call, unique_id=_BEFORE)
    for service in services:
        events.register(
            f"after-call.{service}",
            capture.after_call,
            unique_id=f"statemeter-after-call-{service}",
        )
        events.register(
            f"after-call-error.{service}",
            capture.after_call_error,
            unique_id=f"statemeter-after-call-error-{service}",
        )
    return client_or_session


def uninstrument(client_or_session: Any) -> Any:
    """Removes the capture `instrument` attached. Returns `client_or_session`."""
    events, services = _emitters(client_or_session)
    _unregister(events, services)
    return client_or_session


_BEFORE = "statemeter-before-call"


def _unregister(events: Any, services: list[str]) -> None:
    events.unregister("before-call.*.*", unique_id=_BEFORE)
    for service in services:
        for name in ("after-call", "after-call-error"):
            events.unregister(f"{name}.{service}", unique_id=f"statemeter-{name}-{service}")


class _Capture:
    def __init__(
        self,
        target: Target,
        venues: dict[str, str] | None,
        providers: dict[str, str] | None,
    ) -> None:
        self.target = target
        self.venues = venues
        self.providers = providers

    def before_call(
        self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        with shielded(self.target.meter, "botocore"):
            service = model.service_model.service_id.hyphenize()
            if model.name not in OPERATIONS.get(service, ()):
                return
            ts, t0 = now()
            body = params.get("body")
            event = _core._describe_request(
                params.get("method", "POST"),
                params["url"],
                list((params.get("headers") or {}).items()),
                body if isinstance(body, (bytes, str)) else None,
                self.venues,
                service,
                self.providers,
            )
            event["attrs"]["aws.operation"] = model.name
            context[_KEY] = (event, ts, t0, self.target.span())
        return None

    def after_call(
        self,
        http_response: Any,
        parsed: dict[str, Any],
        model: Any,
        context: dict[str, Any],
        **_: Any,
    ) -> None:
        item = context.pop(_KEY, None)
        if item is None:
            return
        with shielded(self.target.meter, "botocore"):
            event, ts, t0, span = item
            status_code = getattr(http_response, "status_code", None)
            meta = parsed.get("ResponseMetadata") or {}
            extra: dict[str, Any] = {}
            if meta.get("RequestId"):
                extra["aws.request_id"] = meta["RequestId"]
            if "Error" in parsed:
                extra["error.type"] = str(parsed["Error"].get("Code") or "error")
            usage = _usage(parsed.get("usage")) or _usage(_header_counts(meta))
            key = _STREAMS.get(model.name)
            stream = parsed.get(key) if key else None
            if key and stream is not None and "Error" not in parsed and _is_event_stream(stream):
                watch = _StreamWatch(self.target, event, ts, t0, status_code, extra, usage, span)
                if model.name in _AGENT_TRACES:
                    watch.steps = _core._AgentTrace(event.get("venue"))
                    watch.tap = _tap(stream)
                parsed[key] = _observed(stream, watch)
                return
            self.target.record(
                finish_event(
                    event,
                    ts=ts,
                    duration_ns=now()[1] - t0,
                    status=status_for(status_code, "error" if "Error" in parsed else "complete"),
                    http_status=status_code,
                    usage=usage,
                    extra_attrs=extra,
                ),
                span,
            )

    def after_call_error(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        item = context.pop(_KEY, None)
        if item is None:
            return
        with shielded(self.target.meter, "botocore"):
            event, ts, t0, span = item
            self.target.record(
                finish_event(
                    event,
                    ts=ts,
                    duration_ns=now()[1] - t0,
                    status="error",
                    http_status=None,
                    usage=None,
                    extra_attrs={"error.type": type(exception).__name__},
                ),
                span,
            )


def _header_counts(meta: dict[str, Any]) -> dict[str, int] | None:
    headers = meta.get("HTTPHeaders") or {}
    out = {}
    for header, key in _TOKEN_HEADERS.items():
        value = headers.get(header)
        if value is not None and str(value).isdigit():
            out[key] = int(value)
    return out or None


def _usage(counts: Any) -> dict[str, int] | None:
    """Bedrock's camelCase counts (Converse `usage`, stream `metadata.usage`, token headers) in
    statemeter's terms: input includes cache reads and writes (OpenTelemetry's convention)."""
    if not isinstance(counts, dict):
        return None
    ints = {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}
    if "inputTokens" not in ints and "outputTokens" not in ints:
        return None
    read = ints.get("cacheReadInputTokens", 0)
    write = ints.get("cacheWriteInputTokens", 0)
    out = {
        "input_tokens": ints.get("inputTokens", 0) + read + write,
        "output_tokens": ints.get("outputTokens", 0),
    }
    if "cacheReadInputTokens" in ints:
        out["cached_tokens"] = read
    if "cacheWriteInputTokens" in ints:
        out["cache_creation_tokens"] = write
    return out


def _is_event_stream(obj: Any) -> bool:
    try:
        from botocore.eventstream import EventStream
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, EventStream)


class _StreamWatch:
    """Collects usage from a response's events and records the call when the stream ends."""

    def __init__(
        self,
        target: Target,
        event: dict[str, Any],
        ts: int,
        t0: int,
        status_code: int | None,
        extra: dict[str, Any],
        usage: dict[str, int] | None,
        span: Any = None,
    ) -> None:
        self.target, self.event, self.ts, self.t0 = target, event, ts, t0
        self.span = span
        self.status_code, self.extra, self.usage = status_code, extra, usage
        self.chunks: list[bytes] = []  # model chunks that carry counts (InvokeModel stream)
        # InvokeAgent: the trace's inner steps, read in Rust (`src/capture/agent_trace.rs`)
        # from the stream's raw bytes (`tap`) when it ends, up to the last trace event the
        # caller got.
        self.steps: _core._AgentTrace | None = None
        self.tap: _RawTap | None = None
        self.done = False

    def observe(self, ev: Any) -> None:
        try:
            if not isinstance(ev, dict):
                return
            meta = ev.get("metadata")
            if isinstance(meta, dict) and meta.get("usage"):
                self.usage = _usage(meta["usage"])
            chunk = ev.get("chunk")
            if isinstance(chunk, dict):
                data = chunk.get("bytes")
                if isinstance(data, bytes) and (b"sage" in data or b"Metrics" in data):
                    self.chunks.append(data.replace(b"\n", b" "))
        except Exception as exc:  # noqa: BLE001 - observing must never break the caller
            self.target.failed(exc)

    def finish(self, outcome: str) -> None:
        if self.done:
            return
        self.done = True
        with shielded(self.target.meter, "botocore"):
            duration_ns = now()[1] - self.t0
            usage = self.usage
            if self.chunks:
                read = _core._read_usage(b"\n".join(self.chunks), "application/json")
                usage = {k: v for k, v in read.items() if k.endswith("_tokens")} or usage
            trace = self.steps
            tap, self.tap = self.tap, None
            if (
                trace is not None
                and tap is not None
                and self._hand_over(trace, tap, outcome, duration_ns, usage)
            ):
                return
            if trace is not None and tap is not None:
                try:
                    trace.read_stream(tap.body)
                except Exception as exc:  # noqa: BLE001 - the call is still recorded
                    self.target.failed(exc)
                tap.body.release()
            steps = trace.finish(outcome) if trace is not None else 0
            if steps:
                # The agent's model invocations carry the tokens; the outer call none of them
                # (else costs would count them twice).
                self.extra["statemeter.inner_steps"] = steps
            outer = self.target.record(
                self._outer(outcome, duration_ns, usage),
                self.span,
            )
            if trace is None:
                return
            if steps:
                self._record_steps(trace, outer)
            for _ in range(trace.errors):
                self.target.failed(ValueError("an InvokeAgent trace part could not be read"))
            if trace.unfinished:
                self.target.failed(
                    ValueError(
                        f"InvokeAgent trace ended with {trace.unfinished} step(s) unfinished"
                    )
                )

    def _outer(
        self, outcome: str, duration_ns: int, usage: dict[str, int] | None
    ) -> dict[str, Any]:
        """The outer call's event, finished: its time, status, usage and attrs."""
        return finish_event(
            self.event,
            ts=self.ts,
            duration_ns=duration_ns,
            status=status_for(self.status_code, outcome),
            http_status=self.status_code,
            usage=usage,
            extra_attrs=self.extra,
        )

    def _hand_over(
        self,
        trace: _core._AgentTrace,
        tap: _RawTap,
        outcome: str,
        duration_ns: int,
        usage: dict[str, int] | None,
    ) -> bool:
        """InvokeAgent into a `Session` of a batch meter: hands the outer call and the
        stream's bytes to the meter's writer thread, which reads the trace and records the
        call and its steps (`_AgentTrace.hand_over`); this thread only converts the call (the
        bytes were kept as they came). `False` (nothing done) where that cannot be: the call
        goes to a span processor, the target is no `Session`, the meter is synchronous; the
        trace is then read and recorded here."""
        if self.span is not None or self.event.get("kind") != "model_call":
            return False
        event = self._outer(outcome, duration_ns, usage)
        handed = trace.hand_over(
            self.target.session,
            event,
            tap.body,
            outcome,
            self.target.source,
        )
        if handed:
            if _join._processors:
                _join.recorded(self.target.meter, event)
        return handed

    def _record_steps(self, trace: _core._AgentTrace, outer: Any) -> None:
        """Records the finished steps as children of `outer`: into a `Session` in one call
        (no mapping per step), else through the target's mappings."""
        session = self.target.session
        if isinstance(session, _core.Session):
            for exc in trace.record(session, getattr(outer, "id", None)):
                self.target.failed(exc)
        else:
            self.target.record_children(outer, trace.steps())


class _RawTap:
    """The raw response body a botocore `EventStream` reads (a urllib3 response): its
    `stream()` yields the body's chunks unchanged through `body` (a `_core._StreamTap`, which
    keeps a copy of each and the wall-clock time it came, in Rust: no Python code of
    statemeter's runs per chunk); everything else is the body's own."""

    __slots__ = ("body", "raw")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.body = _core._StreamTap()

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return self.body.follow(self.raw.stream(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def _tap(stream: Any) -> _RawTap | None:
    """Puts a `_RawTap` between `stream` (a botocore `EventStream`) and the body it reads,
    unless it has begun reading it (then `None`: its events are read as they pass)."""
    try:
        raw = stream._raw_stream
        started = inspect.getgeneratorstate(stream._event_generator) != inspect.GEN_CREATED
    except Exception:  # noqa: BLE001 - another botocore: read the parsed events instead
        return None
    if started or not callable(getattr(raw, "stream", None)):
        return None
    tap = _RawTap(raw)
    stream._raw_stream = tap
    return tap


_OBSERVED: type | None = None


def _observed(stream: Any, watch: _StreamWatch) -> Any:
    """A `botocore.eventstream.EventStream` that yields `stream`'s events unchanged."""
    global _OBSERVED
    if _OBSERVED is None:
        from botocore.eventstream import EventStream

        class ObservedEventStream(EventStream):  # type: ignore[misc]
            """Yields the wrapped stream's events unchanged, observing them for usage."""

            def __init__(self, inner: Any, watch: _StreamWatch) -> None:
                # No super().__init__: every other attribute is the inner stream's.
                self._sm_inner = inner
                self._sm_watch = watch

            def __getattr__(self, name: str) -> Any:
                return getattr(self.__dict__["_sm_inner"], name)

            def __iter__(self) -> Any:
                watch = self._sm_watch
                tap = watch.tap
                if tap is not None and watch.steps is not None:
                    # InvokeAgent, its raw bytes tapped: the trace is read from them when the
                    # stream ends; while the caller reads, the tap (in Rust) counts the trace
                    # events the caller gets, hands any other event to `observe` and tells
                    # `watch` when the stream ends: no Python code of statemeter's per event.
                    return tap.body.events(self._sm_inner, watch)
                return self._sm_events()

            def _sm_events(self) -> Any:
                watch = self._sm_watch
                observe = watch.observe
                trace = watch.steps
                try:
                    if trace is None:
                        for ev in self._sm_inner:
                            observe(ev)
                            yield ev
                    else:
                        # InvokeAgent, its bytes not tapped: its trace events go straight to
                        # the Rust reader; any other event to `observe`. Neither may break the
                        # caller.
                        see = trace.observe
                        failed = watch.target.failed
                        for ev in self._sm_inner:
                            try:
                                if not see(ev):
                                    observe(ev)
                            except Exception as exc:  # noqa: BLE001 - e.g. read from two threads
                                failed(exc)
                            yield ev
                except GeneratorExit:
                    watch.finish("cancelled")
                    raise
                except BaseException:
                    watch.finish("error")
                    raise
                watch.finish("complete")

            def get_initial_response(self) -> Any:
                return self._sm_inner.get_initial_response()

            def close(self) -> None:
                try:
                    self._sm_inner.close()
                finally:
                    self._sm_watch.finish("cancelled")

            def __del__(self) -> None:
                # Dropped unread (an iteration dropped part way ends in `__iter__`, closed by
                # the garbage collector): the call and what was seen are still recorded.
                watch = self.__dict__.get("_sm_watch")
                if watch is not None and not watch.done:
                    watch.finish("cancelled")

        _OBSERVED = ObservedEventStream
    return _OBSERVED(stream, watch)
