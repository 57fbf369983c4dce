"""statemeter benchmarks: every peer runs in the same process, in the same run; results are
ratios, written to benches/results/*.json and printed. Not a test: nothing here fails on time.

    python benches/run.py [--quick] [--only recording,sustained]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import statemeter as sm

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "statemeter": sm.__version__}


def best_ns_per_op(fn: Callable[[int], None], n: int, repeats: int) -> float:
    """Runs fn(n) `repeats` times and returns the best time per operation in ns."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter_ns()
        fn(n)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def bench_recording(quick: bool) -> dict:
    """Session.model_call (6 scalar args, file ledger, batch) vs dict append vs an OTel span."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class NoOpExporter(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

        def shutdown(self):
            pass

    n = 50_000 if quick else 200_000
    repeats = 3 if quick else 7
    tmp = tempfile.mkdtemp()
    meter = sm.Meter(os.path.join(tmp, "bench.db"))
    session = meter.session("bench", venue="azure")
    model_call = session.model_call

    def statemeter_calls(k: int) -> None:
        for i in range(k):
            model_call(provider="openai", model="gpt-5", api="chat.completions", venue="azure",
                       input_tokens=i, output_tokens=42)

    sink: list = []

    def dict_append(k: int) -> None:
        append = sink.append
        for i in range(k):
            append({"provider": "openai", "model": "gpt-5", "api": "chat.completions",
                    "venue": "azure", "input_tokens": i, "output_tokens": 42})
        sink.clear()

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NoOpExporter()))
    tracer = provider.get_tracer("bench")

    def otel_spans(k: int) -> None:
        for i in range(k):
            span = tracer.start_span("chat gpt-5", attributes={
                "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-5",
                "gen_ai.operation.name": "chat", "server.address": "azure",
                "gen_ai.usage.input_tokens": i, "gen_ai.usage.output_tokens": 42})
            span.end()

    # Interleave the peers so drift affects all alike.
    out = {"statemeter": float("inf"), "dict_append": float("inf"), "otel_span": float("inf")}
    for _ in range(repeats):
        out["dict_append"] = min(out["dict_append"], best_ns_per_op(dict_append, n, 1))
        out["statemeter"] = min(out["statemeter"], best_ns_per_op(statemeter_calls, n, 1))
        meter.flush()
        out["otel_span"] = min(out["otel_span"], best_ns_per_op(otel_spans, n // 4, 1))
    meter.close()
    provider.shutdown()
    return {
        "ns_per_event": out,
        "ratio_vs_dict_append": out["statemeter"] / out["dict_append"],
        "otel_over_statemeter": out["otel_span"] / out["statemeter"],
        "targets": {"ratio_vs_dict_append": "<= 2.5", "otel_over_statemeter": ">= 20"},
        "events_per_repeat": n,
    }


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_sustained(quick: bool) -> dict:
    """1,000,000 model calls recorded and flushed to a file ledger; throughput and memory."""
    n = 200_000 if quick else 1_000_000
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "sustained.db")
    meter = sm.Meter(path)
    s = meter.session("bench", venue="azure")
    model_call = s.model_call
    gc.collect()
    rss0 = rss_mib()
    peak = rss0
    t0 = time.perf_counter()
    for i in range(n):
        model_call(provider="openai", model="gpt-5", api="chat.completions", venue="azure",
                   input_tokens=i, output_tokens=42)
        if i % 100_000 == 0:
            peak = max(peak, rss_mib())
    meter.flush()
    elapsed = time.perf_counter() - t0
    peak = max(peak, rss_mib())
    meter.close()
    size = os.path.getsize(path)
    return {
        "events": n,
        "seconds": elapsed,
        "events_per_s": n / elapsed,
        "rss_growth_mib": peak - rss0,
        "ledger_bytes_per_event": size / n,
        "target_events_per_s": ">= 300000",
    }


BENCHES = {"recording": bench_recording, "sustained": bench_sustained}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated benchmark names")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    info = machine()
    for name in args.only.split(","):
        result = BENCHES[name](args.quick)
        result["machine"] = info
        result["quick"] = args.quick
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"== {name}")
        print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
