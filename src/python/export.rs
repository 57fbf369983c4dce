//! The Rust side of `ledger.export_parquet(...)` (written by `statemeter.parquet` with
//! pyarrow): reading the ledger in chunks after a given `seq`, checked against the chain hash
//! the dataset's manifest recorded, each event with its `session_tag` as of now, handed over
//! as Arrow record batches built block by block (no per-row Python work).

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;

use arrow_array::RecordBatch;

use super::arrow::ArrowBatches;
use crate::arrow::{events, Batches};
use crate::error::{Error, Result};
use crate::ledger::Store;
use crate::stored::columns::{EventColumns, Projection};
use crate::stored::rows::{self, Catalogues, Row};

fn hash_at(store: &Store, seq: u64) -> Result<Option<String>> {
    Ok(store.hash_at(seq)?.map(hex::encode))
}

/// One chunk: the events as Arrow record batches (the `EventTable` schema), the last `seq`
/// read and its chain hash (hex), and when asked for, each event's record text and chain hash
/// (the bytes a verifier re-derives).
pub type Chunk = (
    ArrowBatches,
    u64,
    Option<String>,
    Option<(Vec<String>, Vec<Vec<u8>>)>,
);

/// Records parsed and turned into one record batch at a time: a block's parsed events are
/// dropped once its batch is built, so a chunk holds its batches, not its parsed events.
const BLOCK: usize = crate::arrow::BATCH_ROWS;

/// Records of one block as read: their seqs and their (expanded) texts end to end.
#[derive(Default)]
struct Block {
    seqs: Vec<u64>,
    ends: Vec<usize>,
    text: String,
}

impl Block {
    fn push(&mut self, seq: u64, text: &str) {
        self.seqs.push(seq);
        self.text.push_str(text);
        self.ends.push(self.text.len());
    }

    fn len(&self) -> usize {
        self.seqs.len()
    }

    fn clear(&mut self) {
        self.seqs.clear();
        self.ends.clear();
        self.text.clear();
    }

    /// Records `a..b` parsed into rows, each with its session's tag from `cols`.
    fn rows(
        &self,
        a: usize,
        b: usize,
        catalogues: &Catalogues,
        cols: &EventColumns,
    ) -> Result<Vec<Row>> {
        let mut start = if a == 0 { 0 } else { self.ends[a - 1] };
        let mut rows = Vec::with_capacity(b - a);
        for i in a..b {
            let seq = self.seqs[i];
            let rec =
                rows::parse_record_explained(seq, &self.text[start..self.ends[i]], catalogues)?;
            start = self.ends[i];
            let at = cols.row_of_seq(seq).ok_or_else(|| {
                Error::Integrity(format!("seq {seq} is missing from the ledger's columns"))
            })?;
            rows.push(Row {
                rec: Arc::new(rec),
                session_tag: cols.session_tag[at],
            });
        }
        Ok(rows)
    }

    /// The block's events as record batches, parsed by two threads (each half of the
    /// records).
    fn batches(&self, catalogues: &Catalogues, cols: &EventColumns) -> Result<Vec<RecordBatch>> {
        let n = self.len();
        let rows = if n >= 2 * 4096 {
            let (x, y) = std::thread::scope(|s| {
                let other = s.spawn(|| self.rows(n / 2, n, catalogues, cols));
                let x = self.rows(0, n / 2, catalogues, cols);
                (x, other.join().expect("the record parser panicked"))
            });
            let mut rows = x?;
            rows.extend(y?);
            rows
        } else {
            self.rows(0, n, catalogues, cols)?
        };
        Ok(events::batches(&rows)?.batches)
    }
}

/// Up to `limit` events after `after` (at most up to the columns' snapshot), after checking
/// that the hash at `after` is `expect` (the chain the dataset was exported from).
pub fn chunk(
    py: Python<'_>,
    store: &Arc<Mutex<Store>>,
    after: u64,
    limit: usize,
    expect: Option<String>,
    with_records: bool,
) -> PyResult<Chunk> {
    // Only the columns always held (seq, session tags): the events come from the records.
    let cols = super::report::columns_for(py, store, Projection::BASE)?;
    let store = Arc::clone(store);
    type Read = (
        Vec<RecordBatch>,
        u64,
        Option<String>,
        Option<(Vec<String>, Vec<Vec<u8>>)>,
    );
    let (batches, last, hash, records) = py.detach(move || -> Result<Read> {
        let store = store.lock();
        if after > 0 {
            let found = hash_at(&store, after)?;
            if found.is_none() || (expect.is_some() && found != expect) {
                return Err(Error::Integrity(format!(
                    "the ledger does not continue the exported dataset: the chain hash at seq \
                     {after} is {} but the dataset's manifest recorded {} (a different or \
                     rewritten ledger)",
                    found.as_deref().unwrap_or("missing"),
                    expect.as_deref().unwrap_or("nothing"),
                )));
            }
        }
        let catalogues = Catalogues::load(&store)?;
        let upto = cols.last_seq();
        let mut batches = Vec::new();
        let mut block = Block::default();
        let mut records = with_records.then(|| (Vec::new(), Vec::new()));
        let mut last = after;
        store.for_each_stored_between(after, upto, limit as u64, |seq, text, raw, hash| {
            // The record as stored and hashed (a version-2 record not expanded).
            if let Some((texts, hashes)) = records.as_mut() {
                texts.push(raw.to_owned());
                hashes.push(hash.to_vec());
            }
            block.push(seq, text);
            if block.len() == BLOCK {
                batches.extend(block.batches(&catalogues, &cols)?);
                block.clear();
            }
            last = seq;
            Ok(())
        })?;
        if block.len() > 0 {
            batches.extend(block.batches(&catalogues, &cols)?);
        }
        let hash = if last > 0 {
            hash_at(&store, last)?
        } else {
            None
        };
        Ok((batches, last, hash, records))
    })?;
    let inner = Batches {
        schema: events::schema(),
        batches,
    };
    Ok((ArrowBatches { inner }, last, hash, records))
}
