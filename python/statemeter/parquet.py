"""Parquet datasets for scale: ``ledger.export_parquet(directory, partition_by=("date",))``
appends a ledger's events to a Hive-partitioned Parquet dataset that DuckDB, polars,
pyarrow.dataset, Spark or Trino read, and :func:`contract_sql` writes the DuckDB SQL of a
contract report over it. See docs/scale.md.

How an export works:

- The events come from Rust as Arrow record batches (the ``EventTable`` schema, see
  docs/arrow.md), read in chunks of ``batch_events`` after the last exported ``seq``; pyarrow
  (``pip install statemeter[analysis]``) writes them. No per-row Python work.
- Each export writes **one file per partition**, named ``part-<first seq>-<last seq>.parquet``
  after the export's range, under ``<column>=<value>/`` directories (``date=2026-01-31/``).
  Files of earlier exports are never rewritten: a new export adds new files.
- ``_statemeter_export.json`` in the dataset directory (ignored by readers: it starts with
  ``_``) records the partitioning, the last exported ``seq`` and its chain hash, and every
  export's files. The next export resumes after that ``seq``, after checking that the ledger
  still has that hash there (else ``IntegrityError``: a different or rewritten ledger).
- Files are written under hidden temporary names (``.part-…``) and renamed when the export
  completes, then the manifest is replaced atomically: an interrupted export leaves no
  visible files and is simply redone by the next one. A lock file stops concurrent exports.

Every column of the events table is written, ``state_kinds`` (a list of dictionary strings)
and each evidence item's ``state`` included. Files written before those existed lack them;
:func:`dataset_source` reads such a mixed dataset by column name (nulls where a file has no
such column).

Partitions: ``date`` (``YYYY-MM-DD``) and ``month`` (``YYYY-MM``) are UTC buckets of ``ts``,
named ``date=2026-01-31/``, and not repeated inside the files (readers add them from the
paths, the Hive convention). Any dictionary-encoded event column (``tenant``, ``agent``,
``venue``, ``kind``, ``tag``, ...) can be a partition column too; its exact value stays
*inside* the files, and the directory is ``<column>_key=<key>/`` (``tenant_key=acme/``), where
the key is the value percent-encoded (a long one cut and suffixed with ``~`` and 16 hex digits
of its SHA-256, so any value fits a file name; a missing value is
``__HIVE_DEFAULT_PARTITION__``). Readers take a Hive path value over a file's column and infer
its type (``"00123"`` would read back as the number 123, a value spelled
``__HIVE_DEFAULT_PARTITION__`` as null): naming the directory after the column would lose such
values, so the column read back is always the exact one from the files, in every reader.

``session_tag`` in the files is the tag as of the export that wrote the row: a later event
can make an earlier session stateful, and old files are not rewritten. ``session_stateful``
(the event's own verdict on its session) is exact forever; :func:`contract_sql` derives the
session tag from it over the whole dataset, as the ledger does.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statemeter.errors import invalid
from statemeter.frames import require

__all__ = ["MANIFEST", "ExportResult", "contract_sql", "dataset_source", "read_manifest"]

#: The manifest's file name inside a dataset directory.
MANIFEST = "_statemeter_export.json"
_LOCK = "_statemeter_export.lock"
_FORMAT = "statemeter-parquet-dataset"
_VERSION = 1
#: How string partitions are laid out: 2 = ``<column>_key=<key>/`` with the exact value kept in
#: the files. Manifests without it come from exports that named such directories after the
#: column itself (and left the value out of the files); those datasets cannot be continued.
_LAYOUT = 2
_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_TIME_PARTITIONS = ("date", "month")
#: Longest key (bytes) kept whole in a directory name; longer ones are cut and hash-suffixed.
_MAX_KEY = 96


@dataclass(frozen=True)
class ExportResult:
    """What one ``export_parquet`` call wrote."""

    directory: str
    #: Events written by this export (0 when the dataset was up to date).
    events: int
    #: The seq range of this export, or ``None`` when nothing was written.
    from_seq: int | None
    to_seq: int | None
    #: Paths of the new files, relative to ``directory``.
    files: list[str] = field(default_factory=list)
    #: Events in the dataset after this export.
    total_events: int = 0
    #: The exported ledger's ``ledger_id`` (docs/ledger-format.md).
    ledger_id: str | None = None

    def __repr__(self) -> str:
        span = f"seq {self.from_seq}..{self.to_seq}" if self.events else "nothing new"
        return (
            f"ExportResult({self.directory!r}, ledger {self.ledger_id}: "
            f"{self.events:,} events, {span}, "
            f"{len(self.files)} files; {self.total_events:,} events in the dataset)"
        )


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The dataset's manifest, or ``None`` when ``directory`` holds no export yet."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != _FORMAT or manifest.get("version") != _VERSION:
        import statemeter as sm

        raise sm.LedgerError(f"{path} is not a statemeter Parquet dataset manifest (version 1)")
    return manifest


def _partition_names(partition_by: str | Sequence[str] | None, schema: Any) -> list[str]:
    if partition_by is None:
        names: list[str] = []
    elif isinstance(partition_by, str):
        names = [n.strip() for n in partition_by.split(",") if n.strip()]
    else:
        names = list(partition_by)
    pa = require("pyarrow", what="export_parquet()")
    allowed = list(_TIME_PARTITIONS) + [f.name for f in schema if pa.types.is_dictionary(f.type)]
    for n in names:
        if not isinstance(n, str) or n not in allowed:
            raise invalid(
                "partition_by", f"cannot partition by {n!r} (one of {', '.join(allowed)})"
            )
    if len(set(names)) != len(names):
        raise invalid("partition_by", "a column is listed twice")
    return names


def partition_key(value: str) -> str:
    """The directory key of a string partition value: the value percent-encoded (every byte
    but ``A-Z a-z 0-9 . -`` and ``_``; a leading ``_`` or ``.`` too, so no key is hidden or
    reads as Hive's null); past :data:`_MAX_KEY` bytes, cut at a character boundary and
    suffixed with ``~`` and the first 16 hex digits of the value's SHA-256."""
    import hashlib

    def encode(text: str) -> str:
        key = urllib.parse.quote(text, safe="").replace("~", "%7E")
        return f"%{ord(key[0]):02X}{key[1:]}" if key[:1] in ("_", ".") else key

    key = encode(value)
    if not key:
        return "%00"  # the empty string (no byte of a real value encodes to this)
    if len(key) <= _MAX_KEY:
        return key
    # Cut the value (never inside a character's escapes), then name it by its hash.
    cut, n = "", 0
    for ch in value:
        piece = encode(ch)
        if n + len(piece) > _MAX_KEY - 17:
            break
        cut += ch
        n += len(piece)
    return f"{encode(cut)}~{hashlib.sha256(value.encode()).hexdigest()[:16]}"


def _segment(name: str, values: Any) -> Any:
    """The path segment of every row, as a pyarrow string array: ``date=2026-01-31`` for a time
    partition, ``<name>_key=<partition_key(value)>`` for a string one."""
    pa = require("pyarrow")
    pc = require("pyarrow.compute")
    if name in _TIME_PARTITIONS:
        # ts is timestamp[ns, UTC]: the cast takes the UTC calendar day.
        text = pc.cast(pc.cast(values, pa.date32()), pa.string())
        if name == "month":
            text = pc.utf8_slice_codeunits(text, 0, 7)
        prefix = f"{name}="
    else:
        text = pc.cast(values, pa.string())
        uniques = pc.unique(text).drop_null().to_pylist()
        if any(partition_key(u) != u for u in uniques):
            mapping = {u: partition_key(u) for u in uniques}
            text = pa.array([None if v is None else mapping[v] for v in text.to_pylist()])
        prefix = f"{name}_key="
    text = pc.fill_null(text, _DEFAULT_PARTITION)
    return pc.binary_join_element_wise(prefix, text, "")


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    import statemeter as sm

    path = directory / _LOCK
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX: best effort
            pass
        except OSError as e:
            raise sm.LedgerError(f"another export into {directory} is running") from e
        yield
    finally:
        os.close(fd)


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, directory / MANIFEST)


def export_parquet(
    ledger: Any,
    directory: str | os.PathLike[str],
    partition_by: str | Sequence[str] | None = ("date",),
    *,
    batch_events: int = 250_000,
    compression: str = "zstd",
) -> ExportResult:
    """Appends the ledger's events not yet in the dataset at ``directory`` (created if
    needed) as Parquet files, one per partition. Returns an :class:`ExportResult`.

    ``partition_by``: ``("date",)`` by default; ``()`` or ``None`` for an unpartitioned
    dataset; any of ``date``, ``month`` and the dictionary-encoded event columns. It must be
    the same for every export into one directory. ``batch_events`` bounds memory: events are
    read and written that many at a time. ``compression``: ``"none"`` or a codec pyarrow
    supports (``zstd``, ``snappy``, ``gzip``, ``brotli``, ``lz4``).

    Errors: ``ValidationError`` for a bad argument (``directory`` a file, an unknown
    ``compression``); ``LedgerError`` when the files cannot be written (the cause chained).
    A failed export leaves no file behind, temporary ones included.
    """
    import statemeter as sm

    pa = require("pyarrow", what="export_parquet()")
    if isinstance(batch_events, bool) or not isinstance(batch_events, int) or batch_events < 1:
        raise invalid("batch_events", "must be a positive int")
    if not isinstance(compression, str) or not (
        compression.lower() == "none" or _codec_available(pa, compression)
    ):
        raise invalid(
            "compression",
            f"{compression!r} is not a Parquet codec here (none, zstd, snappy, gzip, brotli, lz4)",
        )
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise invalid("directory", f"{directory} is a file, not a dataset directory")
    try:
        return _export(ledger, directory, partition_by, batch_events, compression)
    except OSError as e:
        raise sm.LedgerError(
            f"cannot write the Parquet dataset at {directory}: {e.strerror or e}"
        ) from e
    except pa.ArrowException as e:
        raise sm.LedgerError(f"cannot write the Parquet dataset at {directory}: {e}") from e


def _codec_available(pa: Any, name: str) -> bool:
    try:
        return bool(pa.Codec.is_available(name))
    except (ValueError, TypeError):
        return False


def _export(
    ledger: Any,
    directory: Path,
    partition_by: str | Sequence[str] | None,
    batch_events: int,
    compression: str,
) -> ExportResult:
    pa = require("pyarrow", what="export_parquet()")
    pq = require("pyarrow.parquet", what="export_parquet()")
    ledger_id = ledger.ledger_id
    if ledger_id is None:
        import statemeter as sm

        raise sm.LedgerError(
            f"ledger {ledger.path} has no ledger_id (it was made before ledgers had one and is "
            "open read-only): open it once with write access, or copy it with VACUUM INTO and "
            "export the copy (docs/ledger-format.md)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        manifest = read_manifest(directory)
        first_chunk, after, last_hash = ledger._export_chunk(
            manifest["last_seq"] if manifest else 0,
            batch_events,
            manifest["last_hash"] if manifest else None,
        )
        names = _partition_names(partition_by, pa.table(first_chunk[:0]).schema)
        if manifest is not None and manifest["partition_by"] != names:
            raise invalid(
                "partition_by",
                f"the dataset is partitioned by {manifest['partition_by']}, not {names}",
            )
        if manifest is not None and manifest.get("layout", 1) != _LAYOUT:
            if any(n not in _TIME_PARTITIONS for n in names):
                import statemeter as sm

                raise sm.LedgerError(
                    f"{directory} names its string partitions after the column "
                    "(an earlier layout, where values such as '00123' do not read back "
                    "exactly): export into a new directory"
                )
            manifest["layout"] = _LAYOUT  # date/month only: the layouts are the same
        start = manifest["last_seq"] if manifest else 0
        total_before = manifest["events"] if manifest else 0
        if not len(first_chunk):
            if manifest is None:
                manifest = _new_manifest(names)
                _write_manifest(directory, manifest)
            return ExportResult(str(directory), 0, None, None, [], total_before, ledger_id)
        writers: dict[str, Any] = {}
        temps: dict[str, Path] = {}
        events = 0
        chunk = first_chunk
        try:
            while len(chunk):
                table = pa.table(chunk)
                events += table.num_rows
                _write_partitions(table, names, directory, writers, temps, compression, pq)
                if len(chunk) < batch_events:
                    break
                chunk, last, h = ledger._export_chunk(after, batch_events, last_hash)
                if len(chunk):
                    after, last_hash = last, h
        except BaseException:
            for w in writers.values():
                with contextlib.suppress(Exception):
                    w.close()
            for tmp in temps.values():
                with contextlib.suppress(OSError):
                    tmp.unlink()
            raise
        for w in writers.values():
            w.close()
        from_seq, to_seq = start + 1, after
        files = []
        for segment, tmp in sorted(temps.items()):
            final = directory / segment / f"part-{from_seq:012d}-{to_seq:012d}.parquet"
            os.replace(tmp, final)
            files.append(str(final.relative_to(directory)))
        manifest = manifest or _new_manifest(names)
        manifest["last_seq"] = to_seq
        manifest["last_hash"] = last_hash
        manifest["events"] = total_before + events
        manifest["exports"].append(
            {
                "from_seq": from_seq,
                "to_seq": to_seq,
                "events": events,
                "files": files,
                "at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            }
        )
        _write_manifest(directory, manifest)
        return ExportResult(
            str(directory), events, from_seq, to_seq, files, manifest["events"], ledger_id
        )


def _new_manifest(names: list[str]) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "version": _VERSION,
        "layout": _LAYOUT,
        "partition_by": names,
        "last_seq": 0,
        "last_hash": None,
        "events": 0,
        "exports": [],
    }


def _write_partitions(
    table: Any,
    names: list[str],
    directory: Path,
    writers: dict[str, Any],
    temps: dict[str, Path],
    compression: str,
    pq: Any,
) -> None:
    pc = require("pyarrow.compute")
    # String partition columns stay in the files (exact values); date and month are not
    # columns of the events table.
    data = table
    if not names:
        groups = [("", data)]
    else:
        segments = [_segment(n, table.column("ts" if n in _TIME_PARTITIONS else n)) for n in names]
        path = segments[0] if len(segments) == 1 else pc.binary_join_element_wise(*segments, "/")
        groups = [(p, data.filter(pc.equal(path, p))) for p in pc.unique(path).to_pylist()]
    for segment, part in groups:
        writer = writers.get(segment)
        if writer is None:
            folder = directory / segment
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".part-{os.getpid()}.parquet.tmp"
            temps[segment] = tmp
            writer = pq.ParquetWriter(tmp, part.schema, compression=compression)
            writers[segment] = writer
        writer.write_table(part)


def dataset_source(directory: str | os.PathLike[str]) -> str:
    """The DuckDB table expression reading a dataset: ``read_parquet('<dir>/**/*.parquet',
    hive_partitioning = true, union_by_name = true)`` (a dataset without partitions reads
    ``<dir>/*.parquet``). Columns are matched by name across files, so a dataset whose older
    files predate a column (``state_kinds``, an evidence item's ``state``) reads whole, with
    nulls there."""
    manifest = read_manifest(directory)
    deep = manifest is None or manifest["partition_by"]
    pattern = f"{Path(directory).as_posix()}/{'**/' if deep else ''}*.parquet"
    quoted = pattern.replace("'", "''")
    return f"read_parquet('{quoted}', hive_partitioning = true, union_by_name = true)"


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


_INSTANT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))?)?"
)
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()


def _instant_ns(text: str | None) -> int | None:
    """A date or RFC 3339 time (as the contract gives them) to int ns since the epoch, exactly:
    every digit of the fraction counts, as when the report judges the calls."""
    if text is None:
        return None
    m = _INSTANT.fullmatch(text.strip())
    if m is None:
        raise invalid("contract", f"{text!r} is not a date or an RFC 3339 time")
    y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
    days = _dt.date(int(y), int(mo), int(d)).toordinal() - _EPOCH_ORDINAL
    secs = days * 86_400 + int(h or 0) * 3_600 + int(mi or 0) * 60 + int(s or 0)
    if sign:
        offset = int(oh) * 3_600 + int(om) * 60
        secs -= offset if sign == "+" else -offset
    nanos = int((frac or "").ljust(9, "0") or 0)
    return secs * 1_000_000_000 + nanos


def contract_sql(
    contract: Any,
    source: str,
    *,
    since: int | None = None,
    until: int | None = None,
    by: Sequence[str] = (),
) -> str:
    """DuckDB SQL computing ``ledger.report(contract, by=by, since=since, until=until)``'s
    event and token columns over ``source`` (a table name, or :func:`dataset_source` of an
    exported dataset): ``interpretation, clause, *by, covered_events, covered_input_tokens,
    covered_output_tokens, violating_events, violating_input_tokens,
    violating_output_tokens``, in the report's order.

    ``since``/``until`` are int ns (``[since, until)``). ``by`` takes event columns of the
    dataset (``venue``, ``tenant``, ``agent``, ...) and ``day``/``month`` (UTC); with ``by``,
    groups nothing is covered in are left out, as in the report. The session tag is derived
    from ``session_stateful`` over the whole source (a session is stateful when any of its
    events is), so the result is exact even for sessions that span exports. Costs are not
    computed in SQL: use ``ledger.costs``/``ledger.report(prices=...)`` for money. An
    interpretation that reads the calls under another ruleset (``ruleset = ...``) is refused
    (``ValidationError``): the dataset holds the recorded classification only.
    """
    import statemeter as sm

    if isinstance(contract, str | os.PathLike):
        contract = sm.Contract.load(contract)
    group_exprs = []
    for b in by:
        if b == "day":
            group_exprs.append(("day", "strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d')"))
        elif b == "month":
            group_exprs.append(("month", "strftime(ts AT TIME ZONE 'UTC', '%Y-%m')"))
        elif b.isidentifier():
            group_exprs.append((b, f'CAST("{b}" AS VARCHAR)'))
        else:
            raise invalid("by", f"cannot group by {b!r}")
    where = ["kind = 'model_call'"]
    if since is not None:
        where.append(f"ts_ns >= {int(since)}")
    if until is not None:
        where.append(f"ts_ns < {int(until)}")
    groups = "".join(f', {expr} AS "{name}"' for name, expr in group_exprs)
    slots, branches = [], []
    for slot, (interp, clause_id) in enumerate(contract.slots):
        slots.append(f"({slot}, {_sql_list([interp])}, {_sql_list([clause_id])})")
        covers, violates = [], []
        for c in contract.clauses:
            if c["id"] != clause_id or interp not in c["interpretations"]:
                continue
            spec = c["interpretations"][interp]
            if spec.get("ruleset") is not None:
                raise invalid(
                    "contract",
                    f"interpretation {interp!r} reads the calls under the ruleset "
                    f"{spec['ruleset']!r}: an exported dataset holds the recorded "
                    "classification only; use ledger.report(...) for that reading",
                )
            judged = "tag" if spec["level"] == "call" else "session_tag_now"
            cond = [
                f"provider IN ({_sql_list(c['providers'])})",
                f"{judged} IN ({_sql_list(spec['tags'])})",
            ]
            lo, hi = _instant_ns(c["effective_from"]), _instant_ns(c["effective_until"])
            if lo is not None:
                cond.append(f"ts_ns >= {lo}")
            if hi is not None:
                cond.append(f"ts_ns < {hi}")
            cover = "(" + " AND ".join(cond) + ")"
            covers.append(cover)
            violates.append(
                f"({cover} AND (venue IS NULL OR venue NOT IN ({_sql_list(c['required_venues'])})))"
            )
        cov = " OR ".join(covers) or "false"
        vio = " OR ".join(violates) or "false"
        branches.append(
            f"    SELECT {slot} AS slot{groups},\n"
            f"      {cov} AS covered,\n"
            f"      {vio} AS violating,\n"
            f"      input_tokens, output_tokens FROM calls"
        )
    names = "".join(f', "{n}"' for n, _ in group_exprs)

    def agg(side: str) -> str:
        return (
            f"  count(*) FILTER (WHERE {side}) AS {side}_events,\n"
            f"  CAST(coalesce(sum(input_tokens) FILTER (WHERE {side}), 0) AS BIGINT)"
            f" AS {side}_input_tokens,\n"
            f"  CAST(coalesce(sum(output_tokens) FILTER (WHERE {side}), 0) AS BIGINT)"
            f" AS {side}_output_tokens"
        )

    having = "HAVING count(*) FILTER (WHERE covered) > 0\n" if group_exprs else ""
    order = "".join(f', "{n}" NULLS FIRST' for n, _ in group_exprs)
    return (
        "WITH events AS (\n"
        "  SELECT *, epoch_ns(ts) AS ts_ns,\n"
        "    CASE WHEN bool_or(session_stateful) OVER (\n"
        "      PARTITION BY coalesce('s:' || session_id, 'e:' || id))\n"
        "    THEN 'stateful' ELSE 'stateless' END AS session_tag_now\n"
        f"  FROM {source}\n"
        "),\n"
        f"calls AS (SELECT * FROM events WHERE {' AND '.join(where)}),\n"
        f"slots(slot, interpretation, clause) AS (VALUES {', '.join(slots)}),\n"
        "judged AS (\n" + "\n    UNION ALL\n".join(branches) + "\n)\n"
        f"SELECT interpretation, clause{names},\n{agg('covered')},\n{agg('violating')}\n"
        "FROM slots LEFT JOIN judged USING (slot)\n"
        f"GROUP BY slot, interpretation, clause{names}\n{having}"
        f"ORDER BY slot{order}"
    )
