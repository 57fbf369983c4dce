"""Where a ledger's bytes go, for the simulated fleet of ``make demo``.

    python benches/run.py --only bytes      (or: python benches/bench_bytes.py)

Records the demo's workload (``simulate.fleet(days=30, agents=12, seed=0, start="2026-04-13")``)
into a fresh ledger, then, in a process of its own (Python's ``sqlite3``, never in a process that
has the ledger open through statemeter), measures:

- the file per event, and per table and index (SQLite's ``dbstat``: pages, cells, payload);
- the record per event, split into its parts: the classification object, each key of the event
  object (key name and value), the UUID text (ids, session ids, parent ids), the wrapper;
- the same rows stored the way the format before version 2 stored them (``id`` as text with a
  ``UNIQUE`` index, the classification inline), built from the ledger's expanded records, so the
  two layouts are compared over identical events in one run; and ``sqlite3.executemany`` of
  those rows into a plain table as the floor.

Figures go to ``benches/results/bytes.json`` and docs/performance.md (benches/summarise.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).parent

RECORD = """
import sys, time
import statemeter as sm
from statemeter import simulate
t = time.perf_counter()
fleet = simulate.fleet(days=30, agents=12, seed=0, path=sys.argv[1], start="2026-04-13",
                       sessions_per_agent_day=float(sys.argv[2]))
fleet.meter.close()
led = sm.Ledger.open(sys.argv[1])
print(len(led), time.perf_counter() - t)
"""


def canonical(value: object) -> str:
    """RFC 8785 text for the values a demo record holds (ASCII keys, integers, short strings)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def dbstat(path: Path) -> dict[str, dict[str, int]]:
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    out: dict[str, dict[str, int]] = {}
    for name, pages, bytes_, cells, payload, unused in con.execute(
        "SELECT name, count(*), sum(pgsize), sum(ncell), sum(payload), sum(unused) "
        "FROM dbstat GROUP BY name ORDER BY sum(pgsize) DESC"
    ):
        out[name] = {
            "pages": pages,
            "bytes": bytes_,
            "cells": cells,
            "payload": payload,
            "unused": unused,
        }
    con.close()
    return out


def segment_sections(path: Path) -> list[tuple[str, int, int]]:
    """The sections of a column store segment as (name, bytes before compression, bytes of its
    zstd frame), from its directory (docs/ledger-format.md, "The column store")."""
    data = path.read_bytes()
    if data[:8] != b"SMCOLS\0\x02":
        return []
    body, at, out = data[88:], 1, []
    for _ in range(body[0]):
        n = body[at]
        name = body[at + 1 : at + 1 + n].decode()
        raw, packed = struct.unpack("<II", body[at + 1 + n : at + 9 + n])
        out.append((name, raw, packed))
        at += 9 + n
    return out


def cells(path: Path, names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """For each table or index in `names`: its leaf cells' payload (the row's bytes: key,
    columns and SQLite's record header), the rest of its leaf pages (cell pointers, cell
    headers, page headers) and unused bytes, and its interior pages, from SQLite's ``dbstat``."""
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    out = {}
    for name in names:
        q = (
            "SELECT pagetype, count(*), sum(pgsize), sum(payload), sum(unused) FROM dbstat "
            "WHERE name = ? GROUP BY pagetype"
        )
        d = {"leaf_payload": 0, "leaf_overhead": 0, "leaf_unused": 0, "interior": 0}
        for kind, _, size, payload, unused in con.execute(q, (name,)):
            if kind == "leaf":
                d["leaf_payload"] += payload
                d["leaf_unused"] += unused
                d["leaf_overhead"] += size - payload - unused
            else:
                d["interior"] += size
        out[name] = d
    con.close()
    return out


def expanded_records(path: Path) -> list[tuple[int, str]]:
    """Every row as (seq, version-1 record text): version-1 records as stored, version-2
    records expanded with their context as docs/ledger-format.md describes."""
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    contexts: dict[int, dict] = {}
    out = []
    for seq, text in con.execute("SELECT seq, record FROM events ORDER BY seq"):
        rec = json.loads(text)
        if rec.get("v") == 2:
            if isinstance(rec["c"], dict):
                contexts[seq] = rec["c"]
            context = contexts[rec["c"]] if isinstance(rec["c"], int) else rec["c"]
            rec = {
                "classification": context["classification"],
                "event": {**rec["e"], **context["event"]},
                "seq": rec["s"],
                "v": 1,
            }
            text = canonical(rec)
        out.append((seq, text))
    con.close()
    return out


def record_parts(records: list[str]) -> dict[str, object]:
    """Bytes per event of each part of the version-1 record text."""
    n = len(records)
    event_keys: Counter[str] = Counter()
    event_key_names = 0
    classification = 0
    uuid_text = 0
    total = 0
    distinct_classifications: set[str] = set()
    for text in records:
        total += len(text.encode())
        rec = json.loads(text)
        cl = canonical(rec["classification"])
        distinct_classifications.add(cl)
        classification += len('"classification":') + len(cl) + 1
        for key, value in rec["event"].items():
            part = len(json.dumps(key)) + 1 + len(canonical(value).encode()) + 1
            event_keys[key] += part
            event_key_names += len(json.dumps(key)) + 1
            if key in ("id", "session_id", "parent_id") and isinstance(value, str):
                uuid_text += len(value) + 2
    event_total = sum(event_keys.values())
    return {
        "record_bytes_per_event": total / n,
        "classification_bytes_per_event": classification / n,
        "distinct_classifications": len(distinct_classifications),
        "event_bytes_per_event": event_total / n,
        "event_key_names_bytes_per_event": event_key_names / n,
        "uuid_text_bytes_per_event": uuid_text / n,
        "wrapper_bytes_per_event": (total - classification - event_total) / n,
        "event_keys_bytes_per_event": {
            k: round(v / n, 1) for k, v in sorted(event_keys.items(), key=lambda kv: -kv[1])
        },
    }


def build_v1_layout(path: Path, rows: list[tuple[int, str, bytes]], ids: list[str]) -> Path:
    """The same rows in the layout before version 2: id text UNIQUE, record inline."""
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("PRAGMA page_size = 16384")
    con.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
        "record TEXT NOT NULL, hash BLOB NOT NULL);"
    )
    con.executemany(
        "INSERT INTO events VALUES (?, ?, ?, ?)",
        [(seq, i, text, h) for (seq, text, h), i in zip(rows, ids, strict=True)],
    )
    con.commit()
    con.close()
    return path


def file_bytes(path: Path) -> int:
    return sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))


def per_object(stat: dict[str, dict[str, int]], n: int) -> dict[str, float]:
    return {name: round(s["bytes"] / n, 1) for name, s in stat.items()}


def bytes_bench(quick: bool) -> dict:
    """The demo's workload (48 sessions per agent-day; 8 with ``quick``)."""
    sessions = 8.0 if quick else 48.0
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "fleet.db"
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                RECORD,
                str(ledger),
                str(sessions),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        events, record_s = int(out[0]), float(out[1])
        # Checkpoint the WAL into the file so the file size is the ledger's size.
        import sqlite3

        con = sqlite3.connect(ledger)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        version = dict(con.execute("SELECT key, value FROM meta"))["version"]
        stored = con.execute("SELECT seq, record, hash FROM events ORDER BY seq").fetchall()
        con.close()
        stat = dbstat(ledger)
        size = file_bytes(ledger)
        # The column store beside the ledger (docs/ledger-format.md, "The column store").
        columns = ledger.with_name(ledger.name + ".columns")
        segments = sorted(columns.glob("*.seg")) if columns.is_dir() else []
        columns_size = sum(p.stat().st_size for p in segments)
        by_section: dict[str, list[int]] = {}
        for seg in segments:
            for name, raw, packed in segment_sections(seg):
                sizes = by_section.setdefault(name, [0, 0])
                sizes[0] += raw
                sizes[1] += packed
        row_cells = cells(ledger, ("events", "ids"))
        expanded = expanded_records(ledger)
        texts = [text for _, text in expanded]
        ids = [json.loads(text)["event"]["id"] for text in texts]
        # The chain hash of every row (version 3 keeps most of them as a 4-byte check only).
        hashes, prev = {}, bytes(32)
        for seq, r, _ in stored:
            prev = hashes[seq] = hashlib.sha256(
                prev + (r if isinstance(r, bytes) else r.encode())
            ).digest()
        stored_hash = sum(len(h) for _, _, h in stored)
        whole_hashes = sum(1 for _, _, h in stored if len(h) == 32)
        assert len(expanded) == events
        v1 = build_v1_layout(
            Path(tmp) / "v1.db", [(seq, text, hashes[seq]) for seq, text in expanded], ids
        )
        v1_stat = dbstat(v1)
        v1_size = file_bytes(v1)
        stored_record = sum(len(r if isinstance(r, bytes) else r.encode()) for _, r, _ in stored)
        by_kind: dict[str, list[int]] = defaultdict(list)
        for (_, r, _), text in zip(stored, texts, strict=True):
            by_kind[json.loads(text)["event"]["kind"]].append(
                len(r if isinstance(r, bytes) else r.encode())
            )
    result = {
        "workload": {
            "simulate.fleet": {
                "days": 30,
                "agents": 12,
                "seed": 0,
                "start": "2026-04-13",
                "sessions_per_agent_day": sessions,
            },
            "events": events,
            "record_seconds": round(record_s, 2),
        },
        "format_version": version,
        "ledger": {
            "file_bytes": size,
            "bytes_per_event": round(size / events, 1),
            "stored_record_bytes_per_event": round(stored_record / events, 1),
            "stored_hash_bytes_per_event": round(stored_hash / events, 2),
            "whole_hash_rows": whole_hashes,
            "context_definitions": sum(
                1
                for _, r, _ in stored
                if (r if isinstance(r, bytes) else r.encode()).startswith(b'{"c":{')
            ),
            "stored_record_bytes_per_event_by_kind": {
                k: round(sum(v) / len(v), 1) for k, v in sorted(by_kind.items())
            },
            "objects_bytes_per_event": per_object(stat, events),
            "cells_bytes_per_event": {
                name: {k: round(v / events, 1) for k, v in d.items()}
                for name, d in row_cells.items()
            },
        },
        "column_store": {
            "segments": len(segments),
            "bytes": columns_size,
            "bytes_per_event": round(columns_size / events, 1),
            # Per section: its zstd frame, per event of the ledger (the tail after the last
            # whole segment has none), and its size before compression.
            "sections_bytes_per_event": {
                name: round(packed / events, 2)
                for name, (_, packed) in sorted(by_section.items(), key=lambda kv: -kv[1][1])
            },
            "sections_raw_bytes_per_event": {
                name: round(raw / events, 2) for name, (raw, _) in by_section.items()
            },
        },
        "with_column_store_bytes_per_event": round((size + columns_size) / events, 1),
        "v1_layout": {
            "file_bytes": v1_size,
            "bytes_per_event": round(v1_size / events, 1),
            "objects_bytes_per_event": per_object(v1_stat, events),
            "record": record_parts(texts),
        },
        "target_bytes_per_event": 300,
        "elapsed_s": round(time.perf_counter() - t, 1),
    }
    return result


BENCHES = {"bytes": bytes_bench}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bytes.json")
    args = ap.parse_args()
    result = bytes_bench(args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
