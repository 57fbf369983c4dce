"""Reports that start fast: the first report, cost table or sessions summary in a fresh process,
against DuckDB over the Parquet export of the same events, cold and warm, in the same run.

A ledger of `bench_report`'s workload is recorded by a `Meter` (which keeps the column store
beside it as it commits); then each measurement runs in its own fresh Python process:

- ``report`` / ``costs`` / ``sessions``: ``Ledger.open`` + the first call, reading the columns
  from the column store (the tail after its last whole segment from the part segment the
  meter kept when it closed) — target
  <= 0.3 s at 1,000,000 events, <= 3 s and peak RSS < 1 GiB at 10,000,000;
- the same with the column store moved away (``*_records``): every record read and parsed, as
  a ledger without a column store (version 1, or written by an earlier release) is read (at
  1,000,000 events only: ``startup_10m`` says why in ``records_not_run``);
- ``duckdb_cold``: a fresh process running `statemeter.parquet.contract_sql` (the same report's
  event and token columns) over the Parquet export; ``duckdb_warm``: the same query again in
  that process. Results are cross-checked against the report cell by cell.

Before those, in this process: recording the ledger (``bench_report.generate``; its CPU time
per event, all threads) and ``Ledger.open(path).export_parquet(dir)`` (the dataset DuckDB
reads): wall and CPU time, events per second of each, files and bytes per event written.

Each child also times ``import statemeter`` (or ``import duckdb``), and a second call in the
same process: for the report, the report engine alone (columns cached), so that the first call
minus the second is what loading the columns cost; ``costs()`` keeps no columns (it reads the
column store a segment at a time) and reads them again; ``sessions()`` returns the table the
first call returned, still held. Wall and CPU time (all threads), and peak RSS (``ru_maxrss``)
of the child (VmHWM). ``*_wait_s``: how long the calling thread was runnable but waiting for
a core during the step (``/proc/thread-self/schedstat``), the part of the wall time that is
the machine's load.

``events``: RSS after ``ledger.events()`` over every event and peak RSS while iterating all of
them, in a fresh process.

    python benches/run.py --only startup,startup_10m
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
BY = ["venue", "month"]
PRICES = HERE.parent / "examples" / "prices" / "illustrative.toml"
# Events per column store segment (src/stored/column_store.rs).
SEGMENT_EVENTS = 65_536


def _child(*argv: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *argv], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - t[0], time.process_time() - t[1]


def _wait_s() -> float:
    """Seconds the calling thread has spent runnable but waiting for a core
    (``/proc/thread-self/schedstat``, its second field): wall time beyond the CPU time that
    is the machine's load, not sleeping, I/O or a lock. 0.0 where it is not available."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; ``ru_maxrss`` would include the parent's
    peak before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _ledger_child(what: str, path: str) -> dict:
    t = _clock()
    import statemeter as sm
    from bench_report import CONTRACT

    import_s, import_cpu_s = _since(t)
    contract = sm.Contract.from_toml(CONTRACT)
    prices = sm.PriceTable.load(PRICES)
    calls = {
        "report": lambda ledger: ledger.report(contract, by=BY),
        "costs": lambda ledger: ledger.costs(prices, by=BY),
        "sessions": lambda ledger: ledger.sessions(),
    }
    call = calls[what]
    w = _wait_s()
    t = _clock()
    ledger = sm.Ledger.open(path)
    result = call(ledger)
    first_s, first_cpu_s = _since(t)
    first_wait_s = _wait_s() - w
    t = _clock()
    again = call(ledger)
    second_s, second_cpu_s = _since(t)
    rows = result.to_pylist() if what == "report" else None
    assert len(again) == len(result)
    return {
        "import_s": import_s,
        "import_cpu_s": import_cpu_s,
        "first_s": first_s,
        "first_cpu_s": first_cpu_s,
        "first_wait_s": first_wait_s,
        "second_s": second_s,
        "second_cpu_s": second_cpu_s,
        "rows": len(result),
        "peak_rss_mib": _peak_rss_mib(),
        "report": rows,
    }


def _duckdb_child(dataset: str) -> dict:
    t = _clock()
    import duckdb
    import statemeter as sm
    from bench_report import CONTRACT
    from statemeter import parquet

    import_s, import_cpu_s = _since(t)
    sql = parquet.contract_sql(
        sm.Contract.from_toml(CONTRACT), parquet.dataset_source(dataset), by=BY
    )
    w = _wait_s()
    t = _clock()
    con = duckdb.connect()
    rows = con.execute(sql).fetchall()
    cold_s, cold_cpu_s = _since(t)
    cold_wait_s = _wait_s() - w
    t = _clock()
    con.execute(sql).fetchall()
    warm_s, warm_cpu_s = _since(t)
    return {
        "import_s": import_s,
        "import_cpu_s": import_cpu_s,
        "cold_s": cold_s,
        "cold_cpu_s": cold_cpu_s,
        "cold_wait_s": cold_wait_s,
        "warm_s": warm_s,
        "warm_cpu_s": warm_cpu_s,
        "peak_rss_mib": _peak_rss_mib(),
        "rows": [list(r) for r in rows],
    }


def _events_child(path: str) -> dict:
    import gc

    import statemeter as sm
    from common import rss_mib

    gc.collect()
    rss0 = rss_mib()
    t = _clock()
    ledger = sm.Ledger.open(path)
    events = ledger.events()
    open_s, _ = _since(t)
    after = rss_mib() - rss0
    n = 0
    tokens = 0
    t = _clock()
    for e in events:
        n += 1
        if e.kind == "model_call":
            tokens += e.input_tokens
    iterate_s, iterate_cpu_s = _since(t)
    assert n == len(events)
    return {
        "events_s": open_s,
        "events_rss_mib": after,
        "iterate_s": iterate_s,
        "iterate_cpu_s": iterate_cpu_s,
        "peak_rss_mib": _peak_rss_mib(),
        "events": n,
    }


def _cross_check(report: list[dict], duck: list[list]) -> None:
    """DuckDB's rows (interpretation, clause, venue, month, covered events/input/output,
    violating events/input/output) equal the report's."""
    ours = {
        (r["interpretation"], r["clause"], r["venue"], r["month"]): (
            r["covered_events"],
            r["covered_input_tokens"],
            r["covered_output_tokens"],
            r["violating_events"],
            r["violating_input_tokens"],
            r["violating_output_tokens"],
        )
        for r in report
    }
    theirs = {tuple(r[:4]): tuple(r[4:10]) for r in duck}
    assert ours == theirs, "DuckDB over the Parquet export disagrees with the report"


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else 0


def _bench(n: int, events_memory: bool, records: str | None = None) -> dict:
    """``records``: why the ``*_records`` variants are not run (they are, when None)."""
    import statemeter as sm
    from bench_report import generate

    tmp = Path(tempfile.mkdtemp(prefix="statemeter-bench-startup-"))
    try:
        path = tmp / "ledger.db"
        cpu = time.process_time()
        gen = generate(str(path), n)
        generate_cpu_s = time.process_time() - cpu
        columns_dir = path.with_name(path.name + ".columns")
        segments = len(list(columns_dir.iterdir())) if columns_dir.is_dir() else 0
        column_bytes = _dir_bytes(columns_dir)
        w = _wait_s()
        t = _clock()
        exported = sm.Ledger.open(path).export_parquet(tmp / "ds")
        export_s, export_cpu_s = _since(t)
        export_wait_s = _wait_s() - w
        dataset_bytes = sum(f.stat().st_size for f in (tmp / "ds").rglob("*.parquet"))
        out: dict = {
            "events": gen["events"],
            "generate_events_per_s": gen["events_per_s"],
            "generate_cpu_us_per_event": generate_cpu_s / gen["events"] * 1e6,
            "ledger_bytes_per_event": os.path.getsize(path) / gen["events"],
            "column_store_segments": segments,
            # Events the first calls read from the records: those after the segment files
            # (0 when the meter kept its tail as a part segment when it closed).
            "records_tail_events": max(0, gen["events"] - segments * SEGMENT_EVENTS),
            "column_store_bytes_per_event": column_bytes / gen["events"],
            "export_parquet_s": export_s,
            "export_parquet_cpu_s": export_cpu_s,
            "export_parquet_wait_s": export_wait_s,
            "export_events_per_s": exported.events / export_s,
            "export_events_per_cpu_s": exported.events / export_cpu_s,
            "export_files": len(exported.files),
            "export_bytes_per_event": dataset_bytes / gen["events"],
        }
        report = None
        for what in ("report", "costs", "sessions"):
            r = _child("ledger", what, str(path))
            report = r.pop("report") or report
            out[what] = r
        aside = tmp / "columns-aside"
        for what in ("report", "costs", "sessions") if records is None else ():
            # Without a column store: every record read (the reader saves the segments again,
            # which are removed before the next child).
            columns_dir.rename(aside)
            try:
                r = _child("ledger", what, str(path))
            finally:
                shutil.rmtree(columns_dir, ignore_errors=True)
                aside.rename(columns_dir)
            r.pop("report")
            out[f"{what}_records"] = r
        if records is not None:
            out["records_not_run"] = records
        duck = _child("duckdb", str(tmp / "ds"))
        assert report is not None
        _cross_check(report, duck.pop("rows"))
        out["duckdb"] = duck
        if events_memory:
            out["events_memory"] = _child("events", str(path))
        first = out["report"]["first_s"]
        if records is None:
            out["report_records_over_column_store"] = out["report_records"]["first_s"] / first
        out["duckdb_cold_over_report"] = duck["cold_s"] / first
        out["duckdb_warm_over_report"] = duck["warm_s"] / first
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_startup(quick: bool) -> dict:
    out = _bench(100_000 if quick else 1_000_000, events_memory=True)
    out["targets"] = {
        "report.first_s": "<= 0.3",
        "costs.first_s": "<= 0.3",
        "sessions.first_s": "<= 0.3",
    }
    return out


def bench_startup_10m(quick: bool) -> dict:
    out = _bench(
        200_000 if quick else 10_000_000,
        events_memory=False,
        records=(
            "The first calls without the column store (every record read and parsed, as for a "
            "ledger without one) are measured at 1,000,000 events by the startup benchmark; "
            "they are linear in the events (ten times its CPU time here) and no target "
            "applies to them at this size."
        ),
    )
    out["targets"] = {
        f"{call}.{figure}": bound
        for call in ("report", "costs", "sessions")
        for figure, bound in (("first_s", "<= 3"), ("peak_rss_mib", "< 1024"))
    }
    return out


BENCHES = {"startup": bench_startup, "startup_10m": bench_startup_10m}

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    kind = sys.argv[1]
    if kind == "ledger":
        result = _ledger_child(sys.argv[2], sys.argv[3])
    elif kind == "duckdb":
        result = _duckdb_child(sys.argv[2])
    else:
        result = _events_child(sys.argv[2])
    print(json.dumps(result))
