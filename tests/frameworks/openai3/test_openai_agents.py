"""The OpenAI Agents SDK traced by the Traceloop instrumentation
(`opentelemetry-instrumentation-openai-agents`) and by OpenInference's
(`openinference-instrumentation-openai-agents`), over Responses and Chat Completions."""

from __future__ import annotations

import importlib

import agents
import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from harness import AGENT, INSTRUCTIONS, MODEL, PROVIDER, QUESTIONS, check, get_weather, traced
from openai import AsyncOpenAI

INSTRUMENTORS = {
    "opentelemetry-instrumentation-openai-agents (Traceloop)": (
        "opentelemetry.instrumentation.openai_agents"
    ),
    "openinference-instrumentation-openai-agents": "openinference.instrumentation.openai_agents",
}


@pytest.fixture(params=sorted(INSTRUMENTORS))
def plugin(request):
    agents.set_trace_processors([])  # the SDK's own exporter would post to api.openai.com
    instrumentor = importlib.import_module(INSTRUMENTORS[request.param]).OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=PROVIDER)
    yield request.param
    instrumentor.uninstrument()
    agents.set_trace_processors([])


@pytest.mark.parametrize("api", ["responses", "chat.completions"])
def test_openai_agents(server, plugin, api):
    client = AsyncOpenAI(base_url=server.url, api_key="sk-test")
    model = (
        OpenAIResponsesModel(MODEL, client)
        if api == "responses"
        else OpenAIChatCompletionsModel(MODEL, client)
    )
    agent = Agent(
        name=AGENT, instructions=INSTRUCTIONS, model=model, tools=[function_tool(get_weather)]
    )
    config = RunConfig(group_id="conv-1", workflow_name="weather")
    with traced() as t:
        first = Runner.run_sync(agent, QUESTIONS[0], run_config=config)
        history = first.to_input_list() + [{"role": "user", "content": QUESTIONS[1]}]
        Runner.run_sync(agent, history, run_config=config)
    check("OpenAI Agents SDK", plugin, api, t)
