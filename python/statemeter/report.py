"""Presentation of the tables computed in Rust by ``Ledger.report``, ``Ledger.costs`` and
``Ledger.scenario``: rows as dicts, pandas/polars/Arrow, HTML in Jupyter, plots.

Nothing here computes: every row comes from the Rust engines (exact integers; money in
nano-units of the price table's currency). Optional dependencies are imported on use:
``pip install statemeter[analysis]`` (pandas, polars, pyarrow), ``statemeter[plot]``
(matplotlib).
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from statemeter.display import REPORT_MAX_ROWS, report_html
from statemeter.errors import invalid
from statemeter.money import format_money

if TYPE_CHECKING:  # pragma: no cover
    from statemeter._core import EventTable, _ReportData

__all__ = ["Report", "Scenario", "format_money"]

#: Most rows ``_repr_html_`` renders; the rest are summarised in one line.
HTML_MAX_ROWS = REPORT_MAX_ROWS

_NANOS = 1_000_000_000


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{module} is required for this; install it with `pip install statemeter[{extra}]`"
        ) from e


def _is_money(column: str) -> bool:
    return column.endswith("_nanos")


class Report:
    """Rows of a report, a costs table or one side of a scenario.

    ``to_pylist()`` gives one dict per row with the columns in ``columns``; ``to_pandas()``,
    ``to_polars()``, ``to_arrow()`` and ``__arrow_c_stream__`` hand the same rows to
    dataframe libraries (integers stay exact: pandas gets nullable ``Int64`` columns, or
    Python ints where a value exceeds 64 bits). ``violations(interpretation, clause)`` (for a
    contract report) is the ``EventTable`` of the violating events.
    """

    __slots__ = ("_data",)

    def __init__(self, data: _ReportData) -> None:
        self._data = data

    # -- rows -------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"report"``, ``"costs"``, ``"scenario"`` or ``"scenario_costs"``."""
        return self._data.kind

    @property
    def columns(self) -> list[str]:
        return self._data.columns

    @property
    def by(self) -> list[str]:
        """The group-by dimensions (columns after ``interpretation, clause`` in a report)."""
        return self._data.by

    @property
    def meta(self) -> dict[str, str | None]:
        """What the rows were computed from: contract id, currency, since, until, ..."""
        return self._data.meta

    @property
    def currency(self) -> str | None:
        return self.meta.get("currency")

    def to_pylist(self) -> list[dict[str, Any]]:
        """One dict per row, keyed by column name."""
        return self._data.to_pylist()

    def rows(self) -> list[tuple[Any, ...]]:
        """One tuple per row, in column order."""
        return self._data.rows()

    def violations(self, interpretation: str, clause: str) -> EventTable:
        """The events that violate ``clause`` under ``interpretation`` in this report's window."""
        return self._data.violations(interpretation, clause)

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.to_pylist())

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.to_pylist()[index]

    # -- dataframes -------------------------------------------------------------------------
    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` (requires ``pip install statemeter[analysis]``): counts and
        money as nullable ``Int64``, labels as ``Categorical``; read from the Arrow stream."""
        from statemeter.frames import to_pandas

        return to_pandas(self)

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` (requires ``pip install statemeter[analysis]``)."""
        from statemeter.frames import to_arrow

        return to_arrow(self)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule stream interface, built in Rust: labels as
        ``dictionary<int32, utf8>``, counts and ``*_cost_nanos`` as ``int64`` (``decimal128(38,
        0)`` for a column with a value beyond 64 bits)."""
        return self._data.__arrow_c_stream__(requested_schema)

    def to_polars(self) -> Any:
        """A ``polars.DataFrame`` (requires ``pip install statemeter[analysis]``)."""
        from statemeter.frames import to_polars

        return to_polars(self)

    def to_csv(self) -> str:
        """The rows as CSV text (header = column names, None as an empty field)."""
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for r in self.rows():
            w.writerow(["" if v is None else v for v in r])
        return buf.getvalue()

    # -- display ----------------------------------------------------------------------------
    def _caption(self) -> str:
        m = {k: v for k, v in self.meta.items() if v is not None}
        parts = [self.kind] + [f"{k}={v}" for k, v in m.items()]
        return ", ".join(parts)

    def _repr_html_(self) -> str:
        """HTML for Jupyter (``statemeter.display.report_html``): a compliance report shows
        its interpretations side by side; money as exact decimal amounts; escaped and capped."""
        return report_html(self)

    def __repr__(self) -> str:
        lines = [f"Report({self._caption()}, {len(self)} rows)"]
        if not len(self):
            return lines[0]
        shown = self.rows()[:20]
        texts = [[("" if v is None else str(v)) for v in r] for r in shown]
        widths = [max(len(c), *(len(t[j]) for t in texts)) for j, c in enumerate(self.columns)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)))
        for t in texts:
            lines.append("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))
        if len(self) > len(shown):
            lines.append(f"… {len(self) - len(shown)} more rows")
        return "\n".join(lines)

    # -- plot -------------------------------------------------------------------------------
    def plot(self, metric: str = "events", ax: Any = None) -> Any:
        """A bar chart; returns the matplotlib ``Axes`` (requires ``statemeter[plot]``).

        A report: covered vs violating per interpretation (and clause, when several), summed
        over the groups; ``metric`` is ``"events"``, ``"input_tokens"``, ``"output_tokens"``
        or ``"cost"`` (in currency units). A costs table: ``cost`` per group. A scenario side:
        baseline vs scenario violating events (or ``"cost"``) per interpretation.
        """
        plt = _need("matplotlib.pyplot", "plot")
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5))
        rows = self.to_pylist()
        series: tuple[str, ...]
        if self.kind == "report":
            series = ("covered", "violating")
        elif self.kind == "scenario":
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
            if col is None or (self.kind == "scenario" and metric not in ("events", "cost")):
                raise invalid("metric", f"{metric!r} is not one this table can plot")
            if self.kind == "scenario":
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
                    label=s if self.kind == "report" else f"{s} violating",
                    color=colours[k],
                )
            ax.set_xticks(list(xs), keys)
        else:
            if metric not in ("events", "cost"):
                raise invalid("metric", f"{metric!r} is not one this table can plot")
            col = (
                "events"
                if metric == "events"
                else ("cost_nanos" if self.kind == "costs" else "scenario_cost_nanos")
            )
            labels = [" / ".join(str(r[b]) for b in self.by) or "all" for r in rows]
            values = [(r[col] or 0) / _NANOS if metric == "cost" else r[col] for r in rows]
            ax.bar(range(len(labels)), values, color="#4c78a8", label=col)
            ax.set_xticks(list(range(len(labels))), labels, rotation=30, ha="right")
        unit = f" ({self.currency})" if metric == "cost" and self.currency else ""
        ax.set_ylabel(metric.replace("_", " ") + unit)
        ax.set_title(self._caption(), fontsize=9)
        ax.legend()
        return ax


class Scenario:
    """A what-if scenario against the baseline: ``compliance`` (per interpretation, clause and
    group: violating events and covered cost, baseline vs scenario, with deltas) and
    ``costs`` (every billable event per group, baseline vs scenario). ``to_pylist()`` and
    ``to_pandas()`` give the compliance rows."""

    __slots__ = ("name", "compliance", "costs", "selected_events", "moved_events")

    def __init__(
        self,
        name: str,
        compliance: _ReportData,
        costs: _ReportData,
        selected_events: int,
        moved_events: int,
    ) -> None:
        self.name = name
        self.compliance = Report(compliance)
        self.costs = Report(costs)
        #: Events the selection matched inside the window.
        self.selected_events = selected_events
        #: Selected events whose venue the scenario changed.
        self.moved_events = moved_events

    def to_pylist(self) -> list[dict[str, Any]]:
        return self.compliance.to_pylist()

    def to_pandas(self) -> Any:
        return self.compliance.to_pandas()

    def plot(self, metric: str = "events", ax: Any = None) -> Any:
        return self.compliance.plot(metric=metric, ax=ax)

    def _repr_html_(self) -> str:
        title = html.escape(
            f"Scenario {self.name!r}: {self.selected_events:,} events selected, "
            f"{self.moved_events:,} moved"
        )
        return (
            f"<div><strong>{title}</strong>{self.compliance._repr_html_()}"
            f"{self.costs._repr_html_()}</div>"
        )

    def __repr__(self) -> str:
        return (
            f"Scenario({self.name!r}, selected_events={self.selected_events}, "
            f"moved_events={self.moved_events}, compliance={len(self.compliance)} rows, "
            f"costs={len(self.costs)} rows)"
        )
