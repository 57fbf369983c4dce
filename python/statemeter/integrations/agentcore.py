"""The inner calls of Amazon Bedrock AgentCore Runtime sessions (and Bedrock Managed Agents
running there), from the runtime's own observability spans.

    import statemeter as sm
    from statemeter.integrations import agentcore

    meter = sm.Meter("audit.db")
    # ... the client's InvokeAgentRuntime calls recorded by integrations.botocore ...
    agentcore.import_spans("spans.otlp.json", meter)

An agent on AgentCore Runtime exports OpenTelemetry GenAI spans (through ADOT to CloudWatch's
`aws/spans` log group, in the OTLP/JSON shape); each span carries the runtime session id in
`session.id` (the `runtimeSessionId` / `X-Amzn-Bedrock-AgentCore-Runtime-Session-Id` the client
sent). `import_spans` maps the spans as `integrations.otel.import_otlp_json` does (model calls,
tool calls, memory operations; content never read) and then links them to the client's side:

- a span whose runtime session id is the `request.runtimeSessionId` of an `InvokeAgentRuntime`
  call in the ledger becomes a child of that call (`parent_id`, unless its parent span is an
  event of the same import) in that call's session. With several calls in one runtime session,
  the call whose time covers the span's start is its parent (else the latest that started
  before it, else the first);
- a runtime session no recorded call names gets a `session_start` of its own (`runtime`,
  `runtime_session_id`, session id = the runtime session id, at its first span; its event id
  is derived from the runtime session id, so importing again records it once).

Either way the inner calls sit in a session that runs in the provider's runtime: stateless at
call level, stateful at session level.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statemeter import _core
from statemeter._records import FROM_RECORDS, event_key
from statemeter.errors import invalid
from statemeter.integrations import otel

if TYPE_CHECKING:
    from statemeter import Meter

__all__ = ["import_spans"]

_OUTER = f"""SELECT * FROM (SELECT {event_key("id")}, {event_key("session_id")},
{event_key("ts")}, {event_key("duration_ns")}, {event_key("request.runtimeSessionId")} AS rs,
{event_key("api")} AS api, r.seq AS seq FROM {FROM_RECORDS}
WHERE instr(r.record, 'runtimeSessionId') > 0)
WHERE api = 'invoke_agent_runtime' AND rs IN (SELECT value FROM json_each(?1)) ORDER BY seq"""
_NAMESPACE = uuid.UUID("5f0c8a5e-6d1b-4c3e-9a57-2b7f3e1d9c40")


def import_spans(
    path_or_mapping: str | os.PathLike[str] | bytes | Mapping[str, Any],
    meter: Meter,
    *,
    runtime: str = "agentcore",
    venues: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Records an AgentCore Runtime session's spans (an OTLP/JSON document, JSON Lines of them,
    its bytes, or the parsed mapping) into `meter`, linked by runtime session id to the
    `InvokeAgentRuntime` calls the ledger holds. `runtime` names the runtime in the
    `session_start` of a runtime session no recorded call names. All or nothing, as
    `import_otlp_json`; returns its counts plus ``linked`` (events made children of a recorded
    call) and ``runtime_sessions`` (session starts recorded for sessions no call names)."""
    if not isinstance(runtime, str) or not runtime:
        raise invalid("runtime", "must be a non-empty string")
    try:
        if isinstance(path_or_mapping, Mapping):
            text = json.dumps(path_or_mapping, allow_nan=False)
        elif isinstance(path_or_mapping, (bytes, bytearray, memoryview)):
            text = bytes(path_or_mapping).decode("utf-8")
        else:
            text = Path(path_or_mapping).read_text(encoding="utf-8")
        events, skipped = _core._otel_import(text, dict(venues) if venues else None)
    except (UnicodeError, TypeError, ValueError, RecursionError) as exc:
        if isinstance(exc, _core.StatemeterError):
            raise
        raise invalid("otlp", f"not an OTLP/JSON document: {exc}") from exc
    captured = otel._captured_already(meter, events)
    if captured:
        events = [e for e in events if e["id"] not in captured]
    meter.flush()
    sessions = sorted({e["session_id"] for e in events if isinstance(e.get("session_id"), str)})
    outer: dict[str, list[tuple[str, str | None, int, int]]] = {}
    if sessions:
        for eid, sid, ts, dur, rs, _api, _seq in meter.ledger.sql(_OUTER, [json.dumps(sessions)]):
            outer.setdefault(rs, []).append((eid, sid, int(ts), int(dur or 0)))
    ids = {e["id"] for e in events}
    starts: dict[str, dict[str, Any]] = {}
    linked = 0
    for e in events:
        rs = e.get("session_id")
        if not isinstance(rs, str):
            continue
        e["attrs"]["aws.bedrock_agentcore.runtime_session_id"] = rs
        calls = outer.get(rs)
        if calls:
            eid, sid, _, _ = _covering(calls, int(e["ts"]))
            if e.get("parent_id") not in ids:
                e["parent_id"] = eid
            if sid is not None:
                e["session_id"] = sid
            linked += 1
        else:
            start = starts.get(rs)
            if start is None or e["ts"] < start["ts"]:
                starts[rs] = {
                    "id": str(uuid.uuid5(_NAMESPACE, f"{runtime}\n{rs}")),
                    "kind": "session_start",
                    "session_id": rs,
                    "runtime": runtime,
                    "runtime_session_id": rs,
                    "ts": e["ts"],
                }
    new_starts = _not_recorded(meter, list(starts.values()))
    meter._record_all(new_starts + events)
    meter._note_spans(len(events), len(captured), 0, skipped)
    return {
        "seen": len(events) + len(captured) + sum(skipped.values()),
        "recorded": len(events),
        "joined": len(captured),
        "errors": 0,
        "skipped": skipped,
        "linked": linked,
        "runtime_sessions": len(new_starts),
    }


def _covering(
    calls: list[tuple[str, str | None, int, int]], ts: int
) -> tuple[str, str | None, int, int]:
    """The call whose time covers `ts`, else the latest that started before it, else the
    first."""
    before = None
    for call in calls:
        if call[2] <= ts <= call[2] + call[3]:
            return call
        if call[2] <= ts:
            before = call
    return before or calls[0]


def _not_recorded(meter: Meter, starts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The session starts whose id the ledger does not hold yet (an earlier import of the same
    runtime session recorded it, perhaps at an earlier first span)."""
    if not starts:
        return []
    known = {
        row[0]
        for row in meter.ledger.sql(
            f"SELECT eid FROM (SELECT {event_key('id')} AS eid FROM {FROM_RECORDS})"
            " WHERE eid IN (SELECT value FROM json_each(?1))",
            [json.dumps([s["id"] for s in starts])],
        )
    }
    return [s for s in starts if s["id"] not in known]
