"""The inner steps of one Amazon Bedrock Agents `InvokeAgent` response, read from the `trace`
events of its response stream (`enableTrace=True`) as the caller consumes them.

Each `trace` event is a `TracePart` (`agentId`, `agentAliasId`, `agentVersion`, `sessionId`,
`collaboratorName`, `callerChain`, `eventTime`, `trace`) whose `trace` holds one phase:
`preProcessingTrace`, `orchestrationTrace`, `postProcessingTrace`, `routingClassifierTrace`
(model steps and tool steps), `guardrailTrace`, `failureTrace` or `customOrchestrationTrace`
(https://docs.aws.amazon.com/bedrock/latest/userguide/trace-events.html). A phase part carries
one of:

- `modelInvocationInput` (`foundationModel`, `type`, `traceId`, and the prompt `text`, never
  read) and later `modelInvocationOutput` (`metadata.usage.{inputTokens, outputTokens}`,
  `metadata.totalTimeMs`, `traceId`): one `model_call` (`provider="aws.bedrock"`,
  `api="invoke_model"`: the agent sends the model the whole prompt it built, as InvokeModel
  does) per output, paired with its input by `traceId`;
- `invocationInput` (`invocationType`: `ACTION_GROUP`, `KNOWLEDGE_BASE`,
  `ACTION_GROUP_CODE_INTERPRETER`, `AGENT_COLLABORATOR`; `FINISH` is no step) and later an
  `observation` with the same `traceId` (its `metadata.totalTimeMs`): one `tool_call` — an
  action group (`tool_kind="function"`, the tool named `actionGroupName` with the function or
  `verb apiPath` in attrs), a knowledge-base lookup (`tool_kind="knowledge_base"`,
  `effect="read"`, the knowledge base id in attrs), the code interpreter
  (`tool_kind="code_interpreter"`) or a collaborator agent (`tool_kind="agent"`).

Only these named, non-content fields are read: prompts, rationales, raw responses, parameters,
request bodies, retrieved references and outputs are never looked at, let alone kept.

A step whose output never came (the stream ended early, failed, or a `failureTrace` ended the
turn) is recorded with what was seen and `status="error"` (`cancelled` when the caller closed
the stream), and counted as a capture error when the stream itself ended without it.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

__all__ = ["AgentTrace"]

#: Trace phases with model and tool steps, and the step name they get in attrs.
_PHASES = {
    "orchestrationTrace": "orchestration",
    "preProcessingTrace": "pre_processing",
    "postProcessingTrace": "post_processing",
    "routingClassifierTrace": "routing_classifier",
}
_TOOL_KINDS = {
    "ACTION_GROUP": "function",
    "KNOWLEDGE_BASE": "knowledge_base",
    "ACTION_GROUP_CODE_INTERPRETER": "code_interpreter",
    "AGENT_COLLABORATOR": "agent",
}
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def _ns(value: Any) -> int | None:
    """A botocore timestamp (an aware `datetime`) in ns since the epoch."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        delta: _dt.timedelta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class _Pending:
    """A step whose input was seen, waiting for its output."""

    __slots__ = ("event", "start", "seen")

    def __init__(self, event: dict[str, Any], start: int | None, seen: int) -> None:
        self.event = event
        self.start = start  # the part's eventTime, if given
        self.seen = seen  # when statemeter read the part (wall clock ns)


class AgentTrace:
    """Collects the inner steps of one InvokeAgent turn from its trace parts."""

    __slots__ = ("venue", "models", "tools", "steps", "unfinished")

    def __init__(self, venue: str | None) -> None:
        self.venue = venue
        # traceId -> steps waiting for their output, in order.
        self.models: dict[Any, list[_Pending]] = {}
        self.tools: dict[Any, list[_Pending]] = {}
        self.steps: list[dict[str, Any]] = []
        self.unfinished = 0

    def observe(self, part: Any, seen: int) -> None:
        """Reads one `TracePart` (the `trace` member of a stream event)."""
        if not isinstance(part, dict):
            return
        trace = part.get("trace")
        if not isinstance(trace, dict):
            return
        for key, phase in trace.items():
            step = _PHASES.get(key)
            if step is not None and isinstance(phase, dict):
                self._phase(step, phase, part, seen)
            elif key == "failureTrace" and isinstance(phase, dict):
                self._fail_pending("error")

    def _attrs(self, part: dict[str, Any], step: str, trace_id: Any) -> dict[str, Any]:
        attrs: dict[str, Any] = {"aws.bedrock.agent.step": step}
        agent = _str(part.get("agentId"))
        if agent:
            attrs["gen_ai.agent.id"] = agent
        collaborator = _str(part.get("collaboratorName"))
        if collaborator:
            attrs["gen_ai.agent.name"] = collaborator
        session = _str(part.get("sessionId"))
        if session:
            attrs["gen_ai.conversation.id"] = session
        if _str(trace_id):
            attrs["aws.bedrock.trace_id"] = trace_id
        return attrs

    def _phase(self, step: str, phase: dict[str, Any], part: dict[str, Any], seen: int) -> None:
        when = _ns(part.get("eventTime"))
        mi = phase.get("modelInvocationInput")
        if isinstance(mi, dict):
            tid = mi.get("traceId")
            attrs = self._attrs(part, step, tid)
            prompt_type = _str(mi.get("type"))
            if prompt_type:
                attrs["aws.bedrock.agent.prompt_type"] = prompt_type
            event = {
                "kind": "model_call",
                "provider": "aws.bedrock",
                "model": _str(mi.get("foundationModel")) or "unknown",
                "api": "invoke_model",
                "attrs": attrs,
            }
            if self.venue:
                event["venue"] = self.venue
            self.models.setdefault(tid, []).append(_Pending(event, when, seen))
        mo = phase.get("modelInvocationOutput")
        if isinstance(mo, dict):
            tid = mo.get("traceId")
            waiting = self.models.get(tid)
            if waiting:
                pending = waiting.pop(0)
            else:  # an output whose input was not in the stream
                event = {
                    "kind": "model_call",
                    "provider": "aws.bedrock",
                    "model": "unknown",
                    "api": "invoke_model",
                    "attrs": self._attrs(part, step, tid),
                }
                if self.venue:
                    event["venue"] = self.venue
                pending = _Pending(event, None, seen)
            meta = mo.get("metadata")
            if isinstance(meta, dict):
                usage = meta.get("usage")
                if isinstance(usage, dict):
                    tokens_in = _int(usage.get("inputTokens"))
                    tokens_out = _int(usage.get("outputTokens"))
                    if tokens_in is not None:
                        pending.event["input_tokens"] = tokens_in
                    if tokens_out is not None:
                        pending.event["output_tokens"] = tokens_out
            self._close(pending, meta, when, seen, "ok")
        ii = phase.get("invocationInput")
        if isinstance(ii, dict):
            tool = self._tool(ii, part, step)
            if tool is not None:
                self.tools.setdefault(ii.get("traceId"), []).append(_Pending(tool, when, seen))
        ob = phase.get("observation")
        if isinstance(ob, dict):
            waiting = self.tools.get(ob.get("traceId"))
            if waiting:
                pending = waiting.pop(0)
                meta = None
                for key in (
                    "actionGroupInvocationOutput",
                    "knowledgeBaseLookupOutput",
                    "codeInterpreterInvocationOutput",
                    "agentCollaboratorInvocationOutput",
                ):
                    out = ob.get(key)
                    if isinstance(out, dict) and isinstance(out.get("metadata"), dict):
                        meta = out["metadata"]
                        break
                self._close(pending, meta, when, seen, "ok")

    def _tool(self, ii: dict[str, Any], part: dict[str, Any], step: str) -> dict[str, Any] | None:
        kind = _TOOL_KINDS.get(ii.get("invocationType"))  # type: ignore[arg-type]
        if kind is None:
            return None  # FINISH, or a type this reader does not know: no tool ran
        attrs = self._attrs(part, step, ii.get("traceId"))
        effect = "none"
        if kind == "function":
            ag = ii.get("actionGroupInvocationInput")
            ag = ag if isinstance(ag, dict) else {}
            name = _str(ag.get("actionGroupName")) or "action_group"
            function = _str(ag.get("function"))
            if function:
                attrs["aws.bedrock.action_group.function"] = function
            api_path = _str(ag.get("apiPath"))
            if api_path:
                attrs["aws.bedrock.action_group.api_path"] = api_path
            verb = _str(ag.get("verb"))
            if verb:
                attrs["http.request.method"] = verb.upper()
            execution = _str(ag.get("executionType"))
            if execution:
                attrs["aws.bedrock.action_group.execution_type"] = execution
            call_id = _str(ag.get("invocationId"))
            if call_id:
                attrs["gen_ai.tool.call.id"] = call_id
        elif kind == "knowledge_base":
            kb = ii.get("knowledgeBaseLookupInput")
            kb_id = _str(kb.get("knowledgeBaseId")) if isinstance(kb, dict) else None
            name = "knowledge_base"
            effect = "read"
            if kb_id:
                attrs["gen_ai.data_source.id"] = kb_id
        elif kind == "code_interpreter":
            name = "code_interpreter"
        else:
            collab = ii.get("agentCollaboratorInvocationInput")
            collab = collab if isinstance(collab, dict) else {}
            name = _str(collab.get("agentCollaboratorName")) or "agent_collaborator"
            arn = _str(collab.get("agentCollaboratorAliasArn"))
            if arn:
                attrs["aws.bedrock.agent_collaborator.alias_arn"] = arn
        return {
            "kind": "tool_call",
            "tool": name,
            "tool_kind": kind,
            "effect": effect,
            "attrs": attrs,
        }

    def _close(
        self, pending: _Pending, meta: Any, when: int | None, seen: int, status: str
    ) -> None:
        event = pending.event
        total_ms = _int(meta.get("totalTimeMs")) if isinstance(meta, dict) else None
        start = _ns(meta.get("startTime")) if isinstance(meta, dict) else None
        end = when if when is not None else seen
        if total_ms is not None:
            duration = total_ms * 1_000_000
            if start is None:
                start = end - duration
        else:
            if start is None:
                start = pending.start if pending.start is not None else pending.seen
            duration = max(end - start, 0)
        event["ts"] = start
        event["duration_ns"] = duration
        event["status"] = status
        self.steps.append(event)

    def _fail_pending(self, status: str) -> int:
        """Records every step still waiting for its output with `status`; returns how many."""
        count = 0
        for table in (self.models, self.tools):
            for waiting in table.values():
                for pending in waiting:
                    self._close(pending, None, None, pending.seen, status)
                    count += 1
            table.clear()
        return count

    def finish(self, outcome: str) -> list[dict[str, Any]]:
        """The steps in order of their start, those that never finished among them (with
        status `error`, or `cancelled` when the caller closed the stream). Sets `unfinished`
        to the count of steps cut off by a stream that ended (or failed) without them."""
        cut = self._fail_pending("cancelled" if outcome == "cancelled" else "error")
        if outcome != "cancelled":
            self.unfinished = cut
        self.steps.sort(key=lambda e: e["ts"])
        return self.steps
