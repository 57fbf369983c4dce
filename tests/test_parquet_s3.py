"""Exporting into object storage: s3:// against a local S3-compatible server (moto's server
mode on loopback, started here), read back through pyarrow.fs and polars."""

from __future__ import annotations

import os
import socket

import pytest
import statemeter as sm
from statemeter import parquet, simulate

pa = pytest.importorskip("pyarrow")
pafs = pytest.importorskip("pyarrow.fs")
ds = pytest.importorskip("pyarrow.dataset")
pl = pytest.importorskip("polars")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")

KEYS = {"access_key": "testing", "secret_key": "testing", "region": "us-east-1"}


@pytest.fixture(scope="module")
def endpoint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint):
    fs = pafs.S3FileSystem(
        endpoint_override=endpoint, scheme="http", allow_bucket_creation=True, **KEYS
    )
    bucket = f"fleet-{os.urandom(4).hex()}"
    fs.create_dir(bucket)
    return fs, bucket


def test_export_into_s3_and_read_back_with_pyarrow_and_polars(s3, endpoint, tmp_path):
    fs, bucket = s3
    a = simulate.fleet(days=2, agents=2, seed=1, sessions_per_agent_day=4, path=tmp_path / "a.db")
    b = simulate.fleet(days=2, agents=2, seed=2, sessions_per_agent_day=4)
    dest = f"s3://{bucket}/events"
    ra = a.ledger.export_parquet(dest, filesystem=fs, include_records=True)
    rb = b.ledger.export_parquet(dest, filesystem=fs, include_records=True)
    assert ra.directory == dest and ra.events == len(a.ledger) and rb.events == len(b.ledger)
    assert all(f.startswith("date=") and a.ledger.ledger_id in f for f in ra.files)
    # Up to date: nothing new; more events: only new files.
    assert a.ledger.export_parquet(dest, filesystem=fs, include_records=True).events == 0
    more = simulate.fleet(days=1, agents=1, seed=5, meter=a.meter, start="2026-01-09")
    again = a.ledger.export_parquet(dest, filesystem=fs, include_records=True)
    assert again.events == more.events and again.from_seq == ra.to_seq + 1
    manifest = parquet.read_manifest(dest, filesystem=fs)
    assert set(manifest["ledgers"]) == {ra.ledger_id, rb.ledger_id}
    assert manifest["ledgers"][ra.ledger_id]["last_hash"] == a.ledger.head().hash
    listed = fs.get_file_info(pafs.FileSelector(f"{bucket}/events", recursive=True))
    assert not [i.path for i in listed if i.base_name.endswith(".tmp")]

    # pyarrow.fs: the dataset as one table, both ledgers, every event once.
    table = ds.dataset(
        f"{bucket}/events", filesystem=fs, format="parquet", partitioning="hive"
    ).to_table()
    total = len(a.ledger) + len(b.ledger)
    assert table.num_rows == total
    pairs = set(
        zip(table.column("ledger_id").to_pylist(), table.column("seq").to_pylist(), strict=True)
    )
    assert len(pairs) == total
    # polars, through its own object-store client.
    options = {
        "aws_endpoint_url": endpoint,
        "aws_access_key_id": KEYS["access_key"],
        "aws_secret_access_key": KEYS["secret_key"],
        "aws_region": KEYS["region"],
        "aws_allow_http": "true",
    }
    frame = (
        pl.scan_parquet(
            f"s3://{bucket}/events/**/*.parquet", storage_options=options, hive_partitioning=True
        )
        .group_by("ledger_id")
        .agg(pl.len().alias("n"), pl.col("seq").max().alias("last"))
        .collect()
    )
    got = {r["ledger_id"]: (r["n"], r["last"]) for r in frame.to_dicts()}
    assert got == {
        a.ledger.ledger_id: (len(a.ledger), len(a.ledger)),
        b.ledger.ledger_id: (len(b.ledger), len(b.ledger)),
    }


def test_uri_errors_are_validation_errors(s3):
    fs, bucket = s3
    ledger = simulate.fleet(days=1, agents=1, seed=1, sessions_per_agent_day=1).ledger
    with pytest.raises(sm.ValidationError) as info:
        ledger.export_parquet("nope://bucket/x")
    assert info.value.field == "dest"
    with pytest.raises(sm.ValidationError) as info:
        ledger.export_parquet(f"s3://{bucket}/x", filesystem="not a filesystem")
    assert info.value.field == "filesystem"
