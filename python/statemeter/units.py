"""How a value of a result table is shown to a person, the same in HTML (``_repr_html_``,
the report page) and in the command line's ``table`` output.

- A money column (``*_nanos``: integer nano-units of the price table's currency) is headed in
  the currency (``covered_cost_nanos`` -> ``covered cost (USD)``) and shown to the cent,
  rounded half to even (:func:`statemeter.money.format_cents`); the exact amount stays in the
  data (and in the HTML cell's title).
- Counts get thousands separators; durations human units (``1 m 05 s``); session ids are
  shortened (the full id in the HTML cell's title and in the data).
- The venue of a row without one is labelled: in a costs table those are state operations
  (storage), which no venue serves.

Machine outputs (JSON, CSV, Arrow, ``to_pylist()``) never pass through here.
"""

from __future__ import annotations

from typing import Any

from statemeter.money import format_cents, format_money

__all__ = [
    "ID_CHARS",
    "NO_VENUE",
    "NO_VENUE_STATE_OPS",
    "duration",
    "exact_money",
    "header",
    "human",
    "is_money",
    "is_number",
    "short_id",
]

#: A session id is shown as its first characters (a UUIDv7's time prefix) and ``…``.
ID_CHARS = 13
#: The venue cell of a row without a venue.
NO_VENUE = "no venue"
#: The same in a costs table, where those rows are state operations.
NO_VENUE_STATE_OPS = "no venue: state operations"

#: Columns holding session ids (one, or several separated by spaces).
ID_COLUMNS = ("session_id", "example_sessions")
_DURATION_COLUMNS = ("duration_ns",)


def is_money(column: str) -> bool:
    """Whether ``column`` holds integer nano-units of a currency."""
    return column.endswith("_nanos")


def header(column: str, currency: str | None) -> str:
    """The heading shown for ``column``: money in the currency (``cost (USD)``), durations
    without the unit suffix, underscores as spaces so headings can wrap."""
    if is_money(column):
        name = column[: -len("_nanos")].replace("_", " ")
        return f"{name} ({currency})" if currency else name
    if column in _DURATION_COLUMNS:
        return "duration"
    return column.replace("_", " ")


def is_number(column: str, value: Any) -> bool:
    """Whether the cell is a number (right-aligned)."""
    if is_money(column) or column in _DURATION_COLUMNS:
        return True
    return isinstance(value, int) and not isinstance(value, bool)


def duration(ns: int | None) -> str:
    """``ns`` in human units: ``850 ms``, ``12.4 s``, ``4 m 05 s``, ``2 h 03 m``, ``3 d 04 h``."""
    if ns is None:
        return "—"
    sign = "-" if ns < 0 else ""
    ns = abs(int(ns))
    if ns < 1_000:
        return f"{sign}{ns} ns"
    if ns < 1_000_000:
        return f"{sign}{ns // 1_000} µs"
    if ns < 1_000_000_000:
        return f"{sign}{ns // 1_000_000} ms"
    s = ns // 1_000_000_000
    if s < 60:
        return f"{sign}{ns / 1e9:.1f} s"
    if s < 3600:
        return f"{sign}{s // 60} m {s % 60:02d} s"
    if s < 86400:
        return f"{sign}{s // 3600} h {s % 3600 // 60:02d} m"
    return f"{sign}{s // 86400} d {s % 86400 // 3600:02d} h"


def short_id(text: str) -> str:
    """A session id cut to :data:`ID_CHARS` characters and ``…`` (short ones as they are)."""
    return text if len(text) <= ID_CHARS + 1 else text[:ID_CHARS] + "…"


def exact_money(nanos: int, currency: str | None) -> str:
    """The exact amount and the integer it comes from, for a cell's title."""
    return f"{format_money(nanos, currency)} ({nanos:,} nanos)"


def human(column: str, value: Any, *, kind: str = "", currency: str | None = None) -> str:
    """The text of one cell for a person (``kind``: the table's kind, for the venue label)."""
    if value is None:
        if column == "venue":
            return NO_VENUE_STATE_OPS if kind in ("costs", "scenario_costs") else NO_VENUE
        if is_money(column):
            return "—"
        return "—"
    if is_money(column):
        return format_cents(value)
    if column in _DURATION_COLUMNS:
        return duration(value)
    if column in ID_COLUMNS:
        return " ".join(short_id(s) for s in str(value).split())
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
