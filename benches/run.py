"""statemeter benchmarks: every peer runs in the same process, in the same run; results are
ratios, written to benches/results/NAME.json and printed. Not a test: nothing here fails on time.

    python benches/run.py [--quick] [--only recording,sustained]

Each benches/bench_*.py module exposes BENCHES = {name: fn(quick) -> dict}.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from common import machine


def discover() -> dict:
    benches: dict = {}
    for path in sorted(HERE.glob("bench_*.py")):
        benches.update(importlib.import_module(path.stem).BENCHES)
    return benches


def main() -> None:
    benches = discover()
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--only", default="", help="comma-separated names: " + ",".join(benches))
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    info = machine()
    for name in (args.only.split(",") if args.only else list(benches)):
        result = benches[name](args.quick)
        result["machine"] = info
        result["quick"] = args.quick
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"== {name}")
        print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
