"""The OpenAI Agents SDK traced by the Traceloop instrumentation
(`opentelemetry-instrumentation-openai-agents`) and by OpenInference's
(`openinference-instrumentation-openai-agents`), over Responses and Chat Completions."""

from __future__ import annotations

import pytest
from harness import check
from openai_agents_run import instrumented, two_turns

INSTRUMENTORS = {
    "opentelemetry-instrumentation-openai-agents (Traceloop)": (
        "opentelemetry.instrumentation.openai_agents"
    ),
    "openinference-instrumentation-openai-agents": "openinference.instrumentation.openai_agents",
}


@pytest.fixture(params=sorted(INSTRUMENTORS))
def plugin(request):
    with instrumented(INSTRUMENTORS[request.param]):
        yield request.param


@pytest.mark.parametrize("api", ["responses", "chat.completions"])
def test_openai_agents(server, plugin, api):
    check("OpenAI Agents SDK", plugin, api, two_turns(server, api))
