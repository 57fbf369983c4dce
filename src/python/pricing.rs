//! `PriceTable`: exact prices per model, runtime and store (see docs/contracts.md).

use std::sync::Arc;

use pyo3::prelude::*;

use super::pyrepr;
use pyo3::types::{PyDict, PyList};

use super::convert;
use super::event::Event as PyEvent;
use crate::accounting::calendar;
use crate::accounting::pricing::{self as core, Period};
use crate::error::Error;
use crate::event::{Event, EventKind};

/// Prices read from TOML: decimal strings per million tokens (`[[price]]`), per
/// session-hour of a provider-managed runtime (`[[runtime_price]]`) and per stored GB-month
/// (`[[storage_price]]`). Costs are exact integers in nano-units of `currency`.
#[pyclass(frozen, module = "statemeter")]
pub struct PriceTable {
    pub inner: Arc<core::PriceTable>,
    /// The TOML it was read from (for pickling).
    pub source: Option<String>,
}

fn period(d: &Bound<'_, PyDict>, p: Period) -> PyResult<()> {
    d.set_item("effective_from", p.from.map(calendar::format_ts))?;
    d.set_item("effective_until", p.until.map(calendar::format_ts))
}

#[pymethods]
impl PriceTable {
    /// Parses price TOML text. Raises `ContractError`.
    #[staticmethod]
    fn from_toml(text: &Bound<'_, PyAny>) -> PyResult<Self> {
        let text =
            convert::str_arg(text).map_err(|m| Error::Contract(format!("prices: text {m}")))?;
        Ok(PriceTable {
            inner: Arc::new(core::PriceTable::from_toml(text)?),
            source: Some(text.to_owned()),
        })
    }

    /// Reads a price TOML file. Raises `ContractError`.
    #[staticmethod]
    fn load(path: std::path::PathBuf) -> PyResult<Self> {
        Ok(PriceTable {
            inner: Arc::new(core::PriceTable::load(&path)?),
            source: std::fs::read_to_string(&path).ok(),
        })
    }

    /// Pickling (a Spark task receives the prices this way): built again from its TOML.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        match &slf.get().source {
            Some(text) => Ok((slf.get_type().getattr("from_toml")?, (text.clone(),))),
            None => Err(pyo3::exceptions::PyTypeError::new_err(
                "this PriceTable cannot be pickled: its TOML is not known",
            )),
        }
    }

    #[getter]
    fn currency(&self) -> &str {
        &self.inner.currency
    }

    #[getter]
    fn title(&self) -> Option<&str> {
        self.inner.title.as_deref()
    }

    /// The date the prices were taken (`YYYY-MM-DD`), if the file says.
    #[getter]
    fn as_of(&self) -> Option<&str> {
        self.inner.as_of.as_deref()
    }

    /// Every entry as a dict (`kind` is `price`, `runtime_price` or `storage_price`; amounts
    /// as decimal strings, exactly as written).
    #[getter]
    fn entries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for p in &self.inner.prices {
            let d = PyDict::new(py);
            d.set_item("kind", "price")?;
            d.set_item("provider", &p.provider)?;
            d.set_item("model", &p.model)?;
            d.set_item("venue", p.venue.as_deref())?;
            period(&d, p.period)?;
            d.set_item("input_per_mtok", p.input_per_mtok.to_string())?;
            d.set_item("cached_input_per_mtok", p.cached_input_per_mtok.to_string())?;
            d.set_item("output_per_mtok", p.output_per_mtok.to_string())?;
            d.set_item("per_call", p.per_call.to_string())?;
            d.set_item("line", p.line)?;
            out.append(d)?;
        }
        for p in &self.inner.runtime_prices {
            let d = PyDict::new(py);
            d.set_item("kind", "runtime_price")?;
            d.set_item("runtime", &p.runtime)?;
            d.set_item("venue", p.venue.as_deref())?;
            period(&d, p.period)?;
            d.set_item("per_session_hour", p.per_session_hour.to_string())?;
            d.set_item("line", p.line)?;
            out.append(d)?;
        }
        for p in &self.inner.storage_prices {
            let d = PyDict::new(py);
            d.set_item("kind", "storage_price")?;
            d.set_item("store", &p.store)?;
            period(&d, p.period)?;
            d.set_item("per_gb_month", p.per_gb_month.to_string())?;
            d.set_item("line", p.line)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// The cost in nano-units of one `model_call` (an `Event` or a raw event mapping), or
    /// `None` when no price matches. Exactly what reports sum for that event.
    fn cost(&self, event: &Bound<'_, PyAny>) -> PyResult<Option<u128>> {
        let owned: Event;
        let e: &Event = if let Ok(ev) = event.downcast::<PyEvent>() {
            owned = ev.get().rec.event.clone();
            &owned
        } else {
            owned = Event::from_map(&convert::to_map("event", event)?)?.finish()?;
            &owned
        };
        if e.kind != EventKind::ModelCall {
            return Err(Error::validation("kind", "cost() prices model_call events").into());
        }
        let tokens = (
            e.input_tokens.unwrap_or(0),
            e.cached_tokens.unwrap_or(0),
            e.output_tokens.unwrap_or(0),
        );
        if tokens.1 > tokens.0 {
            return Err(Error::validation("cached_tokens", "exceeds input_tokens").into());
        }
        let (Some(p), Some(m)) = (e.provider.as_deref(), e.model.as_deref()) else {
            return Ok(None);
        };
        Ok(self
            .inner
            .call_cost(p, m, e.venue.as_deref(), e.ts, tokens)?)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "PriceTable(currency={}, prices={}, runtime_prices={}, storage_prices={}{})",
            pyrepr::text(py, &self.inner.currency),
            self.inner.prices.len(),
            self.inner.runtime_prices.len(),
            self.inner.storage_prices.len(),
            self.inner
                .as_of
                .as_ref()
                .map(|d| format!(", as_of={}", pyrepr::text(py, d)))
                .unwrap_or_default()
        )
    }
}
