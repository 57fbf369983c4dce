//! `Contract`: clauses, effective periods and interpretations (see docs/contracts.md).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::accounting::calendar;
use crate::accounting::contract as core;
use crate::error::Error;

/// A contract read from TOML: clauses that cover `model_call` events to some providers in an
/// effective period, each under named interpretations (`level` `call` or `session`, `tags`).
/// `Contract.load(path)` / `Contract.from_toml(text)` raise `ContractError` naming the line.
#[pyclass(frozen, module = "statemeter")]
pub struct Contract {
    pub inner: Arc<core::Contract>,
}

#[pymethods]
impl Contract {
    /// Parses contract TOML text. Raises `ContractError`.
    #[staticmethod]
    fn from_toml(text: &Bound<'_, PyAny>) -> PyResult<Self> {
        let text = super::convert::str_arg(text)
            .map_err(|m| Error::Contract(format!("contract: text {m}")))?;
        Ok(Contract {
            inner: Arc::new(core::Contract::from_toml(text)?),
        })
    }

    /// Reads a contract TOML file. Raises `ContractError`.
    #[staticmethod]
    fn load(path: std::path::PathBuf) -> PyResult<Self> {
        Ok(Contract {
            inner: Arc::new(core::Contract::load(&path)?),
        })
    }

    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }

    #[getter]
    fn title(&self) -> Option<&str> {
        self.inner.title.as_deref()
    }

    /// Every clause version in file order, as dicts: id, text, providers, required_venues,
    /// effective_from / effective_until (RFC 3339 UTC or None), interpretations (dict name ->
    /// {level, tags, description}).
    #[getter]
    fn clauses<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for c in &self.inner.clauses {
            let d = PyDict::new(py);
            d.set_item("id", &c.id)?;
            d.set_item("text", c.text.as_deref())?;
            d.set_item("providers", &c.providers)?;
            d.set_item("required_venues", &c.required_venues)?;
            d.set_item("effective_from", c.effective_from.map(calendar::format_ts))?;
            d.set_item(
                "effective_until",
                c.effective_until.map(calendar::format_ts),
            )?;
            let interps = PyDict::new(py);
            for i in &c.interpretations {
                let id = PyDict::new(py);
                id.set_item("level", i.level.as_str())?;
                let tags: Vec<&str> = i.tags.iter().map(|t| t.as_str()).collect();
                id.set_item("tags", tags)?;
                id.set_item("description", i.description.as_deref())?;
                interps.set_item(&i.name, id)?;
            }
            d.set_item("interpretations", interps)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// The (interpretation, clause) pairs a report has rows for, in report order.
    #[getter]
    fn slots(&self) -> Vec<(String, String)> {
        self.inner.slots()
    }

    fn __repr__(&self) -> String {
        format!(
            "Contract(id={:?}, clauses={:?}, interpretations={})",
            self.inner.id,
            self.inner.clause_ids(),
            self.inner.slots().len()
        )
    }
}
