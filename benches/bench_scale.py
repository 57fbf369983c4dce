"""Reports at 10,000,000 events: `bench_report` (1M) again at ten times the size, against the
same pandas and DuckDB aggregations in the same process, cross-checked cell by cell.

At this size the peers' input frame is built straight from the ledger's records with SQLite's
JSON functions (setup, not timed) instead of through `ledger.events()`: materialising 7 million
events as Python objects would need ~10 GB. `session_tag` is derived as statemeter defines it
(a session is stateful when any of its events has `session_stateful`); the cross-check proves
the frame right. ``--quick`` runs the same code at 200,000 events.

    python benches/run.py --only report_10m
"""

from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import tempfile
import time

import statemeter as sm
from bench_report import CONTRACT, best, duckdb_sql, generate, pandas_report, slots
from common import rss_mib
from statemeter._records import FROM_RECORDS
from statemeter._records import classification_key as ck
from statemeter._records import event_key as ek

# The records in either layout (docs/ledger-format.md: version 1 `event`, version 2 `e` and `c`).
MODEL_CALLS = f"""
SELECT {ek("ts")}, {ek("provider")}, {ek("model")}, {ek("venue")}, {ck("tag")},
       {ek("session_id")}, {ek("input_tokens")}, {ek("cached_tokens")}, {ek("output_tokens")}
FROM {FROM_RECORDS} WHERE {ek("kind")} = 'model_call' ORDER BY r.seq
"""
STATEFUL_SESSIONS = f"""
SELECT {ek("session_id")} FROM {FROM_RECORDS} WHERE {ck("session_stateful")} GROUP BY 1
"""


def frame_from_records(path: str, prices):
    """The model calls as a pandas DataFrame with an exact cost column, from the records."""
    import pandas as pd

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        stateful = {row[0] for row in con.execute(STATEFUL_SESSIONS)}
        cols: dict[str, list] = {
            k: []
            for k in (
                "ts",
                "provider",
                "venue",
                "tag",
                "session_tag",
                "input_tokens",
                "output_tokens",
                "cost",
            )
        }
        cost = prices.cost
        for ts, provider, model, venue, tag, sid, inp, cached, out in con.execute(MODEL_CALLS):
            cols["ts"].append(ts)
            cols["provider"].append(provider)
            cols["venue"].append(venue)
            cols["tag"].append(tag)
            cols["session_tag"].append(
                None if sid is None else "stateful" if sid in stateful else "stateless"
            )
            cols["input_tokens"].append(inp)
            cols["output_tokens"].append(out)
            cols["cost"].append(
                cost(
                    {
                        "kind": "model_call",
                        "provider": provider,
                        "model": model,
                        "api": "responses",
                        "venue": venue,
                        "ts": ts,
                        "input_tokens": inp,
                        "cached_tokens": cached or 0,
                        "output_tokens": out,
                    }
                )
            )
    finally:
        con.close()
    df = pd.DataFrame(cols)
    df["cost"] = df["cost"].astype("Int64")
    return df


def bench_report_10m(quick: bool) -> dict:
    import duckdb

    n = 200_000 if quick else 10_000_000
    repeats = 3
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "report10m.db")
        gen = generate(path, n)
        contract = sm.Contract.from_toml(CONTRACT)
        prices = sm.PriceTable.load(
            os.path.join(os.path.dirname(__file__), "..", "examples", "prices", "illustrative.toml")
        )
        by = ["venue", "month"]
        gc.collect()
        rss0 = rss_mib()
        t0 = time.perf_counter()
        ledger = sm.Ledger.open(path)
        first = ledger.report(contract, by=by)
        load_s = time.perf_counter() - t0
        rss_cols = rss_mib() - rss0
        report_s = best(lambda: ledger.report(contract, by=by), repeats)
        report_priced_s = best(lambda: ledger.report(contract, prices, by=by), repeats)
        priced = ledger.report(contract, prices, by=by)

        t0 = time.perf_counter()
        df = frame_from_records(path, prices)
        frame_s = time.perf_counter() - t0
        sl = slots(contract)
        con = duckdb.connect()
        con.register("calls", df.drop(columns=["cost"]).assign(cost=df["cost"].astype("int64")))
        sql, sql_priced = duckdb_sql(sl, False), duckdb_sql(sl, True)
        ours = {
            (r["interpretation"], r["clause"], r["venue"] or "<none>", r["month"]): (
                r["covered_events"],
                r["violating_events"],
                r["covered_cost_nanos"],
                r["violating_cost_nanos"],
            )
            for r in priced.to_pylist()
        }
        theirs = {
            (r.interpretation, r.clause, v, m): (
                r.covered_events,
                r.violating_events,
                int(r.covered_cost_nanos),
                int(r.violating_cost_nanos),
            )
            for (v, m), r in pandas_report(df, sl, True).iterrows()
        }
        assert ours == theirs, "pandas disagrees with statemeter"
        duck = {
            (r[0], r[1], r[2] or "<none>", r[3]): (r[4], r[7], int(r[11]), int(r[10]))
            for r in con.execute(sql_priced).fetchall()
        }
        assert duck == ours, "DuckDB disagrees with statemeter"
        assert len(first) == len(priced)
        pandas_s = best(lambda: pandas_report(df, sl, False), repeats)
        pandas_priced_s = best(lambda: pandas_report(df, sl, True), repeats)
        duckdb_s = best(lambda: con.execute(sql).fetchall(), repeats)
        duckdb_priced_s = best(lambda: con.execute(sql_priced).fetchall(), repeats)
        con.close()
        model_calls = len(df)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "events": gen["events"],
        "model_calls": model_calls,
        "generate_events_per_s": gen["events_per_s"],
        "load_s": load_s,
        "columns_rss_mib": rss_cols,
        "report_s": report_s,
        "report_priced_s": report_priced_s,
        "peer_frame_setup_s": frame_s,
        "pandas_s": pandas_s,
        "pandas_priced_s": pandas_priced_s,
        "duckdb_s": duckdb_s,
        "duckdb_priced_s": duckdb_priced_s,
        "pandas_over_statemeter": pandas_s / report_s,
        "pandas_priced_over_statemeter": pandas_priced_s / report_priced_s,
        "duckdb_over_statemeter": duckdb_s / report_s,
        "duckdb_priced_over_statemeter": duckdb_priced_s / report_priced_s,
        "report_rows": len(first),
        "notes": "as bench_report at 10x the events; the peers' frame comes from the records "
        "through SQLite's JSON functions (not timed); statemeter prices inside "
        "report_priced_s, the peers get exact per-event costs precomputed",
    }


BENCHES = {"report_10m": bench_report_10m}
