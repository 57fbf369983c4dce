"""Integrations: what each adds to an offline agent run. Target: <= 5%.

Run it on a release build (`make build`; a debug extension is several times slower). Two figures
per framework (file ledger, batch durability):
- ``run``: the same run timed without statemeter and with it (and with named peers), alternating
  in blocks; overheads are medians of the per-block ratios, on wall and on process CPU time.
- ``added_cpu_pct``: what the framework hands the integration during one run is captured and
  replayed many times into it (integration_replay.py): the exact CPU it adds, recording and
  ledger writer included, as a share of the run's own CPU time. Steadier on a busy machine.

- openai_agents: `Runner.run` of a triage agent (Responses-style offline model) that calls a
  tool, hands off, and answers; tracing on (no exporter) vs + `MeterProcessor`, and an
  `SQLiteSession` vs `MeteredSession(SQLiteSession)`.
- langgraph: a compiled graph (fake chat model, ToolNode) on an `InMemorySaver`, a new thread
  per run, vs `MeterCallbackHandler` alone, `MeteredCheckpointer` alone and both, with an A/A
  control and a no-op LangChain handler, in rotating blocks with per-thread CPU
  (`bench_langgraph`).
- otel: the same graph instrumented with OpenTelemetry GenAI spans (an agent span, chat and
  execute_tool spans) on an SDK `TracerProvider` with a batch processor and a no-op exporter,
  vs + `MeterSpanProcessor`.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import integration_replay as replay
import statemeter as sm
from common import instructions_per_op


def _compare(
    base: Callable[[int], None],
    metered: Callable[[int], None],
    runs: int,
    blocks: int,
    **peers: Callable[[int], None],
) -> dict[str, Any]:
    """Times `runs` runs per block, alternating the variants `blocks` times (the order flips
    every block). Overheads are medians of the per-block ratios to the run without statemeter,
    which is robust to drift: ``overhead_pct`` on wall time, ``overhead_cpu_pct`` on the
    process's CPU time (all threads, so the ledger writer's work counts); ``*_best`` compare the
    fastest blocks, which estimates the uncontended cost on a busy machine."""
    variants = {"without": base, "with": metered, **peers}
    for fn in variants.values():
        fn(max(5, runs // 5))  # warm up
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    for b in range(blocks):
        for name in order if b % 2 == 0 else reversed(order):
            w0, c0 = time.perf_counter_ns(), time.process_time_ns()
            variants[name](runs)
            wall[name].append((time.perf_counter_ns() - w0) / runs / 1000)
            cpu[name].append((time.process_time_ns() - c0) / runs / 1000)
    out: dict[str, Any] = {"runs_per_block": runs, "blocks": blocks}
    for name in order:
        out[f"us_per_run_{name}"] = round(statistics.median(wall[name]), 1)
    out["cpu_us_per_run_without_best"] = round(min(cpu["without"]), 1)
    for name in order[1:]:
        prefix = "" if name == "with" else f"{name}_"
        for label, t in (("", wall), ("cpu_", cpu)):
            ratios = [x / y for x, y in zip(t[name], t["without"], strict=True)]
            out[f"{prefix}overhead_{label}pct"] = round((statistics.median(ratios) - 1) * 100, 2)
            # Interference only ever adds time: the best blocks estimate the uncontended cost.
            out[f"{prefix}overhead_{label}pct_best"] = round(
                (min(t[name]) / min(t["without"]) - 1) * 100, 2
            )
    return out


# Runs per block and blocks of an A/B run: many short blocks. The machine's speed drifts within
# seconds; with blocks of 10 runs a variant's block is next to the others' within a few tens of
# milliseconds, and the median of 100 per-block ratios is steadier than that of 25 blocks of 40
# (the same runs in all). Whole processes still differ (see `_across_processes`).
_BLOCKS = (10, 100)
_PROCESSES = 5
_AGENTS_CALLBACKS = ("on_trace_start", "on_trace_end", "on_span_start", "on_span_end")


# Set in the child processes of `_across_processes`: a bench function returns its A/B run only.
_AB_ONLY = "STATEMETER_BENCH_AB_ONLY"


def _across_processes(name: str, quick: bool, first: dict[str, Any]) -> dict[str, Any]:
    """The A/B run `first` with the same run in fresh processes: `_PROCESSES` in all. Whole
    processes differ by more than the blocks of one do (the integration's cost is mostly cache
    misses, which move with where a process's code and data land: one build read 3.1-7.9%
    wall from one process to the next): each figure is the median across processes, the
    per-process ones are kept (``per_process``)."""
    if quick:
        return first
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_integrations as b; "
        f"print(json.dumps(b.bench_{name}(False)['run']))"
    )
    env = dict(os.environ, **{_AB_ONLY: "1"})
    runs = [first]
    for _ in range(_PROCESSES - 1):
        child = subprocess.run(
            [sys.executable, "-c", code, str(Path(__file__).parent)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
    out: dict[str, Any] = {}
    for key, value in first.items():
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if key == "cpu_us_per_run_without_best":
            out[key] = min(values)
        elif isinstance(value, (int, float)) and key not in ("runs_per_block", "blocks"):
            out[key] = round(statistics.median(values), 2)
        else:
            out[key] = value
    out["processes"] = len(runs)
    out["per_process"] = {
        key: [r.get(key) for r in runs]
        for key in first
        if "overhead" in key and not key.endswith("_best")
    }
    return out


def _added(out: dict[str, Any], added_us: float) -> None:
    """Adds the replay figure: CPU statemeter adds per run, and as % of the run's own CPU."""
    out["added_cpu_us_per_run"] = round(added_us, 1)
    out["added_cpu_pct"] = round(added_us / out["run"]["cpu_us_per_run_without_best"] * 100, 2)


def _timed(cls: type, methods: tuple[str, ...]) -> tuple[type, list[int]]:
    """A subclass of the processor `cls` that adds the wall time of each call of `methods` (on
    the thread that makes it, the agent's) to the returned one-item list, in ns."""
    spent = [0]

    def timed(name: str) -> Callable[..., Any]:
        inner = getattr(cls, name)

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return inner(self, *args, **kwargs)
            finally:
                spent[0] += time.perf_counter_ns() - t0

        return method

    return type(f"Timed{cls.__name__}", (cls,), {m: timed(m) for m in methods}), spent


def _in_run(out: dict[str, Any], spent: list[int], run: Callable[[int], None], k: int) -> None:
    """Adds the time the integration's callbacks take in the run itself (`run` with the timed
    processor installed; after a warm-up of k // 5 runs), beside the replayed figure."""
    run(max(5, k // 5))
    spent[0] = 0
    run(k)
    out["in_run_callbacks_us_per_run"] = round(spent[0] / k / 1000, 1)


def _ledger() -> sm.Meter:
    if os.environ.get("STATEMETER_BENCH_LEDGER") == "memory":
        return sm.Meter()
    return sm.Meter(os.path.join(tempfile.mkdtemp(), "bench.db"))


# -- OpenAI Agents SDK --------------------------------------------------------------------------


def bench_openai_agents(quick: bool) -> dict[str, Any]:
    import agents
    from agents import Agent, Runner, SQLiteSession, function_tool
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.testing.model import assistant_message, function_call
    from agents.tracing import response_span
    from agents.usage import Usage, model_usage_to_span_usage
    from openai.types.responses import Response
    from statemeter.integrations.openai_agents import MeteredSession, MeterProcessor

    ids = itertools.count()

    class Scripted(Model):
        def __init__(self, steps: list[list[Any]]) -> None:
            self.steps = itertools.cycle(steps)

        async def get_response(
            self,
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            *,
            previous_response_id,
            conversation_id,
            prompt,
        ):
            with response_span(disabled=tracing.is_disabled()) as span:
                output = next(self.steps)
                usage = Usage(requests=1, input_tokens=100, output_tokens=10, total_tokens=110)
                span.span_data.usage = model_usage_to_span_usage(usage)
                span.span_data.response = Response(
                    id=f"resp_{next(ids)}",
                    created_at=0,
                    model="gpt-5",
                    object="response",
                    output=output,
                    parallel_tool_calls=True,
                    tool_choice="auto",
                    tools=[],
                    previous_response_id=previous_response_id,
                )
                return ModelResponse(output=output, usage=usage, response_id=None)

        def stream_response(self, *args, **kwargs):
            raise NotImplementedError

    @function_tool
    def get_order(order_id: str) -> str:
        """Look up an order."""
        return "shipped"

    billing = Agent(name="billing", model=Scripted([[assistant_message("refund issued")]]))
    triage = Agent(
        name="triage",
        tools=[get_order],
        handoffs=[billing],
        model=Scripted(
            [
                [function_call("get_order", {"order_id": "42"}, call_id="c1")],
                [function_call("transfer_to_billing", {}, call_id="c2")],
            ]
        ),
    )
    agents.set_tracing_disabled(False)
    meter = _ledger()
    processor = MeterProcessor(meter, base_url="https://api.openai.com/v1")
    loop = asyncio.new_event_loop()

    def runs(k: int, *, session: Any = None) -> None:
        async def go() -> None:
            for _ in range(k):
                await Runner.run(triage, "where is order 42?", session=session)

        loop.run_until_complete(go())

    def without(k: int) -> None:
        agents.set_trace_processors([])
        runs(k)

    def with_meter(k: int) -> None:
        agents.set_trace_processors([processor])
        runs(k)

    class NoOp(agents.TracingProcessor):
        def on_trace_start(self, trace: Any) -> None: ...
        def on_trace_end(self, trace: Any) -> None: ...
        def on_span_start(self, span: Any) -> None: ...
        def on_span_end(self, span: Any) -> None: ...
        def shutdown(self) -> None: ...
        def force_flush(self) -> None: ...

    def noop_processor(k: int) -> None:
        agents.set_trace_processors([NoOp()])
        runs(k)

    n, blocks = (20, 7) if quick else _BLOCKS
    out = {"run": _compare(without, with_meter, n, blocks, noop_processor=noop_processor)}
    if os.environ.get(_AB_ONLY):
        return out
    out["run"] = _across_processes("openai_agents", quick, out["run"])
    plain = SQLiteSession("bench")
    metered = MeteredSession(SQLiteSession("bench-metered"), meter)

    def session_without(k: int) -> None:
        agents.set_trace_processors([])
        runs(k, session=plain)
        asyncio.run(plain.clear_session())

    def session_with(k: int) -> None:
        agents.set_trace_processors([processor])
        runs(k, session=metered)
        asyncio.run(metered.clear_session())

    out["run_with_session_memory"] = _compare(session_without, session_with, n // 2, blocks)
    timed_cls, spent = _timed(MeterProcessor, _AGENTS_CALLBACKS)
    timed = timed_cls(meter, base_url="https://api.openai.com/v1")

    def timed_runs(k: int) -> None:
        agents.set_trace_processors([timed])
        runs(k)

    _in_run(out, spent, timed_runs, 50 if quick else 300)
    capture, calls = replay.agents_capture()
    agents.set_trace_processors([capture])
    runs(1)
    agents.set_trace_processors([])
    fresh = _ledger()
    _added(
        out,
        replay.agents_added_cpu(
            calls,
            MeterProcessor(fresh, base_url="https://api.openai.com/v1"),
            fresh,
            100 if quick else 500,
        ),
    )
    loop.close()
    meter.flush()
    out["events_recorded"] = meter.stats()["written"]
    out["integration_errors"] = meter.stats()["integration_errors"]
    return out


# -- LangGraph ----------------------------------------------------------------------------------


def _graph(checkpointer: Any, traced: Any = None) -> Any:
    """A tool-calling graph on a fake chat model; `traced` wraps node bodies in OTel spans."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    class FakeOpenAI(GenericFakeChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        def _get_ls_params(self, stop: Any = None, **kwargs: Any) -> dict[str, Any]:
            return {"ls_provider": "openai", "ls_model_name": "gpt-4o", "ls_model_type": "chat"}

    usage = {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110}
    model = FakeOpenAI(
        messages=itertools.cycle(
            [
                AIMessage(
                    "",
                    tool_calls=[{"name": "get_order", "args": {"order_id": "42"}, "id": "c1"}],
                    usage_metadata=usage,
                ),
                AIMessage("order 42 shipped", usage_metadata=usage),
            ]
        )
    )

    @tool
    def get_order(order_id: str) -> str:
        """Look up an order."""
        if traced is not None:
            with traced.start_as_current_span(
                "execute_tool get_order",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "get_order",
                },
            ):
                return "shipped"
        return "shipped"

    def agent(state: MessagesState) -> dict[str, Any]:
        if traced is not None:
            from opentelemetry.trace import SpanKind

            with traced.start_as_current_span(
                "chat gpt-4o",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "server.address": "api.openai.com",
                },
            ) as s:
                message = model.invoke(state["messages"])
                s.set_attribute("gen_ai.usage.input_tokens", 100)
                s.set_attribute("gen_ai.usage.output_tokens", 10)
                return {"messages": [message]}
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([get_order]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer, name="support")


def _writer_cpu_ns() -> int:
    """CPU time (ns) used so far by the meter's writer threads (encoder, committer), from
    /proc/self/task/*/schedstat, which counts nanoseconds where /proc's stat counts 10 ms
    ticks (Linux; 0 elsewhere)."""
    total = 0
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return 0
    for task in tasks:
        try:
            if (task / "comm").read_text().startswith("statemeter-"):
                total += int((task / "schedstat").read_text().split()[0])
        except OSError:
            continue  # the thread ended meanwhile
    return total


def _ab_rounds(
    variants: dict[str, Callable[[int], None]], meter: sm.Meter, runs: int, rounds: int
) -> dict[str, Any]:
    """Times blocks of `runs` runs of every variant, round after round, the order rotating so
    that each variant runs in each position equally often. Clocks per block: the process's CPU
    time (every thread: the run's own worker threads and the ledger's writer, with the flush
    of what the block recorded), the calling thread's CPU time, the writer threads' CPU time
    and wall time (before the flush). Added figures are medians of the per-round differences
    against ``without`` in the same round (their interquartile range is the spread);
    ``without_again`` is the same code as ``without``, an A/A control: its figures are the
    method's error under the load of the run. Garbage is collected before each block, outside
    the clocks, so that no block pays for another's."""
    clocks = ("cpu", "thread", "writer", "wall")
    per: dict[str, dict[str, list[float]]] = {v: {c: [] for c in clocks} for v in variants}

    def block(fn: Callable[[int], None]) -> tuple[float, ...]:
        gc.collect()
        meter.flush()
        p0, t0, r0 = time.process_time_ns(), time.thread_time_ns(), _writer_cpu_ns()
        w0 = time.perf_counter_ns()
        fn(runs)
        w1, t1 = time.perf_counter_ns(), time.thread_time_ns()
        meter.flush()
        p1, r1 = time.process_time_ns(), _writer_cpu_ns()
        return tuple(x / runs / 1000 for x in (p1 - p0, t1 - t0, r1 - r0, w1 - w0))

    names = list(variants)
    for fn in variants.values():  # warm up
        block(fn)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            for clock, value in zip(clocks, block(variants[name]), strict=True):
                per[name][clock].append(value)

    def diffs(name: str, clock: str) -> list[float]:
        return [v - b for v, b in zip(per[name][clock], per["without"][clock], strict=True)]

    def pct(name: str, clock: str) -> list[float]:
        base = per["without"][clock]
        return [(v / b - 1) * 100 for v, b in zip(per[name][clock], base, strict=True)]

    def iqr(xs: list[float]) -> float:
        q = statistics.quantiles(xs, n=4)
        return round(q[2] - q[0], 2)

    out: dict[str, Any] = {"runs_per_block": runs, "rounds": rounds}
    for clock in clocks:
        out[f"{clock}_us_per_run"] = {
            v: round(statistics.median(per[v][clock]), 1) for v in variants
        }
    # The fastest block: the run's CPU with the least interference, what a replayed cost (best
    # of three itself) is divided by.
    out["cpu_us_per_run_without_best"] = round(min(per["without"]["cpu"]), 1)
    for name in names[1:]:
        out[name] = {
            "added_cpu_us": round(statistics.median(diffs(name, "cpu")), 1),
            "added_cpu_pct": round(statistics.median(pct(name, "cpu")), 2),
            "added_cpu_pct_spread": iqr(pct(name, "cpu")),
            "added_thread_cpu_us": round(statistics.median(diffs(name, "thread")), 1),
            "added_thread_cpu_pct": round(statistics.median(pct(name, "thread")), 2),
            "added_writer_cpu_us": round(statistics.median(diffs(name, "writer")), 1),
            "added_wall_pct": round(statistics.median(pct(name, "wall")), 2),
            "added_wall_pct_spread": iqr(pct(name, "wall")),
        }
    return out


def _writer_per_group(events: int, gap_s: float, groups: int, flush: bool = False) -> float:
    """Writer-thread CPU (µs) per `events` tool calls recorded together, with `gap_s` seconds
    between the groups (a fresh file ledger, the last flush included), as an agent run records
    a few events every few milliseconds: the encoder's linger (50 ms after the oldest queued
    event) decides how many such groups share a commit. With `flush`, a flush after each
    group commits it alone (what a group costs the writer by itself); without a gap the groups
    run together."""
    meter = _ledger()
    session = meter.session("bench", session_id="bench")
    meter.flush()
    r0 = _writer_cpu_ns()
    for _ in range(groups):
        for _ in range(events):
            session.tool_call("get_order", attrs={"run_id": "r"})
        if flush:
            meter.flush()
        if gap_s:
            time.sleep(gap_s)
    meter.flush()
    used = (_writer_cpu_ns() - r0) / groups / 1000
    meter.close()
    return round(used, 1)


def _langgraph_variants(meter: sm.Meter) -> dict[str, Callable[[int], None]]:
    """`k` runs of the graph of `_graph`, a new thread each: without statemeter, the same
    again (an A/A control), with a LangChain handler that does nothing, with one that ignores
    every callback, with `MeterCallbackHandler`, with `MeteredCheckpointer`, and with both."""
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver
    from statemeter.integrations.langchain import MeterCallbackHandler, MeteredCheckpointer

    plain = _graph(InMemorySaver())
    metered = _graph(MeteredCheckpointer(InMemorySaver(), meter))
    handler = MeterCallbackHandler(meter)

    class NoOp(BaseCallbackHandler):
        run_inline = True

    class Ignoring(BaseCallbackHandler):
        """A handler LangChain hands no callback to (every ignore_* flag set): what the
        run pays for a handler whatever callbacks it takes."""

        run_inline = True
        ignore_llm = ignore_chat_model = ignore_chain = ignore_agent = True
        ignore_retriever = ignore_retry = ignore_custom_event = True

    threads = itertools.count()

    def variant(graph: Any, callbacks: list[Any] | None) -> Callable[[int], None]:
        def run(k: int) -> None:
            for _ in range(k):
                config: dict[str, Any] = {"configurable": {"thread_id": f"t{next(threads)}"}}
                if callbacks:
                    config["callbacks"] = callbacks
                graph.invoke({"messages": [HumanMessage("where?")]}, config)

        return run

    return {
        "without": variant(plain, None),
        "without_again": variant(plain, None),
        "noop_handler": variant(plain, [NoOp()]),
        "ignoring_handler": variant(plain, [Ignoring()]),
        "callbacks": variant(plain, [handler]),
        "checkpointer": variant(metered, None),
        "with": variant(metered, [handler]),
    }


def _langgraph_instructions() -> dict[str, float | None]:
    """Instructions per run of the calling thread, where the callbacks run (callgrind, which
    load cannot move): the difference between 8 and 2 runs of each variant in a process of its
    own, over 6. (The checkpointer's calls run mostly on LangGraph's worker threads.)"""
    env = dict(os.environ, PYTHONHASHSEED="0")
    out: dict[str, float | None] = {}
    for name in ("without", "noop_handler", "ignoring_handler", "callbacks"):
        count = instructions_per_op(
            lambda n, name=name: [sys.executable, __file__, "langgraph-runs", name, str(n)],
            2,
            8,
            env_for=lambda n: env,
        )
        out[name] = round(count) if count is not None else None
    return out


def bench_langgraph(quick: bool) -> dict[str, Any]:
    """The graph of `_graph` on an `InMemorySaver`, a new thread per run. A/B: six variants
    in rotating blocks (`_ab_rounds`): without statemeter, the same again (A/A control), a
    LangChain handler that does nothing (what LangChain's callback machinery costs for any
    handler), `MeterCallbackHandler` alone (the callbacks, which the target names),
    `MeteredCheckpointer` alone, and both (the whole integration). Replay: the callbacks and
    the checkpointer calls of one run captured and replayed into the integration (see
    integration_replay.py)."""
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver
    from statemeter.integrations.langchain import MeterCallbackHandler, MeteredCheckpointer

    meter = _ledger()
    variants = _langgraph_variants(meter)
    runs, rounds = (10, 7) if quick else (20, 41)
    ab = _ab_rounds(variants, meter, runs, rounds)
    base_cpu = ab["cpu_us_per_run_without_best"]
    out: dict[str, Any] = {
        # The generic figures every integration section shows (wall and CPU, whole integration).
        "run": {
            "overhead_pct": ab["with"]["added_wall_pct"],
            "overhead_cpu_pct": ab["with"]["added_cpu_pct"],
            "cpu_us_per_run_without": ab["cpu_us_per_run"]["without"],
            "cpu_us_per_run_without_best": base_cpu,
        },
        "ab": ab,
        # The target, "LangGraph callbacks <= 5% of an offline run's CPU", read in the
        # run itself: the run with `MeterCallbackHandler` against the run without it.
        "callbacks_ab_added_cpu_pct": ab["callbacks"]["added_cpu_pct"],
        "callbacks_ab_added_cpu_us": ab["callbacks"]["added_cpu_us"],
        "control_ab_added_cpu_pct": ab["without_again"]["added_cpu_pct"],
    }
    handler_capture, calls = replay.langchain_capture()
    saver_capture, saver_calls = replay.checkpointer_capture(InMemorySaver)
    _graph(saver_capture).invoke(
        {"messages": [HumanMessage("where?")]},
        {"configurable": {"thread_id": "capture"}, "callbacks": [handler_capture]},
    )
    fresh = _ledger()
    k = 100 if quick else 500
    callbacks = replay.langchain_added_cpu(calls, MeterCallbackHandler(fresh), fresh, k)
    checkpointer = replay.checkpointer_added_cpu(
        saver_calls, InMemorySaver(), MeteredCheckpointer(InMemorySaver(), fresh), fresh, k
    )
    out["added_cpu_us_per_run"] = round(callbacks + checkpointer, 1)
    out["added_cpu_pct"] = round((callbacks + checkpointer) / base_cpu * 100, 2)
    # The callbacks' share alone (the checkpointer's reads and writes are a separate figure).
    out["callbacks_added_cpu_us_per_run"] = round(callbacks, 1)
    out["callbacks_added_cpu_pct"] = round(callbacks / base_cpu * 100, 2)
    out["checkpointer_added_cpu_us_per_run"] = round(checkpointer, 1)
    if not quick:
        ins = out["instructions_per_run"] = _langgraph_instructions()
        base = ins.get("without")
        for name in ("noop_handler", "ignoring_handler", "callbacks"):
            got = ins.get(name)
            out[f"{name}_added_instructions_pct"] = (
                round((got - base) / base * 100, 2) if got is not None and base else None
            )
    # What the writer threads take for a run's few events recorded 6 ms apart from the next
    # run's (as in the A/B, where a run records them over a few ms), for the same with a flush
    # after each group (each committed alone), for the same time with no events, and for the
    # events written with many others (as in the replay).
    groups = 50 if quick else 300
    out["writer_cpu_us_per_group_of_5"] = {
        "apart": _writer_per_group(5, 0.006, groups),
        "flushed": _writer_per_group(5, 0.006, groups, flush=True),
        "idle": _writer_per_group(0, 0.006, groups),  # the same 6 ms with nothing recorded
        "together": _writer_per_group(5, 0.0, groups),
    }
    meter.flush()
    out["events_recorded"] = meter.stats()["written"]
    out["integration_errors"] = meter.stats()["integration_errors"]
    return out


# -- OpenTelemetry ------------------------------------------------------------------------------


def bench_otel(quick: bool) -> dict[str, Any]:
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from statemeter.integrations.otel import MeterSpanProcessor

    class NoOpExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    meter = _ledger()
    base_provider = TracerProvider()
    base_provider.add_span_processor(BatchSpanProcessor(NoOpExporter()))
    metered_provider = TracerProvider()
    metered_provider.add_span_processor(BatchSpanProcessor(NoOpExporter()))
    metered_provider.add_span_processor(MeterSpanProcessor(meter))
    timed_cls, spent = _timed(MeterSpanProcessor, ("on_start", "on_end"))
    timed_provider = TracerProvider()
    timed_provider.add_span_processor(BatchSpanProcessor(NoOpExporter()))
    timed_provider.add_span_processor(timed_cls(meter))
    graphs = {}
    for name, provider in (
        ("without", base_provider),
        ("with", metered_provider),
        ("timed", timed_provider),
    ):
        tracer = provider.get_tracer("agent")
        graphs[name] = (_graph(InMemorySaver(), traced=tracer), tracer)
    threads = itertools.count()

    def variant(name: str) -> Callable[[int], None]:
        graph, tracer = graphs[name]

        def run(k: int) -> None:
            for _ in range(k):
                thread = f"t{next(threads)}"
                with tracer.start_as_current_span(
                    "invoke_agent support",
                    attributes={
                        "gen_ai.operation.name": "invoke_agent",
                        "gen_ai.agent.name": "support",
                        "gen_ai.conversation.id": thread,
                    },
                ):
                    graph.invoke(
                        {"messages": [HumanMessage("where?")]},
                        {"configurable": {"thread_id": thread}},
                    )

        return run

    n, blocks = (20, 7) if quick else _BLOCKS
    out = {"run": _compare(variant("without"), variant("with"), n, blocks)}
    if os.environ.get(_AB_ONLY):
        return out
    out["run"] = _across_processes("otel", quick, out["run"])
    _in_run(out, spent, variant("timed"), 50 if quick else 300)
    capture, calls = replay.otel_capture()
    capture_provider = TracerProvider()
    capture_provider.add_span_processor(capture)
    graphs["capture"] = (
        _graph(InMemorySaver(), traced=capture_provider.get_tracer("agent")),
        capture_provider.get_tracer("agent"),
    )
    variant("capture")(1)
    fresh = _ledger()
    _added(
        out, replay.otel_added_cpu(calls, MeterSpanProcessor(fresh), fresh, 100 if quick else 500)
    )
    meter.flush()
    out["events_recorded"] = meter.stats()["written"]
    out["integration_errors"] = meter.stats()["integration_errors"]
    return out


BENCHES = {
    "integration_openai_agents": bench_openai_agents,
    "integration_langgraph": bench_langgraph,
    "integration_otel": bench_otel,
}


if __name__ == "__main__" and sys.argv[1:2] == ["langgraph-runs"]:
    # A child for `_langgraph_instructions`: 3 runs to warm up, then the runs counted.
    runs = _langgraph_variants(_ledger())[sys.argv[2]]
    runs(3)
    runs(int(sys.argv[3]))
