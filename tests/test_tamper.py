"""Tampering by someone who re-signs: after changing history they re-derive every later hash
(and every embedded seq), so the chain is internally consistent again.

tests/test_ledger.py covers the naive edits (edit, delete, insert, reorder, truncate, swap).
Here the forger does the work: without a head kept outside the ledger, a re-signed forgery
verifies — undetectable by design, and docs/ledger-format.md says so; with a kept head it is
detected. Both verifiers (Rust and the independent reference script) must agree.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest
import statemeter as sm
from conftest import record_sample
from reverify_ledger import check, jcs

DOCS = Path(__file__).parent.parent / "docs" / "ledger-format.md"


def resign(path: Path, rows: list[tuple[int, str, dict]]) -> None:
    """Replaces the events table by `rows` (seq, id, record object), re-deriving every record's
    embedded seq, canonical text and hash: a forger's consistent rewrite."""
    con = sqlite3.connect(path)
    with con:
        con.execute("delete from events")
        prev = bytes(32)
        for seq, (_, event_id, record) in enumerate(rows, start=1):
            record = {**record, "seq": seq}
            text = jcs(record)
            prev = hashlib.sha256(prev + text.encode()).digest()
            con.execute(
                "insert into events (seq, id, record, hash) values (?, ?, ?, ?)",
                (seq, event_id, text, prev),
            )
    con.close()


def load_rows(path: Path) -> list[tuple[int, str, dict]]:
    con = sqlite3.connect(path)
    try:
        return [
            (seq, i, json.loads(r))
            for seq, i, r in con.execute("select seq, id, record from events order by seq")
        ]
    finally:
        con.close()


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
