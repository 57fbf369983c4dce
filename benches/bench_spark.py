"""Fleet-scale benchmarks (docs/scale.md):

- ``classify_batch``: events per second per core of ``sm.classify_batch`` (Arrow in, Rust
  rules engine, Arrow out) on 65,536-row batches of an exported dataset's columns, CPU time of
  the calling thread beside wall time: the typical fleet batch (dictionary strings), the same
  with plain strings (as Spark sends them), and the worst case for shared verdicts (every
  row's inputs distinct); peer: ``sm.classify`` per event from Python.
- ``spark_report``: ``statemeter.spark.report`` on Spark ``local[2]`` against
  ``ledger.report`` (one ledger, Rust) and DuckDB (``parquet.contract_sql``, no costs) over the
  same events and the same dataset, in the same run; ratios. The full size is 10,000,000
  events (``--quick``: 200,000).

    python benches/run.py --only classify_batch,spark_report
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import statemeter as sm
from statemeter import parquet, simulate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONTRACT = EXAMPLES / "contracts" / "model-access-2025-rulesets.toml"
PRICES = EXAMPLES / "prices" / "illustrative.toml"
BATCH = 65_536


def _fleet_events(target: int, path: Path | None = None) -> sm.Ledger:
    """A simulated fleet of about ``target`` events (30 days, 12 agents)."""
    per_agent_day = max(1.0, target / (30 * 12 * 2.78))
    return simulate.fleet(
        days=30, agents=12, seed=1, sessions_per_agent_day=per_agent_day, path=path
    ).ledger


# A rule on `id` makes every row's inputs distinct: the worst case for sharing verdicts.
ALL_DISTINCT = """
name = "all-distinct"
extends = "strict"

[[rule]]
id = "one-event"
when = { id = "no-such-event" }
explain = "reads every event's id, so no two rows share their inputs"
"""


def _events(records: list) -> list[dict]:
    """The event objects of `(seq, record text)` rows in seq order from the first: a
    version-2 record's own keys with its context's (inline, or the record at the seq it
    names; docs/ledger-format.md)."""
    contexts: dict[int, dict] = {}
    out = []
    for seq, text in records:
        rec = json.loads(text)
        if rec.get("v") != 2:
            out.append(rec["event"])
            continue
        if isinstance(rec["c"], dict):
            contexts[seq] = rec["c"]
        context = contexts[rec["c"]] if isinstance(rec["c"], int) else rec["c"]
        out.append({**rec["e"], **context["event"]})
    return out


def _classify_rate(batches: list, ruleset: sm.Ruleset, rounds: int) -> dict:
    """CPU time of the calling thread (the Rust work runs on it) beside wall time."""
    n = sum(b.num_rows for b in batches) * rounds
    c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
    for _ in range(rounds):
        for b in batches:
            sm.classify_batch(b, ruleset)
    cpu, wall = time.thread_time_ns() - c0, time.perf_counter_ns() - w0
    return {
        "events": n,
        "cpu_s": cpu / 1e9,
        "wall_s": wall / 1e9,
        "cpu_ns_per_event": cpu / n,
        "events_per_s_per_core": n / (cpu / 1e9),
        "events_per_s_wall": n / (wall / 1e9),
    }


def bench_classify_batch(quick: bool) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc

    ledger = _fleet_events(50_000 if quick else 300_000)
    table = pa.table(ledger.events())
    batches = table.combine_chunks().to_batches(max_chunksize=BATCH)
    # As Spark hands them over: plain strings instead of dictionaries.
    plain = pa.table(
        {
            n: pc.cast(c, pa.string()) if pa.types.is_dictionary(c.type) else c
            for n, c in zip(table.column_names, table.columns, strict=True)
        }
    )
    plain_batches = plain.combine_chunks().to_batches(max_chunksize=BATCH)
    strict = sm.Ruleset.strict()
    rounds = 1 if quick else 3
    typical = _classify_rate(batches, strict, rounds)
    spark_strings = _classify_rate(plain_batches, strict, rounds)
    worst = _classify_rate(batches, sm.Ruleset.from_toml(ALL_DISTINCT), rounds)
    # Peer: one sm.classify call per event from Python.
    records = ledger.sql("SELECT seq, record FROM events ORDER BY seq LIMIT 20000").rows()
    events = _events(records)
    p0 = time.perf_counter_ns()
    for e in events:
        sm.classify(e, strict)
    per_event_python = (time.perf_counter_ns() - p0) / len(events)
    per_core = typical["events_per_s_per_core"]
    return {
        "events": typical["events"],
        "batch_rows": BATCH,
        "cpu_s": typical["cpu_s"],
        "wall_s": typical["wall_s"],
        "events_per_s_per_core": per_core,
        "events_per_s_wall": typical["events_per_s_wall"],
        "target_events_per_s_per_core": 2_000_000,
        "target_met": per_core >= 2_000_000,
        "plain_strings": spark_strings,
        "all_distinct_inputs": worst,
        "sm_classify_per_event_ns": per_event_python,
        "ratio_batch_vs_sm_classify": per_event_python / typical["cpu_ns_per_event"],
        "note": (
            "a simulated 30-day fleet exported as the dataset's columns (dictionary strings), "
            "65,536-row batches, strict ruleset, 3 rounds; CPU time of the calling thread (the "
            "Rust work runs on it) beside wall time; plain_strings: the same batches with "
            "plain strings, as Spark sends them; all_distinct_inputs: the worst case, a "
            "ruleset reading every event's id so that no two rows share a classification"
        ),
    }


def bench_spark_report(quick: bool) -> dict:
    import duckdb
    from pyspark.sql import SparkSession
    from statemeter import spark as sms

    target = 200_000 if quick else 10_000_000
    work = Path(tempfile.mkdtemp(prefix="statemeter-bench-spark-"))
    try:
        t0 = time.perf_counter()
        ledger = _fleet_events(target, work / "fleet.db")
        generate_s = time.perf_counter() - t0
        n = len(ledger)
        t0 = time.perf_counter()
        ledger.export_parquet(work / "ds")
        export_s = time.perf_counter() - t0
        contract, prices = sm.Contract.load(CONTRACT), sm.PriceTable.load(PRICES)
        # ledger.report: the one-ledger Rust engine (columns loaded once, then cached).
        t0 = time.perf_counter()
        want = ledger.report(contract, prices).to_pylist()
        ledger_s = time.perf_counter() - t0
        # DuckDB over the same dataset (event and token columns; no money in SQL). The
        # dataset's strict interpretations need the ledger: DuckDB runs the contract without
        # them.
        plain = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2025.toml")
        t0 = time.perf_counter()
        duckdb.sql(parquet.contract_sql(plain, parquet.dataset_source(work / "ds"))).fetchall()
        duckdb_s = time.perf_counter() - t0
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        t0 = time.perf_counter()
        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.driver.memory", "3g")
            .getOrCreate()
        )
        start_s = time.perf_counter() - t0
        try:
            df = sms.read_dataset(spark, work / "ds")
            t0 = time.perf_counter()
            got = [r.asDict() for r in sms.report(df, contract, prices).collect()]
            spark_s = time.perf_counter() - t0
        finally:
            spark.stop()
        return {
            "events": n,
            "generate_s": generate_s,
            "export_s": export_s,
            "ledger_report_s": ledger_s,
            "duckdb_report_s": duckdb_s,
            "spark_start_s": start_s,
            "spark_report_s": spark_s,
            "spark_equals_ledger_report": got == want,
            "ratio_spark_vs_ledger": spark_s / ledger_s,
            "ratio_spark_vs_duckdb": spark_s / duckdb_s,
            "spark_events_per_s": n / spark_s,
            "ledger_events_per_s": n / ledger_s,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


BENCHES = {"classify_batch": bench_classify_batch, "spark_report": bench_spark_report}
