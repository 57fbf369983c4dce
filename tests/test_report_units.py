"""Units that never lie: in the HTML of every kind of result table (compliance report, costs,
scenario sides, explanation), each money column is headed in the currency and each of its
cells is the data's exact integer nanos shown to the cent, rounded half to even (the exact
amount in the cell's title); machine outputs keep the `_nanos` names. And
`report.explain(interpretation, clause)`: the violating calls by agent, venue, model and rule."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import statemeter as sm
from statemeter import display, simulate, units
from statemeter.money import format_cents, to_cents

EXAMPLES = Path(__file__).parent.parent / "examples"
CONTRACT = EXAMPLES / "contracts" / "model-access-2026-amended.toml"
PRICES = EXAMPLES / "prices" / "illustrative.toml"
CENTS = re.compile(r"-?\d{1,3}(,\d{3})*\.\d\d")
TITLE = re.compile(r"(-?[\d,.]+) USD \((-?[\d,]+) nanos\)")


class _Tables(HTMLParser):
    """Every <table> as a grid of (tag, text, title) cells, colspans and rowspans expanded."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, str, str | None]]]] = []
        self._stack: list[dict] = []
        self._cell: dict | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table":
            self._stack.append({"rows": [], "spans": {}})
        elif tag == "tr" and self._stack:
            self._stack[-1]["rows"].append([])
        elif tag in ("td", "th") and self._stack:
            self._cell = {
                "tag": tag,
                "text": "",
                "title": a.get("title"),
                "colspan": int(a.get("colspan") or 1),
                "rowspan": int(a.get("rowspan") or 1),
            }

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._stack:
            t = self._stack[-1]
            row = t["rows"][-1]
            r = len(t["rows"]) - 1
            while (r, len(row)) in t["spans"]:
                row.append(t["spans"].pop((r, len(row))))
            c = self._cell
            cell = (c["tag"], c["text"], c["title"])
            for k in range(c["colspan"]):
                for dr in range(1, c["rowspan"]):
                    t["spans"][(r + dr, len(row) + k)] = cell
            row.extend([cell] * c["colspan"])
            self._cell = None
        elif tag == "table" and self._stack:
            self.tables.append(self._stack.pop()["rows"])


def money_cells(page: str) -> list[tuple[str, str, str | None]]:
    """(heading, text, title) of every body cell under a heading that names a cost."""
    parser = _Tables()
    parser.feed(page)
    found = []
    for rows in parser.tables:
        heads = [r for r in rows if r and all(c[0] == "th" for c in r)]
        if not heads:
            continue
        heading = heads[-1]
        for r in rows:
            if r in heads or len(r) != len(heading):
                continue
            for (_, head, _), (_, text, title) in zip(heading, r, strict=True):
                if "cost" in head:
                    found.append((head, text, title))
    return found


@pytest.fixture(scope="module")
def ledger():
    f = simulate.fleet(days=4, agents=6, seed=1, start="2026-04-25", sessions_per_agent_day=2)
    return f.ledger


def check_units(page: str, data_nanos: set[int]) -> int:
    assert "_nanos" not in "".join(re.findall(r"<th[^>]*>(.*?)</th>", page))
    cells = money_cells(page)
    for head, text, title in cells:
        assert head.endswith("(USD)"), head
        if text == "—":
            continue
        assert CENTS.fullmatch(text), (head, text)
        m = TITLE.fullmatch(title or "")
        assert m, (head, title)
        nanos = int(m.group(2).replace(",", ""))
        assert text == format_cents(nanos), (head, text, nanos)
        assert nanos in data_nanos, (head, nanos)
    return len(cells)


def nanos_of(report) -> set[int]:
    return {
        v for r in report.to_pylist() for c, v in r.items() if units.is_money(c) and v is not None
    }


def test_every_money_column_agrees_with_its_heading(ledger):
    prices = sm.PriceTable.load(PRICES)
    report = ledger.report(sm.Contract.load(CONTRACT), prices, by="venue")
    # The drill-downs (report.explain tables) are part of the report's HTML.
    assert check_units(report._repr_html_(), nanos_of(report) | _explained(report)) > 10
    for kind_report in (
        ledger.costs(prices, by="venue"),
        ledger.costs(prices, by=("day", "venue")),
    ):
        assert check_units(kind_report._repr_html_(), nanos_of(kind_report)) > 4
    s = ledger.scenario(
        "to-azure",
        contract=sm.Contract.load(CONTRACT),
        select={"venue": "openai"},
        venue="azure",
        prices=prices,
    )
    for side in (s.compliance, s.costs):
        assert check_units(side._repr_html_(), nanos_of(side)) > 2
        assert any(c.endswith("_nanos") for c in side.columns)  # the data keeps the name
    x = report.explain("all-calls", "stateless-on-azure")
    assert check_units(x._repr_html_(), nanos_of(x)) >= 1
    # The page that shows them all.
    page = display.report_page("t", reports=[("r", report), ("c", ledger.costs(prices))])
    every = nanos_of(report) | nanos_of(ledger.costs(prices)) | _explained(report)
    assert check_units(page, every) > 10


def _explained(report) -> set[int]:
    out: set[int] = set()
    for interp, clause in report.contract.slots:
        out |= nanos_of(report.explain(interp, clause))
    return out


def test_cents_round_half_to_even():
    assert [to_cents(n) for n in (4_999_999, 5_000_000, 5_000_001, 15_000_000, 25_000_000)] == [
        0,
        0,
        1,
        2,
        2,
    ]
    assert [to_cents(-n) for n in (5_000_000, 15_000_000, 25_000_000)] == [0, -2, -2]
    assert format_cents(1_234_565_000_000, "USD") == "1,234.56 USD"
    assert format_cents(1_234_575_000_000) == "1,234.58"


def test_explain_groups_the_violating_calls(ledger):
    prices = sm.PriceTable.load(PRICES)
    report = ledger.report(sm.Contract.load(CONTRACT), prices)
    for row in report:
        x = report.explain(row["interpretation"], row["clause"])
        assert x.kind == "explain"
        assert x.columns[:6] == ["agent", "venue", "model", "rule", "signal", "explanation"]
        groups = x.to_pylist()
        assert sum(g["violating_events"] for g in groups) == row["violating_events"]
        assert sum(g["violating_cost_nanos"] or 0 for g in groups) == row["violating_cost_nanos"]
        violations = report.violations(row["interpretation"], row["clause"])
        assert len(violations) == row["violating_events"]
        for g in groups:
            assert g["rule"] and g["explanation"]
            assert 1 <= len(g["example_sessions"].split()) <= 3
            assert g["sessions"] >= len(g["example_sessions"].split())
            assert g["venue"] != "azure"  # azure is a required venue in every version
        counts = [g["violating_events"] for g in groups]
        assert counts == sorted(counts, reverse=True)
    with pytest.raises(sm.ValidationError):
        report.explain("no-such", "stateless-on-azure")
    with pytest.raises(sm.ValidationError):
        ledger.costs(prices).explain("all-calls", "stateless-on-azure")
    # The report's HTML explains the interpretations and drills down into each figure.
    page = report._repr_html_()
    assert "Judge each call by its session" in page and "<dt>share</dt>" in page
    assert page.count("<details class='sm-drill'") == sum(
        1 for r in report if r["violating_events"]
    )
