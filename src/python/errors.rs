//! The Python exception hierarchy and the one mapping from the core's [`Error`] to it.
//!
//! `ValidationError` derives from both `StatemeterError` and `ValueError` (so `except
//! ValueError` keeps working), which `create_exception!` cannot express; the classes are made
//! with `type(...)` at import and cached here.

use std::sync::OnceLock;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::error::Error;

struct Types {
    base: Py<PyType>,
    validation: Py<PyType>,
    ruleset: Py<PyType>,
    contract: Py<PyType>,
    ledger: Py<PyType>,
    integrity: Py<PyType>,
}

static TYPES: OnceLock<Types> = OnceLock::new();

fn make(py: Python<'_>, name: &str, bases: Bound<'_, PyTuple>, doc: &str) -> PyResult<Py<PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__module__", "statemeter")?;
    ns.set_item("__doc__", doc)?;
    let t = py.get_type::<PyType>().call1((name, bases, ns))?;
    Ok(t.downcast_into::<PyType>()?.unbind())
}

/// Creates the exception classes and adds them to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let exc = py.get_type::<pyo3::exceptions::PyException>();
    let base = make(
        py,
        "StatemeterError",
        PyTuple::new(py, [exc])?,
        "Base of every error statemeter raises.",
    )?;
    let b = base.bind(py).clone();
    let sub = |name: &str, doc: &str| make(py, name, PyTuple::new(py, [b.clone()])?, doc);
    let validation = make(
        py,
        "ValidationError",
        PyTuple::new(py, [b.clone(), py.get_type::<PyValueError>()])?,
        "Bad input: the message starts with the field's name; `.field` holds it. Nothing was written.",
    )?;
    let types = Types {
        ruleset: sub(
            "RulesetError",
            "A ruleset file or text that cannot be used.",
        )?,
        contract: sub(
            "ContractError",
            "A contract or price table that cannot be used.",
        )?,
        ledger: sub(
            "LedgerError",
            "Storage failed: cannot open, write or read the ledger.",
        )?,
        integrity: sub(
            "IntegrityError",
            "The ledger contradicts its hash chain: tampered or broken.",
        )?,
        validation,
        base,
    };
    for (name, t) in [
        ("StatemeterError", &types.base),
        ("ValidationError", &types.validation),
        ("RulesetError", &types.ruleset),
        ("ContractError", &types.contract),
        ("LedgerError", &types.ledger),
        ("IntegrityError", &types.integrity),
    ] {
        m.add(name, t.bind(py))?;
    }
    let _ = TYPES.set(types);
    Ok(())
}

/// The Python exception for a core error.
pub fn to_pyerr(py: Python<'_>, e: Error) -> PyErr {
    let Some(t) = TYPES.get() else {
        return PyValueError::new_err(e.to_string());
    };
    if let Error::Caused { error, cause } = e {
        let err = to_pyerr(py, *error);
        err.set_cause(py, Some(to_pyerr(py, *cause)));
        return err;
    }
    let msg = e.to_string();
    let ty = match &e {
        Error::Validation { field, .. } => {
            let built = t
                .validation
                .bind(py)
                .call1((msg.clone(),))
                .and_then(|inst| inst.setattr("field", field.as_str()).map(|_| inst));
            return match built {
                Ok(inst) => PyErr::from_value(inst),
                Err(err) => err,
            };
        }
        Error::Ruleset(_) => &t.ruleset,
        Error::Contract(_) => &t.contract,
        Error::Ledger(_) => &t.ledger,
        Error::Integrity(_) => &t.integrity,
        Error::Caused { .. } => unreachable!("handled above"),
    };
    PyErr::from_type(ty.bind(py).clone(), msg)
}

impl From<Error> for PyErr {
    fn from(e: Error) -> Self {
        Python::attach(|py| to_pyerr(py, e))
    }
}

/// Shorthand for a `ValidationError` naming `field`.
pub fn invalid(field: &str, message: impl Into<String>) -> PyErr {
    Error::validation(field, message).into()
}
