from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import statemeter as sm


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def record_sample(path: Path, n: int = 10) -> sm.Head:
    """Records `n` mixed events into a file ledger and returns its head."""
    with sm.Meter(path) as meter:
        with meter.session("bot", tenant="acme", venue="azure") as s:
            for i in range(n - 2):
                if i % 3 == 0:
                    s.model_call(
                        provider="openai",
                        model="gpt-5",
                        api="responses",
                        request={"previous_response_id": f"resp_{i}"},
                        input_tokens=100 + i,
                        output_tokens=10,
                    )
                elif i % 3 == 1:
                    s.model_call(
                        provider="openai",
                        model="gpt-5",
                        api="chat.completions",
                        input_tokens=50,
                        output_tokens=5,
                    )
                else:
                    s.tool_call("search", effect="read")
        head = meter.ledger.head()
    return head


def expand_records(records: list[tuple[int, dict]]) -> list[dict]:
    """Version-2 records `(seq, parsed record)` as version-1 shaped objects
    (`classification`, `event`, `seq`, `v`: 1), their context resolved as
    docs/ledger-format.md says; version-1 records as they are."""
    contexts: dict[int, dict] = {}
    out = []
    for seq, rec in records:
        if rec.get("v") == 2:
            if isinstance(rec["c"], dict):
                contexts[seq] = rec["c"]
            ctx = rec["c"] if isinstance(rec["c"], dict) else contexts[rec["c"]]
            rec = {
                "classification": ctx["classification"],
                "event": {**rec["e"], **ctx["event"]},
                "seq": rec["s"],
                "v": 1,
            }
        out.append(rec)
    return out


def rows(path: Path) -> list[tuple]:
    """The rows (seq, event id, record text, hash) as Python's sqlite3 reads them, in a process
    of its own: in this process
    statemeter may still have the file open, and closing a second SQLite library's connection
    would release statemeter's locks (docs/ledger-format.md)."""
    code = (
        "import json, pickle, sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "v = con.execute(\"select value from meta where key = 'version'\").fetchone()[0]\n"
        "q = 'select seq, record, hash from events order by seq'\n"
        "if v == '1':\n"
        "    q = 'select seq, id, record, hash from events order by seq'\n"
        "    out = con.execute(q).fetchall()\n"
        "else:\n"
        "    out = [(s, json.loads(r)['e']['id'], r, h) for s, r, h in con.execute(q)]\n"
        "sys.stdout.buffer.write(pickle.dumps(out))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, timeout=120, check=False
    )
    if r.returncode != 0:
        raise sqlite3.OperationalError(r.stderr.decode().strip().splitlines()[-1])
    return pickle.loads(r.stdout)


def as_version_2(path: Path) -> None:
    """Turns a version-3 ledger into the version-2 ledger an earlier release would have written
    from the same events (the records, ids and tree are the same; every row keeps its whole
    chain hash), in a process of its own (docs/ledger-format.md: statemeter may have the file
    open in this one)."""
    code = (
        "import hashlib, sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "with con:\n"
        "    q = \"select value from meta where key = 'version'\"\n"
        "    assert con.execute(q).fetchone()[0] == '3'\n"
        "    prev = bytes(32)\n"
        "    q = 'select seq, record from events order by seq'\n"
        "    for seq, record in con.execute(q).fetchall():\n"
        "        prev = hashlib.sha256(prev + record.encode()).digest()\n"
        "        con.execute('update events set hash = ? where seq = ?', (prev, seq))\n"
        "    con.execute(\"update meta set value = '2' where key = 'version'\")\n"
        "con.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)


#: A ruleset whose rules name kinds of state, independent of the built-in catalogues: a stored
#: response chain (conversation, provider-held, stateful), an uploaded file (content,
#: provider-held, stateless), an agent runtime session (runtime), and a note that names no kind.
KINDS_RULESET = """
name = "kinds"

[[rule]]
id = "chain"
when = { kind = "model_call" }
has = ["request.previous_response_id"]
consumes_state = true
state_holder = "provider"
state = "conversation"
tag = "stateful"
explain = "continues a stored response"

[[rule]]
id = "file"
when = { kind = "model_call" }
has = ["request.file_id"]
consumes_state = true
state_holder = "provider"
state = "content"
explain = "reads a file the provider stores"

[[rule]]
id = "runtime"
when = { kind = "model_call" }
has = ["request.agent_session"]
consumes_state = true
state_holder = "provider"
state = "runtime"
tag = "stateful"
explain = "runs in an agent runtime session"

[[rule]]
id = "cache-note"
when = { kind = "model_call" }
has = ["request.cache_key"]
explain = "prompt caching is not state"
"""


@pytest.fixture(scope="session")
def kinds_ruleset() -> sm.Ruleset:
    return sm.Ruleset.from_toml(KINDS_RULESET)
