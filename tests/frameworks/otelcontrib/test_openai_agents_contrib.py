"""The OpenAI Agents SDK traced by the OpenTelemetry contrib instrumentation
(`opentelemetry-instrumentation-openai-agents-v2`), over Responses and Chat Completions."""

from __future__ import annotations

import pytest
from harness import check
from openai_agents_run import instrumented, two_turns


@pytest.mark.parametrize("api", ["responses", "chat.completions"])
def test_openai_agents_otel_contrib(server, api):
    with instrumented("opentelemetry.instrumentation.openai_agents"):
        t = two_turns(server, api)
    check(
        "OpenAI Agents SDK", "opentelemetry-instrumentation-openai-agents-v2 (OTel contrib)", api, t
    )
