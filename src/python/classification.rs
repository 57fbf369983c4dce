//! `Ruleset`, `Classification`, `Evidence` and `classify()`.

use std::sync::Arc;

use pyo3::prelude::*;

use super::pyrepr;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::convert;
use crate::classify as engine;
use crate::error::Error;
use crate::event::Event;
use crate::event::{StateKind, StateKinds, Tag};

/// A compiled set of classification rules (TOML). `Ruleset.default()` and
/// `Ruleset.strict()` are the built-in catalogues; `load(path)` and `from_toml(text)` read
/// your own (which may `extends = "default"`).
#[pyclass(frozen, module = "statemeter")]
pub struct Ruleset {
    pub inner: Arc<engine::Ruleset>,
    /// How to build it again elsewhere (pickling, for Spark tasks): a constructor name and
    /// its arguments; `None` when not known.
    pub rebuild: Option<(&'static str, Py<PyTuple>)>,
}

impl Ruleset {
    fn parse(py: Python<'_>, text: &str) -> PyResult<Self> {
        Ok(Ruleset {
            inner: Arc::new(engine::Ruleset::from_toml(text)?),
            rebuild: Some(("from_toml", PyTuple::new(py, [text])?.unbind())),
        })
    }

    /// A ruleset from the core (a meter's): rebuildable when it is a built-in one.
    pub fn of(py: Python<'_>, inner: Arc<engine::Ruleset>) -> Self {
        let builtin = [
            ("default", engine::Ruleset::builtin_default()),
            ("strict", engine::Ruleset::builtin_strict()),
        ]
        .into_iter()
        .find(|(_, b)| b.digest() == inner.digest() && b.name() == inner.name())
        .map(|(name, _)| (name, PyTuple::empty(py).unbind()));
        Ruleset {
            inner,
            rebuild: builtin,
        }
    }
}

#[pymethods]
impl Ruleset {
    /// The built-in default catalogue: consuming provider-held state makes a call stateful.
    #[staticmethod]
    fn default(py: Python<'_>) -> Self {
        Ruleset {
            inner: engine::Ruleset::builtin_default(),
            rebuild: Some(("default", PyTuple::empty(py).unbind())),
        }
    }

    /// The built-in strict catalogue: creating provider-held state also makes a call stateful,
    /// and client-held state makes a session stateful.
    #[staticmethod]
    fn strict(py: Python<'_>) -> Self {
        Ruleset {
            inner: engine::Ruleset::builtin_strict(),
            rebuild: Some(("strict", PyTuple::empty(py).unbind())),
        }
    }

    /// Parses ruleset TOML text. Raises `RulesetError`.
    #[staticmethod]
    fn from_toml(text: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = text.py();
        let text =
            convert::str_arg(text).map_err(|m| Error::Ruleset(format!("ruleset: text {m}")))?;
        Self::parse(py, text)
    }

    /// Reads a ruleset TOML file. Raises `RulesetError`.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let inner = Arc::new(engine::Ruleset::load(&path)?);
        // What was read, to build the same ruleset again where the file is not.
        let rebuild = std::fs::read_to_string(&path)
            .ok()
            .map(|text| PyTuple::new(py, [text]).map(|t| ("from_toml", t.unbind())))
            .transpose()?;
        Ok(Ruleset { inner, rebuild })
    }

    /// Pickling (a Spark task receives the ruleset this way): built again from its TOML, or
    /// as the built-in ruleset it is.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        match &slf.get().rebuild {
            Some((ctor, args)) => Ok((slf.get_type().getattr(*ctor)?, args.bind(py).clone())),
            None => Err(pyo3::exceptions::PyTypeError::new_err(
                "this Ruleset cannot be pickled: its TOML is not known (load it with \
                 Ruleset.load or Ruleset.from_toml)",
            )),
        }
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The first 16 hex digits of the SHA-256 of the ruleset's evidence catalogue: what a
    /// classification's `ruleset_digest` names.
    #[getter]
    fn digest(&self) -> &str {
        self.inner.digest()
    }

    /// The rules in evaluation order, as dicts (id, tag, signal, explain, state).
    #[getter]
    fn rules<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for r in self.inner.rules() {
            let d = PyDict::new(py);
            d.set_item("id", &*r.id)?;
            d.set_item("tag", r.tag.as_str())?;
            d.set_item("signal", &*r.signal)?;
            d.set_item("explain", &*r.explain)?;
            d.set_item("state", r.state.map(StateKind::as_str))?;
            out.append(d)?;
        }
        Ok(out)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Ruleset(name={}, rules={})",
            pyrepr::text(py, self.inner.name()),
            self.inner.rules().count()
        )
    }
}

/// One rule that matched an event: its id, the tag it argues for, the field or header it
/// looked at (`signal`), why it matters (`explain`) and the kind of state it concerns
/// (`state`, `None` for a rule that only notes a fact).
#[pyclass(frozen, module = "statemeter")]
pub struct Evidence {
    pub inner: Arc<crate::event::Evidence>,
}

#[pymethods]
impl Evidence {
    #[getter]
    fn rule(&self) -> &str {
        &self.inner.rule
    }
    #[getter]
    fn tag(&self) -> &'static str {
        self.inner.tag.as_str()
    }
    #[getter]
    fn signal(&self) -> &str {
        &self.inner.signal
    }
    #[getter]
    fn explain(&self) -> &str {
        &self.inner.explain
    }
    #[getter]
    fn state(&self) -> Option<&'static str> {
        self.inner.state.map(StateKind::as_str)
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        evidence_dict(py, &self.inner)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .downcast::<Evidence>()
            .is_ok_and(|o| *o.get().inner == *self.inner)
    }
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.rule.hash(&mut h);
        self.inner.signal.hash(&mut h);
        h.finish()
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Evidence(rule={}, tag={}, signal={}, state={}, explain={})",
            pyrepr::text(py, &self.inner.rule),
            pyrepr::text(py, self.inner.tag.as_str()),
            pyrepr::text(py, &self.inner.signal),
            pyrepr::opt_text(py, self.inner.state.map(StateKind::as_str)),
            pyrepr::text(py, &self.inner.explain)
        )
    }
}

pub fn evidence_dict<'py>(
    py: Python<'py>,
    e: &crate::event::Evidence,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rule", &*e.rule)?;
    d.set_item("tag", e.tag.as_str())?;
    d.set_item("signal", &*e.signal)?;
    d.set_item("explain", &*e.explain)?;
    d.set_item("state", e.state.map(StateKind::as_str))?;
    Ok(d)
}

pub fn evidence_list<'py>(
    py: Python<'py>,
    c: &crate::event::Classification,
) -> PyResult<Bound<'py, PyList>> {
    let items = c
        .evidence
        .iter()
        .map(|e| {
            Evidence {
                inner: Arc::clone(e),
            }
            .into_pyobject(py)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// How one event was classified: `tag`, `consumes_state`, `creates_state`, `state_holder`,
/// `state_kinds` and the `evidence` of every matching rule.
#[pyclass(frozen, module = "statemeter")]
pub struct Classification {
    pub inner: crate::event::Classification,
}

#[pymethods]
impl Classification {
    #[getter]
    fn tag(&self) -> &'static str {
        self.inner.tag.as_str()
    }
    #[getter]
    fn consumes_state(&self) -> bool {
        self.inner.consumes_state
    }
    #[getter]
    fn creates_state(&self) -> bool {
        self.inner.creates_state
    }
    #[getter]
    fn state_holder(&self) -> Option<&'static str> {
        self.inner.state_holder.map(|h| h.as_str())
    }
    /// The kinds of state the event consumes, creates or acts on: sorted, unique.
    #[getter]
    fn state_kinds(&self) -> Vec<&'static str> {
        kind_names(self.inner.state_kinds)
    }
    /// Whether this event makes its session stateful (the input of `session_tag`).
    #[getter]
    fn session_stateful(&self) -> bool {
        self.inner.session_stateful
    }
    #[getter]
    fn ruleset(&self) -> &str {
        &self.inner.ruleset
    }
    /// The digest of the classifying ruleset's evidence catalogue (`Ruleset.digest`).
    #[getter]
    fn ruleset_digest(&self) -> &str {
        &self.inner.ruleset_digest
    }
    #[getter]
    fn evidence<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        evidence_list(py, &self.inner)
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        put_classification(&d, &self.inner)?;
        Ok(d)
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Classification(tag={}, consumes_state={}, creates_state={}, state_holder={}, state_kinds={}, rules={})",
            pyrepr::text(py, self.inner.tag.as_str()),
            pyrepr::boolean(self.inner.consumes_state),
            pyrepr::boolean(self.inner.creates_state),
            pyrepr::opt_text(py, self.inner.state_holder.map(|h| h.as_str())),
            pyrepr::texts(py, kind_names(self.inner.state_kinds)),
            pyrepr::texts(py, self.inner.evidence.iter().map(|e| &*e.rule)),
        )
    }
}

/// The kind names of a set, sorted.
pub fn kind_names(kinds: StateKinds) -> Vec<&'static str> {
    kinds.iter().map(StateKind::as_str).collect()
}

/// Adds the classification's fields to a row dict.
pub fn put_classification(d: &Bound<'_, PyDict>, c: &crate::event::Classification) -> PyResult<()> {
    let py = d.py();
    d.set_item("tag", c.tag.as_str())?;
    d.set_item("consumes_state", c.consumes_state)?;
    d.set_item("creates_state", c.creates_state)?;
    d.set_item("state_holder", c.state_holder.map(|h| h.as_str()))?;
    d.set_item("state_kinds", kind_names(c.state_kinds))?;
    let ev = c
        .evidence
        .iter()
        .map(|e| evidence_dict(py, e))
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("evidence", PyList::new(py, ev)?)?;
    Ok(())
}

pub fn parse_tag(v: Option<&str>) -> PyResult<Option<Tag>> {
    match v {
        None => Ok(None),
        Some("stateless") => Ok(Some(Tag::Stateless)),
        Some("stateful") => Ok(Some(Tag::Stateful)),
        Some(o) => Err(super::errors::invalid(
            "tag",
            format!("{o:?} is not stateless or stateful"),
        )),
    }
}

/// Classifies one raw event mapping without a ledger.
#[pyfunction]
#[pyo3(signature = (event, ruleset = None))]
pub fn classify(
    event: &Bound<'_, PyAny>,
    ruleset: Option<&Bound<'_, Ruleset>>,
) -> PyResult<Classification> {
    let map = convert::to_map("event", event)?;
    let ev = Event::from_map(&map)?.finish()?;
    let rs = match ruleset {
        Some(r) => Arc::clone(&r.get().inner),
        None => engine::Ruleset::builtin_default(),
    };
    Ok(Classification {
        inner: rs.classify(&ev),
    })
}
