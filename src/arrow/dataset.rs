//! Computations over parts of an exported dataset (docs/scale.md), as a distributed engine
//! hands them to a task: a contract report of the events of whole sessions, and the chain of
//! one ledger re-derived from its `record` and `hash` columns.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::accounting::contract::Contract;
use crate::accounting::groupby::Dim;
use crate::accounting::pricing::PriceTable;
use crate::accounting::report::report_table;
use crate::accounting::result::ResultTable;
use crate::accounting::window::Window;
use crate::error::{Error, Result};
use crate::ledger::{verify_rows, Head, Verification};

/// `ledger.report(...)` of the events in `batches` (every event of each session among them
/// must be there: session tags are derived over the batches, as the ledger derives them).
pub fn report(
    batches: &[RecordBatch],
    contract: &Contract,
    prices: Option<&PriceTable>,
    dims: &[Dim],
    window: Window,
) -> Result<ResultTable> {
    let cols = super::import::event_columns(batches)?;
    report_table(&cols, contract, prices, dims, window)
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::validation("batch", what.to_string())
}

/// Re-derives the chain of one ledger from the `seq`, `record` and `hash` columns of
/// `batches` (any order; the rows are sorted by seq), checked against `head` when given.
pub fn verify(batches: &[RecordBatch], head: Option<&Head>) -> Result<Verification> {
    let mut rows: Vec<(i64, &[u8], &[u8])> = Vec::new();
    for b in batches {
        let col = |name: &str| {
            b.column_by_name(name).ok_or_else(|| {
                bad(format!(
                    "column {name:?} is missing (export with include_records=True)"
                ))
            })
        };
        let (seq, record, hash) = (col("seq")?, col("record")?, col("hash")?);
        let seqs = seq
            .as_primitive_opt::<arrow_array::types::Int64Type>()
            .ok_or_else(|| bad("column \"seq\" must be int64"))?;
        let records: Vec<&[u8]> = match record.data_type() {
            DataType::Utf8 => record.as_string::<i32>().iter().map(bytes).collect(),
            DataType::LargeUtf8 => record.as_string::<i64>().iter().map(bytes).collect(),
            DataType::Utf8View => record.as_string_view().iter().map(bytes).collect(),
            DataType::Binary => record
                .as_binary::<i32>()
                .iter()
                .map(|v| v.unwrap_or(b""))
                .collect(),
            other => {
                return Err(bad(format!(
                    "column \"record\": expected text, got {other}"
                )))
            }
        };
        let hashes: Vec<&[u8]> = match hash.data_type() {
            DataType::FixedSizeBinary(_) => hash
                .as_fixed_size_binary()
                .iter()
                .map(|v| v.unwrap_or(b""))
                .collect(),
            DataType::Binary => hash
                .as_binary::<i32>()
                .iter()
                .map(|v| v.unwrap_or(b""))
                .collect(),
            DataType::LargeBinary => hash
                .as_binary::<i64>()
                .iter()
                .map(|v| v.unwrap_or(b""))
                .collect(),
            DataType::BinaryView => hash
                .as_binary_view()
                .iter()
                .map(|v| v.unwrap_or(b""))
                .collect(),
            other => return Err(bad(format!("column \"hash\": expected bytes, got {other}"))),
        };
        if seqs.null_count() > 0 {
            return Err(bad("column \"seq\" has a null"));
        }
        rows.extend(
            seqs.values()
                .iter()
                .zip(records)
                .zip(hashes)
                .map(|((&s, r), h)| (s, r, h)),
        );
    }
    rows.sort_by_key(|r| r.0);
    Ok(verify_rows(rows, head))
}

fn bytes(v: Option<&str>) -> &[u8] {
    v.map_or(b"", str::as_bytes)
}
