"""The inner steps of Amazon Bedrock Agents' InvokeAgent, read from the trace of its response
stream: a real boto3 client against a loopback server answering AWS event-stream binary frames
built from a recorded-shape fixture (tests/data/runtimes/bedrock_invoke_agent_trace.json)."""

from __future__ import annotations

import datetime as dt
import gc
import json
import time
from pathlib import Path
from typing import Any

import botocore.eventstream
import botocore.exceptions
import dateutil.tz
import pytest
import statemeter as sm
from loopback import Loopback
from statemeter.integrations import botocore as capture
from test_integrations_botocore import PROVIDERS, client, event_message

FIXTURE = Path(__file__).parent / "data" / "runtimes" / "bedrock_invoke_agent_trace.json"
DOC = json.loads(FIXTURE.read_text())
PATH = DOC["path"]
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MARKER = b"CONTENT-MARKER"


def frames(events: list[list[Any]] | None = None) -> list[bytes]:
    return [event_message(t, p) for t, p in (events or DOC["events"])]


def serve(lb: Loopback, chunks: list[bytes]) -> None:
    lb.route(
        "POST",
        PATH,
        (200, "application/vnd.amazon.eventstream", chunks, {"x-amzn-requestid": "req-agent"}),
    )


def instrumented(lb: Loopback, target: Any) -> Any:
    """An Agents for Amazon Bedrock runtime client on `lb`, captured into `target`."""
    return capture.instrument(client(lb, "bedrock-agent-runtime"), target, providers=PROVIDERS)


def invoke(agent: Any) -> Any:
    return agent.invoke_agent(
        agentId="AGENT12345",
        agentAliasId="TSTALIASID",
        sessionId="session-001",
        inputText="is claim 4411 covered?",
        enableTrace=True,
    )


def consume(agent: Any) -> list[Any]:
    return list(invoke(agent)["completion"])


def events(meter: sm.Meter) -> list[dict[str, Any]]:
    meter.flush()
    return [e for e in meter.ledger.events().to_pylist() if e["kind"] != "session_start"]


@pytest.fixture
def lb() -> Any:
    with Loopback() as server:
        yield server


def test_trace_steps_are_recorded_as_children_of_the_outer_call(lb: Loopback) -> None:
    serve(lb, frames())
    plain = consume(client(lb, "bedrock-agent-runtime"))
    meter = sm.Meter()
    with meter.session(
        "claims-bot", runtime="bedrock-agents", runtime_session_id="session-001"
    ) as s:
        agent = instrumented(lb, s)
        seen = consume(agent)
    # The caller gets exactly what an uninstrumented client gets.
    assert seen == plain
    outer, *inner, end = events(meter)
    assert end["kind"] == "session_end"
    assert (outer["api"], outer["tag"], outer["parent_id"]) == ("invoke_agent", "stateful", None)
    # The tokens are the inner model calls'; the outer call carries none of them.
    assert (outer["input_tokens"], outer["output_tokens"]) == (0, 0)
    assert outer["attrs"]["statemeter.inner_steps"] == 7
    assert all(e["parent_id"] == outer["id"] for e in inner)
    assert all(e["session_id"] == s.session_id for e in inner)
    got = [
        (
            e["kind"],
            e.get("model") or e.get("tool"),
            e.get("tool_kind"),
            e.get("input_tokens"),
            e.get("output_tokens"),
            e["duration_ns"],
            e["status"],
            e["attrs"]["aws.bedrock.agent.step"],
            e["tag"],
        )
        for e in inner
    ]
    assert got == [
        ("model_call", MODEL, None, 512, 48, 830_000_000, "ok", "pre_processing", "stateless"),
        ("model_call", MODEL, None, 1400, 95, 1_900_000_000, "ok", "orchestration", "stateless"),
        (
            "tool_call",
            "claims",
            "function",
            None,
            None,
            240_000_000,
            "ok",
            "orchestration",
            "stateless",
        ),
        ("model_call", MODEL, None, 1800, 70, 1_500_000_000, "ok", "orchestration", "stateless"),
        (
            "tool_call",
            "knowledge_base",
            "knowledge_base",
            None,
            None,
            310_000_000,
            "ok",
            "orchestration",
            "stateless",
        ),
        ("model_call", MODEL, None, 2400, 120, 2_100_000_000, "ok", "orchestration", "stateless"),
        ("model_call", MODEL, None, 300, 60, 700_000_000, "ok", "post_processing", "stateless"),
    ]
    models = [e for e in inner if e["kind"] == "model_call"]
    # The runtime runs where the outer call went (the loopback host is no known venue).
    assert {(e["provider"], e["api"], e["venue"]) for e in models} == {
        ("aws.bedrock", "invoke_model", outer["venue"])
    }
    assert [x["rule"] for x in models[0]["evidence"]] == ["bedrock-invoke-model-converse"]
    # Each step ends at its trace part's eventTime and lasted its totalTimeMs.
    pre = inner[0]
    assert pre["ts"] + pre["duration_ns"] == 1793613602250000000  # 2026-11-02T10:00:02.25Z
    # The agent and its session are the outer call's (`gen_ai.agent.id`, `request.sessionId`).
    assert pre["attrs"] == {
        "aws.bedrock.agent.step": "pre_processing",
        "aws.bedrock.trace_id": "t-pre-0",
    }
    tool = inner[2]
    assert (tool["effect"], tool["attrs"]["aws.bedrock.action_group.function"]) == (
        "none",
        "get_claim",
    )
    assert tool["attrs"]["gen_ai.tool.call.id"] == "inv-7f3a"
    kb = inner[4]
    assert (kb["effect"], kb["attrs"]["gen_ai.data_source.id"]) == ("read", "KB12345678")
    # Call level: the inner calls are stateless; session level: the runtime session is stateful.
    assert {e["session_tag"] for e in inner} == {"stateful"}
    [row] = meter.ledger.sessions().to_pylist()
    assert (row["runtime"], row["runtime_session_id"], row["model_calls"]) == (
        "bedrock-agents",
        "session-001",
        6,
    )
    assert (row["inner_model_calls"], row["inner_tool_calls"], row["inner_state_ops"]) == (5, 2, 0)
    assert (row["inner_input_tokens"], row["inner_output_tokens"]) == (6412, 393)
    assert meter.stats()["integration_errors"] == {}


def test_content_never_reaches_the_ledger(lb: Loopback, tmp_path: Path) -> None:
    serve(lb, frames())
    path = tmp_path / "audit.db"
    meter = sm.Meter(path)
    with meter.session("claims-bot") as s:
        consume(instrumented(lb, s))
    meter.close()
    assert len(sm.Ledger.open(path).events()) == 10
    for f in [path, *tmp_path.glob("audit.db-*")]:
        assert MARKER not in f.read_bytes()


def test_a_truncated_stream_records_what_it_saw(lb: Loopback) -> None:
    # The stream ends halfway through the frame of the second orchestration output.
    chunks = frames()
    cut = chunks[:3] + [chunks[3][: len(chunks[3]) // 2]]
    serve(lb, cut)
    plain = consume(client(lb, "bedrock-agent-runtime"))
    meter = sm.Meter()
    with meter.session("claims-bot") as s:
        seen = consume(instrumented(lb, s))
    assert seen == plain and len(seen) == 3
    outer, pre, orch, _end = events(meter)
    assert outer["status"] == "ok"
    assert (pre["status"], pre["input_tokens"]) == ("ok", 512)
    # The orchestration model call began but its output never came.
    assert (orch["kind"], orch["model"], orch["status"], orch["input_tokens"]) == (
        "model_call",
        MODEL,
        "error",
        0,
    )
    assert orch["parent_id"] == outer["id"]
    assert meter.stats()["integration_errors"] == {"botocore": 1}


def test_a_corrupt_frame_reaches_the_caller_unchanged(lb: Loopback) -> None:
    chunks = frames()
    bad = bytearray(chunks[3])
    bad[-1] ^= 0xFF  # the message CRC no longer matches
    serve(lb, chunks[:3] + [bytes(bad)] + chunks[4:])
    with pytest.raises(botocore.eventstream.ChecksumMismatch) as plain:
        consume(client(lb, "bedrock-agent-runtime"))
    meter = sm.Meter()
    with meter.session("claims-bot") as s:
        agent = instrumented(lb, s)
        with pytest.raises(botocore.eventstream.ChecksumMismatch) as seen:
            consume(agent)
    assert str(seen.value) == str(plain.value)
    outer, pre, orch, _end = events(meter)
    assert outer["status"] == "error"
    assert (pre["status"], orch["status"], orch["output_tokens"]) == ("ok", "error", 0)
    assert meter.stats()["integration_errors"] == {"botocore": 1}


def test_odd_trace_shapes_are_skipped_and_never_raise(lb: Loopback) -> None:
    base = {"agentId": "A", "sessionId": "s"}
    odd = [
        ["trace", {**base}],
        [
            "trace",
            {**base, "trace": {"orchestrationTrace": {"modelInvocationInput": {"traceId": "x"}}}},
        ],
        [
            "trace",
            {
                **base,
                "trace": {
                    "orchestrationTrace": {
                        "modelInvocationOutput": {
                            "traceId": "x",
                            "metadata": {"usage": {"inputTokens": "many", "outputTokens": -3}},
                        }
                    }
                },
            },
        ],
        # An output with no input before it, and an observation nobody asked for.
        [
            "trace",
            {**base, "trace": {"orchestrationTrace": {"modelInvocationOutput": {"traceId": "y"}}}},
        ],
        [
            "trace",
            {
                **base,
                "trace": {
                    "orchestrationTrace": {"observation": {"traceId": "z", "type": "ASK_USER"}}
                },
            },
        ],
        [
            "trace",
            {
                **base,
                "trace": {"orchestrationTrace": {"invocationInput": {"invocationType": "FINISH"}}},
            },
        ],
        ["chunk", {"bytes": "b2s="}],
    ]
    serve(lb, frames(odd))
    meter = sm.Meter()
    with meter.session("bot") as s:
        seen = consume(instrumented(lb, s))
    assert len(seen) == len(odd)
    outer, first, second, _end = events(meter)
    assert [
        (e["model"], e["status"], e["input_tokens"], e["output_tokens"]) for e in (first, second)
    ] == [
        ("unknown", "ok", 0, 0),
        ("unknown", "ok", 0, 0),
    ]
    assert meter.stats()["integration_errors"] == {}


def test_a_stream_the_caller_closes_marks_open_steps_cancelled(lb: Loopback) -> None:
    serve(lb, frames())
    meter = sm.Meter()
    with meter.session("bot") as s:
        out = invoke(instrumented(lb, s))
        stream = iter(out["completion"])
        for _ in range(3):
            next(stream)
        out["completion"].close()
    outer, pre, orch, _end = events(meter)
    assert (outer["status"], pre["status"], orch["status"]) == ("cancelled", "ok", "cancelled")
    assert meter.stats()["integration_errors"] == {}


# Dropping a response unclosed leaves its socket to the collector (the caller's doing).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_stream_the_caller_drops_part_way_still_records_what_it_saw(lb: Loopback) -> None:
    # Read part way, then dropped without close(): the garbage collector ends the iteration.
    serve(lb, frames())
    meter = sm.Meter()
    with meter.session("bot") as s:
        out = invoke(instrumented(lb, s))
        stream = iter(out["completion"])
        for _ in range(3):
            next(stream)
        del stream, out
        gc.collect()
    outer, pre, orch, _end = events(meter)
    assert (outer["status"], pre["status"], orch["status"]) == ("cancelled", "ok", "cancelled")
    assert (pre["parent_id"], orch["parent_id"]) == (outer["id"], outer["id"])
    assert outer["attrs"]["statemeter.inner_steps"] == 2
    assert meter.stats()["integration_errors"] == {}


# Dropping a response unclosed leaves its socket to the collector (the caller's doing).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_stream_dropped_unread_still_records_the_call(lb: Loopback) -> None:
    serve(lb, frames())
    meter = sm.Meter()
    with meter.session("bot") as s:
        out = invoke(instrumented(lb, s))
        del out
        gc.collect()
    outer, _end = events(meter)
    assert (outer["api"], outer["status"]) == ("invoke_agent", "cancelled")
    assert "statemeter.inner_steps" not in outer["attrs"]


def test_steps_wait_for_room_in_a_full_queue(lb: Loopback) -> None:
    # The steps are queued together when the stream ends; a queue with room for fewer of them
    # takes what fits and the rest wait for the writer, none lost and in order.
    serve(lb, frames())
    roomy = sm.Meter()
    with roomy.session("bot", session_id="s-1") as s:
        consume(instrumented(lb, s))
    tight = sm.Meter(capacity=2)
    with tight.session("bot", session_id="s-1") as s:
        consume(instrumented(lb, s))

    def shape(e: dict[str, Any]) -> tuple[Any, ...]:
        # A step's time is the trace's; the outer call's is the clock's.
        keys = ("kind", "tool", "model", "input_tokens", "status", "ts" if e["parent_id"] else "")
        return tuple(e.get(k) for k in keys)

    want, got = events(roomy), events(tight)
    assert len(got) == len(want) == 9
    assert [shape(e) for e in got] == [shape(e) for e in want]
    assert all(e["parent_id"] == got[0]["id"] for e in got[1:-1])
    assert tight.stats()["written"] == 10 and tight.stats()["pending"] == 0


def test_steps_recorded_into_a_meter_match_those_recorded_into_a_session(lb: Loopback) -> None:
    # A Session takes the steps as events in one call; any other target (here a Meter) gets
    # them as mappings. Both record the same fields.
    serve(lb, frames())
    by_session = sm.Meter()
    with by_session.session("claims-bot") as s:
        consume(instrumented(lb, s))
    by_meter = sm.Meter()
    consume(instrumented(lb, by_meter))
    keys = ("kind", "model", "tool", "tool_kind", "effect", "input_tokens", "output_tokens")
    keys += ("ts", "duration_ns", "status", "attrs", "provider", "api", "venue", "tag")

    def steps(meter: sm.Meter) -> list[tuple[Any, ...]]:
        rows = events(meter)
        outer = rows[0]
        inner = [e for e in rows if e["parent_id"] == outer["id"]]
        assert len(inner) == outer["attrs"]["statemeter.inner_steps"] == 7
        return [tuple(e.get(k) for k in keys) for e in inner]

    assert steps(by_meter) == steps(by_session)
    assert by_meter.stats()["integration_errors"] == {}


@pytest.fixture
def untapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream whose raw bytes cannot be tapped (as when botocore has begun reading them):
    the capture reads botocore's parsed events as they pass instead."""
    monkeypatch.setattr(capture, "_tap", lambda stream: None)


@pytest.mark.parametrize("tapped", [True, False], ids=["raw bytes", "parsed events"])
def test_a_reader_that_fails_never_breaks_the_caller(
    lb: Loopback, monkeypatch: pytest.MonkeyPatch, tapped: bool
) -> None:
    serve(lb, frames())
    plain = consume(client(lb, "bedrock-agent-runtime"))
    meter = sm.Meter()
    if not tapped:
        monkeypatch.setattr(capture, "_tap", lambda stream: None)

    class Failing:
        """A trace reader that raises whenever it is given anything to read."""

        def __init__(self, venue: Any = None) -> None:
            self.errors = self.unfinished = 0

        def observe(self, event: Any) -> bool:
            raise RuntimeError("reader failed")

        def read_stream(self, tap: Any) -> None:
            raise RuntimeError("reader failed")

        def hand_over(self, *args: Any) -> bool:
            return False  # read on this thread, by `read_stream`

        def finish(self, outcome: str) -> int:
            return 0

    monkeypatch.setattr(capture._core, "_AgentTrace", Failing)
    with meter.session("claims-bot") as s:
        agent = instrumented(lb, s)
        seen = consume(agent)
    monkeypatch.undo()
    assert seen == plain
    [outer] = [e for e in events(meter) if e["kind"] == "model_call"]
    assert outer["status"] == "ok"
    # One failure counted per reading: the stream's bytes are read once, when it ends; parsed
    # events one by one.
    assert meter.stats()["integration_errors"] == {"botocore": 1 if tapped else len(plain)}


def _recorded(
    lb: Loopback, chunks: list[bytes], read: int | None = None, durability: str = "batch"
) -> Any:
    """The events recorded for one InvokeAgent stream served as `chunks`: read whole, or the
    first `read` events and then closed; and the integration errors counted. In a batch meter
    the trace is read on the meter's writer thread (handed over when the stream ends); in a
    sync one, on the calling thread."""
    serve(lb, chunks)
    meter = sm.Meter(durability=durability)
    with meter.session("bot", session_id="s-1") as s:
        out = invoke(capture.instrument(client(lb, "bedrock-agent-runtime"), s))
        try:
            if read is None:
                list(out["completion"])
            else:
                stream = iter(out["completion"])
                for _ in range(read):
                    next(stream)
                out["completion"].close()
        except (botocore.exceptions.BotoCoreError, botocore.eventstream.ParserError):
            pass
    rows = events(meter)
    outer = rows[0]
    keys = ("kind", "model", "tool", "tool_kind", "effect", "input_tokens", "output_tokens")
    keys += ("ts", "duration_ns", "status", "attrs", "provider", "api", "venue")
    inner = [e for e in rows if e["parent_id"] == outer["id"]]
    # A step cut off ends when its input came, which differs from run to run.
    steps = [
        tuple(e.get(k) if e["status"] == "ok" or k != "duration_ns" else 0 for k in keys)
        for e in inner
    ]
    assert len(steps) == len(rows) - 2  # all but the outer call and the session's end
    # The outer call whole, but for its id and times.
    call = {k: v for k, v in outer.items() if k not in ("id", "ts", "duration_ns", "seq")}
    stats = meter.stats()
    assert stats["accepted"] == stats["written"] == len(rows) + 1  # and the session's start
    assert stats["pending"] == 0
    return outer["status"], call, steps, stats["integration_errors"]


def _epoch_times(events: list[list[Any]]) -> list[list[Any]]:
    """The fixture's events with their times as epoch seconds (numbers, as AWS sends them):
    fractions that round to the microsecond both ways, and one as a string."""
    out = []
    for i, (kind, payload) in enumerate(json.loads(json.dumps(events))):
        if "eventTime" in payload:
            payload["eventTime"] = 1793613601 + i + [0.2500005, 0.0000015, 0.123456789][i % 3]
            if i == 4:
                payload["eventTime"] = str(payload["eventTime"])
        out.append([kind, payload])
    return out


def _collaborators(events: list[list[Any]]) -> list[list[Any]]:
    """The fixture's events as told by a collaborator agent, one of them through routing."""
    out = []
    for kind, payload in json.loads(json.dumps(events)):
        if kind == "trace":
            payload["collaboratorName"] = "claims-helper"
            payload["agentId"] = "HELPER0001"
            trace = payload["trace"]
            if "orchestrationTrace" in trace and "invocationInput" in trace["orchestrationTrace"]:
                trace["routingClassifierTrace"] = trace.pop("orchestrationTrace")
        out.append([kind, payload])
    return out


@pytest.mark.parametrize(
    "case",
    ["whole", "one chunk", "times as numbers", "collaborator", "truncated", "corrupt", "closed"],
)
def test_the_raw_bytes_record_what_the_parsed_events_record(
    lb: Loopback, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    chunks, read = frames(), None
    if case == "one chunk":
        chunks = [b"".join(chunks)]
    elif case == "times as numbers":
        chunks = frames(_epoch_times(DOC["events"]))
    elif case == "collaborator":
        chunks = frames(_collaborators(DOC["events"]))
    elif case == "truncated":
        chunks = chunks[:3] + [chunks[3][:40]]
    elif case == "corrupt":
        bad = bytearray(chunks[5])
        bad[-1] ^= 0xFF
        chunks = chunks[:5] + [bytes(bad)] + chunks[6:]
    elif case == "closed":
        chunks, read = [b"".join(chunks)], 4
    raw = _recorded(lb, chunks, read)
    # The same bytes read on the calling thread (a meter that writes each event at once).
    assert _recorded(lb, chunks, read, durability="sync") == raw
    monkeypatch.setattr(capture, "_tap", lambda stream: None)
    parsed = _recorded(lb, chunks, read)
    assert raw == parsed
    assert raw[2], "steps were recorded"


def test_steps_without_times_take_the_time_their_bytes_came(lb: Loopback) -> None:
    untimed = json.loads(json.dumps(DOC["events"]))
    for _, payload in untimed:
        payload.pop("eventTime", None)
    before = time.time_ns()
    _status, _attrs, steps, errors = _recorded(lb, frames(untimed))
    after = time.time_ns()
    assert len(steps) == 7 and errors == {}
    for step in steps:
        ts, duration = step[7], step[8]
        assert before <= ts + duration <= after


class _NoOffset(dt.tzinfo):
    """A tzinfo that knows no offset: the time counts as naive (UTC)."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta | None:
        return None

    def dst(self, when: dt.datetime | None) -> dt.timedelta | None:
        return None


@pytest.mark.parametrize(
    "tz",
    [
        None,
        dt.UTC,
        dt.timezone(dt.timedelta(hours=5, minutes=30)),
        dt.timezone(-dt.timedelta(hours=8)),
        dt.timezone(dt.timedelta(seconds=1, microseconds=500)),
        dateutil.tz.tzutc(),
        _NoOffset(),
    ],
)
def test_event_times_are_read_exactly_in_any_zone(tz: dt.tzinfo | None) -> None:
    def part(when: dt.datetime, member: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"traceId": "t-1", **body}
        return {"trace": {"eventTime": when, "trace": {"orchestrationTrace": {member: body}}}}

    start = dt.datetime(2026, 11, 2, 10, 0, 1, 250_001, tzinfo=tz)
    end = dt.datetime(2026, 11, 2, 10, 0, 3, 7, tzinfo=tz)
    trace = capture._core._AgentTrace()
    assert trace.observe(part(start, "modelInvocationInput", {"foundationModel": "m"}))
    assert trace.observe(part(end, "modelInvocationOutput", {}))
    assert trace.finish("complete") == 1
    (step,) = trace.steps()
    offset = (tz.utcoffset(start) if tz else None) or dt.timedelta(0)
    naive = start.replace(tzinfo=None) - offset
    micros = (naive - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    assert step["ts"] == micros * 1000
    assert step["duration_ns"] == 1_750_006_000


class _UtcSubclass(dateutil.tz.tzutc):
    """A subclass of dateutil's UTC that says otherwise: its offset is asked, not assumed."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta | None:
        return dt.timedelta(hours=2)


@pytest.fixture
def local_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The zone of `request.param`: a name of the machine's zone (`TZ`) for a
    `dateutil.tz.tzlocal` (botocore's zone for the times of a trace), or a tzinfo as it is."""
    zone = request.param
    if not isinstance(zone, str):
        yield zone
        return
    if not Path("/usr/share/zoneinfo", zone).exists():
        pytest.skip(f"no zone {zone} on this machine")
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        yield dateutil.tz.tzlocal()
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(1970, 1, 1),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999_999),
        dt.datetime(2000, 2, 29, 12, 0, 0, 1),
        dt.datetime(2026, 7, 1, 9, 30),
        dt.datetime(2100, 3, 1),
        dt.datetime(1700, 3, 1, 0, 0, 0, 1),
        dt.datetime(1678, 1, 1),
        dt.datetime(2262, 4, 11, 20, 47, 16, 854_775),
    ],
)
@pytest.mark.parametrize(
    "local_zone",
    [None, dt.UTC, dateutil.tz.tzutc(), _UtcSubclass(), "UTC", "Asia/Kolkata", "Europe/Berlin"],
    indirect=True,
)
def test_event_times_are_read_exactly_on_any_date(when: dt.datetime, local_zone: Any) -> None:
    when = when.replace(tzinfo=local_zone)
    part = {
        "trace": {
            "eventTime": when,
            "trace": {
                "orchestrationTrace": {
                    "modelInvocationOutput": {
                        "traceId": "t-1",
                        "metadata": {"startTime": when, "totalTimeMs": 0},
                    }
                }
            },
        }
    }
    trace = capture._core._AgentTrace()
    assert trace.observe(part)
    assert trace.finish("complete") == 1
    (step,) = trace.steps()
    aware = when if local_zone else when.replace(tzinfo=dt.UTC)
    micros = (aware - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    assert step["ts"] == micros * 1000


def test_a_stream_the_caller_breaks_out_of_is_recorded_at_once(lb: Loopback) -> None:
    # The caller stops iterating and keeps the stream, neither closed nor dropped: the call is
    # recorded as cancelled when the iteration is dropped, with what was seen.
    serve(lb, frames())
    meter = sm.Meter()
    with meter.session("bot") as s:
        out = invoke(instrumented(lb, s))
        for i, _ in enumerate(out["completion"]):
            if i == 2:
                break
        outer, pre, orch = events(meter)
        assert (outer["status"], pre["status"], orch["status"]) == ("cancelled", "ok", "cancelled")
        # Iterating again goes on where botocore's stream is, recording nothing more.
        assert len(list(out["completion"])) == len(DOC["events"]) - 3
    assert len(events(meter)) == 4
    assert meter.stats()["integration_errors"] == {}


class _Watch:
    """What a tapped stream's events tell the capture."""

    def __init__(self) -> None:
        self.observed: list[Any] = []
        self.finished: list[str] = []

    def observe(self, event: Any) -> None:
        self.observed.append(event)

    def finish(self, outcome: str) -> None:
        self.finished.append(outcome)


def test_the_tap_yields_the_body_and_its_events_unchanged_and_keeps_them() -> None:
    tap = capture._core._StreamTap()
    chunks = [b"ab", bytearray(b"cd"), b"", b"e"]
    assert list(tap.follow(iter(chunks))) == chunks
    assert list(tap) == []
    assert tap.size == 5
    events = [{"trace": {}}, {"chunk": {"bytes": b"x"}}, "other", {"trace": None}]
    watch = _Watch()
    assert list(tap.events(events, watch)) == events
    assert tap.traces == 2
    assert watch.observed == [{"chunk": {"bytes": b"x"}}, "other"]
    assert watch.finished == ["complete"]
    tap.release()
    assert tap.size == 0


def test_the_tap_keeps_nothing_past_a_chunk_that_is_not_bytes() -> None:
    tap = capture._core._StreamTap()
    chunks: list[Any] = [b"ab", "text", b"cd"]
    assert list(tap.follow(chunks)) == chunks
    assert tap.size == 2


def test_the_tap_hands_errors_on_and_ends_the_stream_once() -> None:
    def failing() -> Any:
        yield {"trace": {}}
        raise RuntimeError("checksum")

    tap = capture._core._StreamTap()
    watch = _Watch()
    it = iter(tap.events(failing(), watch))
    assert next(it) == {"trace": {}}
    with pytest.raises(RuntimeError, match="checksum"):
        next(it)
    assert watch.finished == ["error"]
    assert list(it) == []
    del it
    gc.collect()
    assert (watch.finished, tap.traces) == (["error"], 1)

    def body() -> Any:
        yield b"ab"
        raise ConnectionError("reset")

    with pytest.raises(ConnectionError):
        list(capture._core._StreamTap().follow(body()))


def test_the_tap_cancels_an_iteration_dropped_part_way_and_not_one_never_started() -> None:
    tap = capture._core._StreamTap()
    watch = _Watch()
    unstarted = tap.events([{"trace": {}}], watch)
    del unstarted
    gc.collect()
    assert watch.finished == []
    it = tap.events([{"trace": {}}, {"trace": {}}], watch)
    next(it)
    del it
    assert watch.finished == ["cancelled"]
    assert tap.traces == 1
