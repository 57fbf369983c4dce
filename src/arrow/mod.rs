//! Arrow record batches of statemeter's tables, built in Rust (no pyo3 here): the events of an
//! `EventTable`, the sessions table, and result tables (reports, costs). The Python bindings
//! hand them out through the Arrow C stream interface (`src/python/arrow.rs`), so pyarrow,
//! polars and DuckDB read them without per-row Python work.
//!
//! Column types (documented for users in docs/arrow.md):
//! - timestamps (`ts`, a session's `start`/`end`): `timestamp[ns, tz=UTC]`;
//! - closed or repetitive strings (kind, tag, agent, venue, model, ...): `dictionary<int32,
//!   utf8>` with one dictionary for the whole table, so pandas gets a `Categorical` and polars
//!   a `Categorical`;
//! - counts, `seq`, `duration_ns` and `*_cost_nanos`: `int64`;
//! - `evidence`: `list<struct<rule, tag, signal, explain>>`;
//! - `attrs` and `request`: canonical JSON text (`utf8`).
//!
//! - [`events`]: the events schema and batches;
//! - [`import`]: batches of events (an exported dataset's columns) read back into columns;
//! - [`classify`]: a batch classified again under a ruleset (`classify_batch`);
//! - [`dataset`]: a report over whole sessions of a dataset, a ledger's chain re-derived from
//!   its exported records;
//! - [`sessions`]: the sessions table;
//! - [`sql`]: the result of a read-only SQL query;
//! - [`result`]: a generic [`crate::accounting::result::ResultTable`] as a batch;
//! - [`stream`]: [`Batches`] as a reader, and conforming to a consumer's requested schema.

mod build;
pub mod classify;
pub mod dataset;
pub mod events;
pub mod import;
pub mod result;
pub mod sessions;
pub mod sql;
pub mod stream;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

pub use stream::conform;

/// Rows per record batch: big enough for vectorised consumers, small enough to stream.
pub const BATCH_ROWS: usize = 1 << 16;

/// A table as Arrow: its schema and record batches (possibly none).
#[derive(Clone, Debug)]
pub struct Batches {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Batches {
    /// Total rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Splits `len` rows into `(start, end)` ranges of at most [`BATCH_ROWS`].
pub(crate) fn chunks(len: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..len)
        .step_by(BATCH_ROWS)
        .map(move |a| (a, (a + BATCH_ROWS).min(len)))
}

/// Maps an Arrow build error (a bug: the builders here produce consistent arrays).
pub(crate) fn internal(e: arrow_schema::ArrowError) -> crate::error::Error {
    crate::error::Error::Ledger(format!("building Arrow data failed: {e}"))
}
