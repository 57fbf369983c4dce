"""The live span processor's cost per span, against the OpenTelemetry SDK's own span cost.

Three tracer providers take the same traces in alternating blocks: the SDK alone (no processor:
what creating, setting attributes on and ending a span costs), the SDK with a processor that does
nothing (the SDK's dispatch to one processor), and the SDK with `MeterSpanProcessor` on a file
ledger (batch durability; each block ends with `meter.flush()` so the writer's work of the block
is inside it). Two workloads, four spans per trace each:

- ``genai``: an agent run as instrumentations trace it (an `invoke_agent` span naming agent and
  conversation, two `chat` spans with usage and a response id, an `execute_tool` span): three
  events per trace;
- ``plain``: four nested spans that are no GenAI operation (HTTP client spans): no event, each
  counted as skipped.

Per span: CPU of the calling thread (``thread_ns``), CPU of the process (``process_ns``, the
ledger writer's threads included) and wall time, medians over the blocks. The processor's cost is
the difference to the SDK alone; ``ratio`` divides it by the SDK's own span cost.
"""

from __future__ import annotations

import gc
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import statemeter as sm

SPANS_PER_TRACE = 4


def _genai(tracer: Any, i: int) -> None:
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(
        "invoke_agent support",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "gen_ai.conversation.id": f"conv-{i}",
        },
    ):
        for turn in range(2):
            with tracer.start_as_current_span(
                "chat gpt-5",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-5",
                    "server.address": "api.openai.com",
                },
            ) as chat:
                chat.set_attribute("gen_ai.response.id", f"resp_{i}_{turn}")
                chat.set_attribute("gen_ai.usage.input_tokens", 1200)
                chat.set_attribute("gen_ai.usage.output_tokens", 80)
            if turn == 0:
                with tracer.start_as_current_span(
                    "execute_tool lookup",
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "lookup",
                    },
                ):
                    pass


def _plain(tracer: Any, i: int) -> None:
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("SELECT orders", attributes={"db.system": "sqlite"}):
            pass
        with tracer.start_as_current_span(
            "GET", kind=SpanKind.CLIENT, attributes={"http.request.method": "GET"}
        ) as s:
            s.set_attribute("http.response.status_code", 200)
        with tracer.start_as_current_span("render"):
            pass


def bench_otel_processor(quick: bool) -> dict[str, Any]:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from statemeter.integrations.otel import MeterSpanProcessor

    class NoOp(SpanProcessor):
        pass

    meter = sm.Meter(os.path.join(tempfile.mkdtemp(), "bench.db"))
    providers: dict[str, TracerProvider] = {
        "sdk": TracerProvider(),
        "sdk_noop_processor": TracerProvider(),
        "statemeter": TracerProvider(),
    }
    providers["sdk_noop_processor"].add_span_processor(NoOp())
    providers["statemeter"].add_span_processor(MeterSpanProcessor(meter))
    ids = itertools.count()
    traces, blocks = (200, 5) if quick else (2000, 15)

    def variant(name: str, workload: Callable[[Any, int], None]) -> Callable[[int], None]:
        tracer = providers[name].get_tracer("bench")

        def run(k: int) -> None:
            for _ in range(k):
                workload(tracer, next(ids))
            if name == "statemeter":
                meter.flush()  # the writer's work of this block belongs to it

        return run

    out: dict[str, Any] = {"spans_per_trace": SPANS_PER_TRACE, "traces_per_block": traces}
    for label, workload in (("genai", _genai), ("plain", _plain)):
        runs = {name: variant(name, workload) for name in providers}
        for fn in runs.values():
            fn(max(20, traces // 10))  # warm up
        per: dict[str, dict[str, list[float]]] = {
            name: {"thread_ns": [], "process_ns": [], "wall_ns": []} for name in runs
        }
        order = list(runs)
        for b in range(blocks):
            for name in order if b % 2 == 0 else reversed(order):
                gc.collect()
                t0, p0, w0 = time.thread_time_ns(), time.process_time_ns(), time.perf_counter_ns()
                runs[name](traces)
                spans = traces * SPANS_PER_TRACE
                per[name]["thread_ns"].append((time.thread_time_ns() - t0) / spans)
                per[name]["process_ns"].append((time.process_time_ns() - p0) / spans)
                per[name]["wall_ns"].append((time.perf_counter_ns() - w0) / spans)
        result: dict[str, Any] = {
            name: {k: round(statistics.median(v)) for k, v in figures.items()}
            for name, figures in per.items()
        }
        sdk = result["sdk"]
        for clock in ("thread_ns", "process_ns", "wall_ns"):
            # Per block, then the median: robust to drift on a shared machine.
            added = [
                m - s for m, s in zip(per["statemeter"][clock], per["sdk"][clock], strict=True)
            ]
            result[f"processor_{clock}"] = round(statistics.median(added))
            result[f"ratio_{clock}"] = round(statistics.median(added) / sdk[clock], 2)
        out[label] = result
    meter.flush()
    stats = meter.stats()
    out["events_written"] = stats["written"]
    out["spans"] = {k: stats["spans"][k] for k in ("seen", "recorded", "errors")}
    out["integration_errors"] = stats["integration_errors"]
    out["note"] = (
        "processor_* = CPU (thread: the calling thread; process: all threads, the ledger writer "
        "included) and wall time MeterSpanProcessor adds per span over the SDK alone, medians "
        "of per-block differences; ratio_* = that over the SDK's own cost per span"
    )
    return out


BENCHES = {"otel_processor": bench_otel_processor}
