"""Strands Agents with its own OpenTelemetry tracing, through its OpenAI model provider."""

from __future__ import annotations

from harness import AGENT, INSTRUCTIONS, MODEL, QUESTIONS, check, get_weather, traced
from strands import Agent, tool
from strands.models.openai import OpenAIModel


def test_strands(server):
    model = OpenAIModel(client_args={"base_url": server.url, "api_key": "sk-test"}, model_id=MODEL)
    agent = Agent(
        model=model,
        name=AGENT,
        system_prompt=INSTRUCTIONS,
        tools=[tool(get_weather)],
        callback_handler=None,
        # Strands' documented way to name the session of its traces.
        trace_attributes={"session.id": "conv-1"},
    )
    with traced() as t:
        agent(QUESTIONS[0])
        agent(QUESTIONS[1])
    check(
        "Strands Agents",
        "own (strands.telemetry; trace_attributes session.id)",
        "chat.completions",
        t,
    )
