//! OpenTelemetry bindings for `statemeter.integrations.otel`: the OTLP/JSON import mapping,
//! the export, and `_SpanMapper` (the live span processor's state). Logic lives in
//! `crate::otel`.

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{Map, Value};

use super::convert;
use super::venue::user_venues;
use crate::otel::{self, conventions, LiveTraces, Mapper, Outcome, Span};

/// Parses OTLP/JSON text (one document or JSON Lines) and maps its GenAI spans to validated
/// event mappings: `([event mapping, ...], {skip reason: spans})`. Raises `ValidationError`
/// naming the JSON path (or the span) of the first problem.
#[pyfunction]
#[pyo3(signature = (text, venues = None))]
pub fn _otel_import<'py>(
    py: Python<'py>,
    text: &str,
    venues: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyDict>)> {
    let venues = user_venues(venues)?;
    let (events, skipped) = py.detach(|| -> crate::Result<_> {
        let spans = otel::parse_otlp_json(text)?;
        Mapper::map_all_counted(venues, &spans)
    })?;
    let items = events
        .iter()
        .map(|e| convert::map_to_py(py, e))
        .collect::<PyResult<Vec<_>>>()?;
    let reasons = PyDict::new(py);
    for (reason, n) in skipped {
        reasons.set_item(reason, n)?;
    }
    Ok((PyList::new(py, items)?, reasons))
}

/// Builds an OTLP/JSON document (as a dict) from event rows (`Event.to_dict()` shapes).
#[pyfunction]
pub fn _otel_export<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyList>,
) -> PyResult<Bound<'py, PyAny>> {
    let rows = rows
        .iter()
        .enumerate()
        .map(|(i, r)| convert::to_map(&format!("events[{i}]"), &r))
        .collect::<PyResult<Vec<Map<String, Value>>>>()?;
    let doc = py.detach(|| otel::spans_from_events(&rows))?;
    convert::to_py(py, &doc)
}

/// The state of a live span processor: holds the spans of each trace as they end and maps them
/// together once the trace's last open span ended (`crate::otel::live`).
#[pyclass(frozen, module = "statemeter")]
pub struct _SpanMapper {
    inner: Mutex<LiveTraces>,
}

fn hex(v: u128, digits: usize) -> String {
    format!("{v:0digits$x}")
}

/// The attributes of a live span the mapping reads ([`conventions::reads_attribute`]; never
/// content), from a dict or the SDK's `BoundedAttributes` mapping.
fn attributes(attrs: Option<&Bound<'_, PyAny>>) -> PyResult<Map<String, Value>> {
    let mut out = Map::new();
    let Some(a) = attrs.filter(|a| !a.is_none()) else {
        return Ok(out);
    };
    let items = match a.downcast::<PyDict>() {
        Ok(d) => d.items(),
        Err(_) => a
            .call_method0("items")?
            .try_iter()?
            .collect::<PyResult<Vec<_>>>()
            .map(|v| PyList::new(a.py(), v))??,
    };
    for kv in items.iter() {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = kv.extract()?;
        let Ok(k) = k.downcast::<pyo3::types::PyString>() else {
            continue;
        };
        let Ok(key) = convert::utf8(k) else {
            continue;
        };
        if conventions::reads_attribute(key) {
            out.insert(key.to_owned(), convert::to_value(key, &v, 1)?);
        }
    }
    Ok(out)
}

/// Outcomes as Python values: an event mapping (a dict), the reason a span is not an event (a
/// str), the error mapping it raised (an exception instance, not raised), or `(event,
/// "joined")` for a span joined with a captured call and `(event, "captured")` for a captured
/// call that joined no span (recorded in its span's context; not a span).
fn outcomes<'py>(py: Python<'py>, mapped: otel::live::Mapped) -> PyResult<Bound<'py, PyList>> {
    let items = mapped
        .into_iter()
        .map(|(key, outcome)| -> PyResult<Bound<'py, PyAny>> {
            Ok(match outcome {
                Ok(Outcome::Event(ev)) if key.is_empty() => {
                    (convert::map_to_py(py, &ev)?, "captured")
                        .into_pyobject(py)?
                        .into_any()
                }
                Ok(Outcome::Joined(ev)) => (convert::map_to_py(py, &ev)?, "joined")
                    .into_pyobject(py)?
                    .into_any(),
                Ok(Outcome::Event(ev)) => convert::map_to_py(py, &ev)?.into_any(),
                Ok(Outcome::Skipped(reason)) => pyo3::types::PyString::new(py, reason).into_any(),
                Err(e) => PyErr::from(e).into_value(py).into_bound(py).into_any(),
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

#[pymethods]
impl _SpanMapper {
    #[new]
    #[pyo3(signature = (venues = None))]
    fn new(venues: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(_SpanMapper {
            inner: Mutex::new(LiveTraces::new(user_venues(venues)?)),
        })
    }

    /// Notes a started span of a trace (the SDK's integer trace id).
    fn start(&self, trace_id: u128) {
        self.inner.lock().start(&hex(trace_id, 32));
    }

    /// Takes an ended span (ids as the SDK's integers, `kind` the SDK's `SpanKind.value`):
    /// returns the outcomes of the spans mapped now (see `outcomes`), usually all the spans of
    /// the trace once its last open span ended, else none.
    #[pyo3(signature = (trace_id, span_id, parent_id, name, kind, start_ns, end_ns, status_code, status_message, attributes, service=None))]
    #[allow(clippy::too_many_arguments)]
    fn end<'py>(
        &self,
        py: Python<'py>,
        trace_id: u128,
        span_id: u64,
        parent_id: Option<u64>,
        name: String,
        kind: i64,
        start_ns: Option<i64>,
        end_ns: Option<i64>,
        status_code: i64,
        status_message: Option<String>,
        attributes: Option<&Bound<'py, PyAny>>,
        service: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut resource = Map::new();
        if let Some(s) = service {
            resource.insert("service.name".into(), Value::String(s));
        }
        let span = Span {
            trace_id: hex(trace_id, 32),
            span_id: hex(span_id as u128, 16),
            parent_span_id: parent_id.map(|p| hex(p as u128, 16)),
            name,
            kind: otel::kind_from_sdk(kind),
            start_ns: start_ns.unwrap_or(0),
            end_ns: end_ns.unwrap_or(0),
            status_code,
            status_message,
            attributes: self::attributes(attributes)?,
            resource,
        };
        let mapped = py.detach(|| self.inner.lock().end(span));
        outcomes(py, mapped)
    }

    /// Whether a span of the trace (the SDK's integer trace id) started here and the trace is
    /// not mapped yet: a call captured under it can be handed over with `attach`.
    fn is_open(&self, trace_id: u128) -> bool {
        self.inner.lock().is_open(&hex(trace_id, 32))
    }

    /// Hands over a call HTTP capture recorded (its event mapping) while span `span_id` of an
    /// open trace was current: it is joined with the span that describes the same call when the
    /// trace is mapped. `False`: not taken (the trace is not open here); record it yourself.
    fn attach(&self, trace_id: u128, span_id: u64, event: &Bound<'_, PyAny>) -> PyResult<bool> {
        let event = convert::to_map("event", event)?;
        Ok(self
            .inner
            .lock()
            .attach(&hex(trace_id, 32), &hex(span_id as u128, 16), event))
    }

    /// Maps every ended span still held (traces with open spans keep them open).
    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mapped = py.detach(|| self.inner.lock().flush());
        outcomes(py, mapped)
    }

    /// Spans started and not ended yet (for tests and diagnostics).
    fn __len__(&self) -> usize {
        self.inner.lock().held().0
    }

    /// `(open spans, ended spans held)` (for tests and diagnostics).
    fn held(&self) -> (usize, usize) {
        self.inner.lock().held()
    }
}
