"""Every native class's repr() writes values as Python does (``'provider'``, ``None``,
``True``, ``['a', 'b']``), never as Rust's debug formatting (``Some("provider")``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import statemeter as sm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RUST_DEBUG = re.compile(r'Some\(|="')  # Rust's Option, or a value in Rust's double quotes


def keyword_values(text: str) -> dict[str, object]:
    """The keyword arguments of a ``Name(key=value, ...)`` repr, each read as a Python literal."""
    call = ast.parse(text, mode="eval").body
    assert isinstance(call, ast.Call), text
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}


def test_classification_and_evidence_reprs_are_python_literals():
    c = sm.classify(
        {
            "kind": "model_call",
            "provider": "openai",
            "model": "gpt-5",
            "api": "responses",
            "request": {"previous_response_id": "resp_1"},
        }
    )
    values = keyword_values(repr(c))
    assert values == {
        "tag": "stateful",
        "consumes_state": True,
        "creates_state": True,
        "state_holder": "provider",
        "state_kinds": ["conversation"],
        "rules": [e.rule for e in c.evidence],
    }
    ev = keyword_values(repr(c.evidence[-1]))
    assert ev["rule"] == "openai-responses-previous-response-id"
    assert ev["state"] == "conversation" and ev["explain"] == c.evidence[-1].explain
    plain = sm.classify({"kind": "tool_call", "tool": "search"})
    assert keyword_values(repr(plain))["state_holder"] is None
    assert keyword_values(repr(plain.evidence[0]))["state"] is None


def test_session_event_and_meter_reprs(tmp_path):
    name = 'it\'s a "bot"\x1b'
    meter = sm.Meter(tmp_path / "l.db")
    s = meter.session(name, venue="azure")
    values = keyword_values(repr(s))
    assert values == {
        "session_id": s.session_id,
        "agent": name,
        "venue": "azure",
        "runtime": None,
    }
    call = s.model_call(provider="openai", model="gpt-5", api="chat.completions")
    op = s.state_op("write", store="mem", holder="client")
    meter.flush()
    assert "provider='openai' model='gpt-5' api='chat.completions' tag='stateless'" in repr(call)
    assert "op='write' store='mem' tag='stateful'" in repr(op)
    stored = meter.ledger.events(kind="model_call")[0]
    assert repr(stored).endswith("tag='stateless' session_tag='stateless'>")
    assert f"Meter({str(tmp_path / 'l.db')!r}, durability='batch', ruleset='default'" in repr(meter)
    assert repr(meter.ledger) == f"Ledger({str(tmp_path / 'l.db')!r})"
    head = meter.ledger.head()
    assert keyword_values(repr(head)) == {
        "seq": head.seq,
        "hash": head.hash,
        "ledger_id": meter.ledger.ledger_id,
    }
    v = keyword_values(repr(meter.ledger.verify()))
    assert v == {"ok": True, "events": 2, "head": str(head), "first_bad_seq": None, "problem": None}
    swapped = meter.ledger.verify(head=sm.Head(head.seq, "00" * 32))
    v = keyword_values(repr(swapped))
    assert v["ok"] is False and v["problem"] == swapped.problem and v["first_bad_seq"] == 2
    assert (
        repr(meter.ledger.sql("SELECT 1 AS a, 2 AS b")) == "SqlResult(1 rows, columns=['a', 'b'])"
    )
    for text in (repr(s), repr(call), repr(op), repr(meter), repr(meter.ledger)):
        assert not RUST_DEBUG.search(text), text
    meter.close()


def test_ruleset_contract_and_price_reprs():
    assert keyword_values(repr(sm.Ruleset.strict()))["name"] == "strict"
    contract = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2026-amended.toml")
    assert keyword_values(repr(contract)) == {
        "id": "model-access-2026-amended",
        "clauses": ["stateless-on-azure"],
        "interpretations": 3,
    }
    prices = sm.PriceTable.load(EXAMPLES / "prices" / "illustrative.toml")
    values = keyword_values(repr(prices))
    assert values["currency"] == "USD" and values["as_of"] == "2026-01-15"
