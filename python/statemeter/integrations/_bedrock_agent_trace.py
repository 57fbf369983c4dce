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
_OUTPUTS = (
    "actionGroupInvocationOutput",
    "knowledgeBaseLookupOutput",
    "codeInterpreterInvocationOutput",
    "agentCollaboratorInvocationOutput",
)
_TOOL_KINDS = {
    "ACTION_GROUP": "function",
    "KNOWLEDGE_BASE": "knowledge_base",
    "ACTION_GROUP_CODE_INTERPRETER": "code_interpreter",
    "AGENT_COLLABORATOR": "agent",
}


def _ns(value: Any) -> int | None:
    """A botocore timestamp (a `datetime`, UTC when naive) in ns since the epoch, exact to
    the microsecond it carries (a double holds the epoch's microseconds exactly)."""
    if value.__class__ is not _dt.datetime:
        return None
    when: _dt.datetime = value
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return round(when.timestamp() * 1_000_000) * 1000


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class _Pending:
    """A step whose input was seen, waiting for its output."""

    __slots__ = ("event", "start", "seen")

    def __init__(self, event: dict[str, Any], start: int | None, seen: int) -> None:
        self.event = event
        self.start = start  # the input part's eventTime (a datetime), if given
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
        """The step and its trace id; the agent and session only where they differ from the
        outer call's (a collaborator agent of a multi-agent team)."""
        attrs: dict[str, Any] = {"aws.bedrock.agent.step": step}
        if trace_id.__class__ is str and trace_id:
            attrs["aws.bedrock.trace_id"] = trace_id
        collaborator = part.get("collaboratorName")
        if collaborator:
            attrs["gen_ai.agent.name"] = str(collaborator)
            agent = _str(part.get("agentId"))
            if agent:
                attrs["gen_ai.agent.id"] = agent
        return attrs

    def _phase(self, step: str, phase: dict[str, Any], part: dict[str, Any], seen: int) -> None:
        # A phase part carries one member (a union); rationales and other members are skipped
        # without being looked at.
        for member, body in phase.items():
            if body.__class__ is not dict:
                continue
            if member == "modelInvocationOutput":
                self._model_output(step, body, part, seen)
            elif member == "modelInvocationInput":
                tid = body.get("traceId")
                event = {
                    "kind": "model_call",
                    "provider": "aws.bedrock",
                    "model": _str(body.get("foundationModel")) or "unknown",
                    "api": "invoke_model",
                    "attrs": self._attrs(part, step, tid),
                }
                if self.venue:
                    event["venue"] = self.venue
                pending = _Pending(event, part.get("eventTime"), seen)
                waiting = self.models.get(tid)
                if waiting is None:
                    self.models[tid] = [pending]
                else:
                    waiting.append(pending)
            elif member == "invocationInput":
                tool = self._tool(body, part, step)
                if tool is not None:
                    pending = _Pending(tool, part.get("eventTime"), seen)
                    self.tools.setdefault(body.get("traceId"), []).append(pending)
            elif member == "observation":
                waiting = self.tools.get(body.get("traceId"))
                if waiting:
                    meta = None
                    for key in _OUTPUTS:
                        out = body.get(key)
                        if out is not None:
                            meta = out.get("metadata") if out.__class__ is dict else None
                            break
                    self._close(waiting.pop(0), meta, part.get("eventTime"), seen, "ok")

    def _model_output(
        self, step: str, body: dict[str, Any], part: dict[str, Any], seen: int
    ) -> None:
        tid = body.get("traceId")
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
        meta = body.get("metadata")
        if meta.__class__ is dict:
            usage = meta.get("usage")
            if usage.__class__ is dict:
                tokens_in = _int(usage.get("inputTokens"))
                tokens_out = _int(usage.get("outputTokens"))
                if tokens_in is not None:
                    pending.event["input_tokens"] = tokens_in
                if tokens_out is not None:
                    pending.event["output_tokens"] = tokens_out
        self._close(pending, meta, part.get("eventTime"), seen, "ok")

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

    def _close(self, pending: _Pending, meta: Any, when: Any, seen: int, status: str) -> None:
        """Times a step: it ends at its output's `eventTime` (else when statemeter read the
        output) and lasted `metadata.totalTimeMs` (else since its input)."""
        event = pending.event
        is_meta = meta.__class__ is dict
        total_ms = _int(meta.get("totalTimeMs")) if is_meta else None
        start = _ns(meta.get("startTime")) if is_meta else None
        end = _ns(when)
        if end is None:
            end = seen
        if total_ms is not None:
            duration = total_ms * 1_000_000
            if start is None:
                start = end - duration
        else:
            if start is None:
                start = _ns(pending.start)
                if start is None:
                    start = pending.seen
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
