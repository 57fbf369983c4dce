"""Classifying Arrow batches of events again: :func:`classify_batch` (docs/scale.md)."""

from __future__ import annotations

from typing import Any

from statemeter import _core
from statemeter.frames import require

__all__ = ["classify_batch"]


def classify_batch(batch: Any, ruleset: _core.Ruleset | None = None) -> Any:
    """``batch`` with its classification columns (``tag``, ``session_tag``,
    ``consumes_state``, ``creates_state``, ``state_holder``, ``state_kinds``,
    ``session_stateful``, ``ruleset``, ``ruleset_digest``, ``evidence``) recomputed under
    ``ruleset`` (default: the built-in default ruleset), every other column passed through.

    ``batch``: a ``pyarrow.RecordBatch`` or ``Table``, or anything with
    ``__arrow_c_array__`` / ``__arrow_c_stream__``, holding events in the columns of an
    exported dataset (``kind`` and ``ts`` required; the columns the rules read — provider,
    api, request, attrs, tool, op, holder, ... — taken when present; strings plain or
    dictionary-encoded). It crosses into Rust through the Arrow C data interface: no Python
    runs per row. Returns a ``pyarrow.RecordBatch`` (a ``Table`` for a table or stream),
    classification columns in the events table's types (docs/arrow.md).

    ``session_tag`` is derived over the batch: exact for sessions whose events are all in it.
    Only the columns the ruleset reads are read (with ``kind``, ``ts`` and ``session_id``);
    rows that agree on them share one classification, computed once (docs/scale.md).
    Raises ``ValidationError`` (field ``batch``) for a missing ``kind`` or ``ts`` or a
    mistyped column among those read.
    """
    pa = require("pyarrow", what="classify_batch()")
    out = pa.RecordBatchReader.from_stream(_core._classify_batch(batch, ruleset)).read_all()
    if isinstance(batch, pa.Table) or not hasattr(batch, "__arrow_c_array__"):
        return out
    return (
        out.combine_chunks().to_batches()[0]
        if out.num_rows
        else pa.RecordBatch.from_pylist([], schema=out.schema)
    )
