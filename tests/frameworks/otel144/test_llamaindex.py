"""LlamaIndex agents traced by OpenInference (`openinference-instrumentation-llama-index`) and by
Traceloop (`opentelemetry-instrumentation-llamaindex`)."""

from __future__ import annotations

import asyncio
import importlib

import pytest
from harness import AGENT, INSTRUCTIONS, MODEL, PROVIDER, QUESTIONS, check, get_weather, traced
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context
from llama_index.llms.openai import OpenAI
from openinference.instrumentation import using_session

INSTRUMENTORS = {
    "openinference-instrumentation-llama-index": "openinference.instrumentation.llama_index",
    "opentelemetry-instrumentation-llamaindex (Traceloop)": (
        "opentelemetry.instrumentation.llamaindex"
    ),
}


@pytest.fixture(params=sorted(INSTRUMENTORS))
def plugin(request):
    instrumentor = importlib.import_module(INSTRUMENTORS[request.param]).LlamaIndexInstrumentor()
    instrumentor.instrument(tracer_provider=PROVIDER)
    yield request.param
    instrumentor.uninstrument()


def test_llamaindex(server, plugin):
    llm = OpenAI(model=MODEL, api_base=server.url, api_key="sk-test")
    agent = FunctionAgent(
        name=AGENT,
        description="Weather",
        system_prompt=INSTRUCTIONS,
        llm=llm,
        tools=[FunctionTool.from_defaults(get_weather)],
    )

    async def conversation() -> None:
        ctx = Context(agent)
        for q in QUESTIONS:
            await agent.run(q, ctx=ctx)

    with traced() as t, using_session("conv-1"):
        asyncio.run(conversation())
    check("LlamaIndex", plugin, "chat.completions", t)
