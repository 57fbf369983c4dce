"""Result tables as aligned text for a terminal (the command line's ``table`` output and
``repr()`` of a ``Report``): headings and cells as :mod:`statemeter.units` shows them, numbers
right-aligned, control characters escaped (:func:`statemeter._text.printable`).

By default a table fits :data:`WIDTH` columns: long text cells are cut (``…``) and, while it
is still too wide, the least essential columns are left out (counts of unpriced events, token
counts, cost components, signals, example sessions, a scenario's baseline and scenario
figures beside their deltas), with a line naming them. ``wide=True`` shows every column in
full.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from statemeter import units
from statemeter._text import printable

__all__ = ["WIDTH", "render"]

#: Columns of the terminal a table fits by default.
WIDTH = 120
#: Longest text cell shown when fitting (explanations get more).
CELL_CHARS = 32
_LONG_CELL_CHARS = {"explanation": 44, "text": 44, "problem": 60}


def _rank(column: str) -> int | None:
    """Which columns go first when a table is too wide (lowest first); ``None``: kept."""
    if column.endswith("unpriced_events"):
        return 0
    if column.endswith("cached_tokens"):
        return 1
    if column.endswith(("input_tokens", "output_tokens")):
        return 2
    if column in ("example_sessions", "signal"):
        return 3
    if column.startswith(("model_cost", "runtime_cost", "storage_cost")):
        return 4
    if column.startswith(("baseline_", "scenario_")) and "delta" not in column:
        return 5
    return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    kind: str = "",
    currency: str | None = None,
    width: int = WIDTH,
    wide: bool = False,
) -> list[str]:
    """The table's lines (no trailing spaces): the heading (on two lines when fitting needs
    it), one line per row, then, when columns were left out, a note naming them."""
    heads = [units.header(c, currency) for c in columns]
    texts = [
        [
            printable(units.human(c, v, kind=kind, currency=currency))
            for c, v in zip(columns, r, strict=True)
        ]
        for r in rows
    ]
    right = [
        units.is_money(c) or any(r[j] is not None and units.is_number(c, r[j]) for r in rows)
        for j, c in enumerate(columns)
    ]
    if not wide:
        texts = [
            [_cut(t, _LONG_CELL_CHARS.get(c, CELL_CHARS)) for c, t in zip(columns, r, strict=True)]
            for r in texts
        ]
    cells = [max([0] + [len(t[j]) for t in texts]) for j in range(len(columns))]
    # Fitting, a heading wider than its cells may take two lines (split at a space).
    split = [_split(h, cells[j]) if not wide else (h, "") for j, h in enumerate(heads)]
    widths = [max(cells[j], len(a), len(b)) for j, (a, b) in enumerate(split)]
    keep = list(range(len(columns)))
    hidden: list[int] = []
    droppable = sorted((rank, -j) for j, c in enumerate(columns) if (rank := _rank(c)) is not None)

    def total() -> int:
        return sum(widths[j] for j in keep) + 2 * max(len(keep) - 1, 0)

    for _, neg in droppable:
        if wide or total() <= width:
            break
        keep.remove(-neg)
        hidden.append(-neg)

    def line(cells: Sequence[str]) -> str:
        out = [cells[j].rjust(widths[j]) if right[j] else cells[j].ljust(widths[j]) for j in keep]
        return "  ".join(out).rstrip()

    lines = []
    if any(split[j][1] for j in keep):
        lines.append(line([a for a, _ in split]))
        lines.append(line([b for _, b in split]))
    else:
        lines.append(line([a for a, _ in split]))
    lines += [line(t) for t in texts]
    if hidden:
        names = ", ".join(heads[j] for j in sorted(hidden))
        note = f"({len(hidden)} columns left out to fit {width}: {names}; --wide shows all)"
        lines += textwrap.wrap(note, width) if not wide else [note]
    return lines


def _split(heading: str, cells: int) -> tuple[str, str]:
    """``heading`` on one line, or on two (split at the space that makes the wider line
    narrowest) when it is wider than the column's cells."""
    if len(heading) <= cells or " " not in heading:
        return heading, ""
    best = min(
        (i for i, ch in enumerate(heading) if ch == " "),
        key=lambda i: max(i, len(heading) - i - 1),
    )
    return heading[:best], heading[best + 1 :]
