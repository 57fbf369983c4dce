//! Bindings for work on exported datasets (`statemeter.spark`, `sm.classify_batch`): Arrow
//! batches in through the C data interface, the core's result out. Conversion only.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::arrow::{import, ArrowBatches};
use super::classification::Ruleset;
use crate::accounting::result::Cell;
use crate::arrow::{classify, dataset, Batches};
use crate::classify::Ruleset as CoreRuleset;

/// `batch` (Arrow: a record batch, table or stream of the events columns) with its
/// classification columns recomputed under `ruleset` (default: the built-in default).
#[pyfunction]
#[pyo3(signature = (batch, ruleset = None))]
pub fn _classify_batch(
    py: Python<'_>,
    batch: &Bound<'_, PyAny>,
    ruleset: Option<&Bound<'_, Ruleset>>,
) -> PyResult<ArrowBatches> {
    let batches = import(batch)?;
    let rs = match ruleset {
        Some(r) => Arc::clone(&r.get().inner),
        None => CoreRuleset::builtin_default(),
    };
    let schema = batches.first().map(|b| b.schema());
    let out = py.detach(move || {
        batches
            .iter()
            .map(|b| classify::classify_batch(b, &rs))
            .collect::<crate::error::Result<Vec<_>>>()
    })?;
    let schema = out
        .first()
        .map(|b| b.schema())
        .or(schema)
        .unwrap_or_else(crate::arrow::events::schema);
    Ok(ArrowBatches {
        inner: Batches {
            schema,
            batches: out,
        },
    })
}

fn cell(py: Python<'_>, c: &Cell) -> PyResult<Py<PyAny>> {
    Ok(match c {
        Cell::Null => py.None(),
        Cell::Int(v) => v.into_pyobject(py)?.into_any().unbind(),
        Cell::Text(s) => s.into_pyobject(py)?.into_any().unbind(),
    })
}

/// The report of the events in `batches` (whole sessions): `(columns, rows)`.
#[pyfunction]
#[pyo3(signature = (batches, contract, prices = None, by = None, since = None, until = None))]
pub fn _dataset_report<'py>(
    py: Python<'py>,
    batches: &Bound<'py, PyAny>,
    contract: &Bound<'py, PyAny>,
    prices: Option<&Bound<'py, PyAny>>,
    by: Option<&Bound<'py, PyAny>>,
    since: Option<&Bound<'py, PyAny>>,
    until: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Vec<String>, Bound<'py, PyList>)> {
    let batches = import(batches)?;
    let contract = super::report::contract_arg(contract)?;
    let prices = super::report::prices_arg("prices", prices)?;
    let dims = super::report::parse_by(by)?;
    let w = super::report::window(since, until)?;
    let table =
        py.detach(move || dataset::report(&batches, &contract, prices.as_deref(), &dims, w))?;
    let rows = PyList::empty(py);
    for r in &table.rows {
        let cells = r
            .iter()
            .map(|c| cell(py, c))
            .collect::<PyResult<Vec<_>>>()?;
        rows.append(cells)?;
    }
    Ok((table.columns, rows))
}

/// The columns `_dataset_report(batches, contract, by=by)` reads (the others may be left out).
#[pyfunction]
#[pyo3(signature = (contract, by = None))]
pub fn _dataset_report_columns(
    contract: &Bound<'_, PyAny>,
    by: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<String>> {
    let contract = super::report::contract_arg(contract)?;
    let dims = super::report::parse_by(by)?;
    Ok(dataset::report_columns(&contract, &dims))
}

/// One ledger's chain re-derived from the `seq`, `record` and `hash` columns of `batches`.
#[pyfunction]
#[pyo3(signature = (batches, head = None))]
pub fn _dataset_verify(
    py: Python<'_>,
    batches: &Bound<'_, PyAny>,
    head: Option<&Bound<'_, PyAny>>,
) -> PyResult<super::ledger::Verification> {
    let batches = import(batches)?;
    let (kept, ledger_id) = match head {
        Some(h) => {
            let (h, id) = super::ledger::parse_head(h)?;
            (Some(h), id)
        }
        None => (None, None),
    };
    let v = py.detach(move || dataset::verify(&batches, kept.as_ref()))?;
    Ok(super::ledger::Verification {
        inner: v,
        ledger_id,
    })
}
