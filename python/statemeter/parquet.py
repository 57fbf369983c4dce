"""Parquet datasets for scale: ``ledger.export_parquet(directory, partition_by=("date",))``
appends a ledger's events to a Hive-partitioned Parquet dataset that DuckDB, polars,
pyarrow.dataset, Spark or Trino read, and :func:`contract_sql` writes the DuckDB SQL of a
contract report over it. See docs/scale.md.

How an export works:

- The events come from Rust as Arrow record batches (the ``EventTable`` schema, see
  docs/arrow.md), read in chunks of ``batch_events`` after the last exported ``seq``; pyarrow
  (``pip install statemeter[analysis]``) writes them. No per-row Python work: a chunk is split
  by partition with one stable sort, and each partition's dictionary columns keep only the
  values its rows use.
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
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statemeter.errors import invalid
from statemeter.frames import require

__all__ = ["MANIFEST", "ExportResult", "contract_sql", "dataset_source", "read_manifest"]

#: The manifest of a dataset written by an earlier version (one ledger per dataset, no
#: ``ledger_id`` column): such a dataset cannot be continued.
MANIFEST = "_statemeter_export.json"
#: The directory (inside the dataset; readers skip names starting with ``_``) holding the
#: dataset's settings (``dataset.json``) and one manifest per ledger (``ledgers/<id>.json``).
STATE_DIR = "_statemeter"
_FORMAT = "statemeter-parquet-dataset"
_VERSION = 2
#: How string partitions are laid out: 2 = ``<column>_key=<key>/`` with the exact value kept in
#: the files.
_LAYOUT = 2
_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_TIME_PARTITIONS = ("date", "month")
#: A dictionary column of a partition's rows is re-encoded (only the values its rows use) when
#: its dictionary is longer than this; shorter ones (kind, tag, venue, ...) are written as they
#: are.
_KEEP_DICTIONARY = 64
#: Longest key (bytes) kept whole in a directory name; longer ones are cut and hash-suffixed.
_MAX_KEY = 96


@dataclass(frozen=True)
class ExportResult:
    """What one ``export_parquet`` call wrote."""

    #: The destination as given (a path or a URI).
    directory: str
    #: Events written by this export (0 when the dataset was up to date).
    events: int
    #: The seq range of this export, or ``None`` when nothing was written.
    from_seq: int | None
    to_seq: int | None
    #: Paths of the new files, relative to the destination.
    files: list[str] = field(default_factory=list)
    #: Events of this ledger in the dataset after this export.
    total_events: int = 0
    #: The exported ledger's ``ledger_id`` (docs/ledger-format.md).
    ledger_id: str | None = None

    def __repr__(self) -> str:
        span = f"seq {self.from_seq}..{self.to_seq}" if self.events else "nothing new"
        return (
            f"ExportResult({self.directory!r}, ledger {self.ledger_id}: "
            f"{self.events:,} events, {span}, "
            f"{len(self.files)} files; {self.total_events:,} events of it in the dataset)"
        )


@dataclass(frozen=True)
class _Dest:
    """Where a dataset lives: a pyarrow file system and the dataset's path in it."""

    fs: Any
    path: str
    label: str
    local: bool

    def join(self, *parts: str) -> str:
        return "/".join([self.path.rstrip("/"), *parts]) if self.path else "/".join(parts)


def _dest(dest: Any, filesystem: Any) -> _Dest:
    """Resolves ``dest`` (a local path, or a URI such as ``s3://bucket/prefix``, ``gs://``,
    ``file://``) and the optional ``filesystem`` (a ``pyarrow.fs.FileSystem``; then ``dest`` is
    a path in it, a URI's scheme ignored)."""
    pafs = require("pyarrow.fs", what="export_parquet()")
    if isinstance(dest, os.PathLike):
        dest = os.fspath(dest)
    if not isinstance(dest, str) or not dest:
        raise invalid("dest", "must be a path or a URI (s3://bucket/prefix, gs://, file://)")
    label = dest
    uri = "://" in dest
    if filesystem is not None:
        if not isinstance(filesystem, pafs.FileSystem):
            raise invalid("filesystem", "must be a pyarrow.fs.FileSystem")
        path = dest.split("://", 1)[1] if uri else dest
        fs = filesystem
    elif uri:
        try:
            fs, path = pafs.FileSystem.from_uri(dest)
        except (ValueError, OSError) as e:
            raise invalid("dest", f"cannot open {dest!r}: {e}") from e
    else:
        fs, path = pafs.LocalFileSystem(), Path(dest).absolute().as_posix()
    local = isinstance(fs, pafs.LocalFileSystem)
    return _Dest(fs, path.rstrip("/") if path != "/" else path, label, local)


def _read_json(d: _Dest, path: str) -> dict[str, Any] | None:
    pafs = require("pyarrow.fs")
    if d.fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with d.fs.open_input_stream(path) as f:
        data: dict[str, Any] = json.loads(f.read().decode())
    return data


def _write_json(d: _Dest, path: str, data: dict[str, Any]) -> None:
    """Writes ``data`` at ``path``: through a temporary file of this writer's own (exports of
    other ledgers write beside it at the same time) renamed into place on a local file system;
    in one ``PUT`` on an object store (atomic there)."""
    target = _put_json(d, path, data)
    if target != path:
        d.fs.move(target, path)


def _create_json(d: _Dest, path: str, data: dict[str, Any]) -> bool:
    """As `_write_json`, but a local file another writer created first is left as it is and
    False returned (an object store has no such test: its last ``PUT`` stays)."""
    target = _put_json(d, path, data)
    if target == path:
        return True
    try:
        os.link(target, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(target)
    return True


def _put_json(d: _Dest, path: str, data: dict[str, Any]) -> str:
    """Writes ``data`` where `_write_json` and `_create_json` put it first; returns that path."""
    folder, name = path.rsplit("/", 1)
    target = f"{folder}/.{name}.{os.getpid()}-{uuid.uuid4().hex}.tmp" if d.local else path
    with d.fs.open_output_stream(target) as f:
        f.write((json.dumps(data, indent=1) + "\n").encode())
    return target


def _check(data: dict[str, Any] | None, what: str) -> dict[str, Any] | None:
    if data is not None and (data.get("format") != _FORMAT or data.get("version") != _VERSION):
        import statemeter as sm

        raise sm.LedgerError(f"{what} is not a statemeter Parquet dataset manifest (version 2)")
    return data


def read_manifest(
    dest: str | os.PathLike[str], ledger_id: str | None = None, *, filesystem: Any = None
) -> dict[str, Any] | None:
    """The dataset's settings with every ledger's manifest under ``"ledgers"`` (by id), or
    with ``ledger_id`` that ledger's manifest (``last_seq``, ``last_hash``, ``events``,
    ``exports``); ``None`` when nothing was exported there yet."""
    d = _dest(dest, filesystem)
    if ledger_id is not None:
        path = d.join(STATE_DIR, "ledgers", f"{ledger_id}.json")
        return _check(_read_json(d, path), f"{d.label} (ledger {ledger_id})")
    settings = _check(_read_json(d, d.join(STATE_DIR, "dataset.json")), d.label)
    if settings is None:
        return None
    pafs = require("pyarrow.fs")
    ledgers: dict[str, Any] = {}
    infos = d.fs.get_file_info(
        pafs.FileSelector(d.join(STATE_DIR, "ledgers"), allow_not_found=True)
    )
    for info in sorted(infos, key=lambda i: i.path):
        if info.base_name.endswith(".json") and not info.base_name.startswith("."):
            m = _check(_read_json(d, info.path), info.path)
            if m is not None:
                ledgers[m["ledger_id"]] = m
    return {**settings, "ledgers": ledgers}


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
def _locked(d: _Dest, ledger_id: str) -> Iterator[None]:
    """Holds the export lock of one ledger in one dataset: a lock file beside the ledger's
    manifest on a local file system; on an object store (which has no locks) a lock file in
    this machine's temporary directory, named after the dataset and the ledger (a ledger is
    written, and exported, on one host)."""
    import statemeter as sm

    if d.local:
        d.fs.create_dir(d.join(STATE_DIR, "ledgers"), recursive=True)
        path = d.join(STATE_DIR, "ledgers", f"{ledger_id}.lock")
    else:
        import hashlib
        import tempfile

        key = hashlib.sha256(f"{d.label}\0{ledger_id}".encode()).hexdigest()[:24]
        path = os.path.join(tempfile.gettempdir(), f"statemeter-export-{key}.lock")
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX: best effort
            pass
        except OSError as e:
            raise sm.LedgerError(
                f"another export of ledger {ledger_id} into {d.label} is running"
            ) from e
        yield
    finally:
        os.close(fd)


def export_parquet(
    ledger: Any,
    dest: str | os.PathLike[str],
    partition_by: str | Sequence[str] | None = ("date",),
    *,
    filesystem: Any = None,
    include_records: bool = False,
    batch_events: int = 250_000,
    compression: str = "zstd",
) -> ExportResult:
    """Appends the ledger's events not yet in the dataset at ``dest`` (created if needed) as
    Parquet files, one per partition; other ledgers may export into the same dataset, before,
    after or at the same time. Returns an :class:`ExportResult`.

    ``dest``: a local path or a URI (``s3://bucket/prefix``, ``gs://bucket/prefix``,
    ``file:///path``); ``filesystem``: a ``pyarrow.fs.FileSystem`` to write through (an S3
    endpoint, credentials), ``dest`` then being a path in it. ``partition_by``: ``("date",)`` by
    default; ``()`` or ``None`` for an unpartitioned dataset; any of ``date``, ``month`` and
    the dictionary-encoded event columns (``ledger_id`` included). ``include_records``: each
    row also carries ``record`` (the hashed record text) and ``hash`` (its chain hash), so the
    dataset verifies without the ledgers (``statemeter.spark.verify``). ``partition_by`` and
    ``include_records`` are settings of the dataset: the same for every export into it.
    ``batch_events`` bounds memory: events are read and written that many at a time.
    ``compression``: ``"none"`` or a codec pyarrow supports (``zstd``, ``snappy``, ``gzip``,
    ``brotli``, ``lz4``).

    Errors: ``ValidationError`` for a bad argument (``dest`` a file, an unknown
    ``compression``, settings that differ from the dataset's); ``IntegrityError`` when the
    ledger no longer holds the chain the dataset recorded for its id (rewritten, or another
    file with a copied id); ``LedgerError`` when the files cannot be written (the cause
    chained). A failed export leaves no visible file behind.
    """
    import statemeter as sm

    pa = require("pyarrow", what="export_parquet()")
    if isinstance(batch_events, bool) or not isinstance(batch_events, int) or batch_events < 1:
        raise invalid("batch_events", "must be a positive int")
    if not isinstance(include_records, bool):
        raise invalid("include_records", "must be True or False")
    if not isinstance(compression, str) or not (
        compression.lower() == "none" or _codec_available(pa, compression)
    ):
        raise invalid(
            "compression",
            f"{compression!r} is not a Parquet codec here (none, zstd, snappy, gzip, brotli, lz4)",
        )
    d = _dest(dest, filesystem)
    pafs = require("pyarrow.fs")
    try:
        if d.fs.get_file_info(d.path).type == pafs.FileType.File:
            raise invalid("dest", f"{d.label} is a file, not a dataset directory")
        ledger_id = ledger.ledger_id
        if ledger_id is None:
            raise sm.LedgerError(
                f"ledger {ledger.path} has no ledger_id (it was made before ledgers had one "
                "and is open read-only): open it once with write access, or copy it with "
                "VACUUM INTO and export the copy (docs/ledger-format.md)"
            )
        return _export(
            ledger, ledger_id, d, partition_by, include_records, batch_events, compression
        )
    except OSError as e:
        raise sm.LedgerError(
            f"cannot write the Parquet dataset at {d.label}: {e.strerror or e}"
        ) from e
    except pa.ArrowException as e:
        raise sm.LedgerError(f"cannot write the Parquet dataset at {d.label}: {e}") from e


def _codec_available(pa: Any, name: str) -> bool:
    try:
        return bool(pa.Codec.is_available(name))
    except (ValueError, TypeError):
        return False


def _settings(d: _Dest, names: list[str], include_records: bool) -> dict[str, Any]:
    """The dataset's settings, written by its first export; later ones must agree."""
    import statemeter as sm

    if _read_json(d, d.join(MANIFEST)) is not None:
        raise sm.LedgerError(
            f"{d.label} was written by an earlier version of statemeter (one ledger per "
            "dataset, rows without ledger_id): export into a new destination"
        )
    path = d.join(STATE_DIR, "dataset.json")
    settings = _check(_read_json(d, path), d.label)
    if settings is None:
        settings = {
            "format": _FORMAT,
            "version": _VERSION,
            "layout": _LAYOUT,
            "partition_by": names,
            "include_records": include_records,
        }
        d.fs.create_dir(d.join(STATE_DIR, "ledgers"), recursive=True)
        if not _create_json(d, path, settings):
            # Another ledger's export created the dataset meanwhile: its settings rule.
            settings = _check(_read_json(d, path), d.label)
            if settings is None:
                raise sm.LedgerError(f"{d.label}: the dataset's settings vanished while exporting")
    if settings["partition_by"] != names:
        raise invalid(
            "partition_by", f"the dataset is partitioned by {settings['partition_by']}, not {names}"
        )
    if settings["include_records"] != include_records:
        raise invalid(
            "include_records",
            f"the dataset's rows {'carry' if settings['include_records'] else 'do not carry'} "
            "records and hashes: every export into it must say the same",
        )
    return settings


def _new_manifest(ledger_id: str) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "version": _VERSION,
        "ledger_id": ledger_id,
        "last_seq": 0,
        "last_hash": None,
        "events": 0,
        "exports": [],
    }


def _export(
    ledger: Any,
    ledger_id: str,
    d: _Dest,
    partition_by: str | Sequence[str] | None,
    include_records: bool,
    batch_events: int,
    compression: str,
) -> ExportResult:
    pa = require("pyarrow", what="export_parquet()")
    pq = require("pyarrow.parquet", what="export_parquet()")
    d.fs.create_dir(d.path, recursive=True)
    with _locked(d, ledger_id):
        mpath = d.join(STATE_DIR, "ledgers", f"{ledger_id}.json")
        manifest = _check(_read_json(d, mpath), f"{d.label} (ledger {ledger_id})")
        if manifest is not None and manifest.get("pending"):
            # An export that stopped between its files and its manifest: its files (all or
            # some) are visible but not counted; remove them, the export is redone below.
            for rel in manifest["pending"]:
                with contextlib.suppress(FileNotFoundError):
                    d.fs.delete_file(d.join(rel))
            del manifest["pending"]
            _write_json(d, mpath, manifest)
        after = manifest["last_seq"] if manifest else 0
        first_chunk, last, last_hash, extra = ledger._export_chunk(
            after, batch_events, manifest["last_hash"] if manifest else None, include_records
        )
        table = _with_ledger_columns(pa.table(first_chunk), ledger_id, extra)
        names = _partition_names(partition_by, table.schema)
        _settings(d, names, include_records)
        start = after
        total_before = manifest["events"] if manifest else 0
        manifest = manifest or _new_manifest(ledger_id)
        if not table.num_rows:
            if total_before == 0 and not manifest["exports"]:
                _write_json(d, mpath, manifest)
            return ExportResult(d.label, 0, None, None, [], total_before, ledger_id)
        writers: dict[str, Any] = {}
        temps: dict[str, str] = {}
        events = 0
        try:
            while table.num_rows:
                events += table.num_rows
                after, last_hash_now = last, last_hash
                _write_partitions(
                    table, names, d, ledger_id, start + 1, writers, temps, compression, pq
                )
                if table.num_rows < batch_events:
                    break
                chunk, last, last_hash, extra = ledger._export_chunk(
                    after, batch_events, last_hash_now, include_records
                )
                table = _with_ledger_columns(pa.table(chunk), ledger_id, extra)
                if not table.num_rows:
                    last, last_hash = after, last_hash_now
            for w in writers.values():
                w.close()
        except BaseException:
            for w in writers.values():
                with contextlib.suppress(Exception):
                    w.close()
            for tmp in temps.values():
                with contextlib.suppress(Exception):
                    d.fs.delete_file(tmp)
            raise
        from_seq, to_seq = start + 1, after
        name = f"part-{ledger_id}-{from_seq:012d}-{to_seq:012d}.parquet"
        files = sorted(f"{seg}/{name}" if seg else name for seg in temps)
        # Write-ahead: the manifest names the files before they become visible, so that an
        # export stopped halfway is undone by the next one instead of counted twice.
        manifest["pending"] = files
        _write_json(d, mpath, manifest)
        for segment, tmp in sorted(temps.items()):
            d.fs.move(tmp, d.join(segment, name) if segment else d.join(name))
        del manifest["pending"]
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
        _write_json(d, mpath, manifest)
        return ExportResult(d.label, events, from_seq, to_seq, files, manifest["events"], ledger_id)


def _with_ledger_columns(table: Any, ledger_id: str, extra: Any) -> Any:
    """``ledger_id`` (dictionary-encoded, first) and with records ``record`` and ``hash``
    (32 bytes) added to an events table."""
    pa = require("pyarrow")
    n = table.num_rows
    ids = pa.DictionaryArray.from_arrays(
        pa.array([0] * n, pa.int32()), pa.array([ledger_id], pa.string())
    )
    table = table.add_column(0, pa.field("ledger_id", ids.type, nullable=False), ids)
    if extra is not None:
        records, hashes = extra
        table = table.append_column(
            pa.field("record", pa.string(), nullable=False), pa.array(records, pa.string())
        )
        table = table.append_column(
            pa.field("hash", pa.binary(32), nullable=False), pa.array(hashes, pa.binary(32))
        )
    return table


def _write_partitions(
    table: Any,
    names: list[str],
    d: _Dest,
    ledger_id: str,
    from_seq: int,
    writers: dict[str, Any],
    temps: dict[str, str],
    compression: str,
    pq: Any,
) -> None:
    pc = require("pyarrow.compute")
    # String partition columns stay in the files (exact values); date and month are not
    # columns of the events table.
    if not names:
        groups = [("", table)]
    else:
        segments = [_segment(n, table.column("ts" if n in _TIME_PARTITIONS else n)) for n in names]
        path = segments[0] if len(segments) == 1 else pc.binary_join_element_wise(*segments, "/")
        groups = _groups(table, path)
    for segment, part in groups:
        part = _compact_dictionaries(part)
        writer = writers.get(segment)
        if writer is None:
            folder = d.join(segment) if segment else d.path
            d.fs.create_dir(folder, recursive=True)
            # Hidden (readers skip it) and named after the ledger and the export's first seq:
            # only this ledger's export, under its lock, writes it.
            tmp = f"{folder}/.part-{ledger_id}-{from_seq:012d}.parquet.tmp"
            temps[segment] = tmp
            writer = pq.ParquetWriter(tmp, part.schema, compression=compression, filesystem=d.fs)
            writers[segment] = writer
        writer.write_table(part)


def _groups(table: Any, path: Any) -> list[tuple[str, Any]]:
    """The rows of ``table`` by their partition ``path`` (one string per row), each group in
    the table's order, the groups in order of first appearance: one stable sort and a slice
    per group (not one scan of every row per group)."""
    pa = require("pyarrow")
    pc = require("pyarrow.compute")
    if isinstance(path, pa.ChunkedArray):
        path = path.combine_chunks()
    encoded = pc.dictionary_encode(path)
    keys = encoded.dictionary.to_pylist()
    if len(keys) == 1:
        return [(keys[0], table)]
    codes = encoded.indices
    ordered = table.take(pc.sort_indices(codes))  # stable: rows keep their order in a group
    counts = pc.value_counts(codes)
    sizes = dict(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
    )
    out, at = [], 0
    for code, key in enumerate(keys):
        out.append((key, ordered.slice(at, sizes[code])))
        at += sizes[code]
    return out


def _compact_dictionaries(part: Any) -> Any:
    """``part`` with each dictionary column holding only the values its rows use: a slice of
    the chunk's table shares the chunk's dictionaries (every session id of the chunk), which
    the Parquet writer would store whole in every partition's file."""
    pa = require("pyarrow")
    pc = require("pyarrow.compute")
    columns = []
    for f, col in zip(part.schema, part.columns, strict=True):
        if pa.types.is_dictionary(f.type) and any(
            len(c.dictionary) > _KEEP_DICTIONARY for c in col.chunks
        ):
            col = pc.dictionary_encode(pc.dictionary_decode(col).combine_chunks())
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=part.schema)


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
