"""Reports: 1,000,000 events in a file ledger, three interpretations × two clauses grouped by
venue and month, against the same aggregation in pandas and in DuckDB in the same process.

Steps timed:
- ``load``: ``Ledger.open`` + the first report (reads and parses every record into columns);
- ``report``: a report after load (columns cached) — target <= 0.5 s;
- ``report_priced``: the same with a price table (statemeter prices every event inside the
  timed step; the peers get a precomputed exact cost column for free);
- ``costs``: ``ledger.costs(prices, by=venue,month)``;
- ``report_reclassify``: the same report with every interpretation read under a ruleset the
  ledger's events were not classified with (``ruleset = ...``, the strict ruleset under a new
  name each repeat, so that nothing is cached): every event classified again, in Rust, inside
  the report; wall and CPU time (all threads) — target <= 0.5 s. ``report_reading_cached``: the
  same report again (the reading is kept with the columns).
Peers run the same semantics (versioned clause periods, call/session level, venue check,
month bucket from ts) on a DataFrame / DuckDB table built from the same ledger; the results
are cross-checked cell by cell before timing.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time

import statemeter as sm
from common import rss_mib
from draws import Draws, Weighted

DATA = os.path.join(os.path.dirname(__file__), "..", "tests", "data")
# Two clauses (one amended on 2026-04-27) under three interpretations.
with open(os.path.join(DATA, "contracts", "two-providers-amended.toml"), encoding="utf-8") as f:
    CONTRACT = f.read()

START = 1_761_955_200 * 10**9  # 2025-11-01
SPAN = 240 * 86_400 * 10**9  # eight months
PROVIDERS = [
    ("openai", "gpt-5", 60),
    ("azure.ai.openai", "gpt-5", 10),
    ("anthropic", "claude-sonnet-4-5", 15),
    ("aws.bedrock", "anthropic.claude-sonnet-4-5", 15),
]
VENUES = [("azure", 60), ("aws", 25), ("openai", 10), ("gcp", 5)]
AGENTS = ["support", "sales", "ops"]
TENANTS = ["acme", "globex"]


def generate(path: str, n: int, seed: int = 7) -> dict:
    """Records about `n` events: sessions of a start, ~8 model calls (20% of sessions continue
    stored responses), a tool call, sometimes a provider memory write (runtime sessions), an end.
    `seed` picks the random draws (one per host of a simulated fleet)."""
    # The draws of random.Random(seed), in the same order (benches/draws.py: the same values
    # without random's per-call argument checks, which cost more than each recorded event).
    rng = Draws(seed)
    venues, providers = Weighted(VENUES), Weighted(PROVIDERS)
    randint = rng.randint
    random_ = rng.random
    azure_or_aws = {"azure.ai.openai": "azure", "aws.bedrock": "aws"}.get
    meter = sm.Meter(path)
    t0 = time.perf_counter()
    written = 0
    ts = START
    step = SPAN // n
    while written < n:
        venue = venues.pick(rng)[0]
        runtime = random_() < 0.05
        stateful = random_() < 0.2
        kw = {"runtime": "agentcore", "runtime_session_id": f"rs{written}"} if runtime else {}
        s = meter.session(
            agent=rng.choice(AGENTS),
            tenant=rng.choice(TENANTS),
            venue=venue,
            **kw,
        )
        s.start()
        model_call = s.model_call
        for k in range(randint(5, 11)):
            provider, model, _ = providers.pick(rng)
            # Azure OpenAI is served on Azure, Bedrock on AWS; the others where the session is.
            at = azure_or_aws(provider)
            ts += step
            # A chain: its first call asks the provider to store the response (stateless
            # under the default ruleset, stateful under strict), the others continue it.
            req = (
                ({"previous_response_id": f"r{k}"} if k > 0 else {"store": True})
                if stateful
                else None
            )
            inp = randint(200, 8000)
            model_call(
                provider=provider,
                model=model,
                venue=at,
                api="responses" if req else "chat.completions",
                request=req,
                input_tokens=inp,
                cached_tokens=inp // randint(2, 9),
                output_tokens=randint(20, 900),
                ts=ts,
            )
            written += 1
        s.tool_call("search", effect="read", ts=ts)
        if runtime:
            s.state_op("write", store="agentcore-memory", holder="provider", bytes=2048, ts=ts)
            written += 1
        s.end()
        written += 3
    meter.flush()
    elapsed = time.perf_counter() - t0
    meter.close()
    return {"events": written, "seconds": elapsed, "events_per_s": written / elapsed}


def frame(ledger, prices):
    """The model calls as a pandas DataFrame (setup, not timed), with an exact cost column."""
    import pandas as pd

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
    for e in ledger.events(kind="model_call"):
        cols["ts"].append(e.ts)
        cols["provider"].append(e.provider)
        cols["venue"].append(e.venue)
        cols["tag"].append(e.tag)
        cols["session_tag"].append(e.session_tag)
        cols["input_tokens"].append(e.input_tokens)
        cols["output_tokens"].append(e.output_tokens)
        cols["cost"].append(prices.cost(e))
    df = pd.DataFrame(cols)
    df["cost"] = df["cost"].astype("Int64")
    return df


def slots(contract):
    """(interpretation, clause, [(providers, required, from_ns, until_ns, level, tags)])."""
    import datetime as dt

    def ns(s):
        return None if s is None else int(dt.datetime.fromisoformat(s).timestamp()) * 10**9

    out = []
    for interp, clause in contract.slots:
        versions = []
        for c in contract.clauses:
            if c["id"] == clause and interp in c["interpretations"]:
                i = c["interpretations"][interp]
                versions.append(
                    (
                        c["providers"],
                        c["required_venues"],
                        ns(c["effective_from"]),
                        ns(c["effective_until"]),
                        i["level"],
                        i["tags"],
                    )
                )
        out.append((interp, clause, versions))
    return out


def pandas_report(df, contract_slots, priced: bool):
    import pandas as pd

    month = pd.to_datetime(df["ts"], unit="ns").dt.strftime("%Y-%m")
    parts = []
    for interp, clause, versions in contract_slots:
        covered = pd.Series(False, index=df.index)
        violating = pd.Series(False, index=df.index)
        for providers, required, lo, hi, level, tags in versions:
            m = df["provider"].isin(providers)
            if lo is not None:
                m &= df["ts"] >= lo
            if hi is not None:
                m &= df["ts"] < hi
            m &= (df["tag"] if level == "call" else df["session_tag"]).isin(tags)
            covered |= m
            violating |= m & ~df["venue"].isin(required)
        agg = {
            "covered_events": covered,
            "covered_input_tokens": df["input_tokens"].where(covered, 0),
            "covered_output_tokens": df["output_tokens"].where(covered, 0),
            "violating_events": violating,
            "violating_input_tokens": df["input_tokens"].where(violating, 0),
            "violating_output_tokens": df["output_tokens"].where(violating, 0),
        }
        if priced:
            agg["covered_cost_nanos"] = df["cost"].where(covered, 0)
            agg["violating_cost_nanos"] = df["cost"].where(violating, 0)
        g = (
            pd.DataFrame(agg)[covered]
            .groupby([df["venue"][covered].fillna("<none>"), month[covered]])
            .sum()
        )
        g["interpretation"], g["clause"] = interp, clause
        parts.append(g)
    return pd.concat(parts)


def duckdb_sql(contract_slots, priced: bool) -> str:
    def lst(xs):
        return "(" + ", ".join(f"'{x}'" for x in xs) + ")"

    selects = []
    for interp, clause, versions in contract_slots:
        cov, vio = [], []
        for providers, required, lo, hi, level, tags in versions:
            cond = [
                f"provider IN {lst(providers)}",
                f"{'tag' if level == 'call' else 'session_tag'} IN {lst(tags)}",
            ]
            if lo is not None:
                cond.append(f"ts >= {lo}")
            if hi is not None:
                cond.append(f"ts < {hi}")
            c = " AND ".join(cond)
            cov.append(f"({c})")
            vio.append(f"({c} AND (venue IS NULL OR venue NOT IN {lst(required)}))")
        cost = (
            ", sum(CASE WHEN v THEN cost ELSE 0 END) AS violating_cost, sum(cost) AS covered_cost"
            if priced
            else ""
        )
        selects.append(
            f"SELECT '{interp}' AS interpretation, '{clause}' AS clause, venue, month, "
            f"count(*) AS covered_events, sum(input_tokens), sum(output_tokens), "
            f"sum(CASE WHEN v THEN 1 ELSE 0 END) AS violating_events, "
            f"sum(CASE WHEN v THEN input_tokens ELSE 0 END), "
            f"sum(CASE WHEN v THEN output_tokens ELSE 0 END){cost} FROM ("
            f"SELECT *, strftime(make_timestamp(ts // 1000), '%Y-%m') AS month, "
            f"({' OR '.join(vio)}) AS v FROM calls WHERE {' OR '.join(cov)}) "
            f"GROUP BY venue, month"
        )
    return " UNION ALL ".join(selects)


def reading_contract(name: str) -> str:
    """The bench contract with every interpretation read under the ruleset named ``name``."""
    return CONTRACT.replace("\ntags = ", f'\nruleset = "{name}"\ntags = ')


def request_attrs_bytes(path: str) -> int:
    """Bytes of the canonical JSON of every event's request and attrs (what the columns keep
    for re-classification), read with SQLite's JSON functions (minified, key order kept)."""
    import sqlite3

    con = sqlite3.connect(path)
    from statemeter._records import FROM_RECORDS, event_key

    (n,) = con.execute(
        f"SELECT coalesce(sum(length({event_key('request')})), 0) + "
        f"coalesce(sum(length({event_key('attrs')})), 0) FROM {FROM_RECORDS}"
    ).fetchone()
    con.close()
    return int(n)


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_report(quick: bool) -> dict:
    import duckdb

    n = 100_000 if quick else 1_000_000
    repeats = 3 if quick else 5
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "report.db")
    gen = generate(path, n)
    contract = sm.Contract.from_toml(CONTRACT)
    prices = sm.PriceTable.load(
        os.path.join(os.path.dirname(__file__), "..", "examples", "prices", "illustrative.toml")
    )
    by = ["venue", "month"]

    rss0 = rss_mib()
    t0 = time.perf_counter()
    ledger = sm.Ledger.open(path)
    first = ledger.report(contract, by=by)
    load_s = time.perf_counter() - t0
    rss_cols = rss_mib() - rss0

    report_s = best(lambda: ledger.report(contract, by=by), repeats)

    # Every event classified again under a ruleset the ledger has no reading for yet.
    def fresh(i: int) -> sm.Contract:
        rs = sm.Ruleset.from_toml(f'extends = "strict"\nname = "strict-{i}"')
        return sm.Contract.from_toml(reading_contract("fresh"), rulesets={"fresh": rs})

    fresh_contracts = [fresh(i) for i in range(repeats + 1)]
    gc.collect()
    rss1 = rss_mib()
    ledger.report(fresh_contracts[-1], by=by)  # one reading kept: its memory
    reading_rss = rss_mib() - rss1
    walls, cpus = [], []
    for c in fresh_contracts[:-1]:
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        strict_report = ledger.report(c, by=by)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    reclassify_s, reclassify_cpu_s = min(walls), min(cpus)
    cached_s = best(lambda: ledger.report(fresh_contracts[0], by=by), repeats)
    # Cross-checks: read under the ruleset the events were recorded with, every cell is the
    # recorded one; the strict reading covers no more stateless calls than the recorded one.
    as_recorded = {
        (r["interpretation"], r["clause"], r["venue"], r["month"]): r for r in first.to_pylist()
    }
    default = ledger.report(sm.Contract.from_toml(reading_contract("default")), by=by).to_pylist()
    assert {(r["interpretation"], r["clause"], r["venue"], r["month"]): r for r in default} == (
        as_recorded
    ), "the default reading disagrees with the recorded classification"
    strict_rows = strict_report.to_pylist()
    strict_covered = sum(r["covered_events"] for r in strict_rows)
    recorded_covered = sum(r["covered_events"] for r in first.to_pylist())
    assert strict_covered < recorded_covered, "the strict reading should cover fewer calls"
    text_bytes = request_attrs_bytes(path)
    report_priced_s = best(lambda: ledger.report(contract, prices, by=by), repeats)
    costs_s = best(lambda: ledger.costs(prices, by=by), repeats)
    priced = ledger.report(contract, prices, by=by)

    df = frame(ledger, prices)
    sl = slots(contract)
    con = duckdb.connect()
    con.register("calls", df.drop(columns=["cost"]).assign(cost=df["cost"].astype("int64")))
    sql, sql_priced = duckdb_sql(sl, False), duckdb_sql(sl, True)

    # Cross-check: the three engines agree on every (interpretation, clause, venue, month).
    ours = {
        (r["interpretation"], r["clause"], r["venue"] or "<none>", r["month"]): (
            r["covered_events"],
            r["violating_events"],
            r["covered_cost_nanos"],
            r["violating_cost_nanos"],
        )
        for r in priced.to_pylist()
    }
    pdr = pandas_report(df, sl, True)
    theirs = {
        (r.interpretation, r.clause, v, m): (
            r.covered_events,
            r.violating_events,
            int(r.covered_cost_nanos),
            int(r.violating_cost_nanos),
        )
        for (v, m), r in pdr.iterrows()
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
    return {
        "events": gen["events"],
        "model_calls": len(df),
        "generate_events_per_s": gen["events_per_s"],
        "load_s": load_s,
        "columns_rss_mib": rss_cols,
        "report_s": report_s,
        "report_priced_s": report_priced_s,
        "costs_s": costs_s,
        "pandas_s": pandas_s,
        "pandas_priced_s": pandas_priced_s,
        "duckdb_s": duckdb_s,
        "duckdb_priced_s": duckdb_priced_s,
        "pandas_over_statemeter": pandas_s / report_s,
        "pandas_priced_over_statemeter": pandas_priced_s / report_priced_s,
        "duckdb_over_statemeter": duckdb_s / report_s,
        "duckdb_priced_over_statemeter": duckdb_priced_s / report_priced_s,
        "report_rows": len(first),
        "report_reclassify_s": reclassify_s,
        "report_reclassify_cpu_s": reclassify_cpu_s,
        "reclassify_s": reclassify_s - report_s,
        "report_reading_cached_s": cached_s,
        "reading_rss_mib": reading_rss,
        "reading_bytes_per_event": reading_rss * 2**20 / gen["events"],
        "strict_covered_events": strict_covered,
        "recorded_covered_events": recorded_covered,
        "request_attrs_text_bytes_per_event": text_bytes / gen["events"],
        # The text itself plus two 8-byte offsets per event.
        "request_attrs_column_bytes_per_event": text_bytes / gen["events"] + 16,
        "targets": {
            "report_s": "<= 0.5",
            "report_reclassify_s": "<= 0.5",
            "pandas_over_statemeter": "> 1",
        },
        "notes": "peers get the model calls pre-loaded in memory and exact per-event costs "
        "precomputed; statemeter prices inside report_priced_s",
    }


BENCHES = {"report": bench_report}
