"""The inner steps of a Claude Managed Agents session, read from its session event stream
(server-sent events) and its events list, through a real `anthropic` client against a loopback
server answering a recorded-shape fixture
(tests/data/runtimes/claude_managed_agents_session.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
import statemeter as sm
from loopback import Loopback, json_answer
from statemeter.integrations import httpx as capture

FIXTURE = Path(__file__).parent / "data" / "runtimes" / "claude_managed_agents_session.json"
DOC = json.loads(FIXTURE.read_text())
SID = DOC["session"]["id"]
MARKER = b"CONTENT-MARKER"
PROVIDERS = {"127.0.0.1": "anthropic"}


def sse(events: list[dict[str, Any]]) -> list[bytes]:
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def serve(lb: Loopback, chunks: list[bytes]) -> None:
    lb.route("GET", f"/v1/sessions/{SID}/events/stream", (200, "text/event-stream", chunks, {}))
    lb.route("POST", "/v1/sessions", json_answer(DOC["session"]))
    lb.route(
        "GET", f"/v1/sessions/{SID}/events", json_answer({"data": DOC["events"], "next_page": None})
    )


@pytest.fixture
def lb() -> Any:
    with Loopback() as server:
        yield server


def client(lb: Loopback) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=lb.base, max_retries=0)


def read_turn(c: anthropic.Anthropic) -> list[str]:
    """What an application does: follow the stream until the session goes idle."""
    seen = []
    with c.beta.sessions.events.stream(SID) as stream:
        for event in stream:
            seen.append(event.type)
            if event.type == "session.status_idle":
                break
    return seen


def recorded(meter: sm.Meter) -> list[dict[str, Any]]:
    meter.flush()
    return [
        e
        for e in meter.ledger.events().to_pylist()
        if e["kind"] not in ("session_start", "session_end")
    ]


def test_session_events_become_children_of_the_stream_call(lb: Loopback) -> None:
    serve(lb, sse(DOC["events"]))
    with client(lb) as plain_client:
        plain = read_turn(plain_client)
    meter = sm.Meter()
    with meter.session("support", runtime="claude-managed-agents", runtime_session_id=SID) as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            c.beta.sessions.create(agent="agent_01", environment_id="env_01")
            seen = read_turn(c)
    assert seen == plain == [e["type"] for e in DOC["events"]]
    create, outer, *inner = recorded(meter)
    assert (create["api"], create["parent_id"]) == ("sessions", None)
    assert (outer["api"], outer["status"]) == ("sessions", "ok")
    assert outer["endpoint"].endswith(f"/v1/sessions/{SID}/events/stream")
    assert [x["rule"] for x in outer["evidence"]] == ["anthropic-sessions-read"]
    assert outer["attrs"]["statemeter.inner_steps"] == 6
    assert all(e["parent_id"] == outer["id"] and e["session_id"] == s.session_id for e in inner)
    got = [
        (
            e["kind"],
            e.get("model") or e.get("tool") or e.get("store"),
            e.get("tool_kind") or e.get("op"),
            e.get("input_tokens"),
            e.get("cached_tokens"),
            e.get("output_tokens"),
            e["duration_ns"],
            e.get("status"),
            e["tag"],
        )
        for e in inner
    ]
    assert got == [
        (
            "model_call",
            "claude-sonnet-4-6",
            None,
            10600,
            9000,
            180,
            3_000_000_000,
            "ok",
            "stateless",
        ),
        ("tool_call", "bash", "shell", None, None, None, 2_000_000_000, "ok", "stateless"),
        ("state_op", "memory_store", "read", None, None, None, 1_000_000_000, None, "stateful"),
        (
            "model_call",
            "claude-sonnet-4-6",
            None,
            10900,
            10600,
            90,
            2_000_000_000,
            "ok",
            "stateless",
        ),
        (
            "tool_call",
            "search_issues",
            "mcp",
            None,
            None,
            None,
            2_000_000_000,
            "error",
            "stateless",
        ),
        (
            "model_call",
            "claude-sonnet-4-6",
            None,
            11150,
            11000,
            240,
            3_000_000_000,
            "ok",
            "stateless",
        ),
    ]
    first = inner[0]
    assert first["provider"] == "anthropic" and first["api"] == "messages"
    assert first["ts"] == 1793613601500000000  # the span.model_request_start's processed_at
    assert first["attrs"]["gen_ai.usage.cache_creation.input_tokens"] == 400
    assert first["attrs"]["gen_ai.conversation.id"] == SID
    assert inner[2]["holder"] == "provider" and inner[2]["scope"] == "user"
    assert inner[4]["attrs"]["mcp_server"] == "github"
    assert {e["session_tag"] for e in inner} == {"stateful"}
    assert meter.stats()["integration_errors"] == {}


def test_the_events_list_gives_the_same_steps(lb: Loopback) -> None:
    serve(lb, sse(DOC["events"]))
    meter = sm.Meter()
    with meter.session("support") as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            page = c.beta.sessions.events.list(SID)
            assert len(page.data) == len(DOC["events"])
    outer, *inner = recorded(meter)
    assert [(e["kind"], e.get("input_tokens")) for e in inner] == [
        ("model_call", 10600),
        ("tool_call", None),
        ("state_op", None),
        ("model_call", 10900),
        ("tool_call", None),
        ("model_call", 11150),
    ]
    # No session object seen by this client: the model is not named in the events.
    assert {e["model"] for e in inner if e["kind"] == "model_call"} == {"unknown"}
    assert all(e["parent_id"] == outer["id"] for e in inner)


def test_content_never_reaches_the_ledger(lb: Loopback, tmp_path: Path) -> None:
    serve(lb, sse(DOC["events"]))
    path = tmp_path / "audit.db"
    meter = sm.Meter(path)
    with meter.session("support") as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            c.beta.sessions.create(agent="agent_01", environment_id="env_01")
            read_turn(c)
            c.beta.sessions.events.list(SID)
    meter.close()
    assert len(sm.Ledger.open(path).events()) == 2 + 3 + 6 + 6
    for f in [path, *tmp_path.glob("audit.db-*")]:
        assert MARKER not in f.read_bytes()


def test_a_cut_off_stream_records_what_it_saw_and_counts_the_error(lb: Loopback) -> None:
    chunks = sse(DOC["events"])
    # The stream ends inside the second model request's end event.
    serve(lb, chunks[:11] + [chunks[11][:40]])
    meter = sm.Meter()
    with meter.session("support") as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            seen = read_turn(c)
    assert len(seen) == 11
    outer, *inner = recorded(meter)
    assert [(e["kind"], e.get("status")) for e in inner] == [
        ("model_call", "ok"),
        ("tool_call", "ok"),
        ("state_op", None),
        ("model_call", "error"),
    ]
    assert inner[-1]["ts"] == 1793613610500000000 and inner[-1]["input_tokens"] == 0
    # One cut-off event, one model request that never ended.
    assert meter.stats()["integration_errors"] == {"httpx": 1}


def test_malformed_events_are_skipped_and_never_reach_the_caller(lb: Loopback) -> None:
    chunks = sse(DOC["events"][:6])
    bad = [
        b"event: span.model_request_end\ndata: {not json\n\n",
        b"event: agent.tool_use\ndata: [1, 2]\n\n",
    ]
    serve(lb, chunks[:3] + bad + chunks[3:] + sse(DOC["events"][-1:]))
    meter = sm.Meter()
    with meter.session("support") as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            with pytest.raises(Exception) as info, c.beta.sessions.events.stream(SID) as stream:
                for _ in stream:
                    pass
    # The SDK itself fails on the malformed event; the capture adds nothing to that.
    assert "Expecting" in str(info.value) or "JSON" in type(info.value).__name__
    outer, *inner = recorded(meter)
    assert outer["status"] == "cancelled"
    assert [e["kind"] for e in inner] == ["model_call"]
    assert meter.stats()["integration_errors"] == {"httpx": 1}


def test_a_session_objects_running_usage_is_not_counted_again(lb: Loopback) -> None:
    """The session object's `usage` is the running total of the steps its stream reports:
    creating and retrieving the session adds no tokens, so a session's totals are the inner
    model calls' own."""
    serve(lb, sse(DOC["events"]))
    ends = [e["model_usage"] for e in DOC["events"] if e["type"] == "span.model_request_end"]
    total = {
        k: sum(u.get(k, 0) for u in ends)
        for k in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        )
    }
    assert total["input_tokens"] > 0 and total["output_tokens"] > 0
    after = dict(DOC["session"], usage=total)
    lb.route("POST", "/v1/sessions", json_answer(after))
    lb.route("GET", f"/v1/sessions/{SID}", json_answer(after))
    meter = sm.Meter()
    with meter.session("support") as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            c.beta.sessions.create(agent="agent_01", environment_id="env_01")
            read_turn(c)
            c.beta.sessions.retrieve(SID)
            c.beta.sessions.retrieve(SID)
    events = recorded(meter)
    sessions = [e for e in events if e.get("api") == "sessions"]
    assert len(sessions) == 4
    assert [(e["input_tokens"], e["output_tokens"], e["cached_tokens"]) for e in sessions] == [
        (0, 0, 0)
    ] * len(sessions)
    inner = [e for e in events if e["kind"] == "model_call" and e.get("api") == "messages"]
    assert [e["output_tokens"] for e in inner] == [180, 90, 240]
    calls = [e for e in events if e["kind"] == "model_call"]
    assert sum(e["input_tokens"] or 0 for e in calls) == (
        total["input_tokens"]
        + total["cache_read_input_tokens"]
        + total["cache_creation_input_tokens"]
    )
    assert sum(e["output_tokens"] or 0 for e in calls) == total["output_tokens"] == 510
    assert sum(e["cached_tokens"] or 0 for e in calls) == total["cache_read_input_tokens"]
