"""The inner steps of a Claude Managed Agents session, read from its session event stream
(`GET /v1/sessions/{id}/events/stream`, server-sent events) or a page of its events
(`GET /v1/sessions/{id}/events`, JSON `data[]`), as the httpx capture observes them.

Events read (the `managed-agents-2026-04-01` session events; every event has `id`, `type`,
`processed_at`):

- `span.model_request_start` and `span.model_request_end` (`model_request_start_id`,
  `model_usage.{input_tokens, output_tokens, cache_read_input_tokens,
  cache_creation_input_tokens}`, `is_error`): one `model_call` (`provider="anthropic"`,
  `api="messages"`) per model request, from its start to its end. The events do not name the
  model: it is the session agent's (`agent.model.id` of the session object), which the capture
  learns from `POST /v1/sessions` and `GET /v1/sessions/{id}` responses it saw, else `unknown`.
- `agent.tool_use` (`name`) until its `agent.tool_result` (`tool_use_id`, `is_error`): a
  `tool_call` of the agent toolset (`bash`: `tool_kind="shell"`; `read`, `glob`, `grep`:
  `effect="read"`; `write`, `edit`: `effect="write"`; `web_search`, `web_fetch`), or, when the
  tool's `file_path` (or `path`) lies under `/mnt/memory/` where memory stores are mounted, a
  `state_op` on the memory store (`read` or `write`, `holder="provider"`, `scope="user"`);
- `agent.mcp_tool_use` (`name`, `mcp_server_name`) until its `agent.mcp_tool_result`: a
  `tool_call` with `tool_kind="mcp"`;
- `agent.custom_tool_use` (`name`): a `tool_call` with `tool_kind="function"` that the client
  runs itself (the session waits for its `user.custom_tool_result`).

Message text, thinking, tool inputs and results are never kept: a tool input is looked at only
for whether its path is a memory mount.
"""

from __future__ import annotations

import json
from typing import Any

from statemeter.integrations._json_values import nonempty_str, positive_int
from statemeter.integrations._sse_steps import SseEvents, iso_ns

__all__ = ["ManagedAgentsEvents", "session_model"]

_WANTED = frozenset(
    {
        "span.model_request_start",
        "span.model_request_end",
        "agent.tool_use",
        "agent.tool_result",
        "agent.mcp_tool_use",
        "agent.mcp_tool_result",
        "agent.custom_tool_use",
    }
)
_EFFECTS = {"read": "read", "glob": "read", "grep": "read", "write": "write", "edit": "write"}
_KINDS = {"bash": "shell", "web_search": "web_search", "web_fetch": "web_fetch"}
_MEMORY = "/mnt/memory/"


def session_model(body: bytes) -> tuple[str, str] | None:
    """(session id, the agent's model) from a session object's JSON, if it is one."""
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("type") != "session":
        return None
    agent = obj.get("agent")
    model = agent.get("model") if isinstance(agent, dict) else None
    model_id = model.get("id") if isinstance(model, dict) else model
    sid = nonempty_str(obj.get("id"))
    name = nonempty_str(model_id)
    if sid and name:
        return sid, name
    return None


class ManagedAgentsEvents:
    """Collects the steps of one session-events response."""

    __slots__ = ("model", "session", "sse", "starts", "tools", "steps", "errors", "seen")

    def __init__(self, session: str | None, model: str | None) -> None:
        self.session = session
        self.model = model or "unknown"
        self.sse = SseEvents(lambda name: name is None or name in _WANTED, self._take)
        self.starts: dict[str, int | None] = {}
        self.tools: dict[str, tuple[dict[str, Any], int | None]] = {}
        self.steps: list[dict[str, Any]] = []
        self.errors = 0
        self.seen = 0

    def feed(self, chunk: bytes) -> None:
        self.sse.feed(chunk)

    def read_page(self, body: bytes) -> None:
        """A JSON page of events (`{"data": [...], ...}`)."""
        try:
            obj = json.loads(body)
        except ValueError:
            self.errors += 1
            return
        items = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(items, list):
            return
        for item in items:
            if isinstance(item, dict):
                self._take(None, item)

    def _attrs(self, ev: dict[str, Any]) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if self.session:
            attrs["gen_ai.conversation.id"] = self.session
        thread = nonempty_str(ev.get("session_thread_id"))
        if thread:
            attrs["anthropic.session_thread_id"] = thread
        return attrs

    def _take(self, name: str | None, ev: dict[str, Any]) -> None:
        kind = nonempty_str(ev.get("type")) or name
        if kind not in _WANTED:
            return
        self.seen += 1
        when = iso_ns(ev.get("processed_at"))
        eid = nonempty_str(ev.get("id"))
        if kind == "span.model_request_start":
            if eid:
                self.starts[eid] = when
        elif kind == "span.model_request_end":
            start_id = nonempty_str(ev.get("model_request_start_id"))
            start = self.starts.pop(start_id, None) if start_id else None
            usage = ev.get("model_usage")
            usage = usage if isinstance(usage, dict) else {}
            read = positive_int(usage.get("cache_read_input_tokens"))
            write = positive_int(usage.get("cache_creation_input_tokens"))
            attrs = self._attrs(ev)
            if write:
                attrs["gen_ai.usage.cache_creation.input_tokens"] = write
            if eid:
                attrs["anthropic.event_id"] = eid
            self._step(
                {
                    "kind": "model_call",
                    "provider": "anthropic",
                    "model": self.model,
                    "api": "messages",
                    "input_tokens": positive_int(usage.get("input_tokens")) + read + write,
                    "output_tokens": positive_int(usage.get("output_tokens")),
                    "cached_tokens": read,
                    "status": "error" if ev.get("is_error") is True else "ok",
                    "attrs": attrs,
                },
                start if start is not None else when,
                when,
            )
        elif kind in ("agent.tool_use", "agent.mcp_tool_use", "agent.custom_tool_use"):
            step = self._tool(kind, ev)
            if kind == "agent.custom_tool_use" or not eid:
                self._step(step, when, when)  # the client runs it: no result in this stream
            else:
                self.tools[eid] = (step, when)
        else:  # agent.tool_result, agent.mcp_tool_result
            use = nonempty_str(ev.get("tool_use_id") or ev.get("mcp_tool_use_id"))
            item = self.tools.pop(use, None) if use else None
            if item is not None:
                step, start = item
                if ev.get("is_error") is True:
                    if step["kind"] == "tool_call":
                        step["status"] = "error"
                    else:
                        step["attrs"]["error.type"] = "tool_error"
                self._step(step, start, when)

    def _tool(self, kind: str, ev: dict[str, Any]) -> dict[str, Any]:
        name = nonempty_str(ev.get("name")) or "unknown"
        attrs = self._attrs(ev)
        eid = nonempty_str(ev.get("id"))
        if eid:
            attrs["gen_ai.tool.call.id"] = eid
        if kind == "agent.mcp_tool_use":
            server = nonempty_str(ev.get("mcp_server_name"))
            if server:
                attrs["mcp_server"] = server
            return {
                "kind": "tool_call",
                "tool": name,
                "tool_kind": "mcp",
                "status": "ok",
                "attrs": attrs,
            }
        if kind == "agent.custom_tool_use":
            return {
                "kind": "tool_call",
                "tool": name,
                "tool_kind": "function",
                "status": "ok",
                "attrs": attrs,
            }
        effect = _EFFECTS.get(name)
        tool_input = ev.get("input")
        path = None
        if isinstance(tool_input, dict):
            path = tool_input.get("file_path") or tool_input.get("path")
        if effect is not None and isinstance(path, str) and path.startswith(_MEMORY):
            attrs["anthropic.tool"] = name
            return {
                "kind": "state_op",
                "op": effect,
                "store": "memory_store",
                "holder": "provider",
                "scope": "user",
                "attrs": attrs,
            }
        return {
            "kind": "tool_call",
            "tool": name,
            "tool_kind": _KINDS.get(name, "builtin"),
            "effect": effect or "none",
            "status": "ok",
            "attrs": attrs,
        }

    def _step(self, event: dict[str, Any], start: int | None, end: int | None) -> None:
        if start is not None:
            event["ts"] = start
            if end is not None:
                event["duration_ns"] = max(end - start, 0)
        self.steps.append(event)

    def finish(self, outcome: str) -> list[dict[str, Any]]:
        """The steps in the order they ended; model requests that never ended are recorded
        from their start with `status="error"` (`cancelled` when the caller closed the stream
        before the provider's end of turn). Tool uses still waiting for their result (a
        confirmation or the client's own tool) are recorded as they are. `errors` counts
        malformed and truncated events."""
        self.sse.close()
        self.errors += self.sse.malformed + (1 if self.sse.truncated else 0)
        status = "cancelled" if outcome == "cancelled" else "error"
        for start in self.starts.values():
            self._step(
                {
                    "kind": "model_call",
                    "provider": "anthropic",
                    "model": self.model,
                    "api": "messages",
                    "status": status,
                    "attrs": self._attrs({}),
                },
                start,
                None,
            )
        if self.starts and outcome != "cancelled":
            self.errors += 1
        self.starts.clear()
        for step, start in self.tools.values():
            self._step(step, start, None)
        self.tools.clear()
        return self.steps
