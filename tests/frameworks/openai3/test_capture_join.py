"""Responses calls chained with `previous_response_id`, made through frameworks whose spans do
not carry the parameter: from the spans alone each call reads stateless; with HTTP capture on the
same meter, each call is one event (span and wire joined) whose verdict is the wire's."""

from __future__ import annotations

import json

import agents
import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.models.openai_responses import OpenAIResponsesModel
from harness import (
    AGENT,
    INSTRUCTIONS,
    MODEL,
    PROVIDER,
    QUESTIONS,
    VENUES,
    events,
    get_weather,
    traced,
)
from openai import AsyncOpenAI
from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.capabilities.instrumentation import Instrumentation
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.openai import OpenAIResponsesModel as PydanticResponsesModel
from pydantic_ai.models.openai import OpenAIResponsesModelSettings
from pydantic_ai.providers.openai import OpenAIProvider
from statemeter.integrations import httpx as capture


def client(server, meter, captured: bool) -> AsyncOpenAI:
    c = AsyncOpenAI(base_url=server.url, api_key="sk-test")
    if not captured:
        return c
    # The loopback host serves OpenAI's API here: capture names its provider and venue so.
    return capture.instrument(c, meter, venues=VENUES, providers={"127.0.0.1": "openai"})


def sent_previous(server) -> list[str | None]:
    """The previous_response_id of each Responses request the server received."""
    return [
        json.loads(r["body"]).get("previous_response_id")
        for r in server.received
        if r["path"] == "/v1/responses"
    ]


def run_pydantic_ai(server, meter, captured: bool) -> None:
    provider = OpenAIProvider(openai_client=client(server, meter, captured))
    agent = PydanticAgent(
        PydanticResponsesModel(MODEL, provider=provider),
        name=AGENT,
        instructions=INSTRUCTIONS,
        tools=[get_weather],
        model_settings=OpenAIResponsesModelSettings(openai_previous_response_id="auto"),
        capabilities=[Instrumentation(InstrumentationSettings(tracer_provider=PROVIDER))],
    )
    first = agent.run_sync(QUESTIONS[0])
    agent.run_sync(QUESTIONS[1], message_history=first.all_messages())


def run_openai_agents(server, meter, captured: bool) -> None:
    model = OpenAIResponsesModel(MODEL, client(server, meter, captured))
    agent = Agent(
        name=AGENT, instructions=INSTRUCTIONS, model=model, tools=[function_tool(get_weather)]
    )
    config = RunConfig(workflow_name="weather")
    first = Runner.run_sync(agent, QUESTIONS[0], run_config=config)
    Runner.run_sync(
        agent, QUESTIONS[1], run_config=config, previous_response_id=first.last_response_id
    )


@pytest.fixture
def traceloop_agents():
    agents.set_trace_processors([])
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=PROVIDER)
    yield
    instrumentor.uninstrument()
    agents.set_trace_processors([])


@pytest.mark.parametrize("framework", ["pydantic-ai", "openai-agents"])
@pytest.mark.parametrize("captured", [False, True], ids=["spans", "spans+capture"])
def test_previous_response_id_verdict(server, traceloop_agents, framework, captured):
    run = run_pydantic_ai if framework == "pydantic-ai" else run_openai_agents
    with traced() as t:
        run(server, t.meter, captured)
    previous = sent_previous(server)
    chained = [p is not None for p in previous]
    assert len(previous) == 4 and any(chained) and not chained[0]
    evs = events(t.meter)
    calls = [e for e in evs if e["kind"] == "model_call"]
    assert [e["kind"] for e in evs].count("tool_call") == 2
    assert len(calls) == 4  # one event per call, also with capture beside the spans
    spans = t.meter.stats()["spans"]
    assert spans["errors"] == 0
    assert spans["seen"] == len(t.collector.spans)
    assert spans["recorded"] + spans["joined"] + sum(spans["skipped"].values()) == spans["seen"]
    by_response = {e["attrs"].get("response_id"): e for e in calls}
    if not captured:
        # The spans do not carry the parameter: every call reads stateless.
        assert spans["joined"] == 0
        assert {e["tag"] for e in calls} == {"stateless"}
        return
    assert spans["joined"] == 4  # each call's span joined with what capture saw on the wire
    for n, prev in enumerate(previous, start=1):
        e = by_response[f"resp_{n}"]
        assert e["attrs"]["joined"]["by"] == "response_id"
        assert (e["agent"], e["venue"], e["provider"], e["api"]) == (
            AGENT,
            "loopback",
            "openai",
            "responses",
        )
        assert (e["request"] or {}).get("previous_response_id") == prev
        assert (e["tag"], e["consumes_state"]) == (
            ("stateful", True) if prev is not None else ("stateless", False)
        ), e
