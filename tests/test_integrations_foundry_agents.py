"""The inner steps of an Azure AI Foundry Agent Service run (threads, runs, run steps), read by
the httpx capture from the run steps that pass through it: a real `openai.AzureOpenAI` client
against a loopback server answering a recorded-shape fixture
(tests/data/runtimes/foundry_agent_run.json)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import openai
import pytest
import statemeter as sm
from loopback import Loopback, json_answer, sse_answer
from statemeter.integrations import httpx as capture

FIXTURE = Path(__file__).parent / "data" / "runtimes" / "foundry_agent_run.json"
DOC = json.loads(FIXTURE.read_text())
THREAD = DOC["thread_id"]
RUN = DOC["run"]["id"]
MARKER = b"CONTENT-MARKER"
PROVIDERS = {"127.0.0.1": "azure.ai.openai"}
STEPS = f"/openai/threads/{THREAD}/runs/{RUN}/steps"
# The openai SDK marks its Assistants-protocol methods deprecated; Foundry Agent Service serves
# that protocol.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The Assistants API is deprecated:DeprecationWarning"
)


@pytest.fixture
def lb() -> Any:
    with Loopback() as server:
        server.route("GET", f"/openai/threads/{THREAD}/runs/{RUN}", json_answer(DOC["run"]))
        yield server


def client(lb: Loopback) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        api_key="k", azure_endpoint=lb.base, api_version="2025-05-01-preview", max_retries=0
    )


def recorded(meter: sm.Meter) -> list[dict[str, Any]]:
    meter.flush()
    return [
        e
        for e in meter.ledger.events().to_pylist()
        if e["kind"] not in ("session_start", "session_end")
    ]


def summary(e: dict[str, Any]) -> tuple[Any, ...]:
    return (
        e["kind"],
        e.get("model") or e.get("tool"),
        e.get("tool_kind"),
        e.get("effect"),
        e.get("input_tokens"),
        e.get("output_tokens"),
        e["duration_ns"],
        e["status"],
        e["attrs"]["azure.ai.agents.step_id"],
    )


def test_run_steps_become_children_of_the_listing_once_each(lb: Loopback) -> None:
    meter = sm.Meter()
    with meter.session("claims", runtime="foundry", runtime_session_id=THREAD) as s:
        with client(lb) as c:
            capture.instrument(c, s, providers=PROVIDERS)
            run = c.beta.threads.runs.retrieve(RUN, thread_id=THREAD)
            lb.route("GET", STEPS, json_answer(DOC["steps_in_progress"]))
            early = c.beta.threads.runs.steps.list(RUN, thread_id=THREAD)
            lb.route("GET", STEPS, json_answer(DOC["steps"]))
            done = c.beta.threads.runs.steps.list(RUN, thread_id=THREAD)
            again = c.beta.threads.runs.steps.list(RUN, thread_id=THREAD)
    # The caller gets what the service sent.
    assert run.usage is not None and run.usage.total_tokens == 3732
    assert [st.status for st in early.data] == ["completed", "in_progress"]
    assert len(done.data) == len(again.data) == 3
    events = recorded(meter)
    retrieve, first, *rest = events
    # The run's cumulative usage is not the retrieval's own: no tokens on it.
    assert (retrieve["api"], retrieve["input_tokens"], retrieve["output_tokens"]) == (
        "threads.runs",
        0,
        0,
    )
    assert retrieve["attrs"]["gen_ai.response.id"] == RUN
    # The early listing: the finished first step (its model call and two tool calls); the
    # step in progress waits.
    inner1 = rest[:3]
    second = rest[3]
    inner2 = rest[4:7]
    third = rest[7]
    assert len(rest) == 8
    assert first["attrs"]["statemeter.inner_steps"] == 3
    assert second["attrs"]["statemeter.inner_steps"] == 3
    assert "statemeter.inner_steps" not in third["attrs"]  # listed again: nothing new
    assert all(e["parent_id"] == first["id"] for e in inner1)
    assert all(e["parent_id"] == second["id"] for e in inner2)
    assert [summary(e) for e in inner1 + inner2] == [
        ("model_call", "gpt-4o", None, None, 820, 41, 2_000_000_000, "ok", "step_01"),
        ("tool_call", "get_claim", "function", "none", None, None, None, "ok", "step_01"),
        ("tool_call", "file_search", "knowledge_base", "read", None, None, None, "ok", "step_01"),
        ("model_call", "gpt-4o", None, None, 1300, 25, 3_000_000_000, "error", "step_02"),
        ("tool_call", "lookup", "mcp", "none", None, None, None, "error", "step_02"),
        ("model_call", "gpt-4o", None, None, 1450, 96, 4_000_000_000, "ok", "step_03"),
    ]
    models = [e for e in inner1 + inner2 if e["kind"] == "model_call"]
    # The steps' tokens add up to the run's cumulative usage: counted once.
    assert sum(e["input_tokens"] for e in models) == DOC["run"]["usage"]["prompt_tokens"]
    assert sum(e["output_tokens"] for e in models) == DOC["run"]["usage"]["completion_tokens"]
    step = models[0]
    assert (step["provider"], step["api"], step["ts"]) == (
        "azure.ai.openai",
        "chat.completions",
        1793613600 * 10**9,
    )
    assert step["attrs"] == {
        "azure.ai.agents.step_id": "step_01",
        "gen_ai.conversation.id": THREAD,
        "azure.ai.agents.run_id": RUN,
        "gen_ai.agent.id": "asst_ghi789",
        "azure.ai.agents.step_type": "tool_calls",
    }
    assert inner1[1]["attrs"]["gen_ai.tool.call.id"] == "call_fn1"
    assert inner2[1]["attrs"]["mcp_server"] == "claims_db"
    assert {e["session_id"] for e in inner1 + inner2} == {s.session_id}
    [row] = meter.ledger.sessions().to_pylist()
    assert (row["inner_model_calls"], row["inner_tool_calls"]) == (3, 3)
    assert (row["inner_input_tokens"], row["inner_output_tokens"]) == (3570, 162)
    assert meter.stats()["integration_errors"] == {}


def test_content_never_reaches_the_ledger(lb: Loopback, tmp_path: Path) -> None:
    lb.route("GET", STEPS, json_answer(DOC["steps"]))
    path = tmp_path / "audit.db"
    meter = sm.Meter(path)
    with meter.session("claims") as s, client(lb) as c:
        capture.instrument(c, s, providers=PROVIDERS)
        c.beta.threads.runs.retrieve(RUN, thread_id=THREAD)
        c.beta.threads.runs.steps.list(RUN, thread_id=THREAD)
    meter.close()
    assert len(sm.Ledger.open(path).events()) == 2 + 2 + 6
    for f in [path, *tmp_path.glob("audit.db-*")]:
        assert MARKER not in f.read_bytes()


def stream_events() -> list[tuple[str | None, Any]]:
    queued = {**DOC["run"], "status": "queued", "usage": None, "completed_at": None}
    out: list[tuple[str | None, Any]] = [("thread.run.created", queued)]
    for st in DOC["steps"]["data"]:
        started = {**st, "status": "in_progress", "usage": None, "completed_at": None}
        started["failed_at"] = None
        out.append(("thread.run.step.created", started))
        out.append((f"thread.run.step.{st['status']}", st))
    out.append(("thread.run.completed", DOC["run"]))
    out.append(("done", "[DONE]"))
    return out


def run_streamed(c: openai.AzureOpenAI) -> list[str]:
    stream = c.beta.threads.runs.create(THREAD, assistant_id="asst_ghi789", stream=True)
    return [ev.event for ev in stream]


def test_a_streamed_runs_step_events_become_its_children(lb: Loopback) -> None:
    lb.route("POST", f"/openai/threads/{THREAD}/runs", sse_answer(stream_events()))
    with client(lb) as c:
        plain = run_streamed(c)
    meter = sm.Meter()
    with meter.session("claims") as s, client(lb) as c:
        capture.instrument(c, s, providers=PROVIDERS)
        seen = run_streamed(c)
        # Listing the steps afterwards records nothing again.
        lb.route("GET", STEPS, json_answer(DOC["steps"]))
        c.beta.threads.runs.steps.list(RUN, thread_id=THREAD)
    assert seen == plain
    outer, *inner, listing = recorded(meter)
    assert (outer["input_tokens"], outer["output_tokens"]) == (0, 0)
    assert outer["attrs"]["statemeter.inner_steps"] == 6
    assert "statemeter.inner_steps" not in listing["attrs"]
    assert [(e["kind"], e["parent_id"]) for e in inner] == [
        (k, outer["id"])
        for k in ["model_call", "tool_call", "tool_call", "model_call", "tool_call", "model_call"]
    ]
    # The model is the run's, from the stream's run events.
    assert {e["model"] for e in inner if e["kind"] == "model_call"} == {"gpt-4o"}
    assert sum(e.get("input_tokens") or 0 for e in inner) == 3570
    assert meter.stats()["integration_errors"] == {}


def test_a_truncated_stream_records_the_steps_it_saw(lb: Loopback) -> None:
    answer = sse_answer(stream_events())
    chunks = copy.copy(answer[2])
    cut = chunks[:3] + [chunks[3][: len(chunks[3]) // 2]]  # inside the second step's events
    lb.route("POST", f"/openai/threads/{THREAD}/runs", (200, answer[1], cut, {}))
    meter = sm.Meter()
    with meter.session("claims") as s, client(lb) as c:
        capture.instrument(c, s, providers=PROVIDERS)
        # The SDK reads the events that arrived, whole, and stops where the stream ends.
        seen = run_streamed(c)
    assert seen == ["thread.run.created", "thread.run.step.created", "thread.run.step.completed"]
    outer, *inner = recorded(meter)
    assert outer["status"] == "ok"
    assert [e["attrs"]["azure.ai.agents.step_id"] for e in inner] == ["step_01"] * 3
    assert all(e["parent_id"] == outer["id"] for e in inner)
    assert meter.stats()["integration_errors"] == {"httpx": 1}
