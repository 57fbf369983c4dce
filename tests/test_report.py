"""Reports, costs and scenarios on a small ledger whose every cell is computed by hand below.

The fixture covers both levels (a stateful session, a provider-managed runtime session), a
clause amended mid-period (two versions), venue-specific and dated prices, cached tokens, a
per-call fee, unpriced events, a runtime session-hour price and a storage price.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import pytest
import statemeter as sm
from statemeter import display

EXAMPLES = Path(__file__).parent.parent / "examples"

DATA = Path(__file__).parent / "data"
# A clause amended mid-period (two versions) under three interpretations.
CONTRACT = (DATA / "contracts" / "amended-mid-period.toml").read_text(encoding="utf-8")
# Base, venue-specific and dated model prices (cached tokens, a per-call fee), a runtime
# session-hour price and a storage price.
PRICES = (DATA / "prices" / "every-kind.toml").read_text(encoding="utf-8")


def T(s: str) -> int:
    d = dt.datetime.fromisoformat(s if "T" in s else s + "T00:00:00")
    return int(d.replace(tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def call(
    eid,
    session,
    day,
    venue,
    input_tokens,
    output_tokens,
    cached=0,
    *,
    model="gpt-5",
    provider="openai",
    api="chat.completions",
    request=None,
):
    return {
        "kind": "model_call",
        "id": eid,
        "session_id": session,
        "ts": T(day),
        "provider": provider,
        "model": model,
        "api": api,
        "venue": venue,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_tokens": cached,
        "request": request,
    }


# Hand-computed cost of each model call (nanos), with the price entry that applies:
#  e1 2025-12-15 azure  azure undated:     1000×2 + 100×20                = 4,000,000
#  e2 2026-01-10 azure  azure undated:     600×2 + 400×0.5 + 100×20       = 3,400,000
#  e3 2026-02-03 aws    base:              1000×1.25 + 1000×0.125 + 300×10 = 4,375,000
#  e4 2026-02-04 aws    base (stateful):   500×1.25 + 50×10               = 1,125,000
#  e5 2026-04-20 aws    dated 04-01:       100×1 + 10×8                   =   180,000
#  e6 2026-04-27 aws    dated 04-01:       100×1 + 10×8                   =   180,000
#  e7 2026-05-02 azure  azure dated 05-01: 1000×3 + 100×30 + per_call 0.001 = 7,000,000
#  e8 2026-05-03 azure  gpt-4o: no price                                  = None
#  e9 2026-05-04 gcp    anthropic: no price                               = None
#  e10 2026-03-01 aws   base (runtime session S5): 100×1.25 + 10×10       =   225,000
COST = {
    "e1": 4_000_000,
    "e2": 3_400_000,
    "e3": 4_375_000,
    "e4": 1_125_000,
    "e5": 180_000,
    "e6": 180_000,
    "e7": 7_000_000,
    "e8": None,
    "e9": None,
    "e10": 225_000,
}
# S5 runs in AgentCore from 00:00 to 01:30: 1.5 h × 0.09 = 0.135 USD.
RUNTIME = 135_000_000
# 2 GB held from 00:20 to 01:00 (40 min) at 0.25 per GB-month (730 h):
# 2 × 0.25 × 2400 / 2,628,000 USD = 456,621.0045... nanos -> 456,621.
STORAGE = 456_621

EVENTS = [
    call("e1", "S1", "2025-12-15", "azure", 1000, 100),
    call("e2", "S1", "2026-01-10", "azure", 1000, 100, cached=400),
    call("e3", "S2", "2026-02-03", "aws", 2000, 300, cached=1000),
    call(
        "e4",
        "S2",
        "2026-02-04",
        "aws",
        500,
        50,
        api="responses",
        request={"previous_response_id": "resp_1"},
    ),
    call("e5", "S3", "2026-04-20", "aws", 100, 10),
    call("e6", "S3", "2026-04-27", "aws", 100, 10),
    call("e7", "S4", "2026-05-02", "azure", 1000, 100),
    call("e8", "S4", "2026-05-03", "azure", 10, 1, model="gpt-4o"),
    call(
        "e9", "S6", "2026-05-04", "gcp", 50, 5, provider="anthropic", model="claude", api="messages"
    ),
    {
        "kind": "session_start",
        "id": "s5-start",
        "session_id": "S5",
        "ts": T("2026-03-01T00:00:00"),
        "runtime": "agentcore",
        "runtime_session_id": "rs-1",
        "venue": "aws",
    },
    {**call("e10", "S5", "2026-03-01", "aws", 100, 10), "ts": T("2026-03-01T00:10:00")},
    {
        "kind": "state_op",
        "id": "w1",
        "session_id": "S5",
        "ts": T("2026-03-01T00:20:00"),
        "op": "write",
        "store": "mem",
        "holder": "provider",
        "key": "k",
        "bytes": 2_000_000_000,
    },
    {
        "kind": "state_op",
        "id": "d1",
        "session_id": "S5",
        "ts": T("2026-03-01T01:00:00"),
        "op": "delete",
        "store": "mem",
        "holder": "provider",
        "key": "k",
    },
    {
        "kind": "session_end",
        "id": "s5-end",
        "session_id": "S5",
        "ts": T("2026-03-01T01:30:00"),
        "runtime": "agentcore",
        "runtime_session_id": "rs-1",
        "venue": "aws",
    },
]

COLUMNS = [
    "covered_events",
    "covered_input_tokens",
    "covered_output_tokens",
    "covered_cost_nanos",
    "violating_events",
    "violating_input_tokens",
    "violating_output_tokens",
    "violating_cost_nanos",
    "covered_unpriced_events",
    "violating_unpriced_events",
]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "audit.db"
    with sm.Meter(path) as meter:
        for e in EVENTS:
            meter.record(e)
    return sm.Ledger.open(path)


@pytest.fixture(scope="module")
def contract():
    return sm.Contract.from_toml(CONTRACT)


@pytest.fixture(scope="module")
def prices():
    return sm.PriceTable.from_toml(PRICES)


def cells(row):
    return [row[c] for c in COLUMNS]


def test_prices_of_each_event_match_the_hand_computation(ledger, prices):
    for e in ledger.events(kind="model_call"):
        assert prices.cost(e) == COST[e.id], e.id


def test_report_every_cell(ledger, contract, prices):
    r = ledger.report(contract, prices)
    assert r.columns == ["interpretation", "clause", *COLUMNS]
    rows = {row["interpretation"]: row for row in r.to_pylist()}
    assert list(rows) == ["session-level", "call-level", "all-calls"]
    assert {row["clause"] for row in rows.values()} == {"azure-only"}
    # call-level: stateless openai calls from 2026-01-01: e2 e3 e5 e6 e7 e8 e10.
    # Violating: before 04-27 off Azure (e3, e5, e10); after it Azure or AWS is fine.
    assert cells(rows["call-level"]) == [
        7,
        1000 + 2000 + 100 + 100 + 1000 + 10 + 100,
        100 + 300 + 10 + 10 + 100 + 1 + 10,
        3_400_000 + 4_375_000 + 180_000 + 180_000 + 7_000_000 + 225_000,
        3,
        2000 + 100 + 100,
        300 + 10 + 10,
        4_375_000 + 180_000 + 225_000,
        1,
        0,
    ]
    # session-level: S2 (stateful call) and S5 (runtime) are stateful sessions:
    # covered e2 e5 e6 e7 e8, violating e5.
    assert cells(rows["session-level"]) == [
        5,
        2210,
        221,
        3_400_000 + 180_000 + 180_000 + 7_000_000,
        1,
        100,
        10,
        180_000,
        1,
        0,
    ]
    # all-calls: e2 e3 e4 e5 e6 e7 e8 e10, violating e3 e4 e5 e10.
    assert cells(rows["all-calls"]) == [8, 4810, 581, 16_485_000, 4, 2700, 370, 5_905_000, 1, 0]


def test_report_without_prices_has_no_costs(ledger, contract):
    rows = ledger.report(contract).to_pylist()
    for row in rows:
        assert row["covered_cost_nanos"] is None and row["violating_cost_nanos"] is None
        assert row["covered_unpriced_events"] is None
    assert [r["covered_events"] for r in rows] == [5, 7, 8]


def test_report_by_venue_and_month(ledger, contract, prices):
    r = ledger.report(contract, prices, by=["venue", "month"])
    assert r.columns[:4] == ["interpretation", "clause", "venue", "month"]
    got = [
        (x["venue"], x["month"], *cells(x))
        for x in r.to_pylist()
        if x["interpretation"] == "call-level"
    ]
    assert got == [
        ("aws", "2026-02", 1, 2000, 300, 4_375_000, 1, 2000, 300, 4_375_000, 0, 0),
        ("aws", "2026-03", 1, 100, 10, 225_000, 1, 100, 10, 225_000, 0, 0),
        ("aws", "2026-04", 2, 200, 20, 360_000, 1, 100, 10, 180_000, 0, 0),
        ("azure", "2026-01", 1, 1000, 100, 3_400_000, 0, 0, 0, 0, 0, 0),
        ("azure", "2026-05", 2, 1010, 101, 7_000_000, 0, 0, 0, 0, 1, 0),
    ]
    # "by" as a comma-separated string is the same report.
    assert ledger.report(contract, prices, by="venue, month").to_pylist() == r.to_pylist()


def test_report_window_straddling_the_amendment(ledger, contract, prices):
    # [2026-04-01, 2026-05-01): e5 (old version, aws violates) and e6 (new version, aws ok).
    for since, until in [
        ("2026-04-01", "2026-05-01"),
        (dt.date(2026, 4, 1), dt.datetime(2026, 5, 1, tzinfo=dt.UTC)),
        (T("2026-04-01"), T("2026-05-01")),
    ]:
        rows = ledger.report(contract, prices, since=since, until=until).to_pylist()
        call = next(r for r in rows if r["interpretation"] == "call-level")
        assert cells(call) == [2, 200, 20, 360_000, 1, 100, 10, 180_000, 0, 0]
    # An empty window still has one row per interpretation, all zero.
    rows = ledger.report(contract, prices, since="2030-01-01").to_pylist()
    assert [cells(r) for r in rows] == [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]] * 3
    with pytest.raises(sm.ValidationError, match="until"):
        ledger.report(contract, since="2026-05-01", until="2026-04-01")
    with pytest.raises(sm.ValidationError, match="since"):
        ledger.report(contract, since="last tuesday")
    with pytest.raises(sm.ValidationError, match="by"):
        ledger.report(contract, by=["vnue"])


def test_violations_are_the_violating_events(ledger, contract):
    r = ledger.report(contract)
    assert [e.id for e in r.violations("call-level", "azure-only")] == ["e3", "e5", "e10"]
    assert [e.id for e in r.violations("all-calls", "azure-only")] == ["e3", "e4", "e5", "e10"]
    v = r.violations("session-level", "azure-only")
    assert [e.id for e in v] == ["e5"] and v[0].session_tag == "stateless"
    with pytest.raises(sm.ValidationError, match="no interpretation"):
        r.violations("strict", "azure-only")
    with pytest.raises(sm.ValidationError, match="no clause"):
        r.violations("call-level", "nope")


def test_costs_every_cell(ledger, prices):
    c = ledger.costs(prices)
    assert c.columns == [
        "events",
        "input_tokens",
        "cached_tokens",
        "output_tokens",
        "cost_nanos",
        "unpriced_events",
        "model_cost_nanos",
        "runtime_cost_nanos",
        "storage_cost_nanos",
    ]
    model = sum(v for v in COST.values() if v is not None)
    assert model == 20_485_000
    assert c.to_pylist() == [
        {
            "events": 12,
            "input_tokens": 5860,
            "cached_tokens": 1400,
            "output_tokens": 686,
            "cost_nanos": model + RUNTIME + STORAGE,
            "unpriced_events": 2,
            "model_cost_nanos": model,
            "runtime_cost_nanos": RUNTIME,
            "storage_cost_nanos": STORAGE,
        }
    ]
    by_kind = {r["kind"]: r for r in ledger.costs(prices, by="kind").to_pylist()}
    assert by_kind["session_end"]["cost_nanos"] == RUNTIME
    assert by_kind["state_op"]["cost_nanos"] == STORAGE
    assert by_kind["model_call"]["events"] == 10
    by_model = {r["model"]: r for r in ledger.costs(prices, by=["model"]).to_pylist()}
    # Unpriced groups show None, never 0.
    assert by_model["claude"]["cost_nanos"] is None and by_model["claude"]["unpriced_events"] == 1
    assert by_model["gpt-4o"]["cost_nanos"] is None
    # Without runtime and storage sections only model calls are billable.
    tokens_only = sm.PriceTable.from_toml(PRICES.split("[[runtime_price]]")[0])
    assert ledger.costs(tokens_only).to_pylist()[0]["events"] == 10


def test_costs_by_day_and_week(ledger, prices):
    weeks = {r["week"]: r["events"] for r in ledger.costs(prices, by="week").to_pylist()}
    # 2026-04-27 is the Monday of ISO week 18 (e6; e7 and e8 on Saturday and Sunday), 05-04
    # the Monday of week 19 (e9); 2026-04-20 is in week 17 (e5); 2025-12-15 in week 51 (e1).
    assert (weeks["2026-W17"], weeks["2026-W18"], weeks["2026-W19"]) == (1, 3, 1)
    assert weeks["2025-W51"] == 1
    days = [r["day"] for r in ledger.costs(prices, by="day").to_pylist()]
    assert days == sorted(days) and "2026-03-01" in days


def test_scenario_moving_stateful_sessions_to_azure(ledger, contract, prices):
    s = ledger.scenario(
        "stateful to azure",
        contract=contract,
        select={"session_tag": "stateful"},
        venue="azure",
        baseline_prices=prices,
    )
    # S2 (e3, e4) and S5 (start, e10, write, delete, end) are stateful; 5 carry a venue.
    assert (s.selected_events, s.moved_events) == (7, 5)
    rows = {r["interpretation"]: r for r in s.to_pylist()}
    a = rows["all-calls"]
    assert (a["covered_events"], a["selected_events"]) == (8, 3)
    assert (
        a["baseline_violating_events"],
        a["scenario_violating_events"],
        a["violating_events_delta"],
    ) == (4, 1, -3)
    # e3 at azure: 1000×2 + 1000×0.5 + 300×20 = 8,500,000; e4: 500×2 + 50×20 = 2,000,000;
    # e10: 100×2 + 10×20 = 400,000 (was 4,375,000 + 1,125,000 + 225,000).
    assert a["covered_cost_delta_nanos"] == 8_500_000 + 2_000_000 + 400_000 - 5_725_000
    assert a["scenario_violating_cost_nanos"] == 180_000
    costs = s.costs.to_pylist()[0]
    assert costs["cost_delta_nanos"] == 5_175_000
    assert costs["baseline_cost_nanos"] == 20_485_000 + RUNTIME + STORAGE
    # Session-level: S2 and S5 were never covered; nothing changes.
    assert rows["session-level"]["violating_events_delta"] == 0
    # Re-pricing the selection with another table (no venue change).
    cheap = sm.PriceTable.from_toml(
        'currency = "USD"\n[[price]]\nprovider = "openai"\nmodel = "gpt-5"\n'
        'input_per_mtok = "0"\noutput_per_mtok = "0"\n'
    )
    s = ledger.scenario(
        "free",
        contract=contract,
        select={"session_id": ["S2", "S5"]},
        prices=cheap,
        baseline_prices=prices,
    )
    assert s.moved_events == 0
    # The cheap table has no runtime or storage prices, so S5's runtime and storage charges
    # become unpriced in the scenario.
    c = s.costs.to_pylist()[0]
    assert c["cost_delta_nanos"] == -(5_725_000 + RUNTIME + STORAGE)
    assert c["scenario_unpriced_events"] == 4
    with pytest.raises(sm.ValidationError, match="select.colour"):
        ledger.scenario("x", contract=contract, select={"colour": "red"})
    with pytest.raises(sm.ValidationError, match="select.tag"):
        ledger.scenario("x", contract=contract, select={"tag": "maybe"})


def test_report_presentation(ledger, contract, prices):
    r = ledger.report(contract, prices, by="venue")
    assert len(r) == len(r.to_pylist()) == len(list(r))
    assert r[0] == r.to_pylist()[0]
    assert r.meta["contract"] == "t" and r.currency == "USD"
    page = r._repr_html_()
    # statemeter.display.report_html: interpretations side by side, then every row.
    assert "<td>call-level</td>" in page and '<th colspan="4">call-level</th>' in page
    # call-level at azure: e2 + e7 = 3,400,000 + 7,000,000 nanos, shown to the cent (half
    # to even) under a heading in the currency, the exact amount in the title.
    assert 'title="0.0104 USD (10,400,000 nanos)">0.01</td>' in page
    assert "violating cost (USD)" in page and "cost_nanos" not in page
    text = r.to_csv().splitlines()
    assert text[0].split(",")[:3] == ["interpretation", "clause", "venue"]
    assert "call-level" in repr(r)
    assert sm.format_money(15_360_000, "USD") == "0.01536 USD"
    assert sm.format_money(-1) == "-0.000000001"
    assert sm.format_money(None) == "unpriced"
    assert sm.format_cents(15_360_000, "USD") == "0.02 USD"
    assert sm.format_cents(None) == "unpriced"


def test_html_is_escaped_and_bounded(tmp_path):
    meter = sm.Meter()
    with meter.session("a", venue="<script>x</script>") as s:
        for i in range(100):
            s.model_call(provider="openai", model=f"m{i}", api="chat.completions")
    c = sm.Contract.from_toml(
        'id="c"\n[[clause]]\nid="k"\nproviders=["openai"]\nrequired_venues=["azure"]\n'
        '[clause.interpretations.x]\nlevel="call"\ntags=["stateless"]\n'
    )
    r = meter.ledger.report(c, by=["venue", "model"])
    page = r._repr_html_()
    assert "<script>" not in page and html.escape("<script>x</script>") in page
    assert "40 more rows" in page
    # Both tables (side by side, all rows) stop at HTML_MAX_ROWS data rows, the drill-down
    # of the one violating figure at DRILL_MAX_ROWS.
    assert page.count("<tr>") <= 2 * (sm.report.HTML_MAX_ROWS + 3) + display.DRILL_MAX_ROWS + 2
    assert "<details class='sm-drill'" in page


def test_dataframes(ledger, contract, prices):
    pd = pytest.importorskip("pandas")
    df = ledger.report(contract, prices, by="month").to_pandas()
    assert list(df.columns)[:3] == ["interpretation", "clause", "month"]
    assert str(df["covered_cost_nanos"].dtype) == "Int64"
    total = df[df.interpretation == "all-calls"]["covered_cost_nanos"].sum()
    assert int(total) == 16_485_000
    df = ledger.report(contract).to_pandas()
    assert df["covered_cost_nanos"].isna().all()
    assert isinstance(df, pd.DataFrame)
    pa = pytest.importorskip("pyarrow")
    t = ledger.costs(prices, by="venue").to_arrow()
    assert t.schema.field("cost_nanos").type == pa.int64()
    assert pa.table(ledger.costs(prices)).num_rows == 1  # via __arrow_c_stream__


def test_to_pandas_without_pandas_names_the_extra(ledger, contract, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    with pytest.raises(ImportError, match=r"pip install statemeter\[analysis\]"):
        ledger.report(contract).to_pandas()


def test_plot(ledger, contract, prices):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    ax = ledger.report(contract, prices).plot()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["session-level", "call-level", "all-calls"]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [5, 7, 8, 1, 3, 4]  # covered then violating
    ax = ledger.costs(prices, by="venue").plot(metric="cost")
    assert len(ax.patches) == 4
    s = ledger.scenario("x", contract=contract, select={"venue": "aws"}, venue="azure")
    assert len(s.plot().patches) == 6
    with pytest.raises(ValueError, match="metric"):
        ledger.report(contract).plot(metric="colour")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_contract_and_price_paths_are_accepted(ledger):
    c = EXAMPLES / "contracts" / "model-access-2026-amended.toml"
    p = EXAMPLES / "prices" / "illustrative.toml"
    r = ledger.report(str(c), p)
    assert r.meta["contract"] == "model-access-2026-amended"
    with pytest.raises(sm.ValidationError, match="contract"):
        ledger.report(42)
    with pytest.raises(sm.ContractError, match="cannot read"):
        ledger.report("missing.toml")


def test_cache_follows_the_ledger(tmp_path, contract):
    meter = sm.Meter(tmp_path / "grow.db")
    meter.record(EVENTS[1])
    first = meter.ledger.report(contract).to_pylist()
    assert first[1]["covered_events"] == 1
    meter.record(EVENTS[2])
    meter.record(EVENTS[3])
    # The later stateful call makes S2 stateful: the earlier cached rows are re-derived.
    rows = {r["interpretation"]: r for r in meter.ledger.report(contract).to_pylist()}
    assert rows["call-level"]["covered_events"] == 2
    assert rows["session-level"]["covered_events"] == 1
    assert rows["all-calls"]["covered_events"] == 3
    meter.close()
    # Another handle on the same file sees the same.
    other = sm.Ledger.open(tmp_path / "grow.db").report(contract).to_pylist()
    assert other == list(rows.values())


def test_state_holder_unknown_in_groups_and_scenario_selections(contract, prices, kinds_ruleset):
    meter = sm.Meter(ruleset=kinds_ruleset)
    chain = {"previous_response_id": "r"}
    for i, (provider, request) in enumerate(
        [("openai", chain), ("unknown", chain), ("unknown", chain), ("openai", None)]
    ):
        meter.record(
            call(f"u{i}", f"U{i}", "2026-03-02", "aws", 10, 1, provider=provider, request=request)
        )
    meter.flush()
    ledger = meter.ledger
    assert [e.state_holder for e in ledger.events()] == ["provider", "unknown", "unknown", None]
    groups = {
        r["state_holder"]: r["events"] for r in ledger.costs(prices, by="state_holder").to_pylist()
    }
    assert groups == {"provider": 1, "unknown": 2, None: 1}
    s = ledger.scenario(
        "unknown operators to azure",
        contract=contract,
        select={"state_holder": "unknown"},
        venue="azure",
        baseline_prices=prices,
    )
    assert (s.selected_events, s.moved_events) == (2, 2)
    s = ledger.scenario("held", contract=contract, select={"state_holder": ["provider", "unknown"]})
    assert s.selected_events == 3
    with pytest.raises(sm.ValidationError, match="unknown") as info:
        ledger.scenario("x", contract=contract, select={"state_holder": "server"})
    assert info.value.field == "select.state_holder"
    meter.close()


HOSTILE_AGENTS = [
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tlead",
    "\rlead",
    "ok",
]


def hostile_scenario():
    """A scenario costs table grouped by agent: formula-like agent names, and a negative cost
    delta (moving Azure calls to the cheaper base price)."""
    meter = sm.Meter()
    for agent in HOSTILE_AGENTS:
        with meter.session(agent, venue="azure") as s:
            s.model_call(provider="openai", model="gpt-5", api="responses", input_tokens=10**6)
    prices = sm.PriceTable.load(EXAMPLES / "prices" / "illustrative.toml")
    contract = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2025.toml")
    return meter.ledger.scenario(
        "off-azure",
        contract=contract,
        select={"venue": ["azure"]},
        venue="aws",
        prices=prices,
        baseline_prices=prices,
        by=["agent"],
    )


def test_csv_neutralises_formula_cells_but_keeps_numbers():
    import csv
    import io

    costs = hostile_scenario().costs
    rows = list(csv.reader(io.StringIO(costs.to_csv())))
    header, body = rows[0], rows[1:]
    agents = {r[header.index("agent")] for r in body}
    # OWASP: a text cell starting with = + - @ tab or CR gets a leading single quote.
    assert agents == {("'" + a if a[0] in "=+-@\t\r" else a) for a in HOSTILE_AGENTS}
    # Numbers stay numbers, negative amounts included.
    deltas = [r[header.index("cost_delta_nanos")] for r in body]
    assert all(d.startswith("-") and int(d) < 0 for d in deltas)
    # raw=True writes the cells as they are.
    raw = list(csv.reader(io.StringIO(costs.to_csv(raw=True))))
    assert {r[header.index("agent")] for r in raw[1:]} == set(HOSTILE_AGENTS)


def test_repr_escapes_control_characters_in_names():
    meter = sm.Meter()
    for agent in ["\x1b]0;owned\x07", "erase\x1b[2K\r", "bidi\u202eevil"]:
        with meter.session(agent) as s:
            s.model_call(provider="openai", model="gpt-5", api="responses")
    prices = sm.PriceTable.load(EXAMPLES / "prices" / "illustrative.toml")
    text = repr(meter.ledger.costs(prices, by=["agent"]))
    assert "\x1b" not in text and "\u202e" not in text and "\r" not in text and "\x07" not in text
    assert "\\x1b]0;owned\\x07" in text and "erase\\x1b[2K\\x0d" in text
    assert "bidi\\u202eevil" in text
