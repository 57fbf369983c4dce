"""LangChain / LangGraph: a classified audit log from callbacks and wrapped memory.

    from statemeter.integrations.langchain import MeterCallbackHandler, MeteredCheckpointer
    graph = builder.compile(checkpointer=MeteredCheckpointer(InMemorySaver(), meter))
    graph.invoke(inputs, {"configurable": {"thread_id": "t1"},
                          "callbacks": [MeterCallbackHandler(meter)]})

`MeterCallbackHandler` records chat-model and LLM runs as ``model_call`` (provider from
``ls_provider``, model from ``ls_model_name``, tokens from ``usage_metadata``), tool runs as
``tool_call`` and retriever runs as ``state_op`` reads, with errors as ``status="error"``. Each
event's id is its LangChain ``run_id`` and its ``parent_id`` the nearest enclosing recorded run,
so nesting survives (``attrs`` keep ``run_id``/``parent_run_id``). The session is the LangGraph
``thread_id`` (given to the handler, or found in the run metadata LangGraph passes), else one
per top-level run; a top-level run is bracketed by ``session_start``/``session_end``.

`MeteredCheckpointer` and `MeteredStore` (see `_langgraph_memory`) record every read, write and
delete of LangGraph's short- and long-term memory as ``state_op`` in the thread's session.

Nothing here raises into the application: failures are counted in
``meter.stats()["integration_errors"]`` (``"langchain"``, ``"langgraph"``) and logged once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from statemeter import venue_for_host
from statemeter._guard import note
from statemeter.integrations._langgraph_memory import MeteredCheckpointer, MeteredStore
from statemeter.integrations._sessions import SessionCache

if TYPE_CHECKING:
    from langchain_core.outputs import LLMResult

    from statemeter import Meter, Session
    from statemeter._core import Status

__all__ = ["MeterCallbackHandler", "MeteredCheckpointer", "MeteredStore"]

SOURCE = "langchain"

# LangChain `ls_provider` -> OpenTelemetry `gen_ai.provider.name`.
PROVIDERS = {
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "google_genai": "gcp.gen_ai",
    "google_vertexai": "gcp.vertex_ai",
    "google_anthropic_vertex": "gcp.vertex_ai",
    "mistralai": "mistral_ai",
    "xai": "x_ai",
    "ibm": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
}
# The provider's usual API for a chat model (the response id refines it when it can).
CHAT_API = {
    "openai": "chat.completions",
    "azure.ai.openai": "chat.completions",
    "anthropic": "messages",
    "aws.bedrock": "converse",
    "gcp.gen_ai": "generate_content",
    "gcp.vertex_ai": "generate_content",
    "gcp.gemini": "generate_content",
}
# Invocation parameters kept as the request (non-content; the ones the rules read and a few
# that explain them).
REQUEST_KEYS = (
    "previous_response_id",
    "conversation",
    "store",
    "background",
    "container",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "truncation",
    "context_management",
    "cachedContent",
    "cached_content",
)
BASE_URL_KEYS = (
    "base_url",
    "openai_api_base",
    "azure_endpoint",
    "endpoint_url",
    "endpoint",
    "api_base",
)
_REQUEST_SET = frozenset(REQUEST_KEYS)
_BASE_URL_SET = frozenset(BASE_URL_KEYS)
_ABSENT = object()


class _Run:
    """A recorded run in flight: what its event needs at the end, strings made once."""

    __slots__ = (
        "rid",
        "kind",
        "session",
        "parent_event",
        "event",
        "start",
        "agent",
        "graph",
        "data",
    )

    def __init__(
        self,
        rid: str,
        kind: str,
        session: str,
        parent_event: str | None,
        event: str | None,
        agent: str | None,
    ) -> None:
        self.rid = rid  # the run id's text (`_text`), made once per run
        self.kind = kind
        self.session = session
        self.parent_event = parent_event
        self.event = event
        self.start = time.time_ns()
        self.agent = agent
        self.graph: dict[str, Any] | None = None  # langgraph_node / langgraph_step
        self.data: dict[str, Any] = {}


class MeterCallbackHandler(BaseCallbackHandler):
    """Records LangChain runs into `meter`. Pass it in ``config["callbacks"]``.

    Arguments:
        meter: the `statemeter.Meter`.
        thread_id: the session id (LangGraph's ``thread_id``); by default the ``thread_id``
            LangGraph puts in the run metadata, else the top-level run's id.
        agent: recorded as every event's ``agent`` (default: the top-level run's name, e.g.
            the compiled graph's ``name``).
        tenant: recorded on every event.
        venue: the venue of model calls whose endpoint is not visible to callbacks.
        venues: host pattern -> venue, for endpoints that are visible (``base_url``,
            ``azure_endpoint`` in the model's parameters).
        tool_effects: tool name -> ``"read"``/``"write"`` (default ``"none"``).
    """

    raise_error = False
    run_inline = True  # cheap and thread-safe: no executor hop for async runs
    # LangChain reads an ignore_* flag before every callback it hands a handler (properties
    # on the base class: a function call each); plain class attributes answer without one.
    # Retries and custom events carry nothing recorded: LangChain skips them for this
    # handler. (ignore_agent also guards the tool callbacks, which are recorded.)
    ignore_llm = False
    ignore_chat_model = False
    ignore_chain = False
    ignore_agent = False
    ignore_retriever = False
    ignore_retry = True
    ignore_custom_event = True

    def __init__(
        self,
        meter: Meter,
        *,
        thread_id: str | None = None,
        agent: str | None = None,
        tenant: str | None = None,
        venue: str | None = None,
        venues: Mapping[str, str] | None = None,
        tool_effects: Mapping[str, str] | None = None,
    ) -> None:
        self._meter = meter
        self._thread_id = thread_id
        self._agent = agent
        self._tenant = tenant
        self._venue = venue
        self._venues = dict(venues) if venues else None
        self._effects: dict[str, Any] = dict(tool_effects or {})
        # Recorded runs, and the parent of every other (chain) run in flight, by the run id's
        # 128-bit integer: a UUID's own hash and equality are Python code, a call each per
        # lookup, where an int's are not. Plain dict operations are atomic under the GIL,
        # which is all the bookkeeping needs.
        self._runs: dict[int, _Run] = {}
        self._chains: dict[int, UUID] = {}
        self._sessions = SessionCache(meter)

    # -- run bookkeeping -----------------------------------------------------------------------

    def _begin(
        self,
        kind: str,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any] | None,
        name: str | None,
    ) -> _Run:
        """Starts a recorded run (a model, tool or retriever run, or a top-level run)."""
        rid = _text(run_id)
        parent = self._ancestor(parent_run_id)
        if parent is not None:
            session, agent = parent.session, parent.agent
            parent_event = parent.event or parent.parent_event
        else:
            thread = self._thread_id or (metadata.get("thread_id") if metadata else None)
            if thread is not None:
                session = str(thread)
            else:
                top = self._top(parent_run_id or run_id)
                session = rid if top is run_id or top.int == run_id.int else _text(top)
            agent = self._agent or name
            parent_event = None
        run = _Run(rid, kind, session, parent_event, rid if kind != "chain" else None, agent)
        if metadata:
            node = metadata.get("langgraph_node", _ABSENT)
            step = metadata.get("langgraph_step", _ABSENT)
            if node is not _ABSENT or step is not _ABSENT:
                graph = run.graph = {}
                if node is not _ABSENT:
                    graph["langgraph_node"] = node
                if step is not _ABSENT:
                    graph["langgraph_step"] = step
        self._runs[run_id.int] = run
        if parent_run_id is None:
            self._meter.record(
                {
                    "kind": "session_start",
                    "id": f"{rid}:start",
                    "session_id": session,
                    "agent": agent,
                    "tenant": self._tenant,
                    "ts": run.start,
                    "attrs": {"run_id": rid, "name": name},
                }
            )
        return run

    def _top(self, run_id: UUID) -> UUID:
        """The topmost run known above `run_id` (itself when none is)."""
        for _ in range(1000):
            parent = self._chains.get(run_id.int)
            if parent is None:
                break
            run_id = parent
        return run_id

    def _ancestor(self, run_id: UUID | None) -> _Run | None:
        """The nearest recorded run at or above `run_id` (chains in between are skipped)."""
        steps = 0
        while run_id is not None and steps < 1000:
            key = run_id.int
            run = self._runs.get(key)
            if run is not None:
                return run
            run_id = self._chains.get(key)
            steps += 1
        return None

    def _end_session(self, run: _Run, parent_run_id: UUID | None, status: str) -> None:
        if parent_run_id is None:
            rid = run.rid
            self._meter.record(
                {
                    "kind": "session_end",
                    "id": f"{rid}:end",
                    "session_id": run.session,
                    "agent": run.agent,
                    "tenant": self._tenant,
                    "status": status,
                    "parent_id": f"{rid}:start",
                    "ts": time.time_ns(),
                    "attrs": {"run_id": rid},
                }
            )

    def _attrs(self, run: _Run, parent_run_id: UUID | None) -> dict[str, Any]:
        """The attrs every run event carries: its run ids and LangGraph's node and step."""
        attrs: dict[str, Any] = {"run_id": run.rid}
        if parent_run_id is not None:
            attrs["parent_run_id"] = _text(parent_run_id)
        if run.graph is not None:
            attrs.update(run.graph)
        return attrs

    def _session(self, run: _Run) -> Session:
        return self._sessions.get(run.session, run.agent, self._tenant)

    # -- chains: sessions only -----------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if parent_run_id is not None:  # the hot path: only the link to the parent is kept
            self._chains[run_id.int] = parent_run_id
            return
        try:
            self._begin(
                "chain",
                run_id,
                parent_run_id,
                metadata,
                name or (serialized or {}).get("name"),
            )
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def on_chain_end(
        self,
        outputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if self._chains.pop(run_id.int, None) is None:  # else a nested chain: nothing kept
            self._chain_done(run_id, parent_run_id, "ok")

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if self._chains.pop(run_id.int, None) is None:
            self._chain_done(run_id, parent_run_id, "error")

    def _chain_done(self, run_id: UUID, parent_run_id: UUID | None, status: str) -> None:
        """Ends a top-level run (a chain run that was not a nested one)."""
        try:
            run = self._runs.pop(run_id.int, None)
            if run is not None:
                self._end_session(run, parent_run_id, status)
        except Exception as exc:  # noqa: BLE001
            note(self._meter, SOURCE, exc)

    # -- models --------------------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        invocation_params: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            run = self._begin("llm", run_id, parent_run_id, metadata, name)
            params = invocation_params or {}
            self._model_start(run, serialized, metadata, params, chat=True)
            if params.get("use_previous_response_id") and messages:
                # ChatOpenAI then sends the last AI message's response id as
                # previous_response_id (and only the messages after it).
                for message in reversed(messages[0]):
                    rid = (getattr(message, "response_metadata", None) or {}).get("id")
                    if (
                        getattr(message, "type", None) == "ai"
                        and isinstance(rid, str)
                        and rid.startswith("resp_")
                    ):
                        run.data["request"]["previous_response_id"] = rid
                        break
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        invocation_params: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            run = self._begin("llm", run_id, parent_run_id, metadata, name)
            params = invocation_params or {}
            self._model_start(run, serialized, metadata, params, chat=False)
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def _model_start(
        self,
        run: _Run,
        serialized: Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
        params: Mapping[str, Any],
        chat: bool,
    ) -> None:
        """Keeps what the model call's event needs from its start: provider, model, the
        request keys the rules read and the venue (only names and ids, never content)."""
        md = metadata or {}
        ls_provider = md.get("ls_provider")
        provider = PROVIDERS.get(ls_provider, ls_provider) if ls_provider else "unknown"
        model = md.get("ls_model_name") or params.get("model") or params.get("model_name")
        data = run.data
        data["provider"] = provider
        data["model"] = model
        data["chat"] = chat
        # Most calls carry none of these keys: one set test instead of a lookup per key.
        data["request"] = (
            {}
            if _REQUEST_SET.isdisjoint(params)
            else {k: params[k] for k in REQUEST_KEYS if params.get(k) is not None}
        )
        base_url = _base_url(params)
        if base_url is None and serialized:
            base_url = _base_url(serialized.get("kwargs") or {})
        if base_url:
            host = urlsplit(base_url if "//" in base_url else f"//{base_url}").netloc
            venue, rule, explain = venue_for_host(host.rsplit("@", 1)[-1], self._venues)
            data["venue"] = venue
            data["venue_evidence"] = {
                "venue": venue,
                "rule": rule,
                "explain": explain,
                "signal": "base_url",
            }
        else:
            data["venue"] = self._venue

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            run = self._runs.pop(run_id.int, None)
            if run is not None:
                self._model_call(run, parent_run_id, response, "ok", None)
                self._end_session(run, parent_run_id, "ok")
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            run = self._runs.pop(run_id.int, None)
            if run is not None:
                self._model_call(run, parent_run_id, None, "error", error)
                self._end_session(run, parent_run_id, "error")
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def _model_call(
        self,
        run: _Run,
        parent_run_id: UUID | None,
        response: LLMResult | None,
        status: Status,
        error: BaseException | None,
    ) -> None:
        """Records the run's ``model_call``: tokens and response id from the response's
        messages (or the provider's ``token_usage``), the API from the response id."""
        duration = time.time_ns() - run.start
        attrs = self._attrs(run, parent_run_id)
        data = run.data
        n_in = n_out = cached = 0
        response_id = None
        model = data.get("model")
        for gens in response.generations if response is not None else ():
            if not gens:
                continue
            message = getattr(gens[0], "message", None)
            usage = getattr(message, "usage_metadata", None)
            if usage:
                n_in += int(usage.get("input_tokens") or 0)
                n_out += int(usage.get("output_tokens") or 0)
                cached += int((usage.get("input_token_details") or {}).get("cache_read") or 0)
            meta = getattr(message, "response_metadata", None) or {}
            response_id = response_id or meta.get("id")
            model = model or meta.get("model_name") or meta.get("model")
        if response is not None and not (n_in or n_out):
            usage = (response.llm_output or {}).get("token_usage") or {}
            n_in = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
            n_out = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
            cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        provider = data["provider"]
        if not data["chat"]:
            api = "completions"
        elif isinstance(response_id, str) and response_id.startswith("resp_"):
            api = "responses"
        elif isinstance(response_id, str) and response_id.startswith("chatcmpl-"):
            api = "chat.completions"
        else:
            api = CHAT_API.get(provider, "chat")
        if response_id:
            attrs["response_id"] = str(response_id)
        if "venue_evidence" in data:
            attrs["venue_evidence"] = data["venue_evidence"]
        if error is not None:
            attrs["error_type"] = type(error).__name__
        self._session(run).model_call(
            provider=provider,
            model=str(model or "unknown"),
            api=api,
            venue=data.get("venue"),
            request=data["request"] or None,
            input_tokens=n_in,
            output_tokens=n_out,
            cached_tokens=min(cached, n_in),
            duration_ns=duration,
            status=status,
            attrs=attrs,
            id=run.rid,
            ts=run.start,
            parent_id=run.parent_event,
        )

    # -- tools and retrievers ------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        inputs: dict[str, Any] | None = None,
        color: str | None = None,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            tool = (serialized or {}).get("name") or name
            run = self._begin("tool", run_id, parent_run_id, metadata, tool)
            run.data["tool"] = tool
            if tool_call_id:
                run.data["tool_call_id"] = tool_call_id
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def on_tool_end(
        self,
        output: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
        color: str | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._tool_done(run_id, parent_run_id, name, "ok", None)
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
        color: str | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._tool_done(run_id, parent_run_id, name, "error", error)
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def _tool_done(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str | None,
        status: Status,
        error: BaseException | None,
    ) -> None:
        run = self._runs.pop(run_id.int, None)
        if run is None:
            return
        duration = time.time_ns() - run.start
        attrs = self._attrs(run, parent_run_id)
        tool = run.data.get("tool") or name or "unknown"
        if "tool_call_id" in run.data:
            attrs["tool_call_id"] = run.data["tool_call_id"]
        if error is not None:
            attrs["error_type"] = type(error).__name__
        self._session(run).tool_call(
            tool,
            effect=self._effects.get(tool, "none"),
            duration_ns=duration,
            status=status,
            attrs=attrs,
            id=run.rid,
            ts=run.start,
            parent_id=run.parent_event,
        )
        self._end_session(run, parent_run_id, status)

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            name = kwargs.get("name") or (serialized or {}).get("name") or "retriever"
            run = self._begin("retriever", run_id, parent_run_id, metadata, name)
            run.data["store"] = name
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def on_retriever_end(
        self,
        documents: Sequence[Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._retrieved(run_id, parent_run_id, documents, None)
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def on_retriever_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._retrieved(run_id, parent_run_id, (), error)
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._meter, SOURCE, exc)

    def _retrieved(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        documents: Sequence[Any],
        error: BaseException | None,
    ) -> None:
        run = self._runs.pop(run_id.int, None)
        if run is None:
            return
        duration = time.time_ns() - run.start
        attrs = self._attrs(run, parent_run_id)
        size = sum(len(str(getattr(d, "page_content", "")).encode()) for d in documents)
        attrs["documents"] = len(documents)
        if error is not None:
            attrs["error_type"] = type(error).__name__
        self._session(run).state_op(
            "read",
            store=run.data["store"],
            holder="client",
            scope="global",
            bytes=size,
            duration_ns=duration,
            attrs=attrs,
            id=run.rid,
            ts=run.start,
            parent_id=run.parent_event,
        )
        self._end_session(run, parent_run_id, "error" if error else "ok")


def _text(run_id: UUID) -> str:
    """`str(run_id)` (the hyphenated hex form) without `UUID.__str__`'s call and %-formatting."""
    h = f"{run_id.int:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _base_url(params: Mapping[str, Any]) -> str | None:
    """The first endpoint URL among `params` (`BASE_URL_KEYS`, in that order)."""
    if _BASE_URL_SET.isdisjoint(params):
        return None
    return next((params[k] for k in BASE_URL_KEYS if isinstance(params.get(k), str)), None)
