"""Ledger format versions: the version-2 records (contexts written once, referred to by seq)
new ledgers hold against what the readers report; version 3's chain hashes (whole every 64th
row and at each append's end, their first 4 bytes elsewhere) and every verifier locating
tampering in such a ledger; a version-1 ledger written by an earlier release
(tests/data/ledgers/v1-fleet.db) opening, verifying, reporting and growing in version 1; a
version-2 ledger whose `ids` table keys every id by 16 bytes, as releases before 8-byte keys
wrote it (tests/data/ledgers/v2-16-byte-ids.db), doing the same and keeping its keys; and a
version-2 ledger with 8-byte keys growing in version 2."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import statemeter as sm
from conftest import as_version_2, expand_records, record_sample, rows
from statemeter.reverify import check, jcs

DATA = Path(__file__).parent / "data"
V1_FLEET = DATA / "ledgers" / "v1-fleet.db"
#: The head of the fixture as the earlier release wrote it (92 events).
V1_HEAD = "92:07073de1bc26535f8e1aed3d82974de65e06e6154be367766bb9efc588adac40"
V2_16 = DATA / "ledgers" / "v2-16-byte-ids.db"
#: Its head as that release wrote it (281 events, the last one with the id "call-fixed").
V2_16_HEAD = "281:55dec737cfec4fd7f6a3a14b02d3a398c0291bbd0f3dac58806ddca35ab622a1"
OUTSIDER = DATA.parent.parent / "examples" / "verify_ledger.py"


def outsider(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """examples/verify_ledger.py in a process of its own, with nothing of statemeter (-I)."""
    return subprocess.run(
        [sys.executable, "-I", str(OUTSIDER), str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def meta(path: Path) -> dict[str, str]:
    code = (
        "import json, sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "print(json.dumps(dict(con.execute('select key, value from meta'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, check=True, timeout=60
    )
    return dict(json.loads(out.stdout))


@pytest.fixture
def v1_copy(tmp_path: Path) -> Path:
    path = tmp_path / "v1.db"
    shutil.copyfile(V1_FLEET, path)
    return path


def test_a_version_1_ledger_opens_verifies_and_reports(v1_copy):
    prices = sm.PriceTable.load(DATA.parent.parent / "examples" / "prices" / "illustrative.toml")
    with sm.Ledger.open(v1_copy) as ledger:
        assert len(ledger) == 92
        assert str(ledger.head()) == V1_HEAD
        assert ledger.verify(head=sm.Head.parse(V1_HEAD)).ok
        events = ledger.events()
        assert len(events) == 92
        fixed = [e for e in events if e.id == "call-fixed"][0]
        assert fixed.tag == "stateful" and fixed.attrs == {"ticket": "T-1042", "n": 1.5}
        assert fixed.evidence and fixed.evidence[0].explain
        costs = ledger.costs(prices, by="model").to_pylist()
        assert sum(r["events"] for r in costs) > 0
        assert len(ledger.sessions()) > 0
    assert check(v1_copy, V1_HEAD).ok
    assert meta(v1_copy)["version"] == "1"


def test_a_version_1_ledger_grows_in_version_1(v1_copy):
    with sm.Meter(v1_copy) as meter:
        with meter.session("bot") as s:
            for _ in range(2):
                s.model_call(provider="openai", model="gpt-5", api="responses", id="new-call")
    stored = rows(v1_copy)
    assert len(stored) == 95
    new = json.loads(stored[-2][2])
    assert list(new) == ["classification", "event", "seq", "v"] and new["v"] == 1
    assert new["event"]["id"] == "new-call" == stored[-2][1]
    with sm.Ledger.open(v1_copy) as ledger:
        assert ledger.verify(head=sm.Head.parse(V1_HEAD)).ok
    assert check(v1_copy).ok and meta(v1_copy)["version"] == "1"


def id_keys(path: Path) -> list[tuple[str, int]]:
    """The `ids` table's rows (key as hex, seq) in seq order, read in a process of its own."""
    code = (
        "import json, sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "q = 'select hex(key), seq from ids order by seq, length(key)'\n"
        "print(json.dumps(con.execute(q).fetchall()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, check=True, timeout=60
    )
    return [(k.lower(), seq) for k, seq in json.loads(out.stdout)]


def test_a_version_2_ledger_with_16_byte_id_keys_keeps_them(tmp_path):
    path = tmp_path / "v2.db"
    shutil.copyfile(V2_16, path)
    with sm.Ledger.open(path) as ledger:
        assert len(ledger) == 281 and str(ledger.head()) == V2_16_HEAD
        assert ledger.verify(head=sm.Head.parse(V2_16_HEAD)).ok
        assert len(ledger.sessions()) > 0 and len(ledger.events(kind="model_call")) > 0
        fixed = json.loads(ledger.record("call-fixed"))
        assert fixed["s"] == 281 and fixed["e"]["id"] == "call-fixed"
    old = rows(path)
    fixed_event = expand_records([(seq, json.loads(text)) for seq, _, text, _ in old])[-1]["event"]
    with sm.Meter(path) as meter:
        # Already recorded, with the same payload: found by its 16-byte key, not again.
        meter.record(fixed_event)
        with meter.session("support-bot", tenant="acme") as s:
            first = s.model_call(provider="openai", model="gpt-5", api="responses").id
            s.model_call(provider="openai", model="gpt-5", api="responses", id=first)
    stored = rows(path)
    assert stored[:281] == old and len(stored) == 281 + 3  # the session's start and end
    keys = id_keys(path)
    assert len(keys) == 284 and {len(k) for k, _ in keys} == {32}
    assert (first.replace("-", ""), 283) in keys
    assert "id_keys" not in meta(path)
    with sm.Ledger.open(path) as ledger:
        assert ledger.verify(head=sm.Head.parse(V2_16_HEAD)).ok
        assert json.loads(ledger.record(first))["s"] == 283
    assert check(path, V2_16_HEAD).ok


def test_ids_are_keyed_by_8_bytes_and_by_16_when_8_are_taken(tmp_path):
    path = tmp_path / "l.db"
    # Two UUIDs alike in bytes 0-5, 11 and 15 (their 8-byte key), unlike elsewhere; and ids
    # that are not UUIDs (keyed by SHA-256).
    a = "0199a8c0-7c2e-7d3b-9f1a-3c5e2b8d4f10"
    b = "0199a8c0-7c2e-7aaa-8f1a-3c5e2b8d4f10"
    ids = [a, b, "call-1", "call-2"]
    with sm.Meter(path) as meter:
        for _ in range(2):
            for i in ids:
                meter.record({"kind": "tool_call", "id": i, "tool": "search"})
    assert meta(path)["id_keys"] == "8"
    keys = id_keys(path)
    sha = {i: hashlib.sha256(i.encode()).hexdigest() for i in ("call-1", "call-2")}
    assert keys == [
        ("0199a8c07c2e5e10", 1),
        (b.replace("-", ""), 2),
        (sha["call-1"][:16], 3),
        (sha["call-2"][:16], 4),
    ]
    with sm.Ledger.open(path) as ledger:
        assert len(ledger) == 4 and ledger.verify().ok
        for seq, i in enumerate(ids, 1):
            assert json.loads(ledger.record(i))["s"] == seq
            assert ledger.events()[seq - 1].id == i
    # Recorded with another payload: refused, whichever key it holds.
    with sm.Meter(path) as meter:
        for i in (a, b):
            meter.record({"kind": "tool_call", "id": i, "tool": "fetch"})
        with pytest.raises(sm.ValidationError, match="different payload"):
            meter.flush()
    assert len(rows(path)) == 4
    assert check(path).ok


def test_version_2_records_expand_to_what_the_readers_report(tmp_path):
    path = tmp_path / "l.db"
    record_sample(path, 12)
    stored = rows(path)
    parsed = [(seq, json.loads(text)) for seq, _, text, _ in stored]
    # The first record of each context defines it; the others refer to it by seq.
    definitions = [seq for seq, r in parsed if isinstance(r["c"], dict)]
    assert 1 < len(definitions) < len(parsed)
    for seq, r in parsed:
        assert jcs(r) == stored[seq - 1][2], "canonical"
        if not isinstance(r["c"], dict):
            assert r["c"] in definitions and r["c"] < seq
    expanded = expand_records(parsed)
    with sm.Ledger.open(path) as ledger:
        events = ledger.events()
        assert [e.seq for e in events] == [r["seq"] for r in expanded]
        for e, r in zip(events, expanded, strict=True):
            assert e.id == r["event"]["id"] and e.kind == r["event"]["kind"]
            assert e.agent == r["event"].get("agent") and e.tag == r["classification"]["tag"]
            assert e.input_tokens == r["event"].get("input_tokens")
        assert ledger.verify().ok
    assert meta(path)["version"] == "3"  # version 3 holds version-2 records
    # Re-recording an id is still idempotent (the ids index holds 8-byte keys).
    for _ in range(2):
        with sm.Meter(path) as meter:
            meter.record({"kind": "tool_call", "id": "dup-1", "tool": "search"})
    assert len(rows(path)) == 12 + 1


def resign_last(path: Path, record: dict) -> None:
    con = sqlite3.connect(path)
    with con:
        records = con.execute("select record from events order by seq").fetchall()
        prev, seq = bytes(32), len(records) - 1
        for (text,) in records[:-1]:  # version 3 keeps only a check of most hashes
            prev = hashlib.sha256(prev + text.encode()).digest()
        text = jcs({**record, "s": seq + 1})
        digest = hashlib.sha256(prev + text.encode()).digest()
        con.execute("update events set record = ?, hash = ? where seq = ?", (text, digest, seq + 1))
    con.close()


def test_a_context_must_name_an_earlier_definition(tmp_path):
    path = tmp_path / "l.db"
    record_sample(path, 6)
    last = json.loads(rows(path)[-1][2])
    # Re-signed to refer to itself: both verifiers name the row, though the chain holds.
    resign_last(path, {**last, "c": 6})
    with sm.Ledger.open(path) as ledger:
        v = ledger.verify()
    assert not v.ok and v.first_bad_seq == 6 and v.problem.startswith("edited"), v
    ref = check(path)
    assert not ref.ok and ref.first_bad_seq == 6 and ref.problem == v.problem, ref


def record_fleet(path: Path, sessions: int = 3, calls: int = 60) -> sm.Head:
    """Sessions of model and tool calls recorded in batch mode. Another process holds the
    ledger's write lock while they are recorded, so the recorder's commits wait and then
    append many events at once, whatever the machine's load."""
    holder = (
        "import sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "con.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
        "con.execute('COMMIT')\n"
        "con.close()\n"
    )
    with sm.Meter(path) as meter:
        lock = subprocess.Popen(
            [sys.executable, "-c", holder, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert lock.stdout is not None and lock.stdout.readline() == "locked\n"
            for n in range(sessions):
                with meter.session(f"agent-{n % 2}", tenant="acme", venue="azure") as s:
                    for i in range(calls):
                        s.model_call(
                            provider="openai",
                            model="gpt-5",
                            api="responses",
                            input_tokens=100 + i,
                            output_tokens=i,
                        )
                        s.tool_call("search", effect="read")
        finally:
            lock.communicate("\n", timeout=60)
        meter.flush()
        return meter.ledger.head()


def hash_rule_holds(path: Path) -> tuple[int, int]:
    """Checks version 3's rule on every row; returns (rows keeping the whole hash, rows keeping
    its first 4 bytes)."""
    stored = rows(path)
    prev, whole, checks = bytes(32), 0, 0
    for seq, _, record, h in stored:
        prev = hashlib.sha256(prev + record.encode()).digest()
        if h == prev:
            whole += 1
        else:
            assert len(h) == 4 and h == prev[:4], seq
            assert seq % 64 != 0 and seq != len(stored), f"seq {seq} must keep the whole hash"
            checks += 1
    return whole, checks


def test_a_version_3_ledger_keeps_whole_hashes_every_64th_row_and_at_each_appends_end(tmp_path):
    path = tmp_path / "v3.db"
    head = record_fleet(path)
    assert meta(path)["version"] == "3" and meta(path)["id_keys"] == "8"
    whole, checks = hash_rule_holds(path)
    assert whole + checks == head.seq == 3 * 122 and checks > whole, (whole, checks)
    with sm.Ledger.open(path) as ledger:
        assert ledger.verify(head=head).ok and str(ledger.head()) == str(head)
        assert len(ledger.events()) == head.seq
    assert check(path, str(head)).ok
    r = outsider(path, "--head", str(head))
    assert r.returncode == 0 and r.stdout.startswith(f"OK: {head.seq} events, head {head}"), r
    # Growing it: the previous append's last row keeps its whole hash.
    head2 = record_fleet(path, sessions=1, calls=5)
    assert hash_rule_holds(path)[0] > whole
    assert check(path, str(head2)).ok and check(path, str(head)).ok


def test_a_version_2_ledger_opens_verifies_and_grows_in_version_2(tmp_path):
    path = tmp_path / "v2.db"
    head = record_fleet(path, sessions=2, calls=20)
    as_version_2(path)
    assert meta(path)["version"] == "2"
    with sm.Ledger.open(path) as ledger:
        assert ledger.verify(head=head).ok and str(ledger.head()) == str(head)
    record_fleet(path, sessions=2, calls=20)
    stored = rows(path)
    assert len(stored) == 2 * head.seq and {len(h) for *_, h in stored} == {32}
    assert meta(path)["version"] == "2"
    with sm.Ledger.open(path) as ledger:
        assert ledger.verify(head=head).ok and len(ledger.events()) == len(stored)
    assert check(path, str(head)).ok
    assert outsider(path, "--head", str(head)).returncode == 0


def tamper_v3(path: Path) -> dict[str, tuple[str, int, str]]:
    """The tampering cases for a version-3 ledger: (SQL, first bad seq, first word), at rows
    chosen from the file (a row keeping only a check of its hash, one after it, a 64th)."""
    stored = rows(path)
    checks = [seq for seq, *_, h in stored if len(h) == 4]
    a, b = checks[len(checks) // 2], checks[len(checks) // 2 + 1]
    return {
        "edited record": (
            f"update events set record = replace(record, '\"ts\":', '\"ts\":1') where seq = {a}",
            a,
            "edited",
        ),
        "edited check": (f"update events set hash = x'00000000' where seq = {a}", a, "edited"),
        "a 64th row cut short": (
            "update events set hash = substr(hash, 1, 4) where seq = 64",
            64,
            "edited",
        ),
        "cut inside an append": (f"delete from events where seq > {a}", a + 1, "truncated"),
        "deleted row": (f"delete from events where seq = {b}", b, "deleted"),
        "reordered rows": (
            f"update events set seq = -1 where seq = {a}; "
            f"update events set seq = {a} where seq = {b}; "
            f"update events set seq = {b} where seq = -1",
            a,
            "reordered",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "edited record",
        "edited check",
        "a 64th row cut short",
        "cut inside an append",
        "deleted row",
        "reordered rows",
    ],
)
def test_version_3_tampering_is_located_by_every_verifier(tmp_path, case):
    path = tmp_path / "v3.db"
    record_fleet(path)
    sql, seq, word = tamper_v3(path)[case]
    code = (
        "import sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "con.executescript(sys.argv[2])\n"
        "con.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), sql], check=True, timeout=60)
    with sm.Ledger.open(path) as ledger:
        v = ledger.verify()
    assert not v.ok and v.first_bad_seq == seq and v.problem.startswith(word), (sql, v)
    ref = check(path)
    assert (ref.ok, ref.first_bad_seq, ref.problem) == (False, seq, v.problem), ref
    r = outsider(path)
    assert r.returncode == 1 and r.stdout.startswith("FAIL"), r


def by_hand(path: Path, head: str | None = None) -> tuple[bool, int | None]:
    """The verifier of docs/ledger-format.md ("Re-verifying by hand"), as printed there, run on
    `path` in a process of its own."""
    text = (DATA.parent.parent / "docs" / "ledger-format.md").read_text(encoding="utf-8")
    section = text.split("## Re-verifying by hand", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    code = snippet + "\nimport sys\nprint(json.dumps(verify(sys.argv[1], sys.argv[2] or None)))\n"
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(path), head or ""],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ok, seq = json.loads(out.stdout)
    return ok, seq


def test_the_verifier_by_hand_in_the_docs_reads_every_version(tmp_path, v1_copy):
    assert by_hand(v1_copy, V1_HEAD) == (True, None)
    v2 = tmp_path / "v2.db"
    head2 = record_fleet(v2, sessions=1, calls=40)
    as_version_2(v2)
    assert by_hand(v2, str(head2)) == (True, None)
    v3 = tmp_path / "v3.db"
    head3 = record_fleet(v3)
    assert hash_rule_holds(v3)[1] > 0
    assert by_hand(v3, str(head3)) == (True, None)
    assert by_hand(v3, f"{head3.seq + 1}:{'00' * 32}") == (False, head3.seq + 1)
    for case in ("edited record", "edited check", "a 64th row cut short", "cut inside an append"):
        path = tmp_path / f"{case}.db"
        shutil.copyfile(v3, path)
        sql, seq, _ = tamper_v3(path)[case]
        con = sqlite3.connect(path)
        con.executescript(sql)
        con.close()
        assert by_hand(path) == (False, seq), case
