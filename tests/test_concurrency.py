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
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

import pytest
import statemeter as sm
from statemeter.reverify import check

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
            "no free-threaded CPython on this machine (none in $STATEMETER_FT_PYTHON, on PATH "
            "as python3.13t/3.14t/3.15t, or in pyenv)"
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


# --------------------------------------------------------------------------- fork()

FORK_CHILD = Path(__file__).with_name("fork_child.py")
FORK_EVENTS = 3000
# Python >= 3.12 warns about fork() in a process with threads (the meter's writer threads).
fork_warning = pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")


def run_fork_pool(
    monkeypatch, ledger: Path, method: str, durability: str, events: int
) -> list[dict]:
    """A 4-worker pool over a module-level meter (`fork_worker`), all workers recording at once."""
    import importlib
    import multiprocessing

    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"this platform's multiprocessing has no {method} start method")
    monkeypatch.setenv("STATEMETER_FORK_LEDGER", str(ledger))
    monkeypatch.setenv("STATEMETER_FORK_DURABILITY", durability)
    sys.modules.pop("fork_worker", None)
    worker = importlib.import_module("fork_worker")  # creates the meter in this process
    ctx = multiprocessing.get_context(method)
    pool = ctx.Pool(
        PROCESSES,
        initializer=worker.configure,
        initargs=(str(ledger), durability, ctx.Barrier(PROCESSES)),
    )
    try:
        pending = pool.map_async(worker.work, [(w, events) for w in range(PROCESSES)])
        try:
            results = pending.get(timeout=TIMEOUT_S)
        except multiprocessing.TimeoutError:
            pytest.fail(f"a {method} worker did not finish recording in {TIMEOUT_S} s")
        pool.close()
        pool.join()
    finally:
        pool.terminate()
        worker.meter.close()
        sys.modules.pop("fork_worker", None)
    return results


def check_fork_results(ledger: Path, results: list[dict], events: int) -> None:
    assert len({r["pid"] for r in results}) == PROCESSES
    assert all(r["rejected"] == 0 for r in results), [r["rejected"] for r in results]
    sessions = [sid for r in results for sid in r["sessions"]]
    assert len(set(sessions)) == len(sessions), "session ids collided across workers"
    per_worker = events + 2 * len(results[0]["sessions"])
    assert all(r["written"] == per_worker for r in results), [r["written"] for r in results]
    v = sm.Ledger.open(ledger).verify()
    assert v.ok and v.events == PROCESSES * per_worker, v
    assert check(ledger).ok
    ids = sm.Ledger.open(ledger).sql(
        "SELECT count(DISTINCT json_extract(record, '$.e.id')) FROM events"
    )[0][0]
    assert ids == v.events


@fork_warning
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_module_level_meter_in_a_process_pool(tmp_path, monkeypatch, method, durability):
    """A meter created at import (a module-level meter; gunicorn --preload, Celery prefork)
    records in every pool worker, whichever way the workers start: every event lands, once,
    in one valid chain; flush() returns in the workers; ids and session ids never collide
    (forked workers start with copies of the parent's random state)."""
    ledger = tmp_path / "pool.db"
    events = FORK_EVENTS if durability == "batch" else 300
    results = run_fork_pool(monkeypatch, ledger, method, durability, events)
    check_fork_results(ledger, results, events)
    # Each worker writes through a connection of its own: a forked worker does not use the
    # parent's SQLite connection (whose locks a child does not inherit).
    assert all(r["lock"] in (True, None) for r in results), [r["lock"] for r in results]


@fork_warning
@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_forked_child_records_and_exits(tmp_path, durability):
    """os.fork() after recording: the child records through the parent's meter and ends
    through a normal interpreter exit, whose flush writes its events instead of hanging; the
    parent keeps recording after the child is gone."""
    ledger = tmp_path / "fork.db"
    r = subprocess.run(
        [sys.executable, str(FORK_CHILD), str(ledger), durability],
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert r.returncode == 0 and r.stdout.decode().strip() == "done", (
        r.returncode,
        r.stdout.decode(),
        r.stderr.decode(),
    )
    v = sm.Ledger.open(ledger).verify()
    assert v.ok and v.events == 3 + 202 + 3, v
    by_session = {
        sid: n
        for sid, n in sm.Ledger.open(ledger).sql(
            "SELECT json_extract(record, '$.e.session_id'), count(*) FROM events GROUP BY 1"
        )
    }
    assert by_session == {"parent": 3, "child": 202, "parent-after": 3}


# A lowercase hyphenated UUIDv7 (RFC 9562: version 7, variant 10).
UUID7 = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

FORK_IDS = """
import os, sys, warnings
import statemeter as sm
warnings.simplefilter("ignore", DeprecationWarning)
s = sm.Meter(sys.argv[1]).session("ids")
def mint(n):
    return [s.model_call(provider="openai", model="m", api="responses").id for _ in range(n)]
before = mint(500)
children = []
for _ in range(3):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, "\\n".join(mint(2000)).encode())
        os._exit(0)
    os.close(w)
    children.append((pid, r))
after = mint(2000)
for pid, r in children:
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    print(b"".join(chunks).decode().replace("\\n", " "))
print(" ".join(after))
print(" ".join(before))
"""


@fork_warning
def test_forked_children_never_repeat_their_parents_ids(tmp_path):
    """Ids minted right after fork() by the parent and three children (each starting from a
    copy of the parent's id state, in the same milliseconds) are all distinct, and each
    process's ids keep increasing past the ones minted before the fork."""
    r = subprocess.run(
        [sys.executable, "-c", FORK_IDS, str(tmp_path / "ids.db")],
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert r.returncode == 0, r.stderr.decode()
    *minted, before = [line.split() for line in r.stdout.decode().splitlines()]
    assert [len(ids) for ids in minted] == [2000] * 4
    everything = [i for ids in minted for i in ids] + before
    assert len(set(everything)) == len(everything), "an id was minted twice"
    for ids in minted:
        assert ids == sorted(ids) and ids[0] > before[-1]
    assert all(re.fullmatch(UUID7, i) for i in everything)


def test_in_memory_meter_refuses_to_record_after_fork(tmp_path):
    """An in-memory ledger cannot follow a fork: the child is told, not silently dropped."""
    code = (
        "import os, statemeter as sm\n"
        "m = sm.Meter()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try:\n"
        "        m.session('x').tool_call('t')\n"
        "    except sm.LedgerError as e:\n"
        "        print('refused:', e, flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, r.stderr.decode()
    assert "refused:" in r.stdout.decode() and "fork()" in r.stdout.decode(), r.stdout.decode()


# --------------------------------------------------------------------------- interrupts

LOCK_WAITER = Path(__file__).with_name("lock_waiter.py")


def read_until(proc: subprocess.Popen, expected: str) -> None:
    line = proc.stdout.readline().decode().strip()
    assert line == expected, (line, proc.stderr.read().decode() if proc.poll() is not None else "")


@pytest.mark.parametrize("durability", ["sync", "batch"])
def test_ctrl_c_ends_a_wait_for_another_process_s_write_lock(tmp_path, durability):
    """Another process holds the ledger's write lock; a record call (sync) or flush (batch)
    waits for it, up to the 30 s busy timeout. Ctrl-C must end that wait at once with
    KeyboardInterrupt, not be ignored until the timeout."""
    import signal
    import time

    ledger = tmp_path / "locked.db"
    sm.Meter(ledger).close()
    waiter = subprocess.Popen(
        [sys.executable, str(LOCK_WAITER), "wait", str(ledger), durability],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    holder = None
    try:
        read_until(waiter, "open")
        holder = subprocess.Popen(
            [sys.executable, str(LOCK_WAITER), "hold", str(ledger)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        read_until(holder, "locked")
        waiter.stdin.write(b"go\n")
        waiter.stdin.flush()
        read_until(waiter, "waiting")
        time.sleep(1.0)  # let it enter the wait
        waiter.send_signal(signal.SIGINT)
        out, err = waiter.communicate(timeout=TIMEOUT_S)
    finally:
        for p in (waiter, holder):
            if p is None:
                continue
            if p.poll() is None:
                p.kill()
            if p.stdout and not p.stdout.closed:
                p.communicate()
    assert waiter.returncode == 0 and out.decode().startswith("interrupted"), (
        waiter.returncode,
        out.decode(),
        err.decode(),
    )
