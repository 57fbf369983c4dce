"""The column store beside a ledger (docs/ledger-format.md, "The column store"): whatever state
it is in — intact, missing, damaged, stale, written by a process killed mid-append — reports,
costs, sessions and events() give the same answers as reading every record.

Segments hold 65,536 events, so these ledgers are a little larger than that.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import statemeter as sm

SEGMENT = 65_536
DATA = Path(__file__).parent / "data"
CONTRACT = sm.Contract.load(DATA / "contracts" / "two-providers-amended.toml")
PRICES = sm.PriceTable.load(
    Path(__file__).parent.parent / "examples" / "prices" / "illustrative.toml"
)

# Records a stream of sessions (stateful chains, runtimes, tools, state ops) into argv[1];
# with argv[2] = "forever", until killed.
WRITER = r"""
import random, sys
import statemeter as sm
meter = sm.Meter(sys.argv[1])
rng = random.Random(int(sys.argv[3]))
ts = 1_761_955_200 * 10**9
n = 0
while sys.argv[2] == "forever" or n < int(sys.argv[2]):
    runtime = rng.random() < 0.05
    kw = {"runtime": "agentcore", "runtime_session_id": f"rs{n}"} if runtime else {}
    s = meter.session(agent=rng.choice(["a", "b"]), tenant="t",
                      venue=rng.choice(["azure", "aws", "gcp"]), **kw)
    s.start()
    stateful = rng.random() < 0.2
    for k in range(rng.randint(3, 9)):
        ts += 7_919_000_000
        provider = rng.choice(["openai", "anthropic", "azure.ai.openai", "aws.bedrock"])
        req = ({"previous_response_id": f"r{k}"} if k else {"store": True}) if stateful else None
        s.model_call(provider=provider, model="gpt-5",
                     api="responses" if req else "chat.completions", request=req,
                     input_tokens=rng.randint(60, 9000), cached_tokens=rng.randint(0, 50),
                     output_tokens=rng.randint(1, 900), ts=ts,
                     duration_ns=rng.randint(1, 10**9))
        n += 1
    s.tool_call("search", effect="read", ts=ts)
    if runtime:
        s.state_op("write", store="agentcore-memory", holder="provider", bytes=2048, ts=ts)
        n += 1
    s.end()
    n += 3
meter.close()
"""


def record(path: Path, n: int, seed: int = 1) -> None:
    """Records about `n` events in a child process."""
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(n), str(seed)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr


def columns_dir(path: Path) -> Path:
    return path.with_name(path.name + ".columns")


def answers(path: Path) -> dict:
    """What a fresh Ledger reports (its columns are loaded by this call)."""
    ledger = sm.Ledger.open(path)
    events = ledger.events()
    calls = ledger.events(kind="model_call", tag="stateful")
    return {
        "report": ledger.report(CONTRACT, by=["venue", "month"]).to_pylist(),
        "costs": ledger.costs(PRICES, by=["venue"]).to_pylist(),
        "sessions": ledger.sessions().to_pylist(),
        "events": len(events),
        "stateful_calls": [e.id for e in calls],
        "last": events[-1].to_dict(),
        "counts": events._counts(),
    }


def from_records(path: Path) -> dict:
    """The answers with no column store: every record read."""
    aside = path.with_name("aside")
    columns_dir(path).rename(aside)
    try:
        return answers(path)
    finally:
        shutil.rmtree(columns_dir(path), ignore_errors=True)
        aside.rename(columns_dir(path))


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("columns") / "l.db"
    record(path, 2 * SEGMENT + 5_000)
    segments = sorted(columns_dir(path).iterdir())
    # Two whole segments, and the part segment the meter kept for the rest when it closed.
    assert [s.name for s in segments] == [
        f"{1:020}.seg",
        f"{SEGMENT + 1:020}.seg",
        f"{2 * SEGMENT + 1:020}.seg",
    ]
    assert segments[2].stat().st_size < segments[1].stat().st_size / 10
    return path, from_records(path)


def test_the_writer_keeps_segments_and_they_give_the_records_answers(ledger):
    path, want = ledger
    got = answers(path)
    assert got == want
    assert want["events"] > 2 * SEGMENT and want["stateful_calls"]


FIRST_CALLS = {
    "report": lambda ledger: ledger.report(CONTRACT, by=["venue", "month"]).to_pylist(),
    "costs": lambda ledger: ledger.costs(PRICES, by=["venue"]).to_pylist(),
    "sessions": lambda ledger: ledger.sessions().to_pylist(),
}


@pytest.mark.parametrize("call", sorted(FIRST_CALLS))
def test_each_call_first_in_a_fresh_process_gives_the_records_answer(ledger, call):
    """Each call with nothing loaded before it (the sessions table is summarised a segment at
    a time, the part segment last), and again in the same process."""
    path, want = ledger
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL, str(path), call, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr
    first, again = json.loads(out.stdout)
    assert first == want[call]
    assert again == want[call]


FIRST_CALL = (
    "import sys\n"
    "sys.path.insert(0, sys.argv[3])\n"
    "import test_column_store as t\n"
    "import json\n"
    "import statemeter as sm\n"
    "ledger = sm.Ledger.open(sys.argv[1])\n"
    "call = t.FIRST_CALLS[sys.argv[2]]\n"
    "first = call(ledger)\n"
    "print(json.dumps([first, call(ledger)]))\n"
)


def test_a_sessions_table_follows_the_ledger_while_an_earlier_one_is_held(tmp_path):
    path = tmp_path / "l.db"
    meter = sm.Meter(path, durability="sync")
    with meter.session(agent="a", venue="aws") as s:
        s.model_call(provider="openai", model="gpt-5", api="responses", input_tokens=5)
    ledger = sm.Ledger.open(path)
    first = ledger.sessions()
    assert len(first) == 1 and ledger.sessions().to_pylist() == first.to_pylist()
    with meter.session(agent="b", venue="azure") as s:
        s.model_call(provider="openai", model="gpt-5", api="responses", input_tokens=7)
    meter.close()
    second = ledger.sessions()
    assert [r["agent"] for r in second] == ["a", "b"]
    assert [r["input_tokens"] for r in second] == [5, 7]
    assert len(first) == 1


def corrupt(seg: Path, how: str) -> None:
    b = bytearray(seg.read_bytes())
    if how == "damaged":
        b[-1] ^= 1
    elif how == "stale":
        b[20] ^= 1  # the chain hash it was written for
    elif how == "truncated":
        del b[len(b) // 2 :]
    elif how == "foreign":
        b = bytearray(b"not a segment" * 10)
    elif how == "older format":
        b[7] = 1  # magic "SMCOLS\0\x01": the segment format before this one
    seg.write_bytes(bytes(b))


@pytest.mark.parametrize(
    "how", ["damaged", "stale", "truncated", "foreign", "older format", "missing"]
)
@pytest.mark.parametrize("which", [0, 1])
def test_a_bad_segment_changes_no_answer_and_is_replaced(ledger, tmp_path, how, which):
    path, want = ledger
    copy = tmp_path / "l.db"
    shutil.copy(path, copy)
    shutil.copytree(columns_dir(path), columns_dir(copy))
    seg = sorted(columns_dir(copy).iterdir())[which]
    before = seg.read_bytes()
    if how == "missing":
        seg.unlink()
    else:
        corrupt(seg, how)
    assert answers(copy) == want
    # The reader that had to read those records saved the segment again.
    assert seg.read_bytes() == before


@pytest.mark.parametrize("how", ["damaged", "stale", "truncated", "missing"])
def test_a_bad_part_segment_changes_no_answer(ledger, tmp_path, how):
    path, want = ledger
    copy = tmp_path / "l.db"
    shutil.copy(path, copy)
    shutil.copytree(columns_dir(path), columns_dir(copy))
    seg = columns_dir(copy) / f"{2 * SEGMENT + 1:020}.seg"
    if how == "missing":
        seg.unlink()
    else:
        corrupt(seg, how)
    assert answers(copy) == want


def test_a_part_segment_is_replaced_by_the_whole_once_the_ledger_holds_it(tmp_path):
    path = tmp_path / "l.db"
    record(path, SEGMENT // 2)
    part = columns_dir(path) / f"{1:020}.seg"
    small = part.stat().st_size
    assert answers(path) == from_records(path)
    # Another meter appends past the segment's end: it writes the whole segment in its place.
    record(path, SEGMENT, seed=5)
    assert part.stat().st_size > small
    assert answers(path) == from_records(path)


def test_a_segment_of_another_ledger_is_not_used(ledger, tmp_path):
    path, want = ledger
    other = tmp_path / "other.db"
    record(other, SEGMENT + 10, seed=2)
    copy = tmp_path / "l.db"
    shutil.copy(path, copy)
    shutil.copytree(columns_dir(path), columns_dir(copy))
    first = f"{1:020}.seg"
    shutil.copy(columns_dir(other) / first, columns_dir(copy) / first)
    assert answers(copy) == want


def test_a_store_that_cannot_be_written_only_costs_time(ledger, tmp_path):
    path, want = ledger
    copy = tmp_path / "l.db"
    shutil.copy(path, copy)
    # A file where the directory would be: no segment can be saved.
    columns_dir(copy).write_text("in the way")
    assert answers(copy) == want
    assert columns_dir(copy).read_text() == "in the way"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_mid_append_the_answers_are_the_records(tmp_path, seed):
    path = tmp_path / "l.db"
    err = (tmp_path / "stderr").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), "forever", str(seed)],
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    rng = random.Random(seed)
    # Wait until a segment exists, then kill at a random moment after it.
    deadline = time.monotonic() + 240
    while not (columns_dir(path).is_dir() and any(columns_dir(path).glob("*.seg"))):
        assert proc.poll() is None, (tmp_path / "stderr").read_text()
        assert time.monotonic() < deadline, "no segment written"
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 1.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    err.close()
    assert sm.Ledger.open(path).verify().ok
    assert answers(path) == from_records(path)
