"""Arrow everywhere: EventTable, SessionTable and Report through the PyCapsule stream
interface (built in Rust), into pyarrow, pandas, polars and DuckDB, equal to ``to_pylist()``."""

from __future__ import annotations

import ctypes
import json
import sys

import pytest
import statemeter as sm

pa = pytest.importorskip("pyarrow")

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
MIN = 60 * 1_000_000_000

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def ledger():
    meter = sm.Meter()
    with meter.session("support-bot", tenant="acme", venue="azure", session_id="s-chat") as s:
        s.model_call(
            provider="openai",
            model="gpt-5",
            api="chat.completions",
            ts=T0,
            input_tokens=1200,
            output_tokens=300,
            cached_tokens=1024,
            attrs={"ticket": "T-1", "n": [1, 2.5, None], "big": 2**62},
        )
        s.tool_call("search_docs", effect="read", duration_ns=4_000_000, ts=T0 + MIN)
        s.tool_call(
            "fetch", tool_kind="mcp", mcp_session_id="mcp-1", status="error", ts=T0 + 2 * MIN
        )
    with meter.session("research", tenant="globex", venue="openai", session_id="s-resp") as s:
        s.model_call(
            provider="openai",
            model="gpt-5",
            api="responses",
            ts=T0 + 3 * MIN,
            request={"previous_response_id": "resp_1", "store": True},
            input_tokens=900,
            output_tokens=80,
        )
    with meter.session(
        "claims",
        tenant="globex",
        venue="aws",
        runtime="agentcore",
        runtime_session_id="rt-1",
        session_id="s-rt",
    ) as s:
        s.model_call(
            provider="aws.bedrock",
            model="anthropic.claude-sonnet-4-5",
            api="converse",
            ts=T0 + 4 * MIN,
            input_tokens=2200,
            output_tokens=400,
        )
        s.state_op(
            "write",
            store="agentcore-memory",
            holder="provider",
            bytes=512,
            key="claim-1",
            ts=T0 + 5 * MIN,
        )
    meter.record(
        {
            "kind": "model_call",
            "provider": "openai",
            "model": "gpt-5-mini",
            "api": "chat.completions",
            "venue": "azure",
            "ts": T0 + 6 * MIN,
            "agent": "cron",
            "input_tokens": 10,
        }
    )
    meter.flush()
    yield meter.ledger
    meter.close()


def normalise_arrow_rows(rows: list[dict]) -> list[dict]:
    """Arrow-side rows in to_pylist() form: JSON text parsed, ts as int ns."""
    out = []
    for r in rows:
        r = dict(r)
        r["attrs"] = json.loads(r["attrs"])
        r["request"] = None if r["request"] is None else json.loads(r["request"])
        out.append(r)
    return out


def same_as_pylist(arrow_rows: list[dict], pylist: list[dict]) -> None:
    assert len(arrow_rows) == len(pylist)
    for a, p in zip(arrow_rows, pylist, strict=True):
        for key, value in p.items():
            assert a[key] == value, (key, a[key], value)
        # Keys of other kinds are present in Arrow, and null.
        for key in set(a) - set(p) - {"session_stateful", "ruleset", "ruleset_digest"}:
            assert a[key] is None, key


def test_pyarrow_table_equals_to_pylist(ledger):
    t = ledger.events()
    table = pa.table(t)
    assert table.num_rows == len(t) == 13
    table = table.set_column(2, "ts", table.column("ts").cast(pa.int64()))
    same_as_pylist(normalise_arrow_rows(table.to_pylist()), t.to_pylist())


def test_documented_column_types(ledger):
    s = pa.table(ledger.events()).schema
    assert s.field("ts").type == pa.timestamp("ns", tz="UTC")
    for name in ("kind", "tag", "session_tag", "venue", "provider", "model", "state_holder"):
        assert s.field(name).type == pa.dictionary(pa.int32(), pa.string()), name
    for name in ("seq", "input_tokens", "output_tokens", "cached_tokens", "bytes", "duration_ns"):
        assert s.field(name).type == pa.int64(), name
    assert s.field("attrs").type == pa.string() and s.field("request").type == pa.string()
    item = s.field("evidence").type.value_type
    assert [item.field(i).name for i in range(item.num_fields)] == [
        "rule",
        "tag",
        "signal",
        "explain",
        "state",
    ]
    assert item.field("state").type == pa.dictionary(pa.int32(), pa.string())
    assert item.field("state").nullable and not item.field("rule").nullable
    kinds = s.field("state_kinds")
    assert kinds.type == pa.list_(pa.field("item", pa.dictionary(pa.int32(), pa.string()), False))
    assert not kinds.nullable
    assert s.names.index("state_kinds") == s.names.index("state_holder") + 1
    assert s.field("ruleset_digest").type == pa.dictionary(pa.int32(), pa.string())
    assert s.names.index("ruleset_digest") == s.names.index("ruleset") + 1
    sessions = pa.table(ledger.sessions()).schema
    assert sessions.field("start").type == pa.timestamp("ns", tz="UTC")
    assert sessions.field("session_tag").type == pa.dictionary(pa.int32(), pa.string())


def test_exact_integers_beyond_2_53(ledger):
    t = pa.table(ledger.events(kind="model_call"))
    assert json.loads(t.column("attrs")[0].as_py())["big"] == 2**62
    assert t.column("ts").cast(pa.int64())[0].as_py() == T0


def test_pandas_round_trip(ledger):
    pd = pytest.importorskip("pandas")
    t = ledger.events()
    df = t.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(df["kind"].dtype, pd.CategoricalDtype)
    assert str(df["input_tokens"].dtype) == "Int64"
    rows = []
    for rec in df.to_dict("records"):
        rec["evidence"] = list(rec["evidence"])  # an object ndarray of dicts
        rec["state_kinds"] = list(rec["state_kinds"])  # an object ndarray of str
        lists = ("evidence", "state_kinds")
        rec = {k: (None if k not in lists and pd.isna(v) else v) for k, v in rec.items()}
        rec["ts"] = rec["ts"].value
        rec = {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}
        rows.append(rec)
    same_as_pylist(normalise_arrow_rows(rows), t.to_pylist())


def test_polars_round_trip(ledger):
    pl = pytest.importorskip("polars")
    t = ledger.events()
    df = t.to_polars()
    assert df.schema["kind"] == pl.Categorical
    assert df.schema["ts"] == pl.Datetime("ns", "UTC")
    rows = df.with_columns(pl.col("ts").cast(pl.Int64)).to_dicts()
    same_as_pylist(normalise_arrow_rows(rows), t.to_pylist())
    assert pl.DataFrame(t).height == len(t)


def test_duckdb_reads_the_stream(ledger):
    duckdb = pytest.importorskip("duckdb")
    t = ledger.events()
    got = duckdb.sql(
        "select seq, kind, tag, session_tag, epoch_ns(ts) as ts, input_tokens, "
        "len(evidence) as n from t order by seq"
    ).fetchall()
    want = [
        (
            r["seq"],
            r["kind"],
            r["tag"],
            r["session_tag"],
            r["ts"],
            r.get("input_tokens"),
            len(r["evidence"]),
        )
        for r in t.to_pylist()
    ]
    assert got == want
    by_tag = duckdb.sql(
        "select session_tag, count(*) from t where kind = 'model_call' group by all order by 1"
    ).fetchall()
    assert by_tag == [("stateful", 3), ("stateless", 1)]


def test_sessions_table(ledger):
    s = ledger.sessions()
    rows = s.to_pylist()
    assert [r["session_id"] for r in rows] == ["s-chat", "s-resp", "s-rt"]
    rt = rows[2]
    assert rt["runtime"] == "agentcore" and rt["runtime_session_id"] == "rt-1"
    assert rt["session_tag"] == "stateful" and rt["model_calls"] == 1 and rt["state_ops"] == 1
    chat = rows[0]
    assert (chat["tool_calls"], chat["tool_errors"], chat["input_tokens"]) == (2, 1, 1200)
    assert chat["end"] is not None and chat["duration_ns"] == chat["end"] - chat["start"]
    assert len(s) == 3 and s[-1] == rt and list(s) == rows
    table = pa.table(s)
    for name in ("start", "end", "last_ts"):
        table = table.set_column(
            table.schema.get_field_index(name), name, table.column(name).cast(pa.int64())
        )
    assert table.to_pylist() == rows
    pl = pytest.importorskip("polars")
    assert pl.DataFrame(s).height == 3
    # The MCP session makes s-chat stateful; s-resp chains responses; s-rt is a runtime.
    assert s.to_pandas()["session_tag"].tolist() == ["stateful", "stateful", "stateful"]
    assert "3 sessions" in repr(s)


def test_report_and_costs_stream_from_rust(ledger):
    contract = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2025.toml")
    prices = sm.PriceTable.load(EXAMPLES / "prices" / "illustrative.toml")
    report = ledger.report(contract, prices)
    capsule = report.__arrow_c_stream__()
    assert type(capsule).__name__ == "PyCapsule"
    table = pa.table(report)
    assert table.to_pylist() == report.to_pylist()
    assert table.schema.field("covered_cost_nanos").type == pa.int64()
    assert table.schema.field("interpretation").type == pa.dictionary(pa.int32(), pa.string())
    costs = ledger.costs(prices, by=["venue", "tag"])
    assert pa.table(costs).to_pylist() == costs.to_pylist()


def test_capsule_is_named_per_the_spec(ledger):
    capsule = ledger.events().__arrow_c_stream__()
    is_valid = ctypes.pythonapi.PyCapsule_IsValid
    is_valid.restype = ctypes.c_int
    is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]
    assert is_valid(capsule, b"arrow_array_stream") == 1
    reader = pa.RecordBatchReader._import_from_c_capsule(capsule)
    assert reader.read_all().num_rows == 13


def test_requested_schema_decodes_dictionaries(ledger):
    t = ledger.events()
    ours = pa.table(t).schema
    wanted = pa.schema(
        [
            pa.field(f.name, pa.string() if f.name in ("kind", "venue") else f.type, f.nullable)
            for f in ours
        ]
    )
    capsule = t.__arrow_c_stream__(wanted.__arrow_c_schema__())
    got = pa.RecordBatchReader._import_from_c_capsule(capsule).read_all()
    assert got.schema.field("kind").type == pa.string()
    assert got.schema.field("tag").type == ours.field("tag").type
    assert got.column("venue").to_pylist() == pa.table(t).column("venue").to_pylist()
    # A request we cannot honour (other names) leaves our schema.
    other = pa.schema([pa.field("x", pa.string())])
    capsule = t.__arrow_c_stream__(other.__arrow_c_schema__())
    assert pa.RecordBatchReader._import_from_c_capsule(capsule).schema == ours
    with pytest.raises(ValueError, match="requested_schema"):
        t.__arrow_c_stream__("not a capsule")


def test_empty_tables_keep_their_schema():
    meter = sm.Meter()
    empty = meter.ledger.events()
    table = pa.table(empty)
    assert table.num_rows == 0 and "evidence" in table.schema.names
    assert pa.table(meter.ledger.sessions()).num_rows == 0


def test_many_batches_share_one_dictionary():
    meter = sm.Meter()
    with meter.session("bulk", venue="azure") as s:
        for i in range(70_000):
            s.model_call(
                provider="openai",
                model=("gpt-5", "gpt-5-mini")[i % 2],
                api="chat.completions",
                input_tokens=i,
                ts=T0 + i,
            )
    t = meter.ledger.events()
    reader = pa.RecordBatchReader.from_stream(t)
    batches = list(reader)
    assert len(batches) == 2 and sum(b.num_rows for b in batches) == 70_002
    table = pa.Table.from_batches(batches)
    assert table.column("input_tokens").to_pylist()[1:4] == [0, 1, 2]
    assert table.column("model").drop_null().unique().to_pylist() == ["gpt-5", "gpt-5-mini"]


def test_missing_extra_is_named(ledger, monkeypatch):
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ImportError, match=r"statemeter\[analysis\]"):
        ledger.events().to_polars()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"statemeter\[analysis\]"):
        ledger.sessions().to_pandas()


@pytest.fixture(scope="module")
def kinds_ledger(kinds_ruleset):
    meter = sm.Meter(ruleset=kinds_ruleset)
    with meter.session("bot", venue="azure", session_id="s-k") as s:
        for request in (
            {"file_id": "f", "previous_response_id": "r", "cache_key": "k"},
            None,
            {"agent_session": "a"},
            {"file_id": "f"},
        ):
            s.model_call(provider="openai", model="gpt-5", api="responses", request=request)
    s2 = meter.session("other", session_id="s-u")
    with s2:
        s2.model_call(
            provider="unknown", model="m", api="responses", request={"previous_response_id": "r"}
        )
    meter.flush()
    yield meter.ledger
    meter.close()


KINDS = [
    [],
    ["content", "conversation"],
    [],
    ["runtime"],
    ["content"],
    [],
    [],
    ["conversation"],
    [],
]


def test_state_kinds_column_and_evidence_state(kinds_ledger):
    t = kinds_ledger.events()
    table = pa.table(t)
    assert table.column("state_kinds").to_pylist() == KINDS == [e.state_kinds for e in t]
    # The dictionary is the five kinds in name order, in every table.
    chunk = table.column("state_kinds").chunk(0)
    assert chunk.values.dictionary.to_pylist() == [
        "content",
        "conversation",
        "environment",
        "memory",
        "runtime",
    ]
    states = [[e["state"] for e in evs] for evs in table.column("evidence").to_pylist()]
    assert states[1] == ["conversation", "content", None]
    assert table.column("state_holder").to_pylist()[7] == "unknown"
    table = table.set_column(2, "ts", table.column("ts").cast(pa.int64()))
    same_as_pylist(normalise_arrow_rows(table.to_pylist()), t.to_pylist())


def test_state_kinds_in_pandas_polars_and_duckdb(kinds_ledger):
    t = kinds_ledger.events()
    pd = pytest.importorskip("pandas")
    df = t.to_pandas()
    assert [list(v) for v in df["state_kinds"]] == KINDS
    assert df["evidence"][1][1]["state"] == "content"
    assert isinstance(df["state_holder"].dtype, pd.CategoricalDtype)
    pl = pytest.importorskip("polars")
    frame = t.to_polars()
    assert frame.schema["state_kinds"] == pl.List(pl.Categorical)
    assert frame["state_kinds"].to_list() == KINDS
    has_content = frame.filter(pl.col("state_kinds").list.contains("content"))
    assert has_content["seq"].to_list() == [2, 5]
    duckdb = pytest.importorskip("duckdb")
    got = duckdb.sql(
        "select kind, count(*) from (select unnest(state_kinds) as kind from t) "
        "group by all order by all"
    ).fetchall()
    assert got == [("content", 2), ("conversation", 2), ("runtime", 1)]
    only = duckdb.sql("select seq from t where state_kinds = ['content']").fetchall()
    assert only == [(5,)]
    held = duckdb.sql("select seq from t where state_holder = 'unknown'").fetchall()
    assert held == [(8,)]
