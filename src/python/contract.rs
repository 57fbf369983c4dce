//! `Contract`: clauses, effective periods and interpretations (see docs/contracts.md).

use std::sync::Arc;

use pyo3::prelude::*;

use super::pyrepr;
use pyo3::types::{PyDict, PyList, PyMapping, PyTuple};

use super::classification::Ruleset;
use super::errors::invalid;

use crate::accounting::calendar;
use crate::accounting::contract as core;
use crate::error::Error;

/// A contract read from TOML: clauses that cover `model_call` events to some providers in an
/// effective period, each under named interpretations (`level` `call` or `session`, `tags`,
/// optionally the `ruleset` the calls are read under). `Contract.load(path)` /
/// `Contract.from_toml(text)` raise `ContractError` naming the line.
#[pyclass(frozen, module = "statemeter")]
pub struct Contract {
    pub inner: Arc<core::Contract>,
    /// `Contract.from_toml` arguments that build it again (for pickling): text, base and the
    /// named rulesets.
    pub source: Option<Py<PyTuple>>,
}

#[pymethods]
impl Contract {
    /// Parses contract TOML text. A `ruleset = "path"` is relative to `base` (default: the
    /// current directory); `rulesets` maps names to `Ruleset`s an interpretation may name.
    /// Raises `ContractError` (from the `RulesetError` of a ruleset file that does not compile).
    #[staticmethod]
    #[pyo3(signature = (text, *, base = None, rulesets = None))]
    fn from_toml(
        py: Python<'_>,
        text: &Bound<'_, PyAny>,
        base: Option<std::path::PathBuf>,
        rulesets: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let named = rulesets;
        let text = super::convert::str_arg(text)
            .map_err(|m| Error::Contract(format!("contract: text {m}")))?;
        let rulesets = core::Rulesets {
            base,
            named: named_rulesets(rulesets)?,
        };
        let source = PyTuple::new(
            py,
            [
                text.into_pyobject(py)?.into_any(),
                rulesets.base.clone().into_pyobject(py)?.into_any(),
                named.map_or_else(|| py.None().into_bound(py), |n| n.clone()),
            ],
        )?
        .unbind();
        Ok(Contract {
            source: Some(source),
            inner: Arc::new(core::Contract::from_toml_with(text, &rulesets)?),
        })
    }

    /// Reads a contract TOML file; a `ruleset = "path"` is relative to the file's directory.
    /// `rulesets` maps names to `Ruleset`s an interpretation may name. Raises `ContractError`.
    #[staticmethod]
    #[pyo3(signature = (path, *, rulesets = None))]
    fn load(
        py: Python<'_>,
        path: std::path::PathBuf,
        rulesets: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let inner = Arc::new(core::Contract::load_with(&path, named_rulesets(rulesets)?)?);
        // What was read, with the directory its ruleset paths are relative to.
        let base = path
            .parent()
            .map(|d| {
                if d.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    d
                }
            })
            .map(std::path::absolute)
            .transpose()?;
        let source = match std::fs::read_to_string(&path) {
            Ok(text) => Some(
                PyTuple::new(
                    py,
                    [
                        text.into_pyobject(py)?.into_any(),
                        base.into_pyobject(py)?.into_any(),
                        rulesets.map_or_else(|| py.None().into_bound(py), |n| n.clone()),
                    ],
                )?
                .unbind(),
            ),
            Err(_) => None,
        };
        Ok(Contract { inner, source })
    }

    /// `from_toml` with positional arguments (unpickling).
    #[staticmethod]
    fn _unpickle(
        py: Python<'_>,
        text: &Bound<'_, PyAny>,
        base: Option<std::path::PathBuf>,
        rulesets: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Self::from_toml(py, text, base, rulesets)
    }

    /// Pickling (a Spark task receives the contract this way): built again with
    /// `Contract.from_toml(text, base=..., rulesets=...)` from what was read (ruleset files
    /// an interpretation names are read again, at the same path).
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        match &slf.get().source {
            Some(args) => Ok((slf.get_type().getattr("_unpickle")?, args.bind(py).clone())),
            None => Err(pyo3::exceptions::PyTypeError::new_err(
                "this Contract cannot be pickled: its TOML is not known",
            )),
        }
    }

    /// Each interpretation (in report order) and the ruleset it reads the calls under, as
    /// written in the contract (`"strict"`, a file path, a name), or `None`: the
    /// classification stored in the ledger.
    #[getter]
    fn rulesets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, ruleset) in self.inner.interpretation_rulesets() {
            d.set_item(name, ruleset)?;
        }
        Ok(d)
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
    /// {level, tags, description, ruleset}).
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
                id.set_item("ruleset", i.ruleset_name())?;
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

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Contract(id={}, clauses={}, interpretations={})",
            pyrepr::text(py, &self.inner.id),
            pyrepr::texts(py, self.inner.clause_ids().iter().map(|c| &**c)),
            self.inner.slots().len()
        )
    }
}

/// `rulesets=`: None or a mapping of name -> `Ruleset`.
fn named_rulesets(
    v: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<(String, Arc<crate::classify::Ruleset>)>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let m = v
        .downcast::<PyMapping>()
        .map_err(|_| invalid("rulesets", "must be a mapping of name -> Ruleset"))?;
    let mut out = Vec::new();
    for item in m.items()?.iter() {
        let (k, r): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let name: String = k
            .extract()
            .map_err(|_| invalid("rulesets", "keys must be names (str)"))?;
        let r = r.downcast::<Ruleset>().map_err(|_| {
            invalid(
                &format!("rulesets.{name}"),
                "must be a Ruleset (Ruleset.load(path), Ruleset.from_toml(text), ...)",
            )
        })?;
        out.push((name, Arc::clone(&r.get().inner)));
    }
    Ok(out)
}
