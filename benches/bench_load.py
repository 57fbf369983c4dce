"""Loading price and contract files: ``PriceTable.load`` and ``Contract.load`` of large
generated files, against ``tomllib`` parsing the same text (a floor: it builds no table and
checks nothing). Loading must stay linear in the file's size: every error names its line,
and finding a line must not rescan the text from its start.

Sizes: 16,000 and 50,000 prices; 2,000 and 8,000 contract clauses (``--quick``: a tenth).
"""

from __future__ import annotations

import os
import tempfile
import time
import tomllib

import statemeter as sm


def prices_text(n: int) -> str:
    out = ['title = "generated"', 'currency = "USD"', ""]
    for i in range(n):
        out += [
            "[[price]]",
            'provider = "openai"',
            f'model = "model-{i}"',
            'input_per_mtok = "1.25"',
            'cached_input_per_mtok = "0.125"',
            'output_per_mtok = "10"',
            "",
        ]
    return "\n".join(out)


def contract_text(n: int) -> str:
    out = ['id = "generated"', 'title = "generated"', ""]
    for i in range(n):
        out += [
            "[[clause]]",
            f'id = "clause-{i}"',
            'providers = ["openai"]',
            'required_venues = ["azure"]',
            'effective_from = "2026-01-01"',
            "[clause.interpretations.call-level]",
            'level = "call"',
            'tags = ["stateless"]',
            "",
        ]
    return "\n".join(out)


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _load(kind: str, text: str, load) -> dict:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{kind}.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return {
            "statemeter_s": round(_best(lambda: load(path), 2), 4),
            "tomllib_s": round(_best(lambda: tomllib.loads(text), 2), 4),
            "bytes": len(text.encode()),
        }


def bench_load_tables(quick: bool) -> dict:
    scale = 10 if quick else 1
    out: dict = {"prices": {}, "contracts": {}}
    for n in (16_000 // scale, 50_000 // scale):
        out["prices"][str(n)] = _load("prices", prices_text(n), sm.PriceTable.load)
    for n in (2_000 // scale, 8_000 // scale):
        out["contracts"][str(n)] = _load("contract", contract_text(n), sm.Contract.load)
    return out


BENCHES = {"load_tables": bench_load_tables}
