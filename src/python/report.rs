//! `ledger.report(...)`, `ledger.costs(...)`, `ledger.scenario(...)` (called from the
//! `Ledger` methods) and the tables they return, `Report` and `Scenario`: rows computed in
//! Rust; their presentation (CSV, text, plots in `statemeter.report`; HTML in
//! `statemeter.display`; dataframes in `statemeter.frames`) is Python, reached through
//! `py_modules`.
//!
//! The ledger's columns come from one process-wide [`ColumnCache`] (refreshed by head).

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator, PyList, PyString, PyTuple};

use super::contract::Contract;
use super::errors::invalid;
use super::event_table::EventTable;
use super::pricing::PriceTable;
use super::py_modules;
use crate::accounting::calendar;
use crate::accounting::contract::Contract as CoreContract;
use crate::accounting::costing;
use crate::accounting::groupby::{parse_dims, Dim};
use crate::accounting::pricing::PriceTable as CorePrices;
use crate::accounting::report as core;
use crate::accounting::result::{Cell, ResultTable};
use crate::accounting::scenario::{self, Condition, Selection};
use crate::accounting::window::Window;
use crate::ledger::Store;
use crate::stored::columns::{ColumnCache, EventColumns, Projection};

/// The ledgers' columns, kept between reads.
static COLUMNS: ColumnCache = ColumnCache::new();

/// The process-wide column cache.
pub fn column_cache() -> &'static ColumnCache {
    &COLUMNS
}

/// The store's columns, from the cache when the ledger did not change (GIL released).
pub fn columns_of(py: Python<'_>, store: &Arc<Mutex<Store>>) -> PyResult<Arc<EventColumns>> {
    Ok(py.detach(|| COLUMNS.columns(store))?)
}

/// [`columns_of`] holding at least the columns of `need`.
pub fn columns_for(
    py: Python<'_>,
    store: &Arc<Mutex<Store>>,
    need: Projection,
) -> PyResult<Arc<EventColumns>> {
    Ok(py.detach(|| COLUMNS.columns_for(store, need))?)
}

/// `since`/`until`: None, int ns, a date or RFC 3339 string, or a `date`/`datetime` (anything
/// with `isoformat()`; a naive datetime is read as UTC).
pub fn parse_time(field: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(invalid(
            field,
            "must be a date, a datetime, an ISO string or int ns",
        ));
    }
    if let Ok(ns) = v.extract::<i64>() {
        return Ok(Some(ns));
    }
    let text: String = if let Ok(s) = v.downcast::<PyString>() {
        super::convert::utf8(s)
            .map_err(|m| invalid(field, m))?
            .to_owned()
    } else if let Ok(iso) = v.call_method0("isoformat") {
        iso.extract()?
    } else {
        return Err(invalid(
            field,
            "must be a date, a datetime, an ISO string or int ns",
        ));
    };
    calendar::parse_instant(&text)
        .map(Some)
        .map_err(|m| invalid(field, m))
}

/// `by`: None, `"venue,month"`, or a sequence of names.
pub fn parse_by(v: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Dim>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = if let Ok(s) = v.downcast::<PyString>() {
        super::convert::utf8(s)
            .map_err(|m| invalid("by", m))?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        v.try_iter()
            .map_err(|_| invalid("by", "must be a string or a sequence of strings"))?
            .map(|x| {
                x?.extract::<String>()
                    .map_err(|_| invalid("by", "must be a string or a sequence of strings"))
            })
            .collect::<PyResult<_>>()?
    };
    Ok(parse_dims(&names)?)
}

/// `select`: None or a mapping of field -> value, None, or a list of those.
fn parse_select(v: Option<&Bound<'_, PyAny>>) -> PyResult<Selection> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Selection::default());
    };
    let d = v
        .downcast::<PyDict>()
        .map_err(|_| invalid("select", "must be a dict of field -> value(s)"))?;
    let mut conds = Vec::new();
    for (k, val) in d.iter() {
        let field: String = k
            .extract()
            .map_err(|_| invalid("select", "keys must be field names (str)"))?;
        let name = format!("select.{field}");
        let one = |x: &Bound<'_, PyAny>| -> PyResult<Option<String>> {
            if x.is_none() {
                return Ok(None);
            }
            x.extract::<String>()
                .map(Some)
                .map_err(|_| invalid(&name, "values must be strings or None"))
        };
        let values = if val.is_none() || val.is_instance_of::<PyString>() {
            vec![one(&val)?]
        } else {
            val.try_iter()
                .map_err(|_| invalid(&name, "must be a string, None or a list of those"))?
                .map(|x| one(&x?))
                .collect::<PyResult<_>>()?
        };
        conds.push(Condition { field, values });
    }
    Ok(Selection::new(conds)?)
}

/// A `Contract`, or a path to a contract file.
pub fn contract_arg(v: &Bound<'_, PyAny>) -> PyResult<Arc<CoreContract>> {
    if let Ok(c) = v.downcast::<Contract>() {
        return Ok(Arc::clone(&c.get().inner));
    }
    match v.extract::<std::path::PathBuf>() {
        Ok(path) if !v.is_instance_of::<pyo3::types::PyBytes>() => {
            Ok(Arc::new(CoreContract::load(&path)?))
        }
        _ => Err(invalid(
            "contract",
            "must be a Contract or the path of a contract file",
        )),
    }
}

/// A `PriceTable`, a path to a price file, or None.
pub fn prices_arg(field: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Arc<CorePrices>>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if let Ok(p) = v.downcast::<PriceTable>() {
        return Ok(Some(Arc::clone(&p.get().inner)));
    }
    match v.extract::<std::path::PathBuf>() {
        Ok(path) if !v.is_instance_of::<pyo3::types::PyBytes>() => {
            Ok(Some(Arc::new(CorePrices::load(&path)?)))
        }
        _ => Err(invalid(
            field,
            "must be a PriceTable or the path of a price file",
        )),
    }
}

struct Violations {
    store: Arc<Mutex<Store>>,
    cols: Arc<EventColumns>,
    contract: Arc<CoreContract>,
    prices: Option<Arc<CorePrices>>,
    window: Window,
}

/// Rows of a report, a costs table or one side of a scenario.
///
/// `to_pylist()` gives one dict per row with the columns in `columns`; `to_pandas()`,
/// `to_polars()`, `to_arrow()` and `__arrow_c_stream__` hand the same rows to dataframe
/// libraries (integers stay exact). `violations(interpretation, clause)` (for a contract
/// report) is the `EventTable` of the violating events; `explain(interpretation, clause)`
/// the same calls grouped by agent, venue, model and the rule that tagged them.
#[pyclass(frozen, name = "Report", module = "statemeter")]
pub struct Report {
    kind: &'static str,
    table: ResultTable,
    meta: Vec<(&'static str, Option<String>)>,
    by: Vec<String>,
    /// Per interpretation, the ruleset it reads the calls under (`None`: as recorded).
    rulesets: Vec<(String, Option<String>)>,
    violations: Option<Violations>,
}

fn cell<'py>(py: Python<'py>, c: &Cell) -> PyResult<Bound<'py, PyAny>> {
    Ok(match c {
        Cell::Null => py.None().into_bound(py),
        Cell::Int(v) => v.into_pyobject(py)?.into_any(),
        Cell::Text(s) => PyString::new(py, s).into_any(),
    })
}

impl Report {
    /// What a compliance report drills down into; an error for other tables.
    fn drill(&self, what: &str) -> PyResult<&Violations> {
        self.violations.as_ref().ok_or_else(|| {
            invalid(
                what,
                format!(
                    "a {} table has no violations (only a compliance report has)",
                    self.kind
                ),
            )
        })
    }
}

#[pymethods]
impl Report {
    /// `"report"`, `"costs"`, `"scenario"`, `"scenario_costs"` or `"explain"`.
    #[getter]
    fn kind(&self) -> &str {
        self.kind
    }

    #[getter]
    fn columns(&self) -> Vec<String> {
        self.table.columns.clone()
    }

    /// The group-by dimensions (columns after `interpretation, clause` in a report).
    #[getter]
    fn by(&self) -> Vec<String> {
        self.by.clone()
    }

    /// What the rows were computed from: contract id, currency, since, until, ...
    #[getter]
    fn meta<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.meta {
            d.set_item(k, v.as_deref())?;
        }
        Ok(d)
    }

    /// Each interpretation of the contract (in row order) and the ruleset it reads the calls
    /// under, as the contract names it (`"strict"`, a file path, a name), or `None`: the
    /// classification stored in the ledger. Empty for a costs table.
    #[getter]
    fn rulesets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, ruleset) in &self.rulesets {
            d.set_item(name, ruleset.as_deref())?;
        }
        Ok(d)
    }

    /// The price table's currency (`meta["currency"]`), or `None`.
    #[getter]
    fn currency(&self) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| *k == "currency")
            .and_then(|(_, v)| v.as_deref())
    }

    /// One tuple per row, in column order.
    fn rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for r in &self.table.rows {
            let cells = r
                .iter()
                .map(|c| cell(py, c))
                .collect::<PyResult<Vec<_>>>()?;
            out.append(PyTuple::new(py, cells)?)?;
        }
        Ok(out)
    }

    /// One dict per row, keyed by column name.
    fn to_pylist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for r in &self.table.rows {
            let d = PyDict::new(py);
            for (name, c) in self.table.columns.iter().zip(r) {
                d.set_item(name, cell(py, c)?)?;
            }
            out.append(d)?;
        }
        Ok(out)
    }

    /// The contract a compliance report was computed from (`None` for other tables).
    #[getter]
    fn contract(&self) -> Option<Contract> {
        self.violations.as_ref().map(|v| Contract {
            inner: Arc::clone(&v.contract),
            source: None,
        })
    }

    /// Why `clause` has the violating figure it has under `interpretation`: its violating
    /// calls in this report's window grouped by agent, venue, model and the rule that tagged
    /// them (rule id, signal, explanation), with the number of sessions, the exact cost (with
    /// prices) and example session ids, most violating calls first. A `Report` of kind
    /// `"explain"`.
    fn explain(&self, py: Python<'_>, interpretation: &str, clause: &str) -> PyResult<Report> {
        let v = self.drill("explain")?;
        let (store, cols, contract, prices, window) = (
            Arc::clone(&v.store),
            Arc::clone(&v.cols),
            Arc::clone(&v.contract),
            v.prices.clone(),
            v.window,
        );
        let (i, c) = (interpretation.to_owned(), clause.to_owned());
        let table = py.detach(move || {
            crate::accounting::explain::explain_table(
                &store.lock(),
                &cols,
                &contract,
                prices.as_deref(),
                &i,
                &c,
                window,
            )
        })?;
        let mut meta = vec![
            ("contract", Some(v.contract.id.clone())),
            ("interpretation", Some(interpretation.to_owned())),
            ("clause", Some(clause.to_owned())),
        ];
        meta.extend(self.meta.iter().filter(|(k, _)| *k != "contract").cloned());
        Ok(Report {
            kind: "explain",
            table,
            meta,
            by: ["agent", "venue", "model", "rule"]
                .map(str::to_owned)
                .to_vec(),
            rulesets: Vec::new(),
            violations: None,
        })
    }

    /// The events that violate `clause` under `interpretation` in this report's window, as
    /// an `EventTable` (read back from the ledger).
    fn violations(
        &self,
        py: Python<'_>,
        interpretation: &str,
        clause: &str,
    ) -> PyResult<EventTable> {
        let v = self.drill("violations")?;
        let (store, cols, contract, window) = (
            Arc::clone(&v.store),
            Arc::clone(&v.cols),
            Arc::clone(&v.contract),
            v.window,
        );
        let (i, c) = (interpretation.to_owned(), clause.to_owned());
        let rows =
            py.detach(move || core::violations(&store.lock(), &cols, &contract, &i, &c, window))?;
        Ok(EventTable::new(rows))
    }

    fn __len__(&self) -> usize {
        self.table.rows.len()
    }

    /// The rows as dicts.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        self.to_pylist(py)?.try_iter()
    }

    /// `report[i]`: a row as a dict (a slice: a list of them).
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.to_pylist(py)?.as_any().get_item(index)
    }

    /// The Arrow PyCapsule stream interface, built in Rust: labels as
    /// `dictionary<int32, utf8>`, counts and `*_cost_nanos` as `int64` (`decimal128(38, 0)`
    /// for a column with a value beyond 64 bits).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyCapsule>> {
        super::arrow::stream(
            py,
            || crate::arrow::result::batches(&self.table),
            requested_schema,
        )
    }

    /// A `pandas.DataFrame` (`pip install statemeter[analysis]`): counts and money as
    /// nullable `Int64`, labels as `Categorical`; read from the Arrow stream.
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        py_modules::frames(slf.as_any(), "to_pandas")
    }

    /// A `pyarrow.Table` (`pip install statemeter[analysis]`).
    fn to_arrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        py_modules::frames(slf.as_any(), "to_arrow")
    }

    /// A `polars.DataFrame` (`pip install statemeter[analysis]`).
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        py_modules::frames(slf.as_any(), "to_polars")
    }

    /// The rows as CSV text (header = column names, None as an empty field). A text cell that
    /// starts like a spreadsheet formula (`=`, `+`, `-`, `@`, tab, CR) is prefixed with `'`
    /// (OWASP); numbers are left alone. `raw=True` writes every cell as it is.
    #[pyo3(signature = (*, raw = false))]
    fn to_csv(slf: &Bound<'_, Self>, raw: bool) -> PyResult<String> {
        py_modules::report(slf.py(), "to_csv", (slf, raw))?.extract()
    }

    /// HTML for Jupyter: a compliance report shows its interpretations side by side; money
    /// as exact decimal amounts; escaped and capped.
    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        py_modules::html(slf.as_any(), "report_html")
    }

    /// The caption and the first rows as text.
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        py_modules::report(slf.py(), "text", (slf,))?.extract()
    }

    /// A bar chart; returns the matplotlib `Axes` (requires `statemeter[plot]`).
    ///
    /// A report: covered vs violating per interpretation (and clause, when several), summed
    /// over the groups; `metric` is `"events"`, `"input_tokens"`, `"output_tokens"` or
    /// `"cost"` (in currency units). A costs table: `cost` per group. A scenario side:
    /// baseline vs scenario violating events (or `"cost"`) per interpretation.
    #[pyo3(signature = (metric = "events", ax = None))]
    fn plot<'py>(
        slf: &Bound<'py, Self>,
        metric: &str,
        ax: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        py_modules::report(slf.py(), "plot", (slf, metric, ax))
    }
}

/// A what-if scenario against the baseline: `compliance` (per interpretation, clause and
/// group: violating events and covered cost, baseline vs scenario, with deltas) and `costs`
/// (every billable event per group, baseline vs scenario). `to_pylist()` and `to_pandas()`
/// give the compliance rows.
#[pyclass(frozen, name = "Scenario", module = "statemeter")]
pub struct Scenario {
    name: String,
    compliance: Py<Report>,
    costs: Py<Report>,
    selected_events: u64,
    moved_events: u64,
}

#[pymethods]
impl Scenario {
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Compliance per interpretation, clause and group, baseline vs scenario.
    #[getter]
    fn compliance(&self, py: Python<'_>) -> Py<Report> {
        self.compliance.clone_ref(py)
    }

    /// Costs of every billable event per group, baseline vs scenario.
    #[getter]
    fn costs(&self, py: Python<'_>) -> Py<Report> {
        self.costs.clone_ref(py)
    }

    /// Events the selection matched inside the window.
    #[getter]
    fn selected_events(&self) -> u64 {
        self.selected_events
    }

    /// Selected events whose venue the scenario changed.
    #[getter]
    fn moved_events(&self) -> u64 {
        self.moved_events
    }

    /// The compliance rows as dicts.
    fn to_pylist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.compliance.get().to_pylist(py)
    }

    /// The compliance rows as a `pandas.DataFrame`.
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Report::to_pandas(self.compliance.bind(py))
    }

    /// The compliance side's chart ([`Report.plot`]).
    #[pyo3(signature = (metric = "events", ax = None))]
    fn plot<'py>(
        &self,
        py: Python<'py>,
        metric: &str,
        ax: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Report::plot(self.compliance.bind(py), metric, ax)
    }

    /// HTML for Jupyter: the selection, then both tables.
    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        py_modules::html(slf.as_any(), "scenario_html")
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Scenario({}, selected_events={}, moved_events={}, compliance={} rows, costs={} rows)",
            PyString::new(py, &self.name).repr()?,
            self.selected_events,
            self.moved_events,
            self.compliance.get().__len__(),
            self.costs.get().__len__(),
        ))
    }
}

pub fn window(
    since: Option<&Bound<'_, PyAny>>,
    until: Option<&Bound<'_, PyAny>>,
) -> PyResult<Window> {
    let w = Window {
        since: parse_time("since", since)?,
        until: parse_time("until", until)?,
    };
    w.check()?;
    Ok(w)
}

/// The ledger's id for `Report.meta["ledger_id"]`.
fn ledger_meta(
    py: Python<'_>,
    store: &Arc<Mutex<Store>>,
) -> PyResult<(&'static str, Option<String>)> {
    let store = Arc::clone(store);
    Ok(("ledger_id", py.detach(move || store.lock().ledger_id())?))
}

fn window_meta(w: Window) -> [(&'static str, Option<String>); 2] {
    [
        ("since", w.since.map(calendar::format_ts)),
        ("until", w.until.map(calendar::format_ts)),
    ]
}

/// `ledger.report(contract, prices=None, *, by=None, since=None, until=None)` -> `Report`.
pub fn report(
    py: Python<'_>,
    store: &Arc<Mutex<Store>>,
    contract: &Bound<'_, PyAny>,
    prices: Option<&Bound<'_, PyAny>>,
    by: Option<&Bound<'_, PyAny>>,
    since: Option<&Bound<'_, PyAny>>,
    until: Option<&Bound<'_, PyAny>>,
) -> PyResult<Report> {
    let contract = contract_arg(contract)?;
    let prices = prices_arg("prices", prices)?;
    let dims = parse_by(by)?;
    let w = window(since, until)?;
    let need = core::columns_needed(&contract, prices.is_some(), &dims);
    let cols = columns_for(py, store, need)?;
    let (c2, k2, p2, d2) = (
        Arc::clone(&cols),
        Arc::clone(&contract),
        prices.clone(),
        dims.clone(),
    );
    let table = py.detach(move || core::report_table(&c2, &k2, p2.as_deref(), &d2, w))?;
    let mut meta = vec![
        ("contract", Some(contract.id.clone())),
        ("currency", prices.as_ref().map(|p| p.currency.clone())),
    ];
    meta.extend(window_meta(w));
    meta.push(ledger_meta(py, store)?);
    Ok(Report {
        kind: "report",
        table,
        meta,
        by: dims.iter().map(|d| d.name().to_owned()).collect(),
        rulesets: contract.interpretation_rulesets(),
        violations: Some(Violations {
            store: Arc::clone(store),
            cols,
            contract,
            prices,
            window: w,
        }),
    })
}

/// `ledger.costs(prices, *, by=None, since=None, until=None)` -> `Report`.
pub fn costs(
    py: Python<'_>,
    store: &Arc<Mutex<Store>>,
    prices: &Bound<'_, PyAny>,
    by: Option<&Bound<'_, PyAny>>,
    since: Option<&Bound<'_, PyAny>>,
    until: Option<&Bound<'_, PyAny>>,
) -> PyResult<Report> {
    let prices = prices_arg("prices", Some(prices))?
        .ok_or_else(|| invalid("prices", "is required (a PriceTable or a price file)"))?;
    let dims = parse_by(by)?;
    let w = window(since, until)?;
    let table = py.detach(|| costing::costs_of(store, &COLUMNS, &prices, &dims, w))?;
    let mut meta = vec![("currency", Some(prices.currency.clone()))];
    meta.extend(window_meta(w));
    meta.push(ledger_meta(py, store)?);
    Ok(Report {
        kind: "costs",
        table,
        meta,
        by: dims.iter().map(|d| d.name().to_owned()).collect(),
        rulesets: Vec::new(),
        violations: None,
    })
}

/// `ledger.scenario(name, *, contract, select=None, venue=None, prices=None,
/// baseline_prices=None, by=None, since=None, until=None)` -> `Scenario`.
#[allow(clippy::too_many_arguments)]
pub fn scenario(
    py: Python<'_>,
    store: &Arc<Mutex<Store>>,
    name: String,
    contract: &Bound<'_, PyAny>,
    select: Option<&Bound<'_, PyAny>>,
    venue: Option<String>,
    prices: Option<&Bound<'_, PyAny>>,
    baseline_prices: Option<&Bound<'_, PyAny>>,
    by: Option<&Bound<'_, PyAny>>,
    since: Option<&Bound<'_, PyAny>>,
    until: Option<&Bound<'_, PyAny>>,
) -> PyResult<Scenario> {
    if venue.as_deref().is_some_and(|v| v.trim().is_empty()) {
        return Err(invalid("venue", "must not be empty"));
    }
    let contract = contract_arg(contract)?;
    let prices = prices_arg("prices", prices)?;
    let baseline_prices = prices_arg("baseline_prices", baseline_prices)?;
    let selection = parse_select(select)?;
    let dims = parse_by(by)?;
    let w = window(since, until)?;
    let cols = columns_of(py, store)?;
    let contract_inner = Arc::clone(&contract);
    let (p, b) = (prices.clone(), baseline_prices.clone());
    let (n2, v2, d2) = (name.clone(), venue.clone(), dims.clone());
    let result = py.detach(move || {
        let sc = scenario::Scenario {
            name: n2,
            selection,
            venue: v2,
            prices: p.as_deref(),
            baseline_prices: b.as_deref(),
        };
        scenario::run(&cols, &contract_inner, &sc, &d2, w)
    })?;
    let currency = prices.or(baseline_prices).map(|p| p.currency.clone());
    let mut meta = vec![
        ("scenario", Some(name.clone())),
        ("contract", Some(contract.id.clone())),
        ("venue", venue),
        ("currency", currency),
    ];
    meta.extend(window_meta(w));
    meta.push(ledger_meta(py, store)?);
    let by: Vec<String> = dims.iter().map(|d| d.name().to_owned()).collect();
    let compliance = Report {
        kind: "scenario",
        table: result.compliance,
        meta: meta.clone(),
        by: by.clone(),
        rulesets: contract.interpretation_rulesets(),
        violations: None,
    };
    let costs = Report {
        kind: "scenario_costs",
        table: result.costs,
        meta,
        by,
        rulesets: Vec::new(),
        violations: None,
    };
    Ok(Scenario {
        name,
        compliance: Py::new(py, compliance)?,
        costs: Py::new(py, costs)?,
        selected_events: result.selected_events,
        moved_events: result.moved_events,
    })
}
