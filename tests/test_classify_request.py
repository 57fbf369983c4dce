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
        case["method"], case["url"], case["headers"], body, venues=case.get("venues")
    )
    want = case["expect"]
    assert event["kind"] == want["kind"]
    for key in ("provider", "api", "model", "tool", "tool_kind", "mcp_session_id"):
        if key in want:
            assert event.get(key) == want[key], key
    venue = event.get("venue") or event["attrs"]["venue_evidence"]["venue"]
    assert venue == want["venue"]
    assert (cl.consumes_state, cl.creates_state, cl.tag) == (
        want["consumes_state"],
        want["creates_state"],
        want["tag"],
    )
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
