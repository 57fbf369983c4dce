"""Presentation of the tables computed in Rust by ``Ledger.report``, ``Ledger.costs`` and
``Ledger.scenario``.

``Report`` and ``Scenario`` are native classes (``statemeter._core``, re-exported here). Their
rows are computed in Rust (exact integers; money in nano-units of the price table's
currency); their methods call the functions below for CSV, text and plots (HTML is
``statemeter.display``, dataframes ``statemeter.frames``). Optional dependencies are
imported on use: ``pip install statemeter[analysis]`` (pandas, polars, pyarrow),
``statemeter[plot]`` (matplotlib).
"""

from __future__ import annotations

from typing import Any

from statemeter import terminal
from statemeter._core import Report, Scenario
from statemeter._text import printable, write_csv
from statemeter.display import REPORT_MAX_ROWS, caption
from statemeter.errors import invalid
from statemeter.money import format_cents, format_money

__all__ = ["Report", "Scenario", "format_cents", "format_money", "plot", "text", "to_csv"]

#: Most rows ``_repr_html_`` renders; the rest are summarised in one line.
HTML_MAX_ROWS = REPORT_MAX_ROWS

#: Most rows ``repr()`` shows.
TEXT_MAX_ROWS = 20

_NANOS = 1_000_000_000


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{module} is required for this; install it with `pip install statemeter[{extra}]`"
        ) from e


def to_csv(report: Report, raw: bool = False) -> str:
    """``Report.to_csv()``: the rows as CSV text (header = column names, None as an empty
    field). A text cell a spreadsheet would take for a formula (starting with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return: an agent or tenant name) is prefixed with a
    single quote, as OWASP recommends; numbers are written as they are. ``raw=True`` writes
    every cell as it is."""
    import io

    buf = io.StringIO()
    write_csv(buf, report.columns, report.rows(), raw)
    return buf.getvalue()


def text(report: Report) -> str:
    """``repr(report)``: the caption and row count, then the first rows as a table that fits
    120 columns (:func:`statemeter.terminal.render`: money to the cent, headed in the
    currency; control characters in names written as escapes)."""
    n = len(report)
    lines = [f"Report({printable(caption(report))}, {n} rows)"]
    if not n:
        return lines[0]
    shown = report.rows()[:TEXT_MAX_ROWS]
    lines += terminal.render(report.columns, shown, kind=report.kind, currency=report.currency)
    if n > len(shown):
        lines.append(f"… {n - len(shown)} more rows")
    return "\n".join(lines)


def plot(report: Report, metric: str = "events", ax: Any = None) -> Any:
    """``Report.plot()``: a bar chart; returns the matplotlib ``Axes`` (requires
    ``statemeter[plot]``).

    A report: covered vs violating per interpretation (and clause, when several), summed
    over the groups; ``metric`` is ``"events"``, ``"input_tokens"``, ``"output_tokens"``
    or ``"cost"`` (in currency units). A costs table: ``cost`` per group. A scenario side:
    baseline vs scenario violating events (or ``"cost"``) per interpretation.
    """
    plt = _need("matplotlib.pyplot", "plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    kind = report.kind
    rows = report.to_pylist()
    series: tuple[str, ...]
    if kind == "report":
        series = ("covered", "violating")
    elif kind == "scenario":
        series = ("baseline", "scenario")
    else:
        series = ()
    if series:
        col = {
            "events": "{}_events",
            "input_tokens": "{}_input_tokens",
            "output_tokens": "{}_output_tokens",
            "cost": "{}_cost_nanos",
        }.get(metric)
        if col is None or (kind == "scenario" and metric not in ("events", "cost")):
            raise invalid("metric", f"{metric!r} is not one this table can plot")
        if kind == "scenario":
            col = "{}_violating_events" if metric == "events" else "{}_violating_cost_nanos"
        clauses = {r["clause"] for r in rows}
        keys: list[str] = []
        sums: dict[str, list[float]] = {}
        for r in rows:
            key = r["interpretation"] + ("" if len(clauses) == 1 else f"\n{r['clause']}")
            if key not in sums:
                keys.append(key)
                sums[key] = [0.0, 0.0]
            for k, s in enumerate(series):
                v = r[col.format(s)] or 0
                sums[key][k] += v / _NANOS if metric == "cost" else v
        xs = range(len(keys))
        width = 0.4
        colours = ("#4c78a8", "#e45756")
        for k, s in enumerate(series):
            ax.bar(
                [x + (k - 0.5) * width for x in xs],
                [sums[key][k] for key in keys],
                width,
                label=s if kind == "report" else f"{s} violating",
                color=colours[k],
            )
        ax.set_xticks(list(xs), keys)
    else:
        if metric not in ("events", "cost"):
            raise invalid("metric", f"{metric!r} is not one this table can plot")
        col = {
            "costs": ("events", "cost_nanos"),
            "explain": ("violating_events", "violating_cost_nanos"),
        }.get(kind, ("events", "scenario_cost_nanos"))[metric == "cost"]
        labels = [" / ".join(str(r[b]) for b in report.by) or "all" for r in rows]
        values = [(r[col] or 0) / _NANOS if metric == "cost" else r[col] for r in rows]
        ax.bar(range(len(labels)), values, color="#4c78a8", label=col)
        ax.set_xticks(list(range(len(labels))), labels, rotation=30, ha="right")
    currency = report.currency
    unit = f" ({currency})" if metric == "cost" and currency else ""
    ax.set_ylabel(metric.replace("_", " ") + unit)
    ax.set_title(caption(report), fontsize=9)
    ax.legend()
    return ax
