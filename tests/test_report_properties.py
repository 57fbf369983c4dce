"""Property tests of reports and costs on random ledgers, against a plain-Python oracle of the
semantics in docs/contracts.md (coverage, violation, exact per-event cost)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import statemeter as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DATA = Path(__file__).parent / "data"
# One clause amended (the later version with one interpretation) and one overlapping it.
CONTRACT = sm.Contract.load(DATA / "contracts" / "amended-and-overlapping.toml")
# Rates with many decimals so that most events need rounding.
PRICES = sm.PriceTable.load(DATA / "prices" / "fractional-rates.toml")

BASE = int(dt.datetime(2026, 1, 20, tzinfo=dt.UTC).timestamp()) * 10**9
DAY = 86_400 * 10**9

call_st = st.builds(
    dict,
    session=st.sampled_from(["s1", "s2", "s3", "s4", None]),
    provider=st.sampled_from(["openai", "anthropic"]),
    model=st.sampled_from(["gpt-5", "gpt-4o", "claude"]),
    venue=st.sampled_from(["azure", "aws", "gcp", None]),
    stateful=st.booleans(),
    # Days 11/12 straddle 2026-02-01, 25/26 the dated price of 02-15, 39/40 the amendment of
    # 03-01; offsets favour the first and last nanosecond of a day.
    day=st.one_of(st.sampled_from([11, 12, 25, 26, 39, 40]), st.integers(0, 60)),
    offset=st.one_of(st.sampled_from([0, 1, DAY - 1]), st.integers(0, DAY - 1)),
    input_tokens=st.integers(0, 3_000_000),
    cached_share=st.integers(0, 100),
    output_tokens=st.integers(0, 500_000),
)


def build(calls):
    meter = sm.Meter()
    for c in calls:
        request = {"previous_response_id": "r"} if c["stateful"] else None
        meter.record(
            {
                "kind": "model_call",
                "session_id": c["session"],
                "provider": c["provider"],
                "model": c["model"],
                "api": "responses" if c["stateful"] else "chat.completions",
                "venue": c["venue"],
                "request": request,
                "ts": BASE + c["day"] * DAY + c["offset"],
                "input_tokens": c["input_tokens"],
                "cached_tokens": c["input_tokens"] * c["cached_share"] // 100,
                "output_tokens": c["output_tokens"],
            }
        )
    return meter


def ns(rfc3339):
    """Whole-second RFC 3339 bound to integer ns (no float on the event side)."""
    if rfc3339 is None:
        return None
    return int(dt.datetime.fromisoformat(rfc3339).timestamp()) * 10**9


def oracle(events, interpretation, clause):
    """Covered and violating events by the documented semantics."""
    covered, violating = [], []
    for e in events:
        for v in CONTRACT.clauses:
            if v["id"] != clause or interpretation not in v["interpretations"]:
                continue
            lo, hi = ns(v["effective_from"]), ns(v["effective_until"])
            if (
                e.provider not in v["providers"]
                or (lo is not None and e.ts < lo)
                or (hi is not None and e.ts >= hi)
            ):
                continue
            spec = v["interpretations"][interpretation]
            judged = e.tag if spec["level"] == "call" else e.session_tag
            if judged in spec["tags"]:
                covered.append(e)
                if e.venue not in v["required_venues"]:
                    violating.append(e)
            break
    return covered, violating


def total(events):
    costs = [PRICES.cost(e) for e in events]
    priced = [c for c in costs if c is not None]
    return (sum(priced) if priced or not events else None), len(costs) - len(priced)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(call_st, max_size=40))
def test_report_matches_the_oracle_and_totals_are_exact(calls):
    meter = build(calls)
    ledger = meter.ledger
    events = list(ledger.events(kind="model_call"))
    report = ledger.report(CONTRACT, PRICES)
    for row in report.to_pylist():
        covered, violating = oracle(events, row["interpretation"], row["clause"])
        assert row["covered_events"] == len(covered)
        assert row["violating_events"] == len(violating)
        assert row["covered_input_tokens"] == sum(e.input_tokens for e in covered)
        assert row["violating_output_tokens"] == sum(e.output_tokens for e in violating)
        cost, unpriced = total(covered)
        assert (row["covered_cost_nanos"], row["covered_unpriced_events"]) == (cost, unpriced)
        cost, unpriced = total(violating)
        assert (row["violating_cost_nanos"], row["violating_unpriced_events"]) == (cost, unpriced)
        # covered >= violating, cell by cell.
        for side in ("events", "input_tokens", "output_tokens", "cost_nanos"):
            assert (row[f"covered_{side}"] or 0) >= (row[f"violating_{side}"] or 0)
        ids = {e.id for e in violating}
        got = {e.id for e in report.violations(row["interpretation"], row["clause"])}
        assert got == ids
    # Call-level stateless coverage is a subset of all-calls coverage, where the clause
    # version has both (clause "k" before its 2026-03-01 amendment).
    amended = ns("2026-03-01T00:00:00+00:00")
    ts = {e.id: e.ts for e in events}
    call_cov, _ = oracle(events, "call-level", "k")
    all_cov, _ = oracle(events, "all-calls", "k")
    assert {e.id for e in call_cov if e.ts < amended} <= {e.id for e in all_cov}
    call_vio = {e.id for e in report.violations("call-level", "k")}
    all_vio = {e.id for e in report.violations("all-calls", "k")}
    assert {i for i in call_vio if ts[i] < amended} <= all_vio
    meter.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(call_st, max_size=40),
    st.sampled_from(
        [["venue"], ["month"], ["venue", "month"], ["week", "session_tag"], ["day", "tag", "model"]]
    ),
)
def test_grouped_rows_sum_to_the_ungrouped_totals(calls, by):
    meter = build(calls)
    ledger = meter.ledger
    flat = {(r["interpretation"], r["clause"]): r for r in ledger.report(CONTRACT, PRICES)}
    sums: dict = {}
    for r in ledger.report(CONTRACT, PRICES, by=by):
        assert r["covered_events"] > 0  # grouped rows only for groups with covered events
        acc = sums.setdefault((r["interpretation"], r["clause"]), {})
        for k, v in r.items():
            if k.endswith(("_events", "_tokens", "_nanos")):
                acc[k] = acc.get(k, 0) + (v or 0)
    for key, row in flat.items():
        for k, v in sums.get(key, {}).items():
            assert v == (row[k] or 0), (key, k)
    # Costs: the total is exactly the sum of per-event costs; unpriced counted, never zero.
    events = list(ledger.events(kind="model_call"))
    costs = [PRICES.cost(e) for e in events]
    (c,) = ledger.costs(PRICES).to_pylist()
    priced = [x for x in costs if x is not None]
    assert c["events"] == len(events)
    assert c["unpriced_events"] == len(costs) - len(priced)
    assert c["cost_nanos"] == (sum(priced) if priced or not events else None)
    grouped = ledger.costs(PRICES, by=by).to_pylist()
    assert sum(r["events"] for r in grouped) == len(events)
    assert sum(r["cost_nanos"] or 0 for r in grouped) == sum(priced)
    meter.close()
