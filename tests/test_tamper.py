"""Tampering by someone who re-signs: after changing history they re-derive every later hash
(and every embedded seq), so the chain is internally consistent again.

tests/test_ledger.py covers the naive edits (edit, delete, insert, reorder, truncate, swap).
Here the forger does the work: without a head kept outside the ledger, a re-signed forgery
verifies — undetectable by design, and docs/ledger-format.md says so; with a kept head it is
detected. Both verifiers (Rust and the independent reference script) must agree.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import statemeter as sm
from conftest import expand_records, record_sample
from statemeter.reverify import check, jcs

DOCS = Path(__file__).parent.parent / "docs" / "ledger-format.md"


#: The stored text of each row `load_rows` read, by (seq, the record expanded): `resign` keeps
#: the rows a forgery left in place byte for byte, as a forger would.
STORED: dict[tuple[int, str], str] = {}


def resign(path: Path, rows: list[tuple[int, str, dict]]) -> None:
    """Replaces the events table by `rows` (seq, id, version-1 shaped record object),
    re-deriving every record's embedded seq, canonical text and hash: a forger's consistent
    rewrite. In a version-2 ledger the rows up to the first change keep their stored text;
    from there on every record defines its own context."""
    con = sqlite3.connect(path)
    version = con.execute("select value from meta where key = 'version'").fetchone()[0]
    unchanged = True
    with con:
        con.execute("delete from events")
        prev = bytes(32)
        for seq, (_, event_id, record) in enumerate(rows, start=1):
            if version == "1":
                text = jcs({**record, "seq": seq})
                sql, args = (
                    "insert into events (seq, id, record, hash) values (?, ?, ?, ?)",
                    [
                        seq,
                        event_id,
                        text,
                    ],
                )
            else:
                kept = STORED.get((seq, jcs({**record, "seq": seq})))
                unchanged = unchanged and kept is not None
                if unchanged and kept is not None:
                    text = kept
                else:
                    context = {"classification": record["classification"], "event": {}}
                    text = jcs({"c": context, "e": record["event"], "s": seq, "v": 2})
                sql, args = "insert into events (seq, record, hash) values (?, ?, ?)", [seq, text]
            prev = hashlib.sha256(prev + text.encode()).digest()
            con.execute(sql, (*args, prev))
    con.close()


def load_rows(path: Path) -> list[tuple[int, str, dict]]:
    """(seq, event id, version-1 shaped record object) for every row."""
    con = sqlite3.connect(path)
    try:
        stored = [(seq, r) for seq, r in con.execute("select seq, record from events")]
    finally:
        con.close()
    parsed = [(seq, json.loads(r)) for seq, r in stored]
    out = []
    for (seq, text), r in zip(stored, expand_records(parsed), strict=True):
        STORED[(seq, jcs({**r, "seq": seq}))] = text
        out.append((seq, r["event"]["id"], r))
    return out


def forge_edit(rows):
    """Lower the input tokens of one model call (an under-reported bill)."""
    out = [list(r) for r in copy.deepcopy(rows)]
    for r in out:
        if r[2]["event"].get("input_tokens", 0) >= 100:
            r[2]["event"]["input_tokens"] = 1
            break
    return [tuple(r) for r in out]


def forge_tag(rows):
    """Relabel a stateful call stateless, evidence and all (a compliance cover-up)."""
    out = [list(r) for r in copy.deepcopy(rows)]
    for r in out:
        c = r[2]["classification"]
        if c["tag"] == "stateful":
            c.update(
                tag="stateless",
                consumes_state=False,
                session_stateful=False,
                evidence=[e for e in c["evidence"] if e["tag"] == "stateless"],
            )
            r[2]["event"].pop("request", None)
            break
    return [tuple(r) for r in out]


FORGERIES = {
    "edited and re-signed": (forge_edit, "swapped"),
    "relabelled and re-signed": (forge_tag, "swapped"),
    "deleted, renumbered and re-signed": (lambda rows: rows[:3] + rows[4:], "truncated"),
    "inserted and re-signed": (
        lambda rows: (
            rows[:3]
            + [
                (
                    0,
                    "forged-id",
                    {**rows[3][2], "event": {**rows[3][2]["event"], "id": "forged-id"}},
                )
            ]
            + rows[3:]
        ),
        "swapped",
    ),
    "reordered and re-signed": (lambda rows: rows[:2] + [rows[3], rows[2]] + rows[4:], "swapped"),
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_resigned_forgery_needs_the_kept_head(ledger_path, name):
    head = record_sample(ledger_path, 10)
    forge, word = FORGERIES[name]
    before = load_rows(ledger_path)
    resign(ledger_path, forge(before))
    after = load_rows(ledger_path)
    assert [r[2] for r in after] != [r[2] | {"seq": r[0]} for r in before]  # history changed

    # Undetectable by design without a kept head: both verifiers accept the forged chain.
    ledger = sm.Ledger.open(ledger_path)
    v = ledger.verify()
    assert v.ok, v
    assert check(ledger_path).ok
    assert len(ledger.events()) == len(after)

    # With the head kept outside the ledger, the rewrite is detected.
    v = ledger.verify(head=head)
    assert not v.ok and v.problem.startswith(word), v
    assert v.first_bad_seq is not None and v.first_bad_seq <= head.seq
    ref = check(ledger_path, str(head))
    assert not ref.ok and ref.problem.startswith(word), ref


def test_forgery_after_the_kept_head_is_indistinguishable(ledger_path):
    """Events appended (or rewritten) after the last kept head verify against it: the chain
    proves order and integrity up to the head, not who wrote what came later (documented)."""
    head = record_sample(ledger_path, 10)
    rows = load_rows(ledger_path)
    extra = (
        0,
        "forged-late",
        {**rows[-1][2], "event": {**rows[-1][2]["event"], "id": "forged-late"}},
    )
    resign(ledger_path, rows + [extra])
    v = sm.Ledger.open(ledger_path).verify(head=head)
    assert v.ok and v.events == 11


def test_docs_say_what_cannot_be_detected():
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## What cannot be detected", 1)[1]
    flat = re.sub(r"\s+", " ", section)
    # The re-signed forgery: undetectable without a kept head, `swapped` with one.
    assert "rewrite the whole chain consistently" in flat
    assert "re-derive every hash and embedded seq" in flat
    assert "Such a re-signed forgery verifies" in flat
    assert "Only a head kept outside the ledger detects this (`swapped`; or `truncated`" in flat
    # Truncation and what is appended after the head.
    assert "removing the last rows is invisible" in flat
    assert "Events appended after the last kept head" in flat


# --------------------------------------------------------------- schema objects and catalogues
#
# A trigger fires inside the honest writer's own transaction: planted once, it can drop chosen
# events as they are appended without touching a stored row, and the next append then reuses
# the dropped seq, so the chain stays consistent. Writers refuse such a file, every append is
# read back, and verify() reports the schema.

DROP_SECRETS = (
    "CREATE TRIGGER keep_quiet AFTER INSERT ON events "
    "WHEN NEW.record LIKE '%secret%' BEGIN DELETE FROM events WHERE seq = NEW.seq; END"
)


def plant(path: Path, sql: str) -> None:
    """Runs `sql` on the ledger from a process of its own (statemeter may have it open here)."""
    code = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.executescript(sys.argv[2]); c.close()"
    )
    subprocess.run([sys.executable, "-c", code, str(path), sql], check=True, timeout=60)


def test_a_planted_trigger_is_refused_by_writers_and_reported_by_verify(ledger_path):
    head = record_sample(ledger_path, 10)
    plant(ledger_path, DROP_SECRETS)
    with pytest.raises(sm.LedgerError, match='trigger "keep_quiet" on table "events"'):
        sm.Meter(ledger_path)
    ledger = sm.Ledger.open(ledger_path)  # reading still works
    assert len(ledger.events()) == 10
    v = ledger.verify(head=head)
    assert not v.ok and v.problem.startswith("altered:") and "keep_quiet" in v.problem, v
    assert v.first_bad_seq is None
    del ledger  # closed before the reference verifier's sqlite3 reads the file
    ref = check(ledger_path, str(head))
    assert not ref.ok and ref.problem == v.problem, ref


@pytest.mark.parametrize("durability", ["sync", "batch"])
def test_a_trigger_planted_under_a_running_meter_cannot_drop_events(ledger_path, durability):
    meter = sm.Meter(ledger_path, durability=durability)
    s = meter.session("bot")
    s.tool_call("search")
    meter.flush()
    written = meter.stats()["written"]
    plant(ledger_path, DROP_SECRETS)
    if durability == "sync":
        with pytest.raises(sm.IntegrityError, match="intercepts writes"):
            s.tool_call("secret-transfer")
    else:
        # Batch mode keeps the event queued and says why it cannot be written.
        s.tool_call("secret-transfer")
        with pytest.raises(sm.LedgerError, match="intercepts writes"):
            meter.flush()
    stats = meter.stats()
    assert stats["written"] == written and stats["failed_commits"] >= 1, stats
    ledger = sm.Ledger.open(ledger_path)
    head = ledger.head()
    assert head.seq == written
    v = ledger.verify(head=head)
    assert not v.ok and "keep_quiet" in v.problem
    with contextlib.suppress(sm.StatemeterError):
        meter.close()


REBUILT_WITHOUT_KEY = (
    "CREATE TABLE e2 (seq INTEGER, record TEXT, hash BLOB);"
    "INSERT INTO e2 SELECT * FROM events; DROP TABLE events; ALTER TABLE e2 RENAME TO events;"
)


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("CREATE VIEW recent AS SELECT * FROM events", 'view "recent"'),
        ("CREATE INDEX by_record ON events (record)", 'index "by_record" on table "events"'),
        ("CREATE TABLE notes (x)", 'table "notes" was added'),
        (REBUILT_WITHOUT_KEY, 'table "events" was altered'),
    ],
)
def test_schema_objects_statemeter_did_not_create_are_reported(ledger_path, sql, named):
    head = record_sample(ledger_path, 6)
    plant(ledger_path, sql)
    v = sm.Ledger.open(ledger_path).verify(head=head)
    assert not v.ok and v.problem.startswith("altered:") and named in v.problem, v
    assert check(ledger_path, str(head)).problem == v.problem
    with pytest.raises(sm.LedgerError, match="refusing to write"):
        sm.Meter(ledger_path)


def test_statistics_tables_are_not_tampering(ledger_path):
    record_sample(ledger_path, 4)
    plant(ledger_path, "ANALYZE")
    assert sm.Ledger.open(ledger_path).verify().ok and check(ledger_path).ok
    sm.Meter(ledger_path).close()


def swap_catalogue(path: Path) -> None:
    """Replaces the stored catalogue by a self-consistent one under a new digest."""
    con = sqlite3.connect(path)
    with con:
        digest, text = con.execute("SELECT digest, catalogue FROM rulesets").fetchone()
        other = text.replace("no rule matched", "nothing of note")
        new = hashlib.sha256(other.encode()).hexdigest()[:16]
        con.execute("UPDATE rulesets SET digest = ?, catalogue = ?", (new, other))
    con.close()


@pytest.mark.parametrize(
    "tamper",
    [
        "swapped for a self-consistent one",
        "DELETE FROM rulesets",
        "DROP TABLE rulesets",
    ],
)
def test_a_catalogue_the_records_name_must_be_stored(ledger_path, tamper):
    head = record_sample(ledger_path, 8)
    digest = sm.Ledger.open(ledger_path).events()[0].ruleset_digest
    if tamper.startswith("swapped"):
        swap_catalogue(ledger_path)
    else:
        plant(ledger_path, tamper)
    v = sm.Ledger.open(ledger_path).verify(head=head)
    assert not v.ok and v.problem.startswith("deleted:") and digest in v.problem, v
    assert v.first_bad_seq == 1 and "seq 1 and 7 later events" in v.problem
    ref = check(ledger_path, str(head))
    assert (ref.ok, ref.first_bad_seq, ref.problem) == (False, 1, v.problem)
