"""OpenAI Agents SDK: a classified audit log from the SDK's own tracing, in one line.

    import agents
    from statemeter.integrations.openai_agents import MeterProcessor
    agents.add_trace_processor(MeterProcessor(meter))

What becomes what:

- a trace is a session: ``session_start`` / ``session_end``; the session id is the trace's
  ``group_id`` (``RunConfig(group_id=...)``, e.g. your conversation or thread id), else its
  ``trace_id``. The workflow name, agent names, handoffs and guardrails are kept as ``attrs``.
- ``response`` spans (Responses API) become ``model_call`` with ``api="responses"``, the usage,
  and the request keys the ``Response`` echoes (``previous_response_id``, ``conversation``,
  ``background``, ``prompt_cache_key``, code-interpreter ``container`` and file-search
  ``vector_store_ids``), so the built-in rules classify them; ``generation`` spans (Chat
  Completions and other models) become ``model_call`` with ``api="chat.completions"``.
- ``function`` spans become ``tool_call`` (``tool_kind="mcp"`` for MCP tools).
- ``turn`` and ``task`` spans repeat the usage of the model calls beneath them and are not
  counted again; a turn whose model opened no span of its own is recorded once from the turn's
  usage (``model="unknown"``), so no model invocation is lost.
- span errors become ``status="error"``.

`MeteredSession(inner, meter)` wraps any `agents.memory.Session` and records ``state_op``
reads, writes and deletes (the SDK emits no spans for session memory).

Nothing here raises into the agent: failures are counted in
``meter.stats()["integration_errors"]["openai_agents"]`` and logged once.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agents.tracing import TracingProcessor

from statemeter import venue_for_host
from statemeter._guard import note
from statemeter.integrations._openai_agents_session import MeteredSession
from statemeter.integrations._sessions import SessionCache

if TYPE_CHECKING:
    from agents.tracing import Span, Trace

    from statemeter import Meter

__all__ = ["MeterProcessor", "MeteredSession"]

SOURCE = "openai_agents"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MODEL_SPANS = ("response", "generation")
_EVENT_SPANS = ("response", "generation", "function")
# Venue -> the gen_ai.provider.name of an OpenAI-shaped API served there.
_PROVIDER_AT_VENUE = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
    "anthropic": "anthropic",
    "gcp": "gcp.vertex_ai",
}
# Response fields that are request parameters worth keeping (never content).
_RESPONSE_REQUEST_KEYS = (
    "previous_response_id",
    "background",
    "store",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "truncation",
)


def _ns(iso: str | None) -> int | None:
    """ISO-8601 (as the SDK writes ``started_at``) -> ns since the epoch, exact to the µs."""
    if not iso:
        return None
    dt = datetime.fromisoformat(iso)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _jsonable(value: Any) -> Any:
    """Trace metadata as JSON (anything else becomes its string)."""
    return json.loads(json.dumps(value, default=str))


def _default_base_url() -> str:
    """Where the SDK's default OpenAI client sends requests."""
    try:
        from agents.models._openai_shared import get_default_openai_client

        client = get_default_openai_client()
        if client is not None:
            return str(client.base_url)
    except Exception:  # noqa: BLE001 - a private helper that may move
        pass
    return os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"


class _Endpoint:
    """Provider, venue and venue evidence of a base URL (cached: spans repeat it)."""

    def __init__(self, venues: Mapping[str, str] | None) -> None:
        self._venues = dict(venues) if venues else None
        self._cache: dict[tuple[str, str], tuple[str, str, dict[str, str]]] = {}

    def of(self, base_url: str, signal: str) -> tuple[str, str, dict[str, str]]:
        key = (base_url, signal)
        hit = self._cache.get(key)
        if hit is None:
            host = urlsplit(base_url if "//" in base_url else f"//{base_url}").netloc
            host = host.rsplit("@", 1)[-1]
            venue, rule, explain = venue_for_host(host, self._venues)
            provider = _PROVIDER_AT_VENUE.get(venue, "openai")
            if venue == "gcp" and "generativelanguage" in host:
                provider = "gcp.gemini"
            evidence = {"venue": venue, "rule": rule, "explain": explain, "signal": signal}
            hit = self._cache[key] = (provider, venue, evidence)
        return hit


class _TraceState:
    __slots__ = ("session_id", "agents", "handoffs", "guardrails", "error", "start_id")

    def __init__(self, session_id: str, start_id: str) -> None:
        self.session_id = session_id
        self.start_id = start_id
        self.agents: list[str] = []
        self.handoffs: list[dict[str, Any]] = []
        self.guardrails: list[dict[str, Any]] = []
        self.error = False


class _SpanState:
    __slots__ = ("agent", "parent_event", "turn", "turn_no", "own_event", "model_spans", "pending")

    def __init__(
        self,
        agent: str | None,
        parent_event: str | None,
        turn: str | None,
        turn_no: int | None,
        own_event: str | None,
    ) -> None:
        self.agent = agent
        self.parent_event = parent_event  # the event this span's events nest under
        self.turn = turn  # the enclosing turn span
        self.turn_no = turn_no
        self.own_event = own_event  # this span's event id, if it becomes one
        # (turn spans) model spans seen beneath, and their events still waiting for usage
        self.model_spans = 0
        self.pending: list[dict[str, Any]] = []


class MeterProcessor(TracingProcessor):
    """Records OpenAI Agents SDK traces into `meter` (``agents.add_trace_processor(...)``).

    Arguments:
        meter: the `statemeter.Meter` to record into.
        base_url: where the agents' models send requests, to derive provider and venue for
            ``response`` spans (which do not say). Default: the SDK's default OpenAI client,
            else ``OPENAI_BASE_URL``, else ``https://api.openai.com/v1``. ``generation`` spans
            use their own ``model_config["base_url"]`` when present.
        venues: host pattern -> venue for gateways and proxies (see `statemeter.venue_for_host`).
        tenant: recorded on every event.
        tool_effects: tool name -> ``"read"`` / ``"write"`` (default ``"none"``).
        mcp_servers: the agents' MCP server objects; their ``session_id`` becomes the
            ``mcp_session_id`` of their tool calls.
    """

    def __init__(
        self,
        meter: Meter,
        *,
        base_url: str | None = None,
        venues: Mapping[str, str] | None = None,
        tenant: str | None = None,
        tool_effects: Mapping[str, str] | None = None,
        mcp_servers: Iterable[Any] = (),
    ) -> None:
        self._meter = meter
        self._base_url = base_url
        self._endpoint = _Endpoint(venues)
        self._tenant = tenant
        self._effects = dict(tool_effects or {})
        self._mcp_servers = list(mcp_servers)
        self._lock = threading.Lock()
        self._traces: dict[str, _TraceState] = {}
        self._spans: dict[str, _SpanState] = {}
        self._sessions = SessionCache(meter)

    # -- traces: sessions --------------------------------------------------------------------

    def on_trace_start(self, trace: Trace) -> None:
        try:
            group_id = getattr(trace, "group_id", None)
            session_id = group_id or trace.trace_id
            start_id = f"{trace.trace_id}:start"
            with self._lock:
                self._traces[trace.trace_id] = _TraceState(session_id, start_id)
            attrs: dict[str, Any] = {"workflow": trace.name, "trace_id": trace.trace_id}
            if group_id:
                attrs["group_id"] = group_id
            metadata = getattr(trace, "metadata", None)
            if metadata:
                attrs["metadata"] = _jsonable(metadata)
            self._meter.record(
                {
                    "kind": "session_start",
                    "id": start_id,
                    "session_id": session_id,
                    "tenant": self._tenant,
                    "attrs": attrs,
                }
            )
        except Exception as exc:  # noqa: BLE001 - never raise into the agent
            note(self._meter, SOURCE, exc)

    def on_trace_end(self, trace: Trace) -> None:
        try:
            with self._lock:
                state = self._traces.pop(trace.trace_id, None)
            if state is None:
                return
            attrs: dict[str, Any] = {
                "workflow": trace.name,
                "trace_id": trace.trace_id,
                "agents": state.agents,
            }
            if state.handoffs:
                attrs["handoffs"] = state.handoffs
            if state.guardrails:
                attrs["guardrails"] = state.guardrails
            self._meter.record(
                {
                    "kind": "session_end",
                    "id": f"{trace.trace_id}:end",
                    "session_id": state.session_id,
                    "tenant": self._tenant,
                    "parent_id": state.start_id,
                    "status": "error" if state.error else "ok",
                    "attrs": attrs,
                }
            )
        except Exception as exc:  # noqa: BLE001 - never raise into the agent
            note(self._meter, SOURCE, exc)

    # -- spans ---------------------------------------------------------------------------------

    def on_span_start(self, span: Span[Any]) -> None:
        try:
            data = span.span_data
            kind = data.type
            with self._lock:
                parent = self._spans.get(span.parent_id) if span.parent_id else None
                agent = parent.agent if parent else None
                parent_event = parent.own_event or parent.parent_event if parent else None
                turn = parent.turn if parent else None
                turn_no = parent.turn_no if parent else None
                if kind == "agent":
                    agent = data.name
                    trace = self._traces.get(span.trace_id)
                    if trace is not None and agent not in trace.agents:
                        trace.agents.append(agent)
                elif kind == "turn":
                    agent = getattr(data, "agent_name", None) or agent
                    turn, turn_no = span.span_id, getattr(data, "turn", None)
                own = span.span_id if kind in _EVENT_SPANS else None
                self._spans[span.span_id] = _SpanState(agent, parent_event, turn, turn_no, own)
        except Exception as exc:  # noqa: BLE001 - never raise into the agent
            note(self._meter, SOURCE, exc)

    def on_span_end(self, span: Span[Any]) -> None:
        try:
            data = span.span_data
            kind = data.type
            with self._lock:
                state = self._spans.pop(span.span_id, None)
                trace = self._traces.get(span.trace_id)
                if span.error and trace is not None and kind in ("agent", "task"):
                    trace.error = True
                turn = self._spans.get(state.turn) if state and state.turn else None
                if kind in _MODEL_SPANS and turn is not None:
                    turn.model_spans += 1
            if kind in _EVENT_SPANS:
                event = self._event(span, state, trace)
                if kind in _MODEL_SPANS and turn is not None and data.usage is None:
                    # The usage may only be on the turn span (a model that reports none on
                    # its own span): record when the turn ends, with the turn's usage.
                    with self._lock:
                        turn.pending.append(event)
                else:
                    self._sessions.emit(event)
            elif kind == "turn" and state is not None:
                self._end_turn(span, state, trace)
            elif kind in ("handoff", "guardrail") and trace is not None:
                with self._lock:
                    if kind == "handoff":
                        trace.handoffs.append({"from": data.from_agent, "to": data.to_agent})
                    else:
                        trace.guardrails.append(
                            {"name": data.name, "triggered": bool(data.triggered)}
                        )
        except Exception as exc:  # noqa: BLE001 - never raise into the agent
            note(self._meter, SOURCE, exc)

    def _end_turn(self, span: Span[Any], state: _SpanState, trace: _TraceState | None) -> None:
        """Each model invocation counts once: the turn's usage (which repeats its model calls')
        is used only for a model call that reported none, or when no model span was seen."""
        usage = span.span_data.usage or {}
        has_usage = bool(usage.get("input_tokens") or usage.get("output_tokens"))
        if state.pending:
            if len(state.pending) == 1 and state.model_spans == 1 and has_usage:
                event = state.pending[0]
                _apply_usage(event, usage)
                event["attrs"]["usage_source"] = "turn span (the model span carried no usage)"
            for event in state.pending:
                self._sessions.emit(event)
        elif state.model_spans == 0 and has_usage:
            event = self._event(span, state, trace)
            self._sessions.emit(event)

    def _event(
        self, span: Span[Any], state: _SpanState | None, trace: _TraceState | None
    ) -> dict[str, Any]:
        data = span.span_data
        kind = data.type
        start = _ns(span.started_at)
        end = _ns(span.ended_at)
        attrs: dict[str, Any] = {"trace_id": span.trace_id}
        event: dict[str, Any] = {
            "id": span.span_id,
            "session_id": trace.session_id if trace else (span.trace_id or None),
            "parent_id": state.parent_event if state else None,
            "agent": state.agent if state else None,
            "tenant": self._tenant,
            "ts": start,
            "duration_ns": end - start if start is not None and end is not None else None,
            "attrs": attrs,
        }
        if span.error:
            attrs["error"] = str(span.error.get("message", ""))[:200]
        if kind == "function":
            name = data.name or "unknown"
            event.update(
                kind="tool_call",
                tool=name,
                effect=self._effects.get(name, "none"),
                status="error" if span.error else "ok",
            )
            if data.mcp_data:
                server = data.mcp_data.get("server")
                event["tool_kind"] = "mcp"
                event["mcp_session_id"] = self._mcp_session(server)
                attrs["mcp_server"] = server
            return event
        usage = data.usage or {}
        if state is not None and state.turn_no is not None:
            attrs["turn"] = state.turn_no
        if kind == "turn":
            attrs["usage_source"] = "turn span (the model opened no response or generation span)"
            event["id"] = f"{span.span_id}:model"
            event["parent_id"] = state.parent_event if state else None
            provider, venue, evidence = self._endpoint.of(
                self._base_url or _default_base_url(),
                "base_url argument" if self._base_url else "default OpenAI client",
            )
            model, api, request = "unknown", "unknown", None
        elif kind == "response":
            provider, venue, evidence = self._endpoint.of(
                self._base_url or _default_base_url(),
                "base_url argument" if self._base_url else "default OpenAI client",
            )
            response = data.response
            api = "responses"
            model = str(response.model) if response is not None and response.model else "unknown"
            request = _response_request(response)
            if response is not None:
                attrs["response_id"] = response.id
                if not usage and response.usage is not None:
                    usage = response.usage.model_dump()
            else:
                rid = getattr(data, "_response_id", None)
                if rid:
                    attrs["response_id"] = rid
                attrs["request_unknown"] = (
                    "the span carries no Response (trace_include_"
                    "sensitive_data is off): request keys not seen"
                )
        else:  # generation
            config = data.model_config or {}
            base_url = config.get("base_url")
            provider, venue, evidence = self._endpoint.of(
                base_url or self._base_url or _default_base_url(),
                "model_config.base_url"
                if base_url
                else "base_url argument"
                if self._base_url
                else "default OpenAI client",
            )
            model, api = str(data.model or "unknown"), "chat.completions"
            request = {
                k: config[k]
                for k in ("store", "prompt_cache_retention")
                if config.get(k) is not None
            } or None
        attrs["venue_evidence"] = evidence
        event.update(
            kind="model_call",
            provider=provider,
            model=model,
            api=api,
            venue=venue,
            request=request,
            status="error" if span.error else "ok",
        )
        _apply_usage(event, usage)
        return event

    def _mcp_session(self, server_name: str | None) -> str | None:
        for server in self._mcp_servers:
            try:
                from agents.mcp.util import get_mcp_server_log_name

                if get_mcp_server_log_name(server.name) == server_name:
                    return getattr(server, "session_id", None) or None
            except Exception:  # noqa: BLE001
                continue
        return None

    def shutdown(self) -> None:
        self.force_flush()

    def force_flush(self) -> None:
        try:
            self._meter.flush()
        except Exception as exc:  # noqa: BLE001
            note(self._meter, SOURCE, exc)


def _apply_usage(event: dict[str, Any], usage: Mapping[str, Any]) -> None:
    """Token counts from an SDK usage mapping (span or turn shape)."""
    input_tokens = int(usage.get("input_tokens") or 0)
    details = usage.get("input_tokens_details") or {}
    cached = int(details.get("cached_tokens") or usage.get("cached_input_tokens") or 0)
    event["input_tokens"] = input_tokens
    event["output_tokens"] = int(usage.get("output_tokens") or 0)
    event["cached_tokens"] = min(cached, input_tokens)


_NOT_PYDANTIC: Any = object()


def _field(model: Any, key: str) -> Any:
    """``getattr(model, key, None)`` for the SDK's pydantic models without the exception a
    missing name costs them (``store`` is not a `Response` field, say): declared fields are in
    the instance's ``__dict__``, undeclared keys the API returned in ``__pydantic_extra__``.
    Other objects are read by attribute (properties included)."""
    fields = getattr(model, "__dict__", None)
    extra = getattr(model, "__pydantic_extra__", _NOT_PYDANTIC)
    if fields is None or extra is _NOT_PYDANTIC:
        return getattr(model, key, None)
    value = fields.get(key)
    if value is None and extra:
        value = extra.get(key)
    return value


def _response_request(response: Any) -> dict[str, Any] | None:
    """The non-content request parameters a `Response` echoes."""
    if response is None:
        return None
    request: dict[str, Any] = {}
    for key in _RESPONSE_REQUEST_KEYS:
        value = _field(response, key)
        if value is not None:
            request[key] = value if isinstance(value, str | bool | int) else str(value)
    conversation = _field(response, "conversation")
    if conversation is not None:
        request["conversation"] = _field(conversation, "id") or str(conversation)
    stores: list[str] = []
    for tool in _field(response, "tools") or ():
        container = _field(tool, "container")
        if isinstance(container, str):
            request["container"] = container
        stores.extend(_field(tool, "vector_store_ids") or ())
    if stores:
        request["vector_store_ids"] = stores
    return request
