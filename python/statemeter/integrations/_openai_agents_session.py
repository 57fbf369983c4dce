"""`MeteredSession`: OpenAI Agents SDK session memory as ``state_op`` events. Re-exported by
`statemeter.integrations.openai_agents`."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from agents.tracing import get_current_trace

from statemeter._guard import shielded

if TYPE_CHECKING:
    from statemeter import Meter

SOURCE = "openai_agents"


class MeteredSession:
    """Wraps an `agents.memory.Session` and records its reads, writes and deletes.

    ``Runner.run(agent, input, session=MeteredSession(SQLiteSession("u1"), meter))``.
    ``get_items`` is a ``read``, ``add_items`` a ``write``, ``pop_item`` and ``clear_session``
    ``delete``s; ``bytes`` is the size of the items as compact JSON (summed per item), ``key``
    the memory session's id, ``store`` its class name. ``holder`` is ``"provider"`` for
    `OpenAIConversationsSession` (the conversation lives on OpenAI's servers) and ``"client"``
    otherwise (SQLite, Redis, SQLAlchemy, ...); pass ``holder=`` to say otherwise.

    The events join the session of the running trace (its ``group_id`` or ``trace_id``, as
    `MeterProcessor` records it), else the memory session's own id. The SDK reads the memory
    before it starts a run's trace, so give the run ``RunConfig(group_id=session.session_id)``
    to keep every event of a conversation in one session. Everything else is delegated, and the
    wrapper passes the SDK's ``isinstance`` checks for the wrapped class.
    """

    def __init__(
        self, inner: Any, meter: Meter, *, holder: str | None = None, store: str | None = None
    ) -> None:
        self._inner = inner
        self._meter = meter
        self._store = store or type(inner).__name__
        if holder is None:
            holder = "client"
            try:
                from agents.memory import OpenAIConversationsSession

                if isinstance(inner, OpenAIConversationsSession):
                    holder = "provider"
            except ImportError:  # pragma: no cover
                pass
        self._holder = holder

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105 - isinstance(wrapper, type(inner)) holds
        return type(self._inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def session_id(self) -> str:
        return self._inner.session_id  # type: ignore[no-any-return]

    @session_id.setter
    def session_id(self, value: str) -> None:
        self._inner.session_id = value

    @property
    def session_settings(self) -> Any:
        return getattr(self._inner, "session_settings", None)

    @property
    def inner(self) -> Any:
        """The wrapped session."""
        return self._inner

    async def get_items(self, limit: int | None = None, **kw: Any) -> list[Any]:
        start = time.time_ns()
        items = await self._inner.get_items(limit, **kw)
        self._record("read", start, items, {"limit": limit} if limit is not None else None)
        return items  # type: ignore[no-any-return]

    async def add_items(self, items: list[Any], **kw: Any) -> None:
        start = time.time_ns()
        await self._inner.add_items(items, **kw)
        self._record("write", start, items, {"items": len(items)})

    async def pop_item(self, **kw: Any) -> Any:
        start = time.time_ns()
        item = await self._inner.pop_item(**kw)
        self._record("delete", start, [item] if item is not None else [], {"op": "pop_item"})
        return item

    async def clear_session(self, **kw: Any) -> None:
        start = time.time_ns()
        await self._inner.clear_session(**kw)
        self._record("delete", start, [], {"op": "clear_session"})

    def _record(self, op: str, start: int, items: list[Any], extra: dict[str, Any] | None) -> None:
        with shielded(self._meter, SOURCE):
            end = time.time_ns()
            try:
                key = str(self._inner.session_id)
            except Exception:  # noqa: BLE001 - lazily created ids (OpenAIConversationsSession)
                key = None
            trace = get_current_trace()
            session_id = None
            if trace is not None:
                session_id = getattr(trace, "group_id", None) or trace.trace_id
            size = sum(
                len(json.dumps(item, default=str, separators=(",", ":")).encode()) for item in items
            )
            attrs = dict(extra or {})
            if trace is not None:
                attrs["trace_id"] = trace.trace_id
            self._meter.record(
                {
                    "kind": "state_op",
                    "op": op,
                    "store": self._store,
                    "holder": self._holder,
                    "scope": "session",
                    "key": key,
                    "bytes": size,
                    "session_id": session_id or key,
                    "ts": start,
                    "duration_ns": end - start,
                    "attrs": attrs,
                }
            )
