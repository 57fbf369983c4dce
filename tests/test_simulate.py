"""statemeter.simulate.fleet: deterministic, realistic, through the public Meter API."""

from __future__ import annotations

import collections
import datetime as dt

import pytest
import statemeter as sm
from statemeter import simulate


@pytest.fixture(scope="module")
def fleet():
    return simulate.fleet(days=14, agents=12, seed=7, sessions_per_agent_day=8)


def test_same_seed_same_events_other_seed_other_events():
    a = simulate.fleet(days=2, agents=6, seed=11, sessions_per_agent_day=4)
    b = simulate.fleet(days=2, agents=6, seed=11, sessions_per_agent_day=4)
    c = simulate.fleet(days=2, agents=6, seed=12, sessions_per_agent_day=4)
    rows_a, rows_b = a.ledger.events().to_pylist(), b.ledger.events().to_pylist()
    assert rows_a == rows_b and len(rows_a) == a.events > 0
    assert a.ledger.head() == b.ledger.head()  # byte-identical chains
    assert [r["id"] for r in c.ledger.events().to_pylist()] != [r["id"] for r in rows_a]


def test_a_fleet_appends_to_a_given_meter(tmp_path):
    meter = sm.Meter(tmp_path / "l.db")
    first = simulate.fleet(days=1, agents=2, seed=1, meter=meter, sessions_per_agent_day=2)
    second = simulate.fleet(
        days=1, agents=2, seed=1, meter=meter, start="2026-02-01", sessions_per_agent_day=2
    )
    assert len(meter.ledger) == first.events + second.events
    assert meter.ledger.verify().ok
    meter.close()


def test_the_workload_covers_the_fleet_patterns(fleet):
    events = fleet.ledger.events()
    rows = events.to_pylist()
    calls = [r for r in rows if r["kind"] == "model_call"]
    tools = [r for r in rows if r["kind"] == "tool_call"]
    states = [r for r in rows if r["kind"] == "state_op"]
    assert {a.archetype for a in fleet.agents} == set(simulate.ARCHETYPES)
    assert {r["tenant"] for r in rows} == {"acme", "globex", "initech"}
    assert {r["model"] for r in calls} >= {"gpt-5", "gpt-5-mini", "anthropic.claude-sonnet-4-5"}
    # Stateless chat completions on Azure; a few fall back to OpenAI direct.
    chat = [r for r in calls if r["api"] == "chat.completions" and r["venue"] == "azure"]
    assert chat and all(r["tag"] == "stateless" for r in chat)
    fallback = [r for r in calls if r["attrs"].get("fallback") == "throttled"]
    assert fallback and all(r["venue"] == "openai" for r in fallback)
    # Responses chains: previous_response_id and conversations are stateful.
    chained = [r for r in calls if (r["request"] or {}).get("previous_response_id")]
    conv = [r for r in calls if (r["request"] or {}).get("conversation")]
    assert chained and conv and all(r["tag"] == "stateful" for r in chained + conv)
    # AgentCore runtime sessions: stateless model calls inside a stateful session.
    runtime = [r for r in calls if r["agent"].startswith("claims-runtime")]
    assert runtime and all(r["session_tag"] == "stateful" for r in runtime)
    assert any(r["tag"] == "stateless" and r["provider"] == "openai" for r in runtime)
    sessions = fleet.ledger.sessions().to_pylist()
    assert {s["runtime"] for s in sessions} == {None, "agentcore", "foundry"}
    assert all(s["runtime_session_id"] for s in sessions if s["runtime"])
    # Memory held by the provider and by the client; MCP sessions; tool errors.
    assert {(s["store"], s["holder"]) for s in states} == {
        ("agentcore-memory", "provider"),
        ("foundry-memory", "provider"),
        ("sqlite-checkpointer", "client"),
    }
    assert any(t["mcp_session_id"] and t["tag"] == "stateful" for t in tools)
    assert any(t["status"] == "error" for t in tools)
    triage = [s for s in sessions if s["agent"].startswith("triage-graph")]
    assert triage and all(s["session_tag"] == "stateless" for s in triage)  # client-held
    assert fleet.ledger.verify().ok


def test_timestamps_follow_the_calendar(fleet):
    sessions = fleet.ledger.sessions().to_pylist()
    assert all(fleet.start <= s["start"] < fleet.end for s in sessions)
    assert all(s["end"] is not None and s["end"] >= s["start"] for s in sessions)
    per_weekday = collections.Counter(
        dt.datetime.fromtimestamp(s["start"] / 1e9, dt.UTC).weekday() for s in sessions
    )
    weekday = sum(per_weekday[d] for d in range(5)) / 5
    weekend = (per_weekday[5] + per_weekday[6]) / 2
    assert weekend < 0.5 * weekday  # weekly seasonality
    hours = collections.Counter(
        dt.datetime.fromtimestamp(s["start"] / 1e9, dt.UTC).hour for s in sessions
    )
    assert sum(hours[h] for h in range(8, 19)) > 0.7 * len(sessions)  # business hours
    events = fleet.ledger.events()
    for s in sessions[:50]:
        ts = [e.ts for e in events.filter(session_id=s["session_id"])]
        assert ts == sorted(ts) and ts[0] == s["start"]


def test_volume_follows_the_knob():
    small = simulate.fleet(days=7, agents=6, seed=0, sessions_per_agent_day=10)
    expected = simulate.estimate_events(7, 6, 10)
    assert abs(small.events - expected) < 0.15 * expected
    assert simulate.estimate_events(30, 12, 360) == pytest.approx(1_000_000, rel=0.02)
    assert "sessions" in repr(small) and small.sessions == len(small.ledger.sessions())
    assert sum(small.by_archetype.values()) == small.sessions


def test_bad_arguments_raise_validation_errors():
    for kwargs in (
        {"days": 0},
        {"agents": -1},
        {"days": 1.5},
        {"seed": "x"},
        {"sessions_per_agent_day": -1},
        {"tenants": ()},
    ):
        with pytest.raises(sm.ValidationError) as info:
            simulate.fleet(**kwargs)
        assert info.value.field == next(iter(kwargs))
