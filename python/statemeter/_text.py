"""Text that leaves statemeter for a terminal or a spreadsheet: names in events (agents,
tenants, tools, venues) are whatever the recorded program said, so they are made safe here.

- :func:`printable`: control characters (C0, DEL, C1) and the Unicode bidirectional controls
  are written as escapes (``\\x1b``, ``\\u202e``), so a name cannot move the cursor, erase its
  row, set the terminal title or reorder the text around it. Used by the CLI's table and text
  output and by ``repr()`` of reports.
- :func:`csv_cell`: a text cell that a spreadsheet would read as a formula (it starts with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading single quote, as
  OWASP recommends against CSV injection. Numbers (negative amounts included) stay numbers.
  ``Report.to_csv(raw=True)`` and ``statemeter ... --format csv --raw-csv`` write cells as
  they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["CSV_FORMULA_PREFIXES", "csv_cell", "printable", "write_csv"]

#: First characters that make a spreadsheet evaluate a cell (OWASP's list).
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# C0 controls, DEL, C1 controls; the bidirectional embeddings, overrides and isolates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\u202e``)."""
    return _CONTROL.sub(_escape, text)


def csv_cell(value: Any, raw: bool = False) -> Any:
    """A CSV cell: ``None`` as an empty field; a text cell starting like a formula prefixed
    with ``'`` (unless ``raw``); anything else as it is."""
    if value is None:
        return ""
    if not raw and isinstance(value, str) and value.startswith(CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


def write_csv(out: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]], raw: bool) -> None:
    """Writes the header and rows to ``out`` as CSV, rows ending in ``\\n``, each cell through
    :func:`csv_cell`. A cell holding a carriage return or a newline is quoted (the csv module
    only quotes the characters of its line terminator, so rows are written CRLF-terminated and
    the terminator is swapped)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in [list(columns), *([csv_cell(v, raw) for v in r] for r in rows)]:
        buf.seek(0)
        buf.truncate()
        w.writerow(row)
        out.write(buf.getvalue()[:-2] + "\n")
