"""Hostile input: property tests over every entry point that takes outside data.

Event mappings (`Meter.record`, `sm.classify`), ruleset TOML, contract and price TOML, OTLP/JSON
(`import_otlp_json`) and raw HTTP requests (`sm.classify_request`). The property is the same
everywhere: the call returns, or raises a `StatemeterError` subclass of the right kind; nothing
else escapes (a Rust panic would surface as pyo3's `PanicException`, a `BaseException`: it fails
the test), and when a call raises, the ledger holds exactly what it held before.

Inputs are drawn two ways: from scratch (arbitrary JSON-ish values, text with lone surrogates,
bytes, huge integers, NaN, objects that are not JSON-able) and by mutating real documents
(the built-in ruleset, the example contract and prices, the OTLP samples, the request corpus),
which reaches the deeper validation paths random text rarely gets to. Oversize and deeply nested
values have explicit tests below; docs/classification.md ("Limits") documents each behaviour.

``make test-long`` runs the same properties with 20x the examples.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import statemeter as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statemeter.integrations.otel import import_otlp_json

ROOT = Path(__file__).parent.parent
EXAMPLES, LONG_EXAMPLES = 120, 2400
QUICK = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG = settings(QUICK, max_examples=LONG_EXAMPLES, derandomize=False)

RULESET_TOML = (ROOT / "src/classify/catalogue/default.toml").read_text()
CONTRACT_TOML = (ROOT / "examples/contracts/model-access-2025.toml").read_text()
PRICES_TOML = (ROOT / "examples/prices/illustrative.toml").read_text()
OTLP_DOC = json.loads((ROOT / "tests/data/otlp/genai-current.json").read_text())
REQUESTS = [
    case
    for f in sorted((ROOT / "tests/corpus/requests").glob("*.json"))
    for case in json.loads(f.read_text())
]

_METER: sm.Meter | None = None


def meter() -> sm.Meter:
    """One in-memory, sync-mode meter for the module: a raised call must leave it unchanged."""
    global _METER
    if _METER is None:
        _METER = sm.Meter(durability="sync")
    return _METER


def written() -> int:
    return len(meter().ledger)


# --------------------------------------------------------------------------- strategies

SURROGATE = st.sampled_from(["\ud800", "\udfff", "a\udc80b"])
TEXT = st.one_of(
    st.text(max_size=20),
    st.builds(lambda a, s: a + s, st.text(max_size=5), SURROGATE),
    st.sampled_from(
        [
            "",
            "openai",
            "responses",
            "model_call",
            "tool_call",
            "state_op",
            "session_start",
            "read",
            "write",
            "provider",
            "client",
            "x" * 5000,
            "\x00",
            "é" * 2100,
        ]
    ),
)
INTS = st.one_of(
    st.integers(-10, 10_000),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63) - 1]),
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -0.0, 1e308, 5e-324]),
)
SCALARS = st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXT)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
NOT_JSONABLE = st.sampled_from(
    [b"bytes", bytearray(b"x"), {1, 2}, object(), 1j, (1, {2: 3}), {1: "int key"}, range(3), print]
)
VALUES = st.one_of(JSONISH, NOT_JSONABLE)
FIELDS = [
    "kind",
    "id",
    "ts",
    "duration_ns",
    "session_id",
    "parent_id",
    "agent",
    "tenant",
    "attrs",
    "venue",
    "status",
    "runtime",
    "runtime_session_id",
    "provider",
    "model",
    "api",
    "endpoint",
    "request",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "tool",
    "tool_kind",
    "effect",
    "mcp_session_id",
    "op",
    "store",
    "holder",
    "scope",
    "key",
    "bytes",
    "seq",
    "tag",
]
KINDS = st.sampled_from(["model_call", "tool_call", "state_op", "session_start", "session_end"])
VALID_BASE = {
    "model_call": {"provider": "openai", "model": "gpt-5", "api": "responses"},
    "tool_call": {"tool": "search"},
    "state_op": {"op": "write", "store": "mem", "holder": "provider"},
    "session_start": {},
    "session_end": {},
}


@st.composite
def event_mappings(draw):
    """Mostly-valid events with a few fields replaced by anything, or fully random mappings."""
    if draw(st.integers(0, 3)) > 0:
        kind = draw(KINDS)
        m = {"kind": kind, **VALID_BASE[kind]}
        for _ in range(draw(st.integers(0, 3)) - 1):  # none in half the cases
            m[draw(st.sampled_from(FIELDS))] = draw(VALUES)
        if draw(st.booleans()):
            m["attrs"] = draw(st.dictionaries(TEXT, JSONISH, max_size=4))
        if draw(st.booleans()):
            m["request"] = draw(
                st.dictionaries(
                    st.sampled_from(
                        [
                            "previous_response_id",
                            "store",
                            "conversation",
                            "container",
                            "sessionId",
                            "runtimeSessionId",
                            "background",
                        ]
                    ),
                    VALUES,
                    max_size=3,
                )
            )
        return m
    return draw(
        st.one_of(
            st.dictionaries(st.one_of(st.sampled_from(FIELDS), TEXT), VALUES, max_size=6), VALUES
        )
    )


@st.composite
def mutated_text(draw, source: str):
    """`source` with a few line-level mutations: delete, duplicate, swap, retype a value,
    inject a random line, or cut the text short."""
    lines = source.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "dup", "swap", "value", "inject", "cut", "key"]))
        if op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "value" and "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lit = draw(
                st.one_of(
                    st.sampled_from(
                        [
                            '""',
                            "true",
                            "-1",
                            "1e999",
                            "[]",
                            "{}",
                            '"2026-13-45"',
                            '"-0.5"',
                            '"1.2.3"',
                            '"99999999999999999999999"',
                            "nan",
                            '["x", 1]',
                            "{ a = 1 }",
                            '"\\u0000"',
                            "1979-05-27T07:32:00Z",
                            '"stateful"',
                            '"provider"',
                            '"call"',
                            '"session"',
                        ]
                    ),
                    st.builds(json.dumps, st.text(max_size=12)),
                )
            )
            lines[i] = f"{key}= {lit}"
        elif op == "key" and "=" in lines[i]:
            lines[i] = (
                draw(
                    st.sampled_from(
                        [
                            "id",
                            "tag",
                            "when",
                            "level",
                            "tags",
                            "providers",
                            "venue",
                            "currency",
                            "extends",
                            "bogus",
                        ]
                    )
                )
                + " ="
                + lines[i].split("=", 1)[1]
            )
        elif op == "inject":
            lines.insert(
                i,
                draw(
                    st.one_of(
                        st.text(max_size=30),
                        st.sampled_from(
                            [
                                "[[rule]]",
                                "[[clause]]",
                                "[[price]]",
                                "[policy]",
                                "[x.y.z]",
                                "a.b.c = 1",
                                "[clause.interpretations.x]",
                                'extends = "strict"',
                                "= 1",
                                "[[",
                                "'''",
                            ]
                        ),
                    )
                ),
            )
        elif op == "cut":
            lines = lines[:i]
    return "\n".join(lines)


@st.composite
def mutated_json(draw, doc):
    """`doc` with a few values anywhere in it replaced, deleted or added."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 4))):
        node, path = doc, []
        while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)) > 0:
            key = draw(
                st.sampled_from(list(node) if isinstance(node, dict) else list(range(len(node))))
            )
            path.append((node, key))
            node = node[key]
        if not path:
            continue
        parent, key = path[-1]
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace":
            parent[key] = draw(JSONISH)
        elif op == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(TEXT)] = draw(JSONISH)
        else:
            parent.append(draw(JSONISH))
    return doc


def check_error(exc: BaseException, *allowed: type) -> None:
    """Only the named StatemeterError subclasses may escape; anything else fails the test."""
    if not isinstance(exc, allowed):
        raise exc


# --------------------------------------------------------------------------- event mappings


def prop_event_mapping(m) -> None:
    before = written()
    try:
        c = sm.classify(m)
    except sm.StatemeterError as e:
        check_error(e, sm.ValidationError)
    else:
        assert c.tag in ("stateless", "stateful") and c.evidence
    try:
        ev = meter().record(m)
    except sm.StatemeterError as e:
        check_error(e, sm.ValidationError)
        assert written() == before, "a rejected event was written"
    else:
        assert written() in (before, before + 1)  # +0: an idempotent repeat of an id
        assert ev.tag in ("stateless", "stateful") and ev.evidence


test_event_mappings = QUICK(given(event_mappings())(prop_event_mapping))
test_event_mappings_long = pytest.mark.long(LONG(given(event_mappings())(prop_event_mapping)))


# --------------------------------------------------------------------------- TOML documents


def prop_ruleset(text) -> None:
    try:
        rs = sm.Ruleset.from_toml(text)
    except sm.StatemeterError as e:
        check_error(e, sm.RulesetError)
        return
    # A ruleset that parsed classifies anything without failing, with evidence every time.
    for kind, base in VALID_BASE.items():
        c = sm.classify(
            {"kind": kind, **base, "request": {"previous_response_id": "r"}}
            if kind == "model_call"
            else {"kind": kind, **base},
            ruleset=rs,
        )
        assert c.evidence and c.tag in ("stateless", "stateful")


RULESET_TEXT = st.one_of(mutated_text(RULESET_TOML), st.text(max_size=200), TEXT)
test_ruleset_toml = QUICK(given(RULESET_TEXT)(prop_ruleset))
test_ruleset_toml_long = pytest.mark.long(LONG(given(RULESET_TEXT)(prop_ruleset)))


def report_ledger() -> sm.Ledger:
    m = sm.Meter()
    with m.session("bot", venue="azure") as s:
        s.model_call(
            provider="openai",
            model="gpt-5",
            api="responses",
            input_tokens=10,
            output_tokens=2,
            ts=1_767_225_600_000_000_000,
        )
        s.model_call(
            provider="openai",
            model="gpt-5",
            api="chat.completions",
            venue="aws",
            input_tokens=7,
            cached_tokens=3,
            ts=1_777_225_600_000_000_000,
        )
    m.flush()
    return m.ledger


def prop_contract_and_prices(contract_text, prices_text) -> None:
    contract = prices = None
    try:
        contract = sm.Contract.from_toml(contract_text)
    except sm.StatemeterError as e:
        check_error(e, sm.ContractError)
    try:
        prices = sm.PriceTable.from_toml(prices_text)
    except sm.StatemeterError as e:
        check_error(e, sm.ContractError)
    if contract is None:
        return
    try:
        report = report_ledger().report(contract=contract, prices=prices)
    except sm.StatemeterError as e:
        check_error(e, sm.ContractError, sm.ValidationError)
    else:
        for row in report.to_pylist():
            assert row["violating_events"] <= row["covered_events"]


CONTRACT_TEXT = st.one_of(mutated_text(CONTRACT_TOML), st.text(max_size=200))
PRICES_TEXT = st.one_of(mutated_text(PRICES_TOML), st.text(max_size=200))
test_contract_and_price_toml = QUICK(given(CONTRACT_TEXT, PRICES_TEXT)(prop_contract_and_prices))
test_contract_and_price_toml_long = pytest.mark.long(
    LONG(given(CONTRACT_TEXT, PRICES_TEXT)(prop_contract_and_prices))
)


# --------------------------------------------------------------------------- OTLP/JSON


def prop_otlp(doc) -> None:
    before = written()
    try:
        out = import_otlp_json(doc, meter())
    except sm.StatemeterError as e:
        check_error(e, sm.ValidationError)
        assert written() == before, "a rejected OTLP document was partly recorded"
    else:
        skipped = sum(out["skipped"].values())
        assert out["recorded"] + out["joined"] + out["errors"] + skipped == out["seen"]
        assert written() <= before + out["recorded"]


OTLP_INPUT = st.one_of(
    mutated_json(OTLP_DOC),
    mutated_json(OTLP_DOC).map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=200),
    st.dictionaries(TEXT, VALUES, max_size=3),
    st.builds(
        lambda x: json.dumps(
            {"resourceSpans": [{"scopeSpans": [{"spans": [x]}]}]}, default=str
        ).encode(),
        JSONISH,
    ),
)
test_otlp_json = QUICK(given(OTLP_INPUT)(prop_otlp))
test_otlp_json_long = pytest.mark.long(LONG(given(OTLP_INPUT)(prop_otlp)))


# --------------------------------------------------------------------------- raw HTTP


@st.composite
def http_requests(draw):
    case = draw(st.sampled_from(REQUESTS))

    def keep() -> bool:  # each part stays as in the corpus case 2 times in 3
        return draw(st.integers(0, 2)) > 0

    method = (
        case["method"]
        if keep()
        else draw(st.one_of(st.sampled_from(["GET", "post", "", " ", "P0ST", "DELETE"]), TEXT))
    )
    url = (
        case["url"]
        if keep()
        else draw(
            st.one_of(
                st.sampled_from(
                    [
                        "https://api.openai.com/",
                        "http://[::1",
                        "https://h:99999/x",
                        "not a url",
                        "https://user:pw@api.openai.com/v1/responses?key=secret",
                        "https://" + "a" * 5000,
                        "https://api.openai.com/v1/responses/" + "%ff" * 100,
                        "file:///etc/passwd",
                    ]
                ),
                TEXT,
                st.builds(lambda u, t: u + t, st.just(case["url"]), TEXT),
            )
        )
    )
    headers = (
        case.get("headers") or {}
        if keep()
        else draw(
            st.one_of(
                st.dictionaries(
                    st.one_of(
                        st.sampled_from(
                            [
                                "Mcp-Session-Id",
                                "OpenAI-Beta",
                                "anthropic-beta",
                                "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id",
                                "mcp-protocol-version",
                                "x-ms-user-isolation-key",
                            ]
                        ),
                        TEXT,
                    ),
                    st.one_of(TEXT, st.binary(max_size=20), INTS),
                    max_size=3,
                ),
                st.lists(st.tuples(TEXT, TEXT), max_size=2),
                INTS,
            )
        )
    )
    body_doc = case.get("body")
    body = (
        (json.dumps(body_doc).encode() if body_doc is not None else None)
        if keep()
        else draw(
            st.one_of(
                mutated_json(body_doc if isinstance(body_doc, dict) else {}).map(
                    lambda d: json.dumps(d).encode()
                ),
                st.binary(max_size=300),
                TEXT,
                st.none(),
                NOT_JSONABLE,
            )
        )
    )
    return method, url, headers, body


def prop_http(req) -> None:
    method, url, headers, body = req
    before = written()
    try:
        event, c = sm.classify_request(method, url, headers, body)
    except sm.StatemeterError as e:
        check_error(e, sm.ValidationError)
        return
    assert c.evidence and c.tag in ("stateless", "stateful")
    try:
        meter().record(event)  # what the capture integrations do with it
    except sm.StatemeterError as e:
        # The classifier fits what it keeps to the event's limits, so only a provider or
        # model it could not name ("unknown" is recorded fine) may be refused.
        check_error(e, sm.ValidationError)
        assert written() == before
    else:
        assert written() == before + 1


test_http_requests = QUICK(given(http_requests())(prop_http))
test_http_requests_long = pytest.mark.long(LONG(given(http_requests())(prop_http)))


# --------------------------------------------------------------------------- oversize values


def test_ten_megabyte_body_is_skimmed_not_kept():
    content = "SECRET " * 1_500_000  # ~10 MB of prompt
    body = json.dumps(
        {"model": "gpt-5", "input": content, "store": True, "previous_response_id": "resp_1"}
    ).encode()
    assert len(body) > 10_000_000
    t = time.perf_counter()
    event, c = sm.classify_request("POST", "https://api.openai.com/v1/responses", None, body)
    elapsed = time.perf_counter() - t
    assert event["request"] == {"previous_response_id": "resp_1", "store": True}
    assert "SECRET" not in json.dumps(event)
    assert c.tag == "stateful"
    assert elapsed < 5, elapsed  # one pass over the bytes (debug builds are slower)
    assert meter().record(event).tag == "stateful"


def test_oversize_request_values_are_truncated_and_listed():
    body = json.dumps({"model": "m" * 20_000, "previous_response_id": "r" * 100_000}).encode()
    event, c = sm.classify_request(
        "POST", "https://api.openai.com/v1/responses", {"OpenAI-Beta": "b" * 10_000_000}, body
    )
    assert set(event["attrs"]["truncated"]) == {
        "model",
        "request.OpenAI-Beta",
        "request.previous_response_id",
    }
    assert event["request"]["previous_response_id"].endswith("[truncated from 100000 bytes]")
    assert c.consumes_state  # the signal survives the truncation
    assert meter().record(event).tag == "stateful"  # and the event can be recorded


def test_oversize_event_values_are_rejected_whole():
    before = written()
    s = meter().session("bot")
    for kwargs, field in [
        ({"attrs": {"big": "x" * 70_000}}, "attrs"),
        ({"attrs": {"deep": json.loads("[" * 80 + "]" * 80)}}, "attrs"),
        ({"request": {"k": "v" * 70_000}}, "request"),
        ({"model": "m" * 5000}, "model"),
        ({"input_tokens": 2**64}, "input_tokens"),
    ]:
        args = {"provider": "openai", "model": "gpt-5", "api": "responses", **kwargs}
        with pytest.raises(sm.ValidationError) as info:
            s.model_call(**args)
        assert info.value.field.split(".")[0].split("[")[0] == field, info.value
    assert written() == before


DEEP_CHILD = """
    import json, sys, statemeter as sm
    from statemeter.integrations.otel import import_otlp_json
    n = int(sys.argv[1])
    out = {}
    url = "https://api.openai.com/v1/responses"
    content = b'{"model":"gpt-5","input":' + b"[" * n + b"]" * n + b',"previous_response_id":"r"}'
    event, c = sm.classify_request("POST", url, None, content)
    out["content"] = [event["request"], c.tag]
    param = b'{"model":"gpt-5","previous_response_id":' + b"[" * n + b"]" * n + b'}'
    event, c = sm.classify_request("POST", url, None, param)
    out["param"] = [event["request"], c.tag]
    unclosed = b'{"model":"gpt-5","input":' + b"[" * n
    event, c = sm.classify_request("POST", url, None, unclosed)
    out["unclosed"] = ["body_unread" in event["attrs"], c.tag]
    doc = b'{"resourceSpans":' + b"[" * n + b"]" * n + b"}"
    try:
        import_otlp_json(doc, sm.Meter())
        out["otlp"] = "ok"
    except sm.ValidationError as e:
        out["otlp"] = str(e)
    nested = {}
    cur = nested
    for _ in range(min(n, 100_000)):
        cur["a"] = {}
        cur = cur["a"]
    try:
        import_otlp_json(nested, sm.Meter())
        out["otlp_mapping"] = "ok"
    except sm.ValidationError as e:
        out["otlp_mapping"] = str(e)[:80]
    try:
        sm.classify({"kind": "tool_call", "tool": "t", "attrs": nested})
        out["attrs"] = "ok"
    except sm.ValidationError as e:
        out["attrs"] = str(e)[-40:]
    print(json.dumps(out))
"""


@pytest.mark.parametrize("depth", [129, 1000, 1_000_000])
def test_deeply_nested_json(depth):
    """In a child process: a stack overflow would abort the interpreter, not raise."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DEEP_CHILD), str(depth)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    # Content is skipped at any depth; the parameters beside it are still read.
    assert out["content"] == [{"previous_response_id": "r"}, "stateful"]
    # A parameter nested past serde_json's limit is kept as present-but-unreadable.
    assert out["param"] == [
        {"previous_response_id": "(unreadable: nested deeper than 128 levels)"},
        "stateful",
    ]
    assert out["unclosed"] == [True, "stateless"]
    assert "recursion limit exceeded" in out["otlp"]
    assert out["otlp_mapping"].startswith("otlp: ")
    assert out["attrs"].endswith("nested deeper than 64 levels")
