"""`Session` objects cached by (session_id, agent, tenant) so that integrations record through
the keyword methods (`model_call`, `tool_call`, `state_op`), which skip building and converting
a whole event mapping for `Meter.record`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from statemeter import Meter, Session

_MAX = 1024


class SessionCache:
    """Sessions of one meter; cleared when it holds more than 1024 (sessions are cheap)."""

    __slots__ = ("_meter", "_cache")

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self._cache: dict[tuple[str, str | None, str | None], Session] = {}

    def get(self, session_id: str, agent: str | None = None, tenant: str | None = None) -> Session:
        key = (session_id, agent, tenant)
        session = self._cache.get(key)
        if session is None:
            if len(self._cache) >= _MAX:
                self._cache.clear()
            session = self._meter.session(agent, session_id=session_id, tenant=tenant)
            self._cache[key] = session
        return session

    def emit(self, event: dict[str, Any]) -> None:
        """Records a ``model_call``, ``tool_call`` or ``state_op`` given as an event mapping
        (with ``session_id``) through its session's keyword method."""
        kind = event.pop("kind")
        session = self.get(
            event.pop("session_id"), event.pop("agent", None), event.pop("tenant", None)
        )
        if kind == "model_call":
            session.model_call(**event)
        elif kind == "tool_call":
            session.tool_call(event.pop("tool"), **event)
        else:
            session.state_op(event.pop("op"), **event)
