"""The ledger under load: durable ingest, verification and memory, each against a named peer
in the same run.

- ``ingest``: N model calls recorded through `Session.model_call` into a file ledger and
  flushed, against Python's `sqlite3` `executemany` of the very rows statemeter wrote (same
  seq, record, hash and id key bytes, same schema and pragmas, the same 8192 rows per transaction):
  the floor for getting those bytes into SQLite. A second peer does the record work in Python
  (canonical JSON with `json.dumps`, the SHA-256 chain with `hashlib`, then `executemany`),
  without classification. ``sync``: per-event commits (`durability="sync"`, synchronous=FULL)
  against `sqlite3` committing each row with synchronous=FULL. ``rust``: the core without
  Python (`cargo bench --bench ingest`): the store's append alone (record text, chain, SQLite
  insert and commit of pre-encoded events: the floor of the writer) and the recorder end to
  end.
- ``verify``: `Ledger.verify()` over that ledger in events/s and MB/s of record bytes (wall and
  CPU time), against
  `sha256sum` over the same record bytes concatenated in one file (the floor: one hash stream,
  no per-event finalization, no SQLite), Python's `hashlib` chaining the same records, and the
  stdlib-only reference verifier `statemeter.reverify` (which also checks canonical form).
- ``memory``: resident memory while recording 10,000,000 events to a file ledger in a fresh
  process (target: growth < 100 MiB; the queue is bounded, so memory must not grow with N), and
  bytes per event after `Ledger.open` + loading the events (`ledger.events()`) and after the
  columnar load a report does.

    python benches/run.py --only ingest,verify,memory
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import statemeter as sm
from common import WRITER_THREADS, threads_cpu_ns_per_event, writer_threads_cpu_s

HERE = Path(__file__).parent
#: The ledger's own layout (format version 2): the chain's rows and the 16-byte id index.
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE events (seq INTEGER PRIMARY KEY, record TEXT NOT NULL, hash BLOB NOT NULL);
CREATE TABLE ids (key BLOB PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
"""


def _insert(con: sqlite3.Connection, rows: list[tuple]) -> None:
    """Rows (seq, id key, record, hash) into both tables, as statemeter stores them."""
    con.executemany("INSERT INTO events VALUES (?, ?, ?)", [(r[0], r[2], r[3]) for r in rows])
    con.executemany("INSERT INTO ids VALUES (?, ?)", [(r[1], r[0]) for r in rows])


GROUP = 8192
CLASSIFICATION = {
    "consumes_state": False,
    "creates_state": False,
    "evidence": [{"rule": "openai-chat-completions", "signal": "api", "tag": "stateless"}],
    "ruleset": "default",
    "ruleset_digest": "0000000000000000",
    "session_stateful": False,
    "state_holder": None,
    "tag": "stateless",
}


def _record_calls(path: str, n: int, durability: str = "batch") -> dict:
    """Records n model calls (four shapes) through the public API and flushes (the Merkle tree
    is maintained by every append); returns wall and CPU seconds (the whole process: the
    caller's thread and the writer threads) and the RSS growth (sampled every 100,000
    events, and after the flush)."""
    meter = sm.Meter(path, durability=durability)
    s = meter.session("bench", tenant="acme", venue="azure")
    model_call = s.model_call
    gc.collect()
    rss0 = peak = _rss_mib()
    w0 = writer_threads_cpu_s()
    tc0 = time.thread_time()
    c0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(n):
        if i % 4 == 3:
            model_call(
                provider="openai",
                model="gpt-5",
                api="responses",
                request={"previous_response_id": f"resp_{i - 1}"},
                input_tokens=i,
                output_tokens=42,
            )
        else:
            model_call(
                provider="openai",
                model="gpt-5",
                api="chat.completions",
                input_tokens=i,
                output_tokens=42,
                cached_tokens=i // 2,
            )
        if i % 100_000 == 0:
            peak = max(peak, _rss_mib())
    caller = time.thread_time() - tc0
    meter.flush()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    threads = threads_cpu_ns_per_event(caller, w0, writer_threads_cpu_s(), n)
    peak = max(peak, _rss_mib())
    meter.close()
    return {"wall": elapsed, "cpu": cpu, "rss_growth_mib": peak - rss0, "threads": threads}


def _rows(path: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT e.seq, i.key, e.record, e.hash FROM events e JOIN ids i ON i.seq = e.seq "
            "ORDER BY e.seq"
        ).fetchall()
    finally:
        con.close()


def _peer_db(path: str, synchronous: str) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size = 16384")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute(f"PRAGMA synchronous = {synchronous}")
    con.executescript(SCHEMA)
    return con


def _executemany(path: str, rows: list[tuple]) -> dict:
    con = _peer_db(path, "NORMAL")
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    for k in range(0, len(rows), GROUP):
        con.execute("BEGIN IMMEDIATE")
        _insert(con, rows[k : k + GROUP])
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    con.close()
    return {"wall": elapsed, "cpu": cpu}


def _python_chain(path: str, n: int) -> dict:
    """The record work done in Python: event dicts, canonical JSON, SHA-256 chain, insert."""
    con = _peer_db(path, "NORMAL")
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    prev = bytes(32)
    dumps, sha = json.dumps, hashlib.sha256
    batch: list[tuple] = []
    for i in range(n):
        ev = {
            "agent": "bench",
            "api": "chat.completions",
            "cached_tokens": i // 2,
            "id": f"evt-{i}",
            "input_tokens": i,
            "kind": "model_call",
            "model": "gpt-5",
            "output_tokens": 42,
            "provider": "openai",
            "session_id": "s",
            "status": "ok",
            "tenant": "acme",
            "ts": 1_767_225_600_000_000_000 + i,
            "venue": "azure",
        }
        record = dumps(
            {"classification": CLASSIFICATION, "event": ev, "seq": i + 1, "v": 1},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        prev = sha(prev + record.encode()).digest()
        batch.append((i + 1, sha(ev["id"].encode()).digest()[:16], record, prev))
        if len(batch) == GROUP:
            con.execute("BEGIN IMMEDIATE")
            _insert(con, batch)
            con.execute("COMMIT")
            batch.clear()
    if batch:
        con.execute("BEGIN IMMEDIATE")
        _insert(con, batch)
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    con.close()
    return {"wall": elapsed, "cpu": cpu}


def _sync_peer(path: str, rows: list[tuple]) -> float:
    con = _peer_db(path, "FULL")
    t0 = time.perf_counter()
    for row in rows:
        con.execute("BEGIN IMMEDIATE")
        _insert(con, [row])
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def _cargo_ingest(n: int) -> dict:
    """`cargo bench --bench ingest` (release, no Python): ns/event per phase."""
    env = dict(os.environ, N=str(n))
    proc = subprocess.run(
        ["cargo", "bench", "-q", "--bench", "ingest"],
        cwd=HERE.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    out: dict = {}
    for line in proc.stdout.splitlines():
        label, _, rest = line.partition(":")
        words = rest.split()
        if "ns/event" in rest and label.startswith("store append"):
            out["store_append_events_per_s"] = 1e9 / float(words[0])
            if "CPU" in rest:
                out["store_append_cpu_ns"] = float(words[2].lstrip("("))
        elif label.startswith("end to end, thread"):
            role = WRITER_THREADS.get(label.split()[-1], label.split()[-1])
            out.setdefault("end_to_end_threads_cpu_ns", {})[role] = float(words[0])
        elif label.startswith("end to end"):
            out["end_to_end_events_per_s"] = float(words[0])
            if "CPU" in rest:
                out["end_to_end_cpu_ns"] = float(words[4])
        elif label == "classify":
            out["classify_ns"] = float(words[0])
        elif label.startswith("encode"):
            out["encode_ns"] = float(words[0])
    return out


def bench_ingest(quick: bool) -> dict:
    n = 200_000 if quick else 1_000_000
    n_sync = 500 if quick else 2_000
    tmp = tempfile.mkdtemp()
    try:
        ours_path = os.path.join(tmp, "statemeter.db")
        ours = _record_calls(ours_path, n)
        rows = _rows(ours_path)
        assert len(rows) == n
        record_mb = sum(len(r[2].encode()) for r in rows) / 1e6
        file_bytes = sum(
            os.path.getsize(ours_path + side)
            for side in ("", "-wal")
            if os.path.exists(ours_path + side)
        )
        floor = _executemany(os.path.join(tmp, "executemany.db"), rows)
        del rows
        python = _python_chain(os.path.join(tmp, "python.db"), n)
        sync_path = os.path.join(tmp, "sync.db")
        ours_sync = _record_calls(sync_path, n_sync, "sync")["wall"]
        sync_floor = _sync_peer(os.path.join(tmp, "sync_peer.db"), _rows(sync_path))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rust = _cargo_ingest(n)
    peers = {
        "statemeter": ours,
        "sqlite3_executemany": floor,
        "python_json_hashlib_executemany": python,
    }
    return {
        "events": n,
        "record_mb": record_mb,
        "ledger_bytes_per_event": file_bytes / n,
        "seconds": {k: v["wall"] for k, v in peers.items()},
        "cpu_seconds": {k: v["cpu"] for k, v in peers.items()},
        "events_per_s": {k: n / v["wall"] for k, v in peers.items()},
        "events_per_cpu_s": {k: n / v["cpu"] for k, v in peers.items()},
        "cpu_ns_per_event": {k: v["cpu"] / n * 1e9 for k, v in peers.items()},
        "rss_growth_mib": ours["rss_growth_mib"],
        "threads_cpu_ns_per_event": ours["threads"],
        "statemeter_over_executemany": ours["wall"] / floor["wall"],
        "statemeter_over_executemany_cpu": ours["cpu"] / floor["cpu"],
        "python_over_statemeter": python["wall"] / ours["wall"],
        "sync": {
            "events": n_sync,
            "statemeter_events_per_s": n_sync / ours_sync,
            "sqlite3_commit_per_row_events_per_s": n_sync / sync_floor,
            "statemeter_over_sqlite3": ours_sync / sync_floor,
        },
        "rust": rust,
        "targets": {"events_per_s.statemeter": ">= 300000"},
        "note": "statemeter's time runs from the first record call to the end of flush() "
        "(classify, canonical JSON, SHA-256 chain, Merkle tree and commit on its writer "
        "threads); CPU is the whole process's (caller and writer threads); executemany "
        "inserts the rows statemeter produced, pre-built in memory",
    }


def _tool_s(*argv: str) -> float | None:
    """Best of three runs of a hashing tool over a file (page cache warm), or None."""
    exe = shutil.which(argv[0])
    if exe is None:
        return None
    subprocess.run([exe, *argv[1:]], check=True, capture_output=True)  # warm the page cache
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([exe, *argv[1:]], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def bench_verify(quick: bool) -> dict:
    n = 200_000 if quick else 1_000_000
    n_reference = 20_000 if quick else 100_000  # the reference script is ~100x slower
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "verify.db")
        _record_calls(path, n)
        rows = _rows(path)
        records = [r[2].encode() for r in rows]
        mb = sum(map(len, records)) / 1e6
        concat = os.path.join(tmp, "records.bin")
        with open(concat, "wb") as f:
            for r in records:
                f.write(r)
        del rows
        ledger = sm.Ledger.open(path)
        ledger.verify()  # warm the page cache like the peers
        best = best_cpu = float("inf")
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            v = ledger.verify()
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        assert v.ok and v.events == n

        def chain() -> bytes:
            prev = bytes(32)
            sha = hashlib.sha256
            for r in records:
                prev = sha(prev + r).digest()
            return prev

        t0 = time.perf_counter()
        head = chain()
        hashlib_s = time.perf_counter() - t0
        assert head.hex() == v.head.hash
        blob = b"".join(records)
        t0 = time.perf_counter()
        hashlib.sha256(blob).digest()
        stream_s = time.perf_counter() - t0
        del blob
        sha256sum_s = _tool_s("sha256sum", concat)
        openssl_s = _tool_s("openssl", "dgst", "-sha256", concat)
        from statemeter.reverify import check

        small = os.path.join(tmp, "reference.db")
        _record_calls(small, n_reference)
        t0 = time.perf_counter()
        assert check(small).ok
        reference_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {
        "events": n,
        "record_mb": mb,
        "statemeter_s": best,
        "statemeter_cpu_s": best_cpu,
        "statemeter_events_per_s": n / best,
        "statemeter_mb_per_s": mb / best,
        "python_hashlib_chain_s": hashlib_s,
        "python_hashlib_chain_events_per_s": n / hashlib_s,
        "python_hashlib_stream_mb_per_s": mb / stream_s,
        "reference_script_events": n_reference,
        "reference_script_s": reference_s,
        "reference_script_events_per_s": n_reference / reference_s,
        "note": "statemeter reads every row from SQLite and re-derives every link, the "
        "Merkle tree's stored nodes (a leaf and an interior hash per record) and checks every "
        "version-2 record's keys against its context; sha256sum "
        "(and openssl dgst) hash the same bytes as one stream from the page cache, with "
        "no per-event finalization and no SQLite; the Python hashlib chain hashes the "
        "records already in memory; the reference script also re-encodes every record "
        "to check canonical form (run on a smaller ledger)",
    }
    for name, s in (("sha256sum", sha256sum_s), ("openssl_dgst", openssl_s)):
        if s is not None:
            out.update(
                {f"{name}_s": s, f"{name}_mb_per_s": mb / s, f"statemeter_over_{name}": best / s}
            )
    return out


def bench_memory(quick: bool) -> dict:
    n = 1_000_000 if quick else 10_000_000
    n_load = 200_000 if quick else 1_000_000
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "memory.db")
        rec = _child("record", path, n)
        size = os.path.getsize(path)
        os.remove(path)
        for side in ("-wal", "-shm"):
            Path(path + side).unlink(missing_ok=True)
        load_path = os.path.join(tmp, "load.db")
        _record_calls(load_path, n_load)
        load = {
            **_child("load-events", load_path, n_load),
            **_child("load-columns", load_path, n_load),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "events": n,
        "record_seconds": rec["seconds"],
        "record_events_per_s": n / rec["seconds"],
        "rss_baseline_mib": rec["rss0"],
        "rss_peak_mib": rec["peak"],
        "rss_growth_mib": rec["peak"] - rec["rss0"],
        "rss_growth_first_tenth_mib": rec["peak_first_tenth"] - rec["rss0"],
        "ledger_bytes_per_event": size / n,
        "load_events": n_load,
        "events_load_s": load["events_s"],
        "events_bytes_per_event": load["events_bytes"] / n_load,
        "columns_load_s": load["columns_s"],
        "columns_bytes_per_event": load["columns_bytes"] / n_load,
        "targets": {"rss_growth_mib": "< 100"},
        "note": "fresh child processes; RSS from /proc/self/status sampled every 100,000 "
        "events; growth = peak - RSS after opening the meter. Load: RSS after "
        "Ledger.open + events() (every event as a Python-visible row) and after the "
        "first report (the cached columns), minus RSS before, per event",
    }


def _child(what: str, path: str, n: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, what, path, str(n)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _record_child(path: str, n: int) -> dict:
    meter = sm.Meter(path)
    s = meter.session("bench", tenant="acme", venue="azure")
    model_call = s.model_call
    gc.collect()
    rss0 = peak = _rss_mib()
    peak_first_tenth = rss0
    t0 = time.perf_counter()
    for i in range(n):
        model_call(
            provider="openai",
            model="gpt-5",
            api="chat.completions",
            input_tokens=i,
            output_tokens=42,
        )
        if i % 100_000 == 0:
            peak = max(peak, _rss_mib())
            if i <= n // 10:
                peak_first_tenth = peak
    meter.flush()
    seconds = time.perf_counter() - t0
    peak = max(peak, _rss_mib())
    meter.close()
    return {"seconds": seconds, "rss0": rss0, "peak": peak, "peak_first_tenth": peak_first_tenth}


def _load_events_child(path: str, n: int) -> dict:
    """RSS after Ledger.open + events() (each kind of load in its own fresh process)."""
    gc.collect()
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    ledger = sm.Ledger.open(path)
    events = ledger.events()
    seconds = time.perf_counter() - t0
    assert len(events) == n
    gc.collect()
    return {"events_s": seconds, "events_bytes": (_rss_mib() - rss0) * 1024 * 1024}


def _load_columns_child(path: str, n: int) -> dict:
    """RSS after Ledger.open + the first report (which caches the columns)."""
    contract = sm.Contract.load(HERE.parent / "examples" / "contracts" / "model-access-2025.toml")
    gc.collect()
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    ledger = sm.Ledger.open(path)
    ledger.report(contract)
    seconds = time.perf_counter() - t0
    assert len(ledger) == n
    gc.collect()
    return {"columns_s": seconds, "columns_bytes": (_rss_mib() - rss0) * 1024 * 1024}


BENCHES = {"ingest": bench_ingest, "verify": bench_verify, "memory": bench_memory}

if __name__ == "__main__":
    what, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    child = {
        "record": _record_child,
        "load-events": _load_events_child,
        "load-columns": _load_columns_child,
    }[what]
    print(json.dumps(child(path, n)))
