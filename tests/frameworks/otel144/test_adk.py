"""Google ADK with its own OpenTelemetry tracing, the model reached through LiteLLM."""

from __future__ import annotations

from google.adk.agents import LlmAgent
from google.adk.models.lite_llm import LiteLlm
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.genai import types
from harness import AGENT, INSTRUCTIONS, MODEL, QUESTIONS, check, get_weather, traced


def test_google_adk(server):
    model = LiteLlm(model=f"openai/{MODEL}", api_base=server.url, api_key="sk-test")
    agent = LlmAgent(name=AGENT, model=model, instruction=INSTRUCTIONS, tools=[get_weather])
    sessions = InMemorySessionService()
    runner = Runner(agent=agent, app_name="weather", session_service=sessions)
    with traced() as t:
        session = sessions.create_session_sync(
            app_name="weather", user_id="u1", session_id="conv-1"
        )
        for q in QUESTIONS:
            message = types.Content(role="user", parts=[types.Part(text=q)])
            for _ in runner.run(user_id="u1", session_id=session.id, new_message=message):
                pass
    check("Google ADK", "own (google.adk.telemetry), LiteLlm", "chat.completions", t)
