"""A clause read under the ruleset an interpretation names (docs/contracts.md, "Reading the
calls under another ruleset"): counts computed by hand on small ledgers.

The exact counts use the test rulesets of tests/data/rulesets (independent of the built-in
catalogue); the built-in ``"strict"`` is used only where the outcome follows from the design
(a Responses call that stores its response creates provider-held state: stateless under the
default ruleset, stateful under strict; a chat call without any state signal is stateless
under both).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import statemeter as sm

DATA = Path(__file__).parent / "data"
RULESETS = DATA / "rulesets"
PER_RULESET = DATA / "contracts" / "per-ruleset.toml"


def call(eid, session, api, venue, request=None):
    return {
        "kind": "model_call",
        "id": eid,
        "session_id": session,
        "provider": "openai",
        "model": "gpt-5",
        "api": api,
        "venue": venue,
        "input_tokens": 100,
        "output_tokens": 10,
        "request": request,
    }


STORE = {"store": True}
# s1: A stores a response (AWS), B continues it (Azure); s2: C chat (Azure), D stores (AWS);
# s3: E chat (AWS) and a memory write the client holds; F stores, without a session (Azure).
EVENTS = [
    call("A", "s1", "responses", "aws", STORE),
    call("B", "s1", "responses", "azure", {"previous_response_id": "resp_a", "store": True}),
    call("C", "s2", "chat.completions", "azure"),
    call("D", "s2", "responses", "aws", STORE),
    call("E", "s3", "chat.completions", "aws"),
    {
        "kind": "state_op",
        "id": "W",
        "session_id": "s3",
        "op": "write",
        "store": "notes",
        "holder": "client",
    },
    call("F", None, "responses", "azure", STORE),
]


def record(path, events, ruleset):
    with sm.Meter(path, ruleset=ruleset, durability="sync") as meter:
        for e in events:
            meter.record(e)


@pytest.fixture()
def chains_ledger(tmp_path):
    """The events recorded under rulesets/chains.toml."""
    path = tmp_path / "audit.db"
    record(path, EVENTS, sm.Ruleset.load(RULESETS / "chains.toml"))
    return sm.Ledger.open(path)


def counts(report):
    return {
        r["interpretation"]: (r["covered_events"], r["violating_events"])
        for r in report.to_pylist()
    }


def test_a_clause_read_under_each_ruleset(chains_ledger):
    contract = sm.Contract.load(PER_RULESET)
    r = chains_ledger.report(contract)
    assert counts(r) == {
        # As recorded (chains): A, C, D, E, F are stateless; A, D, E are off Azure.
        "call-level": (5, 3),
        "call-level-chains": (5, 3),
        # Read strictly, a stored response is stateful: only the chat calls C and E remain.
        "call-level-chains-strict": (2, 1),
        # s1 is stateful (B continues A's response): C, D, E, F; D and E off Azure.
        "session-level-chains": (4, 2),
        # Strictly every session is stateful: s2 by D, s3 by its client-held memory write.
        "session-level-chains-strict": (0, 0),
    }
    rows = {row["interpretation"]: row for row in r.to_pylist()}
    assert rows["call-level-chains-strict"]["covered_input_tokens"] == 200
    assert r.columns[:2] == ["interpretation", "clause"], "the columns are unchanged"
    assert r.rulesets == {
        "call-level": None,
        "call-level-chains": "../rulesets/chains.toml",
        "call-level-chains-strict": "../rulesets/chains-strict.toml",
        "session-level-chains": "../rulesets/chains.toml",
        "session-level-chains-strict": "../rulesets/chains-strict.toml",
    }
    assert r.rulesets == contract.rulesets
    # The violating calls are shown as read under the interpretation's ruleset.
    (e,) = r.violations("call-level-chains-strict", "openai-on-azure")
    assert (e.id, e.tag, e.session_tag) == ("E", "stateless", "stateful")
    assert e.classification.ruleset == "chains-strict"
    (e,) = [v for v in r.violations("call-level", "openai-on-azure") if v.id == "E"]
    assert (e.session_tag, e.classification.ruleset) == ("stateless", "chains")
    # The same report again: the same cells (the readings are kept with the ledger's columns).
    assert counts(chains_ledger.report(contract)) == counts(r)


def test_a_ledger_that_grows_is_read_again_under_the_ruleset(tmp_path):
    path = tmp_path / "audit.db"
    chains = sm.Ruleset.load(RULESETS / "chains.toml")
    record(path, EVENTS[:3], chains)
    ledger = sm.Ledger.open(path)
    contract = sm.Contract.load(PER_RULESET)
    before = counts(ledger.report(contract))
    # A, B, C: s1 is stateful under both; C alone in s2 is stateless under both.
    assert before["call-level-chains-strict"] == (1, 0)
    assert before["session-level-chains-strict"] == (1, 0)
    record(path, EVENTS[3:], chains)
    after = counts(ledger.report(contract))
    # D's stored response now makes s2, C's session, stateful when read strictly.
    assert after["call-level-chains-strict"] == (2, 1)
    assert after["session-level-chains-strict"] == (0, 0)


def test_the_built_in_strict_ruleset(tmp_path):
    """Recorded under the default ruleset, read under strict. s1: a chat call at Azure and a
    Responses call that stores its response at AWS; s2: a chat call at AWS; s3: a call that
    continues a stored response at Azure."""
    path = tmp_path / "audit.db"
    events = [
        call("c1", "s1", "chat.completions", "azure"),
        call("r1", "s1", "responses", "aws", STORE),
        call("c2", "s2", "chat.completions", "aws"),
        call("r2", "s3", "responses", "azure", {"previous_response_id": "resp_1"}),
    ]
    record(path, events, sm.Ruleset.default())
    contract = sm.Contract.from_toml(
        """
id = "strict-reading"
[[clause]]
id = "openai-on-azure"
providers = ["openai"]
required_venues = ["azure"]
[clause.interpretations.call-level]
level = "call"
tags = ["stateless"]
[clause.interpretations.call-level-strict]
level = "call"
tags = ["stateless"]
ruleset = "strict"
[clause.interpretations.session-level-strict]
level = "session"
tags = ["stateless"]
ruleset = "strict"
"""
    )
    r = sm.Ledger.open(path).report(contract)
    assert counts(r) == {
        # Storing a response alone leaves the call stateless: c1, r1, c2; r1 and c2 at AWS.
        "call-level": (3, 2),
        # Strictly, creating provider-held state is stateful: c1 and c2.
        "call-level-strict": (2, 1),
        # ... and makes s1 stateful: c2 alone.
        "session-level-strict": (1, 1),
    }
    (v,) = r.violations("session-level-strict", "openai-on-azure")
    assert (v.id, v.tag, v.session_tag, v.classification.ruleset) == (
        "c2",
        "stateless",
        "stateless",
        "strict",
    )
    (r1,) = [v for v in r.violations("call-level", "openai-on-azure") if v.id == "r1"]
    assert (r1.tag, r1.classification.ruleset) == ("stateless", "default")


def test_scenarios_read_each_interpretation_under_its_ruleset(chains_ledger):
    s = chains_ledger.scenario(
        "everything to azure", contract=sm.Contract.load(PER_RULESET), venue="azure"
    )
    rows = {
        r["interpretation"]: (
            r["covered_events"],
            r["baseline_violating_events"],
            r["scenario_violating_events"],
        )
        for r in s.to_pylist()
    }
    assert rows == {
        "call-level": (5, 3, 0),
        "call-level-chains": (5, 3, 0),
        "call-level-chains-strict": (2, 1, 0),
        "session-level-chains": (4, 2, 0),
        "session-level-chains-strict": (0, 0, 0),
    }
    assert s.compliance.rulesets["call-level-chains-strict"] == "../rulesets/chains-strict.toml"
    assert s.costs.rulesets == {}


def test_where_ruleset_paths_and_names_are_found(tmp_path, chains_ledger, monkeypatch):
    text = PER_RULESET.read_text(encoding="utf-8")
    # from_toml: relative to `base`, else to the current directory.
    c = sm.Contract.from_toml(text, base=PER_RULESET.parent)
    assert c.rulesets == sm.Contract.load(PER_RULESET).rulesets
    monkeypatch.chdir(PER_RULESET.parent)
    assert sm.Contract.from_toml(text).rulesets == c.rulesets
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sm.ContractError, match=r"cannot read \.\./rulesets/chains\.toml"):
        sm.Contract.from_toml(text)
    # A copy of the contract next to its own rulesets.
    (tmp_path / "rulesets").mkdir()
    (tmp_path / "contracts").mkdir()
    for name in ("chains.toml", "chains-strict.toml"):
        shutil.copy(RULESETS / name, tmp_path / "rulesets" / name)
    shutil.copy(PER_RULESET, tmp_path / "contracts" / "c.toml")
    copied = sm.Contract.load(tmp_path / "contracts" / "c.toml")
    assert counts(chains_ledger.report(copied)) == counts(chains_ledger.report(c))
    # Named rulesets, and the built-in names.
    named = text.replace('"../rulesets/chains-strict.toml"', '"chains, strictly"')
    c = sm.Contract.from_toml(
        named,
        base=PER_RULESET.parent,
        rulesets={"chains, strictly": sm.Ruleset.load(RULESETS / "chains-strict.toml")},
    )
    assert c.rulesets["call-level-chains-strict"] == "chains, strictly"
    assert counts(chains_ledger.report(c))["call-level-chains-strict"] == (2, 1)
    interp = c.clauses[0]["interpretations"]["call-level-chains-strict"]
    assert interp == {
        "level": "call",
        "tags": ["stateless"],
        "description": None,
        "ruleset": "chains, strictly",
    }


def with_ruleset(value: str) -> str:
    text = PER_RULESET.read_text(encoding="utf-8")
    return text.replace('ruleset = "../rulesets/chains.toml"', f"ruleset = {value}", 1)


def test_errors_name_the_line_and_field(tmp_path):
    line = with_ruleset('"lenient"').splitlines().index('ruleset = "lenient"') + 1
    with pytest.raises(sm.ContractError) as e:
        sm.Contract.from_toml(with_ruleset('"lenient"'), base=PER_RULESET.parent)
    msg = str(e.value)
    assert 'interpretation `call-level-chains`: `ruleset`: unknown ruleset "lenient"' in msg
    assert msg.endswith(f"(line {line})")
    with pytest.raises(sm.ContractError, match=rf"`ruleset` must be a string.*\(line {line}\)"):
        sm.Contract.from_toml(with_ruleset("true"))
    with pytest.raises(sm.ContractError, match=rf"cannot read .*missing\.toml.*\(line {line}\)"):
        sm.Contract.from_toml(with_ruleset('"missing.toml"'), base=tmp_path)
    # A ruleset file that does not compile: a ContractError caused by the RulesetError.
    (tmp_path / "bad.toml").write_text('[[rule]]\nid = "x"\nstat = "memory"\n')
    (tmp_path / "c.toml").write_text(with_ruleset('"bad.toml"'))
    with pytest.raises(sm.ContractError) as e:
        sm.Contract.load(tmp_path / "c.toml")
    assert str(e.value).startswith(str(tmp_path / "c.toml"))
    assert str(e.value).endswith(f"bad.toml is not a valid ruleset (line {line})")
    cause = e.value.__cause__
    assert isinstance(cause, sm.RulesetError)
    assert "bad.toml" in str(cause) and "unknown key `stat` (line 3)" in str(cause)
    # rulesets= must map names to Ruleset objects.
    with pytest.raises(sm.ValidationError, match="rulesets"):
        sm.Contract.from_toml(with_ruleset('"strict"'), rulesets=["strict"])
    with pytest.raises(sm.ValidationError, match=r"rulesets\.mine: must be a Ruleset"):
        sm.Contract.from_toml(with_ruleset('"strict"'), rulesets={"mine": "strict.toml"})


def test_the_command_line_reads_rulesets_next_to_the_contract(chains_ledger, tmp_path, capsys):
    import json

    from statemeter import cli

    assert cli.main(["report", str(chains_ledger.path), "--contract", str(PER_RULESET)]) == 0
    assert "call-level-chains-strict" in capsys.readouterr().out
    assert (
        cli.main(
            ["report", str(chains_ledger.path), "--contract", str(PER_RULESET), "--format", "json"]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    got = {r["interpretation"]: (r["covered_events"], r["violating_events"]) for r in rows}
    assert got["call-level-chains-strict"] == (2, 1)
    (tmp_path / "bad.toml").write_text('[[rule]]\nid = "x"\nstat = "memory"\n')
    (tmp_path / "c.toml").write_text(with_ruleset('"bad.toml"'))
    assert (
        cli.main(["report", str(chains_ledger.path), "--contract", str(tmp_path / "c.toml")]) == 2
    )
    err = capsys.readouterr().err
    assert "bad.toml is not a valid ruleset" in err and "unknown key `stat`" in err


def test_the_parquet_sql_refuses_a_reading_it_cannot_make():
    from statemeter import parquet

    contract = sm.Contract.load(PER_RULESET)
    with pytest.raises(sm.ValidationError, match="recorded classification only"):
        parquet.contract_sql(contract, "events")


def test_html_and_text_name_the_rulesets(chains_ledger):
    r = chains_ledger.report(sm.Contract.load(PER_RULESET))
    page = r._repr_html_()
    assert "ruleset: ../rulesets/chains-strict.toml" in page
    assert "ruleset[call-level-chains]=../rulesets/chains.toml" in repr(r)
    plain = chains_ledger.costs(sm.PriceTable.load(DATA / "prices" / "base-and-venue.toml"))
    assert "ruleset" not in repr(plain)
