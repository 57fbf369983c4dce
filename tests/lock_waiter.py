"""Waits for a ledger's write lock, for the interrupt test in test_concurrency.py.

    python lock_waiter.py hold LEDGER             # take the write lock and keep it
    python lock_waiter.py wait LEDGER DURABILITY  # open a meter, then record (and flush)

``hold`` prints ``locked`` once it holds the lock (another process, so Python's sqlite3 is
fine here). ``wait`` prints ``open`` once its meter is open, reads one line from stdin, prints
``waiting`` and records one event (in batch mode then flushes): with the lock held elsewhere
the call waits, and Ctrl-C must end the wait with ``KeyboardInterrupt`` (``interrupted``)
instead of after the 30 s busy timeout.
"""

from __future__ import annotations

import sqlite3
import sys
import time


def hold(ledger: str) -> None:
    con = sqlite3.connect(ledger, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(600)


def wait(ledger: str, durability: str) -> None:
    import statemeter as sm

    meter = sm.Meter(ledger, durability=durability)
    s = meter.session("waiter")
    print("open", flush=True)
    sys.stdin.readline()
    print("waiting", flush=True)
    start = time.monotonic()
    try:
        s.tool_call("search")
        meter.flush()
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - start:.1f} s", flush=True)
        return
    except Exception as e:  # noqa: BLE001 - reported to the parent
        print(f"error {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
    print("finished", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2])
    else:
        wait(sys.argv[2], sys.argv[3])
