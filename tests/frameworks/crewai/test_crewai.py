"""CrewAI traced by its own tracing (a `TraceSession` with the application's span processors and
the conversation id as an attribute) and by the Traceloop instrumentation
(`opentelemetry-instrumentation-crewai`)."""

from __future__ import annotations

import os

import pytest

# No anonymous telemetry and no tracing upload to CrewAI's platform: everything stays here.
os.environ.update(CREWAI_DISABLE_TELEMETRY="true", CREWAI_TRACING_ENABLED="false")

from crewai import LLM, Agent, Crew, Task  # noqa: E402
from crewai.telemetry.tracing.session import TraceSession  # noqa: E402
from crewai.tools import tool  # noqa: E402
from harness import (  # noqa: E402
    AGENT,
    INSTRUCTIONS,
    MODEL,
    PROVIDER,
    QUESTIONS,
    check,
    get_weather,
    traced,
)
from opentelemetry.instrumentation.crewai import CrewAIInstrumentor  # noqa: E402


def crew(server) -> Crew:
    llm = LLM(model=f"openai/{MODEL}", base_url=server.url, api_key="sk-test")
    agent = Agent(
        role=AGENT,
        goal="Answer weather questions",
        backstory=INSTRUCTIONS,
        llm=llm,
        tools=[tool("get_weather")(get_weather)],
    )
    task = Task(description="{question}", expected_output="The weather", agent=agent)
    return Crew(agents=[agent], tasks=[task])


def test_crewai_own_tracing(server):
    c = crew(server)
    with traced() as t:
        for n, q in enumerate(QUESTIONS):
            session = TraceSession(
                f"conv-1-turn-{n}",
                processors=[t.processor, t.collector],
                attributes={"gen_ai.conversation.id": "conv-1"},
            )
            with session.activate():
                c.kickoff(inputs={"question": q})
            session.shutdown()
    check("CrewAI", "own (TraceSession processors)", "chat.completions", t)


@pytest.fixture
def traceloop():
    instrumentor = CrewAIInstrumentor()
    instrumentor.instrument(tracer_provider=PROVIDER)
    yield
    instrumentor.uninstrument()


def test_crewai_traceloop(server, traceloop):
    c = crew(server)
    with traced() as t:
        for q in QUESTIONS:
            c.kickoff(inputs={"question": q})
    assert len(server.received) == 4  # the crew did call the model twice a turn
    check("CrewAI", "opentelemetry-instrumentation-crewai (Traceloop)", "chat.completions", t)
