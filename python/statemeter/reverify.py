#!/usr/bin/env python3
"""Re-verify a statemeter ledger with nothing but the standard library (hashlib, json, sqlite3).

    python -m statemeter.reverify LEDGER [--head SEQ:HEX] [--json]

Prints ``OK ...`` and exits 0 when the ledger is intact, else prints the first bad seq and what is
wrong and exits 1; exits 2 when the file cannot be read as a ledger. This is an independent
implementation of docs/ledger-format.md: it uses no other part of statemeter, and this one file
runs on its own with any Python >= 3.11 (``python reverify.py LEDGER``), so an auditor can read
it whole and check a ledger without installing statemeter. For each row in seq order it checks
that

- the seqs run 1, 2, 3, ... without gaps,
- ``hash == SHA-256(previous hash || record bytes)``, starting from 32 zero bytes (version 3:
  the whole hash on every 64th row and on the last row, elsewhere its first 4 bytes or the
  whole hash),
- ``record`` is RFC 8785 canonical JSON (parsed, re-encoded by the small encoder below, compared
  byte for byte) of an object with exactly the keys classification, event, seq, v (version 1)
  or c, e, s, v (versions 2 and 3),
- the record's ``seq`` (``s``) is the row's seq and ``v`` is 1 (2),
- a version-2 record's context (``c``) is an object ``{"classification": {...}, "event":
  {...}}``, or the seq of an earlier record whose context is one, and no key of the record's
  ``e`` is a key of its context's ``event`` (the event is their union),

and, given a head kept earlier, that the ledger reaches the head's seq with the head's hash;
that the schema is exactly the one statemeter creates (no trigger, view, extra or rebuilt
table or index); and that every ruleset catalogue a record names is stored under its digest.
The first failure is classified as the Rust verifier does (edited, deleted, inserted,
duplicated, reordered, truncated, swapped, altered; see docs/ledger-format.md, "Diagnosing
problems").

Importable: ``reverify(path, head=None) -> tuple[bool, int | None]``; ``check(path, head=None)``
returns a ``Result`` with the message, the event count and the ledger's head too.

Run it in a process of its own, not in one where statemeter has the ledger open: it reads with
Python's sqlite3, a second SQLite library, and closing its connection would release
statemeter's file locks (docs/ledger-format.md, the warning at the top). Imported into a process
that has loaded statemeter, ``check`` does that itself: it runs this script in a child process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

ZERO = bytes(32)
#: Version 3: every row whose seq is a multiple of HASH_STRIDE keeps the whole chain hash, as
#: does the last row of every append; the other rows keep its first CHECK_LEN bytes.
HASH_STRIDE = 64
CHECK_LEN = 4
VERSIONS = (b"1", b"2", b"3")
NOT_A_LEDGER = "is not a statemeter ledger of version 1, 2 or 3"
RECORD_KEYS = ["classification", "event", "seq", "v"]
RECORD_KEYS_V2 = ["c", "e", "s", "v"]

#: The schema statemeter creates (docs/ledger-format.md), as sqlite_master rows
#: (type, name, table, definition); rulesets, merkle_nodes and checkpoints (with their indexes)
#: may be absent in older ledgers.
EXPECTED_SCHEMA_V1 = {
    (
        "table",
        "events",
        "events",
        "create table events (seq integer primary key, id text not null unique, "
        "record text not null, hash blob not null)",
    ),
    ("index", "sqlite_autoindex_events_1", "events", None),
}
#: Version 2: no id column; the ids index is a table of 8 or 16-byte keys.
EXPECTED_SCHEMA_V2 = {
    (
        "table",
        "events",
        "events",
        "create table events (seq integer primary key, record text not null, hash blob not null)",
    ),
    (
        "table",
        "ids",
        "ids",
        "create table ids (key blob primary key, seq integer not null) without rowid",
    ),
}
EXPECTED_SCHEMA = {
    ("table", "meta", "meta", "create table meta (key text primary key, value text)"),
    ("index", "sqlite_autoindex_meta_1", "meta", None),
    (
        "table",
        "rulesets",
        "rulesets",
        "create table rulesets (digest text primary key, name text not null, "
        "catalogue text not null)",
    ),
    ("index", "sqlite_autoindex_rulesets_1", "rulesets", None),
    (
        "table",
        "merkle_nodes",
        "merkle_nodes",
        "create table merkle_nodes (level integer not null, idx integer not null, "
        "hash blob not null, primary key (level, idx))",
    ),
    ("index", "sqlite_autoindex_merkle_nodes_1", "merkle_nodes", None),
    (
        "table",
        "checkpoints",
        "checkpoints",
        "create table checkpoints (size integer not null, root_hash blob not null, "
        "note text not null unique)",
    ),
    ("index", "sqlite_autoindex_checkpoints_1", "checkpoints", None),
}
#: SQLite's statistics tables (ANALYZE): they change nothing stored.
STATISTICS = {"sqlite_stat1", "sqlite_stat4"}


# --------------------------------------------------------------------------- RFC 8785 encoder


def es_number(x: float) -> str:
    """ECMAScript Number.prototype.toString for a finite float (-0 gives "0").

    repr() gives the shortest digits that round-trip (as ECMAScript requires); only the layout
    (where the point goes, when to switch to exponent form) differs, and is redone here.
    """
    if not math.isfinite(x):
        raise ValueError(f"{x!r} has no JSON form")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    text = repr(abs(x))
    mantissa, _, exp = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    zeros = len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits[zeros:].rstrip("0")
    # value = 0.DIGITS x 10**n
    n = len(int_part) - zeros + (int(exp) if exp else 0)
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        fraction = "." + digits[1:] if k > 1 else ""
        out = f"{digits[0]}{fraction}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + out


def jcs(value: Any) -> str:
    """RFC 8785 canonical JSON, with integers written exactly (as the ledger format defines)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return es_number(value)
    if isinstance(value, str):
        # With ensure_ascii=False, json.dumps escapes exactly what RFC 8785 escapes: '"', '\\',
        # \b \t \n \f \r in short form, other controls below U+0020 as \u00xx (lowercase).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))  # UTF-16 code unit order
        return "{" + ",".join(jcs(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_record(record: bytes) -> dict[str, Any] | None:
    """The record as a dict if it is canonical JSON of a version-1 or version-2 record, else
    None."""
    try:
        text = record.decode("utf-8")
        obj = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(obj, dict):
        return None
    if sorted(obj) == RECORD_KEYS and obj["v"] == 1:
        seq = obj["seq"]
    elif sorted(obj) == RECORD_KEYS_V2 and obj["v"] == 2:
        seq, c = obj["s"], obj["c"]
        if not isinstance(obj["e"], dict):
            return None
        if isinstance(c, dict):
            if sorted(c) != ["classification", "event"] or not all(
                isinstance(v, dict) for v in c.values()
            ):
                return None
        elif not isinstance(c, int) or isinstance(c, bool):
            return None
    else:
        return None
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None
    if jcs(obj) != text:
        return None
    return obj


def embedded_seq(record: bytes) -> int | None:
    obj = parse_record(record)
    if obj is None:
        return None
    return int(obj["seq"] if obj["v"] == 1 else obj["s"])


# --------------------------------------------------------------------------- verification


class Result(NamedTuple):
    ok: bool
    first_bad_seq: int | None
    problem: str | None
    events: int
    head: str


def parse_head(head: Any) -> tuple[int, bytes] | None:
    """Accepts "SEQ:HEX", (seq, hex_or_bytes), or an object with .seq and .hash."""
    if head is None:
        return None
    given: Any
    if isinstance(head, str):
        seq_text, _, hex_text = head.strip().partition(":")
        seq, given = int(seq_text), hex_text
    elif isinstance(head, tuple):
        seq, given = head
    else:
        seq, given = head.seq, head.hash
    digest = bytes.fromhex(given) if isinstance(given, str) else bytes(given)
    if seq < 0 or len(digest) != 32:
        raise ValueError(f"not a head: {head!r}")
    return seq, digest


def _link(prev: bytes, record: bytes) -> bytes:
    return hashlib.sha256(prev + record).digest()


def _as_bytes(v: Any) -> bytes:
    return v if isinstance(v, bytes) else b""


def _matches(stored: bytes, hash: bytes, version: int) -> bool:
    """Whether a row's stored `hash` column holds the chain hash `hash`: all of it, or in
    version 3 its first CHECK_LEN bytes."""
    check = version >= 3 and len(stored) == CHECK_LEN
    return stored == hash or (check and stored == hash[:CHECK_LEN])


def _connect(path: str | Path) -> sqlite3.Connection:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no ledger at {p}")
    con = sqlite3.connect(p.resolve().as_uri() + "?mode=ro", uri=True)
    con.text_factory = bytes  # hash exactly the stored bytes
    meta = dict(con.execute("SELECT key, value FROM meta"))
    if meta.get(b"format") != b"statemeter-ledger" or meta.get(b"version") not in VERSIONS:
        raise ValueError(f"{p} {NOT_A_LEDGER}")
    return con


def check(path: str | Path, head: Any = None) -> Result:
    """Re-verifies the ledger at `path` (against `head`, a head kept earlier, if given).

    In a process that has loaded statemeter's extension, the check runs in a child process:
    sqlite3 must not open a file statemeter's own SQLite may have open in the same process."""
    kept = parse_head(head)
    if "statemeter._core" in sys.modules:
        return _check_in_child(path, kept)
    return _check_here(path, kept)


def _check_here(path: str | Path, kept: tuple[int, bytes] | None) -> Result:
    con = _connect(path)
    try:
        return _check(con, kept)
    finally:
        con.close()


def _check_in_child(path: str | Path, kept: tuple[int, bytes] | None) -> Result:
    # -I: the child runs this file alone, with no statemeter (nor anything else) on its path.
    args = [sys.executable, "-I", __file__, str(path), "--json"]
    if kept is not None:
        args += ["--head", f"{kept[0]}:{kept[1].hex()}"]
    r = subprocess.run(args, capture_output=True, timeout=600, check=False)
    if r.returncode == 2:
        message = r.stderr.decode().strip().removeprefix("ERROR: ")
        if message.startswith("no ledger at"):
            raise FileNotFoundError(message)
        if NOT_A_LEDGER in message:
            raise ValueError(message)
        raise sqlite3.DatabaseError(message)
    return Result(*json.loads(r.stdout))


def reverify(path: str | Path, head: Any = None) -> tuple[bool, int | None]:
    """(ok, first bad seq or None)."""
    r = check(path, head)
    return r.ok, r.first_bad_seq


def _normalize_sql(sql: str) -> str:
    text = " ".join(sql.split()).lower()
    return text.replace("( ", "(").replace(" )", ")").replace(" ,", ",")


def _version(con: sqlite3.Connection) -> int:
    row = con.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return {b"1": 1, b"3": 3}.get(row[0] if row is not None else b"", 2)


def _schema_problems(con: sqlite3.Connection) -> list[str]:
    """What in the schema statemeter did not create (as the Rust verifier words it)."""
    version = _version(con)
    expected = EXPECTED_SCHEMA | (EXPECTED_SCHEMA_V1 if version == 1 else EXPECTED_SCHEMA_V2)
    found = [
        (_as_bytes(t).decode(), _as_bytes(n).decode(), _as_bytes(tb).decode(), sql)
        for t, n, tb, sql in con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type DESC, name"
        )
    ]
    problems = []
    for kind, name, table, sql in found:
        if kind == "table" and name in STATISTICS:
            continue
        definition = None if sql is None else _normalize_sql(_as_bytes(sql).decode())
        known = [e for e in expected if e[:2] == (kind, name)]
        if known and known[0][2:] == (table, definition):
            continue
        if known:
            problems.append(f'{kind} "{name}" was altered')
        elif kind == "table":
            problems.append(f'table "{name}" was added')
        else:
            problems.append(f'{kind} "{name}" on table "{table}" was added')
    tables = {n for k, n, _, _ in found if k == "table"}
    required = ("meta", "events") if version == 1 else ("meta", "events", "ids")
    problems += [f'table "{t}" is missing' for t in required if t not in tables]
    indexes = {n for k, n, _, _ in found if k == "index"}
    for kind, name, table, _ in sorted(expected, key=lambda e: e[1]):
        if kind == "index" and table in tables and name not in indexes:
            problems.append(f'index "{name}" of table "{table}" is missing')
    return problems


def _altered(problems: list[str]) -> str:
    return "altered: the ledger's schema is not the one statemeter creates: " + "; ".join(problems)


def _named_digest(obj: dict[str, Any] | None) -> bytes | None:
    """The catalogue digest a record's own classification names (`ruleset_digest`)."""
    if obj is None:
        return None
    classification = obj["classification"] if obj["v"] == 1 else obj["c"]
    if isinstance(classification, dict) and obj["v"] == 2:
        classification = classification["classification"]
    if not isinstance(classification, dict):
        return None
    digest = classification.get("ruleset_digest")
    return digest.encode() if isinstance(digest, str) else None


def _check(con: sqlite3.Connection, kept: tuple[int, bytes] | None) -> Result:
    schema = _schema_problems(con)
    if 'table "events" is missing' in schema:
        return Result(False, 1, _altered(schema), 0, f"0:{ZERO.hex()}")
    version = _version(con)
    pos, prev, prev2 = 0, ZERO, ZERO
    last_len = 32  # version 3: the last row must keep the whole hash
    failure: tuple[int, str] | None = None
    named: dict[bytes, list[int]] = {}  # digest -> [first seq naming it, how many]
    # Version 2: the records defining a context, with the catalogue digest each names and the
    # keys of the context's event.
    defined: dict[int, bytes | None] = {}
    context_keys: dict[int, set[str]] = {}
    bad_context: tuple[int, str] | None = None
    for seq, record, stored in con.execute("SELECT seq, record, hash FROM events ORDER BY seq"):
        pos += 1
        record, stored = _as_bytes(record), _as_bytes(stored)
        if seq != pos:
            copy = pos > 1 and _matches(stored, prev, version) and _link(prev2, record) == prev
            failure = _gap(pos, seq, copy)
            break
        computed = _link(prev, record)
        if not _matches(stored, computed, version) or embedded_seq(record) != pos:
            failure = _diagnose(con, version, pos, record, stored, computed, prev, prev2)
            break
        if version >= 3 and pos % HASH_STRIDE == 0 and len(stored) != 32:
            failure = (
                pos,
                f"edited: the row at seq {pos} keeps only a check of its chain hash, where the "
                f"format keeps the whole hash (every {HASH_STRIDE}th row)",
            )
            break
        if kept is not None and kept[0] == pos and kept[1] != computed:
            failure = (
                pos,
                f"swapped: the hash at seq {pos} differs from the kept head: this is "
                f"another ledger, or its history up to seq {pos} was rewritten",
            )
            break
        obj = parse_record(record)
        digest = _named_digest(obj)
        if obj is not None and obj["v"] == 2:
            keys: set[str] | None = None
            if isinstance(obj["c"], dict):
                defined[pos] = digest
                keys = context_keys[pos] = set(obj["c"]["event"])
            elif obj["c"] in defined and obj["c"] < pos:
                digest = defined[obj["c"]]
                keys = context_keys[obj["c"]]
            elif bad_context is None:
                bad_context = (
                    pos,
                    f"edited: the record at seq {pos} takes its context from seq {obj['c']}, "
                    "which is not an earlier record defining one",
                )
            shadowed = sorted(keys & obj["e"].keys()) if keys is not None else []
            if shadowed and bad_context is None:
                bad_context = (
                    pos,
                    f"edited: the record at seq {pos} holds the event key {shadowed[0]!r} twice, "
                    "in its e and in its context: the event it stands for is ambiguous",
                )
        if digest is not None:
            named.setdefault(digest, [pos, 0])[1] += 1
        prev2, prev = prev, computed
        last_len = len(stored)
    if failure is None and version >= 3 and pos > 0 and last_len != 32:
        failure = (
            pos + 1,
            f"truncated: the last row (seq {pos}) keeps only a check of its chain hash, and the "
            f"last row of every append keeps the whole hash: rows after seq {pos} were removed",
        )
    if failure is None:
        if schema:
            return Result(False, None, _altered(schema), pos, f"{pos}:{prev.hex()}")
        bad = bad_context or _bad_catalogue(con, named)
        if bad is not None:
            return Result(False, bad[0], bad[1], pos, f"{pos}:{prev.hex()}")
        if kept is None or kept[0] <= pos:
            return Result(True, None, None, pos, f"{pos}:{prev.hex()}")
        failure = (
            pos + 1,
            f"truncated: the ledger ends at seq {pos} but the kept head is at seq {kept[0]}",
        )
    events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    last = con.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    last_seq, last_hash = (0, ZERO) if last is None else (max(last[0], 0), _as_bytes(last[1]))
    head = f"{last_seq}:{(last_hash if len(last_hash) == 32 else ZERO).hex()}"
    return Result(False, failure[0], failure[1], events, head)


def _bad_catalogue(
    con: sqlite3.Connection, named: dict[bytes, list[int]]
) -> tuple[int | None, str] | None:
    """Records name their ruleset's evidence catalogue by the first 16 hex digits of its
    SHA-256: every stored catalogue must still match its digest, and every digest a record
    names must be stored."""
    has = con.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'rulesets'"
    ).fetchone()[0]
    stored = set()
    rows = con.execute("SELECT digest, name, catalogue FROM rulesets") if has else []
    for digest, name, text in rows:
        digest, name = _as_bytes(digest).decode(), _as_bytes(name).decode()
        if hashlib.sha256(_as_bytes(text)).hexdigest()[:16] != digest:
            return None, (
                f"edited: the stored catalogue of ruleset {name!r} does not match its digest"
            )
        stored.add(digest.encode())
    for digest, (first, count) in named.items():
        if digest not in stored:
            others = {1: ""}.get(count, " and 1 later event" if count == 2 else "")
            if count > 2:
                others = f" and {count - 1} later events"
            return first, (
                f'deleted: the ruleset catalogue "{digest.decode()}" named by seq {first}'
                f"{others} is not stored in the ledger (removed, or replaced by one with "
                "another digest): their evidence cannot be explained"
            )
    return None


def _gap(pos: int, seq: int, copy: bool) -> tuple[int, str]:
    """The row at position `pos` carries `seq`; `copy`: it is the previous row again."""
    if seq < 1:
        return 1, f"inserted: a row numbered seq {seq}, below 1, comes before seq 1"
    if seq < pos:
        if copy:
            return seq, f"duplicated: the record of seq {seq} appears again at row {pos}"
        return seq, f"inserted: row {pos} is a second row numbered seq {seq}, with another record"
    missing = f"seq {pos}" if seq == pos + 1 else f"seqs {pos} to {seq - 1}"
    return pos, f"deleted: {missing} missing (the ledger jumps from seq {pos - 1} to seq {seq})"


def _row(con: sqlite3.Connection, seq: int) -> tuple[bytes, bytes] | None:
    row = con.execute("SELECT record, hash FROM events WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else (_as_bytes(row[0]), _as_bytes(row[1]))


def _diagnose(
    con: sqlite3.Connection,
    version: int,
    a: int,
    record: bytes,
    stored: bytes,
    computed: bytes,
    prev: bytes,
    prev2: bytes,
) -> tuple[int, str]:
    """Classifies the first row `a` whose hash or embedded seq is wrong (as the Rust verifier)."""
    nxt = _row(con, a + 1)
    skippable = nxt is not None and _matches(nxt[1], _link(prev, nxt[0]), version)

    def does_not_belong(seq: int) -> tuple[int, str]:
        return seq, (
            f"inserted: the row at seq {seq} does not belong (the chain continues without it)"
        )

    e = embedded_seq(record)
    if e is not None and e < a:
        if a > 1 and _matches(stored, _link(prev2, record), version):
            return does_not_belong(a - 1)
        return a, f"inserted: the row at seq {a} repeats the record of seq {e}"
    if e is None or e == a:
        if skippable:
            return does_not_belong(a)
        if e is None:
            return a, f"edited: the record at seq {a} is not a canonical version-1 or 2 record"
        whole = len(stored) == 32
        if nxt is not None and whole and _matches(nxt[1], _link(stored, nxt[0]), version):
            return a, (
                f"edited: the record at seq {a} was changed (its stored hash no longer matches)"
            )
        if nxt is not None and _matches(nxt[1], _link(computed, nxt[0]), version):
            return a, (
                f"edited: the hash at seq {a} was changed (the record still links to the next one)"
            )
        return a, f"edited: the record or hash at seq {a} was changed"
    # e > a: is the record of seq a further on?
    suffixes = (f',"seq":{a},"v":1}}'.encode(), f',"s":{a},"v":2}}'.encode())
    later = con.execute("SELECT seq, record FROM events WHERE seq > ? ORDER BY seq", (a,))
    for later_seq, later_record in later:
        if _as_bytes(later_record).endswith(suffixes):
            return a, (
                f"reordered: the row at seq {a} holds the record of seq {e}; "
                f"the record of seq {a} is at seq {later_seq}"
            )
    if skippable:
        return does_not_belong(a)
    return a, (
        f"deleted: the record of seq {a} is missing (the row at seq {a} holds the record "
        f"of seq {e}: later rows were renumbered)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m statemeter.reverify", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("ledger", help="path to the ledger's SQLite file")
    parser.add_argument("--head", help="a head kept earlier, as SEQ:HEX")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        # Here, even under `python -m statemeter.reverify`, nothing has opened the ledger
        # through statemeter's SQLite: Python's sqlite3 may read it in this process.
        r = _check_here(args.ledger, parse_head(args.head))
    except (OSError, ValueError, sqlite3.Error) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(list(r)))
        return 0 if r.ok else 1
    if r.ok:
        print(f"OK: {r.events} events, head {r.head}")
        return 0
    print(f"BAD: first bad seq {r.first_bad_seq}: {r.problem} ({r.events} events, head {r.head})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
