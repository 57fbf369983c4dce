"""Exact added work of an integration: capture what a framework hands to it during one offline
agent run (tracing callbacks, LangChain callbacks, checkpointer calls, OpenTelemetry spans),
then replay that many times with fresh ids into the integration and time the process's CPU
(all threads: the recording, the ledger writer, a final flush). Dividing by the run's own CPU
time gives the overhead without the noise of timing two whole runs against each other on a
busy machine. Used by bench_integrations.py."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from typing import Any

import statemeter as sm


def _cpu_per_run(replay: Callable[[int], None], meter: sm.Meter, k: int) -> float:
    """Best of three: CPU per replayed run, including the flush of what it recorded. The
    replay inputs are built before the clock starts."""
    best = float("inf")
    for rep in range(3):
        t0 = time.process_time_ns()
        replay(rep)
        meter.flush()
        best = min(best, (time.process_time_ns() - t0) / k / 1000)
    return best


# -- OpenAI Agents SDK: TracingProcessor callbacks ----------------------------------------------


def _renamed(obj: Any, n: int, copies: dict[int, Any]) -> Any:
    """A copy of an SDK trace or span with ids unique to replay `n` (one copy per object, so
    a span's start and end see the same one)."""
    got = copies.get(id(obj))
    if got is None:
        got = copy.copy(obj)
        got._trace_id = f"{obj.trace_id}_{n}"
        if hasattr(obj, "_span_id"):
            got._span_id = f"{obj.span_id}_{n}"
            got._parent_id = f"{obj.parent_id}_{n}" if obj.parent_id else None
        copies[id(obj)] = got
    return got


def agents_capture() -> tuple[Any, list[tuple[str, Any]]]:
    """A processor that records its callbacks, and the list they go to."""
    import agents

    calls: list[tuple[str, Any]] = []

    class Capture(agents.TracingProcessor):
        def on_trace_start(self, trace: Any) -> None:
            calls.append(("on_trace_start", trace))

        def on_trace_end(self, trace: Any) -> None:
            calls.append(("on_trace_end", trace))

        def on_span_start(self, span: Any) -> None:
            calls.append(("on_span_start", span))

        def on_span_end(self, span: Any) -> None:
            calls.append(("on_span_end", span))

        def shutdown(self) -> None: ...

        def force_flush(self) -> None: ...

    return Capture(), calls


def agents_added_cpu(
    calls: list[tuple[str, Any]], processor: Any, meter: sm.Meter, k: int
) -> float:
    rounds = []
    for r in range(3):
        for n in range(k):
            copies: dict[int, Any] = {}
            rounds.append(
                [(getattr(processor, m), _renamed(o, r * k + n, copies)) for m, o in calls]
            )

    def replay(r: int) -> None:
        for run in rounds[r * k : (r + 1) * k]:
            for method, obj in run:
                method(obj)

    return _cpu_per_run(replay, meter, k)


# -- LangChain callbacks and LangGraph checkpointer calls --------------------------------------


def langchain_capture() -> tuple[Any, list[tuple[str, tuple[Any, ...], dict[str, Any]]]]:
    from langchain_core.callbacks import BaseCallbackHandler

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    class Capture(BaseCallbackHandler):
        run_inline = True

        def __getattribute__(self, name: str) -> Any:
            if name.startswith("on_"):
                return lambda *a, **kw: calls.append((name, a, kw))
            return object.__getattribute__(self, name)

    return Capture(), calls


def langchain_added_cpu(
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]], handler: Any, meter: sm.Meter, k: int
) -> float:
    rounds = []
    for _ in range(3 * k):
        ids: dict[Any, uuid.UUID] = {}
        run = []
        for method, args, kw in calls:
            kw = dict(kw)
            for key in ("run_id", "parent_run_id"):
                if kw.get(key) is not None:
                    kw[key] = ids.setdefault(kw[key], uuid.uuid4())
            run.append((getattr(handler, method), args, kw))
        rounds.append(run)

    def replay(r: int) -> None:
        for run in rounds[r * k : (r + 1) * k]:
            for method, args, kw in run:
                method(*args, **kw)

    return _cpu_per_run(replay, meter, k)


def checkpointer_capture(saver_cls: type) -> tuple[Any, list[tuple[str, tuple[Any, ...]]]]:
    """An `InMemorySaver`-like saver that records the calls LangGraph makes to it."""
    calls: list[tuple[str, tuple[Any, ...]]] = []

    class Capture(saver_cls):  # type: ignore[misc,valid-type]
        def get_tuple(self, config: Any) -> Any:
            calls.append(("get_tuple", (config,)))
            return super().get_tuple(config)

        def put(self, *args: Any) -> Any:
            calls.append(("put", args))
            return super().put(*args)

        def put_writes(self, *args: Any) -> Any:
            calls.append(("put_writes", args))
            return super().put_writes(*args)

    return Capture(), calls


def checkpointer_added_cpu(
    calls: list[tuple[str, tuple[Any, ...]]], plain: Any, metered: Any, meter: sm.Meter, k: int
) -> float:
    def replay_into(saver: Any) -> Callable[[int], None]:
        bound = [(getattr(saver, m), a) for m, a in calls]

        def replay(r: int) -> None:
            for _ in range(k):
                for method, args in bound:
                    method(*args)

        return replay

    return _cpu_per_run(replay_into(metered), meter, k) - _cpu_per_run(replay_into(plain), meter, k)


# -- OpenTelemetry: span processor -------------------------------------------------------------


def _respan(span: Any, n: int, copies: dict[int, Any]) -> Any:
    """A copy of an SDK span in a trace unique to replay `n`."""
    from opentelemetry.trace import SpanContext

    got = copies.get(id(span))
    if got is None:
        got = copy.copy(span)
        c = span.context
        trace_id = c.trace_id ^ (n + 1)
        got._context = SpanContext(trace_id, c.span_id, c.is_remote, c.trace_flags)
        if span.parent is not None:
            got._parent = SpanContext(trace_id, span.parent.span_id, False)
        copies[id(span)] = got
    return got


def otel_capture() -> tuple[Any, list[tuple[str, Any]]]:
    from opentelemetry.sdk.trace import SpanProcessor

    calls: list[tuple[str, Any]] = []

    class Capture(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            calls.append(("on_start", span))

        def on_end(self, span: Any) -> None:
            calls.append(("on_end", span))

    return Capture(), calls


def otel_added_cpu(calls: list[tuple[str, Any]], processor: Any, meter: sm.Meter, k: int) -> float:
    rounds = []
    for n in range(3 * k):
        copies: dict[int, Any] = {}
        rounds.append([(getattr(processor, m), _respan(sp, n, copies)) for m, sp in calls])

    def replay(r: int) -> None:
        for run in rounds[r * k : (r + 1) * k]:
            for method, span in run:
                method(span)

    return _cpu_per_run(replay, meter, k)
