"""The OpenAI Agents SDK run every instrumentation of it is tested with (tests/frameworks/openai3,
tests/frameworks/otelcontrib): two turns through a Responses or Chat Completions model, the
conversation named by `RunConfig.group_id`."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

import agents
from agents import Agent, RunConfig, Runner, function_tool
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from harness import AGENT, INSTRUCTIONS, MODEL, PROVIDER, QUESTIONS, Traced, get_weather, traced
from openai import AsyncOpenAI


@contextmanager
def instrumented(module: str) -> Iterator[None]:
    """`module`'s OpenAIAgentsInstrumentor on the test tracer provider, and nothing else."""
    agents.set_trace_processors([])  # the SDK's own exporter would post to api.openai.com
    instrumentor = importlib.import_module(module).OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=PROVIDER)
    try:
        yield
    finally:
        instrumentor.uninstrument()
        agents.set_trace_processors([])


def two_turns(server, api: str) -> Traced:
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
    return t
