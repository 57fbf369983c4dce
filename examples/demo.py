"""A small scripted agent workload, recorded, classified and verified.

    python examples/demo.py demo/ledger.db

It mixes stateless calls (Chat Completions on Azure, Converse on Bedrock) with stateful ones
(a Responses chain, a provider-managed AgentCore runtime session, memory), prints every event
with its tag and the evidence for it, and verifies the hash chain.
"""

from __future__ import annotations

import sys
from pathlib import Path

import statemeter as sm


def record(path: Path) -> sm.Head:
    with sm.Meter(path) as meter:
        # 1. A support bot on Azure: plain chat completions resend the whole context.
        with meter.session("support-bot", tenant="acme", venue="azure") as s:
            s.model_call(provider="openai", model="gpt-5", api="chat.completions",
                         input_tokens=1200, output_tokens=300, cached_tokens=1024)
            s.tool_call("search_docs", effect="read", duration_ns=4_000_000)
            s.model_call(provider="openai", model="gpt-5", api="chat.completions",
                         request={"store": True}, input_tokens=1650, output_tokens=210)

        # 2. A research agent chaining Responses on OpenAI: later turns reference the first.
        with meter.session("research-agent", tenant="acme", venue="openai") as s:
            s.model_call(provider="openai", model="gpt-5", api="responses",
                         input_tokens=900, output_tokens=120)
            s.model_call(provider="openai", model="gpt-5", api="responses",
                         request={"previous_response_id": "resp_68a1"},
                         input_tokens=300, output_tokens=95)
            s.tool_call("fetch_page", tool_kind="mcp", mcp_session_id="mcp-7f3", effect="read")

        # 3. An agent in a provider-managed runtime on AWS: its model calls are stateless
        #    one by one, but the session lives in a stateful runtime.
        with meter.session("claims-agent", tenant="globex", venue="aws", runtime="agentcore",
                           runtime_session_id="rt-5b2e9c0d-1f4a-4c8e-9a77-0d6c2b1e3f55") as s:
            s.model_call(provider="aws.bedrock", model="anthropic.claude-sonnet-4", api="converse",
                         input_tokens=2200, output_tokens=400)
            s.state_op("write", store="agentcore-memory", holder="provider", bytes=512,
                       key="claim-4711")
            s.model_call(provider="openai", model="gpt-5", api="chat.completions",
                         venue="aws", input_tokens=800, output_tokens=60)

        # 4. A LangGraph-style agent keeping its own checkpoints.
        with meter.session("triage-graph", tenant="globex", venue="azure") as s:
            s.state_op("read", store="sqlite-checkpointer", holder="client", key="thread-9")
            s.model_call(provider="openai", model="gpt-5-mini", api="chat.completions",
                         input_tokens=400, output_tokens=50)
            s.state_op("write", store="sqlite-checkpointer", holder="client", bytes=2048,
                       key="thread-9")
        return meter.ledger.head()


def show(path: Path, head: sm.Head) -> int:
    ledger = sm.Ledger.open(path)
    events = ledger.events()
    print(f"{len(events)} events in {path}\n")
    for e in events:
        what = {
            "model_call": lambda: f"{e.provider}/{e.model} {e.api} @ {e.venue}",
            "tool_call": lambda: f"tool {e.tool} ({e.tool_kind})",
            "state_op": lambda: f"{e.op} {e.store} ({e.holder})",
        }.get(e.kind, lambda: f"{e.agent} @ {e.venue}" + (f" runtime={e.runtime}" if e.runtime else ""))()
        print(f"#{e.seq:<3} {e.kind:<13} {what:<58} call={e.tag:<9} session={e.session_tag}")
        for ev in e.evidence:
            print(f"       - {ev.rule} [{ev.tag}] {ev.signal or '-'}: {ev.explain}")
    counts = {t: len(events.filter(kind="model_call", tag=t)) for t in ("stateless", "stateful")}
    at_session = sum(1 for e in events.filter(kind="model_call") if e.session_tag == "stateful")
    print(f"\nmodel calls: {counts['stateless']} stateless, {counts['stateful']} stateful "
          f"at call level; {at_session} stateful at session level")
    v = ledger.verify(head=head)
    print(f"verify: ok={v.ok} events={v.events} head={v.head}")
    return 0 if v.ok else 1


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "demo/ledger.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    head = record(path)
    return show(path, head)


if __name__ == "__main__":
    sys.exit(main())
