"""Typed reads of values from a provider's parsed JSON, for the runtime event readers."""

from __future__ import annotations

from typing import Any


def positive_int(value: Any) -> int:
    """`value` when it is a positive integer (not a bool), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def nonempty_str(value: Any) -> str | None:
    """`value` when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None
