"""Arrow export: ``pyarrow.table(ledger.events())`` for 1,000,000 events (after the events
are loaded), against ``pyarrow.parquet.read_table`` of the same events, in the same process.
Also the sessions table, polars and pandas conversions, and a Parquet dataset export."""

from __future__ import annotations

import gc
import os
import tempfile
import time

import statemeter as sm
from statemeter import simulate


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _best_cpu(fn, repeats: int) -> float:
    """Best process CPU time (all threads): the work done, whatever else the machine runs."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def bench_arrow(quick: bool) -> dict:
    """1M simulated fleet events: ledger -> Arrow (Rust) vs Parquet -> Arrow (pyarrow)."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    # sessions_per_agent_day=360 over 30 days and 12 agents is about 1.0M events.
    per_day = 72 if quick else 360
    repeats = 3 if quick else 5
    tmp = tempfile.mkdtemp()
    t0 = time.perf_counter()
    fleet = simulate.fleet(
        days=30,
        agents=12,
        seed=0,
        path=os.path.join(tmp, "fleet.db"),
        sessions_per_agent_day=per_day,
    )
    simulate_s = time.perf_counter() - t0
    n = fleet.events
    ledger = sm.Ledger.open(os.path.join(tmp, "fleet.db"))
    t0 = time.perf_counter()
    events = ledger.events()
    load_s = time.perf_counter() - t0
    pa.table(events[:10])  # pyarrow's one-time initialisation, not ours
    table = pa.table(events)
    arrow_s = _best(lambda: pa.table(events), repeats)
    arrow_cpu_s = _best_cpu(lambda: pa.table(events), repeats)
    path = os.path.join(tmp, "events.parquet")
    pq.write_table(table, path)
    parquet_s = _best(lambda: pq.read_table(path), repeats)
    parquet_cpu_s = _best_cpu(lambda: pq.read_table(path), repeats)
    polars_s = _best(lambda: pl.DataFrame(events), repeats)
    pandas_s = _best(lambda: events.to_pandas(), 1)
    sessions = ledger.sessions()
    sessions_s = _best(lambda: pa.table(ledger.sessions()), repeats)
    out = os.path.join(tmp, "dataset")
    t0 = time.perf_counter()
    ledger.export_parquet(out)
    export_s = time.perf_counter() - t0
    return {
        "events": n,
        "simulate_s": simulate_s,
        "load_events_s": load_s,
        "pyarrow_table_s": arrow_s,
        "parquet_read_table_s": parquet_s,
        "ratio_vs_parquet_read": arrow_s / parquet_s,
        "pyarrow_table_cpu_s": arrow_cpu_s,
        "parquet_read_table_cpu_s": parquet_cpu_s,
        "load_average_1m": os.getloadavg()[0],
        "polars_dataframe_s": polars_s,
        "to_pandas_s": pandas_s,
        "sessions": len(sessions),
        "sessions_arrow_s": sessions_s,
        "export_parquet_dataset_s": export_s,
        "targets": {"pyarrow_table_s": "<= 1.0 for 1M events", "ratio_vs_parquet_read": "<= 3"},
    }


BENCHES = {"arrow": bench_arrow}
