"""statemeter benchmarks: every peer runs in the same process, in the same run; results are
ratios, written to benches/results/NAME.json and printed. Not a test: nothing here fails on time.

    python benches/run.py [--quick] [--only recording,sustained]

Each benches/bench_*.py module exposes BENCHES = {name: fn(quick) -> dict}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import summarise  # noqa: E402
from common import machine  # noqa: E402


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
    failed = []
    for name in args.only.split(",") if args.only else list(benches):
        info = machine()  # per benchmark: the load average when it started
        try:
            result = benches[name](args.quick)
        except Exception:  # noqa: BLE001 - one broken benchmark must not stop the others
            traceback.print_exc()
            failed.append(name)
            continue
        result["machine"] = info
        result["run_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        result["quick"] = args.quick
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"== {name}")
        print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    # docs/performance.md is rendered from every result on file.
    summarise.main([])
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
