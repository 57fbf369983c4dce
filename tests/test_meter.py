"""Meter, Session, ToolSpan: recording, inheritance, durability, idempotency, exit flush."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import statemeter as sm


def test_design_example(tmp_path):
    meter = sm.Meter(tmp_path / "audit.db")
    with meter.session(agent="support-bot", tenant="acme", venue="azure") as s:
        s.model_call(
            provider="openai",
            model="gpt-5",
            api="chat.completions",
            input_tokens=1200,
            output_tokens=300,
        )
        s.model_call(
            provider="openai",
            model="gpt-5",
            api="responses",
            request={"previous_response_id": "resp_1"},
            input_tokens=900,
            output_tokens=80,
        )
        s.tool_call("search_docs", effect="read")
        s.state_op("write", store="agentcore-memory", holder="provider", bytes=512)
    meter.flush()
    calls = meter.ledger.events(kind="model_call")
    assert len(calls) == 2
    assert calls[0].tag == "stateless"
    assert calls[1].tag == "stateful"
    assert calls[1].consumes_state is True
    assert calls[1].state_holder == "provider"
    assert any(e.signal == "request.previous_response_id" for e in calls[1].evidence)
    # The session holds provider-held state, so both calls are stateful at session level.
    assert [c.session_tag for c in calls] == ["stateful", "stateful"]
    every = meter.ledger.events()
    assert [e.kind for e in every] == [
        "session_start",
        "model_call",
        "model_call",
        "tool_call",
        "state_op",
        "session_end",
    ]
    assert [e.seq for e in every] == [1, 2, 3, 4, 5, 6]
    assert every[4].tag == "stateful" and every[4].creates_state
    meter.close()


def test_events_inherit_session_fields_and_can_override():
    meter = sm.Meter()
    with meter.session("bot", tenant="acme", venue="azure", session_id="s-1") as s:
        a = s.model_call(provider="openai", model="gpt-5", api="chat.completions")
        b = s.model_call(provider="openai", model="gpt-5", api="chat.completions", venue="aws")
    assert (a.session_id, a.agent, a.tenant, a.venue) == ("s-1", "bot", "acme", "azure")
    assert b.venue == "aws"
    ends = meter.ledger.events(kind="session_end")
    assert ends[0].status == "ok"


def test_session_records_error_status_when_exception_escapes():
    meter = sm.Meter()
    with pytest.raises(RuntimeError), meter.session("bot") as s:
        s.tool_call("x")
        raise RuntimeError("boom")
    assert meter.ledger.events(kind="session_end")[0].status == "error"


def test_runtime_session_makes_inner_calls_stateful_at_session_level():
    meter = sm.Meter()
    with meter.session("bot", venue="aws", runtime="agentcore", runtime_session_id="rt-123") as s:
        s.model_call(provider="openai", model="gpt-5", api="chat.completions")
    call = meter.ledger.events(kind="model_call")[0]
    assert call.tag == "stateless"
    assert call.session_tag == "stateful"
    start = meter.ledger.events(kind="session_start")[0]
    assert start.runtime == "agentcore" and start.runtime_session_id == "rt-123"


def test_tool_span_times_and_records_errors():
    meter = sm.Meter()
    s = meter.session("bot")
    with s.tool("lookup", effect="read") as t:
        t.attrs["hits"] = 3
    assert t.event is not None
    assert t.event.duration_ns >= 0
    assert t.event.attrs == {"hits": 3}
    with pytest.raises(KeyError), s.tool("lookup") as t2:
        raise KeyError("x")
    assert t2.event.status == "error"


def test_filters_and_table_protocol():
    meter = sm.Meter()
    with meter.session("a", session_id="s1") as s:
        s.model_call(provider="openai", model="m", api="chat.completions")
        s.model_call(
            provider="openai", model="m", api="responses", request={"previous_response_id": "r"}
        )
    with meter.session("b", session_id="s2") as s:
        s.tool_call("t")
    table = meter.ledger.events()
    assert len(table) == 7
    assert table[-1].kind == "session_end"
    assert [e.seq for e in table[1:3]] == [2, 3]
    assert len(meter.ledger.events(session_id="s2")) == 3
    assert len(meter.ledger.events(tag="stateful")) == 1
    assert len(table.filter(kind="model_call", tag="stateless")) == 1
    assert sum(1 for _ in table) == 7
    rows = table.to_pylist()
    assert rows[2]["tag"] == "stateful" and rows[2]["seq"] == 3
    assert rows[2]["request"] == {"previous_response_id": "r"}
    assert rows[2]["evidence"][0]["rule"]
    assert rows[1]["session_tag"] == "stateful"
    with pytest.raises(IndexError):
        table[7]
    with pytest.raises(sm.ValidationError):
        meter.ledger.events(kind="nope")


def test_sync_durability_commits_before_returning(tmp_path):
    meter = sm.Meter(tmp_path / "s.db", durability="sync")
    s = meter.session("bot")
    e = s.tool_call("x")
    assert e.seq == 1
    other = sm.Ledger.open(tmp_path / "s.db")
    assert len(other) == 1
    meter.close()


def test_idempotent_ids(tmp_path):
    meter = sm.Meter(tmp_path / "i.db")
    s = meter.session("bot", session_id="s")
    s.model_call(provider="openai", model="m", api="chat.completions", id="evt-1", input_tokens=5)
    # A retry with the same payload is a no-op, even without an explicit ts.
    s.model_call(provider="openai", model="m", api="chat.completions", id="evt-1", input_tokens=5)
    meter.flush()
    assert len(meter.ledger) == 1
    s.model_call(provider="openai", model="m", api="chat.completions", id="evt-1", input_tokens=6)
    with pytest.raises(sm.ValidationError, match="different payload") as info:
        meter.flush()
    assert info.value.field == "id"
    assert len(meter.ledger) == 1
    st = meter.stats()
    assert (st["written"], st["duplicates"], st["rejected"]) == (1, 1, 1)
    meter.close()

    sync = sm.Meter(tmp_path / "i.db", durability="sync")
    s = sync.session("bot", session_id="s")
    with pytest.raises(sm.ValidationError, match="different payload"):
        s.model_call(provider="openai", model="m", api="chat.completions", id="evt-1")
    sync.close()


def test_given_ids_of_every_length_are_kept_exactly(tmp_path):
    # Up to 36 bytes (a UUID's text) an id is held in the event itself, beyond in its own
    # allocation: both, and the limit of 128 bytes, read back the same.
    ids = ["a", "é" * 18, "x" * 36, "y" * 37, "ü🙂" * 21 + "zz", "w" * 128]
    meter = sm.Meter(tmp_path / "ids.db")
    s = meter.session("bot", session_id="s")
    recorded = []
    for i, given in enumerate(ids):
        if i % 3 == 0:
            e = s.model_call(provider="openai", model="m", api="chat.completions", id=given)
        elif i % 3 == 1:
            e = s.tool_call("search", id=given)
        else:
            e = s.state_op("write", store="mem", holder="client", id=given)
        assert e.id == given
        recorded.append(e)
    with pytest.raises(sm.ValidationError) as info:
        s.tool_call("search", id="v" * 129)
    assert info.value.field == "id"
    meter.flush()
    back = {e.id: e for e in meter.ledger.events()}
    assert set(back) == set(ids)
    for e in recorded:
        assert back[e.id] == e and hash(back[e.id]) == hash(e)
    minted = s.tool_call("search").id
    assert len(minted) == 36 and minted[14] == "7"
    meter.close()


def test_interpreter_exit_flushes(tmp_path):
    path = tmp_path / "exit.db"
    code = textwrap.dedent(f"""
        import statemeter as sm
        meter = sm.Meter({str(path)!r})
        s = meter.session("bot")
        for i in range(2000):
            s.model_call(provider="openai", model="m", api="chat.completions", input_tokens=i)
        # no flush, no close: the atexit hook must write everything
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    ledger = sm.Ledger.open(path)
    assert len(ledger) == 2000
    assert ledger.verify().ok


def test_backpressure_small_queue(tmp_path):
    meter = sm.Meter(tmp_path / "bp.db", capacity=4)
    s = meter.session("bot")
    for i in range(3000):
        s.model_call(provider="openai", model="m", api="chat.completions", input_tokens=i)
    meter.flush()
    assert len(meter.ledger) == 3000
    assert meter.stats()["pending"] == 0
    meter.close()


def test_meter_record_raw_mapping_and_context_manager():
    with sm.Meter() as meter:
        e = meter.record(
            {
                "kind": "model_call",
                "provider": "anthropic",
                "model": "claude",
                "api": "messages",
                "request": {"container": "cntr_1"},
                "ts": 1_700_000_000_000_000_000,
                "session_id": "x",
            }
        )
        assert e.ts == 1_700_000_000_000_000_000
        assert e.tag == "stateful"
        assert meter.ledger.events()[0].id == e.id
    assert meter.closed


def test_repr_and_dict():
    meter = sm.Meter()
    e = meter.session("bot").model_call(provider="openai", model="m", api="chat.completions")
    assert "model_call" in repr(e)
    d = e.to_dict()
    assert d["provider"] == "openai" and d["tag"] == "stateless" and d["session_tag"] is None
    assert "Meter(<memory>" in repr(meter)


def test_recorded_events_carry_state_kinds(tmp_path, kinds_ruleset):
    meter = sm.Meter(tmp_path / "kinds.db", ruleset=kinds_ruleset)
    with meter.session("bot", venue="azure") as s:
        fresh = s.model_call(
            provider="openai",
            model="gpt-5",
            api="responses",
            request={"file_id": "f", "previous_response_id": "r"},
        )
        s.model_call(provider="openai", model="gpt-5", api="responses")
        s.model_call(provider="unknown", model="m", api="responses", request={"agent_session": "a"})
    # Fresh from the record call, before anything is read back.
    assert fresh.state_kinds == ["content", "conversation"]
    assert fresh.classification.state_kinds == ["content", "conversation"]
    assert [e.state for e in fresh.evidence] == ["conversation", "content"]
    meter.flush()
    calls = meter.ledger.events(kind="model_call")
    assert [c.state_kinds for c in calls] == [["content", "conversation"], [], ["runtime"]]
    assert [c.state_holder for c in calls] == ["provider", None, "unknown"]
    assert [e.state for e in calls[0].evidence] == ["conversation", "content"]
    d = calls[0].to_dict()
    assert d["state_kinds"] == ["content", "conversation"]
    assert [e["state"] for e in d["evidence"]] == ["conversation", "content"]
    rows = calls.to_pylist()
    assert [r["state_kinds"] for r in rows] == [["content", "conversation"], [], ["runtime"]]
    assert all(
        r["state_kinds"] == [] for r in meter.ledger.events(kind="session_start").to_pylist()
    )
    meter.close()
    # Read back by another process's view of the file: the same.
    again = sm.Ledger.open(tmp_path / "kinds.db").events(kind="model_call")
    assert [c.state_kinds for c in again] == [["content", "conversation"], [], ["runtime"]]
    assert again[0].evidence[1].explain == "reads a file the provider stores"


@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_an_empty_path_is_refused(durability):
    """SQLite reads "" as a temporary database that vanishes at close: never record there."""
    with pytest.raises(sm.ValidationError) as e:
        sm.Meter("", durability=durability)
    assert e.value.field == "path"


def test_sqlites_memory_name_is_refused_with_nothing_written(tmp_path, monkeypatch):
    """SQLite reads ":memory:" as a database in memory while the column store would be
    written beside it on disk: refused, as no path is the in-memory ledger."""
    monkeypatch.chdir(tmp_path)
    for open_it in (sm.Meter, sm.Ledger.open):
        with pytest.raises(sm.ValidationError) as e:
            open_it(":memory:")
        assert e.value.field == "path"
        assert "None" in str(e.value)
    assert list(tmp_path.iterdir()) == []
    meter = sm.Meter("./:memory:")
    meter.session("bot").model_call(provider="openai", model="gpt-5", api="chat.completions")
    meter.close()
    assert len(sm.Ledger.open("./:memory:").events()) == 1


def test_leaving_a_block_on_an_exception_after_close_keeps_the_users_exception(caplog):
    """`with meter.session()` / `with s.tool()` left on an exception after the meter was
    closed: the user's exception propagates (the unrecordable end is logged), never replaced
    by LedgerError. Without an exception the closed meter is still reported."""
    meter = sm.Meter()
    with pytest.raises(ZeroDivisionError):
        with meter.session("bot") as s:
            meter.close()
            raise ZeroDivisionError("mine")
    meter = sm.Meter()
    s = meter.session("bot")
    with pytest.raises(KeyError):
        with s.tool("search"):
            meter.close()
            raise KeyError("mine")
    assert "could not record" in caplog.text
    meter = sm.Meter()
    with pytest.raises(sm.LedgerError):
        with meter.session("bot"):
            meter.close()


def test_model_call_keywords_any_way_given():
    """Keywords reach their parameters however they are given (literals, a mapping, names
    built at run time); misuse raises the TypeError of any keyword-only method."""
    import inspect

    meter = sm.Meter()
    s = meter.session("bot", venue="azure")
    provider = "".join(["pro", "vider"])  # a name that is not the interned literal
    e1 = s.model_call(**{provider: "openai", "model": "gpt-5", "api": "responses"}, input_tokens=3)
    e2 = s.model_call(provider="anthropic", model="claude-sonnet-4-5", api="messages", venue="aws")
    e3 = s.model_call(provider="openai", model="gpt-5", api="responses", output_tokens=2)
    e4 = s.model_call(provider="open" + "ai", model="gpt-5", api="responses")
    got = [
        (e.provider, e.model, e.api, e.venue, e.input_tokens, e.output_tokens)
        for e in (e1, e2, e3, e4)
    ]
    assert got == [
        ("openai", "gpt-5", "responses", "azure", 3, 0),
        ("anthropic", "claude-sonnet-4-5", "messages", "aws", 0, 0),
        ("openai", "gpt-5", "responses", "azure", 0, 2),
        ("openai", "gpt-5", "responses", "azure", 0, 0),
    ]
    with pytest.raises(TypeError, match="positional"):
        s.model_call("openai", model="gpt-5", api="responses")  # type: ignore[misc]
    with pytest.raises(TypeError, match="colour"):
        s.model_call(provider="openai", model="gpt-5", api="responses", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="provider"):
        s.model_call(model="gpt-5", api="responses")  # type: ignore[call-arg]
    with pytest.raises(sm.ValidationError, match="provider"):
        s.model_call(provider=None, model="gpt-5", api="responses")  # type: ignore[arg-type]
    params = list(inspect.signature(sm.Session.model_call).parameters.values())
    assert [p.name for p in params[:4]] == ["self", "provider", "model", "api"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    assert sm.Session.model_call.__doc__.startswith("Records one model call")
    meter.flush()
    assert [e.provider for e in meter.ledger.events() if e.kind == "model_call"] == [
        "openai",
        "anthropic",
        "openai",
        "openai",
    ]


def test_a_relative_path_names_the_file_where_the_meter_was_opened(tmp_path, monkeypatch):
    # The process changes directory while the meter is open: the ledger's column store is
    # still written beside the file the meter opened, not in the new working directory.
    opened, later = tmp_path / "opened", tmp_path / "later"
    opened.mkdir()
    later.mkdir()
    monkeypatch.chdir(opened)
    meter = sm.Meter("audit.db")
    s = meter.session(agent="a")
    for n in range(3):
        s.model_call(provider="openai", model="gpt-5", api="responses", input_tokens=n)
    monkeypatch.chdir(later)
    meter.close()
    assert (opened / "audit.db.columns").is_dir()
    assert list(later.iterdir()) == []
    ledger = sm.Ledger.open(opened / "audit.db")
    assert ledger.verify().ok
    assert len(ledger.events()) == 3


def test_model_call_venues_given_per_call_read_back_as_given():
    """Venues given per call, equal to the session's or not, more distinct ones than a session
    remembers, built at run time or literals, each read back as given; None or no venue is the
    session's; anything but a string is refused naming the parameter."""
    meter = sm.Meter()
    s = meter.session("bot", venue="azure")
    venues = ["azure", "aws", "gcp", "".join(["a", "ws"]), "on-prem", "edge", "az" + "ure", None]
    for round_ in range(3):
        for i, v in enumerate(venues):
            e = s.model_call(
                provider="openai", model="gpt-5", api="responses", venue=v, input_tokens=i
            )
            assert (e.venue, e.input_tokens) == (v or "azure", i), (round_, v)
    bare = meter.session("bot")
    assert bare.model_call(provider="openai", model="gpt-5", api="responses").venue is None
    assert (
        bare.model_call(provider="openai", model="gpt-5", api="responses", venue="gcp").venue
        == "gcp"
    )
    with pytest.raises(sm.ValidationError, match="venue.*string"):
        s.model_call(provider="openai", model="gpt-5", api="responses", venue=3)  # type: ignore[arg-type]
    meter.flush()
    stored = [e.venue for e in meter.ledger.events() if e.kind == "model_call"]
    assert stored[: len(venues)] == [v or "azure" for v in venues]
