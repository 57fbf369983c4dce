//! `SessionTable` (`ledger.sessions()`): one row per session, Arrow-ready.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict, PyList};

use super::{arrow, py_modules};
use crate::ledger::Store;
use crate::stored::sessions::{self as core, SessionRow, SessionsCache};

/// The sessions of a ledger: one row per `session_id`, in the order the sessions began.
/// `len(t)`, `t[i]` (a dict), iteration (dicts), `to_pylist()`, `to_pandas()`,
/// `to_polars()`, `__arrow_c_stream__`. Columns: `session_id, agent, tenant, venue, runtime,
/// runtime_session_id, start, end, last_ts, duration_ns, status, events, model_calls,
/// tool_calls, state_ops, tool_errors, input_tokens, output_tokens, cached_tokens,
/// stateful_events, inner_model_calls, inner_tool_calls, inner_state_ops, inner_input_tokens,
/// inner_output_tokens, inner_cached_tokens, session_tag, first_seq` (`start`/`end`/`last_ts`
/// are int ns in `to_pylist()`, UTC timestamps in Arrow; the `inner_*` columns count the steps
/// a provider-managed runtime reported for calls into it: events whose parent is a model call).
#[pyclass(frozen, sequence, module = "statemeter")]
pub struct SessionTable {
    rows: Arc<Vec<SessionRow>>,
}

/// `ledger.sessions()` (see [`core::sessions_of`]).
pub fn sessions(py: Python<'_>, store: &Arc<Mutex<Store>>) -> PyResult<SessionTable> {
    let rows = py.detach(|| core::sessions_of(store, super::report::column_cache(), &TABLES))?;
    Ok(SessionTable { rows })
}

/// Sessions tables still held, returned again while the ledger is unchanged.
static TABLES: SessionsCache = SessionsCache::new();

fn row_dict<'py>(py: Python<'py>, r: &SessionRow) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("session_id", &*r.session_id)?;
    d.set_item("agent", r.agent.as_deref())?;
    d.set_item("tenant", r.tenant.as_deref())?;
    d.set_item("venue", r.venue.as_deref())?;
    d.set_item("runtime", r.runtime.as_deref())?;
    d.set_item("runtime_session_id", r.runtime_session_id.as_deref())?;
    d.set_item("start", r.start)?;
    d.set_item("end", r.end)?;
    d.set_item("last_ts", r.last_ts)?;
    d.set_item("duration_ns", r.duration_ns())?;
    d.set_item("status", r.status.as_deref())?;
    d.set_item("events", r.events)?;
    d.set_item("model_calls", r.model_calls)?;
    d.set_item("tool_calls", r.tool_calls)?;
    d.set_item("state_ops", r.state_ops)?;
    d.set_item("tool_errors", r.tool_errors)?;
    d.set_item("input_tokens", r.input_tokens)?;
    d.set_item("output_tokens", r.output_tokens)?;
    d.set_item("cached_tokens", r.cached_tokens)?;
    d.set_item("stateful_events", r.stateful_events)?;
    d.set_item("inner_model_calls", r.inner_model_calls)?;
    d.set_item("inner_tool_calls", r.inner_tool_calls)?;
    d.set_item("inner_state_ops", r.inner_state_ops)?;
    d.set_item("inner_input_tokens", r.inner_input_tokens)?;
    d.set_item("inner_output_tokens", r.inner_output_tokens)?;
    d.set_item("inner_cached_tokens", r.inner_cached_tokens)?;
    d.set_item("session_tag", r.session_tag.as_str())?;
    d.set_item("first_seq", r.first_seq)?;
    Ok(d)
}

#[pymethods]
impl SessionTable {
    fn __len__(&self) -> usize {
        self.rows.len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let j = super::args::index(index, self.rows.len(), "sessions")?;
        row_dict(py, &self.rows[j])
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.to_pylist(py)?.try_iter().map(Bound::into_any)
    }

    /// One dict per session.
    fn to_pylist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .rows
            .iter()
            .map(|r| row_dict(py, r))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// The Arrow PyCapsule stream interface (built in Rust).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let rows = Arc::clone(&self.rows);
        arrow::stream(
            py,
            move || crate::arrow::sessions::batches(&rows),
            requested_schema,
        )
    }

    /// A pandas DataFrame (`pip install statemeter[analysis]`).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        py_modules::frames(slf.as_any(), "to_pandas")
    }

    /// A polars DataFrame (`pip install statemeter[analysis]`).
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        py_modules::frames(slf.as_any(), "to_polars")
    }

    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        py_modules::html(slf.as_any(), "sessions_html")
    }

    fn __repr__(&self) -> String {
        let stateful = self
            .rows
            .iter()
            .filter(|r| r.session_tag == crate::event::Tag::Stateful)
            .count();
        format!(
            "SessionTable({} sessions: {} stateless, {} stateful)",
            self.rows.len(),
            self.rows.len() - stateful,
            stateful
        )
    }
}
