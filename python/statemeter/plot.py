"""Plots (matplotlib, ``pip install statemeter[plot]``). Each function draws on ``ax`` (a new
figure when omitted) and returns the ``Axes``; :func:`png` and :func:`png_base64` render a
figure for files and self-contained HTML.

- :func:`usage_over_time`: model-call events, tokens or cost per day (or week, month), by
  venue and call-level tag -- stacked bars, one colour per venue, dark for stateful and light
  for stateless; with ``contract=``, a dashed line at each date a clause version takes or
  ends effect (an amendment);
- :func:`interpretations`: a contract report's interpretations compared, covered vs violating
  events (and violating cost, to the cent) per interpretation, each labelled with the level
  of the tag it judges by;
- :func:`session_timeline`: one session on a time axis, each event a bar coloured by its own
  (call-level) tag, on a band coloured by the session's tag: a provider-managed runtime session
  shows its stateless model calls inside a stateful session; the calls the client made into the
  runtime (outer calls) and the steps the runtime reported for them (inner calls, their
  children) on lanes of their own.

Aggregation happens in Rust (``ledger.costs(..., by=(freq, "venue", "tag"))``) for a
``Ledger``, and in pyarrow for an ``EventTable``; nothing iterates over events in Python except
the single session of :func:`session_timeline`.
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from typing import Any

from statemeter.errors import invalid
from statemeter.frames import require
from statemeter.money import format_cents

__all__ = ["interpretations", "png", "png_base64", "session_timeline", "usage_over_time"]

_NANOS = 1_000_000_000
_METRICS = ("events", "input_tokens", "output_tokens", "tokens", "cost")
# (stateless, stateful) colours per venue, in order of first appearance.
_PAIRS = [
    ("#9ecae1", "#08519c"),
    ("#fdae6b", "#a63603"),
    ("#a1d99b", "#006d2c"),
    ("#bcbddc", "#54278f"),
    ("#d9d9d9", "#525252"),
    ("#fcbba1", "#a50f15"),
]
_TAG = {"stateless": "#74c476", "stateful": "#e6550d"}


def _pyplot() -> Any:
    return require("matplotlib.pyplot", extra="plot", what="plotting")


def _axes(ax: Any, size: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=size, layout="constrained")
    return ax


def _rows_from_ledger(
    ledger: Any, freq: str, prices: Any
) -> tuple[list[dict[str, Any]], str | None]:
    import statemeter as sm

    table = prices if prices is not None else sm.PriceTable.from_toml('currency = "USD"')
    costs = ledger.costs(table, by=(freq, "venue", "tag"))
    rows = [r for r in costs.to_pylist() if r["model_cost_nanos"] is not None or r["events"]]
    return rows, (costs.currency if prices is not None else None)


def _rows_from_events(events: Any, freq: str) -> list[dict[str, Any]]:
    pa = require("pyarrow", extra="plot", what="plotting an EventTable")
    pc = require("pyarrow.compute", extra="plot")
    t = pa.table(events)
    t = t.filter(pc.equal(t.column("kind").cast(pa.string()), "model_call"))
    day = pc.cast(pc.cast(t.column("ts"), pa.date32()), pa.string())
    if freq == "month":
        day = pc.utf8_slice_codeunits(day, 0, 7)
    elif freq == "week":
        raise invalid("freq", "'week' needs a Ledger (ledger.costs groups by ISO week)")
    t = pa.table(
        {
            freq: day,
            "venue": t.column("venue").cast(pa.string()),
            "tag": t.column("tag").cast(pa.string()),
            "input_tokens": t.column("input_tokens"),
            "output_tokens": t.column("output_tokens"),
        }
    )
    g = t.group_by([freq, "venue", "tag"]).aggregate(
        [([], "count_all"), ("input_tokens", "sum"), ("output_tokens", "sum")]
    )
    return [
        {
            freq: r[freq],
            "venue": r["venue"],
            "tag": r["tag"],
            "events": r["count_all"],
            "input_tokens": r["input_tokens_sum"] or 0,
            "output_tokens": r["output_tokens_sum"] or 0,
        }
        for r in g.to_pylist()
    ]


def usage_over_time(
    source: Any,
    metric: str = "events",
    *,
    prices: Any = None,
    freq: str = "day",
    contract: Any = None,
    ax: Any = None,
) -> Any:
    """Stacked bars of model-call ``metric`` per ``freq`` (``day``, ``week``, ``month``) by
    venue × call-level tag (each call's own tag). With ``contract`` (a ``Contract``), a
    dashed line marks each date inside the period on which a clause version takes or ends
    effect (e.g. an amendment). ``source`` is a ``Ledger`` (aggregated in Rust;
    ``metric="cost"`` needs ``prices``) or an ``EventTable`` (aggregated with pyarrow; no
    cost). ``metric``: ``events``, ``input_tokens``, ``output_tokens``, ``tokens`` (input +
    output) or ``cost`` (in currency units)."""
    if metric not in _METRICS:
        raise invalid("metric", f"{metric!r} is not one of {', '.join(_METRICS)}")
    if freq not in ("day", "week", "month"):
        raise invalid("freq", f"{freq!r} is not day, week or month")
    currency = None
    if hasattr(source, "costs"):
        if metric == "cost" and prices is None:
            raise invalid("prices", "metric='cost' needs a price table")
        rows, currency = _rows_from_ledger(source, freq, prices)
    else:
        if metric == "cost":
            raise invalid("metric", "'cost' needs a Ledger and prices")
        rows = _rows_from_events(source, freq)

    def value(r: dict[str, Any]) -> float:
        if metric == "cost":
            return (r["model_cost_nanos"] or 0) / _NANOS
        if metric == "tokens":
            return float(r["input_tokens"] + r["output_tokens"])
        return float(r[metric])

    buckets = sorted({r[freq] for r in rows})
    venues: list[str] = []
    for r in sorted(rows, key=lambda r: (-r["events"], str(r["venue"]))):
        if (r["venue"] or "(none)") not in venues:
            venues.append(r["venue"] or "(none)")
    series: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for r in rows:
        series[(r["venue"] or "(none)", r["tag"])][r[freq]] = value(r)
    ax = _axes(ax, (10, 4))
    x = list(range(len(buckets)))
    bottom = [0.0] * len(buckets)
    for v, venue in enumerate(venues):
        light, dark = _PAIRS[v % len(_PAIRS)]
        for tag, colour in (("stateless", light), ("stateful", dark)):
            ys = [series.get((venue, tag), {}).get(b, 0.0) for b in buckets]
            if not any(ys):
                continue
            ax.bar(x, ys, bottom=bottom, color=colour, width=0.85, label=f"{venue} · {tag} (call)")
            bottom = [a + b for a, b in zip(bottom, ys, strict=True)]
    step = max(1, len(buckets) // 12)
    ax.set_xticks(x[::step], [str(b) for b in buckets][::step], rotation=30, ha="right", fontsize=8)
    unit = f" ({currency})" if metric == "cost" and currency else ""
    ax.set_ylabel(metric.replace("_", " ") + unit)
    ax.set_title(
        f"Model calls: {metric.replace('_', ' ')} per {freq} by venue and call-level tag",
        fontsize=10,
    )
    if contract is not None:
        _mark_effective_dates(ax, contract, [str(b) for b in buckets], freq)
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    return ax


def _bucket_of(date: str, freq: str) -> str:
    """The label of the ``freq`` bucket a ``YYYY-MM-DD`` date falls in (as ``ledger.costs``
    writes it: ``2026-04-27``, ``2026-W18``, ``2026-04``)."""
    import datetime as dt

    if freq == "month":
        return date[:7]
    if freq == "week":
        y, w, _ = dt.date.fromisoformat(date).isocalendar()
        return f"{y}-W{w:02d}"
    return date


def _mark_effective_dates(ax: Any, contract: Any, buckets: list[str], freq: str) -> None:
    """A dashed vertical line at each clause version's effective date inside ``buckets``,
    labelled with the date and what takes effect."""
    marks: dict[str, list[str]] = {}
    for clause in contract.clauses:
        for key, what in (("effective_from", "takes effect"), ("effective_until", "ends")):
            ts = clause.get(key)
            if ts:
                marks.setdefault(ts[:10], []).append(f"{clause['id']} {what}")
    for date, whats in sorted(marks.items()):
        label = _bucket_of(date, freq)
        if label not in buckets:
            continue
        # A day-long bar is centred on its index: the date begins half a bar before it.
        x = buckets.index(label) - (0.5 if freq == "day" else 0.0)
        ax.axvline(x, color="#333333", linestyle="--", linewidth=1)
        changed = " / ".join(sorted(set(whats)))
        ax.annotate(
            f"{date}: {changed}",
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=7,
            color="#333333",
        )


def interpretations(report: Any, *, ax: Any = None) -> Any:
    """A contract report's interpretations side by side: covered and violating model calls per
    interpretation (summed over clauses and groups), the violating share and, when priced, the
    violating cost written on each bar."""
    if report.kind != "report":
        raise invalid(
            "report",
            f"interpretations() plots a contract report (ledger.report(...)), not {report.kind!r}",
        )
    sums: dict[str, list[float]] = {}
    cost: dict[str, int | None] = {}
    for r in report.to_pylist():
        s = sums.setdefault(r["interpretation"], [0, 0])
        s[0] += r["covered_events"]
        s[1] += r["violating_events"]
        c = r.get("violating_cost_nanos")
        if c is not None:
            cost[r["interpretation"]] = (cost.get(r["interpretation"]) or 0) + c
    names = list(sums)
    levels = _levels(report)
    ax = _axes(ax, (7, 3.6))
    y = list(range(len(names)))
    covered = [sums[n][0] for n in names]
    violating = [sums[n][1] for n in names]
    ax.barh([i + 0.2 for i in y], covered, height=0.38, color="#4c78a8", label="covered")
    ax.barh([i - 0.2 for i in y], violating, height=0.38, color="#e45756", label="violating")
    for i, n in enumerate(names):
        share = f"{violating[i] / covered[i]:.1%}" if covered[i] else "—"
        money = ""
        nanos = cost.get(n)
        if nanos is not None:
            # To the cent, half to even, as every table shows it (the data has it exactly).
            money = f", {format_cents(nanos, report.currency)}"
        ax.text(
            violating[i], i - 0.2, f"  {violating[i]:,} ({share}{money})", va="center", fontsize=8
        )
    ax.set_yticks(y, [f"{n}\n({levels[n]} tags)" if n in levels else n for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("model calls (each judged by the tag at its interpretation's level)")
    contract = report.meta.get("contract") or ""
    ax.set_title(f"{contract}: covered vs violating under each interpretation", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    return ax


def _levels(report: Any) -> dict[str, str]:
    """Interpretation -> the level (``call``, ``session``) of the tag it judges by, from the
    report's contract (levels that differ between clause versions are joined)."""
    contract = getattr(report, "contract", None)
    if contract is None:
        return {}
    out: dict[str, list[str]] = {}
    for clause in contract.clauses:
        for name, spec in clause["interpretations"].items():
            if spec["level"] not in out.setdefault(name, []):
                out[name].append(spec["level"])
    return {n: "/".join(v) + "-level" for n, v in out.items()}


def _pick_session(ledger: Any) -> str:
    """A session with a runtime's inner calls; else a provider-managed runtime session with
    model calls, preferring one that also has tool calls and state operations (else the first
    session)."""
    sessions = ledger.sessions().to_pylist()
    if not sessions:
        raise invalid("source", "the ledger has no sessions")
    inner = [s for s in sessions if s["inner_model_calls"]]
    runtime = [s for s in sessions if s["runtime"] and s["model_calls"]]
    rich = [s for s in runtime if s["model_calls"] >= 2 and s["tool_calls"] and s["state_ops"]]
    return str((inner or rich or runtime or sessions)[0]["session_id"])


def session_timeline(source: Any, session_id: str | None = None, *, ax: Any = None) -> Any:
    """One session on a time axis (seconds from its start): a lane per kind, each event a bar
    of its duration coloured by its call-level tag, over a band coloured by the session tag.
    Inner calls (events whose parent is a model call of the session: the steps a
    provider-managed runtime reported for a call into it) get lanes of their own below the
    outer calls. ``source`` is a ``Ledger`` (``session_id`` defaults to the first session with
    inner calls, else the first provider-managed runtime session with several model calls,
    tool calls and state operations) or an ``EventTable`` of one session."""
    if hasattr(source, "sessions"):
        sid = session_id or _pick_session(source)
        events = source.events(session_id=sid)
    else:
        events = source if session_id is None else source.filter(session_id=session_id)
    rows = [e.to_dict() for e in events]
    if not rows:
        raise invalid("source" if session_id is None else "session_id", "no events to plot")
    sid = rows[0]["session_id"]
    t0 = min(r["ts"] for r in rows)
    t1 = max(r["ts"] + (r["duration_ns"] or 0) for r in rows)
    span = max((t1 - t0) / _NANOS, 1e-3)
    lanes = ["session", "model_call", "tool_call", "state_op"]
    calls = {r["id"] for r in rows if r["kind"] == "model_call"}
    inner = {r["id"] for r in rows if r.get("parent_id") in calls}
    kinds = [k for k in lanes[1:] if any(r["kind"] == k and r["id"] in inner for r in rows)]
    lanes += [f"inner {k}" for k in kinds]
    ax = _axes(ax, (10, 3.2 + 0.45 * len(kinds)))
    session_tag = rows[0]["session_tag"]
    ax.axhspan(-0.5, len(lanes) - 0.5, color=_TAG[session_tag], alpha=0.10)
    runtime = next((r["runtime"] for r in rows if r.get("runtime")), None)
    for r in rows:
        if r["kind"] in ("session_start", "session_end"):
            lane = 0
        else:
            lane = lanes.index(f"inner {r['kind']}" if r["id"] in inner else r["kind"])
        x = (r["ts"] - t0) / _NANOS
        width = max((r["duration_ns"] or 0) / _NANOS, span / 400)
        ax.barh(
            lane,
            width,
            left=x,
            height=0.6,
            color=_TAG[r["tag"]],
            edgecolor="#333333",
            linewidth=0.4,
        )
        if r["kind"] == "model_call":
            ax.text(x + width / 2, lane + 0.42, r["api"] or "", ha="center", fontsize=6)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the session's first event")
    where = f"runtime={runtime}, " if runtime else ""
    ax.set_title(
        f"Session {sid[:13]}… ({where}agent={rows[0]['agent']}): session tag {session_tag}\n"
        "bars: each event's own (call-level) tag, green stateless, orange stateful; "
        "band: the session tag" + ("; inner: the runtime's steps for a call" if inner else ""),
        fontsize=9,
    )
    return ax


def png(ax_or_figure: Any, path: Any = None, *, dpi: int = 110) -> bytes:
    """Renders a figure (or an ``Axes``' figure) as PNG bytes; also writes ``path`` if given."""
    figure = getattr(ax_or_figure, "figure", ax_or_figure)
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=dpi)
    data = buf.getvalue()
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return data


def png_base64(ax_or_figure: Any, *, dpi: int = 110) -> str:
    """A ``data:image/png;base64,...`` URI of the figure, for self-contained HTML."""
    return "data:image/png;base64," + base64.b64encode(png(ax_or_figure, dpi=dpi)).decode()
