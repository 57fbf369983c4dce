//! `EventTable`: events read from a ledger, with filters, indexing and `to_pylist()`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice};

use super::classification::parse_tag;
use super::event::{row_dict, Event};
use crate::event::EventKind;
use crate::stored::rows::{Filter, Row};

/// An immutable table of events in `seq` order. `len(t)`, `t[i]`, `t[a:b]`, iteration,
/// `t.filter(kind=, session_id=, tag=)` and `t.to_pylist()`.
#[pyclass(frozen, sequence, module = "statemeter")]
pub struct EventTable {
    rows: Arc<Vec<Row>>,
}

impl EventTable {
    pub fn new(rows: Vec<Row>) -> Self {
        EventTable {
            rows: Arc::new(rows),
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
            let mut out = Vec::with_capacity(ind.slicelength);
            let mut i = ind.start;
            for _ in 0..ind.slicelength {
                out.push(self.rows[i as usize].clone());
                i += ind.step;
            }
            return Ok(EventTable::new(out).into_pyobject(py)?.into_any().unbind());
        }
        let j = super::args::index(index, self.rows.len(), "events")?;
        Ok(event(&self.rows[j]).into_pyobject(py)?.into_any().unbind())
    }

    fn __iter__(&self) -> EventIter {
        EventIter {
            rows: Arc::clone(&self.rows),
            pos: AtomicUsize::new(0),
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
        Ok(EventTable::new(
            self.rows.iter().filter(|r| f.keeps(r)).cloned().collect(),
        ))
    }

    /// One dict per event: the record's fields, `seq`, `tag`, `consumes_state`,
    /// `creates_state`, `state_holder`, `state_kinds` (list of kind names), `evidence` (list
    /// of dicts) and `session_tag`.
    fn to_pylist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .rows
            .iter()
            .map(|r| row_dict(py, &r.rec, Some(r.session_tag)))
            .collect::<PyResult<Vec<_>>>()?;
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
        let rows = Arc::clone(&self.rows);
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
        let mut counts = std::collections::BTreeMap::new();
        for r in self.rows.iter() {
            let key = (
                r.rec.event.kind.as_str(),
                r.rec.classification().tag.as_str(),
                r.session_tag.as_str(),
            );
            *counts.entry(key).or_insert(0usize) += 1;
        }
        counts
            .into_iter()
            .map(|((k, t, s), n)| (k, t, s, n))
            .collect()
    }

    fn __repr__(&self) -> String {
        let stateful = self
            .rows
            .iter()
            .filter(|r| r.rec.classification().tag == crate::event::Tag::Stateful)
            .count();
        format!(
            "EventTable({} events: {} stateless, {} stateful)",
            self.rows.len(),
            self.rows.len() - stateful,
            stateful
        )
    }
}

#[pyclass(frozen, module = "statemeter")]
pub struct EventIter {
    rows: Arc<Vec<Row>>,
    pos: AtomicUsize,
}

#[pymethods]
impl EventIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __next__(&self) -> PyResult<Event> {
        let i = self.pos.fetch_add(1, Ordering::Relaxed);
        match self.rows.get(i) {
            Some(r) => Ok(event(r)),
            None => Err(PyStopIteration::new_err(())),
        }
    }
}
