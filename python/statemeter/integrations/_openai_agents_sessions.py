"""The inner steps of an OpenAI Agents API session (`OpenAI-Beta: agents=v1`), read from its
event stream (`GET /v1/agents/sessions/{id}/events`, server-sent events; the same resource on
Bedrock Managed Agents' `/openai/v1/agents/sessions`) as the httpx capture observes it.

Events read (the `openai` SDK's `AgentSessionEvent` union):

- `agent.session.turn.completed`, `.failed`, `.cancelled` (`turn`: `id`, `agent_id`,
  `subagent_id`, `created_at`, `started_at`, `completed_at` in Unix seconds; `usage`:
  `input_tokens` (cached included), `input_tokens_details.cached_tokens`, `output_tokens`,
  `output_tokens_details.reasoning_tokens`): one `model_call` (`api="agents.turn"`) per turn
  with the model work of that turn. The API reports usage per turn, not per model response
  ("best effort and may change"): a turn's several model responses are one event. The model
  is the session agent's (`agent.model` of the session object), learned from session objects
  the same client received, else `unknown`.
- `agent.session.turn.item.done` (`item`): a `tool_call` per tool item — `function_call`
  (`name`, `call_id`, `tool_kind="function"`), `mcp_call` (`name`, `server_label`,
  `tool_kind="mcp"`), `command_execution` (`tool_kind="shell"`, `duration_ms`),
  `web_search_call`, `computer_use_call`, and the subagent calls (`create_subagent_call`,
  `send_subagent_input_call`, `resume_subagent_call`, `wait_for_subagents_call`,
  `interrupt_subagent_call`, `close_subagent_call`: `tool_kind="agent"`); `status` from the
  item's (`failed`, `incomplete` -> `error`).

Messages, reasoning, arguments, commands and outputs are never kept.
"""

from __future__ import annotations

import json
from typing import Any

from statemeter.integrations._json_values import nonempty_str, positive_int
from statemeter.integrations._sse_steps import SseEvents

__all__ = ["AgentsSessionEvents", "session_model"]

_TURN_ENDS = {
    "agent.session.turn.completed": "ok",
    "agent.session.turn.failed": "error",
    "agent.session.turn.cancelled": "cancelled",
}
_ITEM_DONE = "agent.session.turn.item.done"
_WANTED = frozenset({*_TURN_ENDS, _ITEM_DONE})
_TOOLS = {
    "function_call": "function",
    "mcp_call": "mcp",
    "command_execution": "shell",
    "web_search_call": "web_search",
    "computer_use_call": "computer_use",
    "create_subagent_call": "agent",
    "send_subagent_input_call": "agent",
    "resume_subagent_call": "agent",
    "wait_for_subagents_call": "agent",
    "interrupt_subagent_call": "agent",
    "close_subagent_call": "agent",
}
_S = 1_000_000_000


def session_model(body: bytes) -> tuple[str, str] | None:
    """(session id, the agent's model) from an agent session object's JSON, if it is one."""
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("object") != "agent.session":
        return None
    agent = obj.get("agent")
    model = nonempty_str(agent.get("model")) if isinstance(agent, dict) else None
    sid = nonempty_str(obj.get("id"))
    return (sid, model) if sid and model else None


class AgentsSessionEvents:
    """Collects the steps of one agent-session events response."""

    __slots__ = ("session", "model", "sse", "steps", "errors", "clock")

    def __init__(self, session: str | None, model: str | None, clock: Any) -> None:
        self.session = session
        self.model = model or "unknown"
        self.clock = clock  # wall-clock ns: when an item without timestamps was read
        self.sse = SseEvents(lambda name: name is None or name in _WANTED, self._take)
        self.steps: list[dict[str, Any]] = []
        self.errors = 0

    def feed(self, chunk: bytes) -> None:
        self.sse.feed(chunk)

    def read_page(self, body: bytes) -> None:
        """A JSON page of events (`{"data": [...]}`)."""
        try:
            obj = json.loads(body)
        except ValueError:
            self.errors += 1
            return
        items = obj.get("data") if isinstance(obj, dict) else None
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict):
                self._take(None, item)

    def _attrs(self, turn_id: Any) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if self.session:
            attrs["gen_ai.conversation.id"] = self.session
        if nonempty_str(turn_id):
            attrs["openai.agents.turn_id"] = turn_id
        return attrs

    def _take(self, name: str | None, ev: dict[str, Any]) -> None:
        if self.session is None:  # a session created by this very request
            self.session = nonempty_str(ev.get("session_id"))
        kind = nonempty_str(ev.get("type")) or name
        status = _TURN_ENDS.get(kind) if kind else None
        if status is not None:
            self._turn(ev, status)
        elif kind == _ITEM_DONE:
            item = ev.get("item")
            if isinstance(item, dict):
                self._item(item, ev.get("turn_id"))

    def _turn(self, ev: dict[str, Any], status: str) -> None:
        turn = ev.get("turn")
        turn = turn if isinstance(turn, dict) else {}
        usage = ev.get("usage")
        if not isinstance(usage, dict):
            usage = turn.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        details = usage.get("input_tokens_details")
        out_details = usage.get("output_tokens_details")
        tokens_in = positive_int(usage.get("input_tokens"))
        cached = positive_int(details.get("cached_tokens")) if isinstance(details, dict) else 0
        attrs = self._attrs(ev.get("turn_id") or turn.get("id"))
        reasoning = 0
        if isinstance(out_details, dict):
            reasoning = positive_int(out_details.get("reasoning_tokens"))
        if reasoning:
            attrs["gen_ai.usage.reasoning.output_tokens"] = reasoning
        sub = nonempty_str(turn.get("subagent_id"))
        if sub:
            attrs["openai.agents.subagent_id"] = sub
        agent = nonempty_str(turn.get("agent_id"))
        if agent:
            attrs["gen_ai.agent.id"] = agent
        event: dict[str, Any] = {
            "kind": "model_call",
            "provider": "openai",
            "model": self.model,
            "api": "agents.turn",
            "input_tokens": tokens_in,
            "output_tokens": positive_int(usage.get("output_tokens")),
            "cached_tokens": min(cached, tokens_in),
            "status": status,
            "attrs": attrs,
        }
        start = positive_int(turn.get("started_at")) or positive_int(turn.get("created_at"))
        end = positive_int(turn.get("completed_at"))
        if start:
            event["ts"] = start * _S
            if end >= start:
                event["duration_ns"] = (end - start) * _S
        self.steps.append(event)

    def _item(self, item: dict[str, Any], turn_id: Any) -> None:
        kind = _TOOLS.get(item.get("type"))  # type: ignore[arg-type]
        if kind is None:
            return  # messages and reasoning: no tool ran
        item_type = item["type"]
        attrs = self._attrs(turn_id or item.get("turn_id"))
        if kind == "function":
            name = nonempty_str(item.get("name")) or "unknown"
            call_id = nonempty_str(item.get("call_id"))
            if call_id:
                attrs["gen_ai.tool.call.id"] = call_id
        elif kind == "mcp":
            name = nonempty_str(item.get("name")) or "unknown"
            server = nonempty_str(item.get("server_label"))
            if server:
                attrs["mcp_server"] = server
        else:
            name = item_type
        status = item.get("status")
        event: dict[str, Any] = {
            "kind": "tool_call",
            "tool": name,
            "tool_kind": kind,
            "status": "error" if status in ("failed", "incomplete") else "ok",
            "attrs": attrs,
        }
        seen = self.clock()
        duration_ms = item.get("duration_ms")
        if isinstance(duration_ms, int) and not isinstance(duration_ms, bool) and duration_ms >= 0:
            event["duration_ns"] = duration_ms * 1_000_000
            event["ts"] = seen - event["duration_ns"]
        else:
            event["ts"] = seen
        self.steps.append(event)

    def finish(self, outcome: str) -> list[dict[str, Any]]:
        """The steps in the order they were reported; `errors` counts malformed and cut-off
        events."""
        self.sse.close()
        self.errors += self.sse.malformed + (1 if self.sse.truncated else 0)
        return self.steps
