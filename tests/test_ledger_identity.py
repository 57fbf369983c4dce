"""The ledger's identity: `meta.ledger_id` (docs/ledger-format.md), shown as `Ledger.ledger_id`,
`Head.ledger_id`, `Report.meta["ledger_id"]` and `ExportResult.ledger_id`."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import statemeter as sm
from conftest import record_sample, rows
from statemeter import simulate

CONTRACT = """
id = "c"
[[clause]]
id = "all"
providers = ["openai"]
required_venues = ["azure"]
[clause.interpretations.default]
level = "call"
tags = ["stateful"]
"""


def meta(path: Path) -> dict[str, str]:
    code = (
        "import json, sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "print(json.dumps(dict(con.execute('select key, value from meta'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def drop_id(path: Path) -> None:
    """Makes `path` look like a ledger written before ledgers had an identity."""
    code = (
        "import sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "with con:\n"
        "    con.execute(\"delete from meta where key = 'ledger_id'\")\n"
        "con.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)


def test_a_new_ledger_has_a_uuid_v7_stored_in_meta(ledger_path):
    head = record_sample(ledger_path, 6)
    stored = meta(ledger_path)["ledger_id"]
    assert uuid.UUID(stored).version == 7 and str(uuid.UUID(stored)) == stored
    ledger = sm.Ledger.open(ledger_path)
    assert ledger.ledger_id == stored == head.ledger_id
    assert ledger.head().ledger_id == stored
    v = ledger.verify()
    assert v.ok and v.head.ledger_id == stored
    # Stable: reopening, recording more, another process's view.
    with sm.Meter(ledger_path) as meter:
        assert meter.ledger.ledger_id == stored
    assert sm.Ledger.open(ledger_path).ledger_id == stored
    assert len(rows(ledger_path)) == 6


def test_ledgers_have_distinct_ids(tmp_path):
    ids = {sm.Meter(tmp_path / f"{i}.db").ledger.ledger_id for i in range(5)}
    ids |= {sm.Meter().ledger.ledger_id for _ in range(5)}  # in memory too
    assert len(ids) == 10 and None not in ids


def test_an_older_ledger_gets_an_id_on_its_first_writable_open(ledger_path):
    record_sample(ledger_path, 5)
    drop_id(ledger_path)
    assert "ledger_id" not in meta(ledger_path)
    first = sm.Ledger.open(ledger_path).ledger_id
    assert first is not None and uuid.UUID(first).version == 7
    assert meta(ledger_path)["ledger_id"] == first
    assert sm.Ledger.open(ledger_path).ledger_id == first
    assert sm.Ledger.open(ledger_path).verify().ok


def test_report_meta_and_export_carry_the_id(ledger_path, tmp_path):
    record_sample(ledger_path, 9)
    ledger = sm.Ledger.open(ledger_path)
    contract = sm.Contract.from_toml(CONTRACT)
    assert ledger.report(contract).meta["ledger_id"] == ledger.ledger_id
    prices = Path(__file__).parent.parent / "examples" / "prices" / "illustrative.toml"
    assert ledger.costs(prices).meta["ledger_id"] == ledger.ledger_id
    pytest.importorskip("pyarrow")
    result = ledger.export_parquet(tmp_path / "ds")
    assert result.ledger_id == ledger.ledger_id


def test_a_kept_head_names_its_ledger(tmp_path):
    # The same events in two ledgers: the chains agree, the identities do not.
    for name in ("a", "b"):
        with sm.Meter(tmp_path / f"{name}.db") as meter:
            simulate.fleet(days=1, agents=2, seed=3, sessions_per_agent_day=2, meter=meter)
    a = sm.Ledger.open(tmp_path / "a.db").head()
    b = sm.Ledger.open(tmp_path / "b.db")
    assert b.head() == a  # equality is the position
    assert b.verify(head=str(a)).ok  # without the id, nothing tells them apart
    v = b.verify(head=a)
    assert not v.ok and v.problem.startswith("swapped") and a.ledger_id in v.problem
    assert v.first_bad_seq == a.seq
    assert sm.Ledger.open(tmp_path / "a.db").verify(head=a).ok
    kept = sm.Head(a.seq, a.hash, a.ledger_id.upper())
    assert kept.ledger_id == a.ledger_id and a.ledger_id in repr(kept)
    with pytest.raises(sm.ValidationError, match="ledger_id"):
        sm.Head(a.seq, a.hash, "host-1")


def test_an_edited_id_is_refused_where_it_is_used(ledger_path):
    record_sample(ledger_path, 4)
    code = (
        "import sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "with con:\n"
        "    con.execute(\"update meta set value = '../../x' where key = 'ledger_id'\")\n"
        "con.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(ledger_path)], check=True, timeout=120)
    ledger = sm.Ledger.open(ledger_path)
    with pytest.raises(sm.LedgerError, match="not a UUID"):
        _ = ledger.ledger_id
    assert ledger.verify().ok  # the chain itself is intact
