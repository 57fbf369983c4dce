"""Parquet datasets: ledger.export_parquet (Hive partitions, manifest, resume) read back by
pyarrow.dataset, polars and DuckDB; the DuckDB contract report equals ledger.report."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import statemeter as sm
from statemeter import parquet, simulate

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
duckdb = pytest.importorskip("duckdb")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONTRACTS = [
    EXAMPLES / "contracts" / "model-access-2025.toml",
    EXAMPLES / "contracts" / "model-access-2026-amended.toml",
]
DAY = 86_400 * 1_000_000_000
REPORT_COLUMNS = [
    "covered_events",
    "covered_input_tokens",
    "covered_output_tokens",
    "violating_events",
    "violating_input_tokens",
    "violating_output_tokens",
]


def files(directory: Path) -> dict[str, str]:
    """Visible Parquet files -> content digest."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*.parquet"))
    }


def rust_rows(report, by=()):
    return [
        tuple(r[k] for k in ["interpretation", "clause", *by, *REPORT_COLUMNS])
        for r in report.to_pylist()
    ]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    path = tmp_path_factory.mktemp("fleet") / "fleet.db"
    return simulate.fleet(
        days=6, agents=6, seed=3, path=path, start="2026-04-24", sessions_per_agent_day=6
    )


def test_export_writes_one_file_per_date_and_readers_agree(fleet, tmp_path):
    out = tmp_path / "ds"
    result = fleet.ledger.export_parquet(out, batch_events=700)
    n = len(fleet.ledger)
    assert result.events == n == result.total_events and (result.from_seq, result.to_seq) == (1, n)
    dates = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name != "_statemeter")
    assert dates == [f"date=2026-04-{d}" for d in range(24, 30)]
    # One file per partition for this export, however many chunks it was read in.
    assert all(len(list((out / d).glob("*.parquet"))) == 1 for d in dates)
    assert sorted(result.files) == sorted(files(out))
    lid = fleet.ledger.ledger_id
    assert result.files[0].endswith(f"part-{lid}-{1:012d}-{n:012d}.parquet")
    assert result.ledger_id == lid
    ds = pytest.importorskip("pyarrow.dataset")
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == n
    assert "date" in table.column_names and "ts" in table.column_names
    pl = pytest.importorskip("polars")
    frame = pl.scan_parquet(str(out / "**" / "*.parquet"), hive_partitioning=True).collect()
    assert frame.height == n
    got = duckdb.sql(
        f"SELECT count(*), sum(input_tokens), min(seq), max(seq) FROM {parquet.dataset_source(out)}"
    ).fetchall()[0]
    events = pa.table(fleet.ledger.events())
    assert got == (n, pa.compute.sum(events.column("input_tokens")).as_py(), 1, n)
    # Partition values match the events' UTC dates.
    per_day = dict(
        duckdb.sql(
            f"SELECT strftime(date, '%Y-%m-%d'), count(*) FROM "
            f"{parquet.dataset_source(out)} GROUP BY ALL"
        ).fetchall()
    )
    want = dict(
        duckdb.sql(
            "SELECT strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d'), count(*) FROM events GROUP BY ALL"
        ).fetchall()
    )
    assert per_day == want


@pytest.mark.parametrize("contract_path", CONTRACTS, ids=["2025", "amended"])
def test_duckdb_report_over_the_dataset_equals_the_rust_report(fleet, tmp_path, contract_path):
    out = tmp_path / "ds"
    fleet.ledger.export_parquet(out)
    contract = sm.Contract.load(contract_path)
    source = parquet.dataset_source(out)
    sql = parquet.contract_sql(contract, source)
    assert duckdb.sql(sql).fetchall() == rust_rows(fleet.ledger.report(contract))
    for by in (["venue"], ["tenant", "day"]):
        got = duckdb.sql(parquet.contract_sql(contract, source, by=by)).fetchall()
        assert got == rust_rows(fleet.ledger.report(contract, by=by), by)
    since, until = fleet.start + 2 * DAY, fleet.start + 4 * DAY
    got = duckdb.sql(parquet.contract_sql(contract, source, since=since, until=until)).fetchall()
    want = rust_rows(fleet.ledger.report(contract, since=since, until=until))
    assert got == want and got != rust_rows(fleet.ledger.report(contract))


def test_resume_appends_new_files_and_never_rewrites(tmp_path):
    meter = sm.Meter(tmp_path / "l.db")
    t0 = 1_767_225_600_000_000_000
    s = meter.session("a", venue="azure", session_id="s1")
    s.start(ts=t0)
    s.model_call(
        provider="openai", model="gpt-5", api="chat.completions", ts=t0 + 1, input_tokens=10
    )
    s.end(ts=t0 + 2)
    out = tmp_path / "ds"
    first = meter.ledger.export_parquet(out)
    before = files(out)
    assert first.events == 3 and len(before) == 1
    assert meter.ledger.export_parquet(out).events == 0  # up to date: nothing written
    assert files(out) == before
    # The same session continues on the next day and turns stateful there.
    s2 = meter.session("a", venue="azure", session_id="s1")
    s2.model_call(
        provider="openai",
        model="gpt-5",
        api="responses",
        ts=t0 + DAY,
        request={"previous_response_id": "resp_1"},
        input_tokens=5,
    )
    second = meter.ledger.export_parquet(out)
    assert (second.events, second.from_seq, second.to_seq, second.total_events) == (1, 4, 4, 4)
    after = files(out)
    assert {k: after[k] for k in before} == before  # old files untouched
    assert len(after) == 2
    manifest = parquet.read_manifest(out, meter.ledger.ledger_id)
    assert [e["to_seq"] for e in manifest["exports"]] == [3, 4]
    assert parquet.read_manifest(out)["ledgers"] == {meter.ledger.ledger_id: manifest}
    assert manifest["last_hash"] == meter.ledger.head().hash
    # The old rows keep the session tag they were exported with; the recipe derives the
    # current one from session_stateful and matches the ledger.
    old = pq.read_table(out / before.popitem()[0].replace("\\", "/"))
    assert set(old.column("session_tag").to_pylist()) == {"stateless"}
    contract = sm.Contract.load(CONTRACTS[0])
    sql = parquet.contract_sql(contract, parquet.dataset_source(out))
    assert duckdb.sql(sql).fetchall() == rust_rows(meter.ledger.report(contract))
    meter.close()


def test_ledgers_share_a_dataset_and_a_rewritten_one_is_refused(tmp_path):
    out = tmp_path / "ds"
    a = simulate.fleet(days=1, agents=2, seed=1, sessions_per_agent_day=3, path=tmp_path / "a.db")
    b = simulate.fleet(days=1, agents=2, seed=2, sessions_per_agent_day=6)
    ra, rb = a.ledger.export_parquet(out), b.ledger.export_parquet(out)
    assert ra.ledger_id != rb.ledger_id and set(ra.files).isdisjoint(rb.files)
    got = duckdb.sql(
        f"SELECT ledger_id, count(*), max(seq) FROM {parquet.dataset_source(out)} GROUP BY 1"
    ).fetchall()
    assert sorted(got) == sorted(
        [
            (a.ledger.ledger_id, len(a.ledger), len(a.ledger)),
            (b.ledger.ledger_id, len(b.ledger), len(b.ledger)),
        ]
    )
    assert set(parquet.read_manifest(out)["ledgers"]) == {ra.ledger_id, rb.ledger_id}
    # Another chain under ledger a's id (a copied id, or a rewritten ledger): refused.
    other = simulate.fleet(
        days=1, agents=2, seed=9, sessions_per_agent_day=3, path=tmp_path / "c.db"
    )
    other.meter.close()
    code = (
        "import sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "with con:\n"
        "    con.execute(\"update meta set value = ? where key = 'ledger_id'\", (sys.argv[2],))\n"
        "con.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "c.db"), ra.ledger_id], check=True)
    forged = sm.Ledger.open(tmp_path / "c.db")
    assert forged.ledger_id == ra.ledger_id
    with pytest.raises(sm.IntegrityError, match="does not continue the exported dataset"):
        forged.export_parquet(out)


def test_two_ledgers_racing_to_create_the_dataset_both_export(tmp_path, monkeypatch):
    """Ledger b's first export runs whole between ledger a's writing of the dataset's settings
    and their move into place: each writer keeps its own temporary file, the settings the first
    one put in place rule, and both exports land."""
    out = tmp_path / "ds"
    a = simulate.fleet(days=1, agents=2, seed=1, sessions_per_agent_day=3, path=tmp_path / "a.db")
    b = simulate.fleet(days=1, agents=2, seed=2, sessions_per_agent_day=4, path=tmp_path / "b.db")
    original = parquet._settings
    raced: list[str] = []

    class Stream:
        def __init__(self, stream):
            self.stream = stream

        def __enter__(self):
            return self.stream.__enter__()

        def __exit__(self, *exc):
            self.stream.__exit__(*exc)
            raced.append("b")
            monkeypatch.setattr(parquet, "_settings", original)
            b.ledger.export_parquet(out)

    class RacingFileSystem:
        def __init__(self, fs):
            self.fs = fs

        def __getattr__(self, name):
            return getattr(self.fs, name)

        def open_output_stream(self, path, *args, **kwargs):
            stream = self.fs.open_output_stream(path, *args, **kwargs)
            return Stream(stream) if "dataset.json" in path and not raced else stream

    def racing(d, *args):
        return original(dataclasses.replace(d, fs=RacingFileSystem(d.fs)), *args)

    monkeypatch.setattr(parquet, "_settings", racing)
    ra = a.ledger.export_parquet(out)
    assert raced == ["b"]
    assert set(parquet.read_manifest(out)["ledgers"]) == {ra.ledger_id, b.ledger.ledger_id}
    got = duckdb.sql(
        f"SELECT ledger_id, count(*) FROM {parquet.dataset_source(out)} GROUP BY 1"
    ).fetchall()
    assert sorted(got) == sorted(
        [(a.ledger.ledger_id, len(a.ledger)), (b.ledger.ledger_id, len(b.ledger))]
    )
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_partitioning_options_and_errors(fleet, tmp_path):
    flat = fleet.ledger.export_parquet(tmp_path / "flat", partition_by=None)
    assert len(flat.files) == 1 and "/" not in flat.files[0]
    got = duckdb.sql(f"SELECT count(*) FROM {parquet.dataset_source(tmp_path / 'flat')}")
    assert got.fetchall()[0][0] == len(fleet.ledger)
    two = fleet.ledger.export_parquet(tmp_path / "two", partition_by=("tenant", "month"))
    assert {f.split("/")[0] for f in two.files} == {
        f"tenant_key={t}" for t in ("acme", "globex", "initech")
    }
    assert all(f.split("/")[1] == "month=2026-04" for f in two.files)
    # A file keeps its string partition column (exact values) but not the month (from ts).
    names = pq.read_schema(tmp_path / "two" / two.files[0]).names
    assert "tenant" in names and "month" not in names
    with pytest.raises(sm.ValidationError, match="partition_by") as info:
        fleet.ledger.export_parquet(tmp_path / "two", partition_by=("date",))
    assert info.value.field == "partition_by"
    with pytest.raises(sm.ValidationError, match="cannot partition by 'input_tokens'") as info:
        fleet.ledger.export_parquet(tmp_path / "bad", partition_by=("input_tokens",))
    assert info.value.field == "partition_by"
    with pytest.raises(sm.ValidationError, match="batch_events") as info:
        fleet.ledger.export_parquet(tmp_path / "bad", batch_events=0)
    assert info.value.field == "batch_events"


def test_odd_partition_values_are_encoded(tmp_path):
    meter = sm.Meter()
    meter.record(
        {
            "kind": "model_call",
            "provider": "openai",
            "model": "m",
            "api": "x",
            "tenant": "a/b c",
            "ts": 1,
        }
    )
    meter.record({"kind": "model_call", "provider": "openai", "model": "m", "api": "x", "ts": 2})
    result = meter.ledger.export_parquet(tmp_path / "ds", partition_by="tenant")
    assert sorted(result.files)[0].startswith("tenant_key=__HIVE_DEFAULT_PARTITION__/")
    assert sorted(result.files)[1].startswith("tenant_key=a%2Fb%20c/")


def test_an_interrupted_export_leaves_nothing_visible(fleet, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    original = pq.ParquetWriter.write_table
    calls = {"n": 0}

    def failing(self, table, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return original(self, table, *a, **kw)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    with pytest.raises(sm.LedgerError, match="disk full") as info:
        fleet.ledger.export_parquet(out)
    assert isinstance(info.value.__cause__, OSError)
    assert files(out) == {} and parquet.read_manifest(out, fleet.ledger.ledger_id) is None
    assert list(out.rglob("*.tmp")) == []  # the temporary files are gone too
    monkeypatch.setattr(pq.ParquetWriter, "write_table", original)
    result = fleet.ledger.export_parquet(out)
    assert result.events == len(fleet.ledger)
    lid = fleet.ledger.ledger_id
    manifest = json.loads((out / parquet.STATE_DIR / "ledgers" / f"{lid}.json").read_text())
    assert manifest["events"] == len(fleet.ledger) and len(manifest["exports"]) == 1


def test_state_kinds_round_trip_through_parquet(tmp_path, kinds_ruleset):
    meter = sm.Meter(tmp_path / "k.db", ruleset=kinds_ruleset)
    t0 = 1_767_225_600_000_000_000
    with meter.session("bot", venue="azure") as s:
        for i, request in enumerate(
            ({"file_id": "f", "previous_response_id": "r"}, None, {"agent_session": "a"})
        ):
            s.model_call(
                provider="openai", model="gpt-5", api="responses", request=request, ts=t0 + i
            )
    meter.flush()
    events = meter.ledger.events()
    want_kinds = [e.state_kinds for e in events]
    assert want_kinds == [[], ["content", "conversation"], [], ["runtime"], []]
    out = tmp_path / "ds"
    meter.ledger.export_parquet(out, partition_by=None)
    (name,) = files(out)
    back = pq.read_table(out / name)
    assert back.column("state_kinds").to_pylist() == want_kinds
    assert back.schema.field("state_kinds").type.value_type == pa.dictionary(
        pa.int32(), pa.string()
    )
    states = [[e["state"] for e in evs] for evs in back.column("evidence").to_pylist()]
    assert states[1] == ["conversation", "content"] and states[2] == [None]
    source = parquet.dataset_source(out)
    got = duckdb.sql(f"SELECT seq, state_kinds FROM {source} ORDER BY seq").fetchall()
    assert got == [(e.seq, e.state_kinds) for e in events]
    # A dataset whose older file predates the column reads whole, by column name.
    old = back.drop_columns(["state_kinds"])
    pq.write_table(old, out / "part-old.parquet")
    got = duckdb.sql(
        f"SELECT count(*), count(state_kinds), sum(len(coalesce(state_kinds, []))) FROM {source}"
    ).fetchall()
    assert got == [(10, 5, 3)]
    meter.close()


TRICKY_TENANTS = [
    "00123",
    "123",
    "__HIVE_DEFAULT_PARTITION__",
    "日本語のテナント名前は三十文字を超えるとファイル名に収まらない",
    "a/b c",
    "_x",
    ".x",
    "~x",
    None,
]


def test_string_partitions_round_trip_exactly_through_every_reader(tmp_path):
    ds = pytest.importorskip("pyarrow.dataset")
    pl = pytest.importorskip("polars")
    assert len(TRICKY_TENANTS[3]) >= 30
    meter = sm.Meter()
    for i, tenant in enumerate(TRICKY_TENANTS):
        event = {"kind": "model_call", "provider": "openai", "model": "m", "api": "x", "ts": i + 1}
        if tenant is not None:
            event["tenant"] = tenant
        meter.record(event)
    out = tmp_path / "ds"
    result = meter.ledger.export_parquet(out, partition_by=("tenant", "date"))
    assert len(result.files) == len(TRICKY_TENANTS)
    assert all(len(part.encode()) <= 255 for f in result.files for part in f.split("/"))
    want = sorted(TRICKY_TENANTS, key=str)
    # The recipes of docs/scale.md.
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert sorted(table.column("tenant").to_pylist(), key=str) == want
    frame = pl.scan_parquet(str(out / "**" / "*.parquet"), hive_partitioning=True).collect()
    assert sorted(frame["tenant"].to_list(), key=str) == want
    got = duckdb.sql(f"SELECT tenant FROM {parquet.dataset_source(out)}").fetchall()
    assert sorted((r[0] for r in got), key=str) == want
    # Keys: distinct per value, never hidden, the long one cut and hash-suffixed.
    keys = [f.split("/")[0].split("=", 1)[1] for f in result.files]
    assert len(set(keys)) == len(keys)
    assert [k for k in keys if k[0] in "._"] == ["__HIVE_DEFAULT_PARTITION__"]  # the null
    assert [k for k in keys if "~" in k] == [parquet.partition_key(TRICKY_TENANTS[3])]


def test_a_failed_export_raises_ledger_error_and_leaves_no_temporary_files(fleet, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "date=2026-04-26").write_text("a file where a partition directory goes")
    with pytest.raises(sm.LedgerError, match="cannot write the Parquet dataset"):
        fleet.ledger.export_parquet(out)
    assert list(out.rglob("*.tmp")) == [] and files(out) == {}
    # Bad arguments are ValidationErrors naming them.
    with pytest.raises(sm.ValidationError) as info:
        fleet.ledger.export_parquet(tmp_path / "z", compression="no-such-codec")
    assert info.value.field == "compression"
    target = tmp_path / "plain-file"
    target.write_text("x")
    with pytest.raises(sm.ValidationError) as info:
        fleet.ledger.export_parquet(target)
    assert info.value.field == "dest"


def test_contract_sql_keeps_the_nanoseconds_of_effective_dates(tmp_path):
    boundary = "2026-04-27T00:00:00.000000300Z"
    contract = sm.Contract.from_toml(
        'id = "c"\n[[clause]]\nid = "k"\nproviders = ["openai"]\nrequired_venues = ["azure"]\n'
        f'effective_from = "{boundary}"\n'
        '[clause.interpretations.call]\nlevel = "call"\ntags = ["stateless", "stateful"]\n'
    )
    start = 1_777_248_000_000_000_000  # 2026-04-27T00:00:00Z
    meter = sm.Meter()
    for ts in (start + 11, start + 300, start + 301):  # 289 ns before the boundary, at, after
        meter.record(
            {"kind": "model_call", "provider": "openai", "model": "m", "api": "x", "ts": ts}
        )
    out = tmp_path / "ds"
    meter.ledger.export_parquet(out)
    got = duckdb.sql(parquet.contract_sql(contract, parquet.dataset_source(out))).fetchall()
    assert got == rust_rows(meter.ledger.report(contract))
    assert got[0][2] == 2  # the call 289 ns before the boundary is not covered


def test_rows_carry_records_and_chain_hashes_that_re_derive_the_chain(tmp_path):
    fleet = simulate.fleet(days=1, agents=2, seed=4, sessions_per_agent_day=3)
    out = tmp_path / "ds"
    fleet.ledger.export_parquet(out, include_records=True, batch_events=50)
    ds = pytest.importorskip("pyarrow.dataset")
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table().sort_by("seq")
    assert table.schema.field("hash").type == pa.binary(32)
    prev = bytes(32)
    for record, stored in zip(
        table.column("record").to_pylist(), table.column("hash").to_pylist(), strict=True
    ):
        prev = hashlib.sha256(prev + record.encode()).digest()
        assert prev == stored
    assert prev.hex() == fleet.ledger.head().hash
    with pytest.raises(sm.ValidationError, match="include_records"):
        fleet.ledger.export_parquet(out)  # the dataset's rows carry records: every export must


def test_an_export_stopped_after_its_files_became_visible_is_undone_and_redone(
    tmp_path, monkeypatch
):
    """A crash between moving the files into place and the manifest's final write: the
    manifest names them as pending, the next export removes them and writes the range again
    (no event counted twice)."""
    fleet = simulate.fleet(days=2, agents=2, seed=5, sessions_per_agent_day=3)
    out = tmp_path / "ds"
    real = parquet._write_json
    writes = {"n": 0}

    def crash_on_the_final_write(d, path, data):
        if path.endswith(".json") and "ledgers" in path and "pending" not in data:
            writes["n"] += 1
            if writes["n"] == 1:
                raise KeyboardInterrupt  # the process stops here
        return real(d, path, data)

    monkeypatch.setattr(parquet, "_write_json", crash_on_the_final_write)
    with pytest.raises(KeyboardInterrupt):
        fleet.ledger.export_parquet(out)
    assert files(out)  # visible, but the manifest says pending
    lid = fleet.ledger.ledger_id
    assert parquet.read_manifest(out, lid)["pending"]
    monkeypatch.setattr(parquet, "_write_json", real)
    result = fleet.ledger.export_parquet(out)
    assert result.events == len(fleet.ledger) and "pending" not in parquet.read_manifest(out, lid)
    got = duckdb.sql(f"SELECT count(*), count(DISTINCT seq) FROM {parquet.dataset_source(out)}")
    assert got.fetchall()[0] == (len(fleet.ledger), len(fleet.ledger))


def test_rows_equal_the_events_across_record_blocks_and_files_keep_their_own_values(tmp_path):
    # More events than one block of records (65,536) in one chunk, over three days: the
    # exported rows are the ledger's events, column for column, and a file's dictionary
    # columns hold the values of its own rows only (not every session of the chunk).
    meter = sm.Meter(tmp_path / "l.db")
    t0 = 1_767_225_600_000_000_000
    step = 3 * DAY // 70_000
    n = 0
    while n < 70_000:
        s = meter.session(f"agent-{n % 7}", venue="azure", tenant=f"t{n % 3}")
        s.start(ts=t0 + n * step)
        for k in range(4):
            n += 1
            s.model_call(
                provider="openai",
                model="gpt-5",
                api="responses" if k else "chat.completions",
                request={"previous_response_id": f"r{n}"} if k == 3 else None,
                ts=t0 + n * step,
                input_tokens=n,
                output_tokens=k,
            )
        s.end(ts=t0 + n * step)
        n += 2
    meter.close()
    ledger = sm.Ledger.open(tmp_path / "l.db")
    out = tmp_path / "ds"
    result = ledger.export_parquet(out, batch_events=100_000)
    assert result.events == len(ledger) and len(result.files) == 3
    events = pa.table(ledger.events())
    ds = pytest.importorskip("pyarrow.dataset")
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table().sort_by("seq")
    for name in events.column_names:
        assert table.column(name).to_pylist() == events.column(name).to_pylist(), name
    assert table.schema.field("session_id").type == events.schema.field("session_id").type
    for rel in result.files:
        part = pq.ParquetFile(out / rel).read_row_group(0)
        for name in ("session_id", "id"):
            column = part.column(name)
            if pa.types.is_dictionary(column.type):
                used = set(column.to_pylist())
                assert all(set(c.dictionary.to_pylist()) == used for c in column.chunks), name
