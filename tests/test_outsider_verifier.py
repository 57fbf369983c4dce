"""The outsider's reader and verifier (examples/verify_ledger.py: hashlib, json and sqlite3,
written from docs/ledger-format.md) on ledgers of every format version, and the checks every
verifier shares: the stored Merkle tree re-derived from the records, version-2 contexts
defined by an earlier record, and no record whose `e` shadows a key of its context."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import statemeter as sm
from statemeter.reverify import check, jcs

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "examples" / "verify_ledger.py"
V1_FLEET = ROOT / "tests" / "data" / "ledgers" / "v1-fleet.db"


def outsider(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The script in a process of its own, with nothing of statemeter on its path (-I)."""
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def fresh_ledger(path: Path) -> tuple[str, str, list[sm.Event]]:
    """A new ledger (version 3, version-2 records) of 150 events of several agents, contexts
    and kinds; returns its head, the root of its Merkle tree and its events."""
    key = sm.SigningKey.generate("outsider.example")
    with sm.Meter(path, durability="sync") as meter:
        for agent in ("support", "billing", "research"):
            with meter.session(agent=agent, venue="azure", tenant="acme") as s:
                for i in range(25):
                    s.model_call(
                        provider="openai",
                        model="gpt-5" if i % 3 else "gpt-5-mini",
                        api="responses",
                        input_tokens=100 + i,
                        output_tokens=i,
                        attrs={"kind": "nested keys are no event keys", "ratio": i / 7},
                    )
                    s.tool_call(tool="search", duration_ns=1_000 + i)
        ledger = meter.ledger
        head = str(ledger.head())
        root = ledger.checkpoint(key).root_hash
        events = list(ledger.events())
    return head, root, events


def test_the_outsider_reads_and_verifies_a_version_1_ledger(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    shutil.copy(V1_FLEET, path)
    expected = check(path)
    assert expected.ok
    r = outsider(path, "--events", "--head", expected.head)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1].startswith(f"OK: {expected.events} events, head {expected.head}")
    events = [json.loads(line) for line in lines[:-1]]
    assert [e["seq"] for e in events] == list(range(1, expected.events + 1))
    con = sqlite3.connect(path)
    try:
        first = json.loads(con.execute("SELECT record FROM events WHERE seq = 1").fetchone()[0])
    finally:
        con.close()
    assert events[0]["event"] == first["event"]
    assert events[0]["classification"] == first["classification"]


def test_the_outsider_reads_and_verifies_a_fresh_version_2_ledger(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    head, root, events = fresh_ledger(path)
    r = outsider(path, "--events", "--head", head)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == f"OK: {len(events)} events, head {head}, tree root {root}"
    read = [json.loads(line) for line in lines[:-1]]
    assert len(read) == len(events)
    for got, event in zip(read, events, strict=True):
        # The union of e and the context is the event statemeter reads back.
        assert got["event"]["id"] == event.id and got["event"]["kind"] == event.kind
        assert got["event"].get("agent") == event.agent
        assert got["event"].get("model") == event.model
        assert got["event"].get("input_tokens") == event.input_tokens
        assert got["event"].get("attrs", {}) == dict(event.attrs)
        assert got["classification"]["tag"] == event.tag
    # Contexts were referenced, not repeated: the outsider resolved references.
    con = sqlite3.connect(path)
    try:
        refs = con.execute("SELECT count(*) FROM events WHERE record NOT LIKE '{\"c\":{%'")
        assert refs.fetchone()[0] > len(events) // 2
    finally:
        con.close()
    # A kept head from another ledger is not this one's.
    wrong = head.split(":")[0] + ":" + "00" * 32
    r = outsider(path, "--head", wrong)
    assert r.returncode == 1 and "swapped" in r.stdout


def _rows(path: Path) -> list[tuple[int, bytes]]:
    con = sqlite3.connect(path)
    try:
        return [(s, r.encode()) for s, r in con.execute("SELECT seq, record FROM events")]
    finally:
        con.close()


def resign_from(path: Path, seq: int, record: dict) -> None:
    """Replaces the record at `seq` by `record` (canonical), re-deriving every hash after it,
    as someone who can write the file would."""
    rows = _rows(path)
    rows[seq - 1] = (seq, jcs(record).encode())
    con = sqlite3.connect(path)
    with con:
        prev = bytes(32)
        for s, text in rows:
            prev = hashlib.sha256(prev + text).digest()
            con.execute(
                "UPDATE events SET record = ?, hash = ? WHERE seq = ?", (text.decode(), prev, s)
            )
    con.close()


def reference_record(path: Path) -> tuple[int, dict]:
    """The first record that refers to its context, parsed."""
    for seq, text in _rows(path):
        record = json.loads(text)
        if isinstance(record["c"], int):
            return seq, record
    raise AssertionError("no record refers to a context")


def verifications(path: Path) -> tuple[sm.Verification, subprocess.CompletedProcess[str]]:
    verification = sm.Ledger.open(path).verify()  # the ledger is closed once dropped
    return verification, outsider(path)


def test_a_record_whose_e_shadows_its_context_fails_every_verifier(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    fresh_ledger(path)
    seq, record = reference_record(path)
    record["e"]["agent"] = "someone-else"  # the context holds "agent" too
    resign_from(path, seq, record)
    v, r = verifications(path)
    assert not v.ok and v.first_bad_seq == seq, v
    assert v.problem.startswith("edited:") and '"agent" twice' in v.problem, v.problem
    assert r.returncode == 1 and f"seq {seq}:" in r.stdout and "agent" in r.stdout, r.stdout
    ref = check(path)
    assert not ref.ok and ref.first_bad_seq == seq and "'agent' twice" in (ref.problem or "")


def test_a_reference_to_no_definition_fails_every_verifier(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    fresh_ledger(path)
    seq, record = reference_record(path)
    record["c"] = seq  # itself: not an earlier record defining a context
    resign_from(path, seq, record)
    v, r = verifications(path)
    assert not v.ok and v.first_bad_seq == seq and v.problem.startswith("edited:"), v
    assert r.returncode == 1 and f"seq {seq}:" in r.stdout, r.stdout
    assert check(path).first_bad_seq == seq


def test_an_edited_merkle_node_fails_verify_and_the_outsider(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    head, _, _ = fresh_ledger(path)
    con = sqlite3.connect(path)
    with con:
        nodes = con.execute("SELECT count(*) FROM merkle_nodes").fetchone()[0]
        assert nodes == sum(150 >> level for level in range(4, 8))
        con.execute("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = 5 AND idx = 2")
    con.close()
    v, r = verifications(path)
    assert not v.ok and v.first_bad_seq is None, v
    assert v.problem.startswith("edited: the Merkle tree node (level 5, index 2)"), v.problem
    assert "records 65 to 96" in v.problem
    assert r.returncode == 1 and "Merkle tree node" in r.stdout and "(5, 2)" in r.stdout
    # The records are intact: the chain still verifies against the head kept before.
    assert check(path, head).ok
    con = sqlite3.connect(path)
    with con:
        con.execute("DELETE FROM merkle_nodes WHERE level = 5 AND idx = 2")
    con.close()
    v, r = verifications(path)
    assert v.problem.startswith("deleted: the Merkle tree node (level 5, index 2)"), v.problem
    assert r.returncode == 1 and "(5, 2)" in r.stdout
