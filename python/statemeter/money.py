"""Money amounts: the engines compute every cost as an integer number of nano-units of the
price table's currency (``*_cost_nanos`` columns); this formats them with no float on the way.

One rounding rule for every human-facing view (HTML tables, the report page, plots, the
command line's ``table`` output): amounts are shown to the cent, rounded half to even
(:func:`to_cents`, :func:`format_cents`). Machine outputs (JSON, CSV, Arrow, ``to_pylist()``)
keep the exact integer nanos; :func:`format_money` writes an amount exactly.
"""

from __future__ import annotations

__all__ = ["NANOS_PER_CENT", "format_cents", "format_money", "to_cents"]

_NANOS = 1_000_000_000  # nano-units in one unit of the currency
#: Nano-units in one hundredth of the currency unit.
NANOS_PER_CENT = _NANOS // 100


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


def to_cents(nanos: int) -> int:
    """``nanos`` in whole hundredths of the currency unit, rounded half to even (banker's
    rounding: ``5_000_000`` -> 0, ``15_000_000`` -> 2, ``25_000_000`` -> 2)."""
    q, r = divmod(int(nanos), NANOS_PER_CENT)
    if 2 * r > NANOS_PER_CENT or (2 * r == NANOS_PER_CENT and q % 2):
        q += 1
    return q


def format_cents(nanos: int | None, currency: str | None = None) -> str:
    """An amount for reading: to the cent (half to even), thousands separated:
    ``1_234_565_000_000`` -> ``"1,234.56"`` (``"1,234.56 USD"`` with a currency). ``None``
    (unpriced) -> ``"unpriced"``. The exact amount is :func:`format_money`."""
    if nanos is None:
        return "unpriced"
    cents = to_cents(nanos)
    sign = "-" if cents < 0 else ""
    units, frac = divmod(abs(cents), 100)
    text = f"{sign}{units:,}.{frac:02d}"
    return f"{text} {currency}" if currency else text
