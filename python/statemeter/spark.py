"""Apache Spark over an exported dataset (``pip install statemeter[spark]``, pyspark >= 4 and a
Java runtime, 17 or later): the fleet's reports, re-classification and verification run as
Spark jobs, each task calling statemeter's Rust core on Arrow batches (``mapInArrow``,
``applyInArrow``). See docs/scale.md.

- :func:`read_dataset`: a dataset written by ``ledger.export_parquet`` (many ledgers) as a
  DataFrame;
- :func:`report`: ``ledger.report(...)`` over every event of the dataset: exactly the columns
  and values of ``Report.to_pylist()``. Sessions are whole within a task (the rows are
  partitioned by session), so session-level interpretations see sessions across ledgers; each
  task runs the Rust report engine (per-event costs by the Rust pricer, integers), and the
  partial rows are summed as Spark ``bigint``\\ s (ANSI mode: an overflow is an error, never a
  wrap). No floating point anywhere;
- :func:`classify`: the DataFrame with its classification columns recomputed under a ruleset
  (:func:`statemeter.classify_batch` per Arrow batch), ``session_tag`` derived again over the
  whole dataset;
- :func:`verify`: one row per ledger (``ledger_id, ok, events, first_bad_seq, problem``), each
  ledger's chain re-derived from its ``record`` and ``hash`` columns (export with
  ``include_records=True``), ledgers in parallel, checked against kept heads when given.

Contracts, price tables and rulesets reach the tasks pickled (rebuilt from their TOML; ruleset
files a contract names are read again at the same path on the executors).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from statemeter import _core
from statemeter.errors import invalid
from statemeter.frames import require

__all__ = ["classify", "read_dataset", "report", "verify"]

_CLASSIFICATION = (
    "tag",
    "session_tag",
    "consumes_state",
    "creates_state",
    "state_holder",
    "state_kinds",
    "session_stateful",
    "ruleset",
    "ruleset_digest",
    "evidence",
)


def _pyspark() -> Any:
    try:
        import pyspark.sql.functions as F  # noqa: N812
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "statemeter.spark needs pyspark >= 4: pip install 'statemeter[spark]'"
        ) from e
    return F


def read_dataset(spark: Any, path: str | os.PathLike[str]) -> Any:
    """The dataset at ``path`` (a local directory or a URI Spark can read: ``s3a://``,
    ``gs://``, ``abfss://``, ...) as a Spark DataFrame, Hive partitions included.

    ``ts`` is read as ``bigint`` nanoseconds (Spark has no nanosecond timestamp type; the
    session setting ``spark.sql.legacy.parquet.nanosAsLong`` is turned on for it), so no
    digit of an event time is lost.
    """
    _pyspark()
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    p = os.fspath(path)
    if "://" not in p:
        p = os.path.abspath(p)
    return spark.read.parquet(p)


def _session_key(F: Any) -> Any:  # noqa: N803
    """The session an event belongs to, across ledgers: its ``session_id``, or the event
    alone when it has none."""
    return F.coalesce(
        F.concat(F.lit("s:"), F.col("session_id")),
        F.concat(F.lit("e:"), F.col("ledger_id"), F.lit(":"), F.col("id")),
    )


def _colocate_sessions(F: Any) -> Any:  # noqa: N803
    """A partitioning value that sends every event of a session to the same task: a hash of
    its ``session_id`` (or, for an event without one, which is its own session, its ``ts``).
    A number from two columns the report reads anyway: nothing else is shuffled for it."""
    return F.when(F.col("session_id").isNull(), F.col("ts")).otherwise(
        F.xxhash64(F.col("session_id"))
    )


def _by(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [b.strip() for b in by.split(",") if b.strip()]
    return list(by)


def report(
    df: Any,
    contract: Any,
    prices: Any = None,
    *,
    by: str | Sequence[str] = (),
    since: Any = None,
    until: Any = None,
) -> Any:
    """``ledger.report(contract, prices, by=by, since=since, until=until)`` over the events
    of ``df`` (a :func:`read_dataset` DataFrame, any filter or union of them), as a Spark
    DataFrame with exactly the columns of ``Report.to_pylist()`` and, collected, the same
    values, in the same row order. ``contract`` and ``prices`` are objects or file paths.
    Arguments are checked on the driver first (the same errors ``ledger.report`` raises).
    """
    import statemeter as sm

    F = _pyspark()  # noqa: N806
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    if isinstance(contract, str | os.PathLike):
        contract = sm.Contract.load(contract)
    if isinstance(prices, str | os.PathLike):
        prices = sm.PriceTable.load(prices)
    dims = _by(by)
    # The report of no events: checks every argument, gives the columns, and (without `by`)
    # the zero row of each slot, which the sum keeps when no event is covered.
    columns, empty = _core._dataset_report([], contract, prices, dims, since, until)
    width = 2 + len(dims)
    schema = StructType(
        [StructField("slot", LongType(), False)]
        + [StructField(c, StringType(), True) for c in columns[:width]]
        + [StructField(c, LongType(), True) for c in columns[width:]]
    )
    slots = {tuple(s): i for i, s in enumerate(contract.slots)}
    # Only the columns the engine reads cross the shuffle: the ones a ruleset classifies from
    # (the request text, for the strict ruleset) only when an interpretation reads the calls
    # under it.
    read = set(_core._dataset_report_columns(contract, dims))
    wanted = [c for c in df.columns if c in read]

    def partial(batches: Iterator[Any]) -> Iterator[Any]:
        pa = require("pyarrow")

        from statemeter import _core as core

        cols, rows = core._dataset_report(list(batches), contract, prices, dims, since, until)
        out = [[slots[(r[0], r[1])], *r] for r in rows]
        yield pa.RecordBatch.from_pylist(
            [dict(zip(["slot", *cols], r, strict=True)) for r in out],
            schema=_arrow_schema(schema),
        )

    spark = df.sparkSession
    parts = (
        df.select(*wanted)
        .repartition(_colocate_sessions(F))
        .mapInArrow(partial, schema)
        .unionByName(spark.createDataFrame([[slots[(r[0], r[1])], *r] for r in empty], schema))
    )
    counts = columns[width:]
    sums = []
    for c in counts:
        if c.endswith("_cost_nanos"):
            side = c.removesuffix("_cost_nanos")
            unpriced, events = F.sum(f"{side}_unpriced_events"), F.sum(f"{side}_events")
            # No price table: null; a cell whose events are all unpriced: null (as the
            # ledger's report); else the exact sum of the priced events' costs.
            cell = (
                F.when(F.lit(prices is None), F.lit(None).cast("bigint"))
                .when((events > 0) & (unpriced == events), F.lit(None).cast("bigint"))
                .otherwise(F.coalesce(F.sum(c), F.lit(0)))
            )
            sums.append(cell.alias(c))
        else:
            sums.append(F.sum(c).alias(c))
    keys = ["slot", *columns[:width]]
    out = parts.groupBy(*keys).agg(*sums)
    if dims:
        out = out.where(F.col("covered_events") > 0)
    order = [F.col("slot")] + [F.col(d).asc_nulls_first() for d in columns[2:width]]
    return out.orderBy(*order).select(*columns)


def _arrow_schema(schema: Any) -> Any:
    pa = require("pyarrow")

    types = {"LongType()": pa.int64(), "StringType()": pa.string()}
    return pa.schema([pa.field(f.name, types[str(f.dataType)], f.nullable) for f in schema.fields])


def classify(df: Any, ruleset: Any) -> Any:
    """``df`` with its classification columns recomputed under ``ruleset`` (a ``Ruleset``,
    or a path to a ruleset file): :func:`statemeter.classify_batch` on every Arrow batch,
    in parallel, then each event's ``session_tag`` derived again over the whole DataFrame
    (stateful when any event of its session is ``session_stateful``). Every other column is
    kept. The way to read a year of history under a new ruleset."""
    import statemeter as sm

    F = _pyspark()  # noqa: N806
    from pyspark.sql import Window

    if isinstance(ruleset, str | os.PathLike):
        ruleset = sm.Ruleset.load(ruleset)
    if not isinstance(ruleset, sm.Ruleset):
        raise invalid("ruleset", "must be a Ruleset or a path to a ruleset file")
    missing = [c for c in ("kind", "ts", "ledger_id", "id") if c not in df.columns]
    if missing:
        raise invalid("df", f"has no column {', '.join(missing)}: not an exported dataset")

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        pa = require("pyarrow")

        from statemeter.batch import classify_batch

        for b in batches:
            out = classify_batch(b, ruleset)
            yield (
                pa.Table.from_batches([out]).select(b.schema.names).cast(b.schema).to_batches()[0]
                if out.num_rows
                else b
            )

    classified = df.mapInArrow(run, df.schema)
    if "session_tag" not in df.columns:
        return classified
    whole = Window.partitionBy(_session_key(F))
    tag = F.when(F.max(F.col("session_stateful")).over(whole), F.lit("stateful")).otherwise(
        F.lit("stateless")
    )
    return classified.withColumn("session_tag", tag)


def verify(df: Any, heads: Mapping[str, Any] | Iterable[Any] | None = None) -> Any:
    """One row per ledger of ``df`` (``ledger_id, ok, events, first_bad_seq, problem``): its
    chain re-derived from the ``seq``, ``record`` and ``hash`` columns (a dataset exported
    with ``include_records=True``), each ledger in its own task. ``heads``: kept heads, as a
    mapping ``ledger_id -> Head or "SEQ:HEX"`` or ``Head`` objects carrying their
    ``ledger_id``; a ledger whose rows end before its kept head is ``truncated``, one whose
    hash there differs ``swapped``, and a kept ledger with no row at all is reported too.
    Problems are named as ``Ledger.verify`` names them (``edited``, ``deleted``,
    ``inserted``, ``truncated``, ``swapped``) with the first bad seq.
    """
    import statemeter as sm

    F = _pyspark()  # noqa: N806
    from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

    missing = [c for c in ("ledger_id", "seq", "record", "hash") if c not in df.columns]
    if missing:
        raise invalid(
            "df",
            f"has no column {', '.join(missing)}: export with include_records=True to verify "
            "a dataset without its ledgers",
        )
    kept: dict[str, str] = {}
    if heads is not None:
        items = heads.items() if isinstance(heads, Mapping) else ((None, h) for h in heads)
        for key, h in items:
            head = h if isinstance(h, sm.Head) else sm.Head.parse(str(h))
            lid = key if key is not None else head.ledger_id
            if lid is None:
                raise invalid("heads", f"{h!r} does not say which ledger it is a head of")
            kept[str(lid)] = str(head)
    schema = StructType(
        [
            StructField("ledger_id", StringType(), False),
            StructField("ok", BooleanType(), False),
            StructField("events", LongType(), False),
            StructField("first_bad_seq", LongType(), True),
            StructField("problem", StringType(), True),
        ]
    )

    def one(table: Any) -> Any:
        pa = require("pyarrow")

        from statemeter import _core as core

        lid = table.column("ledger_id")[0].as_py()
        v = core._dataset_verify(table.select(["seq", "record", "hash"]), kept.get(lid))
        return pa.Table.from_pylist(
            [
                {
                    "ledger_id": lid,
                    "ok": v.ok,
                    "events": v.events,
                    "first_bad_seq": v.first_bad_seq,
                    "problem": v.problem,
                }
            ],
            schema=pa.schema(
                [
                    pa.field("ledger_id", pa.string(), False),
                    pa.field("ok", pa.bool_(), False),
                    pa.field("events", pa.int64(), False),
                    pa.field("first_bad_seq", pa.int64()),
                    pa.field("problem", pa.string()),
                ]
            ),
        )

    rows = (
        df.select(F.col("ledger_id").cast("string").alias("ledger_id"), "seq", "record", "hash")
        .groupBy("ledger_id")
        .applyInArrow(one, schema)
    )
    if kept:
        spark = df.sparkSession
        absent = [
            (lid, False, 0, 1, f"truncated: no rows of this ledger; the kept head is at {h}")
            for lid, h in kept.items()
        ]
        none = spark.createDataFrame(absent, schema)
        rows = rows.unionByName(none.join(rows.select("ledger_id"), "ledger_id", "left_anti"))
    return rows.orderBy("ledger_id")
