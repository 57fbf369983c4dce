"""The inner steps of an OpenAI Agents API session, read from its event stream (server-sent
events) through a real `openai` client against a loopback server answering a recorded-shape
fixture (tests/data/runtimes/openai_agents_session.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
import statemeter as sm
from loopback import Loopback, json_answer
from statemeter.integrations import httpx as capture

FIXTURE = Path(__file__).parent / "data" / "runtimes" / "openai_agents_session.json"
DOC = json.loads(FIXTURE.read_text())
SID = DOC["session"]["id"]
MARKER = b"CONTENT-MARKER"
PROVIDERS = {"127.0.0.1": "openai"}


def sse(events: list[dict[str, Any]]) -> list[bytes]:
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def serve(lb: Loopback, chunks: list[bytes]) -> None:
    lb.route("GET", f"/v1/agents/sessions/{SID}/events", (200, "text/event-stream", chunks, {}))
    lb.route("GET", f"/v1/agents/sessions/{SID}", json_answer(DOC["session"]))


@pytest.fixture
def lb() -> Any:
    with Loopback() as server:
        yield server


def client(lb: Loopback) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=lb.base + "/v1", max_retries=0)


def read_turn(c: openai.OpenAI) -> list[str]:
    seen = []
    with c.beta.agents.sessions.events.stream(SID) as stream:
        for event in stream:
            seen.append(event.type)
            if event.type == "agent.session.idle":
                break
    return seen


def recorded(meter: sm.Meter) -> list[dict[str, Any]]:
    meter.flush()
    return [
        e
        for e in meter.ledger.events().to_pylist()
        if e["kind"] not in ("session_start", "session_end")
    ]


def test_turns_and_tool_items_become_children_of_the_events_request(lb: Loopback) -> None:
    serve(lb, sse(DOC["events"]))
    with client(lb) as c:
        plain = read_turn(c)
    meter = sm.Meter()
    with meter.session("support", runtime="openai-agents", runtime_session_id=SID) as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            c.beta.agents.sessions.retrieve(SID)
            seen = read_turn(c)
    assert seen == plain == [e["type"] for e in DOC["events"]]
    retrieve, outer, *inner = recorded(meter)
    assert retrieve["api"] == "agents.sessions" and retrieve["parent_id"] is None
    assert (outer["api"], outer["status"], outer["tag"]) == (
        "agents.sessions.events",
        "ok",
        "stateful",
    )
    assert outer["attrs"]["statemeter.inner_steps"] == 6
    assert all(e["parent_id"] == outer["id"] and e["session_id"] == s.session_id for e in inner)
    got = [
        (
            e["kind"],
            e.get("model") or e.get("tool"),
            e.get("tool_kind"),
            e.get("input_tokens"),
            e.get("cached_tokens"),
            e.get("output_tokens"),
            e["status"],
            e["tag"],
        )
        for e in inner
    ]
    assert got == [
        ("tool_call", "lookup_order", "function", None, None, None, "ok", "stateless"),
        ("tool_call", "search_issues", "mcp", None, None, None, "ok", "stateless"),
        ("tool_call", "command_execution", "shell", None, None, None, "error", "stateless"),
        ("tool_call", "create_subagent_call", "agent", None, None, None, "ok", "stateless"),
        ("model_call", "gpt-5.4", None, 2100, 0, 400, "ok", "stateless"),
        ("model_call", "gpt-5.4", None, 8200, 6144, 950, "ok", "stateless"),
    ]
    sub, main = inner[4], inner[5]
    assert (main["provider"], main["api"]) == ("openai", "agents.turn")
    assert (main["ts"], main["duration_ns"]) == (1793613601 * 10**9, 11 * 10**9)
    assert main["attrs"] == {
        "gen_ai.conversation.id": SID,
        "openai.agents.turn_id": "turn_01",
        "gen_ai.agent.id": "agent_01",
        "gen_ai.usage.reasoning.output_tokens": 512,
    }
    assert sub["attrs"]["openai.agents.subagent_id"] == "sub_01"
    assert inner[2]["duration_ns"] == 1_200_000_000
    assert inner[0]["attrs"]["gen_ai.tool.call.id"] == "call_01"
    assert inner[1]["attrs"]["mcp_server"] == "github"
    assert {e["session_tag"] for e in inner} == {"stateful"}
    assert meter.stats()["integration_errors"] == {}


def test_content_never_reaches_the_ledger(lb: Loopback, tmp_path: Path) -> None:
    serve(lb, sse(DOC["events"]))
    path = tmp_path / "audit.db"
    meter = sm.Meter(path)
    with meter.session("support") as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            c.beta.agents.sessions.retrieve(SID)
            read_turn(c)
    meter.close()
    assert len(sm.Ledger.open(path).events()) == 2 + 2 + 6
    for f in [path, *tmp_path.glob("audit.db-*")]:
        assert MARKER not in f.read_bytes()


def test_a_cut_off_stream_records_what_it_saw_and_counts_the_error(lb: Loopback) -> None:
    chunks = sse(DOC["events"])
    serve(lb, chunks[:5] + [chunks[5][:60]])
    meter = sm.Meter()
    with meter.session("support") as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            seen = read_turn(c)
    assert len(seen) == 5
    outer, *inner = recorded(meter)
    assert [(e["kind"], e.get("tool")) for e in inner] == [
        ("tool_call", "lookup_order"),
        ("tool_call", "search_issues"),
    ]
    assert all(e["parent_id"] == outer["id"] for e in inner)
    assert meter.stats()["integration_errors"] == {"httpx": 1}


def test_session_and_turn_usage_is_counted_once(lb: Loopback) -> None:
    """The session object's `usage` (a running total) and the turn events' (the turns the inner
    steps report) are not the requests' own: retrieving the session and following its stream add
    no tokens, so a session's totals are the inner model calls'."""
    serve(lb, sse(DOC["events"]))
    turns = [e["usage"] for e in DOC["events"] if e.get("usage")]
    total = {
        "input_tokens": sum(u["input_tokens"] for u in turns),
        "output_tokens": sum(u["output_tokens"] for u in turns),
        "input_tokens_details": {
            "cached_tokens": sum(u["input_tokens_details"]["cached_tokens"] for u in turns)
        },
    }
    lb.route("GET", f"/v1/agents/sessions/{SID}", json_answer(dict(DOC["session"], usage=total)))
    meter = sm.Meter()
    with meter.session("support") as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            c.beta.agents.sessions.retrieve(SID)
            read_turn(c)
            c.beta.agents.sessions.retrieve(SID)
    events = recorded(meter)
    outer = [e for e in events if (e.get("api") or "").startswith("agents.sessions")]
    assert [e["api"] for e in outer] == [
        "agents.sessions",
        "agents.sessions.events",
        "agents.sessions",
    ]
    assert [(e["input_tokens"], e["output_tokens"], e["cached_tokens"]) for e in outer] == [
        (0, 0, 0)
    ] * len(outer)
    calls = [e for e in events if e["kind"] == "model_call"]
    assert sum(e["input_tokens"] or 0 for e in calls) == total["input_tokens"] == 10300
    assert sum(e["output_tokens"] or 0 for e in calls) == total["output_tokens"] == 1350
    assert sum(e["cached_tokens"] or 0 for e in calls) == 6144
