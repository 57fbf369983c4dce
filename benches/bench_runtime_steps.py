"""Inner steps of a provider-managed runtime: what reading a 100-step Amazon Bedrock Agents
InvokeAgent trace adds to consuming its response stream. Target: <= 5 % of the CPU time the
caller spends consuming it.

The stream is replayed from the fixture tests/data/runtimes/bedrock_invoke_agent_trace.json:
its pre-processing model invocation, then its orchestration model invocation + action group
pair repeated, then its final orchestration model invocation and answer: 100 steps (model
invocations and tool calls), as AWS event-stream binary frames. Every variant parses the frames
with botocore's own `EventStream` (the parser a boto3 client uses) and iterates every event:

- plain: no capture;
- read: through the botocore capture's hooks (`before-call` on the serialized request,
  `after-call` wrapping the stream and tapping its raw body) into a target that is not a
  `Session` and drops what it is given: reading the trace and handing its steps over as
  mappings, nothing recorded;
- metered: the same hooks into a `Session` of a file ledger (batch durability): the outer call
  and its 100 children recorded (when the stream ends, the calling thread hands the bytes it
  kept as they came with the outer call to the ledger's writer thread, which reads the trace
  and records the call and its steps), flushed at the end of each block.

The replayed body hands botocore one message per chunk (202 chunks): the capture's work per
chunk (keeping a copy of it and its time) is counted once per message, more often than a
network body of 64 KiB reads would give.

Two ways for streams to follow each other, measured in the same rounds:

- paced (the target's figure): before each stream the ledger's writer has finished the work
  earlier streams handed it (an untimed `meter.flush()` after each stream, in every variant
  alike), as in real use, where an InvokeAgent call takes seconds of network time and the
  writer's work on its ~100 steps (about a millisecond of CPU) is done long before the next
  call. The caller's clock runs over the stream only; the process's clock also over the flush
  after it, so that the writer threads' work on the stream counts there;
- back to back: the streams of a block follow each other at once (the metered block flushed at
  its end, inside the clocks), so that the writer's work on one stream runs on the other vCPU
  while the caller consumes the next: what a caller reading InvokeAgent streams in a tight
  loop, with no network time between them, would see.

Two clocks per block: the calling thread's CPU time (`time.thread_time_ns`: the time the caller
spends consuming the stream, which the target names) and the process's (every thread: the
ledger's encoder and committer threads count), with the writer threads' share read from
/proc/self/task/*/schedstat where Linux has it. Blocks are short (10 turns) and alternate, many
of them, so that neighbouring blocks of the variants share the machine's load; the order
rotates from round to round, so that every variant runs in every position equally often;
overheads are the medians of the per-block ratios against the plain block of the same round.
A second plain variant (plain again: the same code as plain) is measured in the same way as
the others: what it "adds" is the method's error on this machine under its load at the time
(an A/A control), to read the other figures against. Instructions of the calling thread
(callgrind, child processes at two stream counts; load cannot move them) beside: plain, read
only and metered.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import statemeter as sm
from common import instructions_per_op

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


class _Replay:
    """The three variants over one 100-step turn, recording into a file ledger in `tmp`."""

    def __init__(self, tmp: str) -> None:
        import boto3
        from botocore.awsrequest import prepare_request_dict
        from botocore.eventstream import EventStream
        from botocore.parsers import EventStreamJSONParser
        from statemeter.integrations import botocore as capture
        from test_integrations_botocore import event_message

        self.frames = [event_message(t, p) for t, p in _turn(100)]
        client = boto3.client(
            "bedrock-agent-runtime",
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
        )
        self.model = client.meta.service_model.operation_model("InvokeAgent")
        shape = self.model.output_shape.members["completion"]
        parser = EventStreamJSONParser()
        self.request = client._serializer.serialize_to_request(
            {
                "agentId": "AGENT12345",
                "agentAliasId": "TSTALIASID",
                "sessionId": "session-001",
                "inputText": "is claim 4411 covered?",
                "enableTrace": True,
            },
            self.model,
        )
        prepare_request_dict(
            self.request, endpoint_url="https://bedrock-agent-runtime.us-east-1.amazonaws.com"
        )
        self.http = SimpleNamespace(status_code=200)
        frames = self.frames
        self.stream: Callable[[], Any] = lambda: EventStream(
            _Raw(frames), shape, parser, "InvokeAgent"
        )
        self.meter = sm.Meter(Path(tmp) / "bench.db")
        session = self.meter.session(
            "bench", runtime="bedrock-agents", runtime_session_id="session-001"
        )
        self.hooks = capture._Capture(capture.Target(session, "botocore"), None, None)
        self.reader = capture._Capture(capture.Target(_Dropped(), "botocore"), None, None)
        self.variants: dict[str, Callable[[int], None]] = {
            "plain": self.plain,
            "read": self.read,
            "metered": self.metered,
            "plain_again": self.plain,
        }
        # One stream of each, nothing flushed (the paced mode flushes outside its clocks).
        self.once: dict[str, Callable[[], None]] = {
            "plain": lambda: self.plain(1),
            "read": lambda: self.read(1),
            "metered": lambda: self._through(self.hooks, 1),
            "plain_again": lambda: self.plain(1),
        }

    def plain(self, n: int) -> None:
        for _ in range(n):
            for _ev in self.stream():
                pass

    def _through(self, hooks: Any, n: int) -> None:
        for _ in range(n):
            ctx: dict[str, Any] = {}
            hooks.before_call(model=self.model, params=self.request, context=ctx)
            parsed = {
                "completion": self.stream(),
                "sessionId": "session-001",
                "ResponseMetadata": {"RequestId": "req-1", "HTTPHeaders": {}},
            }
            hooks.after_call(http_response=self.http, parsed=parsed, model=self.model, context=ctx)
            for _ev in parsed["completion"]:
                pass

    def read(self, n: int) -> None:
        self._through(self.reader, n)

    def metered(self, n: int) -> None:
        self._through(self.hooks, n)
        self.meter.flush()


def _other_threads_ns() -> int | None:
    """CPU ns the process's threads other than this one have run (Linux schedstat), or None."""
    me = str(threading.get_native_id())
    total = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tasks:
        if tid == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total


_CLOCKS = ("thread", "process", "writer", "wall")
#: How streams follow each other: back to back (the writer's work on one stream, handed over
#: when it ends, runs beside the caller's consumption of the next), or paced (the writer has
#: finished every earlier stream's work before a stream starts, as between the InvokeAgent
#: calls of real use, each seconds of network time apart).
_MODES = ("paced", "back_to_back")


def _block(replay: _Replay, mode: str, name: str, runs: int) -> dict[str, float]:
    """One block of `runs` streams of variant `name`: per-stream µs on each clock."""
    if mode == "back_to_back":
        o0 = _other_threads_ns() or 0
        t0, c0 = time.thread_time_ns(), time.process_time_ns()
        w0 = time.perf_counter_ns()
        replay.variants[name](runs)
        w1 = time.perf_counter_ns()
        t1, c1 = time.thread_time_ns(), time.process_time_ns()
        o1 = _other_threads_ns() or 0
        thread, process, writer, wall = t1 - t0, c1 - c0, o1 - o0, w1 - w0
    else:
        one = replay.once[name]
        thread = process = writer = wall = 0
        replay.meter.flush()  # untimed: earlier blocks' work is done
        for _ in range(runs):
            o0 = _other_threads_ns() or 0
            c0 = time.process_time_ns()
            w0 = time.perf_counter_ns()
            t0 = time.thread_time_ns()
            one()
            t1 = time.thread_time_ns()
            w1 = time.perf_counter_ns()
            # The writer finishes this stream's work before the next starts. Every variant
            # does this same step; it is outside the caller's clock and the wall clock, and
            # inside the process's (the writer threads' work on the stream counts there).
            replay.meter.flush()
            c1 = time.process_time_ns()
            o1 = _other_threads_ns() or 0
            thread += t1 - t0
            process += c1 - c0
            writer += o1 - o0
            wall += w1 - w0
    return {
        "thread": thread / runs / 1000,
        "process": process / runs / 1000,
        "writer": writer / runs / 1000,
        "wall": wall / runs / 1000,
    }


def _figures(per: dict[str, dict[str, list[float]]], names: list[str], writer_known: bool) -> dict:
    """The overheads of one mode against its plain blocks, round by round."""

    def med(name: str, clock: str) -> float:
        return statistics.median(per[name][clock])

    def pairs(name: str, clock: str) -> Any:
        return zip(per[name][clock], per["plain"][clock], strict=True)

    def added_pct(name: str, clock: str) -> float:
        return round((statistics.median(m / p for m, p in pairs(name, clock)) - 1) * 100, 2)

    def added_us(name: str, clock: str) -> float:
        return round(statistics.median(m - p for m, p in pairs(name, clock)), 1)

    def spread_us(name: str, clock: str) -> float:
        """The interquartile range of the per-round differences against plain."""
        q = statistics.quantiles([m - p for m, p in pairs(name, clock)], n=4)
        return round(q[2] - q[0], 1)

    return {
        # The caller's own CPU time (the calling thread): the target's figure.
        "consume_caller_cpu_us": round(med("plain", "thread"), 1),
        "caller_overhead_cpu_pct": added_pct("metered", "thread"),
        "caller_added_cpu_us": added_us("metered", "thread"),
        "caller_read_only_overhead_cpu_pct": added_pct("read", "thread"),
        "caller_read_only_added_cpu_us": added_us("read", "thread"),
        # The process's CPU time (every thread: the ledger's writer threads included).
        "consume_cpu_us": round(med("plain", "process"), 1),
        "consume_metered_cpu_us": round(med("metered", "process"), 1),
        "consume_read_only_cpu_us": round(med("read", "process"), 1),
        "overhead_cpu_pct": added_pct("metered", "process"),
        "added_cpu_us": added_us("metered", "process"),
        "read_only_overhead_cpu_pct": added_pct("read", "process"),
        "read_only_added_cpu_us": added_us("read", "process"),
        "writer_threads_cpu_us": (
            {k: round(med(k, "writer"), 1) for k in names} if writer_known else None
        ),
        "writer_added_cpu_us": added_us("metered", "writer") if writer_known else None,
        "overhead_wall_pct": added_pct("metered", "wall"),
        # The A/A control: plain against itself, the method's error under the load of the run.
        "caller_control_cpu_pct": added_pct("plain_again", "thread"),
        "caller_control_added_cpu_us": added_us("plain_again", "thread"),
        "caller_control_spread_cpu_us": spread_us("plain_again", "thread"),
    }


def bench_bedrock_agent_trace(quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        replay = _Replay(tmp)
        frames = replay.frames
        runs = 5 if quick else 10
        blocks = 8 if quick else 40
        for fn in replay.variants.values():
            fn(5)
        names = list(replay.variants)
        slots = [(mode, name) for mode in _MODES for name in names]
        per: dict[str, dict[str, dict[str, list[float]]]] = {
            mode: {k: {c: [] for c in _CLOCKS} for k in names} for mode in _MODES
        }
        writer_known = _other_threads_ns() is not None
        for b in range(blocks):
            # Rotated: every variant of either mode in every position of a round equally
            # often.
            shift = b % len(slots)
            for mode, name in slots[shift:] + slots[:shift]:
                got = _block(replay, mode, name, runs)
                for clock in _CLOCKS:
                    per[mode][name][clock].append(got[clock])
        meter = replay.meter
        meter.flush()
        events = meter.ledger.events().to_pylist()
        children = sum(1 for p in events if p["parent_id"])
        outer = sum(1 for p in events if p["kind"] == "model_call" and not p["parent_id"])
        meter.close()

    paced = _figures(per["paced"], names, writer_known)
    back_to_back = _figures(per["back_to_back"], names, writer_known)
    caller = paced["caller_overhead_cpu_pct"]
    out = {
        "steps_per_turn": 100,
        "events_per_stream": len(frames),
        "stream_bytes": sum(map(len, frames)),
        "runs_per_block": runs,
        "blocks": blocks,
        # The target's figure: the caller's CPU with the writer done with earlier streams.
        "headline_mode": "paced",
        "caller_overhead_cpu_pct": caller,
        "caller_control_cpu_pct": paced["caller_control_cpu_pct"],
        "target_pct": 5.0,
        "meets_target": caller <= 5.0,
        "paced": paced,
        "back_to_back": back_to_back,
        "children_per_turn": children // max(outer, 1),
        "events_recorded": len(events),
    }
    out.update(_instructions(quick))
    return out


# One variant alone in a child process: `python -c CHILD KIND N` (the replay set up, warmed
# with one stream, then N streams). The meter is flushed, not closed: closing it writes the
# column store of every event recorded so far on the calling thread, work that grows with the
# streams but that no clock of the blocks counts (their meter is closed once, after them).
_CHILD = """
import os, shutil, sys, tempfile
sys.path.insert(0, sys.argv[3])
from bench_runtime_steps import _Replay
kind, n = sys.argv[1], int(sys.argv[2])
tmp = tempfile.mkdtemp()
replay = _Replay(tmp)
run = replay.variants[kind]
run(1)
run(n)
replay.meter.flush()
shutil.rmtree(tmp)
os._exit(0)
"""


def _instructions(quick: bool) -> dict:
    """Calling-thread instructions per stream, plain, read only and metered (callgrind; None
    without valgrind)."""
    small, large = (1, 3) if quick else (2, 6)
    here = str(Path(__file__).resolve().parent)
    # One hash seed for every run: with random ones the interpreter's dicts and sets differ
    # from run to run, and the count with them by up to a million per stream.
    env = dict(os.environ, PYTHONHASHSEED="0")

    def per_stream(kind: str) -> float | None:
        return instructions_per_op(
            lambda n: [sys.executable, "-c", _CHILD, kind, str(n), here],
            small,
            large,
            lambda n: env,
        )

    plain, read, metered = per_stream("plain"), per_stream("read"), per_stream("metered")
    return {
        "caller_instructions_per_stream": (
            {"plain": round(plain), "read": round(read), "metered": round(metered)}
            if plain and read and metered
            else None
        ),
        "caller_overhead_instructions_pct": (
            round((metered / plain - 1) * 100, 2) if plain and metered else None
        ),
        "caller_read_only_overhead_instructions_pct": (
            round((read / plain - 1) * 100, 2) if plain and read else None
        ),
    }


BENCHES = {"runtime_bedrock_agent_trace": bench_bedrock_agent_trace}
