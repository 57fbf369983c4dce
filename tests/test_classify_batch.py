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


EDGES = """
name = "edges"
extends = "strict"

[[rule]]
id = "edge-by-id"
when = { id = "e-7" }
tag = "stateful"
explain = "reads the id"

[[rule]]
id = "edge-input-tokens"
when = { kind = "model_call", input_tokens = 1000 }
explain = "reads a count"

[[rule]]
id = "edge-timed-tool"
when = { kind = "tool_call" }
has = ["duration_ns"]
explain = "reads a presence"

[[rule]]
id = "edge-nested"
when = { "request.a.b" = "c" }
tag = "stateful"
explain = "descends into a nested object"

[[rule]]
id = "edge-dotted-attr"
when = { "attrs.x.y" = 1 }
explain = "a dotted key, found whole first"

[[rule]]
id = "edge-holder"
has = ["op"]
not_has = ["request.n"]
state_holder = "from_event"
state = "memory"
explain = "a holder from the event"
"""


def _canonical(value: dict | None) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _varied_events() -> list[dict]:
    """Events across kinds, providers, apis and request/attrs shapes, with nulls and edge
    values (null members, escaped strings, floats, big integers, nested and dotted keys)."""
    requests = [
        None,
        {},
        {"store": True},
        {"store": False},
        {"store": None},
        {"previous_response_id": "resp_1"},
        {"previous_response_id": "resp_2", "store": False},
        {"previous_response_id": None},
        {"conversation": "conv_1"},
        {"conversation": {"id": "conv_2"}},
        {"background": True, "store": True},
        {"container": "cntr_1", "code_interpreter": True},
        {"code_interpreter": True},
        {"prompt_cache_key": 'a"quoted\\key'},
        {"environment": {"type": "openai_hosted"}},
        {"environment": {"type": "openai_hosted", "id": "env_1"}},
        {"environment": {"type": "self_hosted"}, "agent_id": "ag_1"},
        {"session_id": "s9", "agent_id": 3},
        {"a": {"b": "c"}},
        {"a": {"b": "d"}, "n": 1.5},
        {"a.b": "c", "a": {"b": "d"}},
        {"n": 9223372036854775808},
        {"OpenAI-Beta": "agents=v1"},
        {"vector_store_ids": ["vs_1"], "x": "é"},
    ]
    attrs = [
        None,
        {"http.request.method": "POST"},
        {"http.request.method": "GET"},
        {"http.request.method": "DELETE"},
        {"x.y": 1},
        {"x": {"y": 1}},
        {"x": {"y": 1.0}},
        {"fallback": "throttled"},
    ]
    calls = [
        ("openai", "responses"),
        ("openai", "chat.completions"),
        ("azure.ai.openai", "responses"),
        ("unknown", "responses"),
        ("openai", "conversations"),
        ("openai", "agents.sessions"),
        ("mistral_ai", "conversations"),
        ("openai", "threads"),
        ("aws.bedrock", "converse"),
    ]
    events = []
    for i, (provider, api) in enumerate(calls):
        for j, request in enumerate(requests):
            e = {
                "kind": "model_call",
                "id": f"e-{len(events)}",
                "ts": 1_700_000_000_000_000_000 + len(events),
                "session_id": f"s-{i}-{j % 3}" if j % 4 else None,
                "provider": provider,
                "api": api,
                "model": "gpt-5",
                "input_tokens": 1000 if j % 5 == 0 else j,
                "output_tokens": 10,
                "cached_tokens": 0,
                "request": request,
                "attrs": attrs[(i + j) % len(attrs)],
            }
            events.append(e)
    for n, (holder, op) in enumerate(
        [("provider", "write"), ("client", "read"), ("provider", "delete"), ("client", "write")]
    ):
        events.append(
            {
                "kind": "state_op",
                "id": f"e-{len(events)}",
                "ts": 1_700_000_000_000_000_000 + len(events),
                "session_id": f"t-{n}",
                "op": op,
                "store": "memory",
                "holder": holder,
                "bytes": 100 * n,
            }
        )
        for tool in ("search", "fetch"):
            events.append(
                {
                    "kind": "tool_call",
                    "id": f"e-{len(events)}",
                    "ts": 1_700_000_000_000_000_000 + len(events),
                    "session_id": f"t-{n}",
                    "tool": tool,
                    "tool_kind": "mcp" if n % 2 else None,
                    "duration_ns": 5 if n % 2 else None,
                    "attrs": {"http.request.method": "POST"} if n else None,
                }
            )
    for kind in ("session_start", "session_end"):
        for runtime in (None, "rt-1", "rt-2"):
            events.append(
                {
                    "kind": kind,
                    "id": f"e-{len(events)}",
                    "ts": 1_700_000_000_000_000_000,
                    "session_id": "t-1",
                    "runtime_session_id": runtime,
                }
            )
    return events


STRINGS = [
    "session_id", "provider", "api", "model", "runtime_session_id", "tool", "tool_kind", "op",
    "store", "holder",
]  # fmt: skip
COUNTS = ["input_tokens", "output_tokens", "cached_tokens", "bytes", "duration_ns"]


def _batch(events: list[dict], request: list | None = None, dictionary: bool = True):
    cols = {
        "id": pa.array([e["id"] for e in events], pa.string()),
        "ts": pa.array([e["ts"] for e in events], pa.timestamp("ns", tz="UTC")),
        "kind": pa.array([e["kind"] for e in events], pa.string()),
    }
    for name in STRINGS:
        cols[name] = pa.array([e.get(name) for e in events], pa.string())
    for name in COUNTS:
        cols[name] = pa.array([e.get(name) for e in events], pa.int64())
    cols["request"] = pa.array(
        request if request is not None else [_canonical(e.get("request")) for e in events],
        pa.string(),
    )
    cols["attrs"] = pa.array([_canonical(e.get("attrs")) or "" for e in events], pa.string())
    table = pa.table(cols)
    if dictionary:
        table = pa.table(
            {
                n: table.column(n).dictionary_encode()
                if n in STRINGS or n == "kind"
                else table.column(n)
                for n in table.column_names
            }
        )
    return table.combine_chunks().to_batches()[0]


def _verdicts(out) -> list[tuple]:
    return [
        (
            r["tag"],
            r["consumes_state"],
            r["creates_state"],
            r["state_holder"],
            r["state_kinds"],
            r["session_stateful"],
            [e["rule"] for e in r["evidence"]],
            r["ruleset"],
            r["ruleset_digest"],
        )
        for r in out.to_pylist()
    ]


@pytest.mark.parametrize("dictionary", [True, False], ids=["dictionary", "plain"])
def test_every_row_of_a_varied_batch_as_sm_classify_says(dictionary):
    """Rows repeat (in shuffled order, so equal inputs share one classification) and each
    row's classification is the one sm.classify gives its event."""
    import random

    events = _varied_events()
    rows = events * 3
    random.Random(4).shuffle(rows)
    batch = _batch(rows, dictionary=dictionary)
    for ruleset in (sm.Ruleset.default(), sm.Ruleset.strict(), sm.Ruleset.from_toml(EDGES)):
        got = _verdicts(sm.classify_batch(batch, ruleset))
        for row, event, verdict in zip(rows, rows, got, strict=True):
            plain = {k: v for k, v in event.items() if v is not None}
            c = sm.classify(plain, ruleset)
            want = (
                c.tag,
                c.consumes_state,
                c.creates_state,
                c.state_holder,
                c.state_kinds,
                c.session_stateful,
                [e.rule for e in c.evidence],
                ruleset.name,
                ruleset.digest,
            )
            assert verdict == want, (ruleset.name, row)
        assert {v[0] for v in got} == {"stateless", "stateful"}


def test_rows_whose_text_needs_the_parser_are_classified_as_if_alone():
    """Request texts a dataset could hold that are not canonical JSON (whitespace, repeated
    or escaped keys, invalid or non-object text) next to canonical ones with the same
    members: each row is classified in the batch as it is in a batch of its own."""
    texts = [
        '{"store":true}',
        '{ "store": true }',
        '{"store":false,"store":true}',
        '{"store":true,"store":false}',
        '{"st\\u006fre":true}',
        '{"store":true,"x":tru}',
        '{"store":true,"x":[1,2]',
        '{"previous_response_id":"r","z":"\\u0041"}',
        '{"a":{"b":"c"},"q":1}',
        '{"a":{"b":"c"},"q":tru}',
        '{"a":{"b":"c"}}',
        '{"a":{"b":"c","b":"d"}}',
        '{"environment":{"type":"openai_hosted"},"x":1}',
        '{"environment":{"type":"openai_hosted"},"x":1,}',
        "[1,2]",
        "5",
        "{}",
        "",
        None,
    ]
    base = {
        "kind": "model_call",
        "provider": "openai",
        "api": "responses",
        "ts": 1_700_000_000_000_000_000,
    }
    events = [dict(base, id=f"e-{i}", session_id=f"s-{i}") for i in range(len(texts) * 2)]
    request = texts + texts[::-1]
    batch = _batch(events, request=request)
    for ruleset in (sm.Ruleset.strict(), sm.Ruleset.from_toml(EDGES)):
        together = _verdicts(sm.classify_batch(batch, ruleset))
        alone = [
            _verdicts(sm.classify_batch(batch.slice(i, 1), ruleset))[0] for i in range(len(events))
        ]
        assert together == alone, ruleset.name
        assert len({v[6][0] for v in together}) > 2
