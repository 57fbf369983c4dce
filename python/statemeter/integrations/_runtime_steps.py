"""Which HTTP responses report the inner steps of a provider-managed agent runtime, and the
reader for each (the httpx capture asks per response): Claude Managed Agents session events
(`_claude_managed_agents`), OpenAI Agents API session events (`_openai_agents_sessions`) and
Azure AI Foundry Agent Service run steps (`_foundry_run_steps`)."""

from __future__ import annotations

import time
from typing import Any

from statemeter.integrations import _claude_managed_agents as claude
from statemeter.integrations import _foundry_run_steps as foundry
from statemeter.integrations import _openai_agents_sessions as openai_agents

__all__ = ["RuntimeSteps"]

_MAX_SESSIONS = 4096
Reader = claude.ManagedAgentsEvents | openai_agents.AgentsSessionEvents | foundry.RunSteps


class RuntimeSteps:
    """One instrumented client's view of runtime sessions: the model each session's agent runs
    (learned from the session objects its responses carried), the model of each thread run
    (from run objects) and the run steps already recorded."""

    __slots__ = ("models", "runs", "run_steps")

    def __init__(self) -> None:
        self.models: dict[str, str] = {}
        self.runs: dict[str, str] = {}
        self.run_steps: set[str] = set()

    def reader(self, event: dict[str, Any], stream: bool) -> Reader | None:
        """A reader of the steps in the response to `event`'s request, if it reports any:
        `stream` says the response is server-sent events."""
        attrs = event.get("attrs") or {}
        endpoint = event.get("endpoint") or ""
        request = event.get("request") or {}
        api = event.get("api")
        if isinstance(api, str) and api.startswith("agents.sessions"):
            # A turn's events stream from `POST /agents/sessions` and `.../turns` with
            # `stream: true`, and from `GET .../events`.
            if stream or (api == "agents.sessions.events" and endpoint.endswith("/events")):
                session = request.get("session_id") or _path_session(endpoint)
                return openai_agents.AgentsSessionEvents(
                    session, self.models.get(session or ""), time.time_ns
                )
            return None
        if api == "threads.runs":
            # A streamed run's step events, or a listing (or one) of a run's steps.
            if stream or (attrs.get("http.request.method") == "GET" and "/steps" in endpoint):
                if len(self.run_steps) >= _MAX_SESSIONS:
                    self.run_steps.clear()
                return foundry.RunSteps(event, self.runs, self.run_steps)
            return None
        if attrs.get("http.request.method") != "GET":
            return None
        if _claude_sessions(event, attrs):
            if not (endpoint.endswith("/events/stream") or endpoint.endswith("/events")):
                return None
            session = request.get("session_id") or _path_session(endpoint)
            return claude.ManagedAgentsEvents(session, self.models.get(session or ""))
        return None

    def learn(self, event: dict[str, Any], body: bytes) -> None:
        """Keeps the agent's model of a session object in a JSON body."""
        api = event.get("api")
        if api == "sessions" and _claude_sessions(event, event.get("attrs") or {}):
            found = claude.session_model(body)
        elif api == "agents.sessions":
            found = openai_agents.session_model(body)
        elif api == "threads.runs":
            run = foundry.run_model(body)
            if run is not None:
                if len(self.runs) >= _MAX_SESSIONS:
                    self.runs.clear()
                self.runs[run[0]] = run[1]
            return
        else:
            return
        if found is not None:
            if len(self.models) >= _MAX_SESSIONS:
                self.models.clear()
            self.models[found[0]] = found[1]


def _claude_sessions(event: dict[str, Any], attrs: dict[str, Any]) -> bool:
    """Whether `event` is a request to Claude Managed Agents sessions (the Claude API, or a
    host serving its shape)."""
    if event.get("api") != "sessions":
        return False
    if event.get("provider") == "anthropic":
        return True
    evidence = attrs.get("provider_evidence")
    return isinstance(evidence, dict) and evidence.get("shape") == "anthropic"


def _path_session(endpoint: str) -> str | None:
    """The `{id}` of `.../sessions/{id}/events[/stream]`."""
    parts = endpoint.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "sessions" and parts[i + 1]:
            return parts[i + 1]
    return None
