//! `EventTable`: events read from a ledger, with filters, indexing and `to_pylist()`.
//!
//! A table from `ledger.events()` holds the ledger's columns and one index per row, and reads
//! whole events from the records when they are asked for (indexing, iteration in chunks of
//! [`CHUNK`], `to_pylist()`, Arrow); filters, `len()` and the counts read only the columns.
//! Tables made of events already in memory (violations, exports) hold the rows themselves.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice};

use super::classification::parse_tag;
use super::event::{row_dict, Event};
use crate::event::{EventKind, Tag};
use crate::stored::lazy_rows::StoredRows;
use crate::stored::rows::{Filter, Row};

/// Rows read from the records at a time while iterating or converting a stored table.
const CHUNK: usize = 4096;

/// Where a table's rows are.
#[derive(Clone)]
enum Rows {
    /// In memory.
    Loaded(Arc<Vec<Row>>),
    /// In the ledger: column indices of `source`, read on demand.
    Stored {
        source: Arc<StoredRows>,
        idx: Arc<Vec<u32>>,
    },
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Loaded(r) => r.len(),
            Rows::Stored { idx, .. } => idx.len(),
        }
    }

    /// Rows `a..b` as events in memory.
    fn read(&self, a: usize, b: usize) -> PyResult<Vec<Row>> {
        Ok(match self {
            Rows::Loaded(r) => r[a..b].to_vec(),
            Rows::Stored { source, idx } => source.read(&idx[a..b])?,
        })
    }
}

/// An immutable table of events in `seq` order. `len(t)`, `t[i]`, `t[a:b]`, iteration,
/// `t.filter(kind=, session_id=, tag=)` and `t.to_pylist()`.
#[pyclass(frozen, sequence, module = "statemeter")]
pub struct EventTable {
    rows: Rows,
}

impl EventTable {
    pub fn new(rows: Vec<Row>) -> Self {
        EventTable {
            rows: Rows::Loaded(Arc::new(rows)),
        }
    }

    /// The rows of `source` that `filter` keeps, read on demand.
    pub fn stored(source: StoredRows, filter: &Filter) -> Self {
        let idx = source.select(filter, None);
        EventTable {
            rows: Rows::Stored {
                source: Arc::new(source),
                idx: Arc::new(idx),
            },
        }
    }

    /// Every row, read in chunks (for conversions that need them all).
    fn all_rows(&self, py: Python<'_>) -> PyResult<Arc<Vec<Row>>> {
        match &self.rows {
            Rows::Loaded(r) => Ok(Arc::clone(r)),
            rows => {
                let rows = rows.clone();
                let n = rows.len();
                Ok(Arc::new(py.detach(move || rows.read(0, n))?))
            }
        }
    }
}

pub fn parse_filter(
    kind: Option<&str>,
    session_id: Option<String>,
    tag: Option<&str>,
) -> PyResult<Filter> {
    Ok(Filter {
        kind: kind.map(EventKind::parse).transpose()?,
        session_id,
        tag: parse_tag(tag)?,
    })
}

fn event(row: &Row) -> Event {
    Event {
        rec: Arc::clone(&row.rec),
        session_tag: Some(row.session_tag),
    }
}

#[pymethods]
impl EventTable {
    fn __len__(&self) -> usize {
        self.rows.len()
    }

    fn __getitem__(&self, py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if let Ok(slice) = index.downcast::<PySlice>() {
            let ind = slice.indices(self.rows.len() as isize)?;
            let picks = (0..ind.slicelength).map(|k| (ind.start + k as isize * ind.step) as usize);
            let rows = match &self.rows {
                Rows::Loaded(r) => Rows::Loaded(Arc::new(picks.map(|i| r[i].clone()).collect())),
                Rows::Stored { source, idx } => Rows::Stored {
                    source: Arc::clone(source),
                    idx: Arc::new(picks.map(|i| idx[i]).collect()),
                },
            };
            return Ok(EventTable { rows }.into_pyobject(py)?.into_any().unbind());
        }
        let j = super::args::index(index, self.rows.len(), "events")?;
        let rows = self.rows.clone();
        let row = py
            .detach(move || rows.read(j, j + 1))?
            .pop()
            .expect("one row");
        Ok(event(&row).into_pyobject(py)?.into_any().unbind())
    }

    fn __iter__(&self) -> EventIter {
        EventIter {
            rows: self.rows.clone(),
            state: Mutex::new(IterState::default()),
        }
    }

    /// A new table with the rows that match every given filter.
    #[pyo3(signature = (*, kind = None, session_id = None, tag = None))]
    fn filter(
        &self,
        kind: Option<&str>,
        session_id: Option<String>,
        tag: Option<&str>,
    ) -> PyResult<EventTable> {
        let f = parse_filter(kind, session_id, tag)?;
        let rows = match &self.rows {
            Rows::Loaded(r) => {
                Rows::Loaded(Arc::new(r.iter().filter(|r| f.keeps(r)).cloned().collect()))
            }
            Rows::Stored { source, idx } => Rows::Stored {
                source: Arc::clone(source),
                idx: Arc::new(source.select(&f, Some(idx))),
            },
        };
        Ok(EventTable { rows })
    }

    /// One dict per event: the record's fields, `seq`, `tag`, `consumes_state`,
    /// `creates_state`, `state_holder`, `state_kinds` (list of kind names), `evidence` (list
    /// of dicts) and `session_tag`.
    fn to_pylist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let n = self.rows.len();
        let mut items = Vec::with_capacity(n);
        for a in (0..n).step_by(CHUNK) {
            let rows = self.rows.clone();
            let b = (a + CHUNK).min(n);
            for r in py.detach(move || rows.read(a, b))? {
                items.push(row_dict(py, &r.rec, Some(r.session_tag))?);
            }
        }
        PyList::new(py, items)
    }

    /// The Arrow PyCapsule stream interface: the events as record batches built in Rust
    /// (column types in docs/arrow.md), for `pyarrow.table(t)`, `polars.DataFrame(t)`,
    /// `duckdb.sql("... from t")`.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyCapsule>> {
        let rows = self.all_rows(py)?;
        super::arrow::stream(
            py,
            move || crate::arrow::events::batches(&rows),
            requested_schema,
        )
    }

    /// A pandas DataFrame (`pip install statemeter[analysis]`).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        super::py_modules::frames(slf.as_any(), "to_pandas")
    }

    /// A polars DataFrame (`pip install statemeter[analysis]`).
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        super::py_modules::frames(slf.as_any(), "to_polars")
    }

    /// Model-call events or tokens by venue and tag over time (`statemeter.plot.usage_over_time`).
    #[pyo3(signature = (**kwargs))]
    fn plot<'py>(
        slf: &Bound<'py, Self>,
        kwargs: Option<&Bound<'py, pyo3::types::PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        super::py_modules::plot(slf.as_any(), "usage_over_time", kwargs)
    }

    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        super::py_modules::html(slf.as_any(), "event_table_html")
    }

    /// Counts of rows per `(kind, tag, session_tag)`, sorted (for summaries and HTML).
    fn _counts(&self) -> Vec<(&'static str, &'static str, &'static str, usize)> {
        self.counts()
            .into_iter()
            .map(|((k, t, s), n)| (k.as_str(), t.as_str(), s.as_str(), n))
            .collect()
    }

    fn __repr__(&self) -> String {
        let stateful: usize = self
            .counts()
            .iter()
            .filter(|((_, t, _), _)| *t == Tag::Stateful)
            .map(|(_, n)| n)
            .sum();
        format!(
            "EventTable({} events: {} stateless, {} stateful)",
            self.rows.len(),
            self.rows.len() - stateful,
            stateful
        )
    }
}

impl EventTable {
    /// Rows per `(kind, tag, session_tag)`, sorted by kind name, tag, session tag.
    fn counts(&self) -> Vec<((EventKind, Tag, Tag), usize)> {
        let mut counts = std::collections::BTreeMap::new();
        match &self.rows {
            Rows::Loaded(rows) => {
                for r in rows.iter() {
                    let key = (
                        r.rec.event.kind.as_str(),
                        r.rec.classification().tag.as_str(),
                        r.session_tag.as_str(),
                    );
                    let e = counts.entry(key).or_insert((
                        (r.rec.event.kind, r.rec.classification().tag, r.session_tag),
                        0usize,
                    ));
                    e.1 += 1;
                }
            }
            Rows::Stored { source, idx } => {
                for ((k, t, s), n) in source.counts(idx) {
                    counts.insert((k.as_str(), t.as_str(), s.as_str()), ((k, t, s), n));
                }
            }
        }
        counts.into_values().collect()
    }
}

#[pyclass(frozen, module = "statemeter")]
pub struct EventIter {
    rows: Rows,
    state: Mutex<IterState>,
}

/// The next row index and the chunk read ahead (rows `start..start + chunk.len()`).
#[derive(Default)]
struct IterState {
    pos: usize,
    start: usize,
    chunk: Vec<Row>,
}

#[pymethods]
impl EventIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __next__(&self, py: Python<'_>) -> PyResult<Event> {
        let i = {
            let mut st = self.state.lock();
            let i = st.pos;
            if i >= self.rows.len() {
                return Err(PyStopIteration::new_err(()));
            }
            st.pos += 1;
            if let Rows::Loaded(r) = &self.rows {
                return Ok(event(&r[i]));
            }
            if i >= st.start && i < st.start + st.chunk.len() {
                return Ok(event(&st.chunk[i - st.start]));
            }
            i
        };
        // The next chunk, read without holding the state (the GIL is released meanwhile).
        let rows = self.rows.clone();
        let b = (i + CHUNK).min(rows.len());
        let chunk = py.detach(move || rows.read(i, b))?;
        let ev = event(&chunk[0]);
        let mut st = self.state.lock();
        st.start = i;
        st.chunk = chunk;
        Ok(ev)
    }
}
