"""Plots render to PNG with the Agg backend and show what they claim."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import statemeter as sm
from statemeter import simulate

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from statemeter import plot  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fleet():
    return simulate.fleet(days=5, agents=6, seed=2, sessions_per_agent_day=8)


@pytest.fixture(scope="module")
def prices():
    return sm.PriceTable.load(EXAMPLES / "prices" / "illustrative.toml")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_usage_over_time_stacks_venue_by_tag(fleet, prices, tmp_path):
    ax = plot.usage_over_time(fleet.ledger, "events")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "azure · stateless (call)" in labels and "openai · stateful (call)" in labels
    # The stacked bars add up to the model calls per day.
    days = len(ax.get_xticks())
    assert days == 5
    total = sum(p.get_height() for p in ax.patches)
    assert total == len(fleet.ledger.events(kind="model_call"))
    data = plot.png(ax, tmp_path / "events.png")
    assert data.startswith(PNG) and (tmp_path / "events.png").read_bytes() == data
    ax = plot.usage_over_time(fleet.ledger, "cost", prices=prices, freq="week")
    assert "USD" in ax.get_ylabel()
    ax = plot.usage_over_time(fleet.ledger.events(), "tokens")  # aggregated by pyarrow
    assert sum(p.get_height() for p in ax.patches) == sum(
        (e.input_tokens or 0) + (e.output_tokens or 0) for e in fleet.ledger.events()
    )
    with pytest.raises(ValueError, match="metric"):
        plot.usage_over_time(fleet.ledger, "colour")
    with pytest.raises(ValueError, match="prices"):
        plot.usage_over_time(fleet.ledger, "cost")


def test_interpretations_compares_covered_and_violating(fleet, prices):
    contract = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2025.toml")
    report = fleet.ledger.report(contract, prices)
    ax = plot.interpretations(report)
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "session-level\n(session-level tags)",
        "call-level\n(call-level tags)",
        "all-calls\n(call-level tags)",
    ]
    rows = report.to_pylist()
    heights = sorted(p.get_width() for p in ax.patches)
    assert heights == sorted(
        [r["covered_events"] for r in rows] + [r["violating_events"] for r in rows]
    )
    assert any("USD" in t.get_text() for t in ax.texts)
    assert plot.png_base64(ax).startswith("data:image/png;base64,iVBOR")
    with pytest.raises(ValueError):
        plot.interpretations(fleet.ledger.costs(prices))


def test_session_timeline_shows_stateless_calls_in_a_stateful_runtime(fleet):
    ax = plot.session_timeline(fleet.ledger)
    title = ax.get_title()
    assert "runtime=" in title and "session tag stateful" in title
    colours = {matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches}
    assert plot._TAG["stateless"] in colours  # the runtime's model calls
    sid = fleet.ledger.sessions()[0]["session_id"]
    ax = plot.session_timeline(fleet.ledger.events(session_id=sid))
    assert sid[:13] in ax.get_title()
    assert plot.png(ax).startswith(PNG)


def test_report_and_table_plot_methods(fleet):
    ax = fleet.ledger.events().plot(metric="input_tokens")
    assert ax.get_ylabel() == "input tokens"


@pytest.mark.parametrize(
    ("draw", "field"),
    [
        (lambda f, p: plot.usage_over_time(f.ledger, "colour"), "metric"),
        (lambda f, p: plot.usage_over_time(f.ledger, freq="hour"), "freq"),
        (lambda f, p: plot.usage_over_time(f.ledger, "cost"), "prices"),
        (lambda f, p: plot.usage_over_time(f.ledger.events(), "cost"), "metric"),
        (lambda f, p: plot.usage_over_time(f.ledger.events(), freq="week"), "freq"),
        (lambda f, p: plot.interpretations(f.ledger.costs(p)), "report"),
        (lambda f, p: plot.session_timeline(sm.Meter().ledger), "source"),
        (lambda f, p: plot.session_timeline(f.ledger.events(), session_id="none"), "session_id"),
        (
            lambda f, p: f.ledger.report(
                sm.Contract.load(EXAMPLES / "contracts" / "model-access-2025.toml")
            ).plot(metric="colour"),
            "metric",
        ),
        (lambda f, p: f.ledger.costs(p).plot(metric="input_tokens"), "metric"),
    ],
)
def test_bad_arguments_are_validation_errors_naming_the_argument(fleet, prices, draw, field):
    with pytest.raises(sm.ValidationError) as info:
        draw(fleet, prices)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_missing_matplotlib_names_the_extra(fleet, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"statemeter\[plot\]"):
        plot.usage_over_time(fleet.ledger)


def test_session_timeline_shows_outer_and_inner_calls():
    meter = sm.Meter()
    with meter.session("claims", runtime="bedrock-agents", runtime_session_id="s-1") as s:
        outer = s.model_call(
            provider="aws.bedrock",
            model="agent",
            api="invoke_agent",
            request={"sessionId": "s-1"},
            ts=1_000_000_000,
            duration_ns=4_000_000_000,
        )
        for i in range(2):
            s.model_call(
                provider="aws.bedrock",
                model="m",
                api="invoke_model",
                ts=1_100_000_000 + i * 2_000_000_000,
                duration_ns=1_500_000_000,
                parent_id=outer.id,
            )
        s.tool_call("claims", ts=2_700_000_000, duration_ns=200_000_000, parent_id=outer.id)
    meter.flush()
    [row] = meter.ledger.sessions().to_pylist()
    assert (row["inner_model_calls"], row["inner_tool_calls"]) == (2, 1)
    ax = plot.session_timeline(meter.ledger)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [
        "session",
        "model_call",
        "tool_call",
        "state_op",
        "inner model_call",
        "inner tool_call",
    ]
    # The outer call on its lane, the runtime's steps on theirs, each by its own tag.
    lanes = sorted((round(p.get_y() + p.get_height() / 2), p.get_width()) for p in ax.patches)
    assert [lane for lane, _ in lanes if lane in (1, 4, 5)] == [1, 4, 4, 5]
    colours = {matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches}
    assert {plot._TAG["stateless"], plot._TAG["stateful"]} <= colours
    assert "inner" in ax.get_title()
