"""Which HTTP responses report the inner steps of a provider-managed agent runtime, and the
reader for each (the httpx capture asks per response)."""

from __future__ import annotations

from typing import Any

from statemeter.integrations._claude_managed_agents import ManagedAgentsEvents, session_model

__all__ = ["RuntimeSteps"]

_MAX_SESSIONS = 4096


class RuntimeSteps:
    """One instrumented client's view of runtime sessions: the model each Claude Managed Agents
    session runs (learned from the session objects its responses carried)."""

    __slots__ = ("models",)

    def __init__(self) -> None:
        self.models: dict[str, str] = {}

    def reader(self, event: dict[str, Any]) -> ManagedAgentsEvents | None:
        """A reader of the steps in the response to `event`'s request, if it reports any."""
        attrs = event.get("attrs") or {}
        if not _claude_sessions(event, attrs):
            return None
        endpoint = event.get("endpoint") or ""
        if attrs.get("http.request.method") != "GET":
            return None
        if not (endpoint.endswith("/events/stream") or endpoint.endswith("/events")):
            return None
        request = event.get("request") or {}
        session = request.get("session_id") or _path_session(endpoint)
        return ManagedAgentsEvents(session, self.models.get(session) if session else None)

    def learn(self, event: dict[str, Any], body: bytes) -> None:
        """Keeps the model of a Claude Managed Agents session object in a JSON body."""
        if not _claude_sessions(event, event.get("attrs") or {}):
            return
        found = session_model(body)
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
