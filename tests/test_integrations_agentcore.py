"""AgentCore Runtime spans linked to the client's InvokeAgentRuntime calls by runtime session
id: the client side through a real boto3 client against a loopback server, the runtime side
from a recorded-shape OTLP/JSON export (tests/data/runtimes/agentcore_runtime_spans.otlp.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import statemeter as sm
from loopback import Loopback, json_answer
from statemeter.integrations import agentcore
from statemeter.integrations import botocore as capture
from test_integrations_botocore import ARN, PROVIDERS, client

ROOT = Path(__file__).resolve().parent.parent
SPANS = Path(__file__).parent / "data" / "runtimes" / "agentcore_runtime_spans.otlp.json"
RS = "claims-7f3a9c2e-4b1d-4e8f-9a6b-2c5d8e1f0a3b-session-0001"
CONTRACT = ROOT / "examples" / "contracts" / "model-access-2025.toml"


@pytest.fixture
def lb() -> Any:
    with Loopback() as server:
        server.route(
            "POST",
            f"/runtimes/{quote(ARN, safe='')}/invocations",
            json_answer({"result": "claim 4411 is covered"}),
        )
        yield server


def invoke(lb: Loopback, meter: sm.Meter) -> sm.Session:
    with meter.session("claims-portal") as s:
        core = capture.instrument(client(lb, "bedrock-agentcore"), s, providers=PROVIDERS)
        out = core.invoke_agent_runtime(
            agentRuntimeArn=ARN, runtimeSessionId=RS, payload=b'{"prompt": "claim 4411?"}'
        )
        out["response"].read()
    return s


def test_spans_become_children_of_the_invoke_agent_runtime_call(
    lb: Loopback, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    meter = sm.Meter(path)
    s = invoke(lb, meter)
    got = agentcore.import_spans(SPANS, meter)
    assert got == {
        "seen": 4,
        "recorded": 3,
        "joined": 0,
        "errors": 0,
        "skipped": {"agent_or_workflow": 1},
        "linked": 3,
        "runtime_sessions": 0,
    }
    meter.flush()
    rows = meter.ledger.events().to_pylist()
    outer = next(e for e in rows if e.get("api") == "invoke_agent_runtime")
    inner = [e for e in rows if e["parent_id"] == outer["id"]]
    assert [(e["kind"], e.get("model") or e.get("tool"), e.get("input_tokens")) for e in inner] == [
        ("model_call", "gpt-5.4-mini", 2400),
        ("tool_call", "lookup_claim", None),
        ("model_call", "gpt-5.4-mini", 2900),
    ]
    assert {e["session_id"] for e in inner} == {s.session_id}
    assert {e["attrs"]["aws.bedrock_agentcore.runtime_session_id"] for e in inner} == {RS}
    # Stateless calls at call level in a session that is stateful at session level.
    assert [(e["tag"], e["session_tag"]) for e in inner] == [("stateless", "stateful")] * 3
    # Importing again records nothing new.
    assert agentcore.import_spans(SPANS, meter)["recorded"] == 3
    meter.flush()
    assert len(meter.ledger.events()) == len(rows)
    meter.close()
    for f in [path, *tmp_path.glob("audit.db-*")]:
        assert b"CONTENT-MARKER" not in f.read_bytes()


def test_the_report_covers_inner_calls_at_call_level_not_session_level(lb: Loopback) -> None:
    meter = sm.Meter()
    invoke(lb, meter)
    agentcore.import_spans(SPANS, meter)
    meter.flush()
    report = meter.ledger.report(contract=sm.Contract.load(CONTRACT))
    cells = {r["interpretation"]: r for r in report.to_pylist()}
    # The two OpenAI calls the agent made inside its AgentCore runtime session.
    assert (cells["call-level"]["covered_events"], cells["call-level"]["covered_input_tokens"]) == (
        2,
        5300,
    )
    assert cells["session-level"]["covered_events"] == 0
    assert cells["all-calls"]["covered_events"] == 2
    # They ran at OpenAI, not on Azure.
    assert cells["call-level"]["violating_events"] == 2
    assert cells["session-level"]["violating_events"] == 0


def test_a_runtime_session_no_call_names_gets_a_session_of_its_own() -> None:
    meter = sm.Meter()
    got = agentcore.import_spans(json.loads(SPANS.read_text()), meter)
    assert (got["linked"], got["runtime_sessions"]) == (0, 1)
    assert agentcore.import_spans(SPANS, meter)["runtime_sessions"] == 0
    meter.flush()
    [row] = meter.ledger.sessions().to_pylist()
    assert (row["session_id"], row["runtime"], row["runtime_session_id"]) == (RS, "agentcore", RS)
    assert (row["model_calls"], row["tool_calls"], row["session_tag"]) == (2, 1, "stateful")
    calls = meter.ledger.events(kind="model_call").to_pylist()
    assert [(e["tag"], e["session_tag"], e["parent_id"]) for e in calls] == [
        ("stateless", "stateful", None)
    ] * 2


def test_bad_input_is_refused_and_records_nothing() -> None:
    meter = sm.Meter()
    with pytest.raises(sm.ValidationError):
        agentcore.import_spans(b"{not json", meter)
    with pytest.raises(sm.ValidationError) as info:
        agentcore.import_spans(SPANS, meter, runtime="")
    assert info.value.field == "runtime"
    meter.flush()
    assert len(meter.ledger.events()) == 0
