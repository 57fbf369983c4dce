"""Inner steps of a provider-managed runtime: what reading a 100-step Amazon Bedrock Agents
InvokeAgent trace adds to consuming its response stream. Target: <= 5 % CPU.

The stream is replayed from the fixture tests/data/runtimes/bedrock_invoke_agent_trace.json:
its pre-processing model invocation, then its orchestration model invocation + action group
pair repeated, then its final orchestration model invocation and answer: 100 steps (model
invocations and tool calls), as AWS event-stream binary frames. Both variants parse the frames with
botocore's own `EventStream` (the parser a boto3 client uses) and iterate every event; the
metered one goes through the botocore capture's hooks (`before-call` on the serialized request,
`after-call` wrapping the stream) into a file ledger (batch durability) and records the outer
call and its 100 children (read by the Rust trace reader, recorded in one call per turn). A
third variant goes through the same hooks into a target that is not a `Session` and drops what
it is given: what reading the trace and handing its steps over as mappings costs without
recording them. CPU is the process's (all threads: the ledger writer counts), each block
flushed before its clock stops. Blocks are short (10 turns) and alternate, many of them, so
that neighbouring blocks of the variants share the machine's load; overheads are the medians
of the per-block ratios against the neighbouring plain block (and the best blocks' ratios).
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import statemeter as sm

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "runtimes" / "bedrock_invoke_agent_trace.json"
sys.path.insert(0, str(ROOT / "tests"))


def _turn(steps: int) -> list[list[Any]]:
    """A turn of `steps` inner steps built from the fixture's own parts."""
    events = json.loads(FIXTURE.read_text())["events"]
    pre, orch_call, orch_tool = events[0:2], events[2:4], events[5:7]
    finish, chunk = events[11:13] + events[13:14], events[16]
    out = list(pre)
    n = 1  # the pre-processing model call
    i = 0
    while n < steps - 1:  # the final orchestration call follows
        tid = f"t-orc-{i}"
        for t, p in orch_call + orch_tool:
            p = copy.deepcopy(p)
            phase = p["trace"]["orchestrationTrace"]
            next(iter(phase.values()))["traceId"] = tid
            out.append([t, p])
        n += 2
        i += 1
    out += finish + [chunk]
    return out


class _Dropped:
    """A recording target that keeps nothing (the read-only variant)."""

    def record(self, event: Any) -> None:
        return None

    def model_call(self, **fields: Any) -> None:
        return None

    def tool_call(self, tool: Any, **fields: Any) -> None:
        return None

    def state_op(self, op: Any, **fields: Any) -> None:
        return None

    def _note_integration_error(self, source: str) -> None:
        raise RuntimeError(f"{source} failed while reading")


class _Raw:
    """The raw HTTP body botocore's EventStream reads (`.stream()` yields chunks)."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames

    def stream(self) -> Any:
        return iter(self.frames)

    def close(self) -> None:
        pass


def bench_bedrock_agent_trace(quick: bool) -> dict:
    import boto3
    from botocore.eventstream import EventStream
    from botocore.parsers import EventStreamJSONParser
    from statemeter.integrations import botocore as capture
    from test_integrations_botocore import event_message

    turn = _turn(100)
    frames = [event_message(t, p) for t, p in turn]
    client = boto3.client(
        "bedrock-agent-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    model = client.meta.service_model.operation_model("InvokeAgent")
    shape = model.output_shape.members["completion"]
    parser = EventStreamJSONParser()
    from botocore.awsrequest import prepare_request_dict

    request = client._serializer.serialize_to_request(
        {
            "agentId": "AGENT12345",
            "agentAliasId": "TSTALIASID",
            "sessionId": "session-001",
            "inputText": "is claim 4411 covered?",
            "enableTrace": True,
        },
        model,
    )
    prepare_request_dict(
        request, endpoint_url="https://bedrock-agent-runtime.us-east-1.amazonaws.com"
    )
    http = SimpleNamespace(status_code=200)

    def stream() -> Any:
        return EventStream(_Raw(frames), shape, parser, "InvokeAgent")

    def plain(n: int) -> None:
        for _ in range(n):
            for _ev in stream():
                pass

    with tempfile.TemporaryDirectory() as tmp:
        meter = sm.Meter(Path(tmp) / "bench.db")
        session = meter.session("bench", runtime="bedrock-agents", runtime_session_id="session-001")
        hooks = capture._Capture(capture.Target(session, "botocore"), None, None)
        reader = capture._Capture(capture.Target(_Dropped(), "botocore"), None, None)

        def through(hooks: Any, n: int) -> None:
            for _ in range(n):
                ctx: dict[str, Any] = {}
                hooks.before_call(model=model, params=request, context=ctx)
                parsed = {
                    "completion": stream(),
                    "sessionId": "session-001",
                    "ResponseMetadata": {"RequestId": "req-1", "HTTPHeaders": {}},
                }
                hooks.after_call(http_response=http, parsed=parsed, model=model, context=ctx)
                for _ev in parsed["completion"]:
                    pass

        def metered(n: int) -> None:
            through(hooks, n)
            meter.flush()

        def read(n: int) -> None:
            through(reader, n)

        runs = 5 if quick else 10
        blocks = 8 if quick else 40
        plain(5)
        metered(5)
        read(5)
        variants = {"plain": plain, "read": read, "metered": metered}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        wall: dict[str, list[float]] = {k: [] for k in variants}
        order = list(variants)
        for b in range(blocks):
            for name in order if b % 2 == 0 else reversed(order):
                c0, w0 = time.process_time_ns(), time.perf_counter_ns()
                variants[name](runs)
                cpu[name].append((time.process_time_ns() - c0) / runs / 1000)
                wall[name].append((time.perf_counter_ns() - w0) / runs / 1000)
        meter.flush()
        events = meter.ledger.events()
        children = sum(1 for p in events.to_pylist() if p["parent_id"])
        outer = len(meter.ledger.events(kind="model_call")) - sum(
            1 for p in events.to_pylist() if p["parent_id"] and p["kind"] == "model_call"
        )
        meter.close()
    ratios = [m / p for m, p in zip(cpu["metered"], cpu["plain"], strict=True)]
    read_ratios = [m / p for m, p in zip(cpu["read"], cpu["plain"], strict=True)]
    wall_ratios = [m / p for m, p in zip(wall["metered"], wall["plain"], strict=True)]
    overhead = statistics.median(ratios) - 1
    return {
        "steps_per_turn": 100,
        "events_per_stream": len(frames),
        "stream_bytes": sum(map(len, frames)),
        "runs_per_block": runs,
        "blocks": blocks,
        "consume_cpu_us": round(statistics.median(cpu["plain"]), 1),
        "consume_metered_cpu_us": round(statistics.median(cpu["metered"]), 1),
        "consume_read_only_cpu_us": round(statistics.median(cpu["read"]), 1),
        "read_only_overhead_cpu_pct": round((statistics.median(read_ratios) - 1) * 100, 2),
        "added_cpu_us": round(
            statistics.median(cpu["metered"]) - statistics.median(cpu["plain"]), 1
        ),
        "overhead_cpu_pct": round(overhead * 100, 2),
        "overhead_cpu_pct_best": round((min(cpu["metered"]) / min(cpu["plain"]) - 1) * 100, 2),
        "overhead_wall_pct": round((statistics.median(wall_ratios) - 1) * 100, 2),
        "target_pct": 5.0,
        "meets_target": overhead <= 0.05,
        "children_per_turn": children // max(outer, 1),
        "events_recorded": len(events),
    }


BENCHES = {"runtime_bedrock_agent_trace": bench_bedrock_agent_trace}
