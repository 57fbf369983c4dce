"""Storage faults: a read-only ledger, a missing directory, a full disk, a corrupted page, a file
that is not a ledger.

Each gives a clear `LedgerError` (or `IntegrityError`, or a failed verification, where the
chain's content is damaged), never a silent loss and never a crashed interpreter: every
scenario that touches a damaged file runs in a child process, so a segfault or an abort fails
the test instead of ending the run. After the fault clears, recording resumes and the chain
verifies, with every event the caller was told was accepted.

The full-disk fault is made two ways: ``RLIMIT_FSIZE`` in a child (no privileges needed; the
child ignores SIGXFSZ, so writes past the limit fail with EFBIG), and, when the tests run as root
and may mount, a small tmpfs filled up. The read-only fault needs a read-only mount (root) or
file permissions that bind (not root); otherwise it is skipped with the reason.
"""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import statemeter as sm
from statemeter.reverify import check

TESTS = Path(__file__).parent


def run_child(code: str, *args: str, timeout: float = 120) -> dict:
    """Runs `code` in a fresh interpreter; it prints one JSON object last. A crash fails."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    assert proc.returncode == 0, (
        f"the child crashed or failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_ledger(path: Path, n: int = 1500, pad: int = 300) -> sm.Head:
    """A closed, checkpointed file ledger of `n` tool calls; returns its head."""
    with sm.Meter(path) as meter, meter.session("bot", session_id="s") as s:
        for i in range(n - 2):
            s.tool_call("t", attrs={"i": i, "pad": "x" * pad})
    head = sm.Ledger.open(path).head()
    assert head.seq == n
    del meter, s
    gc.collect()  # the last connection closes: SQLite checkpoints and removes the WAL
    assert not Path(f"{path}-wal").exists()
    return head


def record_more(path: Path, n: int, durability: str = "batch") -> None:
    with (
        sm.Meter(path, durability=durability) as meter,
        meter.session("after", session_id=f"after-{os.urandom(4).hex()}") as s,
    ):
        for i in range(n - 2):
            s.tool_call("after", attrs={"i": i})


# --------------------------------------------------------------------------- missing directory


def test_missing_directory_then_created(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "l.db"
    for open_it in (sm.Meter, sm.Ledger.open):
        with pytest.raises(sm.LedgerError) as info:
            open_it(path)
        assert str(path.parent) in str(info.value) or str(path) in str(info.value)
    assert not (tmp_path / "no").exists()  # nothing was created on the way
    path.parent.mkdir(parents=True)
    record_more(path, 10)
    assert sm.Ledger.open(path).verify().ok


# --------------------------------------------------------------------------- not a ledger

NOT_LEDGERS = [
    "garbage",
    "text",
    "zeros",
    "half",
    "header_only",
    "first_page",
    "other_sqlite",
    "future_version",
    "directory",
]

NOT_LEDGER_CHILD = """
    import json, sys, statemeter as sm
    out = {}
    for what, open_it in (("ledger", sm.Ledger.open), ("meter", sm.Meter)):
        try:
            x = open_it(sys.argv[1])
            out[what] = "opened"
        except sm.StatemeterError as e:
            out[what] = [type(e).__name__, str(e)]
    print(json.dumps(out))
"""


def not_a_ledger(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.db"
    rnd = random.Random(kind)
    if kind in ("half", "header_only", "first_page", "future_version"):
        good = tmp_path / "good.db"
        make_ledger(good)
        data = good.read_bytes()
        if kind == "future_version":
            shutil.copy(good, path)
            con = sqlite3.connect(path)
            # A version after the newest this release reads (3).
            con.execute("update meta set value = '4' where key = 'version'")
            con.commit()
            con.close()
            # Back to the journal mode a ledger has, so only the version differs.
            return path
        cut = {"half": len(data) // 2, "header_only": 100, "first_page": 16384}[kind]
        path.write_bytes(data[:cut])
    elif kind == "garbage":
        path.write_bytes(rnd.randbytes(50_000))
    elif kind == "text":
        path.write_bytes(b"timestamp,event\n" * 2000)
    elif kind == "zeros":
        path.write_bytes(bytes(65_536))
    elif kind == "other_sqlite":
        con = sqlite3.connect(path)
        con.execute("create table meta (key text, value text)")
        con.execute("insert into meta values ('format', 'my-app')")
        con.commit()
        con.close()
    elif kind == "directory":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", NOT_LEDGERS)
def test_file_that_is_not_a_ledger(tmp_path, kind):
    path = not_a_ledger(tmp_path, kind)
    before = path.read_bytes() if path.is_file() else None
    out = run_child(NOT_LEDGER_CHILD, str(path))
    for what in ("ledger", "meter"):
        assert out[what] != "opened", f"{kind}: {what} opened it"
        cls, msg = out[what]
        assert cls == "LedgerError", out
        assert str(path) in msg, msg  # the message names the file
        if kind == "future_version":
            assert "version 4;" in msg, msg
        elif kind != "directory":
            assert "not a statemeter ledger" in msg or "corrupt" in msg, msg
    # Refusing a file never changes it (no WAL switch, no schema written into it).
    if before is not None:
        assert path.read_bytes() == before
    # The fault clears (the right file is put in place): recording resumes.
    if path.is_dir():
        path.rmdir()
    else:
        path.unlink()
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)
    record_more(path, 10)
    assert sm.Ledger.open(path).verify().ok and check(path).ok


def test_empty_file_is_an_empty_ledger(tmp_path):
    """SQLite reads a 0-byte file as an empty database: it becomes a new ledger (documented)."""
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    record_more(path, 5)
    v = sm.Ledger.open(path).verify()
    assert v.ok and v.events == 5


# --------------------------------------------------------------------------- corrupted pages

CORRUPT_CHILD = """
    import json, sys, statemeter as sm
    path, head = sys.argv[1], sys.argv[2]
    out = {}
    def attempt(name, fn):
        try:
            out[name] = ["ok", fn()]
        except sm.StatemeterError as e:
            out[name] = [type(e).__name__, str(e)]
    ledger = None
    def open_():
        global ledger
        ledger = sm.Ledger.open(path)
        return None
    attempt("open", open_)
    if ledger is not None:
        attempt("verify", lambda: (lambda v: [v.ok, v.first_bad_seq, v.problem])(
            ledger.verify(head=head)))
        attempt("events", lambda: [e.id for e in ledger.events()])
    def append():
        with sm.Meter(path) as m:
            m.session("x").tool_call("after-corruption")
    attempt("append", append)
    print(json.dumps(out))
"""


@pytest.mark.parametrize("seed", range(12))
def test_corrupted_page(tmp_path, seed):
    path = tmp_path / "l.db"
    head = make_ledger(path, n=2000)
    original = path.read_bytes()
    ids = [e.id for e in sm.Ledger.open(path).events()]
    # Overwrite bytes in the middle of the file (past the header page): random bytes or zeros,
    # from one byte to a whole page, as a disk or a stray write would.
    rnd = random.Random(seed)
    n = rnd.choice([1, 16, 512, 4096, 16384])
    at = rnd.randrange(16384, len(original) - n)
    damaged = bytearray(original)
    damaged[at : at + n] = rnd.randbytes(n) if seed % 2 else bytes(n)
    copy = tmp_path / "copy.db"
    copy.write_bytes(damaged)
    where = f"seed={seed} offset={at} bytes={n}"
    out = run_child(CORRUPT_CHILD, str(copy), str(head))
    for step, (cls, _) in out.items():
        assert cls in ("ok", "LedgerError", "IntegrityError"), f"{where}: {step}: {out[step]}"
    verify = out.get("verify")
    if verify and verify[0] == "ok" and verify[1][0]:
        # The chain re-derived up to the kept head: the damage hit no record, no hash and no
        # row. Then every event must be there, unchanged (no silent loss).
        assert out["events"] == ["ok", ids], where
    elif verify and verify[0] == "ok":
        _, first_bad, problem = verify[1]
        # A damaged ruleset catalogue belongs to no record: it is named, without a seq.
        assert first_bad is not None or "stored catalogue" in problem, f"{where}: {verify}"
        assert problem.split(":")[0] in (
            "edited",
            "deleted",
            "inserted",
            "reordered",
            "truncated",
            "damaged",
        ), f"{where}: {verify}"
    # The fault clears (the damaged page is restored): recording resumes, the chain is whole.
    path.write_bytes(original)
    record_more(path, 10)
    v = sm.Ledger.open(path).verify(head=head)
    assert v.ok and v.events == len(ids) + 10, f"{where}: {v}"


# --------------------------------------------------------------------------- full disk

FSIZE_CHILD = """
    import json, os, resource, signal, sys, statemeter as sm
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # past the limit, write() fails with EFBIG
    path, durability = sys.argv[1], sys.argv[2]
    out = {"errors": [], "returned": 0}
    meter = sm.Meter(path, durability=durability)
    s = meter.session("bot", session_id="s")
    for i in range(10):
        s.tool_call("t", id=f"before-{i}")
    meter.flush()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    used = max(os.path.getsize(path), os.path.getsize(path + "-wal"))
    resource.setrlimit(resource.RLIMIT_FSIZE, (used + 64 * 1024, hard))
    failed = []
    for i in range(60):
        try:
            s.tool_call("t", id=f"during-{i}", attrs={"pad": "x" * 30_000})
            out["returned"] += 1
        except sm.StatemeterError as e:
            out["errors"].append([type(e).__name__, str(e)])
            failed.append(i)
    try:
        meter.flush()
        out["flush_during"] = "ok"
    except sm.StatemeterError as e:
        out["flush_during"] = [type(e).__name__, str(e)]
    out["stats_during"] = meter.stats()
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # the fault clears
    for i in failed:  # sync mode: the caller retries what raised
        s.tool_call("t", id=f"during-{i}", attrs={"pad": "x" * 30_000})
    meter.flush()
    meter.close()
    out["stats_after"] = meter.stats()
    print(json.dumps(out))
"""


def check_full_disk_outcome(path: Path, out: dict, durability: str) -> None:
    if durability == "batch":
        # Record calls return (the events wait in memory); flush() reports the failure.
        assert out["returned"] == 60 and not out["errors"], out
        cls, msg = out["flush_during"]
        assert cls == "LedgerError" and "not yet written" in msg, msg
        assert out["stats_during"]["pending"] == 60
    else:
        # Each record call commits: the ones that did not fit raise and are not written.
        assert out["errors"] and out["returned"] + len(out["errors"]) == 60, out
        assert {c for c, _ in out["errors"]} == {"LedgerError"}, out["errors"][:2]
        assert out["flush_during"] == "ok"
    assert out["stats_after"]["pending"] == 0 and out["stats_after"]["dropped"] == 0
    ledger = sm.Ledger.open(path)
    v = ledger.verify()
    assert v.ok and v.events == 10 + 60, v
    ids = sorted(e.id for e in ledger.events())
    assert ids == sorted([f"before-{i}" for i in range(10)] + [f"during-{i}" for i in range(60)])
    assert check(path).ok
    record_more(path, 5, durability)
    assert sm.Ledger.open(path).verify().ok


@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_full_disk_file_size_limit(tmp_path, durability):
    path = tmp_path / "l.db"
    out = run_child(FSIZE_CHILD, str(path), durability)
    check_full_disk_outcome(path, out, durability)


def can_mount() -> str | None:
    """None when this process may mount a tmpfs, else the reason it may not."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "mounting a tmpfs needs root on Linux"
    if shutil.which("mount") is None:
        return "this machine has no mount command"
    return None


@pytest.fixture
def small_fs(tmp_path):
    """A 24 MiB tmpfs at tmp_path/fs (root only), unmounted afterwards."""
    reason = can_mount()
    if reason:
        pytest.skip(reason)
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"this machine does not let the tests mount a tmpfs: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        gc.collect()
        subprocess.run(["umount", "-l", str(mnt)], check=False)


TMPFS_CHILD = """
    import json, os, sys, statemeter as sm
    path, durability, filler = sys.argv[1], sys.argv[2], sys.argv[3]
    out = {"errors": [], "returned": 0}
    meter = sm.Meter(path, durability=durability)
    s = meter.session("bot", session_id="s")
    for i in range(10):
        s.tool_call("t", id=f"before-{i}")
    meter.flush()
    with open(filler, "wb", buffering=0) as f:   # fill the file system
        try:
            while True:
                f.write(b"\\0" * 65536)
        except OSError:
            pass
    failed = []
    for i in range(60):
        try:
            s.tool_call("t", id=f"during-{i}", attrs={"pad": "x" * 30_000})
            out["returned"] += 1
        except sm.StatemeterError as e:
            out["errors"].append([type(e).__name__, str(e)])
            failed.append(i)
    try:
        meter.flush()
        out["flush_during"] = "ok"
    except sm.StatemeterError as e:
        out["flush_during"] = [type(e).__name__, str(e)]
    out["stats_during"] = meter.stats()
    os.remove(filler)   # the fault clears
    for i in failed:
        s.tool_call("t", id=f"during-{i}", attrs={"pad": "x" * 30_000})
    meter.flush()
    meter.close()
    out["stats_after"] = meter.stats()
    print(json.dumps(out))
"""


@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_full_disk_tmpfs(small_fs, durability):
    path = small_fs / "l.db"
    out = run_child(TMPFS_CHILD, str(path), durability, str(small_fs / "filler"))
    messages = [m for _, m in out["errors"]]
    if out["flush_during"] != "ok":
        messages.append(out["flush_during"][1])
    assert any("full" in m for m in messages), messages[:2]
    check_full_disk_outcome(path, out, durability)


# --------------------------------------------------------------------------- read-only


def test_read_only_ledger(tmp_path, small_fs_or_chmod):
    make_ro, make_rw, path = small_fs_or_chmod
    head = make_ledger(path, n=50)
    make_ro()
    try:
        # Recording needs to write: a clear LedgerError naming the file.
        with pytest.raises(sm.LedgerError) as info:
            sm.Meter(path)
        assert str(path) in str(info.value) and "read-only" in str(info.value)
        # Reading does not: an auditor verifies and reports on a ledger it cannot change.
        ledger = sm.Ledger.open(path)
        v = ledger.verify(head=head)
        assert v.ok and v.events == 50
        assert len(ledger.events(kind="tool_call")) == 48
        del ledger
    finally:
        make_rw()
    v = sm.Ledger.open(path).verify(head=head)
    assert v.ok and v.events == 50
    record_more(path, 10)
    v = sm.Ledger.open(path).verify(head=head)
    assert v.ok and v.events == 60


def test_read_only_open_of_a_ledger_without_an_id(tmp_path, small_fs_or_chmod):
    """A ledger made before ledgers had an identity, opened read-only: nothing is written, it
    has no id (None), reports and verification work, an export into a dataset is refused;
    the first writable open gives it one (docs/ledger-format.md)."""
    make_ro, make_rw, path = small_fs_or_chmod
    head = make_ledger(path, n=20)
    code = (
        "import sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1])\n"
        "with con:\n"
        "    con.execute(\"delete from meta where key = 'ledger_id'\")\n"
        "con.execute('pragma wal_checkpoint(truncate)')\n"
        "con.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)
    make_ro()
    try:
        ledger = sm.Ledger.open(path)
        assert ledger.ledger_id is None and ledger.head().ledger_id is None
        assert ledger.verify(head=head).ok
        if _has_pyarrow():
            with pytest.raises(sm.LedgerError, match="ledger_id"):
                ledger.export_parquet(tmp_path / "ds")
        del ledger
    finally:
        make_rw()
    ledger = sm.Ledger.open(path)
    assert ledger.ledger_id is not None and ledger.head().ledger_id == ledger.ledger_id


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def test_read_only_media_with_an_unmerged_log(tmp_path, small_fs):
    """A copy taken while a meter was writing carries a -wal file with events not yet in the
    main file: on read-only media they cannot be merged, so reading it is refused (a silently
    shorter ledger would verify without a kept head)."""
    src = tmp_path / "live.db"
    meter = sm.Meter(src)
    with meter.session("bot") as s:
        for i in range(20):
            s.tool_call("t", attrs={"i": i})
    meter.flush()
    assert Path(f"{src}-wal").stat().st_size > 0
    for side in ("", "-wal"):
        shutil.copy(f"{src}{side}", small_fs / f"l.db{side}")
    meter.close()
    gc.collect()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    try:
        with pytest.raises(sm.LedgerError, match="write-ahead log"):
            sm.Ledger.open(small_fs / "l.db")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    # On writable storage the same copy reads in full.
    v = sm.Ledger.open(small_fs / "l.db").verify()
    assert v.ok and v.events == 22


@pytest.fixture
def small_fs_or_chmod(tmp_path):
    """(make_ro, make_rw, ledger path): a read-only remount of a tmpfs as root, or file and
    directory permissions otherwise."""
    if can_mount() is None:
        mnt = tmp_path / "ro"
        mnt.mkdir()
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
        )
        if r.returncode == 0:

            def remount(mode: str) -> None:
                gc.collect()  # no open file may stay behind, or the remount is refused
                subprocess.run(["mount", "-o", f"remount,{mode}", str(mnt)], check=True)

            try:
                yield (lambda: remount("ro")), (lambda: remount("rw")), mnt / "l.db"
            finally:
                gc.collect()
                subprocess.run(["umount", "-l", str(mnt)], check=False)
            return
    if os.geteuid() == 0:
        pytest.skip("running as root without a mountable tmpfs: permissions do not bind")
    d = tmp_path / "ro"
    d.mkdir()
    path = d / "l.db"

    def ro() -> None:
        gc.collect()
        path.chmod(0o444)
        d.chmod(0o555)

    def rw() -> None:
        d.chmod(0o755)
        path.chmod(0o644)

    try:
        yield ro, rw, path
    finally:
        rw()
