//! `Ledger`, `Head` and `Verification`.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;

use super::pyrepr;

use super::errors::invalid;
use super::event_table::{parse_filter, EventTable};
use super::transparency::{Checkpoint, ConsistencyProof, InclusionProof, SigningKey};
use crate::ledger::{self as core, Durability, Store};
use crate::meter::Recorder;
use crate::stored::lazy_rows::StoredRows;

/// A ledger file (or a meter's in-memory ledger): read events, keep a head, verify the chain.
#[pyclass(frozen, module = "statemeter")]
pub struct Ledger {
    pub store: Arc<Mutex<Store>>,
    /// The recorder writing into this ledger, when it belongs to a `Meter`: reads flush it
    /// first, so a meter's ledger always shows everything recorded so far.
    pub recorder: Option<Arc<Recorder>>,
    pub path: Option<PathBuf>,
    /// The fork generation (`crate::fork`) `store` was opened in.
    generation: u64,
    /// In a forked child: this process's own connection to the file (SQLite connections must
    /// not cross a fork), with the generation it was opened in.
    reopened: Mutex<Option<(u64, Arc<Mutex<Store>>)>>,
}

impl Ledger {
    pub fn new(
        store: Arc<Mutex<Store>>,
        recorder: Option<Arc<Recorder>>,
        path: Option<PathBuf>,
    ) -> Self {
        Ledger {
            store,
            recorder,
            path,
            generation: crate::fork::generation(),
            reopened: Mutex::new(None),
        }
    }

    fn settle(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(r) = &self.recorder {
            if !r.is_closed() {
                super::interrupt::flush(py, r)?;
            }
        }
        Ok(())
    }

    /// The store to read in this process: in a child forked after the ledger was opened, a
    /// connection of the child's own (the meter's, or the file opened again).
    pub fn current_store(&self) -> PyResult<Arc<Mutex<Store>>> {
        let generation = crate::fork::generation();
        if let Some(r) = &self.recorder {
            return Ok(r.store()?);
        }
        if generation == self.generation {
            return Ok(Arc::clone(&self.store));
        }
        let mut reopened = self.reopened.lock();
        if let Some((g, store)) = reopened.as_ref().filter(|(g, _)| *g == generation) {
            debug_assert_eq!(*g, generation);
            return Ok(Arc::clone(store));
        }
        let Some(path) = &self.path else {
            return Err(crate::error::Error::Ledger(
                "this in-memory ledger stayed in the parent process at fork()".into(),
            )
            .into());
        };
        // Release the inherited connection first (see `Store::close_inherited`).
        match self.store.try_lock() {
            Some(mut inherited) if inherited.path().is_some() => inherited.close_inherited()?,
            Some(_) => {}
            None => {
                return Err(crate::error::Error::Ledger(
                    "this ledger was being read at the moment of fork(): open it again in \
                     the child"
                        .into(),
                )
                .into())
            }
        }
        let store = Arc::new(Mutex::new(Store::open_existing(path, Durability::Batch)?));
        if let Some((_, parents)) = reopened.replace((generation, Arc::clone(&store))) {
            // Opened in an earlier generation (a parent's): never close it here.
            std::mem::forget(parents);
        }
        Ok(store)
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // A connection opened before a fork belongs to the parent: closing it in the child
        // could checkpoint or delete the parent's write-ahead log. Leave it open.
        if self.generation != crate::fork::generation() {
            std::mem::forget(Arc::clone(&self.store));
        }
    }
}

#[pymethods]
impl Ledger {
    /// Opens an existing ledger file (for reading only when this process may not write it).
    /// Raises `LedgerError` if it does not exist or is not a statemeter ledger.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let p = path.clone();
        let store =
            super::interrupt::detach(py, move || Store::open_existing(&p, Durability::Batch))?;
        Ok(Ledger::new(Arc::new(Mutex::new(store)), None, Some(path)))
    }

    /// The file path, or `None` for an in-memory ledger.
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.path.clone()
    }

    /// The ledger's identity, a UUID (docs/ledger-format.md): given at creation, or at the
    /// first writable open of a ledger made before ledgers had one; `None` for such a ledger
    /// opened read-only since. Raises `LedgerError` when `meta` holds something else.
    #[getter]
    fn ledger_id(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let store = self.current_store()?;
        Ok(py.detach(move || store.lock().ledger_id())?)
    }

    /// The events in `seq` order, optionally filtered by `kind`, `session_id` and `tag`
    /// (`"stateless"`/`"stateful"`). Each carries its derived `session_tag`.
    #[pyo3(signature = (*, kind = None, session_id = None, tag = None))]
    fn events(
        &self,
        py: Python<'_>,
        kind: Option<&str>,
        session_id: Option<String>,
        tag: Option<&str>,
    ) -> PyResult<EventTable> {
        let filter = parse_filter(kind, session_id, tag)?;
        self.settle(py)?;
        let store = self.current_store()?;
        let cols = super::report::columns_of(py, &store)?;
        let source = py.detach(move || StoredRows::new(store, cols))?;
        Ok(EventTable::stored(source, &filter))
    }

    /// The last `seq` and its chain hash. Keep it outside the ledger: `verify(head=...)` then
    /// detects truncation and a swapped-in ledger.
    fn head(&self, py: Python<'_>) -> PyResult<Head> {
        self.settle(py)?;
        let store = self.current_store()?;
        let (h, id) = py.detach(move || {
            let s = store.lock();
            Ok::<_, crate::error::Error>((s.head()?, s.ledger_id()?))
        })?;
        Ok(Head {
            inner: h,
            ledger_id: id,
        })
    }

    /// Re-derives every hash. Returns a `Verification`; never raises for a broken chain.
    #[pyo3(signature = (head = None))]
    fn verify(&self, py: Python<'_>, head: Option<&Bound<'_, PyAny>>) -> PyResult<Verification> {
        let (kept, kept_id) = match head {
            None => (None, None),
            Some(h) => {
                let (h, id) = parse_head(h)?;
                (Some(h), id)
            }
        };
        self.settle(py)?;
        let store = self.current_store()?;
        let s = Arc::clone(&store);
        let (v, id) = py.detach(move || {
            let s = s.lock();
            let v = core::verify_identity(&s, kept.as_ref(), kept_id.as_deref())?;
            Ok::<_, crate::error::Error>((v, s.ledger_id().ok().flatten()))
        })?;
        super::sql::warn_if_locks_lost(py, &store)?;
        Ok(Verification {
            inner: v,
            ledger_id: id,
        })
    }

    /// Runs one read-only SQL statement on the ledger through statemeter's own SQLite
    /// connection, with `params` (a sequence for `?`, a mapping for `:name`). Returns a
    /// `SqlResult` (rows, Arrow). Only reading is allowed (SELECT, WITH, functions such as
    /// `json_extract`, schema-reading pragmas); anything else raises `ValidationError`.
    /// Use it instead of Python's `sqlite3` while statemeter has the file open in this
    /// process: two SQLite libraries in one process release each other's locks
    /// (docs/ledger-format.md).
    #[pyo3(signature = (query, params = None))]
    fn sql(
        &self,
        py: Python<'_>,
        query: &str,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<super::sql::SqlResult> {
        let params = super::sql::params(params)?;
        self.settle(py)?;
        let store = self.current_store()?;
        let query = query.to_owned();
        let s = Arc::clone(&store);
        let rows = super::interrupt::detach(py, move || {
            crate::ledger::sql::query(&s.lock(), &query, &params)
        })?;
        super::sql::warn_if_locks_lost(py, &store)?;
        Ok(super::sql::SqlResult::new(rows))
    }

    /// Signs a checkpoint of the ledger's Merkle tree at its current size with `key` (a
    /// `SigningKey`) and keeps it in the ledger (when writable). Returns the `Checkpoint`.
    fn checkpoint(&self, py: Python<'_>, key: &SigningKey) -> PyResult<Checkpoint> {
        self.settle(py)?;
        let store = self.current_store()?;
        let key = key.inner.clone();
        let inner = super::interrupt::detach(py, move || {
            crate::transparency::checkpoint::take(&mut store.lock(), &key)
        })?;
        Ok(Checkpoint { inner })
    }

    /// The checkpoints kept in the ledger, oldest first.
    fn checkpoints(&self, py: Python<'_>) -> PyResult<Vec<Checkpoint>> {
        let store = self.current_store()?;
        let notes = py.detach(move || store.lock().checkpoints())?;
        notes
            .iter()
            .map(|n| {
                Ok(Checkpoint {
                    inner: crate::transparency::Checkpoint::parse(n)?,
                })
            })
            .collect()
    }

    /// The record text of event `event_id`, exactly as stored and hashed.
    fn record(&self, py: Python<'_>, event_id: &str) -> PyResult<String> {
        self.settle(py)?;
        let store = self.current_store()?;
        let id = event_id.to_owned();
        let record = py.detach(move || {
            let s = store.lock();
            let seq = s.seq_of(&id)?.ok_or_else(|| {
                crate::error::Error::validation("event_id", format!("no event {id} in the ledger"))
            })?;
            s.record_at(seq)
        })?;
        String::from_utf8(record.unwrap_or_default()).map_err(|_| {
            crate::error::Error::Integrity("the record is not UTF-8 text".into()).into()
        })
    }

    /// The inclusion proof of event `event_id` in the tree `checkpoint` signs.
    fn prove(
        &self,
        py: Python<'_>,
        event_id: &str,
        checkpoint: &Checkpoint,
    ) -> PyResult<InclusionProof> {
        self.settle(py)?;
        let store = self.current_store()?;
        let (id, cp) = (event_id.to_owned(), checkpoint.inner.clone());
        let inner = py.detach(move || {
            let s = store.lock();
            crate::transparency::checkpoint::check_against(&s, &cp)?;
            let seq = s.seq_of(&id)?.filter(|&q| q <= cp.size).ok_or_else(|| {
                crate::error::Error::validation(
                    "event_id",
                    format!("no event {id} among the checkpoint's {} records", cp.size),
                )
            })?;
            Ok::<_, crate::error::Error>(crate::transparency::InclusionProof {
                leaf_index: seq - 1,
                tree_size: cp.size,
                hashes: s.inclusion_path(seq - 1, cp.size)?,
            })
        })?;
        Ok(InclusionProof { inner })
    }

    /// The consistency proof from the tree `old` signs to the tree `new` signs (a checkpoint
    /// of this ledger as it is). `proof.verify(old, new)` fails when the ledger was rewritten
    /// after `old` was taken.
    fn consistency(
        &self,
        py: Python<'_>,
        old: &Checkpoint,
        new: &Checkpoint,
    ) -> PyResult<ConsistencyProof> {
        self.settle(py)?;
        let store = self.current_store()?;
        let (o, n) = (old.inner.clone(), new.inner.clone());
        let inner = py.detach(move || {
            let s = store.lock();
            crate::transparency::checkpoint::check_against(&s, &n)?;
            if o.origin != n.origin || o.size > n.size {
                return Err(crate::error::Error::validation(
                    "old",
                    format!(
                        "the old checkpoint ({}, {} records) does not precede the new one ({}, \
                         {} records)",
                        o.origin, o.size, n.origin, n.size
                    ),
                ));
            }
            Ok(crate::transparency::ConsistencyProof {
                old_size: o.size,
                new_size: n.size,
                hashes: s.consistency_path(o.size, n.size)?,
            })
        })?;
        Ok(ConsistencyProof { inner })
    }

    /// An evidence bundle (JSON text) for `events` (an `EventTable`, `Event`s or event ids)
    /// against `checkpoint`: the signed checkpoint and each event's record with its inclusion
    /// proof, plus `rows` and `context` (JSON-like) as given. `sm.verify_evidence` checks it.
    #[pyo3(signature = (events, checkpoint, *, rows = None, context = None))]
    fn evidence(
        &self,
        py: Python<'_>,
        events: &Bound<'_, PyAny>,
        checkpoint: &Checkpoint,
        rows: Option<&Bound<'_, PyAny>>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let mut ids = Vec::new();
        for e in events.try_iter()? {
            let e = e?;
            let id = if let Ok(s) = e.downcast::<pyo3::types::PyString>() {
                s.to_str()?.to_owned()
            } else if let Ok(ev) = e.downcast::<super::event::Event>() {
                ev.get().rec.event.id.to_string()
            } else {
                return Err(invalid(
                    "events",
                    "must be an EventTable, Events or event ids (str)",
                ));
            };
            ids.push(id);
        }
        let rows = rows
            .map(|r| super::convert::to_value("rows", r, 0))
            .transpose()?;
        let context = context
            .map(|c| super::convert::to_value("context", c, 0))
            .transpose()?;
        self.settle(py)?;
        let store = self.current_store()?;
        let cp = checkpoint.inner.clone();
        Ok(py.detach(move || {
            crate::transparency::evidence::build(&store.lock(), &ids, &cp, rows, context)
        })?)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.settle(py)?;
        let store = self.current_store()?;
        Ok(py.detach(move || store.lock().len())? as usize)
    }

    /// Flushes the owning meter's pending events (if any).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.settle(py)
    }

    /// Contract compliance: per interpretation and clause (and `by` group), the covered and
    /// violating `model_call` events, their tokens and, with `prices`, their exact cost.
    /// `contract`/`prices` may be objects or file paths; `by` a list or `"venue,month"`;
    /// `since`/`until` a date, datetime, ISO string or int ns (`[since, until)`, UTC).
    /// Returns a `Report`. See docs/contracts.md.
    #[pyo3(signature = (contract, prices = None, *, by = None, since = None, until = None))]
    fn report(
        &self,
        py: Python<'_>,
        contract: &Bound<'_, PyAny>,
        prices: Option<&Bound<'_, PyAny>>,
        by: Option<&Bound<'_, PyAny>>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<super::report::Report> {
        self.settle(py)?;
        super::report::report(
            py,
            &self.current_store()?,
            contract,
            prices,
            by,
            since,
            until,
        )
    }

    /// Costs of every billable event per `by` group (`events, input_tokens, cached_tokens,
    /// output_tokens, cost_nanos, unpriced_events, ...`). Returns a `Report`.
    #[pyo3(signature = (prices, *, by = None, since = None, until = None))]
    fn costs(
        &self,
        py: Python<'_>,
        prices: &Bound<'_, PyAny>,
        by: Option<&Bound<'_, PyAny>>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<super::report::Report> {
        self.settle(py)?;
        super::report::costs(py, &self.current_store()?, prices, by, since, until)
    }

    /// What if the events matching `select` (field -> value(s)) were served at `venue`
    /// and/or priced with `prices`? Compliance and cost against the baseline (priced with
    /// `baseline_prices`), per interpretation and clause. Returns a `Scenario`.
    #[pyo3(signature = (name, *, contract, select = None, venue = None, prices = None, baseline_prices = None, by = None, since = None, until = None))]
    #[allow(clippy::too_many_arguments)]
    fn scenario(
        &self,
        py: Python<'_>,
        name: String,
        contract: &Bound<'_, PyAny>,
        select: Option<&Bound<'_, PyAny>>,
        venue: Option<String>,
        prices: Option<&Bound<'_, PyAny>>,
        baseline_prices: Option<&Bound<'_, PyAny>>,
        by: Option<&Bound<'_, PyAny>>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<super::report::Scenario> {
        self.settle(py)?;
        super::report::scenario(
            py,
            &self.current_store()?,
            name,
            contract,
            select,
            venue,
            prices,
            baseline_prices,
            by,
            since,
            until,
        )
    }

    /// One row per session (`SessionTable`): agent, tenant, venue, runtime, start/end,
    /// duration, counts per kind, tokens, `session_tag`. Arrow/pandas/polars-ready.
    fn sessions(&self, py: Python<'_>) -> PyResult<super::sessions::SessionTable> {
        self.settle(py)?;
        super::sessions::sessions(py, &self.current_store()?)
    }

    /// Writes the events into a Hive-partitioned Parquet dataset at `dest` (a path or a URI;
    /// other ledgers may export into it too), resuming after this ledger's last export
    /// recorded in the dataset (`statemeter.parquet.export_parquet`; needs
    /// `pip install statemeter[analysis]`). Returns an `ExportResult`.
    #[pyo3(signature = (dest, *args, **options))]
    fn export_parquet<'py>(
        slf: &Bound<'py, Self>,
        dest: &Bound<'py, PyAny>,
        args: &Bound<'py, pyo3::types::PyTuple>,
        options: Option<&Bound<'py, pyo3::types::PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut all = vec![slf.clone().into_any(), dest.clone()];
        all.extend(args.iter());
        super::py_modules::export_parquet(&pyo3::types::PyTuple::new(py, all)?, options)
    }

    /// Internal (Parquet export): up to `limit` events after `after` as Arrow batches, the
    /// last seq read and its chain hash, and with `records` each event's record text and
    /// chain hash; raises `IntegrityError` when the hash at `after` is not `expect`.
    #[pyo3(signature = (after, limit, expect = None, records = false))]
    fn _export_chunk(
        &self,
        py: Python<'_>,
        after: u64,
        limit: usize,
        expect: Option<String>,
        records: bool,
    ) -> PyResult<super::export::Chunk> {
        self.settle(py)?;
        super::export::chunk(py, &self.current_store()?, after, limit, expect, records)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.settle(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match &self.path {
            Some(p) => format!("Ledger({})", pyrepr::text(py, &p.display().to_string())),
            None => "Ledger(<memory>)".into(),
        }
    }
}

pub fn parse_head(h: &Bound<'_, PyAny>) -> PyResult<(core::Head, Option<String>)> {
    if let Ok(h) = h.downcast::<Head>() {
        return Ok((h.get().inner, h.get().ledger_id.clone()));
    }
    let s: String = h
        .extract()
        .map_err(|_| invalid("head", "must be a Head or a 'SEQ:HEX' string"))?;
    Ok((core::Head::parse(&s)?, None))
}

/// A position in a ledger's chain: `seq` and the hash (hex) after it, and the `ledger_id` of
/// the ledger it was read from (`None` when not known). `str(head)` is `"SEQ:HEX"`, which
/// `Head.parse` and `verify(head=...)` accept. Equality compares the position (seq and hash).
#[pyclass(frozen, module = "statemeter")]
pub struct Head {
    pub inner: core::Head,
    pub ledger_id: Option<String>,
}

#[pymethods]
impl Head {
    #[new]
    #[pyo3(signature = (seq, hash, ledger_id = None))]
    fn new(seq: &Bound<'_, PyAny>, hash: &str, ledger_id: Option<&str>) -> PyResult<Self> {
        let seq = super::args::req_count("seq", seq)?;
        Ok(Head {
            inner: core::Head::parse(&format!("{seq}:{hash}"))?,
            ledger_id: ledger_id
                .map(|id| core::parse_ledger_id("ledger_id", id))
                .transpose()?,
        })
    }
    #[staticmethod]
    fn parse(text: &str) -> PyResult<Self> {
        Ok(Head {
            inner: core::Head::parse(text)?,
            ledger_id: None,
        })
    }
    #[getter]
    fn ledger_id(&self) -> Option<&str> {
        self.ledger_id.as_deref()
    }
    #[getter]
    fn seq(&self) -> u64 {
        self.inner.seq
    }
    #[getter]
    fn hash(&self) -> String {
        self.inner.hex()
    }
    fn __str__(&self) -> String {
        format!("{}:{}", self.inner.seq, self.inner.hex())
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        let id = match &self.ledger_id {
            Some(id) => format!(", ledger_id={}", pyrepr::text(py, id)),
            None => String::new(),
        };
        format!(
            "Head(seq={}, hash={}{id})",
            self.inner.seq,
            pyrepr::text(py, &self.inner.hex())
        )
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .downcast::<Head>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }
    fn __hash__(&self) -> u64 {
        self.inner.seq ^ u64::from_le_bytes(self.inner.hash[..8].try_into().unwrap())
    }
}

/// The result of `Ledger.verify()`: `ok`, how many `events` were checked, the `head`
/// re-derived, and for a broken ledger the `first_bad_seq` and the `problem` (which starts
/// with `edited`, `deleted`, `inserted`, `reordered`, `truncated` or `swapped`).
#[pyclass(frozen, module = "statemeter")]
pub struct Verification {
    pub inner: core::Verification,
    /// The verified ledger's id, which `head` carries.
    pub ledger_id: Option<String>,
}

#[pymethods]
impl Verification {
    #[getter]
    fn ok(&self) -> bool {
        self.inner.ok
    }
    #[getter]
    fn events(&self) -> u64 {
        self.inner.events
    }
    #[getter]
    fn head(&self) -> Head {
        Head {
            inner: self.inner.head,
            ledger_id: self.ledger_id.clone(),
        }
    }
    #[getter]
    fn first_bad_seq(&self) -> Option<u64> {
        self.inner.first_bad_seq
    }
    #[getter]
    fn problem(&self) -> Option<&str> {
        self.inner.problem.as_deref()
    }
    fn __bool__(&self) -> bool {
        self.inner.ok
    }
    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        super::py_modules::html(slf.as_any(), "verification_html")
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Verification(ok={}, events={}, head='{}:{}', first_bad_seq={}, problem={})",
            pyrepr::boolean(self.inner.ok),
            self.inner.events,
            self.inner.head.seq,
            self.inner.head.hex(),
            pyrepr::opt_int(self.inner.first_bad_seq),
            pyrepr::opt_text(py, self.inner.problem.as_deref()),
        )
    }
}
