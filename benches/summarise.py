"""Renders docs/performance.md from benches/results/*.json, so re-running the benchmarks
refreshes the document (benches/run.py calls this at the end of every run).

    python benches/summarise.py [--out docs/performance.md]

Every figure in the document comes from a result file, with the command that produced it; a
target is marked met or missed, and a missed one says by how much and the known reason.
Results that are missing are listed as not run, never invented.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
RESULTS = HERE / "results"
OUT = HERE.parent / "docs" / "performance.md"


def get(d: dict, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def num(x: Any, unit: str = "", digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int) or (isinstance(x, float) and abs(x) >= 1000):
        text = f"{x:,.0f}"
    elif isinstance(x, float):
        text = f"{x:.{digits}g}"
    else:
        text = str(x)
    if unit in ("x", "%"):
        return f"{text}{unit}"
    return f"{text} {unit}".strip()


def other(name: str, path: str, unit: str = "") -> str:
    """A figure from another result file, for the explanation of a miss."""
    p = RESULTS / f"{name}.json"
    value = get(json.loads(p.read_text()), path) if p.exists() else None
    return num(value, unit)


def _ingest_why(name: str) -> str:
    """Why ingest (result `name`) stays under 300,000 events/s, from the figures on file."""
    result = _result(name)
    cpu = get(result, "cpu_ns_per_event")
    cpu = cpu.get("statemeter") if isinstance(cpu, dict) else cpu
    bound = f"{2e9 / cpu:,.0f} events/s" if cpu else "—"
    load = other(name, "machine.loadavg")
    threads = result.get("threads_cpu_ns_per_event") or {}
    loadavg = get(result, "machine.loadavg")
    idle = isinstance(loadavg, (int, float)) and loadavg < 2
    wall_s, cpu_s = result.get("seconds"), result.get("cpu_seconds")
    if isinstance(wall_s, dict) and isinstance(cpu_s, dict):
        wall_s, cpu_s = wall_s.get("statemeter"), cpu_s.get("statemeter")
    used = f"{cpu_s / (2 * wall_s):.0%}" if wall_s and cpu_s else "—"
    runs = result.get("runs_events_per_s")
    spread = (
        f" This figure is the median of {len(runs)} runs on that machine "
        f"({min(runs):,.0f} to {max(runs):,.0f} events/s)."
        if isinstance(runs, list) and len(runs) > 1
        else ""
    )
    split = ""
    if {"caller", "encoder", "committer"} <= threads.keys():
        slowest = max(threads, key=lambda k: threads[k])
        allows = min(2e9 / cpu, 1e9 / threads[slowest]) if cpu else 0
        if allows < 300_000:
            verdict = "so even two idle cores would not reach 300,000 events/s"
        elif not idle:
            verdict = (
                "so the CPU it takes per event allows 300,000 events/s on two idle cores if "
                "the three threads kept both busy all the time (the run used "
                f"{used} of the two cores' time, its CPU time against twice its wall time): "
                "the throughput above is what the shared machine left it, not what the work "
                "needs; whether the threads keep two idle cores busy enough this run does not "
                "measure"
            )
        else:
            verdict = (
                "so the CPU it takes per event would allow 300,000 events/s if the three "
                "threads kept both cores busy all the time; on this nearly idle machine they "
                f"did not: the run used {used} of the two cores' time (its CPU time against "
                "twice its wall time); where the rest went (a thread waiting for another's "
                "work, three threads taking turns on two cores, other processes) this run "
                "does not measure"
            )
        split = (
            f" Per event the caller's thread took {num(threads['caller'], 'ns')}, the encoder "
            f"{num(threads['encoder'], 'ns')} and the committer "
            f"{num(threads['committer'], 'ns')} (the {slowest} alone allows at most "
            f"{1e9 / threads[slowest]:,.0f} events/s); 300,000 events/s on two cores needs at "
            f"most 6,667 ns in all and 3,333 ns on the busiest thread, {verdict}."
        )
    ab = result.get("threads_cpu_ab")
    if isinstance(ab, dict) and {"before", "after"} <= ab.keys():

        def span(side: str, role: str) -> str:
            vals = [run[role] for run in ab[side] if role in run]
            return f"{min(vals):,.0f}-{max(vals):,.0f} ns" if vals else "—"

        split += (
            f" Against {ab.get('before_build', 'the build before')}, run alternately in the "
            f"same session ({len(ab['after'])} pairs, {ab.get('conditions', '')}), the "
            f"encoder took {span('after', 'encoder')} of CPU per event against "
            f"{span('before', 'encoder')}, the committer {span('after', 'committer')} against "
            f"{span('before', 'committer')} and the caller's thread "
            f"{span('after', 'caller')} against {span('before', 'caller')}."
        )
    counted = result.get("instructions_ab")
    if isinstance(counted, str):
        split += f" {counted}"
    return (
        "The caller's thread (the record calls), the encoder (classification, canonical JSON, "
        "the record's parts, and the record, its SHA-256 chain and Merkle leaf hashes, the "
        "roots of 16-leaf subtrees and its id key written ahead of the append) and the "
        "committer (the Merkle tree's larger nodes, "
        "SQLite inserts of the record and of the id key, the commit, the column store's "
        "columns; each whole segment of them is encoded and written on a short-lived thread "
        "of its own, counted in the total below but in none of the three threads) share the "
        "machine's two cores: "
        f"recording took {num(cpu, 'ns')} of CPU per event in all, which two idle cores "
        f"would run at most at {bound}.{split}{spread} "
        + (
            f"The machine was nearly idle (load average {load} on 2 cores when it ran, what "
            "the benchmarks before it left): "
            if idle
            else f"The machine was shared (load average {load} on 2 cores when it ran): "
        )
        + "the floor (Durable ingest), `sqlite3.executemany` of the very "
        "rows statemeter wrote, stored "
        f"{other('ingest', 'events_per_s.sqlite3_executemany', 'events/s')} "
        f"({other('ingest', 'cpu_ns_per_event.sqlite3_executemany', 'ns')} of CPU per event), "
        "and the core's store alone (pre-encoded events: record text, chain, tree, inserts, "
        f"commit; no Python) {other('ingest', 'rust.store_append_events_per_s', 'events/s')} "
        f"({other('ingest', 'rust.store_append_cpu_ns', 'ns')} of CPU per event)."
    )


def _startup_why(name: str, call: str, bound: float) -> Callable[[], str]:
    """Why a first call (`report`, `costs`, `sessions`) of result `name` missed its wall-time
    bound, from the figures on file: its CPU time, the call alone, and the machine's load."""

    def why() -> str:
        r = _result(name)
        first_cpu = get(r, f"{call}.first_cpu_s")
        second_cpu = get(r, f"{call}.second_cpu_s")
        wait = get(r, f"{call}.first_wait_s")
        load = other(name, "machine.loadavg")
        tail = get(r, "records_tail_events")
        if not isinstance(first_cpu, (int, float)):
            return ""
        tail_text = (
            "the events after the last whole segment from the part segment the meter kept "
            "when it closed"
            if tail == 0
            else "the events after the last whole segment parsed from the records"
        )
        verdict = (
            f"within the {num(bound, 's')} on CPU"
            if first_cpu <= bound
            else f"over the {num(bound, 's')} on CPU too"
        )
        if call == "report":
            split = (
                f"the call itself (the same call again, columns cached) took "
                f"{num(second_cpu, 's')} of it, the rest loading the columns it reads (the "
                "column store's sections it needs read, checked and decompressed on two "
                f"threads; {tail_text})"
            )
        else:
            done = (
                "priced and summed into its groups"
                if call == "costs"
                else "summarised into the session rows"
            )
            again = (
                f"the same call again reads them again ({num(second_cpu, 's')} of CPU)"
                if call == "costs"
                else "the same call again returns the table still held"
            )
            split = (
                "the call reads the column store a segment at a time (the sections it needs "
                f"read, checked and decompressed on two threads; {tail_text}), each "
                f"{done} as it is decoded and then dropped; nothing is kept, so {again}"
            )
        return (
            f"Its CPU time (all threads) was {num(first_cpu, 's')}, {verdict}: {split}. The "
            "machine was shared (load average "
            f"{load} on 2 cores when it ran): the wall time beyond the CPU time was waiting "
            "for a core"
            + (
                f" (the calling thread alone waited {num(wait, 's')} runnable, "
                "/proc/thread-self/schedstat)."
                if isinstance(wait, (int, float))
                else "."
            )
        )

    return why


def _startup_rss_why(call: str) -> Callable[[], str]:
    """Why the first `call` (costs, sessions) at 10,000,000 events held more than 1 GiB, from
    the figures on file."""

    def why() -> str:
        r = _result("startup_10m")
        rows = get(r, f"{call}.rows")
        what = (
            "each session's first start (for the runtime prices), the provider-held writes "
            "not yet priced and the sums per group"
            if call == "costs"
            else f"one row per session ({num(rows)} rows) and the index of their ids"
        )
        return (
            f"The call reads the column store a segment at a time over all "
            f"{num(get(r, 'events'))} events, holding besides a few decoded segments only "
            f"{what}; the report, which holds the columns it reads whole, peaked at "
            f"{num(get(r, 'report.peak_rss_mib'), 'MiB')}. The figure above is the process's "
            "peak resident memory (VmHWM), the interpreter and the extension included."
        )

    return why


def _startup_note(r: dict) -> str:
    """What the export figures of a startup result measured, and why the calls without the
    column store were not run, when they were not."""
    notes = []
    keys = ("export_parquet_s", "export_parquet_cpu_s", "export_parquet_wait_s")
    wall, cpu, wait = (r.get(k) for k in keys)
    if all(isinstance(x, (int, float)) for x in (cpu, wall, wait)):
        notes.append(
            f"_export_parquet: `Ledger.open(path).export_parquet(dir)` of all "
            f"{num(r.get('events'))} events into a dataset partitioned by date, in the "
            f"benchmark's own process (pyarrow imported inside it): {num(wall, 's')} wall, "
            f"{num(cpu, 's')} of CPU in all threads (Rust parses the records on two threads, "
            f"pyarrow writes the files on the calling thread), and the calling thread waited "
            f"{num(wait, 's')} runnable for a core (load average "
            f"{num(get(r, 'machine.loadavg'))} on 2 cores)._"
        )
    if r.get("records_not_run"):
        notes.append(f"_Not run here: {r['records_not_run']}_")
    return "\n\n".join(notes)


def _bytes_why() -> str:
    """Where the demo fleet's bytes per event go, from the figures on file."""
    r = _result("bytes")
    per = get(r, "ledger.objects_bytes_per_event") or {}
    sec = get(r, "column_store.sections_bytes_per_event") or {}
    merkle = (per.get("merkle_nodes") or 0) + (per.get("sqlite_autoindex_merkle_nodes_1") or 0)
    return (
        f"The ledger file (format version {r.get('format_version')}) takes "
        f"{num(get(r, 'ledger.bytes_per_event'))} B/event: the "
        f"`events` table {num(per.get('events'))} (the canonical JSON record "
        f"{num(get(r, 'ledger.stored_record_bytes_per_event'))}, the chain hash as stored "
        f"{num(get(r, 'ledger.stored_hash_bytes_per_event'))} — version 3 keeps it whole on "
        f"every 64th row and at each append's end ({num(get(r, 'ledger.whole_hash_rows'))} "
        "rows), its first 4 bytes elsewhere — and SQLite's row header), the `ids` table "
        f"{num(per.get('ids'))} (8-byte keys), the Merkle tree {num(round(merkle, 1))}. The "
        f"column store adds {num(get(r, 'column_store.bytes_per_event'))}, mostly what is "
        f"random in each event: the ids' 74 random bits ({num(sec.get('id'))}), the time and "
        f"duration deltas ({num(sec.get('ts'))} and {num(sec.get('duration_ns'))}). Each row "
        "now stores its record and 5 bytes of chain hash and row header; less needs smaller "
        "records."
    )


def _ns_per_instruction(peer: str) -> str:
    """CPU ns per instruction of a recording peer (its CPU time over its callgrind count)."""
    r = _result("recording")
    cpu, ins = get(r, f"cpu_ns_per_event.{peer}"), get(r, f"instructions_per_event.{peer}")
    return f"{cpu / ins:.3f} ns" if cpu and ins else "—"


def _integration_method(r: dict) -> str:
    """How the A/B figures of an integration's run were taken, and how they spread."""
    run = r.get("run") or {}
    blocks, runs = run.get("blocks"), run.get("runs_per_block")
    if not blocks or not runs:
        return ""
    text = (
        f"_Method: {blocks} blocks of {runs} runs of each variant (without statemeter, with it, "
        "and where shown a processor that does nothing), alternating, the order flipping every "
        "block; per process each overhead is the median of the per-block ratios to the block "
        "without statemeter"
    )
    per = (run.get("per_process") or {}).get("overhead_pct")
    if isinstance(per, list) and len(per) > 1:
        shown = ", ".join(f"{x:.2f}%" for x in per if isinstance(x, (int, float)))
        text += (
            f"; the run is repeated in {len(per)} fresh processes and each figure is the median "
            f"across them (wall overhead per process: {shown}): whole processes differ by more "
            "than the blocks of one, as the integration's cost is mostly cache misses that move "
            "with where a process's code and data land"
        )
    return text + "._"


def _result(name: str) -> dict:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else {}


_RT = "runtime_bedrock_agent_trace"


def _runtime_trace_note(r: dict) -> str:
    """What the process figure of the InvokeAgent trace adds beside the caller's."""
    paced = r.get("paced") or {}
    pct, added = paced.get("overhead_cpu_pct"), paced.get("added_cpu_us")
    writer, plain = paced.get("writer_added_cpu_us"), paced.get("consume_cpu_us")
    events = (r.get("children_per_turn") or 0) + 1
    if pct is None or writer is None or not plain:
        return ""
    per_event = writer / events if events else None
    within = "within" if pct <= 5.0 else "above"
    how = ""
    if (r.get("meets_target")) is True:
        how = _runtime_trace_how() + " " + _RT_RUNS + " "
    return how + (
        f"Paced, the process adds {num(pct, '%')} ({num(added, 'µs')} per stream, {within} 5% "
        f"of {num(plain, 'µs')}): {num(writer, 'µs')} of it on the ledger's writer threads, "
        f"~{num(per_event, 'µs')} for each of the {events} events a stream records: reading "
        "the trace from the stream's bytes and building the events (about 220 µs of it), "
        "then for each event its classification, canonical JSON, record, chain and leaf "
        "hashes on the encoder thread, the SQLite insert and its share of the commit, and the "
        "column store's columns on the committer thread. That work runs on the writer "
        "threads, not in the caller's CPU time; all but the reading is "
        "the same for every recorded event (see the recording and ingest figures). Back to "
        "back, where that work runs beside the caller's next stream, the process adds "
        f"{num(get(r, 'back_to_back.overhead_cpu_pct'), '%')}."
    )


#: The runs behind the InvokeAgent trace figures (fat-LTO release builds), for the text.
_RT_RUNS = (
    "This build passes the body's chunks and the stream's events through Rust iterators (no "
    "Python generator step per chunk or per event) and copies the bytes as they pass, not "
    "when the stream ends. Its runs on 2026-12-07 (fat-LTO release, on an Intel Xeon, "
    "19:06 and 19:14 UTC, load averages 5.9 and 4.1 when they started: other builds and "
    "tests ran beside them) gave "
    "paced 3.40% and 5.81% (A/A 4.55% and 1.14%, its per-round differences spreading over "
    "6,560 and 7,925 "
    "µs), back to back 2.89% and 0.63% (A/A 3.14% and 0.64%). At that load the paced "
    "figure moves by more than the target's margin from run "
    "to run and the A/A control's per-round differences spread over several times the "
    "capture's cost: these runs neither show the target met nor resolve this change. The "
    "calling thread's instructions are now "
    "counted without the meter's close (closing wrote the column store of every event "
    "recorded on the calling thread: about 0.9 million instructions per metered stream, "
    "growing with the stream count, that no clock of the blocks counts) and at one hash "
    "seed (with random ones the plain count moved by up to a million per stream): the "
    "capture adds 0.05% and 0.07% of botocore's instructions (69,116 and 110,526 per "
    "stream). Two more runs with the machine nearly idle (19:26 and 19:48 UTC, load 1.3 "
    "and 0.7) gave paced 4.02% and 2.86% (A/A 7.64% and 7.66%, spreading over 10,062 and "
    "9,140 µs), back to back 0.13% and 1.33% (A/A 3.03% and -2.07%), the capture adding "
    "0.21% and 0.25% of the calling thread's instructions; the second is the run on file. "
    "Both idle runs are under 5%, and so are three of the four runs of this build; the A/A "
    "control, above the capture's figure in both idle runs, says the CPU figure alone "
    "cannot show it; the instruction count, which load does not move, puts the capture at "
    "a quarter of a per cent. Callgrind's per-function counts (quick "
    "release builds, five streams against one) put the capture's Rust code per stream at "
    "about 92,000 instructions for the body's 202 chunks (the copy included), 89,000 for "
    "the hand-over (158,000 before, when it copied the bytes) and 48,000 for describing "
    "the request; the figure's resolution is about that size. The build before this one "
    "(a Python generator per chunk and per event; the chunks copied when the stream ended) "
    "ran as follows. Three runs on 2026-12-07 (fat-LTO release, load averages 2.8 to 3.7 "
    "when they started): paced 2.79%, 5.85%, 3.47% (A/A 7.19%, 2.45%, -4.20%, its per-round "
    "differences spreading over 9,810, 3,955 and 4,816 µs); back to back -0.58%, 9.96%, "
    "4.24% (A/A -4.98%, -2.19%, 0.10%); process, paced 11.5% to 15.5% (the writer threads "
    "1,621 to 1,665 µs per stream); instructions of the calling thread 1.42%, 1.44%, 1.13% "
    "more (1.7 to 2.1 million per stream). The build before it (the trace read and the "
    "steps queued on the calling thread when the stream ended; three runs, load 3.0 to 6.4) "
    "gave paced 6.53%, 2.72%, 6.35%, back to back 5.88% to 5.97%, for 2.76% to 3.06% more "
    "instructions (about 4.3 million per stream): handing the trace to the writer thread "
    "halves what the caller executes, and moves the reading (about 220 µs) and the building "
    "and queueing of the 101 events to the writer threads, where the process's figure still "
    "counts them. At this load the CPU figures do not resolve a few per cent: the A/A "
    "control's per-round differences spread over 4 to 10 ms per stream, several times the "
    "capture's whole cost. What load cannot move is the instruction count: in the first run "
    "the caller's 533 µs came to ~0.26 ns per added instruction (2.08 million), against "
    "~0.14 ns for botocore's own parsing (its CPU over its instructions): the capture's work "
    "(a Python generator step per chunk, the copy of the bytes, converting the outer call) "
    "runs slower per instruction than the code around it (those instruction counts "
    "included the meter's close). Three more runs on a nearly idle "
    "machine (AMD EPYC, 2026-12-07 16:20-16:32 UTC, load 0.9-1.0) gave paced 5.93%, "
    "8.33%, 6.44% (A/A "
    "0.66%, 2.11%, -1.28%; the caller adding 997, 1,576 and 1,100 µs per stream), back to "
    "back 2.37%, 3.93%, 6.08% (A/A 2.48%, 3.32%, 6.14%), for 1.47%, 1.29%, 0.89% more "
    "instructions. Of the six paced runs of that build the median is 5.9%: the target was "
    "not steadily met. On the idle machine the caller's paced "
    "cost (about 1 ms per stream) is more than twice what its added instructions take at "
    "botocore's own rate, and more than back to back; an experiment that emptied the caches "
    "between streams in every variant alike (16 MiB written outside the clocks) left the "
    "added CPU at 1,028 µs per stream, 4.51% of a plain stream that then took 23,992 µs (A/A "
    "1.09%), so the difference is not the writer's work evicting the caller's caches between "
    "streams; where the rest goes is not measured."
)


def _runtime_trace_how() -> str:
    """What the botocore capture does on the calling thread while an InvokeAgent stream is
    read and when it ends, and where the trace is read."""
    return (
        "While the caller reads the stream, the capture copies each chunk of the response "
        "body as it passes (into blocks of 64 KiB, with the time it came) and counts the "
        "trace events botocore hands the caller, both in Rust iterators (one between botocore "
        "and the body, one between botocore and the caller: no Python code of statemeter's "
        "per chunk or per event); nothing runs between botocore's events. When the stream "
        "ends, the calling thread converts and validates the outer call and queues it with "
        "the bytes kept as one item for the ledger's writer thread: that is all the caller "
        "pays for the trace. The writer thread reads the trace "
        "from the bytes (the AWS event-stream messages, their checksums, and the named fields "
        "of each trace part's JSON: about 220 µs for this stream's "
        f"{other(_RT, 'stream_bytes')} bytes, release build, best of 200, 2026-12-07) and "
        "records the outer call and its 100 steps; before, the calling thread did both. The "
        f"replayed body gives botocore one message per chunk ({other(_RT, 'events_per_stream')} "
        "chunks), so the per-chunk work counts more often here than with a network body read "
        "64 KiB at a time."
    )


def _runtime_trace_why() -> str:
    """Why the paced caller figure of the InvokeAgent trace is above 5%, from the figures."""
    return (
        "Paced (the ledger's writer done with earlier streams before each one starts), the "
        "caller's CPU per stream grows by "
        f"{other(_RT, 'paced.caller_added_cpu_us', 'µs')} against botocore's "
        f"{other(_RT, 'paced.consume_caller_cpu_us', 'µs')}, for "
        f"{other(_RT, 'caller_overhead_instructions_pct', '%')} more instructions (callgrind, "
        "calling thread: what load cannot move); back to back it grows by "
        f"{other(_RT, 'back_to_back.caller_added_cpu_us', 'µs')} "
        f"({other(_RT, 'back_to_back.caller_overhead_cpu_pct', '%')}). "
        + _runtime_trace_how()
        + " The method's error: plain against itself (A/A) reads "
        f"{other(_RT, 'paced.caller_control_cpu_pct', '%')}, its per-round differences "
        f"spreading over {other(_RT, 'paced.caller_control_spread_cpu_us', 'µs')} "
        f"(interquartile range) at a load average of {other(_RT, 'machine.loadavg')} on 2 "
        f"vCPUs. {_RT_RUNS}"
    )


class Row:
    """One figure: a label, where it is in the result, its unit, and an optional target.
    `why` explains a miss: text, or a function of nothing returning text (to cite figures from
    other results of the same run)."""

    def __init__(
        self,
        label: str,
        path: str,
        unit: str = "",
        target: tuple | None = None,
        why: str | Callable[[], str] = "",
        scale: float = 1.0,
    ) -> None:
        self.label, self.path, self.unit, self.target, self.why = label, path, unit, target, why
        self.scale = scale

    def render(self, result: dict) -> tuple[str, str | None]:
        value = get(result, self.path)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = value * self.scale
        cells = [self.label, num(value, self.unit)]
        status, missed = "", None
        if self.target is not None:
            op, bound = self.target
            cells.append(f"{op} {num(bound, self.unit)}")
            if value is None:
                status = "not run"
            else:
                ok = {
                    "<=": value <= bound,
                    "<": value < bound,
                    ">=": value >= bound,
                    ">": value > bound,
                }[op]
                if ok:
                    status = "met"
                else:
                    off = abs(value - bound) / bound * 100 if bound else float("inf")
                    factor = (
                        (value / bound)
                        if op in ("<=", "<")
                        else (bound / value if value else float("inf"))
                    )
                    status = f"**missed** by {off:.0f}% ({factor:.2f}x)"
                    why = self.why() if callable(self.why) else self.why
                    missed = (
                        f"- {self.label}: {num(value, self.unit)} against {op} "
                        f"{num(bound, self.unit)}. {why}"
                    )
            cells.append(status)
        else:
            cells += ["", ""]
        return "| " + " | ".join(cells) + " |", missed


def run_time(path: Path, result: dict) -> dt.datetime:
    """When a result was taken: recorded in it by benches/run.py, else the time of the commit
    that last changed the file (a clone's file times are the checkout's), else the file's."""
    if isinstance(result.get("run_utc"), str):
        return dt.datetime.fromisoformat(result["run_utc"])
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%ct", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if out.isdigit():
        return dt.datetime.fromtimestamp(int(out), dt.UTC)
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)


class Section:
    def __init__(
        self,
        name: str,
        title: str,
        intro: str,
        rows: list[Row],
        extra: Callable[[dict], str] | None = None,
    ) -> None:
        self.name, self.title, self.intro, self.rows, self.extra = name, title, intro, rows, extra

    def render(self) -> tuple[str, list[str]]:
        path = RESULTS / f"{self.name}.json"
        cmd = f"`python benches/run.py --only {self.name}`"
        head = f"## {self.title}\n\n{self.intro}\n\nCommand: {cmd}"
        if not path.exists():
            return f"{head}\n\n_Not run yet: no benches/results/{self.name}.json._\n", []
        result = json.loads(path.read_text())
        when = run_time(path, result)
        quick = " (**--quick**: smaller sizes, not comparable)" if result.get("quick") else ""
        lines = [
            f"{head} — run {when:%Y-%m-%d %H:%M} UTC{quick}.",
            "",
            "| figure | value | target | status |",
            "|---|---|---|---|",
        ]
        missed = []
        for row in self.rows:
            line, miss = row.render(result)
            lines.append(line)
            if miss:
                missed.append(miss)
        note = self.extra(result) if self.extra else ""
        if note:
            lines += ["", note]
        note = result.get("note") or result.get("notes")
        if note:
            lines += ["", f"_Method: {note}._"]
        if missed:
            lines += ["", "Missed targets:", *missed]
        return "\n".join(lines) + "\n", missed


def peers_table(result: dict) -> str:
    cpu, wall = result.get("cpu_ns_per_event", {}), result.get("wall_ns_per_event", {})
    base = cpu.get("statemeter")
    lines = [
        "| peer (same run) | CPU ns/event | wall ns/event | CPU vs statemeter |",
        "|---|---|---|---|",
    ]
    for name in cpu:
        ratio = f"{cpu[name] / base:.2f}x" if base else "—"
        lines.append(f"| {name} | {num(cpu[name])} | {num(wall.get(name))} | {ratio} |")
    return "\n".join(lines)


def bytes_table(result: dict) -> str:
    """Bytes per event of every table and index, and of every key of the event object."""
    lines = ["| table or index | this ledger | version-1 layout |", "|---|---|---|"]
    now = get(result, "ledger.objects_bytes_per_event") or {}
    old = get(result, "v1_layout.objects_bytes_per_event") or {}
    for name in sorted(set(now) | set(old), key=lambda k: -max(now.get(k, 0), old.get(k, 0))):
        if max(now.get(name, 0), old.get(name, 0)) >= 0.5:
            lines.append(f"| `{name}` | {num(now.get(name))} | {num(old.get(name))} |")
    cells = get(result, "ledger.cells_bytes_per_event") or {}
    if cells:
        lines += [
            "",
            "| rows of | leaf payload (row bytes) | cell and page headers | unused | interior "
            "pages |",
            "|---|---|---|---|---|",
        ]
        for name, d in cells.items():
            lines.append(
                f"| `{name}` | {num(d.get('leaf_payload'))} | {num(d.get('leaf_overhead'))} | "
                f"{num(d.get('leaf_unused'))} | {num(d.get('interior'))} |"
            )
    sections = get(result, "column_store.sections_bytes_per_event") or {}
    raw = get(result, "column_store.sections_raw_bytes_per_event") or {}
    if sections:
        lines += [
            "",
            "| column store section | bytes/event (zstd) | before compression |",
            "|---|---|---|",
        ]
        lines += [f"| `{k}` | {num(v)} | {num(raw.get(k))} |" for k, v in sections.items()]
    keys = get(result, "v1_layout.record.event_keys_bytes_per_event") or {}
    if keys:
        lines += ["", '| event key (v1 record: `"key":value,`) | bytes/event |', "|---|---|"]
        lines += [f"| `{k}` | {num(v)} |" for k, v in keys.items() if v >= 1]
    return "\n".join(lines)


#: Recording the ledger and exporting it to Parquet, in the startup benchmarks' own process.
_EXPORT_ROWS = [
    Row("recording the ledger (bench_report.generate)", "generate_events_per_s", "events/s"),
    Row("  its CPU time per event (all threads)", "generate_cpu_us_per_event", "µs"),
    Row("export_parquet (open + the whole ledger)", "export_parquet_s", "s"),
    Row("  its CPU time (all threads)", "export_parquet_cpu_s", "s"),
    Row("  waiting for a core (calling thread)", "export_parquet_wait_s", "s"),
    Row("  events per second (wall)", "export_events_per_s", "events/s"),
    Row("  events per second of CPU", "export_events_per_cpu_s", "events/s"),
    Row("  Parquet files written (one per date)", "export_files"),
    Row("  Parquet dataset", "export_bytes_per_event", "bytes/event"),
]


def _langgraph_why(target: str) -> Callable[[], str]:
    """Why a LangGraph figure (`target`: "callbacks" for the callbacks' target on the
    run's CPU, "wall" for the whole integration's wall time) missed, from the figures on
    file: where the added CPU goes by thread, the calling thread's instructions, the replayed
    cost and the A/A control."""

    def why() -> str:
        r = _result("integration_langgraph")
        ab = r.get("ab") or {}
        if not ab:
            return ""

        def us(path: str) -> str:
            return num(get(r, path), "µs")

        def pct(path: str) -> str:
            return num(get(r, path), "%")

        groups = r.get("writer_cpu_us_per_group_of_5") or {}
        load = other("integration_langgraph", "machine.loadavg")
        variant = "callbacks" if target == "callbacks" else "with"
        what = (
            "`MeterCallbackHandler` alone (the callbacks)"
            if variant == "callbacks"
            else "the whole integration (handler and checkpointer)"
        )
        control = get(r, "ab.without_again.added_cpu_pct_spread")
        if target == "callbacks":
            text = (
                f"Run by run, {what} added {us('ab.callbacks.added_cpu_us')} of CPU to a run "
                f"of {us('ab.cpu_us_per_run.without')} ({pct('ab.callbacks.added_cpu_pct')}, "
                f"interquartile range {pct('ab.callbacks.added_cpu_pct_spread')} over "
                f"{ab.get('rounds')} rounds; the A/A control, the run against itself, "
                f"{pct('ab.without_again.added_cpu_pct')} with a range of {num(control, '%')}; "
                f"load average {load} on 2 cores). "
            )
        else:
            text = (
                f"Wall time counts the added CPU and the waits of a shared machine: {what} "
                f"added {pct('ab.with.added_wall_pct')} wall (interquartile range "
                f"{pct('ab.with.added_wall_pct_spread')}) and {pct('ab.with.added_cpu_pct')} "
                f"CPU (load average {load} on 2 cores). "
            )
        text += (
            f"Of that CPU the calling thread took {us(f'ab.{variant}.added_thread_cpu_us')}, "
            f"where a LangChain handler that does nothing adds "
            f"{us('ab.noop_handler.added_thread_cpu_us')} ({pct('ab.noop_handler.added_cpu_pct')}"
            " of the run's CPU in all): LangChain's dispatch runs for any handler (its "
            "handle_event per callback, handler lists merged per step, a runtime Protocol "
            "check for streaming handlers per model call); the "
            f"ledger's writer threads took {us(f'ab.{variant}.added_writer_cpu_us')}. "
        )
        ins = r.get("instructions_per_run") or {}
        base_ins, noop_ins, own_ins = (ins.get(k) for k in ("without", "noop_handler", "callbacks"))
        ignoring_ins = ins.get("ignoring_handler")
        if base_ins and noop_ins and own_ins:
            text += (
                "In instructions of the calling thread (callgrind, which load cannot move): "
                f"the run takes {num(base_ins)}; a no-op handler adds "
                f"{pct('noop_handler_added_instructions_pct')}, `MeterCallbackHandler` "
                f"{pct('callbacks_added_instructions_pct')}: beyond a no-op handler it adds "
                f"{num(own_ins - noop_ins)} instructions, {(own_ins - noop_ins) / base_ins:.1%} "
                "of the run's (its own work is somewhat more: a no-op handler also has "
                "LangChain format a chat model's messages as text for on_llm_start, which "
                "`MeterCallbackHandler` spares it). "
            )
        if base_ins and own_ins and ignoring_ins:
            text += (
                "A handler that sets every ignore_* flag, so that LangChain calls none of its "
                f"methods, still adds {pct('ignoring_handler_added_instructions_pct')} "
                f"({num(ignoring_ins - base_ins)} instructions): what any handler pays, "
                "LangChain's dispatch of the run's 20 callbacks (12 of them for chains) and "
                "its callback managers per step. What `MeterCallbackHandler` adds beyond it, "
                f"{num(own_ins - ignoring_ins)} instructions "
                f"({(own_ins - ignoring_ins) / base_ins:.1%} of the run's), is its methods "
                "and the record calls. "
            )
        text += (
            f"Replayed back to back, the callbacks cost {us('callbacks_added_cpu_us_per_run')} "
            f"per run, writer included (the checkpointer's calls "
            f"{us('checkpointer_added_cpu_us_per_run')}): the replay leaves out LangChain's "
            "dispatch and writes many runs' events together. Each group the writer commits "
            "has a cost of its own beside its events' (a SQLite transaction: for a few "
            "events two 16 KiB WAL frames, six lock calls; the thread wake-ups): 5 events "
            f"committed alone (a flush after each) cost the writer threads "
            f"{num(groups.get('flushed'), 'µs')} of CPU against "
            f"{num(groups.get('together'), 'µs')} written with many others. The writer "
            "lingers 50 ms after the oldest queued event, so the few events of several "
            "runs share a commit: 5 events recorded 6 ms apart from the next 5 cost it "
            f"{num(groups.get('apart'), 'µs')} per group (an idle meter's threads take "
            f"{num(groups.get('idle'), 'µs')} over the same 6 ms). With a 5 ms linger, "
            "each run's events were a group of their own: 286-327 µs per group of 5 "
            "recorded apart, 308 µs committed alone (2026-12-07, two runs of the fat-LTO "
            "build before, alternating with this one's at load 1.6-3.7: 62-83 µs apart, 262 "
            "alone); the writer's part of the callbacks' added CPU per run went from 445-446 "
            "µs to 94-117 µs."
        )
        if isinstance(control, (int, float)) and control > 5.0 and target == "callbacks":
            text += (
                f" The A/A control's interquartile range ({num(control, '%')}) is wider than "
                "the 5% target: at this load the A/B cannot resolve the target either way."
            )
        return text

    return why


def _langgraph_rows() -> list[Row]:
    """The LangGraph section: the target on the callbacks (a run's CPU, read in the run itself:
    the A/B) and the replayed figures, then the whole integration (the wall target every
    integration has)."""
    return [
        Row(
            "callbacks: added CPU of the run (A/B)",
            "callbacks_ab_added_cpu_pct",
            "%",
            ("<=", 5.0),
            _langgraph_why("callbacks"),
        ),
        Row("callbacks: added CPU per run (A/B)", "callbacks_ab_added_cpu_us", "µs"),
        Row("  of it the calling thread", "ab.callbacks.added_thread_cpu_us", "µs"),
        Row("  of it the ledger's writer threads", "ab.callbacks.added_writer_cpu_us", "µs"),
        Row(
            "callbacks: added instructions of the calling thread",
            "callbacks_added_instructions_pct",
            "%",
        ),
        Row(
            "callbacks: added CPU, replayed",
            "callbacks_added_cpu_pct",
            "%",
            ("<=", 5.0),
            lambda: (
                "`MeterCallbackHandler` records the run's session_start, model and tool calls "
                "and session_end: "
                + other("integration_langgraph", "callbacks_added_cpu_us_per_run", "µs")
                + " per run, the ledger's writer threads included."
            ),
        ),
        Row("callbacks: added CPU per run, replayed", "callbacks_added_cpu_us_per_run", "µs"),
        Row("no-op LangChain handler: added CPU (A/B)", "ab.noop_handler.added_cpu_pct", "%"),
        Row(
            "no-op LangChain handler: added instructions of the calling thread",
            "noop_handler_added_instructions_pct",
            "%",
        ),
        Row(
            "handler ignoring every callback: added CPU (A/B)",
            "ab.ignoring_handler.added_cpu_pct",
            "%",
        ),
        Row(
            "handler ignoring every callback: added instructions of the calling thread",
            "ignoring_handler_added_instructions_pct",
            "%",
        ),
        Row("A/A control: added CPU (A/B)", "control_ab_added_cpu_pct", "%"),
        Row("checkpointer alone: added CPU (A/B)", "ab.checkpointer.added_cpu_pct", "%"),
        Row(
            "checkpointer: added CPU per run, replayed",
            "checkpointer_added_cpu_us_per_run",
            "µs",
        ),
        Row("whole integration: added CPU (A/B)", "run.overhead_cpu_pct", "%"),
        Row("whole integration: added CPU, replayed", "added_cpu_pct", "%"),
        Row("whole integration: added CPU per run, replayed", "added_cpu_us_per_run", "µs"),
        Row(
            "whole integration: wall overhead (A/B)",
            "run.overhead_pct",
            "%",
            ("<=", 5.0),
            _langgraph_why("wall"),
        ),
        Row(
            "writer CPU per group of 5 events, recorded 6 ms apart",
            "writer_cpu_us_per_group_of_5.apart",
            "µs",
        ),
        Row(
            "writer CPU per group of 5 events, each committed alone (flushed)",
            "writer_cpu_us_per_group_of_5.flushed",
            "µs",
        ),
        Row(
            "writer CPU per group of 5 events, written together",
            "writer_cpu_us_per_group_of_5.together",
            "µs",
        ),
    ]


def _langgraph_note(result: dict) -> str:
    """How the LangGraph figures were taken (from the result's own counts)."""
    ab = result.get("ab") or {}
    if not ab:
        return ""
    return (
        f"A/B: {ab.get('rounds')} rounds of blocks of {ab.get('runs_per_block')} runs of each "
        "variant (without statemeter, the same again as an A/A control, a no-op LangChain "
        "handler, a handler that sets every ignore_* flag so that LangChain calls none of its "
        "methods, `MeterCallbackHandler` alone, `MeteredCheckpointer` alone, both), the order "
        "rotating; per block the process's CPU (every thread, with the flush of what the block "
        "recorded), the calling thread's, the writer threads' and wall time; figures are "
        "medians of the per-round differences against the run without statemeter. Replayed: "
        "the callbacks and checkpointer calls of one run captured and replayed 500 times into "
        "the integration, divided by the run's CPU in its fastest block. The target "
        "names the callbacks and a run's CPU: its headline is the A/B figure of the handler "
        "alone; the replayed one leaves out LangChain's own dispatch and the writer's cost of "
        "writing a run's events on their own."
    )


SECTIONS = [
    Section(
        "recording",
        "Recording: the hot path",
        "`Session.model_call` with six scalar arguments into a file ledger in batch mode, per "
        "event on the calling thread, against a 6-key dict appended to a list (the floor), an "
        "OpenTelemetry SDK span with the same attributes through a `BatchSpanProcessor` with a "
        "no-op exporter, `logging` with a JSON formatter writing to a file, and structlog's JSON "
        "renderer writing to a file. Peers are interleaved in chunks of 10,000 events; best of "
        "15. statemeter's classification, encoding, hashing and SQLite commit happen on its "
        "writer threads and are not in this figure (see Sustained and Durable ingest). The "
        "floor itself moves from run to run (187-262 ns in twelve runs, 2026-12-07, load "
        "2.6-4.0), and the CPU ratio with it: six runs of the build that keeps the event's id "
        "inside it gave 1.08-1.86x (median 1.39x, five within 1.5x), six of the build before "
        "1.38-2.02x (median 1.65x), alternating.",
        [
            Row(
                "statemeter vs dict append (CPU)",
                "ratio_vs_dict_append",
                "x",
                ("<=", 1.5),
                lambda: (
                    "The call validates six arguments, builds the event (UUIDv7 id, clock "
                    "read, shared strings), queues it and returns an `Event`; a dict append "
                    "does none of that. In instructions (callgrind, calling thread, which load "
                    "cannot move): "
                    f"{other('recording', 'instructions_per_event.statemeter')} per call "
                    "against the floor's "
                    f"{other('recording', 'instructions_per_event.dict_append')} "
                    f"({other('recording', 'instructions_ratio_vs_dict_append', 'x')}). The CPU "
                    "ratio is larger than that: per instruction the loop of record calls runs "
                    "slower than the loop building dicts "
                    f"({_ns_per_instruction('statemeter')} against "
                    f"{_ns_per_instruction('dict_append')} of CPU per instruction). Part of "
                    "it callgrind does not see: the call reads the clock once (the event's "
                    "time and its id's), through the vDSO, which valgrind replaces with a "
                    "system call that it does not count; on this VM `clock_gettime` takes 23 ns "
                    "of CPU against 10 ns for a bare `rdtsc` (a Rust loop, 2026-12-07). The "
                    "call's one allocation on the calling thread is the event (an interposed "
                    "`malloc` counting the calling thread's calls over 10,000 calls: 1.00 per "
                    "call; 2.00 when the event's id was a `String` of its own). The event is "
                    "freed by the writer thread, so the calling thread's allocation never comes "
                    "from its own cache but from the allocator's shared bins, through memory "
                    "last written by the other core, and filling the event waits for that "
                    "memory. With the id kept inside the event, written there in place, and "
                    "the new event filled without an atomic uniqueness check (which stalled "
                    "the call until that memory had come), six runs of this build alternating "
                    "with six of the build before (2026-12-07 14:59-15:24 UTC, load 2.6-4.0) "
                    "took 283-348 ns of CPU per call (median 293) against 329-476 ns (median "
                    "341), 2,849-2,874 instructions against 2,942-3,052; the CPU ratios to the "
                    "floor of the same runs were 1.08-1.86x (median 1.39x; five of six within "
                    "1.5x; in the 1.86x one a compilation ran beside it and the call took 348 ns) "
                    "against 1.38-2.02x (median 1.65x), the floor itself ranging from 187 to "
                    "262 ns between runs. Three more runs of this build on a nearly idle "
                    "machine (2026-12-07 16:32-16:34 UTC, load 1.0, the benchmark's own) gave "
                    "1.38x, 1.54x and 1.35x (336, 375 and 351 ns against 244, 244 and 259 ns), "
                    "wall 1.48x, 1.60x and 1.41x; the first is the run on file. Before that "
                    "change (2026-12-07, load 1.0-4.3) three "
                    "runs gave 1.63x, 1.53x and 1.59x, three more on a nearly idle machine "
                    "1.58x, 1.31x and 1.56x. "
                    "Where the call's time went before it, read with the time-stamp counter "
                    "inside it (2026-12-07, load 9; ~870 cycles per loop iteration in all): "
                    "matching the keywords ~140 cycles, reading the arguments into the event "
                    "~230, id, clock and validation ~170, allocating the event ~60, queueing it "
                    "~30, the returned `Event` ~40; glibc's allocator then took ~12% of the "
                    "call's CPU (perf, calling thread only), for the event and its id. Fewer "
                    "instructions did not mean less CPU there: an experiment build that kept "
                    "committed events for reuse (a pool the writer refilled and the calling "
                    "thread took from a few dozen at a time, nothing allocated per call) ran "
                    "~300 fewer instructions per call (2,917 against 3,217 in the same loop) "
                    "but took more CPU, 313-330 ns against 294-311 ns for the build without it "
                    "(alternating runs at load 7-9, with and without prefetching the next "
                    "event), since the reused events' memory was as far away as freed chunks and "
                    "the references the event holds were released on the calling thread; "
                    "mimalloc as the allocator did not lower the CPU either (317-318 ns against "
                    "301-318 ns, load 4). Neither was kept. Handing the event to the writer is "
                    "not where the time goes (experiment builds, 2026-12-07): one build with a "
                    "switch read on every call took 329-332 ns per call dropping each event "
                    "instead of queueing it against 335-348 ns queueing (three pairs of runs, "
                    "load 9-10). The VM exposes no hardware counters, so these figures do not "
                    "say which stalls make the native code slower per instruction."
                ),
            ),
            Row(
                "statemeter vs dict append (instructions)",
                "instructions_ratio_vs_dict_append",
                "x",
            ),
            Row(
                "OTel span vs statemeter (CPU)",
                "otel_over_statemeter",
                "x",
                (">=", 20),
                "Both sides are measured on the calling thread; a span's cost is mostly Python, "
                "statemeter's mostly Rust, so the ratio shrinks when the interpreter is faster "
                "relative to native code (and in a debug build of the extension).",
            ),
            Row("logging JSON vs statemeter (CPU)", "logging_json_over_statemeter", "x"),
            Row("structlog vs statemeter (CPU)", "structlog_over_statemeter", "x"),
            Row(
                "statemeter vs dict append (wall)",
                "wall_ratio_vs_dict_append",
                "x",
                ("<=", 2.0),
                lambda: (
                    "The target is for an idle machine; this run's had a 1-minute load average "
                    f"of {other('recording', 'machine.loadavg')} on 2 cores. Wall time counts "
                    "the time the caller waits for a core while other processes and its own "
                    "writer threads (classification, encoding, hashing, SQLite: several µs of "
                    "CPU per event, see Sustained recording) run; its CPU time per call was "
                    f"{other('recording', 'cpu_ns_per_event.statemeter', 'ns')} against the "
                    f"floor's {other('recording', 'cpu_ns_per_event.dict_append', 'ns')}, and "
                    "in its chunk of best wall time the calling thread waited "
                    f"{other('recording', 'run_delay_ns_per_event.statemeter', 'ns')} per "
                    "event runnable for a core (/proc/thread-self/schedstat; the floor "
                    f"{other('recording', 'run_delay_ns_per_event.dict_append', 'ns')}); the "
                    "rest of the wall time beyond CPU it was not runnable. Three runs of this "
                    "build (2026-12-07, load 2.7-4.3): 2.60x, 1.91x and 2.46x, the caller "
                    "waiting runnable 177, 101 and 0 ns per event. The queue no longer makes "
                    "the caller sleep: the encoder takes the whole queue by swapping its buffer "
                    "for an empty one (the lock held for a few loads and stores, where it used "
                    "to copy up to 8,192 events out under it), wakes when the queue holds 8,192 "
                    "events or its oldest has waited the linger (not the linger after it last "
                    "looked, which fell inside a chunk), and the committer sets the events' seqs "
                    "before it takes the lock (it used to touch every event of a group under "
                    "it). In alternating runs of the benchmark's loops against the build before "
                    "(2026-12-07, eight pairs at load 6-9) the wall ratio went from 1.20-5.82x "
                    "(median 2.77x) to 1.06-4.80x (median 1.22x), with CPU unchanged. What is "
                    "left, traced (sched_switch with call stacks, 100 chunks of 10,000, "
                    "2026-12-07): outside the flushes between chunks the calling thread went "
                    "to sleep 3 times, each in glibc's `__lll_lock_wait_private` (the lock "
                    "glibc's allocator takes for its shared arena, which the writer threads "
                    "also take when they free the events the caller allocated; the recorded "
                    "stacks stop there, so the caller's frame is not shown), and never on the "
                    "queue's lock; a sleep while the lock's holder waits for a core on a loaded "
                    "machine costs up to a millisecond, ~100 ns per event of a chunk."
                ),
            ),
        ],
        peers_table,
    ),
    Section(
        "sustained",
        "Sustained recording",
        "1,000,000 model calls recorded and flushed to a file ledger (batch mode): end-to-end "
        "throughput including classification, canonical JSON, the SHA-256 chain and SQLite "
        "commits, and resident memory growth (the queue is bounded: producers wait).",
        [
            Row(
                "throughput",
                "events_per_s",
                "events/s",
                (">=", 300_000),
                lambda: _ingest_why("sustained"),
            ),
            Row("CPU (caller and writer threads)", "cpu_ns_per_event", "ns/event"),
            Row("RSS growth", "rss_growth_mib", "MiB"),
            Row("ledger size", "ledger_bytes_per_event", "bytes/event"),
        ],
    ),
    Section(
        "ingest",
        "Durable ingest",
        "The same rows into SQLite three ways: statemeter (record calls through flush, i.e. "
        "classify + canonical JSON + chain + commit), Python's `sqlite3.executemany` of the "
        "very rows statemeter wrote (same bytes, schema, pragmas and 8,192 rows per "
        "transaction: the floor for storing them from Python), and the record work done in Python "
        "(`json.dumps` + `hashlib` + `executemany`, without classification). `sync`: one commit "
        "per event with synchronous=FULL on both sides.",
        [
            Row(
                "statemeter",
                "events_per_s.statemeter",
                "events/s",
                (">=", 300_000),
                lambda: _ingest_why("ingest"),
            ),
            Row(
                "statemeter CPU (caller and writer threads)",
                "cpu_ns_per_event.statemeter",
                "ns/event",
            ),
            Row("statemeter events per CPU second", "events_per_cpu_s.statemeter", "events/s"),
            Row("RSS growth while recording", "rss_growth_mib", "MiB"),
            Row("sqlite3 executemany (same rows)", "events_per_s.sqlite3_executemany", "events/s"),
            Row("sqlite3 executemany CPU", "cpu_ns_per_event.sqlite3_executemany", "ns/event"),
            Row(
                "Python json + hashlib + executemany",
                "events_per_s.python_json_hashlib_executemany",
                "events/s",
            ),
            Row("statemeter time / executemany time", "statemeter_over_executemany", "x"),
            Row("statemeter CPU / executemany CPU", "statemeter_over_executemany_cpu", "x"),
            Row("Python record work / statemeter", "python_over_statemeter", "x"),
            Row("sync: statemeter", "sync.statemeter_events_per_s", "events/s"),
            Row(
                "sync: sqlite3 commit per row",
                "sync.sqlite3_commit_per_row_events_per_s",
                "events/s",
            ),
            Row(
                "Rust: store append only (the writer's floor)",
                "rust.store_append_events_per_s",
                "events/s",
            ),
            Row("Rust: recorder end to end, no Python", "rust.end_to_end_events_per_s", "events/s"),
            Row("record bytes", "record_mb", "MB"),
            Row("ledger file", "ledger_bytes_per_event", "bytes/event"),
        ],
    ),
    Section(
        "verify",
        "Verify",
        "`Ledger.verify()` re-derives every hash of a 1,000,000-event ledger (reading every row "
        "from SQLite): the chain, and the stored Merkle tree (a leaf and an interior hash per "
        "record on top of the chain's), checking each version-2 record's keys against its "
        "context, against hashing the same record bytes as one stream with `sha256sum` and "
        "`openssl dgst -sha256` (no per-event finalization, no SQLite), Python's `hashlib` "
        "chaining the same records held in memory, and the stdlib-only reference verifier "
        "`statemeter.reverify` (which also re-encodes every record to check canonical "
        "form; run on 100,000 events). `sha256sum` is the usual one-stream baseline; where "
        "coreutils' portable SHA-256 is slower than the CPU's SHA extensions (used by OpenSSL "
        "and by the `sha2` crate statemeter uses), `openssl dgst` is the real one-stream floor.",
        [
            Row("statemeter", "statemeter_events_per_s", "events/s"),
            Row("statemeter", "statemeter_mb_per_s", "MB/s"),
            Row("statemeter, CPU time", "statemeter_cpu_s", "s"),
            Row("sha256sum", "sha256sum_mb_per_s", "MB/s"),
            Row("openssl dgst -sha256", "openssl_dgst_mb_per_s", "MB/s"),
            Row("Python hashlib, one stream", "python_hashlib_stream_mb_per_s", "MB/s"),
            Row(
                "Python hashlib chain (records in memory)",
                "python_hashlib_chain_events_per_s",
                "events/s",
            ),
            Row("reference script (stdlib only)", "reference_script_events_per_s", "events/s"),
            Row("statemeter time / sha256sum time", "statemeter_over_sha256sum", "x"),
            Row("statemeter time / openssl time", "statemeter_over_openssl_dgst", "x"),
        ],
    ),
    Section(
        "memory",
        "Memory",
        "Resident memory of a fresh process recording 10,000,000 model calls to a file ledger "
        "(sampled every 100,000 events; growth = peak minus RSS after opening the meter), and "
        "bytes per event after `Ledger.open` + `ledger.events()` (every event loaded as a row) "
        "and after the first report (the columns it caches), each in its own fresh process, on "
        "1,000,000 events.",
        [
            Row(
                "RSS growth while recording",
                "rss_growth_mib",
                "MiB",
                ("<", 100),
                "The bounded queue (16,384 events) and two in-flight groups of up to 8,192 events "
                "hold the events not yet written; SQLite's page cache and the allocator's arenas "
                "account for the rest. Growth reaches its plateau in the first tenth of the run.",
            ),
            Row("RSS growth in the first tenth", "rss_growth_first_tenth_mib", "MiB"),
            Row("recording throughput", "record_events_per_s", "events/s"),
            Row("ledger size", "ledger_bytes_per_event", "bytes/event"),
            Row("after Ledger.open + events()", "events_bytes_per_event", "bytes/event"),
            Row("events() load time (1M)", "events_load_s", "s"),
            Row("after the first report (columns)", "columns_bytes_per_event", "bytes/event"),
            Row("columns load time (1M)", "columns_load_s", "s"),
        ],
    ),
    Section(
        "report",
        "Reports: 1,000,000 events",
        "Three interpretations x two clauses grouped by venue and month, after load, against "
        "the same aggregation in pandas and in DuckDB over the same model calls (pre-loaded, "
        "with exact per-event costs precomputed for the peers), cross-checked cell by cell. "
        "Then the same report with every interpretation reading the calls under a ruleset the "
        "events were not recorded with (`ruleset = ...`, a new one each repeat so nothing is "
        "cached): all 1,000,000 events classified again in Rust inside the report; its cells "
        "under the recording ruleset are checked equal to the recorded ones.",
        [
            Row(
                "report after load",
                "report_s",
                "s",
                ("<=", 0.5),
                "The report scans cached columns; a miss means the machine was busy.",
            ),
            Row(
                "pandas / statemeter",
                "pandas_over_statemeter",
                "x",
                (">", 1.0),
                "pandas vectorises the same masks; statemeter must stay faster.",
            ),
            Row("DuckDB / statemeter", "duckdb_over_statemeter", "x"),
            Row("priced report", "report_priced_s", "s"),
            Row("pandas / statemeter, priced", "pandas_priced_over_statemeter", "x"),
            Row("DuckDB / statemeter, priced", "duckdb_priced_over_statemeter", "x"),
            Row("load (open + parse every record into columns)", "load_s", "s"),
            Row("columns RSS", "columns_rss_mib", "MiB"),
            Row(
                "of which request + attrs JSON (for re-classification)",
                "request_attrs_column_bytes_per_event",
                "bytes/event",
            ),
            Row(
                "report reading every event under another ruleset (after load)",
                "report_reclassify_s",
                "s",
                ("<=", 0.5),
                "Every event is classified again inside the report (two threads); a miss "
                "means the machine was busy: compare the CPU time below.",
            ),
            Row("the same, CPU time (all threads)", "report_reclassify_cpu_s", "s"),
            Row("re-classification alone (minus the plain report)", "reclassify_s", "s"),
            Row("the same report again (reading cached)", "report_reading_cached_s", "s"),
            Row("one cached reading (RSS)", "reading_rss_mib", "MiB"),
        ],
    ),
    Section(
        "startup",
        "Reports that start fast: 1,000,000 events",
        "The first report, costs() and sessions() in a fresh process (`Ledger.open` + the "
        "call; import timed apart), reading the column store the writer kept beside the ledger, "
        "and again with the column store moved away (every record read and parsed, as for a "
        "ledger without one); DuckDB over the Parquet export of the same events, cold (fresh "
        "process) and warm, cross-checked against the report; `ledger.events()` over every "
        "event (rows read from the records on demand).",
        [
            Row(
                "first report in a fresh process (open + report)",
                "report.first_s",
                "s",
                ("<=", 0.3),
                _startup_why("startup", "report", 0.3),
            ),
            Row("  its CPU time (all threads)", "report.first_cpu_s", "s"),
            Row("  waiting for a core (calling thread)", "report.first_wait_s", "s"),
            Row(
                "first costs() in a fresh process",
                "costs.first_s",
                "s",
                ("<=", 0.3),
                _startup_why("startup", "costs", 0.3),
            ),
            Row("  its CPU time", "costs.first_cpu_s", "s"),
            Row(
                "first sessions() in a fresh process",
                "sessions.first_s",
                "s",
                ("<=", 0.3),
                _startup_why("startup", "sessions", 0.3),
            ),
            Row("  its CPU time", "sessions.first_cpu_s", "s"),
            Row("peak RSS of the report process", "report.peak_rss_mib", "MiB"),
            Row("the same report again (columns cached)", "report.second_s", "s"),
            Row("import statemeter", "report.import_s", "s"),
            Row(
                "first report without the column store (every record)",
                "report_records.first_s",
                "s",
            ),
            Row("  its CPU time", "report_records.first_cpu_s", "s"),
            Row("  waiting for a core (calling thread)", "report_records.first_wait_s", "s"),
            Row("first costs() without the column store", "costs_records.first_s", "s"),
            Row("first sessions() without the column store", "sessions_records.first_s", "s"),
            Row(
                "records only / column store (first report)",
                "report_records_over_column_store",
                "x",
            ),
            Row("DuckDB over the Parquet export, cold (fresh process)", "duckdb.cold_s", "s"),
            Row("  its CPU time", "duckdb.cold_cpu_s", "s"),
            Row("DuckDB, warm (the same query again)", "duckdb.warm_s", "s"),
            Row("import duckdb", "duckdb.import_s", "s"),
            Row("DuckDB cold / statemeter first report", "duckdb_cold_over_report", "x"),
            Row("DuckDB warm / statemeter first report", "duckdb_warm_over_report", "x"),
            Row("column store on disk", "column_store_bytes_per_event", "bytes/event"),
            Row("ledger file", "ledger_bytes_per_event", "bytes/event"),
            *_EXPORT_ROWS,
            Row("ledger.events(): time", "events_memory.events_s", "s"),
            Row("ledger.events(): RSS", "events_memory.events_rss_mib", "MiB"),
            Row("iterating every event", "events_memory.iterate_s", "s"),
            Row("peak RSS while iterating", "events_memory.peak_rss_mib", "MiB"),
        ],
        lambda r: _startup_note(r),
    ),
    Section(
        "startup_10m",
        "Reports that start fast: 10,000,000 events",
        "As above at ten times the size.",
        [
            Row(
                "first report in a fresh process (open + report)",
                "report.first_s",
                "s",
                ("<=", 3.0),
                _startup_why("startup_10m", "report", 3.0),
            ),
            Row("  its CPU time (all threads)", "report.first_cpu_s", "s"),
            Row("  waiting for a core (calling thread)", "report.first_wait_s", "s"),
            Row(
                "first costs() in a fresh process",
                "costs.first_s",
                "s",
                ("<=", 3.0),
                _startup_why("startup_10m", "costs", 3.0),
            ),
            Row("  its CPU time", "costs.first_cpu_s", "s"),
            Row(
                "first sessions() in a fresh process",
                "sessions.first_s",
                "s",
                ("<=", 3.0),
                _startup_why("startup_10m", "sessions", 3.0),
            ),
            Row("  its CPU time", "sessions.first_cpu_s", "s"),
            Row(
                "peak RSS of the report process",
                "report.peak_rss_mib",
                "MiB",
                ("<", 1024),
                "Target: under 1 GiB resident.",
            ),
            Row(
                "peak RSS of the costs() process",
                "costs.peak_rss_mib",
                "MiB",
                ("<", 1024),
                _startup_rss_why("costs"),
            ),
            Row(
                "peak RSS of the sessions() process",
                "sessions.peak_rss_mib",
                "MiB",
                ("<", 1024),
                _startup_rss_why("sessions"),
            ),
            Row("the same report again (columns cached)", "report.second_s", "s"),
            Row("import statemeter", "report.import_s", "s"),
            Row("DuckDB over the Parquet export, cold (fresh process)", "duckdb.cold_s", "s"),
            Row("  its CPU time", "duckdb.cold_cpu_s", "s"),
            Row("DuckDB, warm (the same query again)", "duckdb.warm_s", "s"),
            Row("import duckdb", "duckdb.import_s", "s"),
            Row("DuckDB cold / statemeter first report", "duckdb_cold_over_report", "x"),
            Row("DuckDB warm / statemeter first report", "duckdb_warm_over_report", "x"),
            Row("column store on disk", "column_store_bytes_per_event", "bytes/event"),
            Row("ledger file", "ledger_bytes_per_event", "bytes/event"),
            *_EXPORT_ROWS,
        ],
        lambda r: _startup_note(r),
    ),
    Section(
        "report_10m",
        "Reports: 10,000,000 events",
        "The same report at ten times the size (the peers' frame is built from the records "
        "with SQLite's JSON functions; building 7 million Python event objects would need "
        "~10 GB).",
        [
            Row(
                "report after load (target: the 1M target x10)",
                "report_s",
                "s",
                ("<=", 5.0),
                "The target at 1M is 0.5 s; the scan is linear in the events.",
            ),
            Row(
                "pandas / statemeter",
                "pandas_over_statemeter",
                "x",
                (">", 1.0),
                "pandas vectorises the same masks; statemeter must stay faster.",
            ),
            Row("DuckDB / statemeter", "duckdb_over_statemeter", "x"),
            Row("priced report", "report_priced_s", "s"),
            Row("pandas / statemeter, priced", "pandas_priced_over_statemeter", "x"),
            Row("DuckDB / statemeter, priced", "duckdb_priced_over_statemeter", "x"),
            Row("load", "load_s", "s"),
            Row("columns RSS", "columns_rss_mib", "MiB"),
        ],
    ),
    Section(
        "spark_report",
        "Spark: a fleet's report",
        "`statemeter.spark.report` on Spark `local[2]` over one Parquet dataset exported by "
        "several ledgers, against `ledger.report` on the same ledgers and DuckDB "
        "(`parquet.contract_sql`) over the same dataset, in the same run; every answer is "
        "checked equal to `ledger.report`'s. CPU is user + system time of the whole process "
        "tree (the Spark JVM and its Python workers included). Spark is here for scale, not "
        "to beat one machine: docs/scale.md has the crossover.",
        [
            Row("events", "events"),
            Row("ledgers", "ledgers"),
            Row("writing the ledgers (4 processes)", "generate_s", "s"),
            Row("exporting them into the dataset", "export_s", "s"),
            Row("ledger.report, cold (open + first report)", "ledger_report_cold.wall_s", "s"),
            Row("ledger.report, warm (columns cached)", "ledger_report_warm.wall_s", "s"),
            Row("  CPU", "ledger_report_warm.cpu_s", "s"),
            Row("DuckDB, cold (plain contract, no costs)", "duckdb_cold.wall_s", "s"),
            Row("DuckDB, warm", "duckdb_warm.wall_s", "s"),
            Row("  CPU", "duckdb_warm.cpu_s", "s"),
            Row("Spark session start", "spark_start.wall_s", "s"),
            Row("spark.report, cold (first job)", "spark_report_cold.wall_s", "s"),
            Row("spark.report, warm", "spark_report_warm.wall_s", "s"),
            Row("  CPU, all processes", "spark_report_warm.cpu_s", "s"),
            Row("  CPU, JVM", "spark_report_warm.cpu_jvm_s", "s"),
            Row(
                "  CPU, Python workers (Rust engine)", "spark_report_warm.cpu_python_workers_s", "s"
            ),
            Row("spark.report, plain contract, no costs", "spark_report_plain.wall_s", "s"),
            Row("  CPU, all processes", "spark_report_plain.cpu_s", "s"),
            Row("Spark / ledger.report, warm", "ratio_spark_vs_ledger_warm", "x"),
            Row("Spark / ledger.report, cold", "ratio_spark_vs_ledger_cold", "x"),
            Row("Spark / DuckDB, same answer, warm", "ratio_spark_plain_vs_duckdb_warm", "x"),
            Row("  the same, CPU", "ratio_spark_plain_vs_duckdb_warm_cpu", "x"),
            Row("events per CPU second: ledger.report", "events_per_cpu_s.ledger_report_warm"),
            Row("events per CPU second: DuckDB", "events_per_cpu_s.duckdb_warm"),
            Row("events per CPU second: spark.report", "events_per_cpu_s.spark_report_warm"),
            Row(
                "events per CPU second: spark.report, plain",
                "events_per_cpu_s.spark_report_plain",
            ),
            Row("Spark equals ledger.report", "spark_equals_ledger_report"),
            Row("DuckDB equals ledger.report", "duckdb_equals_ledger_report"),
            Row("load average at the end", "loadavg_end"),
        ],
    ),
    Section(
        "arrow",
        "Arrow export",
        "`pyarrow.table(ledger.events())` for 1,000,000 events after load, against "
        "`pyarrow.parquet.read_table` of the same events.",
        [
            Row(
                "pyarrow.table(events)",
                "pyarrow_table_s",
                "s",
                ("<=", 1.0),
                "Arrays are built in Rust from the loaded rows; strings dominate.",
            ),
            Row(
                "vs parquet read_table",
                "ratio_vs_parquet_read",
                "x",
                ("<=", 3.0),
                "Parquet decoding is multi-threaded C++ over compact pages.",
            ),
            Row("events() load", "load_events_s", "s"),
            Row("polars DataFrame", "polars_dataframe_s", "s"),
            Row("to_pandas", "to_pandas_s", "s"),
        ],
    ),
    Section(
        "classify_batch",
        "Re-classifying Arrow batches: classify_batch",
        "`sm.classify_batch` under the strict ruleset on 65,536-row batches of a simulated "
        "fleet's exported columns (Arrow in through the C data interface, Rust out), CPU time "
        "of the calling thread (the Rust work runs on it) beside wall time. Rows that share the "
        "fields the ruleset reads share one classification (docs/scale.md); the worst case "
        "reads every event's id, so no two rows share one. Peer: `sm.classify` per event "
        "from Python.",
        [
            Row("events", "events"),
            Row(
                "typical fleet batch, per core (CPU)",
                "events_per_s_per_core",
                "events/s",
                (">=", 2_000_000),
                "Reading the batch's columns into the engine's layout and building the output "
                "columns cost more than classifying (see docs/scale.md).",
            ),
            Row("typical fleet batch, wall", "events_per_s_wall", "events/s"),
            Row(
                "plain strings (as Spark sends them), per core (CPU)",
                "plain_strings.events_per_s_per_core",
                "events/s",
            ),
            Row(
                "all-distinct inputs (worst case), per core (CPU)",
                "all_distinct_inputs.events_per_s_per_core",
                "events/s",
            ),
            Row("sm.classify per event, from Python", "sm_classify_per_event_ns", "ns"),
            Row("classify_batch vs sm.classify (CPU per event)", "ratio_batch_vs_sm_classify", "x"),
        ],
    ),
    Section(
        "bytes",
        "Ledger bytes per event",
        "The simulated fleet of `make demo` (`simulate.fleet(days=30, agents=12, seed=0, "
        'start="2026-04-13", sessions_per_agent_day=48)`) recorded into a file ledger, the '
        "WAL checkpointed, then measured with SQLite's `dbstat` (pages per table and index) and "
        "by splitting every record into its parts. The same events are also stored in the "
        "version-1 layout (id text with a `UNIQUE` index, classification inline in every "
        "record) in the same run, so the two layouts are compared over identical events.",
        [
            Row(
                "ledger file and its column store",
                "with_column_store_bytes_per_event",
                "B/event",
                ("<=", 300),
                _bytes_why,
            ),
            Row("ledger file", "ledger.bytes_per_event", "B/event"),
            Row("column store", "column_store.bytes_per_event", "B/event"),
            Row("record as stored", "ledger.stored_record_bytes_per_event", "B/event"),
            Row("chain hash as stored", "ledger.stored_hash_bytes_per_event", "B/event"),
            Row("version-1 layout, same events", "v1_layout.bytes_per_event", "B/event"),
            Row(
                "v1: classification object per record",
                "v1_layout.record.classification_bytes_per_event",
                "B/event",
            ),
            Row(
                "v1: distinct classification objects",
                "v1_layout.record.distinct_classifications",
            ),
            Row("v1: event object", "v1_layout.record.event_bytes_per_event", "B/event"),
            Row(
                "v1: event key names",
                "v1_layout.record.event_key_names_bytes_per_event",
                "B/event",
            ),
            Row(
                "v1: UUID text (id, session_id, parent_id)",
                "v1_layout.record.uuid_text_bytes_per_event",
                "B/event",
            ),
            Row(
                "v1: UNIQUE id text index",
                "v1_layout.objects_bytes_per_event.sqlite_autoindex_events_1",
                "B/event",
            ),
        ],
        extra=bytes_table,
    ),
    Section(
        "classify_request",
        "Capture: classify_request",
        "Classifying a raw HTTP request (a typical 2 KB chat body, JSON parse included), in "
        "Rust and through Python.",
        [
            Row(
                "Rust, 2 KB chat body (CPU)",
                "rust_chat_2kb_cpu_ns",
                "ns",
                ("<=", 2000),
                lambda: (
                    "The figure is the whole classification, not only the JSON pass: parsing "
                    "the URL and headers, skimming the body, building the event (its `request` "
                    "and `attrs` maps and strings, the venue evidence), running the rules and "
                    "dropping the result (see benches/classify_request.rs). In instructions, "
                    "which load does not move: "
                    f"{other('classify_request', 'rust_chat_2kb_instructions')} per request; "
                    "the body skim (a pass that validates every byte, as serde_json would) is "
                    "under a third of them, building and freeing the event (each key and string "
                    "of its `request` and `attrs` maps is its own allocation, ~30 in all) about "
                    "as much, the rules a tenth."
                ),
            ),
            Row("Rust, 2 KB chat body (wall)", "rust_chat_2kb_ns", "ns"),
            Row("Rust, 2 KB chat body (instructions)", "rust_chat_2kb_instructions"),
            Row("Python call", "python_call_ns", "ns"),
        ],
    ),
    Section(
        "httpx_hook",
        "Capture: httpx hook",
        "A loopback HTTP round trip (2 KB chat request, JSON answer with usage; the server in a "
        "process of its own) through three httpx2 clients in the same process: plain, plain "
        "again (the same code: an A/A control, the method's error under the load of the run) "
        "and instrumented. Blocks of 20 requests per client alternate over 200 rounds, the "
        "order rotating; each figure is the median of the per-round differences against the "
        "plain block of the same round. The calling thread pays the capture's transport "
        "(noting the time, sending the request through the client's own transport, wrapping "
        "the response's stream), observing the body as it is read and, at its end, handing "
        "the call over raw onto the meter's queue (method, URL, the headers the classifier "
        "reads and the response body copied; the request's body, a bytes object, held as it "
        "is): for a sync client all of it in "
        "Rust, no Python code of statemeter's per request. The meter's writer threads "
        "describe the request, read the usage, build the event, classify, encode, hash and "
        "commit (in the process figure, with the flush of what was recorded). Instructions: "
        "callgrind over the client process, the loopback server in a process of its own.",
        [
            Row(
                "hook, calling-thread CPU per request",
                "hook_cpu_us",
                "µs",
                ("<=", 10.0),
                lambda: (
                    "The calling thread's extra CPU is user time: "
                    f"{other('httpx_hook', 'hook_user_us', 'µs')} user and "
                    f"{other('httpx_hook', 'hook_system_us', 'µs')} system per request "
                    "(getrusage of the thread); the per-round differences spread over "
                    f"{other('httpx_hook', 'hook_cpu_spread_us', 'µs')} (interquartile range), "
                    "and the A/A control reads "
                    f"{other('httpx_hook', 'control_cpu_us', 'µs')} (spread "
                    f"{other('httpx_hook', 'control_cpu_spread_us', 'µs')}) at load average "
                    f"{other('httpx_hook', 'loadavg_before')}-"
                    f"{other('httpx_hook', 'loadavg_after')} on two cores. Cache misses, not "
                    "instructions, take the time: the client's own request (~1.46 million "
                    "instructions, and a sleep in poll while other processes run) evicts the "
                    "hook's code and data, fetched again on every request. Measured on the "
                    "event-hook build before this one: the same system calls per request as the "
                    "plain client (perf trace), no more context switches, page faults or "
                    "garbage collections, 25-30 µs added with the meter's writer threads idle; "
                    "in a loop without network, everything in cache, 9-11 µs, and 26-38 µs "
                    "with 16 MiB copied between requests to empty the caches. Callgrind's cache "
                    "model, on the calling thread of the loopback loop, puts the hook at "
                    f"{other('httpx_hook', 'hook_i1_misses')} misses of the 32 KiB L1 "
                    "instruction cache per request (each a 64-byte line of code; the plain "
                    f"request's own are {other('httpx_hook', 'plain_i1_misses')}) and "
                    f"{other('httpx_hook', 'hook_d1_misses')} of the data cache, for "
                    f"{other('httpx_hook', 'hook_instructions')} instructions (one hash seed, "
                    "the meter not closed in the counted runs). The transport build sends a sync "
                    "client's requests through one Rust transport wrapping the client's own, in "
                    "place of the two event hooks and the map of pending requests between them "
                    "(per request a weak reference, a tuple, two integer keys and three dict "
                    "operations), and reads the response's content headers without a string "
                    "per header. Callgrind's per-function profile of the same loop (200 "
                    "requests) puts the misses the hook adds at 1,574 per request, against "
                    "1,765 for the event hooks, while its instructions stayed at 18,400-21,100 "
                    "(the transport calls the client's own from Rust: one more entry into the "
                    "interpreter loop); the benchmark's own counts overlap from run to run "
                    "(the transport build 1,622-1,709 in three runs, the event hooks "
                    "1,592-1,771 in two), and the CPU figure (the transport build 16.5, 17.4 "
                    "and 18.6 µs in three runs at load average 4.7-8.7) cannot tell the two "
                    "builds apart at this load either. Of the "
                    "1,574, ~730 are in the hook's own code paths: ~390 in "
                    "the transport's method (constructing the body wrapper, a subclass of the "
                    "client's stream type, ~130; the content headers ~75; attribute reads and "
                    "the call into the client's transport), ~320 in iterating the body and the "
                    "hand-over at its end (copying the request for the writer: ~240). The other "
                    "~850 are misses in the client's and the interpreter's own code that the "
                    "hook's code evicts. Handing the writer references instead of copies (the "
                    "writer reading the request under the interpreter lock) would save at most "
                    "the ~240 of the hand-over: under 10 µs needs the hook's footprint about "
                    "halved, which none of these steps does alone. The build on file makes the "
                    "body wrapper in Rust without calling its class (no argument tuple, Python "
                    "integers or str per response), reads the request's URL once, and hands the "
                    "writer the request's body, a bytes object, by reference instead of a copy "
                    "(a malloc past glibc's per-thread cache, freed on the writer's thread). Two "
                    "runs of it (fat-LTO release, 2026-12-07, load average 8.3 and 6.0): "
                    "10,401 and 12,958 instructions, 1,313 and 1,490 instruction-cache misses, "
                    "1,182 and 1,074 data-cache misses per request, against 20,286, 1,529 and "
                    "1,102 for the transport build run on this machine idle (load 0.0). Its CPU "
                    "figure does not resolve at that load: -14.8 µs (spread 332.0, A/A -51.8) "
                    "in the first run, 27.3 µs (spread 63.1, A/A -11.6) in the second, "
                    "against 26.6 µs (spread 70.3, A/A -3.4) for the transport build idle. "
                    "A third run with the machine nearly idle (19:33 UTC, load 1.1, the run on "
                    "file): 30.4 µs (spread 55.9, A/A 4.4), 15,268 instructions, 1,456 and "
                    "1,286 misses, while the plain request's own CPU went from 546 to 629 µs "
                    "between the two idle runs: the machine itself was slower. The "
                    "instruction-cache misses fell by 3% to 14%: the target stays missed. "
                    "Against the client's own "
                    f"{other('httpx_hook', 'plain_cpu_us', 'µs')} of CPU per request."
                ),
            ),
            Row("plain request, calling-thread CPU", "plain_cpu_us", "µs"),
            Row("hook, calling-thread instructions per request", "hook_instructions"),
            Row("hook, L1 instruction-cache misses per request", "hook_i1_misses"),
            Row("hook, L1 data-cache misses per request", "hook_d1_misses"),
            Row("hook, calling-thread user time", "hook_user_us", "µs"),
            Row("hook, calling-thread system time", "hook_system_us", "µs"),
            Row("A/A control, calling-thread CPU", "control_cpu_us", "µs"),
            Row("hook, process CPU (writer threads included)", "hook_process_cpu_us", "µs"),
            Row("plain round trip (wall)", "plain_round_trip_us", "µs"),
            Row("hook (wall)", "hook_cost_us", "µs"),
            Row("wall overhead", "overhead_pct", "%"),
        ],
    ),
    Section(
        "runtime_bedrock_agent_trace",
        "Runtime steps: Bedrock Agents trace",
        "Consuming a 100-step InvokeAgent response stream (`enableTrace`, AWS event-stream "
        "frames parsed by botocore, replayed from tests/data/runtimes/) with and without the "
        "botocore capture reading its trace (from the stream's raw bytes, once the stream has "
        "ended, on the ledger's writer thread) and recording the outer call and its 100 "
        "children "
        "(file ledger, batch durability; many short blocks of 10 streams in rotating order, "
        "medians of the per-block ratios and differences against the plain block of the same "
        "round; an A/A control, plain measured against itself the same way, gives the "
        "method's error under the load of the run). Read only: the same hooks into a target "
        "that is not a `Session` (where the trace is read on the calling thread), given the "
        "steps as mappings it drops. The target is the "
        "time the caller spends consuming the stream: the calling thread's CPU time. It is "
        "taken paced: before each stream the ledger's writer has finished the work earlier "
        "streams handed it (an untimed `meter.flush()` between streams, in every variant "
        "alike), because that is how InvokeAgent calls follow each other in use: each takes "
        "seconds of network time, and the writer's work on a stream (reading its trace and its "
        "~100 events: one to two milliseconds of CPU, the writer threads' row below) is done "
        "long before the next call. Replayed back to back, with no time "
        "between streams, the writer's work on one stream runs on the other vCPU while the "
        "caller consumes the next, and the caller's own instructions take longer beside it: "
        "that figure is beside the paced one, as are the process's CPU time (the writer "
        "threads included; paced, its clock also runs over the flush after each stream, so "
        "that the writer's work on the stream counts) and the calling thread's instructions "
        "(callgrind), which load cannot move.",
        [
            Row(
                "added CPU of the caller, read and recorded, paced",
                "caller_overhead_cpu_pct",
                "%",
                ("<=", 5.0),
                _runtime_trace_why,
            ),
            Row("added CPU of the caller per stream, paced", "paced.caller_added_cpu_us", "µs"),
            Row(
                "A/A control, paced: plain against itself, caller CPU",
                "paced.caller_control_cpu_pct",
                "%",
            ),
            Row(
                "A/A control, paced: per-round differences, interquartile range",
                "paced.caller_control_spread_cpu_us",
                "µs",
            ),
            Row(
                "added CPU of the caller, read and recorded, back to back",
                "back_to_back.caller_overhead_cpu_pct",
                "%",
            ),
            Row(
                "added CPU of the caller per stream, back to back",
                "back_to_back.caller_added_cpu_us",
                "µs",
            ),
            Row(
                "A/A control, back to back: plain against itself, caller CPU",
                "back_to_back.caller_control_cpu_pct",
                "%",
            ),
            Row(
                "A/A control, back to back: per-round differences, interquartile range",
                "back_to_back.caller_control_spread_cpu_us",
                "µs",
            ),
            Row(
                "added instructions of the caller (callgrind)",
                "caller_overhead_instructions_pct",
                "%",
            ),
            Row(
                "added instructions of the caller, read only (callgrind)",
                "caller_read_only_overhead_instructions_pct",
                "%",
            ),
            Row(
                "added CPU of the process, read and recorded, paced",
                "paced.overhead_cpu_pct",
                "%",
            ),
            Row("added CPU of the process per stream, paced", "paced.added_cpu_us", "µs"),
            Row(
                "of which the ledger's writer threads, paced",
                "paced.writer_added_cpu_us",
                "µs",
            ),
            Row(
                "added CPU of the process, read and recorded, back to back",
                "back_to_back.overhead_cpu_pct",
                "%",
            ),
            Row(
                "added CPU of the caller, read only (steps handed over as mappings), paced",
                "paced.caller_read_only_overhead_cpu_pct",
                "%",
            ),
            Row(
                "added CPU of the caller, read only, back to back",
                "back_to_back.caller_read_only_overhead_cpu_pct",
                "%",
            ),
            Row(
                "added CPU of the process, read only, paced",
                "paced.read_only_overhead_cpu_pct",
                "%",
            ),
            Row("consuming the stream, caller", "paced.consume_caller_cpu_us", "µs"),
            Row("consuming the stream, process", "paced.consume_cpu_us", "µs"),
            Row("added wall time, paced", "paced.overhead_wall_pct", "%"),
        ],
        lambda r: _runtime_trace_note(r),
    ),
    Section(
        "transparency",
        "Merkle tree, checkpoints and proofs",
        "What keeping the RFC 9162 tree adds to appending (bounded above by building the whole "
        "tree apart), building it for an existing ledger against verify(), a signed checkpoint "
        "when the tree is current, and proofs (benches/transparency.rs, release, no Python).",
        [
            Row("events", "events"),
            Row(
                "tree share of sustained recording, at most",
                "recording.tree_share_of_recording_at_most",
                "%",
                ("<=", 10.0),
                "The bound charges the tree with reading every record back, which the writer "
                "never does (it hashes the record it just built).",
                scale=100.0,
            ),
            Row("recording (Meter, batch)", "recording.recording_events_per_s", "events/s"),
            Row(
                "tree share of Store::append alone, at most",
                "tree_share_of_append_at_most",
                "%",
                scale=100.0,
            ),
            Row("append with tree", "append_with_tree_wall_s", "s"),
            Row("build tree", "build_tree_wall_s", "s"),
            Row("verify", "verify_wall_s", "s"),
            Row("build / verify", "build_over_verify", "x", ("<=", 3.0)),
            Row("checkpoint", "checkpoint_wall_ms", "ms", ("<=", 50.0)),
            Row("inclusion proof", "inclusion_proof_wall_us", "µs", ("<=", 1000.0)),
            Row("consistency proof", "consistency_proof_wall_us", "µs"),
        ],
    ),
    *[
        Section(
            f"integration_{name}",
            f"Integration: {title}",
            f"An offline {title} agent run with and without the integration (A/B blocks).",
            [
                Row(
                    "wall overhead",
                    "run.overhead_pct",
                    "%",
                    ("<=", 5.0),
                    lambda name=name: (
                        "The integration records several events per offline run (no "
                        "network, so each run is only a few ms). Replaying the captured "
                        "callbacks back to back, it adds "
                        f"{other(f'integration_{name}', 'added_cpu_us_per_run', 'µs')} of CPU "
                        "per run "
                        f"({other(f'integration_{name}', 'added_cpu_pct', '%')} of the run's "
                        "CPU). In the run itself the integration's callbacks take "
                        f"{other(f'integration_{name}', 'in_run_callbacks_us_per_run', 'µs')} "
                        "per run on the agent's thread alone (wall time around each call): "
                        "called one at a time between the framework's own steps, each finds "
                        "its code and data out of the CPU's caches, where the replay runs them "
                        "back to back. The process's CPU (the agent's thread and the meter's "
                        "writer threads) grows by "
                        f"{other(f'integration_{name}', 'run.overhead_cpu_pct', '%')} "
                        "(load average "
                        f"{other(f'integration_{name}', 'machine.loadavg')} on 2 cores when it "
                        "ran); the run's writer also commits a few events every few "
                        "milliseconds where the replay writes many runs' events in a few large "
                        "commits (see the LangGraph section for what each such commit costs)."
                    ),
                ),
                Row("added CPU per run", "added_cpu_us_per_run", "µs"),
                Row("added CPU", "added_cpu_pct", "%"),
                Row("callbacks in the run, agent's thread", "in_run_callbacks_us_per_run", "µs"),
            ],
            _integration_method,
        )
        if name != "langgraph"
        else Section(
            "integration_langgraph",
            f"Integration: {title}",
            "An offline LangGraph agent run (a tool-calling graph on a fake chat model and an "
            "`InMemorySaver`, a new thread per run) with and without `MeterCallbackHandler` "
            "and `MeteredCheckpointer`: in the run itself (A/B blocks) and replayed.",
            _langgraph_rows(),
            _langgraph_note,
        )
        for name, title in (
            ("openai_agents", "OpenAI Agents SDK"),
            ("langgraph", "LangChain / LangGraph"),
            ("otel", "OpenTelemetry"),
        )
    ],
    Section(
        "otel_processor",
        "OpenTelemetry: the span processor per span",
        "What `MeterSpanProcessor` adds per span, live, against the OpenTelemetry SDK's own "
        "span cost (a provider without processors), same traces in alternating blocks: GenAI "
        "agent traces (3 events per 4 spans) and non-GenAI spans (no event).",
        [
            Row("SDK span alone, CPU (GenAI spans)", "genai.sdk.thread_ns", "ns"),
            Row("SDK + a no-op processor, CPU", "genai.sdk_noop_processor.thread_ns", "ns"),
            Row("processor added, calling thread CPU", "genai.processor_thread_ns", "ns"),
            Row("  / SDK span", "genai.ratio_thread_ns", "x"),
            Row(
                "processor added, all threads CPU (writer included)",
                "genai.processor_process_ns",
                "ns",
            ),
            Row("  / SDK span", "genai.ratio_process_ns", "x"),
            Row("processor added, wall", "genai.processor_wall_ns", "ns"),
            Row("SDK span alone, CPU (non-GenAI spans)", "plain.sdk.thread_ns", "ns"),
            Row(
                "processor added, calling thread CPU (non-GenAI)", "plain.processor_thread_ns", "ns"
            ),
            Row("  / SDK span", "plain.ratio_thread_ns", "x"),
        ],
    ),
]


def machine_section() -> str:
    machines, loads = {}, []
    for path in sorted(RESULTS.glob("*.json")):
        m = json.loads(path.read_text()).get("machine")
        if m:
            key = json.dumps({k: v for k, v in m.items() if k != "loadavg"}, sort_keys=True)
            machines.setdefault(key, []).append(path.stem)
            if m.get("loadavg") is not None:
                loads.append(f"{path.stem} {m['loadavg']:.1f}")
    lines = ["## Machine", ""]
    if not machines:
        return "\n".join(lines + ["_No results yet._", ""])
    for key, names in machines.items():
        m = json.loads(key)
        lines.append(
            f"- {m.get('cpu')}, {m.get('cores')} cores; {m.get('platform')}; Python "
            f"{m.get('python')}; statemeter {m.get('statemeter')}"
            f"{'; extension built ' + m['build'] if m.get('build') else ''} "
            f"({', '.join(names)})"
        )
    if loads:
        lines.append(
            f"- 1-minute load average when each benchmark started: {', '.join(loads)} "
            "(above the core count means other work competed for the CPUs)"
        )
    return "\n".join(lines) + "\n"


def render() -> str:
    parts, all_missed = [], []
    for section in SECTIONS:
        text, missed = section.render()
        parts.append(text)
        all_missed += [f"{section.title} — {m[2:]}" for m in missed]
    summary = ["## Targets missed", ""]
    summary += [f"- {m}" for m in all_missed] or ["None of the results on file misses a target."]
    return "\n".join(
        [
            "# Performance",
            "",
            "Generated by `benches/summarise.py` from `benches/results/*.json` — do not edit by "
            "hand. `make bench` builds the extension in release mode, runs every benchmark "
            "(`benches/run.py`, each peer in the same process and the same run) and regenerates "
            "this file; `python benches/run.py --only NAME` reruns one and regenerates it too. "
            "Targets are the ones the issues set; each section gives the command behind its "
            "figures.",
            "",
            machine_section(),
            "\n".join(summary) + "\n",
            *parts,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    Path(args.out).write_text(render())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
