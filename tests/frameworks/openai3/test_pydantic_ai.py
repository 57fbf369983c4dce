"""Pydantic AI with its own OpenTelemetry instrumentation, Chat Completions and Responses."""

from __future__ import annotations

import pytest
from harness import AGENT, INSTRUCTIONS, MODEL, PROVIDER, QUESTIONS, check, get_weather, traced
from pydantic_ai import Agent
from pydantic_ai.capabilities.instrumentation import Instrumentation
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider


@pytest.mark.parametrize("api", ["chat.completions", "responses"])
def test_pydantic_ai(server, api):
    provider = OpenAIProvider(base_url=server.url, api_key="sk-test")
    cls = OpenAIChatModel if api == "chat.completions" else OpenAIResponsesModel
    agent = Agent(
        cls(MODEL, provider=provider),
        name=AGENT,
        instructions=INSTRUCTIONS,
        tools=[get_weather],
        capabilities=[Instrumentation(InstrumentationSettings(tracer_provider=PROVIDER))],
    )
    with traced() as t:
        first = agent.run_sync(QUESTIONS[0])
        agent.run_sync(QUESTIONS[1], message_history=first.all_messages())
    check("Pydantic AI", "own (Instrumentation capability)", api, t)
