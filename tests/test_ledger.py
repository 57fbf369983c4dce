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
from reverify_ledger import reverify

#: The RFC 8785 vectors in the shared test data beside the repository.
JCS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "jcs"


def test_chain_formula_and_record_layout(ledger_path):
    record_sample(ledger_path, 6)
    prev = bytes(32)
    for seq, _id, record, digest in rows(ledger_path):
        assert hashlib.sha256(prev + record.encode()).digest() == digest
        prev = digest
        obj = json.loads(record)
        assert list(obj) == ["classification", "event", "seq", "v"]
        assert obj["seq"] == seq and obj["v"] == 1
        assert obj["event"]["id"] == _id
        # Canonical: re-encoding with sorted keys and no whitespace gives the same bytes
        # (no floats in these records).
        assert json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == record
    assert sm.Ledger.open(ledger_path).head().hash == prev.hex()


def test_outsider_script_reverifies(ledger_path):
    head = record_sample(ledger_path, 12)
    assert reverify(ledger_path) == (True, None)
    assert reverify(ledger_path, f"{head.seq}:{head.hash}") == (True, None)
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "reverify_ledger.py"),
            str(ledger_path),
            "--head",
            str(head),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(not JCS.is_dir(), reason=f"RFC 8785 vectors not found at {JCS}")
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
    con = sqlite3.connect(path)
    with con:
        for s in sql:
            con.execute(s)
    con.close()


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
            "insert into events (seq, id, record, hash) select 4, 'forged', "
            "replace(record, '\"seq\":3', '\"seq\":4'), hash from events where seq = 3",
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
    head = record_sample(ledger_path, 10)
    tamper(ledger_path, "delete from events where seq > 7")
    ledger = sm.Ledger.open(ledger_path)
    assert ledger.verify().ok  # undetectable without a head kept outside the ledger
    v = ledger.verify(head=head)
    assert not v.ok and v.problem.startswith("truncated") and v.first_bad_seq == 8
    assert reverify(ledger_path, str(head))[0] is False


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
