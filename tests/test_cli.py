"""The `statemeter` command line, run as a subprocess (`python -m statemeter`)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import statemeter as sm
from test_report import EVENTS

EXAMPLES = Path(__file__).parent.parent / "examples"
CONTRACT = EXAMPLES / "contracts" / "model-access-2026-amended.toml"
PRICES = EXAMPLES / "prices" / "illustrative.toml"


def run(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statemeter", *map(str, args)],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "audit.db"
    with sm.Meter(path) as meter:
        for e in EVENTS:
            meter.record(e)
    return path


def one_line_error(p: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("statemeter: error: ")
    for n in needles:
        assert n in lines[0], lines[0]
    assert p.stdout == ""


def test_report_json_matches_the_api(ledger):
    p = run(
        "report",
        ledger,
        "--contract",
        CONTRACT,
        "--prices",
        PRICES,
        "--by",
        "venue,month",
        "--format",
        "json",
    )
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    api = sm.Ledger.open(ledger).report(
        sm.Contract.load(CONTRACT), sm.PriceTable.load(PRICES), by=["venue", "month"]
    )
    assert rows == api.to_pylist()
    assert list(rows[0])[:4] == ["interpretation", "clause", "venue", "month"]
    assert "covered_cost_nanos" in rows[0]


def test_report_window_csv_and_table(ledger):
    p = run(
        "report",
        ledger,
        "--contract",
        CONTRACT,
        "--since",
        "2026-04-01",
        "--until",
        "2026-05-01",
        "--format",
        "csv",
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("interpretation,clause,covered_events,")
    call = next(line for line in lines if line.startswith("call-level,"))
    # e5 (violates the Azure-only version) and e6 (AWS allowed after the amendment).
    assert call.split(",")[2:3] == ["2"] and call.split(",")[6] == "1"
    p = run("report", ledger, "--contract", CONTRACT, "--prices", PRICES)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0].split()[:3] == ["interpretation", "clause", "covered"]
    assert "cost (USD)" in p.stdout and "rounded half to even" in p.stdout


def test_costs(ledger):
    p = run("costs", ledger, "--prices", PRICES, "--by", "kind", "--format", "json")
    assert p.returncode == 0, p.stderr
    rows = {r["kind"]: r for r in json.loads(p.stdout)}
    assert set(rows) == {"model_call", "session_end", "state_op"}
    assert rows["model_call"]["events"] == 10
    p = run("costs", ledger, "--prices", PRICES)
    assert p.returncode == 0 and "cost (USD)" in p.stdout
    p = run("costs", ledger, "--prices", PRICES, "--wide")
    assert p.returncode == 0 and "unpriced events" in p.stdout


def test_scenario(ledger):
    p = run(
        "scenario",
        ledger,
        "to-azure",
        "--contract",
        CONTRACT,
        "--select",
        "session_tag=stateful",
        "--venue",
        "azure",
        "--baseline-prices",
        PRICES,
        "--format",
        "json",
    )
    assert p.returncode == 0, p.stderr
    rows = {r["interpretation"]: r for r in json.loads(p.stdout)}
    assert rows["all-calls"]["violating_events_delta"] < 0
    p = run("scenario", ledger, "x", "--contract", CONTRACT, "--select", "colour")
    one_line_error(p, "--select")


def test_verify_intact_and_tampered(ledger, tmp_path):
    p = run("verify", ledger)
    assert p.returncode == 0 and p.stdout.startswith("ok: 14 events"), p
    head = str(sm.Ledger.open(ledger).head())
    p = run("verify", ledger, "--head", head, "--format", "json")
    assert p.returncode == 0 and json.loads(p.stdout)["ok"] is True
    bad = tmp_path / "tampered.db"
    bad.write_bytes(ledger.read_bytes())
    con = sqlite3.connect(bad)
    rec = con.execute("select record from events where seq = 3").fetchone()[0]
    con.execute(
        "update events set record = ? where seq = 3",
        (rec.replace('"input_tokens":2000', '"input_tokens":20'),),
    )
    con.commit()
    con.close()
    p = run("verify", bad)
    assert p.returncode == 1, p
    assert "NOT INTACT: first bad seq 3" in p.stdout
    p = run("verify", bad, "--format", "json")
    assert p.returncode == 1 and json.loads(p.stdout)["first_bad_seq"] == 3
    p = run("verify", ledger, "--head", "nonsense")
    one_line_error(p)


def test_verify_of_a_ledger_without_events_says_not_intact(ledger, tmp_path):
    bad = tmp_path / "gutted.db"
    bad.write_bytes(ledger.read_bytes())
    con = sqlite3.connect(bad)
    con.execute("drop table events")
    con.commit()
    con.close()
    p = run("verify", bad)
    assert p.returncode == 1, p
    assert p.stdout.startswith("NOT INTACT: first bad seq 1: altered:"), p
    assert 'table "events" is missing' in p.stdout


def test_classify_event_and_request(tmp_path):
    ev = tmp_path / "event.json"
    ev.write_text(
        json.dumps(
            {
                "kind": "model_call",
                "provider": "openai",
                "model": "gpt-5",
                "api": "responses",
                "request": {"previous_response_id": "resp_1"},
            }
        )
    )
    p = run("classify", ev)
    assert p.returncode == 0, p.stderr
    assert "tag: stateful" in p.stdout and "request.previous_response_id" in p.stdout
    assert "\nstate_kinds: " in p.stdout
    p = run("classify", ev, "--format", "json")
    assert json.loads(p.stdout)["tag"] == "stateful"
    p = run("classify", "-", "--format", "csv", stdin=ev.read_text())
    assert p.returncode == 0 and p.stdout.startswith("rule,tag,signal,explain,state\n")
    req = tmp_path / "request.json"
    body = {"model": "gpt-5", "previous_response_id": "resp_1", "input": "hi"}
    request = {
        "method": "POST",
        "url": "https://api.openai.com/v1/responses",
        "headers": {"content-type": "application/json"},
    }
    # The body as the text sent, and as a JSON object (how tests/corpus writes requests).
    for as_written in (json.dumps(body), body):
        req.write_text(json.dumps({**request, "body": as_written}))
        p = run("classify", req, "--format", "json")
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert out["tag"] == "stateful" and out["event"]["provider"] == "openai"
        assert out["event"]["request"]["previous_response_id"] == "resp_1"


def test_classify_takes_a_corpus_request_as_written(tmp_path):
    """A case of tests/corpus/requests, saved as a file, classifies as the corpus expects."""
    cases = json.loads((Path(__file__).parent / "corpus" / "requests" / "openai.json").read_text())
    case = next(c for c in cases if isinstance(c.get("body"), dict) and "body_text" not in c)
    req = tmp_path / "case.json"
    req.write_text(json.dumps(case))
    p = run("classify", req, "--format", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    want = case["expect"]
    assert out["tag"] == want["tag"] and out["event"]["api"] == want["api"]
    assert [e["rule"] for e in out["evidence"]] == want["rules"]
    p = run("classify", req)
    assert p.returncode == 0 and f"tag: {want['tag']}" in p.stdout, p


def test_classify_request_passes_host_mappings(tmp_path):
    request = {
        "method": "POST",
        "url": "https://llm-proxy.internal/v1/chat/completions",
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}),
    }
    req = tmp_path / "request.json"
    req.write_text(json.dumps(request))
    p = run("classify", req, "--format", "json")
    assert p.returncode == 0, p.stderr
    event = json.loads(p.stdout)["event"]
    assert (event["provider"], event["venue"]) == ("unknown", "unknown")
    mapped = {
        **request,
        "venues": {"llm-proxy.internal": "azure"},
        "providers": {"*.internal": "azure.ai.openai"},
    }
    req.write_text(json.dumps(mapped))
    p = run("classify", req, "--format", "json")
    assert p.returncode == 0, p.stderr
    event = json.loads(p.stdout)["event"]
    assert (event["provider"], event["venue"]) == ("azure.ai.openai", "azure")
    assert event["attrs"]["provider_evidence"]["rule"] == "provider-user-mapping"
    req.write_text(json.dumps({**request, "venues": ["llm-proxy.internal"]}))
    p = run("classify", req)
    assert p.returncode != 0 and "'venues' must map host patterns" in p.stderr, p


@pytest.mark.parametrize(
    "args,needles",
    [
        (("report", "{ledger}", "--contract", "{missing}"), ("cannot read",)),
        (("report", "{ledger}", "--contract", "{bad_contract}"), ("line 7", "`level`", "bad.toml")),
        (("report", "{ledger}", "--contract", "{syntax}"), ("line 2",)),
        (("report", "{ledger}", "--contract", CONTRACT, "--prices", "{bad_prices}"), ("floats",)),
        (("report", "{missing}", "--contract", CONTRACT), ("no ledger file",)),
        (("report", "{not_a_ledger}", "--contract", CONTRACT), ()),
        (("report", "{ledger}", "--contract", CONTRACT, "--by", "colour"), ("colour",)),
        (("report", "{ledger}", "--contract", CONTRACT, "--since", "yesterday"), ("since",)),
        (("report", "{ledger}"), ("--contract",)),
        (("costs", "{ledger}", "--prices", PRICES, "--format", "xml"), ("xml",)),
        (("classify", "{bad_json}"), ("not JSON", "line 1")),
        (("classify", "{not_event}"), ("neither an event",)),
        (("classify", "{bad_event}"), ("kind",)),
        (("frobnicate",), ("invalid choice",)),
        ((), ("required",)),
    ],
)
def test_bad_input_exits_2_with_one_line(ledger, tmp_path, args, needles):
    files = {
        "ledger": ledger,
        "missing": tmp_path / "missing.toml",
        "bad_contract": tmp_path / "bad.toml",
        "syntax": tmp_path / "syntax.toml",
        "bad_prices": tmp_path / "prices.toml",
        "not_a_ledger": tmp_path / "text.db",
        "bad_json": tmp_path / "bad.json",
        "not_event": tmp_path / "other.json",
        "bad_event": tmp_path / "event.json",
    }
    files["bad_contract"].write_text(
        'id = "c"\n[[clause]]\nid = "a"\nproviders = ["openai"]\n'
        'required_venues = ["azure"]\n'
        '[clause.interpretations.x]\nlevel = "both"\n'
        'tags = ["stateless"]\n'
    )
    files["syntax"].write_text('id = "c"\n[[clause\n')
    files["bad_prices"].write_text(
        'currency = "USD"\n[[price]]\nprovider = "p"\nmodel = "m"\n'
        'input_per_mtok = 1.5\noutput_per_mtok = "1"\n'
    )
    files["not_a_ledger"].write_text("hello, not a database\n" * 100)
    files["bad_json"].write_text("{nope")
    files["not_event"].write_text('{"hello": 1}')
    files["bad_event"].write_text('{"kind": "model_cal"}')
    argv = [str(a).format(**files) if isinstance(a, str) else a for a in args]
    p = run(*argv)
    one_line_error(p, *needles)


def test_csv_output_neutralises_formulas_and_table_output_escapes_controls(tmp_path):
    path = tmp_path / "hostile.db"
    with sm.Meter(path) as meter:
        for agent in ["=1+1", "-5", "\x1b]0;title\x07", "plain"]:
            with meter.session(agent, venue="azure") as s:
                s.model_call(provider="openai", model="gpt-5", api="responses")
    p = run("costs", path, "--prices", PRICES, "--by", "agent", "--format", "csv")
    assert p.returncode == 0, p.stderr
    cells = {line.split(",")[0] for line in p.stdout.splitlines()[1:]}
    assert cells == {"'=1+1", "'-5", "\x1b]0;title\x07", "plain"}
    p = run("costs", path, "--prices", PRICES, "--by", "agent", "--format", "csv", "--raw-csv")
    assert p.returncode == 0, p.stderr
    assert {line.split(",")[0] for line in p.stdout.splitlines()[1:]} >= {"=1+1", "-5"}
    p = run("costs", path, "--prices", PRICES, "--by", "agent")
    assert p.returncode == 0, p.stderr
    assert "\x1b" not in p.stdout and "\x07" not in p.stdout
    assert "\\x1b]0;title\\x07" in p.stdout


def test_keys_checkpoints_and_evidence_bundles(ledger, tmp_path):
    key = tmp_path / "owner.key"
    p = run("key", "generate", "example.com/owner", "-o", key)
    assert p.returncode == 0, p.stderr
    pub = tmp_path / "owner.pub"
    assert key.stat().st_mode & 0o777 == 0o600
    vk = sm.VerifyingKey.from_str(pub.read_text().strip())
    assert sm.SigningKey.from_str(key.read_text().strip()).verifying_key() == vk
    one_line_error(run("key", "generate", "example.com/owner", "-o", key), "exists")

    p = run("checkpoint", ledger, "--key", key)
    assert p.returncode == 0, p.stderr
    cp = sm.Checkpoint.parse(p.stdout)
    assert cp.verify(vk) and cp.size == len(EVENTS)

    bundle = tmp_path / "b.json"
    report = sm.Ledger.open(ledger).report(sm.Contract.load(CONTRACT))
    clause = report.to_pylist()[0]["clause"]
    violations = report.violations("call-level", clause)
    p = run(
        "evidence", ledger, "--contract", CONTRACT, "--clause", clause,
        "--interpretation", "call-level", "--key", key, "-o", bundle,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(bundle.read_text())
    assert [i["event_id"] for i in doc["items"]] == [e.id for e in violations]
    assert doc["context"]["clause"] == clause and doc["rows"]
    assert all(r["clause"] == clause for r in doc["rows"])

    p = run("verify-evidence", bundle, "--key", pub)
    assert p.returncode == 0 and p.stdout.strip().endswith("events check out"), p.stdout
    assert doc["items"], "the example events violate the clause"
    doc["items"][0]["record"] = doc["items"][0]["record"].replace('"ts":', '"ts": ', 1)
    bundle.write_text(json.dumps(doc))
    p = run("verify-evidence", bundle, "--key", pub, "--format", "json")
    out = json.loads(p.stdout)
    assert p.returncode == 1 and out["failed"] == [doc["items"][0]["event_id"]]
    other = sm.SigningKey.generate("example.com/owner").verifying_key()
    p = run("verify-evidence", bundle, "--key", str(other))
    assert p.returncode == 1 and "no signature" in p.stdout
    one_line_error(run("checkpoint", ledger, "--key", tmp_path / "missing.key"), "--key")
    one_line_error(run("checkpoint", ledger, "--key", pub), "signing key")
