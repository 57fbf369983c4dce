"""sm.classify_batch: Arrow batches of events classified again in Rust (C data interface), and
the pickling that carries contracts, prices and rulesets to Spark tasks."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import statemeter as sm
from conftest import expand_records
from statemeter import simulate

pa = pytest.importorskip("pyarrow")
pc = pytest.importorskip("pyarrow.compute")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLASSIFICATION = [
    "tag",
    "session_tag",
    "consumes_state",
    "creates_state",
    "state_holder",
    "state_kinds",
    "session_stateful",
    "ruleset",
    "ruleset_digest",
    "evidence",
]


@pytest.fixture(scope="module")
def fleet():
    return simulate.fleet(days=1, agents=4, seed=8, sessions_per_agent_day=6)


def raw_events(ledger):
    rows = ledger.sql("SELECT seq, record FROM events ORDER BY seq").rows()
    return [r["event"] for r in expand_records([(seq, json.loads(rec)) for seq, rec in rows])]


def test_the_batch_classified_under_strict_equals_sm_classify(fleet):
    table = pa.table(fleet.ledger.events())
    strict = sm.Ruleset.strict()
    out = sm.classify_batch(table, strict)
    assert isinstance(out, pa.Table) and out.schema == table.schema
    for name in table.column_names:
        if name not in CLASSIFICATION:
            assert out.column(name).equals(table.column(name)), name
    rows = out.to_pylist()
    for row, event in zip(rows, raw_events(fleet.ledger), strict=True):
        c = sm.classify(event, strict)
        assert (row["tag"], row["consumes_state"], row["creates_state"]) == (
            c.tag,
            c.consumes_state,
            c.creates_state,
        )
        assert (row["state_holder"], row["state_kinds"]) == (c.state_holder, c.state_kinds)
        assert [e["rule"] for e in row["evidence"]] == [e.rule for e in c.evidence]
        assert (row["ruleset"], row["ruleset_digest"]) == (strict.name, strict.digest)
    assert [r["tag"] for r in rows] != table.column("tag").to_pylist()
    # Under the ruleset the events were recorded with, nothing changes.
    same = sm.classify_batch(table, sm.Ruleset.default())
    for name in CLASSIFICATION:
        assert same.column(name).to_pylist() == table.column(name).to_pylist(), name


def test_plain_string_columns_a_record_batch_and_errors(fleet):
    table = pa.table(fleet.ledger.events())
    # As Spark hands them over: strings, not dictionaries; ts as int64 ns; no classification.
    plain = pa.table(
        {
            n: (
                pc.cast(table.column(n), pa.string())
                if pa.types.is_dictionary(table.schema.field(n).type)
                else table.column(n)
            )
            for n in table.column_names
            if n not in CLASSIFICATION and n != "ts"
        }
        | {"ts": pc.cast(table.column("ts"), pa.int64())}
    )
    batch = plain.combine_chunks().to_batches()[0]
    out = sm.classify_batch(batch, sm.Ruleset.strict())
    assert isinstance(out, pa.RecordBatch) and out.num_rows == batch.num_rows
    assert out.schema.names[: len(batch.schema)] == batch.schema.names
    want = sm.classify_batch(table, sm.Ruleset.strict()).column("tag").to_pylist()
    assert out.column("tag").to_pylist() == want
    with pytest.raises(sm.ValidationError, match="kind") as info:
        sm.classify_batch(batch.drop_columns(["kind"]))
    assert info.value.field == "batch"
    with pytest.raises(sm.ValidationError, match="batch"):
        sm.classify_batch([1, 2, 3])


def test_contracts_prices_and_rulesets_pickle_as_their_toml(tmp_path):
    contract = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2025-rulesets.toml")
    prices = sm.PriceTable.load(EXAMPLES / "prices" / "illustrative.toml")
    fleet = simulate.fleet(days=1, agents=2, seed=1, sessions_per_agent_day=4)
    want = fleet.ledger.report(contract, prices).to_pylist()
    again = pickle.loads(pickle.dumps((contract, prices)))
    assert fleet.ledger.report(*again).to_pylist() == want
    for r in (sm.Ruleset.default(), sm.Ruleset.strict(), sm.Meter().ruleset):
        assert pickle.loads(pickle.dumps(r)).digest == r.digest
    custom = sm.Ruleset.from_toml('name = "mine"\nextends = "strict"\n')
    assert pickle.loads(pickle.dumps(custom)).name == "mine"
