"""sm.classify and Ruleset: the built-in catalogues and user rulesets."""

from __future__ import annotations

import pytest
import statemeter as sm


def call(api, request=None, provider="openai", **kw):
    return {
        "kind": "model_call",
        "provider": provider,
        "model": "m",
        "api": api,
        "request": request,
        **kw,
    }


def signals(c: sm.Classification) -> set[str]:
    return {e.signal for e in c.evidence}


def test_plain_chat_completion_is_stateless_with_evidence():
    c = sm.classify(call("chat.completions"))
    assert (c.tag, c.consumes_state, c.creates_state, c.state_holder) == (
        "stateless",
        False,
        False,
        None,
    )
    assert c.evidence, "every event carries evidence"


def test_previous_response_id_is_stateful():
    c = sm.classify(call("responses", {"previous_response_id": "resp_1", "store": True}))
    assert c.tag == "stateful" and c.consumes_state and c.state_holder == "provider"
    assert "request.previous_response_id" in signals(c)


def test_responses_store_default_creates_state_but_stays_stateless():
    c = sm.classify(call("responses"))
    assert c.creates_state and not c.consumes_state
    assert c.tag == "stateless"
    strict = sm.classify(call("responses"), ruleset=sm.Ruleset.strict())
    assert strict.tag == "stateful"
    off = sm.classify(call("responses", {"store": False}))
    assert not off.creates_state


def test_retention_and_caching_are_not_state():
    c = sm.classify(call("chat.completions", {"store": True}))
    assert c.tag == "stateless" and not c.consumes_state
    assert "request.store" in signals(c)
    c = sm.classify(call("messages", {"cache_control": True}, provider="anthropic"))
    assert c.tag == "stateless"


@pytest.mark.parametrize(
    "event",
    [
        call("responses", {"conversation": "conv_1"}),
        call("threads.runs", {"thread_id": "thread_1"}),
        call("messages", {"container": "cntr_1"}, provider="anthropic"),
        call("invoke_agent", {"sessionId": "s1"}, provider="aws.bedrock"),
        call("invoke_agent_runtime", {"runtimeSessionId": "r" * 33}, provider="aws.bedrock"),
        call("interactions", {"previous_interaction_id": "i1"}, provider="gcp.gemini"),
        {"kind": "tool_call", "tool": "search", "tool_kind": "mcp", "mcp_session_id": "m1"},
        {"kind": "state_op", "op": "read", "store": "mem", "holder": "client"},
    ],
)
def test_stateful_signals(event):
    assert sm.classify(event).tag == "stateful"


@pytest.mark.parametrize(
    "event",
    [
        call("converse", provider="aws.bedrock"),
        call("invoke_model", provider="aws.bedrock"),
        call("generate_content", provider="gcp.gemini"),
        call("messages", provider="anthropic"),
        {"kind": "tool_call", "tool": "search", "tool_kind": "mcp"},
        {"kind": "tool_call", "tool": "search"},
    ],
)
def test_stateless_signals(event):
    assert sm.classify(event).tag == "stateless"


def sent(method, event):
    """`event` as the request capture records it: with its HTTP method."""
    return {**event, "attrs": {"http.request.method": method}}


@pytest.mark.parametrize(
    ("event", "kinds", "flags", "default", "strict"),
    [
        # Content references are read, not continued: stateless unless strict.
        (
            call("responses", {"store": False, "file_ids": ["file-1"]}),
            ["content"],
            "c",
            "stateless",
            "stateful",
        ),
        (
            call("generate_content", {"cachedContent": "cachedContents/1"}, provider="gcp.gemini"),
            ["content"],
            "c",
            "stateless",
            "stateful",
        ),
        # GET reads, POST to a collection creates, DELETE acts on the object.
        (
            sent("GET", call("conversations", {"conversation_id": "conv_1"})),
            ["conversation"],
            "c",
            "stateful",
            "stateful",
        ),
        (sent("POST", call("conversations", {})), ["conversation"], "m", "stateless", "stateful"),
        (
            sent("DELETE", call("conversations", {"conversation_id": "conv_1"})),
            ["conversation"],
            "",
            "stateful",
            "stateful",
        ),
        (
            sent("DELETE", call("files", {"file_id": "file-1"})),
            ["content"],
            "",
            "stateless",
            "stateful",
        ),
        (
            call("responses.compact", {"previous_response_id": "resp_1"}),
            ["conversation"],
            "c",
            "stateful",
            "stateful",
        ),
        # Prompt caching, stored completions and the client-held memory tool are not state.
        (
            call("chat.completions", {"store": True, "prompt_cache_key": "k"}),
            [],
            "",
            "stateless",
            "stateless",
        ),
        (
            call("messages", {"memory_tool": True}, provider="anthropic"),
            [],
            "",
            "stateless",
            "stateless",
        ),
    ],
)
def test_which_state_and_what_the_request_does_with_it(event, kinds, flags, default, strict):
    c = sm.classify(event)
    assert c.state_kinds == kinds
    assert (c.consumes_state, c.creates_state) == ("c" in flags, "m" in flags)
    assert c.tag == default
    assert sm.classify(event, ruleset=sm.Ruleset.strict()).tag == strict
    assert {e.state for e in c.evidence if e.state} == set(kinds)


def test_state_op_holder_and_direction():
    w = sm.classify({"kind": "state_op", "op": "write", "store": "cp", "holder": "client"})
    assert w.creates_state and w.state_holder == "client" and w.tag == "stateful"
    assert not w.session_stateful  # client state does not make the session stateful...
    strict = sm.classify(
        {"kind": "state_op", "op": "write", "store": "cp", "holder": "client"},
        ruleset=sm.Ruleset.strict(),
    )
    assert strict.session_stateful  # ...except under the strict ruleset
    r = sm.classify({"kind": "state_op", "op": "read", "store": "m", "holder": "provider"})
    assert r.consumes_state and r.state_holder == "provider" and r.session_stateful


def test_user_ruleset_extends_default():
    rs = sm.Ruleset.from_toml("""
name = "ours"
extends = "default"

[[rule]]
id = "ours-gateway-session"
when = { kind = "model_call" }
has = ["attrs.gateway_session"]
consumes_state = true
state_holder = "provider"
tag = "stateful"
explain = "our gateway keeps the conversation"
""")
    assert rs.name == "ours"
    assert len(rs.rules) == len(sm.Ruleset.default().rules) + 1
    c = sm.classify(call("chat.completions", attrs={"gateway_session": "g1"}), ruleset=rs)
    assert c.tag == "stateful" and c.ruleset == "ours"
    assert "ours-gateway-session" in {e.rule for e in c.evidence}


@pytest.mark.parametrize(
    "text",
    [
        '[[rule]]\nid = "x"\nwhen = { kind = "model_call" }\nexplain = "e"\ncolour = "red"\n',
        '[[rule]]\nid = "x"\nexplain = "e"\n',
        '[[rule]]\nid = "x"\nwhen = { kind = "model_call" }\ntag = "maybe"\nexplain = "e"\n',
        'extends = "nothing"\n',
        "this is not toml",
    ],
)
def test_bad_rulesets(text):
    with pytest.raises(sm.RulesetError):
        sm.Ruleset.from_toml(text)


def test_ruleset_load(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('extends = "strict"\nname = "mine"\n')
    assert sm.Ruleset.load(p).name == "mine"
    with pytest.raises(sm.RulesetError):
        sm.Ruleset.load(tmp_path / "missing.toml")


def test_classify_rejects_bad_events():
    with pytest.raises(sm.ValidationError):
        sm.classify({"kind": "model_call", "provider": "openai"})
    with pytest.raises(sm.ValidationError):
        sm.classify("not a mapping")


def test_meter_uses_its_ruleset():
    meter = sm.Meter(ruleset=sm.Ruleset.strict())
    e = meter.session("b").model_call(provider="openai", model="m", api="responses")
    assert e.tag == "stateful"
    assert meter.ledger.events()[0].classification.ruleset == "strict"


@pytest.mark.parametrize("name", ["default", "strict"])
def test_the_built_in_names_are_reserved_and_the_digest_tells_rulesets_apart(name, tmp_path):
    """A custom ruleset cannot pass for a built-in one: the names are reserved, and every
    classification, event and Arrow row carries the digest of its ruleset's catalogue."""
    with pytest.raises(sm.RulesetError, match=f"name {name!r}".replace("'", '"')):
        sm.Ruleset.from_toml(f'name = "{name}"\nextends = "{name}"\n')
    (tmp_path / "r.toml").write_text(f'name = "{name}"\n')
    with pytest.raises(sm.RulesetError, match="reserved"):
        sm.Ruleset.load(tmp_path / "r.toml")
    builtin = getattr(sm.Ruleset, name)()
    mine = sm.Ruleset.from_toml(f'name = "{name}-copy"\nextends = "{name}"\n')
    assert len(builtin.digest) == 16 and mine.digest != builtin.digest
    event = call("responses", request={"previous_response_id": "r"})
    assert sm.classify(event, ruleset=builtin).ruleset_digest == builtin.digest
    assert sm.classify(event, ruleset=mine).ruleset_digest == mine.digest
    meter = sm.Meter(tmp_path / "l.db", ruleset=mine)
    recorded = meter.session("b").model_call(provider="openai", model="m", api="responses")
    assert (recorded.ruleset, recorded.ruleset_digest) == (f"{name}-copy", mine.digest)
    meter.flush()
    (back,) = meter.ledger.events()
    assert back.ruleset_digest == back.classification.ruleset_digest == mine.digest
    pa = pytest.importorskip("pyarrow")
    table = pa.table(meter.ledger.events())
    assert table.column("ruleset_digest").to_pylist() == [mine.digest]
    meter.close()


# -- which state: state kinds ---------------------------------------------------------------


def test_state_kinds_are_sorted_unique_and_each_evidence_names_its_kind(kinds_ruleset):
    c = sm.classify(
        call(
            "responses",
            {"previous_response_id": "r", "file_id": "f", "cache_key": "k", "agent_session": "a"},
        ),
        ruleset=kinds_ruleset,
    )
    assert c.state_kinds == ["content", "conversation", "runtime"]
    assert [(e.rule, e.state) for e in c.evidence] == [
        ("chain", "conversation"),
        ("file", "content"),
        ("runtime", "runtime"),
        ("cache-note", None),
    ]
    d = c.to_dict()
    assert d["state_kinds"] == ["content", "conversation", "runtime"]
    assert [e["state"] for e in d["evidence"]] == ["conversation", "content", "runtime", None]
    assert c.evidence[0].to_dict() == {
        "rule": "chain",
        "tag": "stateful",
        "signal": "request.previous_response_id",
        "explain": "continues a stored response",
        "state": "conversation",
    }
    assert "state='conversation'" in repr(c.evidence[0]).replace('"', "'")
    assert "state_kinds=" in repr(c) and "'runtime'" in repr(c).replace('"', "'")


def test_no_kind_gives_an_empty_list(kinds_ruleset):
    for request in (None, {"cache_key": "k"}):
        c = sm.classify(call("responses", request), ruleset=kinds_ruleset)
        assert c.state_kinds == [] and c.to_dict()["state_kinds"] == []
    # The built-in fallback evidence names no kind either.
    c = sm.classify({"kind": "tool_call", "tool": "x"}, ruleset=kinds_ruleset)
    assert [(e.rule, e.state) for e in c.evidence] == [("no-state-signal", None)]


def test_content_alone_is_a_kind_without_making_the_call_stateful(kinds_ruleset):
    c = sm.classify(call("responses", {"file_id": "f"}), ruleset=kinds_ruleset)
    assert (c.tag, c.consumes_state, c.state_kinds) == ("stateless", True, ["content"])


def test_ruleset_rules_list_each_rules_kind(kinds_ruleset):
    rules = {r["id"]: r for r in kinds_ruleset.rules}
    assert rules["chain"]["state"] == "conversation"
    assert rules["cache-note"]["state"] is None
    assert all("state" in r for r in sm.Ruleset.default().rules)


def test_provider_held_state_on_an_unknown_operator_has_holder_unknown(kinds_ruleset):
    c = sm.classify(
        call("responses", {"previous_response_id": "r"}, provider="unknown"),
        ruleset=kinds_ruleset,
    )
    assert (c.state_holder, c.tag, c.state_kinds) == ("unknown", "stateful", ["conversation"])
    assert c.to_dict()["state_holder"] == "unknown"
    known = sm.classify(call("responses", {"previous_response_id": "r"}), ruleset=kinds_ruleset)
    assert known.state_holder == "provider"


def test_unknown_state_kind_is_a_ruleset_error():
    with pytest.raises(sm.RulesetError, match="state"):
        sm.Ruleset.from_toml(
            '[[rule]]\nid = "x"\nhas = ["request.a"]\nstate = "session"\nexplain = "e"\n'
        )
