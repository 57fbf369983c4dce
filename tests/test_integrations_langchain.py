"""LangChain / LangGraph: a real graph (fake chat model, ToolNode, InMemorySaver) recorded
through `MeterCallbackHandler`, `MeteredCheckpointer` and `MeteredStore`, offline."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import statemeter as sm
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from statemeter.integrations.langchain import (
    MeterCallbackHandler,
    MeteredCheckpointer,
    MeteredStore,
)


class FakeOpenAI(GenericFakeChatModel):
    """GenericFakeChatModel that reports itself like ChatOpenAI and accepts tools."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> FakeOpenAI:
        return self

    def _get_ls_params(self, stop: Any = None, **kwargs: Any) -> dict[str, Any]:
        return {"ls_provider": "openai", "ls_model_name": "gpt-4o", "ls_model_type": "chat"}


def ai(
    content: str = "",
    tool: str | None = None,
    tokens: tuple[int, int, int] = (10, 2, 0),
    **meta: Any,
) -> AIMessage:
    n_in, n_out, cached = tokens
    usage: dict[str, Any] = {
        "input_tokens": n_in,
        "output_tokens": n_out,
        "total_tokens": n_in + n_out,
    }
    if cached:
        usage["input_token_details"] = {"cache_read": cached}
    calls = [{"name": tool, "args": {"order_id": "42"}, "id": "call_1"}] if tool else []
    return AIMessage(
        content=content, tool_calls=calls, usage_metadata=usage, response_metadata=meta
    )


@tool
def get_order(order_id: str) -> str:
    """Look up an order."""
    return f"order {order_id}: shipped"


@tool
def broken(order_id: str) -> str:
    """Always fails."""
    raise RuntimeError("backend down")


def build_graph(
    model: GenericFakeChatModel,
    checkpointer: Any,
    store: Any = None,
    tools: list[Any] | None = None,
) -> Any:
    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(tools or [get_order], handle_tool_errors=True))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer, store=store, name="support")


def script() -> FakeOpenAI:
    return FakeOpenAI(
        messages=iter(
            [
                ai(tool="get_order", tokens=(10, 2, 0), id="chatcmpl-1"),
                ai("order 42 shipped", tokens=(20, 3, 5)),
                ai("you are welcome", tokens=(30, 1, 0)),
            ]
        )
    )


def shape(events: sm.EventTable) -> list[tuple[Any, ...]]:
    out = []
    for e in events:
        what = e.op or e.tool or e.api or e.status
        out.append((e.kind, what, e.tag))
    return out


READ, WRITE = ("state_op", "read", "stateful"), ("state_op", "write", "stateful")
MODEL = ("model_call", "chat.completions", "stateless")
TOOL = ("tool_call", "get_order", "stateless")
START_, END_ = ("session_start", None, "stateless"), ("session_end", "ok", "stateless")


@pytest.mark.parametrize("ruleset", ["default", "strict"])
def test_graph_invoked_twice_on_one_thread(ruleset):
    meter = sm.Meter(ruleset=getattr(sm.Ruleset, ruleset)())
    saver = MeteredCheckpointer(InMemorySaver(), meter)
    assert isinstance(saver, BaseCheckpointSaver)
    graph = build_graph(script(), saver)
    config = {"configurable": {"thread_id": "t1"}, "callbacks": [MeterCallbackHandler(meter)]}
    # durability="sync": checkpoints are written before the next step starts, so the order of
    # events is deterministic (the default "async" overlaps them with the next step).
    graph.invoke({"messages": [HumanMessage("where is order 42?")]}, config, durability="sync")
    out = graph.invoke({"messages": [HumanMessage("thanks")]}, config, durability="sync")
    assert out["messages"][-1].content == "you are welcome"
    assert len(out["messages"]) == 6  # the second run read the first run's checkpoint
    events = meter.ledger.events()
    expected = [
        START_,
        READ,  # get_tuple: no checkpoint yet
        WRITE,
        WRITE,
        WRITE,  # the input checkpoint, its writes, step 0
        MODEL,
        WRITE,
        WRITE,  # agent -> tool call; task writes, checkpoint
        TOOL,
        WRITE,
        WRITE,  # tools
        MODEL,
        WRITE,
        WRITE,  # agent -> answer
        END_,
        START_,
        READ,  # the first run's checkpoint
        WRITE,
        WRITE,
        WRITE,
        MODEL,
        WRITE,
        WRITE,
        END_,
    ]
    assert shape(events) == expected
    assert {e.session_id for e in events} == {"t1"}
    # Client-held checkpoints: stateful events, but the session is stateful only when the
    # ruleset counts client state (strict).
    want_session = "stateless" if ruleset == "default" else "stateful"
    assert {e.session_tag for e in events} == {want_session}
    ops = events.filter(kind="state_op")
    assert all(o.holder == "client" and o.store == "InMemorySaver" for o in ops)
    assert [o.attrs["found"] for o in ops if o.op == "read"] == [False, True]
    first_read, second_read = (o for o in ops if o.op == "read")
    assert first_read.bytes == 0 and second_read.bytes > 0
    assert all(o.bytes > 0 for o in ops if o.op == "write")
    calls = events.filter(kind="model_call")
    assert [
        (c.provider, c.model, c.input_tokens, c.output_tokens, c.cached_tokens) for c in calls
    ] == [
        ("openai", "gpt-4o", 10, 2, 0),
        ("openai", "gpt-4o", 20, 3, 5),
        ("openai", "gpt-4o", 30, 1, 0),
    ]
    assert [c.attrs["langgraph_node"] for c in calls] == ["agent"] * 3
    assert calls[0].attrs["response_id"] == "chatcmpl-1"
    assert all(c.agent == "support" for c in calls)
    tool_call = events.filter(kind="tool_call")[0]
    assert tool_call.attrs["tool_call_id"] == "call_1"
    assert events[-1].parent_id == events[15].id
    assert "shipped" not in json.dumps(events.to_pylist())
    assert meter.stats()["integration_errors"] == {}


def test_async_graph_uses_async_checkpointer_methods():
    meter = sm.Meter()
    graph = build_graph(script(), MeteredCheckpointer(InMemorySaver(), meter))
    config = {"configurable": {"thread_id": "t-async"}, "callbacks": [MeterCallbackHandler(meter)]}
    asyncio.run(graph.ainvoke({"messages": [HumanMessage("where?")]}, config))
    events = meter.ledger.events()
    assert shape(events)[:2] == [START_, READ]
    assert len(events.filter(kind="model_call")) == 2
    assert len(events.filter(kind="state_op")) == 10
    assert {e.session_id for e in events} == {"t-async"}


def test_checkpointer_list_delete_and_history():
    meter = sm.Meter()
    saver = MeteredCheckpointer(InMemorySaver(), meter)
    graph = build_graph(script(), saver)
    config = {"configurable": {"thread_id": "t2"}}
    graph.invoke({"messages": [HumanMessage("where?")]}, config)
    history = list(graph.get_state_history(config))
    saver.delete_thread("t2")
    ops = meter.ledger.events(kind="state_op")
    listed = [o for o in ops if "listed" in o.attrs]
    assert [(o.op, o.session_id, o.attrs["listed"]) for o in listed] == [
        ("read", "t2", len(history))
    ]
    last = ops[-1]
    assert (last.op, last.session_id, last.attrs["op"]) == ("delete", "t2", "delete_thread")
    assert listed[0].bytes > 0  # what the saver deserialized for the listing
    assert saver.get_tuple(config) is None


def test_wrapped_saver_is_shared_not_modified():
    meter = sm.Meter()
    inner = InMemorySaver()
    serde = inner.serde
    saver = MeteredCheckpointer(inner, meter, sizes=False)
    build_graph(script(), saver).invoke(
        {"messages": [HumanMessage("where?")]}, {"configurable": {"thread_id": "t6"}}
    )
    assert inner.serde is serde
    assert inner.get_tuple({"configurable": {"thread_id": "t6"}}) is not None
    ops = meter.ledger.events(kind="state_op")
    assert len(ops) > 5 and {o.bytes for o in ops} == {0}
    counted = MeteredCheckpointer(inner, meter)
    assert inner.serde is serde
    counted.get_tuple({"configurable": {"thread_id": "t6"}})
    assert meter.ledger.events(kind="state_op")[-1].bytes > 0


def test_nested_runs_keep_their_parent():
    meter = sm.Meter()
    inner_model = FakeOpenAI(messages=iter([ai("summary", tokens=(5, 1, 0))]))

    @tool
    def summarize(order_id: str) -> str:
        """Summarise an order with a model."""
        return str(inner_model.invoke([HumanMessage(order_id)]).content)

    model = FakeOpenAI(messages=iter([ai(tool="summarize"), ai("done")]))
    graph = build_graph(model, InMemorySaver(), tools=[summarize])
    graph.invoke(
        {"messages": [HumanMessage("go")]},
        {"configurable": {"thread_id": "t3"}, "callbacks": [MeterCallbackHandler(meter)]},
    )
    events = meter.ledger.events()
    tool_call = events.filter(kind="tool_call")[0]
    nested = [c for c in events.filter(kind="model_call") if c.input_tokens == 5]
    assert len(nested) == 1 and nested[0].parent_id == tool_call.id
    assert nested[0].attrs["parent_run_id"] == tool_call.id


def test_tool_and_model_errors_and_session_without_thread():
    meter = sm.Meter()
    model = FakeOpenAI(messages=iter([ai(tool="broken"), ai("sorry")]))
    graph = build_graph(model, None, tools=[broken])
    graph.invoke({"messages": [HumanMessage("go")]}, {"callbacks": [MeterCallbackHandler(meter)]})
    events = meter.ledger.events()
    tool_call = events.filter(kind="tool_call")[0]
    assert (tool_call.tool, tool_call.status, tool_call.attrs["error_type"]) == (
        "broken",
        "error",
        "RuntimeError",
    )
    root = events[0]
    assert root.kind == "session_start" and root.session_id == root.attrs["run_id"]
    assert {e.session_id for e in events} == {root.session_id}

    class Failing(FakeOpenAI):
        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            raise TimeoutError("provider timeout")

    handler = MeterCallbackHandler(meter, thread_id="given", venue="azure")
    with pytest.raises(TimeoutError):
        Failing(messages=iter([])).invoke("hi", {"callbacks": [handler]})
    failed = meter.ledger.events(session_id="given")
    assert shape(failed) == [
        START_,
        ("model_call", "chat.completions", "stateless"),
        ("session_end", "error", "stateless"),
    ]
    assert failed[1].status == "error" and failed[1].venue == "azure"


def test_store_reads_writes_and_deletes_in_the_thread_session():
    meter = sm.Meter()
    store = MeteredStore(InMemoryStore(), meter)
    assert isinstance(store, BaseStore)

    def remember(state: MessagesState, *, store: BaseStore) -> dict[str, Any]:
        store.put(("users", "u1", "memories"), "m1", {"fact": "likes tea"})
        store.get(("users", "u1", "memories"), "m1")
        store.search(("users", "u1"))
        store.delete(("users", "u1", "memories"), "m1")
        return {"messages": [AIMessage("noted")]}

    builder = StateGraph(MessagesState)
    builder.add_node("remember", remember)
    builder.add_edge(START, "remember")
    graph = builder.compile(store=store, checkpointer=InMemorySaver())
    graph.invoke({"messages": [HumanMessage("hi")]}, {"configurable": {"thread_id": "t4"}})
    ops = meter.ledger.events(kind="state_op")
    assert [(o.op, o.key, o.scope, o.session_id) for o in ops] == [
        ("write", "users/u1/memories/m1", "user", "t4"),
        ("read", "users/u1/memories/m1", "user", "t4"),
        ("read", "users/u1", "user", "t4"),
        ("delete", "users/u1/memories/m1", "user", "t4"),
    ]
    size = len(json.dumps({"fact": "likes tea"}, separators=(",", ":")))
    assert ops[0].bytes == ops[1].bytes == ops[2].bytes == size
    assert ops[2].attrs == {"op": "search", "results": 1}
    assert all(o.tag == "stateful" and o.store == "InMemoryStore" for o in ops)


def test_application_survives_a_closed_meter():
    meter = sm.Meter()
    handler = MeterCallbackHandler(meter)
    graph = build_graph(script(), MeteredCheckpointer(InMemorySaver(), meter))
    meter.close()
    out = graph.invoke(
        {"messages": [HumanMessage("where?")]},
        {"configurable": {"thread_id": "t5"}, "callbacks": [handler]},
    )
    assert out["messages"][-1].content == "order 42 shipped"
    errors = meter.stats()["integration_errors"]
    assert errors["langchain"] >= 5 and errors["langgraph"] >= 5


def test_callbacks_given_directly_keep_ids_and_links():
    """Run ids read back as `str(UUID)` (leading zeros kept), and a child finds its parent
    through chain runs when LangChain passes an equal UUID object rather than the same one."""
    from uuid import UUID, uuid4

    from langchain_core.outputs import ChatGeneration, LLMResult

    meter = sm.Meter()
    handler = MeterCallbackHandler(meter)
    top, chain, tool_run, model = UUID(int=1), uuid4(), UUID(int=2**64), uuid4()
    handler.on_chain_start({}, {}, run_id=top, parent_run_id=None, name="graph", tags=[])
    handler.on_chain_start(None, {}, run_id=chain, parent_run_id=UUID(str(top)), name="node")
    handler.on_tool_start(
        {"name": "get_order"},
        "42",
        run_id=tool_run,
        parent_run_id=UUID(str(chain)),
        metadata={"langgraph_node": "tools", "langgraph_step": 2},
        tool_call_id="call_9",
        color="green",
    )
    handler.on_chat_model_start(
        {},
        [[HumanMessage("42")]],
        run_id=model,
        parent_run_id=UUID(str(tool_run)),
        invocation_params={"model": "gpt-4o"},
        metadata={"ls_provider": "openai"},
        batch_size=1,
    )
    result = LLMResult(generations=[[ChatGeneration(message=ai("ok", tokens=(7, 1, 0)))]])
    handler.on_llm_end(result, run_id=model, parent_run_id=tool_run, tags=[])
    handler.on_tool_end("shipped", run_id=tool_run, parent_run_id=chain, name="get_order")
    handler.on_chain_end({}, run_id=chain, parent_run_id=top)
    handler.on_chain_end({}, run_id=top, parent_run_id=None)
    events = meter.ledger.events()
    assert [e.kind for e in events] == ["session_start", "model_call", "tool_call", "session_end"]
    start, call, tool_call, end = events
    assert start.id == "00000000-0000-0000-0000-000000000001:start"
    assert start.session_id == str(top) and start.attrs == {"run_id": str(top), "name": "graph"}
    assert tool_call.id == str(tool_run) == "00000000-0000-0001-0000-000000000000"
    assert tool_call.attrs == {
        "run_id": str(tool_run),
        "parent_run_id": str(chain),
        "langgraph_node": "tools",
        "langgraph_step": 2,
        "tool_call_id": "call_9",
    }
    assert (call.id, call.parent_id, call.attrs["parent_run_id"]) == (
        str(model),
        str(tool_run),
        str(tool_run),
    )
    assert (call.model, call.input_tokens, call.session_id) == ("gpt-4o", 7, str(top))
    assert all(e.agent == "graph" for e in events)
    assert (end.parent_id, end.status) == (start.id, "ok")
    assert handler._runs == {} and handler._chains == {}
    assert meter.stats()["integration_errors"] == {}
