//! `Ledger.sql()`: read-only SQL through statemeter's own SQLite connection
//! (`crate::ledger::sql`), its result as `SqlResult` (rows, Arrow), and the warning when
//! another SQLite library in this process released statemeter's locks on a ledger
//! (`crate::ledger::locks`).

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use pyo3::exceptions::PyRuntimeWarning;
use pyo3::prelude::*;

use super::pyrepr;
use pyo3::types::{PyBool, PyBytes, PyCapsule, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::errors::invalid;
use super::{arrow, py_modules};
use crate::ledger::sql::{SqlParams, SqlRows, SqlValue};
use crate::ledger::Store;

/// Warns (`RuntimeWarning`) when this process no longer holds its locks on the ledger at
/// `path`: another SQLite library (Python's `sqlite3`) closed a connection to the same file.
pub fn warn_if_locks_lost(py: Python<'_>, store: &Arc<Mutex<Store>>) -> PyResult<()> {
    // Never wait for the store's lock holding the GIL (its holder may be waiting for it).
    let s = Arc::clone(store);
    let (lost, path) = py.detach(move || {
        let store = s.lock();
        (store.locks_lost(), store.path().map(Path::to_path_buf))
    });
    let Some(path) = path.filter(|_| lost == Some(true)) else {
        return Ok(());
    };
    {
        let message = std::ffi::CString::new(format!(
            "statemeter's SQLite locks on ledger {} were released by another SQLite library in \
             this process (a connection of Python's sqlite3 module to the same file was \
             closed, and may have deleted its write-ahead log): other processes may now write \
             the ledger concurrently and corrupt it. \
             Read a ledger with ledger.sql() while statemeter has it open, or with sqlite3 in \
             a separate process; close and reopen this Meter or Ledger to take the locks again",
            path.display()
        ))
        .unwrap_or_default();
        PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &message, 1)?;
    }
    Ok(())
}

fn value(name: &str, v: &Bound<'_, PyAny>) -> PyResult<SqlValue> {
    if v.is_none() {
        Ok(SqlValue::Null)
    } else if v.is_instance_of::<PyBool>() {
        Ok(SqlValue::Integer(i64::from(v.extract::<bool>()?)))
    } else if v.is_instance_of::<PyInt>() {
        v.extract::<i64>().map(SqlValue::Integer).map_err(|_| {
            invalid(
                "params",
                format!("{name} is beyond SQLite's 64-bit integers"),
            )
        })
    } else if v.is_instance_of::<PyFloat>() {
        Ok(SqlValue::Real(v.extract()?))
    } else if v.is_instance_of::<PyString>() {
        Ok(SqlValue::Text(v.extract()?))
    } else if let Ok(b) = v.downcast::<PyBytes>() {
        Ok(SqlValue::Blob(b.as_bytes().to_vec()))
    } else {
        Err(invalid(
            "params",
            format!(
                "{name} must be None, int, float, str or bytes, not {}",
                v.get_type().name()?
            ),
        ))
    }
}

/// `params`: a sequence (positional `?` parameters) or a mapping (named `:name` ones).
pub fn params(params: Option<&Bound<'_, PyAny>>) -> PyResult<SqlParams> {
    let Some(p) = params.filter(|p| !p.is_none()) else {
        return Ok(SqlParams::None);
    };
    if let Ok(d) = p.downcast::<PyDict>() {
        let mut named = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let k: String = k
                .extract()
                .map_err(|_| invalid("params", "mapping keys must be parameter names (str)"))?;
            let v = value(&format!("params[{k:?}]"), &v)?;
            let key = if k.starts_with([':', '@', '$']) {
                k
            } else {
                format!(":{k}")
            };
            named.push((key, v));
        }
        return Ok(SqlParams::Named(named));
    }
    if p.is_instance_of::<PyString>() || p.is_instance_of::<PyBytes>() {
        return Err(invalid(
            "params",
            "must be a sequence or a mapping, not a string",
        ));
    }
    let mut positional = Vec::new();
    for (i, v) in p
        .try_iter()
        .map_err(|_| invalid("params", "must be a sequence or a mapping"))?
        .enumerate()
    {
        positional.push(value(&format!("params[{i}]"), &v?)?);
    }
    Ok(SqlParams::Positional(positional))
}

/// The result of `Ledger.sql()`: `columns`, `len(r)`, `r[i]` and iteration (tuples),
/// `rows()` (a list of tuples), `to_pylist()` (a list of dicts), `to_pandas()`,
/// `to_polars()` and `__arrow_c_stream__` (integers `int64`, reals `float64`, text `utf8`,
/// blobs `binary`).
#[pyclass(frozen, sequence, module = "statemeter")]
pub struct SqlResult {
    inner: Arc<SqlRows>,
}

impl SqlResult {
    pub fn new(rows: SqlRows) -> Self {
        SqlResult {
            inner: Arc::new(rows),
        }
    }
}

fn to_py<'py>(py: Python<'py>, v: &SqlValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        SqlValue::Null => py.None().into_bound(py),
        SqlValue::Integer(i) => i.into_pyobject(py)?.into_any(),
        SqlValue::Real(f) => f.into_pyobject(py)?.into_any(),
        SqlValue::Text(s) => PyString::new(py, s).into_any(),
        SqlValue::Blob(b) => PyBytes::new(py, b).into_any(),
    })
}

fn row<'py>(py: Python<'py>, r: &[SqlValue]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        r.iter()
            .map(|v| to_py(py, v))
            .collect::<PyResult<Vec<_>>>()?,
    )
}

#[pymethods]
impl SqlResult {
    /// The column names, in order.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.inner.columns.clone()
    }

    fn __len__(&self) -> usize {
        self.inner.rows.len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let j = super::args::index(index, self.inner.rows.len(), "rows")?;
        row(py, &self.inner.rows[j])
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.rows(py)?.try_iter().map(Bound::into_any)
    }

    /// One tuple per row.
    fn rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .inner
            .rows
            .iter()
            .map(|r| row(py, r))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// One dict per row (column name to value).
    fn to_pylist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut items = Vec::with_capacity(self.inner.rows.len());
        for r in &self.inner.rows {
            let d = PyDict::new(py);
            for (name, v) in self.inner.columns.iter().zip(r) {
                d.set_item(name, to_py(py, v)?)?;
            }
            items.push(d);
        }
        PyList::new(py, items)
    }

    /// The Arrow PyCapsule stream interface (built in Rust).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let rows = Arc::clone(&self.inner);
        arrow::stream(
            py,
            move || crate::arrow::sql::batches(&rows),
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

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "SqlResult({} rows, columns={})",
            self.inner.rows.len(),
            pyrepr::texts(py, self.inner.columns.iter().map(|c| c.as_str()))
        )
    }
}
