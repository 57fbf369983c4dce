"""The inner steps of an Azure AI Foundry Agent Service run (threads, runs and run steps: the
Assistants protocol the service follows, https://learn.microsoft.com/rest/api/aifoundry/aiagents),
read by the httpx capture from the run steps that pass through it:

- a listing `GET .../threads/{thread_id}/runs/{run_id}/steps` (`{"object": "list", "data":
  [...]}`) or one step `GET .../steps/{step_id}`, as JSON;
- the `thread.run.step.completed` (`.failed`, `.cancelled`, `.expired`) events of a streamed
  run (`POST .../threads/{thread_id}/runs` or `POST .../threads/runs` with `stream: true`,
  server-sent events).

A run step (`"object": "thread.run.step"`: `id`, `run_id`, `thread_id`, `assistant_id`, `type`
`message_creation` or `tool_calls`, `status` `in_progress`, `completed`, `failed`,
`cancelled` or `expired`, `created_at` and `completed_at` / `failed_at` / `cancelled_at` /
`expired_at` in Unix seconds, `usage.{prompt_tokens, completion_tokens, total_tokens}`, null
while in progress, and `step_details`) is one model call of the agent, with that usage; a
`tool_calls` step adds one `tool_call` per entry of `step_details.tool_calls` (`id`, `type`:
`function`, `code_interpreter`, `file_search`, `bing_grounding`, `azure_ai_search`, `mcp`,
`openapi`, `connected_agent`, ...). A step is recorded once per instrumented client, the first
time it is seen finished: a step still in progress waits for a later listing, and listing the
same run again records nothing new.

The run object (`"object": "thread.run"`) carries the run's cumulative `usage`: it is not the
request's own, so its counts are not read (`crate::capture::usage`); the steps carry them. Its
`model` names the model of the run's steps (learned from run objects the same client received,
else `unknown`). Messages, instructions, arguments and outputs are never kept.
"""

from __future__ import annotations

import json
from typing import Any

from statemeter.integrations._json_values import nonempty_str, positive_int
from statemeter.integrations._sse_steps import SseEvents

__all__ = ["RunSteps", "run_model"]

#: A finished step's status, and the member that says when it ended.
_ENDS = {
    "completed": ("ok", "completed_at"),
    "failed": ("error", "failed_at"),
    "cancelled": ("cancelled", "cancelled_at"),
    "expired": ("error", "expired_at"),
}
#: Tool call types: (tool_kind, effect). Grounding and search over a provider-held index read
#: state; the others act.
_TOOLS = {
    "function": ("function", "none"),
    "azure_function": ("function", "none"),
    "openapi": ("function", "none"),
    "code_interpreter": ("code_interpreter", "none"),
    "file_search": ("knowledge_base", "read"),
    "azure_ai_search": ("knowledge_base", "read"),
    "sharepoint_grounding": ("knowledge_base", "read"),
    "fabric_dataagent": ("knowledge_base", "read"),
    "bing_grounding": ("web_search", "none"),
    "bing_custom_search": ("web_search", "none"),
    "browser_automation": ("computer_use", "none"),
    "computer_use": ("computer_use", "none"),
    "mcp": ("mcp", "none"),
    "connected_agent": ("agent", "none"),
    "deep_research": ("agent", "none"),
}
_STEP_EVENTS = frozenset(f"thread.run.step.{s}" for s in _ENDS)
_S = 1_000_000_000


def run_model(body: bytes) -> tuple[str, str] | None:
    """(run id, its model) from a run object's JSON, if it is one."""
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    return _run_model(obj)


def _run_model(obj: Any) -> tuple[str, str] | None:
    if not isinstance(obj, dict) or obj.get("object") != "thread.run":
        return None
    rid, model = nonempty_str(obj.get("id")), nonempty_str(obj.get("model"))
    return (rid, model) if rid and model else None


class RunSteps:
    """Collects the finished steps of one run-steps response (a JSON listing or step, or a
    streamed run's events). `models` maps run ids to their model and `seen` holds the ids of
    the steps already recorded through this client (both the client's, shared by its
    readers)."""

    __slots__ = ("event", "models", "seen", "sse", "steps", "errors")

    def __init__(self, event: dict[str, Any], models: dict[str, str], seen: set[str]) -> None:
        self.event = event  # the outer call's event: its provider and venue
        self.models = models
        self.seen = seen
        self.sse = SseEvents(lambda name: name is None or name.startswith("thread.run"), self._take)
        self.steps: list[dict[str, Any]] = []
        self.errors = 0

    def feed(self, chunk: bytes) -> None:
        self.sse.feed(chunk)

    def read_page(self, body: bytes) -> None:
        """A JSON listing of steps (`{"object": "list", "data": [...]}`) or one step."""
        try:
            obj = json.loads(body)
        except ValueError:
            self.errors += 1
            return
        if not isinstance(obj, dict):
            return
        items = obj.get("data") if obj.get("object") == "list" else [obj]
        for item in items if isinstance(items, list) else ():
            self._step(item)

    def _take(self, name: str | None, obj: dict[str, Any]) -> None:
        found = _run_model(obj)
        if found is not None:
            self.models[found[0]] = found[1]
        elif name is None or name in _STEP_EVENTS:
            self._step(obj)

    def _step(self, step: Any) -> None:
        if not isinstance(step, dict) or step.get("object") != "thread.run.step":
            return
        sid = nonempty_str(step.get("id"))
        end = _ENDS.get(step.get("status"))  # type: ignore[arg-type]
        if sid is None or end is None or sid in self.seen:
            return  # in progress (a later listing has it finished), or recorded already
        self.seen.add(sid)
        status, end_key = end
        run = nonempty_str(step.get("run_id"))
        attrs: dict[str, Any] = {"azure.ai.agents.step_id": sid}
        thread = nonempty_str(step.get("thread_id"))
        if thread:
            attrs["gen_ai.conversation.id"] = thread
        if run:
            attrs["azure.ai.agents.run_id"] = run
        agent = nonempty_str(step.get("assistant_id"))
        if agent:
            attrs["gen_ai.agent.id"] = agent
        kind = nonempty_str(step.get("type"))
        if kind:
            attrs["azure.ai.agents.step_type"] = kind
        usage = step.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        tokens_in = positive_int(usage.get("prompt_tokens"))
        details = usage.get("prompt_tokens_details")
        cached = positive_int(details.get("cached_tokens")) if isinstance(details, dict) else 0
        model: dict[str, Any] = {
            "kind": "model_call",
            "provider": self.event.get("provider") or "unknown",
            "model": self.models.get(run or "", "unknown"),
            # The service does not say which API it called the model through; the step is
            # one model call sent the thread's messages (the stateless chat shape).
            "api": "chat.completions",
            "input_tokens": tokens_in,
            "output_tokens": positive_int(usage.get("completion_tokens")),
            "cached_tokens": min(cached, tokens_in),
            "status": status,
            "attrs": attrs,
        }
        venue = self.event.get("venue")
        if venue:
            model["venue"] = venue
        start = positive_int(step.get("created_at"))
        stop = positive_int(step.get(end_key))
        if start:
            model["ts"] = start * _S
            if stop >= start:
                model["duration_ns"] = (stop - start) * _S
        self.steps.append(model)
        details = step.get("step_details")
        calls = details.get("tool_calls") if isinstance(details, dict) else None
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                self._tool(call, attrs, model.get("ts"), status)

    def _tool(self, call: dict[str, Any], step_attrs: dict[str, Any], ts: Any, status: str) -> None:
        kind = nonempty_str(call.get("type")) or "unknown"
        tool_kind, effect = _TOOLS.get(kind, ("builtin", "none"))
        body = call.get(kind)
        body = body if isinstance(body, dict) else {}
        attrs = dict(step_attrs)
        call_id = nonempty_str(call.get("id"))
        if call_id:
            attrs["gen_ai.tool.call.id"] = call_id
        server = nonempty_str(body.get("server_label"))
        if server:
            attrs["mcp_server"] = server
        event: dict[str, Any] = {
            "kind": "tool_call",
            "tool": nonempty_str(body.get("name")) or kind,
            "tool_kind": tool_kind,
            "effect": effect,
            "status": status,
            "attrs": attrs,
        }
        if ts is not None:
            event["ts"] = ts  # the step's start: a tool call's own time is not reported
        self.steps.append(event)

    def finish(self, outcome: str) -> list[dict[str, Any]]:
        """The steps in the order they were reported; `errors` counts malformed and cut-off
        events."""
        self.sse.close()
        self.errors += self.sse.malformed + (1 if self.sse.truncated else 0)
        return self.steps
