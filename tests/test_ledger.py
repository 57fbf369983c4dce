"""The ledger: format, chain, verify (and its diagnosis of tampering), multi-process append."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import statemeter as sm
from conftest import record_sample, rows
from statemeter.reverify import check, reverify

#: The RFC 8785 vectors in the shared test data beside the repository.
JCS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "jcs"


def test_chain_formula_and_record_layout(ledger_path):
    record_sample(ledger_path, 6)
    prev = bytes(32)
    stored = rows(ledger_path)
    for seq, _id, record, digest in stored:
        prev = hashlib.sha256(prev + record.encode()).digest()
        # Version 3: the whole hash every 64th row and at each append's end (the last row
        # always), its first 4 bytes elsewhere.
        assert digest == prev or (len(digest) == 4 and digest == prev[:4] and seq < len(stored))
        obj = json.loads(record)
        assert list(obj) == ["c", "e", "s", "v"]
        assert obj["s"] == seq and obj["v"] == 2
        assert obj["e"]["id"] == _id
        assert isinstance(obj["c"], dict) or obj["c"] < seq
        # Canonical: re-encoding with sorted keys and no whitespace gives the same bytes
        # (no floats in these records).
        assert json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == record
    assert sm.Ledger.open(ledger_path).head().hash == prev.hex()


def test_outsider_script_reverifies(ledger_path):
    head = record_sample(ledger_path, 12)
    assert reverify(ledger_path) == (True, None)
    assert reverify(ledger_path, f"{head.seq}:{head.hash}") == (True, None)
    out = subprocess.run(
        [sys.executable, "-m", "statemeter.reverify", str(ledger_path), "--head", str(head)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == f"OK: 12 events, head {head}\n"


def test_outsider_script_runs_alone_with_the_standard_library(ledger_path, tmp_path):
    """statemeter/reverify.py is one file: copied anywhere, run by an interpreter isolated from
    every installed package (-I), it verifies and detects a broken chain."""
    import statemeter.reverify

    head = record_sample(ledger_path, 5)
    alone = tmp_path / "reverify.py"
    alone.write_bytes(Path(statemeter.reverify.__file__).read_bytes())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-I", str(alone), *args], capture_output=True, text=True, cwd=tmp_path
        )

    out = run(str(ledger_path), "--head", str(head))
    assert (out.returncode, out.stdout) == (0, f"OK: 5 events, head {head}\n"), out.stderr
    out = run(str(ledger_path), "--head", f"{head.seq + 1}:{'00' * 32}")
    assert out.returncode == 1 and out.stdout.startswith("BAD: first bad seq 6: truncated"), out
    out = run(str(tmp_path / "missing.db"))
    assert out.returncode == 2 and "no ledger at" in out.stderr, out


@pytest.mark.skipif(
    not JCS.is_dir(), reason=f"the RFC 8785 test vectors are not on this machine at {JCS}"
)
@pytest.mark.parametrize("name", sorted(p.name for p in (JCS / "input").glob("*.json")) or ["-"])
def test_jcs_vectors_inside_records(tmp_path, name):
    attrs = json.loads((JCS / "input" / name).read_text(encoding="utf-8"))
    expected = (JCS / "output" / name).read_bytes()
    path = tmp_path / "j.db"
    with sm.Meter(path) as meter:
        meter.session("bot").tool_call("t", attrs=attrs)
    ((_, _, record, _),) = rows(path)
    assert expected in record.encode("utf-8")
    assert sm.Ledger.open(path).verify().ok


def tamper(path: Path, *sql: str) -> None:
    """Runs `sql` on the file with Python's sqlite3, in a process of its own (in this one
    statemeter may have the file open: docs/ledger-format.md)."""
    code = (
        "import sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "with con:\n"
        "    for s in sys.argv[2:]:\n"
        "        con.execute(s)\n"
        "con.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), *sql], check=True, timeout=120)


CASES = {
    "edited record": (
        [
            "update events set record = replace(record, '\"input_tokens\":50', "
            "'\"input_tokens\":5') where seq = 3"
        ],
        3,
        "edited",
    ),
    "edited hash": (["update events set hash = zeroblob(32) where seq = 4"], 4, "edited"),
    "deleted row": (["delete from events where seq = 5"], 5, "deleted"),
    "deleted and renumbered": (
        ["delete from events where seq = 5", "update events set seq = seq - 1 where seq > 5"],
        5,
        "deleted",
    ),
    "reordered rows": (
        [
            "update events set seq = -1 where seq = 4",
            "update events set seq = 4 where seq = 6",
            "update events set seq = 6 where seq = -1",
        ],
        4,
        "reordered",
    ),
    "inserted row": (
        [
            "update events set seq = seq + 100 where seq >= 4",
            "update events set seq = seq - 99 where seq >= 104",
            "insert into events (seq, record, hash) select 4, "
            'replace(record, \'"s":3,"v":2}\', \'"s":4,"v":2}\'), hash from events '
            "where seq = 3",
        ],
        4,
        "inserted",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_detected_at_the_first_bad_seq(ledger_path, case):
    record_sample(ledger_path, 10)
    sql, bad, word = CASES[case]
    tamper(ledger_path, *sql)
    v = sm.Ledger.open(ledger_path).verify()
    assert not v.ok and not v
    assert v.first_bad_seq == bad, v
    assert v.problem.startswith(word), v
    assert reverify(ledger_path)[0] is False


def test_a_duplicated_row_is_named_at_a_real_seq(ledger_path):
    """Only an events table rebuilt without its primary key can hold two rows of one seq: the
    diagnosis says which record appears twice, at the seq it belongs to."""
    record_sample(ledger_path, 6)
    tamper(
        ledger_path,
        "create table e2 (seq integer, record text, hash blob)",
        "insert into e2 select * from events",
        "drop table events",
        "alter table e2 rename to events",
        "insert into events select * from events where seq = 3",
    )
    v = sm.Ledger.open(ledger_path).verify()
    assert not v.ok and v.first_bad_seq == 3, v
    assert v.problem == "duplicated: the record of seq 3 appears again at row 4", v
    assert reverify(ledger_path) == (False, 3)


def test_a_row_numbered_below_one_is_reported_at_seq_1(ledger_path):
    record_sample(ledger_path, 4)
    tamper(ledger_path, "update events set seq = 0 where seq = 1")
    v = sm.Ledger.open(ledger_path).verify()
    assert not v.ok and v.first_bad_seq == 1 and v.problem.startswith("inserted"), v
    assert reverify(ledger_path) == (False, 1)


def test_a_ledger_without_its_events_table_is_not_intact(ledger_path):
    head = record_sample(ledger_path, 4)
    tamper(ledger_path, "drop table events")
    v = sm.Ledger.open(ledger_path).verify(head=head)
    assert not v.ok and v.events == 0 and v.first_bad_seq == 1, v
    assert v.problem.startswith("altered:") and 'table "events" is missing' in v.problem
    assert reverify(ledger_path) == (False, 1)


def test_edited_rule_explanation_is_detected(ledger_path):
    record_sample(ledger_path, 6)
    ledger = sm.Ledger.open(ledger_path)
    explained = ledger.events()[1].evidence[0]
    assert explained.explain  # comes from the stored catalogue, not the record
    tamper(ledger_path, "update rulesets set catalogue = replace(catalogue, 'stateless', 'fine')")
    v = sm.Ledger.open(ledger_path).verify()
    assert not v.ok and v.problem.startswith("edited") and v.first_bad_seq is None
    assert reverify(ledger_path) == (False, None)
    with pytest.raises(sm.IntegrityError, match="catalogue"):
        sm.Ledger.open(ledger_path).events()


def test_truncation_needs_the_kept_head(ledger_path):
    record_sample(ledger_path, 7)
    head = record_sample(ledger_path, 8)  # a second append: seqs 8 to 15
    tamper(ledger_path, "delete from events where seq > 7")
    ledger = sm.Ledger.open(ledger_path)
    assert ledger.verify().ok  # undetectable without a head kept outside the ledger
    v = ledger.verify(head=head)
    assert not v.ok and v.problem.startswith("truncated") and v.first_bad_seq == 8
    assert reverify(ledger_path, str(head))[0] is False


def test_a_cut_inside_an_append_is_truncation_without_a_kept_head(ledger_path):
    """Version 3: the last row of every append keeps the whole chain hash; a ledger whose last
    row keeps only a check of it lost the rows after it."""
    record_sample(ledger_path, 12)
    checks = [seq for seq, _, _, h in rows(ledger_path) if len(h) == 4]
    if not checks:
        pytest.skip("every event was committed on its own: no row keeps only a check")
    cut = checks[-1]
    tamper(ledger_path, f"delete from events where seq > {cut}")
    v = sm.Ledger.open(ledger_path).verify()
    assert not v.ok and v.first_bad_seq == cut + 1, v
    assert v.problem.startswith(f"truncated: the last row (seq {cut}) keeps only a check"), v
    ref = check(ledger_path)
    assert (ref.ok, ref.first_bad_seq, ref.problem) == (False, cut + 1, v.problem)


def test_swapped_ledger_against_kept_head(tmp_path):
    head = record_sample(tmp_path / "a.db", 10)
    record_sample(tmp_path / "b.db", 12)
    v = sm.Ledger.open(tmp_path / "b.db").verify(head=str(head))
    assert not v.ok and v.problem.startswith("swapped")
    assert v.first_bad_seq is not None and v.first_bad_seq <= head.seq


def test_head_round_trip(ledger_path):
    head = record_sample(ledger_path, 4)
    assert sm.Head.parse(str(head)) == head
    assert sm.Head(head.seq, head.hash) == head
    with pytest.raises(sm.StatemeterError):
        sm.Head.parse("not-a-head")
    v = sm.Ledger.open(ledger_path).verify()
    assert v.ok and v.events == 4 and v.head == head and v.first_bad_seq is None


def test_open_errors(tmp_path):
    with pytest.raises(sm.LedgerError, match="no ledger"):
        sm.Ledger.open(tmp_path / "missing.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(sm.LedgerError):
        sm.Ledger.open(junk)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("create table t (x)")
    con.commit()
    con.close()
    with pytest.raises(sm.LedgerError):
        sm.Meter(other)
    with pytest.raises(sm.LedgerError):
        sm.Meter(tmp_path / "no" / "such" / "dir" / "l.db")


def test_several_processes_append_one_chain(ledger_path):
    code = textwrap.dedent("""
        import sys, statemeter as sm
        path, who, n, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
        with sm.Meter(path, durability=mode) as meter:
            s = meter.session(who, session_id=who)
            for i in range(n):
                s.model_call(provider="openai", model="m", api="chat.completions",
                             input_tokens=i)
    """)
    sm.Meter(ledger_path).close()  # create it first
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                str(ledger_path),
                f"p{i}",
                "400",
                "batch" if i % 2 else "sync",
            ]
        )
        for i in range(4)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    ledger = sm.Ledger.open(ledger_path)
    v = ledger.verify()
    assert v.ok and v.events == 1600
    for i in range(4):
        assert len(ledger.events(session_id=f"p{i}")) == 400
    assert reverify(ledger_path) == (True, None)


# -- a ledger written before state kinds existed ---------------------------------------------


def canonical(value: object) -> str:
    """Canonical JSON of ASCII-keyed objects without floats (docs/ledger-format.md)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


CHAIN_EXPLAIN = "continues a response the provider stores"
FALLBACK_EXPLAIN = "no rule matched: the request carries no server-held state"


def write_old_ledger(path: Path) -> tuple[str, list[dict]]:
    """A ledger as written before state kinds existed, by hand from docs/ledger-format.md:
    classification objects without `state_kinds`, a catalogue without `state`. Returns its head
    ("SEQ:HEX") and the records."""
    catalogue = canonical(
        {
            "name": "default",
            "rules": [
                {
                    "explain": CHAIN_EXPLAIN,
                    "rule": "openai-responses-previous-response-id",
                    "signal": "request.previous_response_id",
                    "tag": "stateful",
                },
                {
                    "explain": FALLBACK_EXPLAIN,
                    "rule": "no-state-signal",
                    "signal": "",
                    "tag": "stateless",
                },
            ],
        }
    )
    digest = hashlib.sha256(catalogue.encode()).hexdigest()[:16]

    def classification(stateful: bool) -> dict:
        rule, signal, tag = (
            ("openai-responses-previous-response-id", "request.previous_response_id", "stateful")
            if stateful
            else ("no-state-signal", "", "stateless")
        )
        return {
            "consumes_state": stateful,
            "creates_state": False,
            "evidence": [{"rule": rule, "signal": signal, "tag": tag}],
            "ruleset": "default",
            "ruleset_digest": digest,
            "session_stateful": stateful,
            "state_holder": "provider" if stateful else None,
            "tag": tag,
        }

    session = "0199a8c0-7c2d-7a11-8c3e-5b2f9d1e0a77"
    ts = 1_761_000_000_123_456_789
    common = {"agent": "support-bot", "attrs": {}, "session_id": session, "tenant": "acme"}
    call = {
        "api": "responses",
        "cached_tokens": 0,
        "input_tokens": 900,
        "kind": "model_call",
        "model": "gpt-5",
        "output_tokens": 80,
        "provider": "openai",
        "status": "ok",
        "venue": "azure",
    }
    events = [
        {**common, "id": "old-1", "kind": "session_start", "ts": ts, "venue": "azure"},
        {**common, **call, "id": "old-2", "ts": ts + 1, "request": {"store": False}},
        {
            **common,
            **call,
            "id": "old-3",
            "ts": ts + 2,
            "request": {"previous_response_id": "resp_1"},
        },
        {**common, "id": "old-4", "kind": "session_end", "status": "ok", "ts": ts + 3},
    ]
    con = sqlite3.connect(path)
    with con:
        con.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
            " record TEXT NOT NULL, hash BLOB NOT NULL);"
            "CREATE TABLE rulesets (digest TEXT PRIMARY KEY, name TEXT NOT NULL,"
            " catalogue TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('format', 'statemeter-ledger'), ('version', '1');"
        )
        con.execute("INSERT INTO rulesets VALUES (?, ?, ?)", (digest, "default", catalogue))
        prev, records = bytes(32), []
        for seq, event in enumerate(events, start=1):
            record = {
                "classification": classification(event["id"] == "old-3"),
                "event": event,
                "seq": seq,
                "v": 1,
            }
            text = canonical(record)
            assert '"state_kinds"' not in text
            prev = hashlib.sha256(prev + text.encode()).digest()
            con.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (seq, event["id"], text, prev))
            records.append(record)
    con.close()
    return f"{len(events)}:{prev.hex()}", records


def test_a_ledger_written_before_state_kinds_reads_and_verifies(tmp_path, kinds_ruleset):
    path = tmp_path / "old.db"
    head, records = write_old_ledger(path)
    assert reverify(path, head) == (True, None)
    with sm.Ledger.open(path) as ledger:
        assert str(ledger.head()) == head
        v = ledger.verify(head)
        assert v.ok and v.events == 4, v.problem
        events = ledger.events()
        assert [e.id for e in events] == ["old-1", "old-2", "old-3", "old-4"]
        assert [e.state_kinds for e in events] == [[], [], [], []]
        assert all(r["state_kinds"] == [] for r in events.to_pylist())
        chain = events[2]
        assert (chain.tag, chain.state_holder, chain.session_tag) == (
            "stateful",
            "provider",
            "stateful",
        )
        # Evidence is explained from the stored catalogue, which names no kinds.
        assert [(e.rule, e.explain, e.state) for e in chain.evidence] == [
            ("openai-responses-previous-response-id", CHAIN_EXPLAIN, None)
        ]
        assert events[1].evidence[0].explain == FALLBACK_EXPLAIN
        assert chain.classification.to_dict()["state_kinds"] == []
        pa = pytest.importorskip("pyarrow")
        table = pa.table(events)
        assert table.column("state_kinds").to_pylist() == [[], [], [], []]
        assert table.column("evidence").to_pylist()[2][0]["state"] is None
    # Appending to it keeps one chain: old rows without state_kinds, new rows with them.
    with sm.Meter(path, ruleset=kinds_ruleset) as meter:
        with meter.session("bot") as s:
            s.model_call(
                provider="openai", model="gpt-5", api="responses", request={"file_id": "f"}
            )
    with sm.Ledger.open(path) as ledger:
        assert ledger.verify(head).ok
        kinds = [e.state_kinds for e in ledger.events()]
        assert kinds == [[], [], [], [], [], ["content"], []]
    assert reverify(path) == (True, None)
    con = sqlite3.connect(path)
    stored = [json.loads(r) for (r,) in con.execute("SELECT record FROM events ORDER BY seq")]
    con.close()
    assert stored[:4] == records, "the old records are left exactly as they were"
    assert ["state_kinds" in r["classification"] for r in stored] == [False] * 4 + [True] * 3


# --------------------------------------------------------------- two SQLite libraries


def _holds_shm_lock(ledger: Path) -> bool | None:
    from shm_locks import holds_shm_lock

    return holds_shm_lock(str(ledger))


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/locks, which only Linux has"
)
def test_python_sqlite3_releases_statemeters_locks_in_the_same_process(tmp_path):
    """The hazard: statemeter links its own SQLite, Python's sqlite3 another. POSIX locks
    belong to the process, so closing a sqlite3 connection to a ledger statemeter has open
    drops statemeter's locks (other processes could then write under it). statemeter notices
    and warns; reading through ledger.sql() keeps the locks."""
    ledger = tmp_path / "l.db"
    meter = sm.Meter(ledger)
    meter.session("bot").tool_call("search")
    meter.flush()
    if _holds_shm_lock(ledger) is None:
        pytest.skip("/proc/locks is not readable on this machine")
    assert _holds_shm_lock(ledger) is True
    # The safe way: statemeter's own connection.
    assert meter.ledger.sql("SELECT count(*) FROM events")[0] == (1,)
    assert _holds_shm_lock(ledger) is True
    # The unsafe way, reproduced: the other library's close releases statemeter's locks, and
    # (taking itself for the last connection) deletes the write-ahead log and its index.
    con = sqlite3.connect(ledger)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (1,)
    con.close()
    assert _holds_shm_lock(ledger) is not True
    with pytest.warns(RuntimeWarning, match="released by another SQLite library"):
        meter.flush()
    with pytest.warns(RuntimeWarning, match="ledger.sql"):
        meter.ledger.verify()
    with pytest.warns(RuntimeWarning):
        meter.close()


def test_sql_reads_through_statemeters_connection(tmp_path):
    ledger = tmp_path / "l.db"
    head = record_sample(ledger, 10)
    expected = rows(ledger)  # Python's sqlite3, before statemeter opens the file
    led = sm.Ledger.open(ledger)
    r = led.sql(
        "SELECT e.seq, json_extract(coalesce(d.record, e.record), '$.c.event.kind') AS kind, "
        "e.hash FROM events e LEFT JOIN events d ON d.seq = json_extract(e.record, '$.c') "
        "WHERE e.seq > ? ORDER BY e.seq",
        [7],
    )
    assert r.columns == ["seq", "kind", "hash"]
    assert len(r) == 3 and [row[0] for row in r] == [8, 9, 10]
    assert r[-1][1] == "session_end" and isinstance(r[-1][2], bytes) and len(r[-1][2]) == 32
    assert r.rows()[0] == r[0]
    assert r.to_pylist()[0] == {"seq": 8, "kind": r[0][1], "hash": r[0][2]}
    named = led.sql("SELECT count(*) AS n FROM events WHERE seq <= :upto", {"upto": head.seq})
    assert named.to_pylist() == [{"n": 10}]
    # The same rows Python's sqlite3 reads, without a second SQLite library touching the file.
    query = "SELECT seq, json_extract(record, '$.e.id'), record, hash FROM events"
    assert [tuple(x) for x in led.sql(query)] == [
        (s, i, rec, bytes(h)) for s, i, rec, h in expected
    ]
    in_memory = sm.Meter()
    in_memory.session("x").tool_call("t")
    assert in_memory.ledger.sql("SELECT count(*) FROM events")[0] == (1,)


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM events",
        "UPDATE events SET record = ''",
        "DROP TABLE events",
        "CREATE TRIGGER t AFTER INSERT ON events BEGIN SELECT 1; END",
        "BEGIN",
        "ATTACH ':memory:' AS other",
        "PRAGMA query_only = 0",
        "SELECT 1; DELETE FROM events",
        "SELECT * FROM no_such_table",
    ],
)
def test_sql_refuses_anything_but_reading(tmp_path, query):
    ledger = tmp_path / "l.db"
    record_sample(ledger, 4)
    led = sm.Ledger.open(ledger)
    with pytest.raises(sm.ValidationError) as e:
        led.sql(query)
    assert e.value.field == "query"
    assert led.verify().ok and len(led) == 4


def test_sql_results_are_arrow(tmp_path):
    pa = pytest.importorskip("pyarrow")
    ledger = tmp_path / "l.db"
    record_sample(ledger, 5)
    r = sm.Ledger.open(ledger).sql(
        "SELECT seq, json_extract(record, '$.e.input_tokens') AS tokens, "
        "json_extract(record, '$.e.id') AS kind, hash, seq / 2.0 AS half FROM events"
    )
    t = pa.table(r)
    assert t.schema.types == [pa.int64(), pa.int64(), pa.string(), pa.binary(), pa.float64()]
    assert t.column("seq").to_pylist() == [1, 2, 3, 4, 5]
    assert t.num_rows == len(r)


def test_reference_verifier_runs_in_its_own_process(tmp_path):
    """The documented way to use the sqlite3-based reference verifier beside a live meter."""
    ledger = tmp_path / "l.db"
    meter = sm.Meter(ledger)
    meter.session("bot").tool_call("search")
    meter.flush()
    r = subprocess.run(
        [sys.executable, "-m", "statemeter.reverify", str(ledger)], capture_output=True, timeout=120
    )
    assert r.returncode == 0 and r.stdout.decode().startswith("OK: 1 events"), r
    meter.close()
