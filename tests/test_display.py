"""Jupyter HTML (statemeter.display): escaped, bounded, showing tags and evidence."""

from __future__ import annotations

import html
import sqlite3
from pathlib import Path

import pytest
import statemeter as sm
from statemeter import display, simulate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def fleet():
    return simulate.fleet(days=3, agents=6, seed=5, sessions_per_agent_day=10)


def test_event_html_shows_fields_tags_and_evidence():
    meter = sm.Meter()
    with meter.session("<b>bot</b>", venue="azure") as s:
        e = s.model_call(
            provider="openai",
            model="gpt-5",
            api="responses",
            request={"previous_response_id": "resp_1"},
            attrs={"note": "<script>alert(1)</script>"},
        )
    meter.flush()
    event = meter.ledger.events(kind="model_call")[0]
    page = event._repr_html_()
    assert "openai-responses-previous-response-id" in page
    assert "request.previous_response_id" in page
    assert 'class="sm-stateful"' in page and "session level" in page
    assert "<script>" not in page and html.escape("<script>", quote=True) in page
    assert "<b>bot</b>" not in page
    # A freshly recorded event (no seq yet in batch mode, no session tag) renders too.
    assert "Event #" in e._repr_html_()


def test_event_table_html_is_bounded_and_counts_tags(fleet):
    events = fleet.ledger.events()
    page = events._repr_html_()
    n = len(events)
    assert f"{n:,} events" in page
    assert f"{n - display.MAX_ROWS:,} more rows" in page
    body_rows = page.count("<tr>")
    assert body_rows < display.MAX_ROWS + 20  # rows shown + count table + headers
    counts = events._counts()
    assert sum(c[3] for c in counts) == n
    stateful = sum(c[3] for c in counts if c[1] == "stateful")
    assert f"{stateful:,} stateful" in page
    small = events[:3]._repr_html_()
    assert "more rows" not in small


def test_long_values_are_cut_with_the_full_text_in_a_title():
    meter = sm.Meter()
    meter.record({"kind": "tool_call", "tool": "x" * 500})
    page = meter.ledger.events()._repr_html_()
    assert "x" * 500 not in page.split('title="')[0]
    assert f'title="tool {"x" * 500}' in page


def test_sessions_and_verification_html(fleet, tmp_path):
    page = fleet.ledger.sessions()._repr_html_()
    assert "SessionTable" in page and "agentcore" in page and "foundry" in page
    ok = fleet.ledger.verify()._repr_html_()
    assert "intact" in ok and str(fleet.ledger.head().seq) in ok
    path = tmp_path / "l.db"
    meter = sm.Meter(path)
    for i in range(3):
        meter.record({"kind": "tool_call", "tool": f"t{i}"})
    meter.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE events SET record = replace(record, 't1', 't9') WHERE seq = 2")
    broken = sm.Ledger.open(path).verify()._repr_html_()
    assert "broken" in broken and "first bad seq" in broken and "edited" in broken


def test_report_html_puts_interpretations_side_by_side(fleet):
    contract = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2025.toml")
    prices = sm.PriceTable.load(EXAMPLES / "prices" / "illustrative.toml")
    page = fleet.ledger.report(contract, prices)._repr_html_()
    head = page.split("<tbody>")[0]
    for name in ("session-level", "call-level", "all-calls"):
        assert f'<th colspan="4">{name}</th>' in head
    assert "violating cost (USD)" in head and "<th>share</th>" in head
    costs = fleet.ledger.costs(prices, by="venue")._repr_html_()
    assert "cost (USD)" in costs and "colspan" not in costs.split("<tbody>")[0]
    assert "cost_nanos" not in costs


def test_report_page_is_self_contained(fleet):
    page = display.report_page("Fleet <1>", summary={"events": len(fleet.ledger)})
    assert page.startswith("<!DOCTYPE html>") and "Fleet &lt;1&gt;" in page
    with pytest.raises(sm.ValidationError) as info:
        display.report_page("x", images=[("chart", "https://example.com/chart.png")])
    assert info.value.field == "images"
    assert str(info.value).startswith("images: ")


def test_html_shows_state_kinds_and_each_evidence_kind(kinds_ruleset):
    meter = sm.Meter(ruleset=kinds_ruleset)
    with meter.session("bot", venue="azure") as s:
        s.model_call(
            provider="openai",
            model="gpt-5",
            api="responses",
            request={"file_id": "f", "previous_response_id": "r", "cache_key": "k"},
        )
        s.model_call(provider="openai", model="gpt-5", api="responses")
    meter.flush()
    calls = meter.ledger.events(kind="model_call")
    page = calls[0]._repr_html_()
    assert "<th>state_kinds</th>" in page
    assert '<span class="sm-kind">content</span> <span class="sm-kind">conversation</span>' in page
    evidence = page.split("Evidence</div>")[1]
    assert "<th>state</th>" in evidence
    rows = evidence.split("<tr>")[2:]
    assert [("sm-kind" in r, "cache-note" in r) for r in rows] == [
        (True, False),
        (True, False),
        (False, True),
    ]
    assert '<span class="sm-kind">conversation</span>' in rows[0]
    # No kinds: a dash, not an empty list.
    plain = calls[1]._repr_html_()
    assert '<th>state_kinds</th><td><span class="sm-null">—</span></td>' in plain
    table = meter.ledger.events()._repr_html_()
    head = table.split("<thead>")[-1].split("</thead>")[0]
    assert "<th>state_kinds</th>" in head and "<th>state_holder</th>" in head
    assert '<span class="sm-kind">conversation</span>' in table


def test_report_page_escapes_and_checks_image_uris():
    png = "data:image/png;base64,iVBORw0KGgo="
    page = display.report_page("x", images=[("chart", png)])
    assert f"src='{png}'" in page
    for bad in [
        "data:image/png;base64,AAAA' onerror='alert(1)",
        "data:image/png;base64,AA AA",
        "data:image/png;base64,<script>",
        "data:image/svg+xml;base64,AAAA",
    ]:
        with pytest.raises(sm.ValidationError) as info:
            display.report_page("x", images=[("chart", bad)])
        assert info.value.field == "images"
