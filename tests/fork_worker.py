"""A module-level meter, as applications keep one, for the fork tests in test_concurrency.py.

The ledger path and durability come from the environment (``STATEMETER_FORK_LEDGER``,
``STATEMETER_FORK_DURABILITY``), read at import: with the ``fork`` start method the meter is
created in the parent and crosses the fork into every worker; with ``spawn`` and
``forkserver`` each worker imports this module and creates its own.
"""

from __future__ import annotations

import os
from typing import Any

import statemeter as sm
from shm_locks import holds_shm_lock

meter = sm.Meter(
    os.environ["STATEMETER_FORK_LEDGER"],
    durability=os.environ.get("STATEMETER_FORK_DURABILITY", "batch"),
)
_barrier: Any = None


def configure(ledger: str, durability: str, barrier: Any) -> None:
    """Pool initializer. A forkserver worker is forked from the server process, whose
    environment is the one it had when it started (for an earlier test, perhaps): its meter may
    point at another ledger, so it is made again for this one."""
    global _barrier, meter
    _barrier = barrier
    if os.environ.get("STATEMETER_FORK_LEDGER") != ledger:
        os.environ["STATEMETER_FORK_LEDGER"] = ledger
        os.environ["STATEMETER_FORK_DURABILITY"] = durability
        meter = sm.Meter(ledger, durability=durability)


def work(task: tuple[int, int]) -> dict:
    """Records `events` events in `sessions_per_task` sessions; all workers start together."""
    w, events = task
    if _barrier is not None:
        _barrier.wait(timeout=120)
    sessions = []
    per_session = 100
    for k in range(0, events, per_session):
        with meter.session(f"worker-{w}") as s:
            sessions.append(s.session_id)
            for i in range(k, min(events, k + per_session)):
                s.tool_call("search", attrs={"w": w, "i": i})
    meter.flush()
    stats = meter.stats()
    return {
        "pid": os.getpid(),
        "sessions": sessions,
        "rejected": stats["rejected"],
        "written": stats["written"],
        "lock": holds_shm_lock(os.environ["STATEMETER_FORK_LEDGER"]),
    }
