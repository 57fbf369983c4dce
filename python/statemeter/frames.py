"""DataFrames from statemeter's Arrow tables.

Every table (``EventTable``, ``SessionTable``, ``Report``) exports its rows through the Arrow
PyCapsule stream interface (``__arrow_c_stream__``), built in Rust. The helpers here only hand
that stream to the dataframe library: no per-row Python work. The libraries are optional
extras: ``pip install statemeter[analysis]`` (pyarrow, pandas, polars, duckdb).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["require", "to_arrow", "to_pandas", "to_polars"]


def require(module: str, extra: str = "analysis", what: str | None = None) -> Any:
    """Imports ``module`` or raises ``ImportError`` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        raise ImportError(
            f"{what or 'this'} needs {top}, which is not installed: install it with "
            f"`pip install statemeter[{extra}]`"
        ) from e


def to_arrow(table: Any) -> Any:
    """A ``pyarrow.Table`` of any statemeter table (or anything with ``__arrow_c_stream__``)."""
    pa = require("pyarrow", what="to_arrow()")
    return pa.table(table)


def to_pandas(table: Any) -> Any:
    """A ``pandas.DataFrame``: timestamps as ``datetime64[ns, UTC]``, dictionary columns as
    ``Categorical``, integers (counts, ``seq``, ``*_cost_nanos``) as nullable ``Int64`` so
    they stay exact where some rows have none, evidence as lists of dicts, attrs and request
    as JSON text. (``to_arrow().to_pandas(types_mapper=pd.ArrowDtype)`` keeps Arrow types.)"""
    pd = require("pandas", what="to_pandas()")
    pa = require("pyarrow", what="to_pandas()")
    ints = {pa.int64(): pd.Int64Dtype()}
    return to_arrow(table).to_pandas(types_mapper=ints.get)


def to_polars(table: Any) -> Any:
    """A ``polars.DataFrame`` read straight from the Arrow stream (dictionary columns become
    ``Categorical``, timestamps ``Datetime("ns", "UTC")``)."""
    pl = require("polars", what="to_polars()")
    return pl.DataFrame(table)
