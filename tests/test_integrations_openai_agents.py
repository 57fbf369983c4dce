"""OpenAI Agents SDK: real `Runner` runs with offline models (no network), recorded through
`MeterProcessor` and `MeteredSession`."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import agents
import pytest
import statemeter as sm
from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunConfig,
    Runner,
    SQLiteSession,
    function_tool,
    input_guardrail,
)
from agents.items import ModelResponse
from agents.memory import OpenAIConversationsSession
from agents.models.interface import Model
from agents.testing.model import assistant_message, function_call
from agents.tracing import generation_span, response_span
from agents.usage import Usage, model_usage_to_span_usage
from openai import AsyncOpenAI
from openai.types.responses import Response, ResponseUsage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
from statemeter.integrations.openai_agents import MeteredSession, MeterProcessor

_ids = itertools.count(1)


def _usage(n_in: int, n_out: int, cached: int) -> Usage:
    return Usage(
        requests=1,
        input_tokens=n_in,
        output_tokens=n_out,
        total_tokens=n_in + n_out,
        input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
    )


class ResponsesModel(Model):
    """An offline Responses-API model: opens a `response_span` like the SDK's own model, and
    its `Response` echoes `previous_response_id` / `conversation` as the API does."""

    def __init__(self, script: list[list[Any]], tokens: tuple[int, int, int] = (100, 10, 40)):
        self.script = list(script)
        self.tokens = tokens
        self.previous_ids: list[str | None] = []

    async def get_response(
        self,
        system_instructions,
        input,
        model_settings,
        tools,
        output_schema,
        handoffs,
        tracing,
        *,
        previous_response_id,
        conversation_id,
        prompt,
    ):
        with response_span(disabled=tracing.is_disabled()) as span:
            self.previous_ids.append(previous_response_id)
            output = self.script.pop(0)
            usage = _usage(*self.tokens)
            response = Response(
                id=f"resp_{next(_ids)}",
                created_at=0,
                model="gpt-5",
                object="response",
                output=output,
                parallel_tool_calls=True,
                tool_choice="auto",
                tools=[],
                previous_response_id=previous_response_id,
                conversation={"id": conversation_id} if conversation_id else None,
                usage=ResponseUsage(
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    total_tokens=usage.total_tokens,
                    input_tokens_details=usage.input_tokens_details,
                    output_tokens_details=usage.output_tokens_details,
                ),
            )
            span.span_data.usage = model_usage_to_span_usage(usage)
            if tracing.include_data():
                span.span_data.response = response
            return ModelResponse(output=output, usage=usage, response_id=response.id)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError


class ChatModel(Model):
    """An offline Chat-Completions-style model on Azure: opens a `generation_span`."""

    def __init__(self, script: list[list[Any]]):
        self.script = list(script)

    async def get_response(
        self,
        system_instructions,
        input,
        model_settings,
        tools,
        output_schema,
        handoffs,
        tracing,
        *,
        previous_response_id,
        conversation_id,
        prompt,
    ):
        with generation_span(
            model="gpt-4o",
            model_config={"base_url": "https://contoso.openai.azure.com/openai/v1/"},
            disabled=tracing.is_disabled(),
        ) as span:
            usage = _usage(50, 5, 0)
            span.span_data.usage = {
                "input_tokens": 50,
                "output_tokens": 5,
                "input_tokens_details": {"cached_tokens": 0},
            }
            return ModelResponse(output=self.script.pop(0), usage=usage, response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError


@function_tool
def get_order(order_id: str) -> str:
    """Look up an order."""
    return f"order {order_id}: shipped"


def make_agents(billing_model: Model | None = None) -> tuple[Agent, Agent, ResponsesModel]:
    billing = Agent(
        name="billing",
        model=billing_model
        or ResponsesModel(
            [[assistant_message("refund issued")], [assistant_message("you are welcome")]]
        ),
    )
    triage_model = ResponsesModel(
        [
            [function_call("get_order", {"order_id": "42"}, call_id="call_1")],
            [function_call("transfer_to_billing", {}, call_id="call_2")],
            [function_call("get_order", {"order_id": "43"}, call_id="call_3")],
            [assistant_message("order 43 shipped")],
        ]
    )
    triage = Agent(name="triage", model=triage_model, tools=[get_order], handoffs=[billing])
    return triage, billing, triage_model


@pytest.fixture
def meter():
    meter = sm.Meter()
    agents.set_tracing_disabled(False)
    # Replaces the SDK's default exporter: nothing leaves the process.
    agents.set_trace_processors([MeterProcessor(meter, base_url="https://api.openai.com/v1")])
    yield meter
    agents.set_trace_processors([])


def summary(events: sm.EventTable) -> list[tuple]:
    out = []
    for e in events:
        if e.kind == "model_call":
            what = (
                e.provider,
                e.api,
                e.venue,
                e.request,
                e.input_tokens,
                e.output_tokens,
                e.cached_tokens,
            )
        elif e.kind == "tool_call":
            what = (e.tool, e.tool_kind, e.status)
        elif e.kind == "state_op":
            what = (e.op, e.store, e.holder)
        else:
            what = (e.status,)
        out.append((e.kind, e.agent, *what, e.tag, e.session_tag))
    return out


def test_two_turns_tool_handoff_without_previous_response_id(meter):
    triage, billing, _ = make_agents()
    config = RunConfig(group_id="thread-1", workflow_name="support")
    r1 = asyncio.run(Runner.run(triage, "where is order 42?", run_config=config))
    follow_up = r1.to_input_list() + [{"role": "user", "content": "thanks"}]
    asyncio.run(Runner.run(r1.last_agent, follow_up, run_config=config))
    events = meter.ledger.events()
    call = ("openai", "responses", "openai", {}, 100, 10, 40)
    assert summary(events) == [
        ("session_start", None, None, "stateless", "stateless"),
        ("model_call", "triage", *call, "stateless", "stateless"),
        ("tool_call", "triage", "get_order", "function", "ok", "stateless", "stateless"),
        ("model_call", "triage", *call, "stateless", "stateless"),
        ("model_call", "billing", *call, "stateless", "stateless"),
        ("session_end", None, "ok", "stateless", "stateless"),
        ("session_start", None, None, "stateless", "stateless"),
        ("model_call", "billing", *call, "stateless", "stateless"),
        ("session_end", None, "ok", "stateless", "stateless"),
    ]
    assert {e.session_id for e in events} == {"thread-1"}
    start, first, tool, second, third, end = events[:6]
    assert [ev.rule for ev in first.evidence] == ["openai-responses-store-default"]
    assert first.creates_state and not first.consumes_state
    assert start.attrs["workflow"] == "support" and start.attrs["group_id"] == "thread-1"
    assert end.attrs["agents"] == ["triage", "billing"]
    assert end.attrs["handoffs"] == [{"from": "triage", "to": "billing"}]
    assert end.parent_id == start.id
    assert first.attrs["response_id"].startswith("resp_") and first.attrs["turn"] == 1
    assert first.id.startswith("span_") and tool.id.startswith("span_")
    assert first.duration_ns is not None and first.ts >= start.ts
    assert meter.stats()["integration_errors"] == {}


def test_previous_response_id_makes_calls_and_session_stateful(meter):
    triage, billing, triage_model = make_agents()
    asyncio.run(Runner.run(triage, "where is order 42?"))
    # Second turn continues on the server: the SDK chains later calls itself.
    r2 = asyncio.run(Runner.run(triage, "and order 43?", previous_response_id="resp_x"))
    assert r2.final_output == "order 43 shipped"
    assert triage_model.previous_ids[2:] == ["resp_x", triage_model.previous_ids[3]]
    assert triage_model.previous_ids[3] not in (None, "resp_x")
    events = meter.ledger.events()
    s1 = events[0].session_id
    s2 = events[-1].session_id
    assert s1 != s2 and s1.startswith("trace_") and s2.startswith("trace_")
    run2 = [e for e in events if e.session_id == s2]
    call = ("openai", "responses", "openai")
    assert summary(run2) == [
        ("session_start", None, None, "stateless", "stateful"),
        (
            "model_call",
            "triage",
            *call,
            {"previous_response_id": "resp_x"},
            100,
            10,
            40,
            "stateful",
            "stateful",
        ),
        ("tool_call", "triage", "get_order", "function", "ok", "stateless", "stateful"),
        (
            "model_call",
            "triage",
            *call,
            {"previous_response_id": triage_model.previous_ids[3]},
            100,
            10,
            40,
            "stateful",
            "stateful",
        ),
        ("session_end", None, "ok", "stateless", "stateful"),
    ]
    assert "openai-responses-previous-response-id" in [ev.rule for ev in run2[1].evidence]
    assert {e.session_tag for e in events if e.session_id == s1} == {"stateless"}


def test_generation_spans_guardrails_and_errors(meter):
    @function_tool
    def broken(order_id: str) -> str:
        """Always fails."""
        raise RuntimeError("backend down")

    @input_guardrail
    def polite(ctx, agent, input):
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)

    model = ChatModel(
        [[function_call("broken", {"order_id": "1"}, call_id="c1")], [assistant_message("sorry")]]
    )
    agent = Agent(name="azure-bot", model=model, tools=[broken], input_guardrails=[polite])
    asyncio.run(Runner.run(agent, "hi", run_config=RunConfig(group_id="g")))
    events = meter.ledger.events()
    assert summary(events) == [
        ("session_start", None, None, "stateless", "stateless"),
        (
            "model_call",
            "azure-bot",
            "azure.ai.openai",
            "chat.completions",
            "azure",
            None,
            50,
            5,
            0,
            "stateless",
            "stateless",
        ),
        ("tool_call", "azure-bot", "broken", "function", "error", "stateless", "stateless"),
        (
            "model_call",
            "azure-bot",
            "azure.ai.openai",
            "chat.completions",
            "azure",
            None,
            50,
            5,
            0,
            "stateless",
            "stateless",
        ),
        ("session_end", None, "ok", "stateless", "stateless"),
    ]
    assert events[1].attrs["venue_evidence"]["signal"] == "model_config.base_url"
    assert events[2].attrs["error"]
    assert events[-1].attrs["guardrails"] == [{"name": "polite", "triggered": False}]


class SpanlessModel(Model):
    """A custom model that opens no span: only the turn span carries its usage."""

    async def get_response(self, *args, **kwargs):
        return ModelResponse(
            output=[assistant_message("ok")], usage=_usage(7, 3, 0), response_id=None
        )

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError


def test_turn_usage_is_counted_once(meter):
    asyncio.run(Runner.run(Agent(name="a", model=SpanlessModel()), "hi"))
    triage, _, _ = make_agents()
    asyncio.run(Runner.run(triage, "where is order 42?"))
    calls = meter.ledger.events(kind="model_call")
    assert [(c.model, c.input_tokens, c.output_tokens) for c in calls] == [
        ("unknown", 7, 3),
        ("gpt-5", 100, 10),
        ("gpt-5", 100, 10),
        ("gpt-5", 100, 10),
    ]
    assert calls[0].attrs["usage_source"].startswith("turn span")
    task_totals = sum(c.input_tokens for c in calls[1:])
    assert task_totals == 300  # the task span's total, counted from the calls, not again


def test_host_run_survives_a_closed_meter_and_bad_spans(meter):
    class BadUsageModel(ResponsesModel):
        async def get_response(self, *args, **kwargs):
            with response_span() as span:
                span.span_data.usage = {"input_tokens": "lots"}
                return ModelResponse(
                    output=[assistant_message("fine")], usage=Usage(), response_id=None
                )

    result = asyncio.run(Runner.run(Agent(name="a", model=BadUsageModel([])), "hi"))
    assert result.final_output == "fine"
    assert meter.stats()["integration_errors"] == {"openai_agents": 1}
    meter.close()
    triage, _, _ = make_agents()
    result = asyncio.run(Runner.run(triage, "where is order 42?"))
    assert result.final_output == "refund issued"
    assert meter.stats()["integration_errors"]["openai_agents"] > 5


def test_metered_sqlite_session_records_reads_and_writes(meter):
    inner = SQLiteSession("user-7")
    session = MeteredSession(inner, meter)
    assert isinstance(session, SQLiteSession) and isinstance(session, MeteredSession)
    agent = Agent(
        name="a", model=ResponsesModel([[assistant_message("one")], [assistant_message("two")]])
    )
    # The SDK reads the memory before it starts the run's trace: with the trace grouped by the
    # memory session's id, the reads and the run's events share one statemeter session.
    config = RunConfig(group_id="user-7")
    asyncio.run(Runner.run(agent, "hi", session=session, run_config=config))
    asyncio.run(Runner.run(agent, "again", session=session, run_config=config))
    asyncio.run(session.pop_item())
    asyncio.run(session.clear_session())
    ops = meter.ledger.events(kind="state_op")
    assert [(o.op, o.store, o.holder, o.key, o.session_id) for o in ops] == [
        ("read", "SQLiteSession", "client", "user-7", "user-7"),
        ("write", "SQLiteSession", "client", "user-7", "user-7"),  # the user's input
        ("write", "SQLiteSession", "client", "user-7", "user-7"),  # the run's output
        ("read", "SQLiteSession", "client", "user-7", "user-7"),
        ("write", "SQLiteSession", "client", "user-7", "user-7"),
        ("write", "SQLiteSession", "client", "user-7", "user-7"),
        ("delete", "SQLiteSession", "client", "user-7", "user-7"),
        ("delete", "SQLiteSession", "client", "user-7", "user-7"),
    ]
    assert [o.attrs.get("trace_id") is not None for o in ops] == [
        False,
        True,
        True,
        False,
        True,
        True,
        False,
        False,
    ]
    assert ops[0].bytes == 0 and ops[3].bytes == ops[1].bytes + ops[2].bytes
    assert all(o.tag == "stateful" and o.state_holder == "client" for o in ops)
    # Client-held memory does not make the session stateful under the default ruleset.
    assert {e.session_tag for e in meter.ledger.events(session_id="user-7")} == {"stateless"}
    assert len(meter.ledger.events(session_id="user-7", kind="model_call")) == 2
    assert "one" not in json.dumps(ops.to_pylist())  # sizes only, never content


class OfflineConversations(OpenAIConversationsSession):
    """OpenAIConversationsSession with the server replaced by a list (no network)."""

    def __init__(self) -> None:
        super().__init__(conversation_id="conv_abc", openai_client=AsyncOpenAI(api_key="x"))
        self.items: list[Any] = []

    async def get_items(self, limit=None):
        return list(self.items[-limit:] if limit else self.items)

    async def add_items(self, items):
        self.items.extend(items)

    async def pop_item(self):
        return self.items.pop() if self.items else None

    async def clear_session(self):
        self.items.clear()


def test_metered_conversations_session_is_provider_held(meter):
    session = MeteredSession(OfflineConversations(), meter)
    assert isinstance(session, OpenAIConversationsSession)
    agent = Agent(name="a", model=ResponsesModel([[assistant_message("one")]]))
    asyncio.run(
        Runner.run(agent, "hi", session=session, run_config=RunConfig(group_id=session.session_id))
    )
    ops = meter.ledger.events(kind="state_op")
    assert [(o.op, o.holder, o.key, o.session_id) for o in ops] == [
        ("read", "provider", "conv_abc", "conv_abc"),
        ("write", "provider", "conv_abc", "conv_abc"),
        ("write", "provider", "conv_abc", "conv_abc"),
    ]
    # Provider-held conversation memory makes the session stateful.
    session_id = ops[0].session_id
    assert {e.session_tag for e in meter.ledger.events(session_id=session_id)} == {"stateful"}


def test_request_keys_read_from_a_response_as_the_api_returns_it() -> None:
    """`store` is no field of the SDK's `Response`: as the API returns it, it is an extra key;
    tools carry their container and vector stores; other objects are read by attribute."""
    from types import SimpleNamespace

    from statemeter.integrations.openai_agents import _response_request

    response = Response.model_validate(
        {
            "id": "resp_1",
            "created_at": 0,
            "model": "gpt-5",
            "object": "response",
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [
                {"type": "file_search", "vector_store_ids": ["vs_1", "vs_2"]},
                {"type": "code_interpreter", "container": "cntr_1"},
            ],
            "store": False,
            "previous_response_id": "resp_0",
            "conversation": {"id": "conv_1"},
            "service_tier": "default",
        }
    )
    assert response.__pydantic_extra__ == {"store": False}
    assert _response_request(response) == {
        "store": False,
        "previous_response_id": "resp_0",
        "service_tier": "default",
        "conversation": "conv_1",
        "container": "cntr_1",
        "vector_store_ids": ["vs_1", "vs_2"],
    }

    class Slotted:
        __slots__ = ("background", "tools")

        def __init__(self) -> None:
            self.background = True
            self.tools = [SimpleNamespace(container={"type": "auto"}, vector_store_ids=None)]

    assert _response_request(Slotted()) == {"background": True}

    class WithProperty:
        @property
        def previous_response_id(self) -> str:
            return "resp_9"

    assert _response_request(WithProperty()) == {"previous_response_id": "resp_9"}
    assert _response_request(SimpleNamespace(store=True, truncation="auto")) == {
        "store": True,
        "truncation": "auto",
    }
    assert _response_request(None) is None
