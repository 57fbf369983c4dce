"""Fleet-scale benchmarks (docs/scale.md):

- ``classify_batch``: events per second per core of ``sm.classify_batch`` (Arrow in, Rust
  rules engine, Arrow out) on 65,536-row batches of an exported dataset's columns, CPU time of
  the calling thread beside wall time: the typical fleet batch (dictionary strings), the same
  with plain strings (as Spark sends them), and the worst case for shared verdicts (every
  row's inputs distinct); peer: ``sm.classify`` per event from Python.
- ``spark_report``: ``statemeter.spark.report`` on Spark ``local[2]`` against
  ``ledger.report`` (Rust, each ledger in turn) and DuckDB (``parquet.contract_sql``, no costs)
  over the same events and the same dataset, in the same run; ratios of wall and of CPU time
  (the whole process tree: driver, Spark JVM, Python workers), cold and warm, every answer
  checked equal to ``ledger.report``'s. 10,000,000 events written by 4 ledgers (a fleet of 4
  hosts; ``--quick``: 200,000 events, 2 ledgers).

    python benches/run.py --only classify_batch,spark_report
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

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


def _host(job: tuple[str, int, int]) -> dict:
    """One host of the fleet, in its own process: writes its ledger (bench_report.generate,
    the generator of the 10,000,000-event report benchmark, seeded per host)."""
    from bench_report import generate

    path, n, seed = job
    return generate(path, n, seed=seed)


def _export(path: str, dest: str) -> float:
    t0 = time.perf_counter()
    sm.Ledger.open(path).export_parquet(dest)
    return time.perf_counter() - t0


def _tree_cpu() -> dict[str, float]:
    """CPU seconds (user + system, reaped children included) of this process, the Spark JVM
    it started and the Python workers that JVM forks."""
    import psutil

    me = psutil.Process()
    out = {"driver": 0.0, "jvm": 0.0, "python_workers": 0.0}
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            name = p.name()
        except psutil.Error:
            continue
        part = "driver" if p.pid == me.pid else "jvm" if name == "java" else "python_workers"
        out[part] += t.user + t.system + t.children_user + t.children_system
    return out


def _measured(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """fn() with its wall time and the CPU time of the process tree, by part."""
    c0, w0 = _tree_cpu(), time.perf_counter()
    out = fn()
    wall, c1 = time.perf_counter() - w0, _tree_cpu()
    cpu = {k: c1[k] - c0[k] for k in c0}
    return out, {"wall_s": wall, "cpu_s": sum(cpu.values()), **{f"cpu_{k}_s": cpu[k] for k in cpu}}


def _summed(reports: list[list[dict]]) -> list[dict]:
    """Per-ledger report rows added cell by cell (a cost cell that is null in every ledger stays
    null): the fleet's report when no session spans two ledgers, as here."""
    total: list[dict] = [dict(r) for r in reports[0]]
    for rows in reports[1:]:
        for t, r in zip(total, rows, strict=True):
            assert (t["interpretation"], t["clause"]) == (r["interpretation"], r["clause"])
            for c, v in r.items():
                if c not in ("interpretation", "clause") and v is not None:
                    t[c] = (t[c] or 0) + v
    return total


def bench_spark_report(quick: bool) -> dict:
    import duckdb
    from pyspark.sql import SparkSession
    from statemeter import spark as sms

    target = 200_000 if quick else 10_000_000
    hosts = 2 if quick else 4
    driver_memory = "2g"
    work = Path(tempfile.mkdtemp(prefix="statemeter-bench-spark-"))
    ds = str(work / "ds")
    try:
        # The fleet: `hosts` ledgers written in parallel (one process per core), exported
        # into one dataset (the first export alone: it writes the dataset's settings).
        paths = [str(work / f"host{h}.db") for h in range(hosts)]
        ctx = multiprocessing.get_context("spawn")
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2, mp_context=ctx) as pool:
            gens = list(pool.map(_host, [(p, target // hosts, h) for h, p in enumerate(paths)]))
            generate_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            _export(paths[0], ds)
            list(pool.map(_export, paths[1:], [ds] * (hosts - 1)))
            export_s = time.perf_counter() - t0
        n = sum(g["events"] for g in gens)
        contract, prices = sm.Contract.load(CONTRACT), sm.PriceTable.load(PRICES)
        # The contract without its strict readings, for the peers that cannot classify.
        plain = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2025.toml")

        # ledger.report on every ledger (one machine, one ledger after the other): cold is
        # open + the first report (every record read into columns), warm the same report on
        # the cached columns. The process's CPU time (the engine uses up to 2 threads).
        def ledger_reports(ledgers: list[sm.Ledger], c: sm.Contract, p: Any) -> list[dict]:
            return _summed([lg.report(c, p).to_pylist() for lg in ledgers])

        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        ledgers = [sm.Ledger.open(p) for p in paths]
        want = ledger_reports(ledgers, contract, prices)
        ledger_cold = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
        c0, t0 = time.process_time(), time.perf_counter()
        again = ledger_reports(ledgers, contract, prices)
        ledger_warm = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
        assert again == want
        want_plain = ledger_reports(ledgers, plain, None)
        del ledgers
        gc.collect()

        # DuckDB over the dataset: the plain contract's event and token columns (no costs, no
        # strict readings: those need the Rust engine). Cold: a new connection's first query.
        sql = parquet.contract_sql(plain, parquet.dataset_source(ds))
        con = duckdb.connect()
        c0, t0 = time.process_time(), time.perf_counter()
        duck = con.execute(sql).fetchall()
        duck_cold = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
        c0, t0 = time.process_time(), time.perf_counter()
        assert con.execute(sql).fetchall() == duck
        duck_warm = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
        con.close()
        token_cols = [
            "covered_events",
            "covered_input_tokens",
            "covered_output_tokens",
            "violating_events",
            "violating_input_tokens",
            "violating_output_tokens",
        ]
        duck_equal = [list(r) for r in duck] == [
            [r["interpretation"], r["clause"], *(r[c] for c in token_cols)] for r in want_plain
        ]

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark, start = _measured(
            lambda: (
                SparkSession.builder.master("local[2]")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.sql.shuffle.partitions", "4" if quick else "16")
                .config("spark.driver.memory", driver_memory)
                .getOrCreate()
            )
        )
        try:
            df = sms.read_dataset(spark, ds)

            def spark_report(c: sm.Contract, p: Any) -> list[dict]:
                return [r.asDict() for r in sms.report(df, c, p).collect()]

            # Cold: the session's first job (Python workers start, the JVM's code is cold).
            got, spark_cold = _measured(lambda: spark_report(contract, prices))
            again, spark_warm = _measured(lambda: spark_report(contract, prices))
            got_plain, spark_plain = _measured(lambda: spark_report(plain, None))
        finally:
            spark.stop()
        spark_equal = got == want and again == want
        plain_equal = got_plain == want_plain
        assert spark_equal and plain_equal and duck_equal, (spark_equal, plain_equal, duck_equal)
        totals = {
            r["interpretation"]: {
                c: r[c] for c in ("covered_events", "violating_events", "covered_cost_nanos")
            }
            for r in want
        }
        per_core = {
            "ledger_report_warm": n / ledger_warm["cpu_s"],
            "duckdb_warm": n / duck_warm["cpu_s"],
            "spark_report_warm": n / spark_warm["cpu_s"],
            "spark_report_plain": n / spark_plain["cpu_s"],
        }
        return {
            "events": n,
            "ledgers": hosts,
            "totals": totals,
            "generate_s": generate_s,
            "export_s": export_s,
            "ledger_report_cold": ledger_cold,
            "ledger_report_warm": ledger_warm,
            "duckdb_cold": duck_cold,
            "duckdb_warm": duck_warm,
            "spark_start": start,
            "spark_report_cold": spark_cold,
            "spark_report_warm": spark_warm,
            "spark_report_plain": spark_plain,
            "spark_equals_ledger_report": spark_equal,
            "spark_plain_equals_ledger_report": plain_equal,
            "duckdb_equals_ledger_report": duck_equal,
            "ratio_spark_vs_ledger_warm": spark_warm["wall_s"] / ledger_warm["wall_s"],
            "ratio_spark_vs_ledger_cold": spark_cold["wall_s"] / ledger_cold["wall_s"],
            "ratio_spark_plain_vs_duckdb_warm": spark_plain["wall_s"] / duck_warm["wall_s"],
            "ratio_spark_plain_vs_duckdb_cold": spark_plain["wall_s"] / duck_cold["wall_s"],
            "ratio_spark_plain_vs_duckdb_warm_cpu": spark_plain["cpu_s"] / duck_warm["cpu_s"],
            "events_per_cpu_s": per_core,
            "spark_driver_memory": driver_memory,
            "loadavg_end": os.getloadavg()[0],
            "notes": (
                f"{hosts} ledgers (bench_report.generate, one seed per host) exported into one "
                "Parquet dataset; Spark local[2] (driver memory "
                f"{driver_memory}): the rulesets contract with prices, cold then warm, and the "
                "plain contract without prices (DuckDB's answer); ledger.report over every "
                "ledger in turn (cold: open + first report), results summed; every answer "
                "checked equal to ledger.report's; CPU is user + system of the process tree "
                "(driver, JVM, Python workers)"
            ),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


BENCHES = {"classify_batch": bench_classify_batch, "spark_report": bench_spark_report}
