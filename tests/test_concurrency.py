"""Concurrency: 8 threads in each of 4 processes recording into one ledger file at once.

Exact counts, one valid chain (both verifiers), every thread's events in its own order, and no
deadlock: every process and thread must finish within a bound (a hang fails the test instead of
stalling the suite). Two processes record in batch mode and two in sync mode, and every thread
also calls ``flush()`` now and then, so group commits, per-event commits and flush barriers from
32 threads contend for the same file lock. The same runs under a free-threaded CPython when one
that can import statemeter is available (see `free_threaded_python`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

import pytest
import statemeter as sm
from reverify_ledger import check

CHILD = Path(__file__).with_name("recorder_child.py")
PROCESSES, THREADS = 4, 8
TIMEOUT_S = 300


def run_load(python: list[str], ledger: Path, events: int, extra_env: dict | None = None) -> None:
    env = {**os.environ, **(extra_env or {})}
    procs = [
        subprocess.Popen(
            [
                *python,
                str(CHILD),
                "load",
                str(ledger),
                f"p{p}",
                "batch" if p % 2 else "sync",
                str(THREADS),
                str(events),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for p in range(PROCESSES)
    ]
    try:
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT_S)
            assert p.returncode == 0 and out.decode().strip() == "done", (
                f"exit {p.returncode}: {out.decode()} {err.decode()}"
            )
    except subprocess.TimeoutExpired:
        pytest.fail(f"deadlock: a recording process did not finish in {TIMEOUT_S} s")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def check_ledger(ledger: Path, events: int) -> None:
    per_thread = events + 2  # session_start, the events, session_end
    v = sm.Ledger.open(ledger).verify()
    assert v.ok and v.events == PROCESSES * THREADS * per_thread, v
    assert check(ledger).ok
    table = sm.Ledger.open(ledger).events()
    seen: dict[str, list] = {}
    for e in table:
        seen.setdefault(e.session_id, []).append(e)
    assert sorted(seen) == sorted(f"p{p}-t{t}" for p in range(PROCESSES) for t in range(THREADS))
    for sid, evs in seen.items():
        assert len(evs) == per_thread, sid
        assert evs[0].kind == "session_start" and evs[-1].kind == "session_end", sid
        # One thread's events keep their order in the chain (seqs ascend as attrs.i does).
        order = [e.attrs["i"] for e in evs[1:-1]]
        assert order == list(range(events)), sid
        assert len({e.id for e in evs}) == per_thread


def test_four_processes_eight_threads_one_chain(tmp_path):
    ledger = tmp_path / "shared.db"
    sm.Meter(ledger).close()  # create it first, so the processes only append
    run_load([sys.executable], ledger, 120)
    check_ledger(ledger, 120)


def test_threads_sharing_one_meter_with_readers(tmp_path):
    """In one process: 8 writer threads, plus readers verifying and loading while they write."""
    ledger = tmp_path / "l.db"
    meter = sm.Meter(ledger)
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                v = sm.Ledger.open(ledger).verify()
                if not v.ok:
                    problems.append(str(v))
                len(meter.ledger.events(kind="model_call"))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                problems.append(repr(e))

    def writer(w: int) -> None:
        s = meter.session(f"t{w}", session_id=f"t{w}")
        for i in range(300):
            s.model_call(provider="openai", model="m", api="chat.completions", input_tokens=i)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(THREADS)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(timeout=TIMEOUT_S)
        assert not t.is_alive(), "deadlock: a writer did not finish"
    meter.flush()
    stop.set()
    for t in readers:
        t.join(timeout=TIMEOUT_S)
        assert not t.is_alive(), "deadlock: a reader did not finish"
    meter.close()
    assert not problems, problems[:3]
    v = sm.Ledger.open(ledger).verify()
    assert v.ok and v.events == THREADS * 300
    for w in range(THREADS):
        calls = sm.Ledger.open(ledger).events(session_id=f"t{w}")
        assert [e.input_tokens for e in calls] == list(range(300))


@pytest.mark.long
def test_four_processes_eight_threads_long(tmp_path):
    ledger = tmp_path / "shared.db"
    sm.Meter(ledger).close()
    run_load([sys.executable], ledger, 1000)
    check_ledger(ledger, 1000)


def free_threaded_python() -> tuple[list[str] | None, str]:
    """A free-threaded CPython that can import statemeter, or None and the reason why not.

    Looked for: $STATEMETER_FT_PYTHON, python3.13t / python3.14t on PATH, and pyenv versions
    whose name ends in "t". statemeter's wheel is abi3, which free-threaded builds cannot load;
    it must be built for that interpreter (``maturin develop`` in a venv made with it).
    """
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return [sys.executable], ""
    candidates = [os.environ.get("STATEMETER_FT_PYTHON", "")]
    candidates += [shutil.which(n) or "" for n in ("python3.13t", "python3.14t", "python3.15t")]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if root.is_dir():
        candidates += [
            str(v / "bin" / "python") for v in sorted(root.iterdir()) if v.name.endswith("t")
        ]
    found = [c for c in candidates if c and Path(c).exists()]
    probe = (
        "import sys, sysconfig; assert sysconfig.get_config_var('Py_GIL_DISABLED'); "
        "import statemeter; assert not sys._is_gil_enabled()"
    )
    for exe in found:
        r = subprocess.run([exe, "-X", "gil=0", "-c", probe], capture_output=True, timeout=120)
        if r.returncode == 0:
            return [exe, "-X", "gil=0"], ""
    if not found:
        return None, (
            "no free-threaded CPython on this machine (none on PATH or in pyenv; "
            "Debian 12 packages none; interpreters cannot be downloaded here)"
        )
    return None, (
        f"free-threaded CPython at {found} cannot import statemeter "
        "(build it for that interpreter: the abi3 wheel does not load there)"
    )


def test_free_threaded_four_processes_eight_threads(tmp_path):
    python, reason = free_threaded_python()
    if python is None:
        pytest.skip(reason)
    ledger = tmp_path / "shared.db"
    sm.Meter(ledger).close()
    run_load(python, ledger, 60)
    check_ledger(ledger, 60)
