"""Errors raised by the Python side of statemeter, in the same form as the core's."""

from __future__ import annotations

from statemeter._core import ValidationError

__all__ = ["invalid"]


def invalid(field: str, message: str) -> ValidationError:
    """A ``ValidationError`` naming ``field``, as the core raises them: the message starts
    with ``"{field}: "`` and ``.field`` holds the name (an argument, or a path inside one)."""
    error = ValidationError(f"{field}: {message}")
    error.field = field
    return error
