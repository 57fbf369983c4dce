//! The Rust side of `ledger.export_parquet(...)` (written by `statemeter.parquet` with
//! pyarrow): reading the ledger in chunks after a given `seq`, checked against the chain hash
//! the dataset's manifest recorded, each event with its `session_tag` as of now.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;

use super::event_table::EventTable;
use crate::error::{Error, Result};
use crate::ledger::Store;
use crate::stored::rows::{self, Catalogues, Row};

/// One chunk: the events, the last `seq` read and its chain hash (hex), and when asked for,
/// each event's record text and chain hash (the bytes a verifier re-derives).
pub type Chunk = (
    EventTable,
    u64,
    Option<String>,
    Option<(Vec<String>, Vec<Vec<u8>>)>,
);

fn hash_at(store: &Store, seq: u64) -> Result<Option<String>> {
    let mut stmt = store
        .connection()
        .prepare_cached("SELECT hash FROM events WHERE seq = ?1")?;
    let mut rows = stmt.query([seq as i64])?;
    Ok(match rows.next()? {
        Some(r) => r.get_ref(0)?.as_bytes().ok().map(hex::encode),
        None => None,
    })
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
    let cols = super::report::columns_of(py, store)?;
    let store = Arc::clone(store);
    type Read = (
        Vec<Row>,
        u64,
        Option<String>,
        Option<(Vec<String>, Vec<Vec<u8>>)>,
    );
    let (rows, last, hash, records) = py.detach(move || -> Result<Read> {
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
        let mut rows = Vec::new();
        let mut records = with_records.then(|| (Vec::new(), Vec::new()));
        let mut last = after;
        store.for_each_stored_between(after, upto, limit as u64, |seq, text, raw, hash| {
            let rec = rows::parse_record_explained(seq, text, &catalogues)?;
            // The record as stored and hashed (a version-2 record not expanded).
            if let Some((texts, hashes)) = records.as_mut() {
                texts.push(raw.to_owned());
                hashes.push(hash.to_vec());
            }
            let i = cols.row_of_seq(seq).ok_or_else(|| {
                Error::Integrity(format!("seq {seq} is missing from the ledger's columns"))
            })?;
            rows.push(Row {
                rec: Arc::new(rec),
                session_tag: cols.session_tag[i],
            });
            last = seq;
            Ok(())
        })?;
        let hash = if last > 0 {
            hash_at(&store, last)?
        } else {
            None
        };
        Ok((rows, last, hash, records))
    })?;
    Ok((EventTable::new(rows), last, hash, records))
}
