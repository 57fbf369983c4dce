"""The Merkle tree's costs (`cargo bench --bench transparency`, release, no Python): what the
tree adds to appending (bounded by building it apart), building it for an existing ledger
against verify(), a checkpoint when the tree is current, and inclusion/consistency proofs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import statemeter as sm
from bench_ledger import _record_calls

HERE = Path(__file__).parent

DROP_NODES = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("DELETE FROM merkle_nodes")
con.commit()
con.close()
"""


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def _tree_share_of_recording(n: int) -> dict:
    """Sustained recording through a Meter (batch mode, flushed), then the tree's whole work
    done apart: its nodes deleted (in a process of its own) and built again by a writable
    open, less the time of the same open with the tree current."""
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "l.db")
        recorded = _record_calls(path, n)
        record_s, record_cpu = recorded["wall"], recorded["cpu"]
        subprocess.run([sys.executable, "-c", DROP_NODES, path], check=True)

        def open_once() -> None:
            with sm.Ledger.open(path):
                pass

        build_w, build_c = _timed(open_once)
        open_w, open_c = _timed(open_once)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tree_w, tree_c = build_w - open_w, build_c - open_c
    return {
        "recording_events_per_s": n / record_s,
        "recording_wall_s": record_s,
        "recording_cpu_s": record_cpu,
        "tree_apart_wall_s": tree_w,
        "tree_apart_cpu_s": tree_c,
        "tree_share_of_recording_at_most": tree_w / record_s,
        "tree_share_of_recording_at_most_cpu": tree_c / record_cpu,
    }


def _figures(text: str) -> dict:
    out: dict = {}
    for line in text.splitlines():
        label, _, rest = line.partition(":")
        words = rest.replace(",", "").split()
        if label == "events":
            out["events"] = int(words[0])
        elif len(words) >= 4 and words[1] in ("s", "ms", "us"):
            key = label.replace(" ", "_")
            out[f"{key}_wall_{words[1]}"] = float(words[0])
            out[f"{key}_cpu_{words[1]}"] = float(words[3])
    return out


def bench_transparency(quick: bool) -> dict:
    n = 200_000 if quick else 1_000_000
    proc = subprocess.run(
        ["cargo", "bench", "-q", "--bench", "transparency"],
        cwd=HERE.parent,
        env=dict(os.environ, N=str(n)),
        capture_output=True,
        text=True,
        timeout=7200,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    f = _figures(proc.stdout)
    f["recording"] = _tree_share_of_recording(n)
    append, build, verify = (
        f["append_with_tree_wall_s"],
        f["build_tree_wall_s"],
        f["verify_wall_s"],
    )
    return {
        **f,
        # Building the whole tree apart reads every record back, which the writer never does:
        # an upper bound of the share of appending that keeping the tree costs.
        "tree_share_of_append_at_most": build / append,
        "tree_share_of_append_at_most_cpu": f["build_tree_cpu_s"] / f["append_with_tree_cpu_s"],
        "build_over_verify": build / verify,
        "build_over_verify_cpu": f["build_tree_cpu_s"] / f["verify_cpu_s"],
        "targets": {
            "tree_share_of_recording_at_most": 0.10,
            "build_over_verify": 3.0,
            "checkpoint_wall_ms": 50.0,
            "inclusion_proof_wall_us": 1000.0,
        },
        "note": "append: Store::append in batches of 8192 (record, chain, tree, commit); build: "
        "the tree's nodes deleted and built again by a writable open; checkpoint: root, "
        "Ed25519 signature and the insert into the checkpoints table, tree current",
    }


BENCHES = {"transparency": bench_transparency}
