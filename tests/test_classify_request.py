"""sm.classify_request over the labelled corpus (tests/corpus/requests/*.json, also checked in
Rust), plus the argument forms it accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import statemeter as sm

CORPUS = Path(__file__).parent / "corpus" / "requests"


def cases() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in sorted(CORPUS.glob("*.json")):
        for c in json.loads(f.read_text()):
            out.append((f"{f.stem}: {c['name']}", c))
    return out


CASES = cases()


def test_the_corpus_is_large_and_covers_every_provider() -> None:
    assert len(CASES) >= 60
    providers = {c["expect"]["provider"] for _, c in CASES}
    assert {
        "openai",
        "azure.ai.openai",
        "aws.bedrock",
        "anthropic",
        "gcp.gemini",
        "gcp.vertex_ai",
        None,
    } <= providers


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
def test_corpus_case(name: str, case: dict[str, Any]) -> None:
    body = case.get("body_text")
    if body is None and case.get("body") is not None:
        body = json.dumps(case["body"]).encode()
    event, cl = sm.classify_request(
        case["method"],
        case["url"],
        case["headers"],
        body,
        venues=case.get("venues"),
        providers=case.get("providers"),
    )
    want = case["expect"]
    assert event["kind"] == want["kind"]
    for key in ("provider", "api", "model", "tool", "tool_kind", "mcp_session_id"):
        if key in want:
            assert event.get(key) == want[key], key
    venue = event.get("venue") or event["attrs"]["venue_evidence"]["venue"]
    assert venue == want["venue"]
    got = {"consumes_state": cl.consumes_state, "creates_state": cl.creates_state, "tag": cl.tag}
    assert {k: got[k] for k in got if k in want} == {k: want[k] for k in got if k in want}
    assert event["attrs"]["http.request.method"] == case["method"].strip().upper()
    if event["kind"] == "model_call":
        evidence = event["attrs"]["provider_evidence"]
        assert evidence["provider"] == event["provider"]
        if "provider_rule" in want:
            assert evidence["rule"] == want["provider_rule"]
        if "shape" in want:
            assert evidence["shape"] == want["shape"]
    for key, value in want.get("attrs", {}).items():
        assert event["attrs"].get(key) == value, key
    if "rules" in want:
        assert [e.rule for e in cl.evidence] == want["rules"]
    if "request" in want:
        assert event.get("request") == want["request"]
    assert "SECRET" not in json.dumps(event)
    # The event records as it is.
    meter = sm.Meter()
    recorded = meter.record(event)
    assert recorded.tag == cl.tag


def test_argument_forms() -> None:
    url = "https://api.openai.com/v1/responses"
    body = {"model": "gpt-5", "input": "hi", "previous_response_id": "resp_1"}
    raw = json.dumps(body)
    forms = [
        ({"OpenAI-Beta": "agents=v1"}, raw),
        ([(b"openai-beta", b"agents=v1")], raw.encode()),
        ([("OpenAI-Beta", "agents=v1")], bytearray(raw.encode())),
        ({"openai-beta": "agents=v1"}, memoryview(raw.encode())),
    ]
    for headers, b in forms:
        event, cl = sm.classify_request("post", url, headers, b)
        assert event["request"] == {"previous_response_id": "resp_1", "OpenAI-Beta": "agents=v1"}
        assert cl.tag == "stateful"
    event, cl = sm.classify_request("GET", "https://api.openai.com/v1/responses/resp_1")
    assert (event["api"], cl.tag) == ("responses.retrieve", "stateful")
    strict = sm.classify_request(
        "POST", url, None, '{"model":"gpt-5","input":"x"}', ruleset=sm.Ruleset.strict()
    )[1]
    assert (strict.tag, strict.creates_state) == ("stateful", True)


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(sm.ValidationError) as e:
        sm.classify_request("POST", "/v1/responses")
    assert e.value.field == "url"
    with pytest.raises(sm.ValidationError) as e:
        sm.classify_request("P O", "https://api.openai.com/v1/responses")
    assert e.value.field == "method"
    with pytest.raises(sm.ValidationError) as e:
        sm.classify_request("POST", "https://api.openai.com/v1/responses", None, 12)
    assert e.value.field == "body"
    with pytest.raises(sm.ValidationError) as e:
        sm.classify_request("POST", "https://api.openai.com/v1/responses", [("a",)])
    assert e.value.field == "headers"
    with pytest.raises(sm.ValidationError) as e:
        sm.classify_request("POST", "https://api.openai.com/v1/responses", venues={"h": 1})
    assert e.value.field == "venues"
    with pytest.raises(sm.ValidationError) as e:
        sm.classify_request("POST", "https://gw.example/v1/responses", providers={"h": None})
    assert e.value.field == "providers"


def test_who_serves_a_request() -> None:
    """An OpenAI-compatible API is OpenAI's only on OpenAI's hosts; the operator's host names
    the operator; the user's providers mapping names any other host's operator."""
    body = '{"model":"m","messages":[{"role":"user","content":"hi"}]}'

    def who(url: str, **kw: Any) -> tuple[str, str, str]:
        event, _ = sm.classify_request("POST", url, None, body, **kw)
        return event["provider"], event["venue"], event["attrs"]["provider_evidence"]["rule"]

    assert who("https://api.openai.com/v1/chat/completions") == (
        "openai",
        "openai",
        "provider-endpoint",
    )
    assert who("https://api.groq.com/openai/v1/chat/completions") == (
        "groq",
        "groq",
        "provider-endpoint",
    )
    assert who("https://gw.example/v1/chat/completions") == (
        "unknown",
        "unknown",
        "provider-unknown-host",
    )
    assert who(
        "https://gw.example/v1/chat/completions",
        venues={"gw.example": "on_prem"},
        providers={"*.example": "ignored", "gw.example": "openai"},
    ) == ("openai", "on_prem", "provider-user-mapping")
