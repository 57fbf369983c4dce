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
        call("threads.runs", {}),
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
