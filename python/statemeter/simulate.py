"""A deterministic, realistic workload of an enterprise agent fleet, recorded through the
public ``Meter`` API (sessions, ``model_call``/``tool_call``/``state_op`` with explicit ``ts``
and ids), for demos, notebooks, tests and benchmarks.

    import statemeter as sm
    fleet = sm.simulate.fleet(days=30, agents=12, seed=0, path="fleet.db")
    fleet.ledger.report(contract="examples/contracts/model-access-2025.toml")

The fleet
---------
Agents are assigned, in turn, one of six archetypes (agent ``i`` gets archetype
``i % 6``) and one of the ``tenants`` (``i % len(tenants)``):

============================  =================================================================
archetype (agent name)        what a session does
============================  =================================================================
``support-chat``              Chat Completions (``openai`` gpt-5/gpt-5-mini) at ``azure``; 2-8
                              turns, the context resent each turn (input grows, prompt cache
                              hits as ``cached_tokens``); a ``search_docs`` read tool on ~40% of
                              turns; ~6% of sessions use an MCP tool with an ``Mcp-Session-Id``;
                              ~4% of calls fall back to ``openai`` direct when Azure throttles
                              (``attrs.fallback``) -- stateless calls served off Azure.
``research-responses``        Responses chains at ``openai``: the first turn stores (default
                              ``store``), later turns send ``previous_response_id`` (30% of
                              sessions a ``conversation`` instead); ``web_search`` and an MCP
                              ``fetch_page`` with a session; ~5% tool errors.
``claims-runtime``            AWS AgentCore runtime sessions (``runtime="agentcore"``,
                              ``runtime_session_id``) at ``aws``: Bedrock ``converse`` calls and
                              ~25% ``openai`` gpt-5 Chat Completions calls served at ``aws`` --
                              stateless calls inside a stateful runtime, the case on which call-
                              and session-level readings of a contract disagree; provider-held
                              memory read at start and written at the end.
``triage-graph``              A LangGraph-style agent on ``azure`` (``openai`` gpt-5-mini Chat
                              Completions) keeping its state in a client-held checkpointer
                              (``state_op`` read/write, ``holder="client"``).
``coding-container``          Responses with a reused code-interpreter ``container`` at
                              ``openai`` (stateful calls), ``code_interpreter`` tool calls.
``foundry-ops``               Azure AI Foundry runtime sessions (``runtime="foundry"``) at
                              ``azure``: ``azure.ai.openai`` gpt-5 Chat Completions, provider-held
                              memory.
============================  =================================================================

Volume and seasonality
----------------------
``sessions_per_agent_day`` (default 24) is the mean number of sessions an agent starts on a
weekday; Saturdays see 35% of that and Sundays 25%, with a 0.5%/day growth trend and Poisson
noise. Sessions start in business hours (a bimodal 08:00-19:00 UTC profile with a long tail).
A session records 5.5 (``foundry-ops``) to 11 (``triage-graph``) events on average, about 8.9
over the six archetypes, so an agent records about ``8.9 * sessions_per_agent_day`` events per
weekday (about 210 by default) and the default 30-day, 12-agent fleet about 68,000 events.
Volume is linear in ``days * agents * sessions_per_agent_day``: one million events are
``days=30, agents=12, sessions_per_agent_day=360``; ten million e.g. ``days=30, agents=120,
sessions_per_agent_day=360`` (:func:`estimate_events` gives the expected count for any knobs;
``benches/bench_arrow.py`` recorded one million in 12 s on an idle 2-core machine and 40 s on a
busy one, release build, so ten million take two to seven minutes).

Determinism
-----------
Same arguments, same events: every random draw comes from a ``random.Random`` seeded with
``(seed, agent, day)``, every ``ts`` is explicit (from ``start``, default 2026-01-05 UTC), and
every id (events, sessions, runtime sessions, response ids) is derived from the seed (UUIDv7
layout: the event's millisecond time, then seeded random bits). Sessions of a day are recorded
in start-time order.
"""

from __future__ import annotations

import datetime as _dt
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ARCHETYPES", "Fleet", "estimate_events", "fleet"]

#: The archetypes, in the order agents are assigned them.
ARCHETYPES = (
    "support-chat",
    "research-responses",
    "claims-runtime",
    "triage-graph",
    "coding-container",
    "foundry-ops",
)

#: Mean events per session of each archetype (measured over 20,479 sessions, seed 0).
_EVENTS_PER_SESSION = {
    "support-chat": 9.06,
    "research-responses": 10.36,
    "claims-runtime": 10.40,
    "triage-graph": 10.96,
    "coding-container": 6.96,
    "foundry-ops": 5.51,
}

_NS = 1_000_000_000
_DAY = 86_400 * _NS
_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 1.0, 0.35, 0.25)
# Relative weight of each UTC hour for a session start (two peaks, long tail).
_HOURS = (1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 17, 14, 10, 13, 16, 17, 14, 10, 6, 4, 3, 2, 1, 1)


@dataclass(frozen=True)
class Agent:
    """One simulated agent."""

    name: str
    archetype: str
    tenant: str


@dataclass
class Fleet:
    """What :func:`fleet` recorded."""

    meter: Any
    agents: list[Agent]
    days: int
    seed: int
    #: First and last day (UTC midnight, int ns; ``end`` is exclusive).
    start: int
    end: int
    events: int = 0
    sessions: int = 0
    by_archetype: dict[str, int] = field(default_factory=dict)

    @property
    def ledger(self) -> Any:
        return self.meter.ledger

    def __repr__(self) -> str:
        first = _dt.datetime.fromtimestamp(self.start / _NS, _dt.UTC).date()
        return (
            f"Fleet({len(self.agents)} agents, {self.days} days from {first}, seed={self.seed}: "
            f"{self.sessions:,} sessions, {self.events:,} events)"
        )


def _instant(start: str | int | _dt.date) -> int:
    if isinstance(start, int):
        return start - start % _DAY
    if isinstance(start, str):
        start = _dt.date.fromisoformat(start)
    if isinstance(start, _dt.datetime):
        start = start.date()
    return (start - _dt.date(1970, 1, 1)).days * _DAY


def _agents(n: int, tenants: Sequence[str]) -> list[Agent]:
    out = []
    for i in range(n):
        arch = ARCHETYPES[i % len(ARCHETYPES)]
        number = i // len(ARCHETYPES) + 1
        out.append(Agent(f"{arch}-{number:02d}", arch, tenants[i % len(tenants)]))
    return out


def _day_factor(start_ns: int, day: int) -> float:
    weekday = _dt.datetime.fromtimestamp((start_ns + day * _DAY) / _NS, _dt.UTC).weekday()
    return _WEEKDAY[weekday] * (1.005**day)


def estimate_events(
    days: int = 30,
    agents: int = 12,
    sessions_per_agent_day: float = 24,
    start: str | int | _dt.date = "2026-01-05",
) -> int:
    """The expected number of events :func:`fleet` records for these knobs."""
    start_ns = _instant(start)
    total = 0.0
    for i in range(agents):
        per = _EVENTS_PER_SESSION[ARCHETYPES[i % len(ARCHETYPES)]]
        total += sum(sessions_per_agent_day * _day_factor(start_ns, d) for d in range(days)) * per
    return round(total)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:  # normal approximation keeps big knobs fast
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class _Ids:
    """UUIDv7-shaped ids from the event time and seeded random bits."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __call__(self, ts: int) -> str:
        ms = (ts // 1_000_000) & ((1 << 48) - 1)
        r = self.rng.getrandbits(74)
        hi = (ms << 16) | 0x7000 | (r >> 62)
        lo = (0b10 << 62) | (r & ((1 << 62) - 1))
        h = f"{hi:016x}{lo:016x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def token(self, prefix: str) -> str:
        return f"{prefix}_{self.rng.getrandbits(64):016x}"


class _Clock:
    def __init__(self, ts: int) -> None:
        self.ts = ts

    def advance(self, rng: random.Random, lo_ms: float, hi_ms: float) -> int:
        self.ts += int(rng.uniform(lo_ms, hi_ms) * 1_000_000)
        return self.ts


def _latency(rng: random.Random, output_tokens: int) -> int:
    return int((0.25 + output_tokens / rng.uniform(60, 140)) * _NS)


def _call(s: Any, clock: _Clock, ids: _Ids, rng: random.Random, **kw: Any) -> Any:
    out = kw.get("output_tokens", 0)
    ts = clock.ts
    dur = _latency(rng, out)
    clock.ts += dur
    return s.model_call(ts=ts, id=ids(ts), duration_ns=dur, **kw)


def _tool(s: Any, clock: _Clock, ids: _Ids, rng: random.Random, tool: str, **kw: Any) -> Any:
    ts = clock.ts
    dur = int(rng.uniform(20, 1500) * 1_000_000)
    clock.ts += dur
    return s.tool_call(tool, ts=ts, id=ids(ts), duration_ns=dur, **kw)


def _state(s: Any, clock: _Clock, ids: _Ids, rng: random.Random, op: str, **kw: Any) -> Any:
    ts = clock.ts
    dur = int(rng.uniform(2, 40) * 1_000_000)
    clock.ts += dur
    return s.state_op(op, ts=ts, id=ids(ts), duration_ns=dur, **kw)


def _support_chat(s: Any, c: _Clock, ids: _Ids, rng: random.Random) -> None:
    model = "gpt-5" if rng.random() < 0.6 else "gpt-5-mini"
    mcp = f"mcp-{ids.rng.getrandbits(48):012x}" if rng.random() < 0.06 else None
    context = rng.randint(600, 1800)
    for turn in range(rng.randint(2, 8)):
        if rng.random() < 0.4:
            _tool(s, c, ids, rng, "search_docs", effect="read")
        if mcp and turn == 1:
            _tool(s, c, ids, rng, "crm_lookup", tool_kind="mcp", mcp_session_id=mcp, effect="read")
        out = rng.randint(80, 600)
        fallback = rng.random() < 0.04
        cached = int(context * rng.uniform(0.5, 0.9)) if turn else 0
        _call(
            s,
            c,
            ids,
            rng,
            provider="openai",
            model=model,
            api="chat.completions",
            venue="openai" if fallback else None,
            input_tokens=context,
            output_tokens=out,
            cached_tokens=cached,
            attrs={"fallback": "throttled"} if fallback else None,
        )
        context += out + rng.randint(20, 300)
        c.advance(rng, 2_000, 45_000)


def _research(s: Any, c: _Clock, ids: _Ids, rng: random.Random) -> None:
    conversation = ids.token("conv") if rng.random() < 0.3 else None
    mcp = f"mcp-{ids.rng.getrandbits(48):012x}"
    previous = None
    for turn in range(rng.randint(2, 7)):
        request: dict[str, Any] | None
        if conversation:
            request = {"conversation": conversation}
        elif previous:
            request = {"previous_response_id": previous}
        else:
            request = None
        out = rng.randint(150, 1200)
        _call(
            s,
            c,
            ids,
            rng,
            provider="openai",
            model="gpt-5",
            api="responses",
            request=request,
            input_tokens=rng.randint(200, 900) if turn else 2400,
            output_tokens=out,
        )
        previous = ids.token("resp")
        if rng.random() < 0.5:
            _tool(
                s,
                c,
                ids,
                rng,
                "web_search",
                effect="read",
                status="error" if rng.random() < 0.05 else "ok",
            )
        if rng.random() < 0.35:
            _tool(
                s,
                c,
                ids,
                rng,
                "fetch_page",
                tool_kind="mcp",
                mcp_session_id=mcp,
                effect="read",
                status="error" if rng.random() < 0.05 else "ok",
            )
        c.advance(rng, 5_000, 90_000)


def _claims(s: Any, c: _Clock, ids: _Ids, rng: random.Random) -> None:
    user = f"claimant-{rng.randint(1, 5000)}"
    _state(
        s,
        c,
        ids,
        rng,
        "read",
        store="agentcore-memory",
        holder="provider",
        scope="user",
        key=user,
        bytes=rng.randint(200, 4000),
    )
    for _ in range(rng.randint(2, 6)):
        if rng.random() < 0.25:
            _call(
                s,
                c,
                ids,
                rng,
                provider="openai",
                model="gpt-5",
                api="chat.completions",
                input_tokens=rng.randint(1500, 6000),
                output_tokens=rng.randint(100, 500),
            )
        else:
            _call(
                s,
                c,
                ids,
                rng,
                provider="aws.bedrock",
                model="anthropic.claude-sonnet-4-5",
                api="converse",
                input_tokens=rng.randint(1500, 6000),
                output_tokens=rng.randint(100, 700),
            )
        if rng.random() < 0.6:
            _tool(
                s,
                c,
                ids,
                rng,
                "policy_lookup",
                effect="read",
                status="error" if rng.random() < 0.03 else "ok",
            )
        c.advance(rng, 1_000, 20_000)
    _state(
        s,
        c,
        ids,
        rng,
        "write",
        store="agentcore-memory",
        holder="provider",
        scope="user",
        key=user,
        bytes=rng.randint(500, 8000),
    )


def _triage(s: Any, c: _Clock, ids: _Ids, rng: random.Random) -> None:
    thread = f"thread-{rng.randint(1, 20000)}"
    for _ in range(rng.randint(2, 4)):
        _state(s, c, ids, rng, "read", store="sqlite-checkpointer", holder="client", key=thread)
        _call(
            s,
            c,
            ids,
            rng,
            provider="openai",
            model="gpt-5-mini",
            api="chat.completions",
            input_tokens=rng.randint(300, 1500),
            output_tokens=rng.randint(30, 250),
        )
        _state(
            s,
            c,
            ids,
            rng,
            "write",
            store="sqlite-checkpointer",
            holder="client",
            key=thread,
            bytes=rng.randint(1000, 12000),
        )
        c.advance(rng, 500, 8_000)


def _coding(s: Any, c: _Clock, ids: _Ids, rng: random.Random) -> None:
    container = ids.token("cntr")
    for turn in range(rng.randint(1, 4)):
        _call(
            s,
            c,
            ids,
            rng,
            provider="openai",
            model="gpt-5",
            api="responses",
            request={"container": container} if turn else {"store": False},
            input_tokens=rng.randint(800, 4000),
            output_tokens=rng.randint(200, 1500),
        )
        _tool(
            s,
            c,
            ids,
            rng,
            "python",
            tool_kind="code_interpreter",
            effect="write",
            status="error" if rng.random() < 0.08 else "ok",
        )
        c.advance(rng, 3_000, 30_000)


def _foundry(s: Any, c: _Clock, ids: _Ids, rng: random.Random) -> None:
    if rng.random() < 0.5:
        _state(
            s,
            c,
            ids,
            rng,
            "read",
            store="foundry-memory",
            holder="provider",
            scope="user",
            key=f"user-{rng.randint(1, 3000)}",
            bytes=rng.randint(100, 2000),
        )
    for _ in range(rng.randint(1, 5)):
        _call(
            s,
            c,
            ids,
            rng,
            provider="azure.ai.openai",
            model="gpt-5",
            api="chat.completions",
            input_tokens=rng.randint(500, 3000),
            output_tokens=rng.randint(50, 400),
        )
        c.advance(rng, 1_000, 15_000)


_PLAYS = {
    "support-chat": (_support_chat, "azure", None),
    "research-responses": (_research, "openai", None),
    "claims-runtime": (_claims, "aws", "agentcore"),
    "triage-graph": (_triage, "azure", None),
    "coding-container": (_coding, "openai", None),
    "foundry-ops": (_foundry, "azure", "foundry"),
}


def _plan_day(
    seed: int,
    agent_index: int,
    agent: Agent,
    start_ns: int,
    day: int,
    sessions_per_agent_day: float,
) -> list[tuple[int, int, random.Random]]:
    """The day's sessions of one agent: (start ts, tie-breaker, rng for the session)."""
    rng = random.Random(f"statemeter-fleet:{seed}:{agent_index}:{day}")
    n = _poisson(rng, sessions_per_agent_day * _day_factor(start_ns, day))
    day_ns = start_ns + day * _DAY
    out = []
    for k in range(n):
        hour = rng.choices(range(24), weights=_HOURS)[0]
        ts = day_ns + hour * 3600 * _NS + rng.randrange(3600 * _NS)
        out.append((ts, agent_index * 1_000_000 + k, random.Random(rng.getrandbits(64))))
    return out


def fleet(
    days: int = 30,
    agents: int = 12,
    seed: int = 0,
    *,
    meter: Any = None,
    path: Any = None,
    start: str | int | _dt.date = "2026-01-05",
    sessions_per_agent_day: float = 24,
    tenants: Sequence[str] = ("acme", "globex", "initech"),
) -> Fleet:
    """Records a ``days``-long workload of ``agents`` agents into ``meter`` (or a new
    ``Meter(path)``; in memory when both are None), flushes it and returns a :class:`Fleet`.

    See the module documentation for the workload, its volume knob
    (``sessions_per_agent_day``) and its determinism.
    """
    import statemeter as sm
    from statemeter.errors import invalid

    for name, value in (("days", days), ("agents", agents)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise invalid(name, "must be a positive int")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise invalid("seed", "must be an int")
    if not sessions_per_agent_day >= 0:
        raise invalid("sessions_per_agent_day", "must be >= 0")
    if not tenants:
        raise invalid("tenants", "must not be empty")
    if meter is None:
        meter = sm.Meter(path)
    before = len(meter.ledger)
    start_ns = _instant(start)
    roster = _agents(agents, list(tenants))
    result = Fleet(meter, roster, days, seed, start_ns, start_ns + days * _DAY)
    for day in range(days):
        plans = []
        for i, agent in enumerate(roster):
            for ts, tie, rng in _plan_day(seed, i, agent, start_ns, day, sessions_per_agent_day):
                plans.append((ts, tie, i, rng))
        plans.sort(key=lambda p: (p[0], p[1]))
        for ts, _, i, rng in plans:
            agent = roster[i]
            play, venue, runtime = _PLAYS[agent.archetype]
            ids = _Ids(rng)
            runtime_session = f"{runtime}-{rng.getrandbits(64):016x}" if runtime else None
            s = meter.session(
                agent.name,
                session_id=ids(ts),
                tenant=agent.tenant,
                venue=venue,
                runtime=runtime,
                runtime_session_id=runtime_session,
                attrs={"archetype": agent.archetype},
            )
            clock = _Clock(ts)
            s.start(ts=ts, id=ids(ts))
            clock.advance(rng, 5, 200)
            status = "ok"
            try:
                play(s, clock, ids, rng)
                if rng.random() < 0.02:
                    status = "error"
            finally:
                end = clock.advance(rng, 5, 500)
                s.end(status, ts=end, id=ids(end))
            result.sessions += 1
            result.by_archetype[agent.archetype] = result.by_archetype.get(agent.archetype, 0) + 1
    meter.flush()
    result.events = len(meter.ledger) - before
    return result
