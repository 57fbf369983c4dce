"""Money amounts: the engines compute every cost as an integer number of nano-units of the
price table's currency (``*_cost_nanos`` columns); this formats them exactly, with no float
on the way."""

from __future__ import annotations

__all__ = ["format_money"]

_NANOS = 1_000_000_000  # nano-units in one unit of the currency


def format_money(nanos: int | None, currency: str | None = None) -> str:
    """Formats integer nano-units exactly as a decimal amount: ``4900000`` -> ``"0.0049"``
    (``"0.0049 USD"`` with a currency). ``None`` (unpriced) -> ``"unpriced"``."""
    if nanos is None:
        return "unpriced"
    sign = "-" if nanos < 0 else ""
    units, frac = divmod(abs(int(nanos)), _NANOS)
    text = f"{sign}{units:,}"
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return f"{text} {currency}" if currency else text
