"""statemeter.spark on Spark in local mode (local[2], offline): three ledgers written by three
processes (a fleet split by host) exported into one dataset; the Spark report equals the
ledgers' reports, Spark re-classification equals sm.classify, Spark verification finds an
edited record. One SparkSession for the module (the JVM takes seconds to start)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import statemeter as sm
from conftest import expand_records
from statemeter import parquet, simulate

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("pyspark", reason="statemeter[spark] is not installed")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs a Java runtime (17 or later): none found", allow_module_level=True)

# PySpark warns about the pandas major version installed beside it; it reaches pandas only
# for createDataFrame here, with plain rows.
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONTRACT = EXAMPLES / "contracts" / "model-access-2025-rulesets.toml"
PRICES = EXAMPLES / "prices" / "illustrative.toml"
HOSTS = 3
FLEET = {"days": 2, "agents": 3, "sessions_per_agent_day": 5, "start": "2026-03-02"}

HOST = """
import sys
from statemeter import simulate
simulate.fleet(seed=int(sys.argv[2]), path=sys.argv[1], **{fleet!r})
"""


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # Python workers run this interpreter (with statemeter and pyarrow importable).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("statemeter-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Three host ledgers, each written by its own process, and one ledger of all events."""
    root = tmp_path_factory.mktemp("fleet")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOST.format(fleet=FLEET), str(root / f"host{h}.db"), str(h)]
        )
        for h in range(HOSTS)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * HOSTS
    with sm.Meter(root / "all.db") as meter:
        for h in range(HOSTS):
            simulate.fleet(seed=h, meter=meter, **FLEET)
    ledgers = [sm.Ledger.open(root / f"host{h}.db") for h in range(HOSTS)]
    dataset = root / "ds"
    for ledger in ledgers:
        ledger.export_parquet(dataset, include_records=True)
    return root, ledgers, sm.Ledger.open(root / "all.db"), dataset


def key(row, by):
    return (row["interpretation"], row["clause"], *(row[b] for b in by))


def summed(reports, by):
    """The reports' rows added cell by cell (None + None stays None)."""
    total: dict = {}
    for r in reports:
        for row in r.to_pylist():
            k = key(row, by)
            if k not in total:
                total[k] = dict(row)
                continue
            for c, v in row.items():
                if c in ("interpretation", "clause", *by) or v is None:
                    continue
                total[k][c] = (total[k][c] or 0) + v
    return total


@pytest.mark.parametrize("by", [(), ("venue",)])
def test_spark_report_equals_the_ledgers_reports(spark, fleet, by):
    from statemeter import spark as sms

    _, ledgers, everything, dataset = fleet
    df = sms.read_dataset(spark, dataset)
    assert df.select("ledger_id").distinct().count() == HOSTS
    got = [r.asDict() for r in sms.report(df, CONTRACT, PRICES, by=by).collect()]
    want = everything.report(CONTRACT, PRICES, by=list(by) or None).to_pylist()
    assert got == want  # same columns, values and order as the ledger holding every event
    assert any(r["covered_cost_nanos"] for r in got)
    parts = summed([lg.report(CONTRACT, PRICES, by=list(by) or None) for lg in ledgers], by)
    assert {key(r, by): r for r in got} == parts


@pytest.mark.parametrize("by", [("agent", "session_tag", "month")])
def test_spark_report_of_a_contract_read_as_recorded_moves_only_the_columns_it_reads(
    spark, fleet, by
):
    from statemeter import _core
    from statemeter import spark as sms

    _, _, everything, dataset = fleet
    plain = EXAMPLES / "contracts" / "model-access-2025.toml"
    read = _core._dataset_report_columns(plain, by)
    # No interpretation classifies again: the request and attrs text stay where they are.
    assert "request" not in read and "attrs" not in read and "ledger_id" not in read
    assert {"agent", "tag", "session_stateful", "ts"} <= set(read)
    assert "request" in _core._dataset_report_columns(CONTRACT)
    df = sms.read_dataset(spark, dataset)
    got = [r.asDict() for r in sms.report(df, plain, by=by).collect()]
    want = everything.report(plain, by=list(by)).to_pylist()
    assert got == want
    assert any(r["violating_events"] for r in got)


def test_spark_classify_under_the_strict_ruleset_equals_sm_classify(spark, fleet):
    from statemeter import spark as sms

    _, _, _, dataset = fleet
    strict = sm.Ruleset.strict()
    df = sms.classify(sms.read_dataset(spark, dataset), strict)
    rows = df.select(
        "ledger_id", "seq", "record", "tag", "consumes_state", "creates_state", "ruleset"
    ).collect()
    assert rows
    # Each ledger's records in seq order, their contexts resolved (docs/ledger-format.md).
    by_ledger = defaultdict(list)
    for r in rows:
        by_ledger[r["ledger_id"]].append((r["seq"], json.loads(r["record"])))
    expanded = {
        (lid, rec["seq"]): rec
        for lid, recs in by_ledger.items()
        for rec in expand_records(sorted(recs, key=lambda x: x[0]))
    }
    changed = 0
    for r in rows:
        record = expanded[(r["ledger_id"], r["seq"])]
        event = record["event"]
        c = sm.classify(event, strict)
        assert (r["tag"], r["consumes_state"], r["creates_state"], r["ruleset"]) == (
            c.tag,
            c.consumes_state,
            c.creates_state,
            strict.name,
        )
        changed += r["tag"] != record["classification"]["tag"]
    assert changed > 0  # the strict reading differs from the recorded one somewhere
    # session_tag over the whole dataset: stateful when any event of the session is.
    per_session = defaultdict(set)
    for r in df.select("session_id", "session_tag", "session_stateful").collect():
        if r["session_id"] is not None:
            per_session[r["session_id"]].add((r["session_tag"], r["session_stateful"]))
    for values in per_session.values():
        tags = {t for t, _ in values}
        assert tags == {"stateful" if any(s for _, s in values) else "stateless"}


def test_spark_verify_names_the_ledger_and_seq_of_an_edited_record(spark, fleet, tmp_path):
    from statemeter import spark as sms

    _, ledgers, _, dataset = fleet
    heads = {lg.ledger_id: lg.head() for lg in ledgers}
    got = sms.verify(sms.read_dataset(spark, dataset), heads).collect()
    assert [r["ledger_id"] for r in got] == sorted(heads)
    assert all(r["ok"] and r["events"] == heads[r["ledger_id"]].seq for r in got)
    # Edit one record in a copy of the dataset: a space in ledger 1's 7th event's time key.
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    victim = ledgers[1].ledger_id
    path = next(p for p in copy.rglob(f"part-{victim}-*.parquet"))
    table = pq.read_table(path)
    records = table.column("record").to_pylist()
    seqs = table.column("seq").to_pylist()
    i = seqs.index(7) if 7 in seqs else 0
    records[i] = records[i].replace('"ts":', '"ts": ', 1)
    table = table.set_column(
        table.schema.get_field_index("record"), "record", pa.array(records, pa.string())
    )
    pq.write_table(table, path)
    got = {r["ledger_id"]: r for r in sms.verify(sms.read_dataset(spark, copy), heads).collect()}
    bad = got[victim]
    assert not bad["ok"] and bad["first_bad_seq"] == seqs[i] and bad["problem"].startswith("edited")
    assert all(r["ok"] for lid, r in got.items() if lid != victim)


def test_a_second_export_round_adds_only_new_files(spark, fleet, tmp_path):
    from statemeter import spark as sms

    root, _, _, dataset = fleet
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*.parquet")}
    # Host 0 goes on recording; every host exports again.
    simulate.fleet(seed=50, meter=sm.Meter(root / "host0.db"), days=1, agents=1, start="2026-03-04")
    results = [
        sm.Ledger.open(root / f"host{h}.db").export_parquet(copy, include_records=True)
        for h in range(HOSTS)
    ]
    assert [r.events > 0 for r in results] == [True, False, False]
    after = {p: p.stat().st_mtime_ns for p in copy.rglob("*.parquet")}
    assert {p: after[p] for p in before} == before  # nothing rewritten
    assert sorted(set(after) - set(before)) == sorted(copy / f for f in results[0].files)
    total = sum(len(sm.Ledger.open(root / f"host{h}.db")) for h in range(HOSTS))
    assert sms.read_dataset(spark, copy).count() == total
    manifest = parquet.read_manifest(copy)
    assert sum(m["events"] for m in manifest["ledgers"].values()) == total
