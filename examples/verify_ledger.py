#!/usr/bin/env python3
"""Read and verify a statemeter ledger (format version 1, 2 or 3) with hashlib, json and sqlite3.

    python examples/verify_ledger.py LEDGER [--head SEQ:HEX] [--events]

Written from docs/ledger-format.md alone, as an outsider would: it imports nothing of
statemeter. It checks the chain (seqs 1, 2, 3, ...; each hash SHA-256(previous || record),
kept whole or, in version 3, as its first 4 bytes between whole ones; the seq each record
embeds), that every record is canonical JSON of the layout of its
version, that each version-2 context is defined by an earlier record and shares no event key
with the record's ``e``, the ruleset catalogues the records name, the Merkle tree's stored
nodes against the records, and a kept head if given. It prints the root of the Merkle tree
(what a checkpoint of the whole ledger signs) and, with ``--events``, each event with its
classification as one JSON line. Exit 0 when the ledger verifies, 1 with the first problem.
Run it in a process where statemeter does not have the ledger open (docs/ledger-format.md,
the warning at the top).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
from typing import Any


def canonical(v: object) -> str:
    """RFC 8785 text with exact integers (docs/ledger-format.md, "Canonical JSON")."""
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):  # ECMAScript Number.prototype.toString
        mantissa, _, exp = repr(abs(v)).partition("e")  # shortest digits that round-trip
        whole, _, frac = mantissa.partition(".")
        digits = (whole + frac).lstrip("0")
        n = len(whole) + int(exp or 0) - (len(whole + frac) - len(digits))
        digits, sign = digits.rstrip("0"), "-" if v < 0 else ""
        k = len(digits)  # the value is 0.DIGITS times 10 to the n
        if not digits:
            return "0"
        if k <= n <= 21:
            return sign + digits + "0" * (n - k)
        if 0 < n <= 21:
            return f"{sign}{digits[:n]}.{digits[n:]}"
        if -6 < n <= 0:
            return f"{sign}0.{'0' * -n}{digits}"
        rest = "." + digits[1:] if k > 1 else ""
        return f"{sign}{digits[0]}{rest}e{'+' if n > 0 else '-'}{abs(n - 1)}"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(map(canonical, v)) + "]"
    assert isinstance(v, dict)
    keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(f"{canonical(k)}:{canonical(v[k])}" for k in keys) + "}"


def no_repeats(pairs: list[tuple[str, object]]) -> dict[str, object]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("an object holds a key twice")
    return dict(pairs)


LEAF, NODE = b"\x00", b"\x01"


def verify(path: str, head: str | None = None, events: bool = False) -> str:
    """'OK ...' when the ledger verifies, else raises ValueError naming the first problem."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.text_factory = bytes  # hash the stored bytes exactly
    meta = dict(con.execute("SELECT key, value FROM meta"))
    version = meta.get(b"version")
    if meta.get(b"format") != b"statemeter-ledger" or version not in (b"1", b"2", b"3"):
        raise ValueError("not a statemeter ledger of version 1, 2 or 3")
    kept = None if head is None else (int(head.split(":")[0]), bytes.fromhex(head.split(":")[1]))
    prev, n = bytes(32), 0
    contexts: dict[int, dict[str, Any]] = {}  # version 2: seq -> the context it defines
    named: dict[str, int] = {}  # ruleset_digest -> first seq naming it
    stack: list[tuple[int, bytes]] = []  # the Merkle tree's right edge: (level, hash)
    subtrees: dict[tuple[int, int], bytes] = {}  # complete subtrees of 16 leaves or more
    for seq, record, stored in con.execute("SELECT seq, record, hash FROM events ORDER BY seq"):
        n += 1
        if seq != n:
            raise ValueError(f"seq {n}: missing (the next row is seq {seq})")
        prev = hashlib.sha256(prev + record).digest()
        # Version 3 keeps the whole hash on every 64th row and the last row of every append,
        # its first 4 bytes on the others.
        whole = version != b"3" or n % 64 == 0
        if stored != prev and (whole or stored != prev[:4]):
            raise ValueError(f"seq {n}: the hash does not re-derive (edited)")
        if kept and kept[0] == n and kept[1] != prev:
            raise ValueError(f"seq {n}: not the kept head's hash (swapped)")
        try:
            r = json.loads(record, object_pairs_hook=no_repeats)
        except ValueError as e:
            raise ValueError(f"seq {n}: the record is not JSON ({e})") from None
        if canonical(r).encode() != record:
            raise ValueError(f"seq {n}: the record is not canonical JSON")
        if version == b"1":
            if sorted(r) != ["classification", "event", "seq", "v"] or (r["seq"], r["v"]) != (n, 1):
                raise ValueError(f"seq {n}: not a version-1 record at seq {n}")
            event, classification = r["event"], r["classification"]
            if not isinstance(event, dict) or not isinstance(classification, dict):
                raise ValueError(f"seq {n}: its event or classification is not an object")
        else:
            if sorted(r) != ["c", "e", "s", "v"] or (r["s"], r["v"]) != (n, 2):
                raise ValueError(f"seq {n}: not a version-2 record at seq {n}")
            c = r["c"]
            if isinstance(c, dict):
                if sorted(c) != ["classification", "event"] or not all(
                    isinstance(x, dict) for x in c.values()
                ):
                    raise ValueError(f"seq {n}: its context is not {{classification, event}}")
                contexts[n] = c
            elif type(c) is not int or c not in contexts:  # an earlier definition
                raise ValueError(f"seq {n}: its context seq {c} is no earlier definition")
            ctx = contexts[n] if isinstance(c, dict) else contexts[c]
            if not isinstance(r["e"], dict):
                raise ValueError(f"seq {n}: its e is not an object")
            shadowed = r["e"].keys() & ctx["event"].keys()
            if shadowed:
                raise ValueError(f"seq {n}: e and its context both hold {sorted(shadowed)}")
            event, classification = {**r["e"], **ctx["event"]}, ctx["classification"]
        if "ruleset_digest" in classification:
            named.setdefault(classification["ruleset_digest"], n)
        if events:
            print(json.dumps({"seq": n, "event": event, "classification": classification}))
        # The Merkle tree (RFC 9162): fold the leaf in, keep the subtrees of 16 leaves or more.
        level, h = 0, hashlib.sha256(LEAF + record).digest()
        while stack and stack[-1][0] == level:
            h, level = hashlib.sha256(NODE + stack.pop()[1] + h).digest(), level + 1
            if level >= 4:
                subtrees[(level, (n >> level) - 1)] = h
        stack.append((level, h))
    if n and len(stored) != 32:  # the last row keeps the whole hash (version 3: the head)
        raise ValueError(f"seq {n + 1}: the last row keeps no whole hash (truncated)")
    if kept and kept[0] > n:
        raise ValueError(f"seq {n + 1}: the ledger ends before the kept head (truncated)")
    tables = {t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if b"merkle_nodes" in tables:  # a ledger written before the tree has none yet
        nodes = {(lv, ix): h for lv, ix, h in con.execute("SELECT * FROM merkle_nodes")}
        for key in sorted(subtrees.keys() | nodes.keys(), key=lambda k: ((k[1] + 1) << k[0], k)):
            if nodes.get(key) != subtrees.get(key):
                raise ValueError(f"Merkle tree node (level, index) {key} is not the records'")
    stored = {}
    rulesets = (
        con.execute("SELECT digest, catalogue FROM rulesets") if b"rulesets" in tables else []
    )
    for digest, catalogue in rulesets:
        if hashlib.sha256(catalogue).hexdigest()[:16].encode() != digest:
            raise ValueError(f"the catalogue {digest.decode()} does not match its digest")
        stored[digest.decode()] = catalogue
    for digest, first in named.items():
        if digest not in stored:
            raise ValueError(f"seq {first}: its ruleset catalogue {digest} is not stored")
    root = stack.pop()[1] if stack else hashlib.sha256(b"").digest()
    while stack:
        root = hashlib.sha256(NODE + stack.pop()[1] + root).digest()
    return f"OK: {n} events, head {n}:{prev.hex()}, tree root {root.hex()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("ledger")
    ap.add_argument("--head", help="a head kept earlier, SEQ:HEX")
    ap.add_argument("--events", action="store_true", help="print each event as a JSON line")
    args = ap.parse_args(argv)
    try:
        print(verify(args.ledger, args.head, args.events))
    except ValueError as e:
        print(f"FAIL {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
