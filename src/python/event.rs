//! `Event`: one recorded event, its classification and (when read from a ledger) its
//! `session_tag`.

use std::sync::Arc;

use pyo3::prelude::*;

use super::pyrepr;
use pyo3::types::{PyDict, PyList};

use super::classification::{evidence_list, kind_names, put_classification, Classification};
use super::convert::map_to_py;
use crate::event::Recorded;
use crate::event::Tag;

/// One recorded event. Immutable. Fields that do not belong to the event's kind are `None`.
/// `seq` is `None` until the event is written (batch mode writes in the background);
/// `session_tag` is derived when events are read from a ledger and is `None` on a freshly
/// recorded event.
#[pyclass(frozen, module = "statemeter")]
pub struct Event {
    pub rec: Arc<Recorded>,
    pub session_tag: Option<Tag>,
}

#[pymethods]
impl Event {
    #[getter]
    fn session_id(&self) -> Option<&str> {
        self.rec.event.session_id.as_deref()
    }
    #[getter]
    fn parent_id(&self) -> Option<&str> {
        self.rec.event.parent_id.as_deref()
    }
    #[getter]
    fn agent(&self) -> Option<&str> {
        self.rec.event.agent.as_deref()
    }
    #[getter]
    fn tenant(&self) -> Option<&str> {
        self.rec.event.tenant.as_deref()
    }
    #[getter]
    fn venue(&self) -> Option<&str> {
        self.rec.event.venue.as_deref()
    }
    #[getter]
    fn status(&self) -> Option<&str> {
        self.rec.event.status.as_deref()
    }
    #[getter]
    fn runtime(&self) -> Option<&str> {
        self.rec.event.runtime.as_deref()
    }
    #[getter]
    fn runtime_session_id(&self) -> Option<&str> {
        self.rec.event.runtime_session_id.as_deref()
    }
    #[getter]
    fn provider(&self) -> Option<&str> {
        self.rec.event.provider.as_deref()
    }
    #[getter]
    fn model(&self) -> Option<&str> {
        self.rec.event.model.as_deref()
    }
    #[getter]
    fn api(&self) -> Option<&str> {
        self.rec.event.api.as_deref()
    }
    #[getter]
    fn endpoint(&self) -> Option<&str> {
        self.rec.event.endpoint.as_deref()
    }
    #[getter]
    fn tool(&self) -> Option<&str> {
        self.rec.event.tool.as_deref()
    }
    #[getter]
    fn tool_kind(&self) -> Option<&str> {
        self.rec.event.tool_kind.as_deref()
    }
    #[getter]
    fn effect(&self) -> Option<&str> {
        self.rec.event.effect.as_deref()
    }
    #[getter]
    fn mcp_session_id(&self) -> Option<&str> {
        self.rec.event.mcp_session_id.as_deref()
    }
    #[getter]
    fn op(&self) -> Option<&str> {
        self.rec.event.op.as_deref()
    }
    #[getter]
    fn store(&self) -> Option<&str> {
        self.rec.event.store.as_deref()
    }
    #[getter]
    fn holder(&self) -> Option<&str> {
        self.rec.event.holder.as_deref()
    }
    #[getter]
    fn scope(&self) -> Option<&str> {
        self.rec.event.scope.as_deref()
    }
    #[getter]
    fn key(&self) -> Option<&str> {
        self.rec.event.key.as_deref()
    }
    #[getter]
    fn id(&self) -> &str {
        &self.rec.event.id
    }
    #[getter]
    fn seq(&self) -> Option<u64> {
        self.rec.seq()
    }
    #[getter]
    fn kind(&self) -> &'static str {
        self.rec.event.kind.as_str()
    }
    /// Nanoseconds since the Unix epoch.
    #[getter]
    fn ts(&self) -> i64 {
        self.rec.event.ts
    }
    #[getter]
    fn duration_ns(&self) -> Option<i64> {
        self.rec.event.duration_ns
    }
    #[getter]
    fn input_tokens(&self) -> Option<u64> {
        self.rec.event.input_tokens
    }
    #[getter]
    fn output_tokens(&self) -> Option<u64> {
        self.rec.event.output_tokens
    }
    #[getter]
    fn cached_tokens(&self) -> Option<u64> {
        self.rec.event.cached_tokens
    }
    #[getter]
    fn bytes(&self) -> Option<u64> {
        self.rec.event.bytes
    }
    #[getter]
    fn request<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.rec
            .event
            .request
            .as_ref()
            .map(|r| map_to_py(py, r))
            .transpose()
    }
    #[getter]
    fn attrs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        map_to_py(py, &self.rec.event.attrs)
    }
    #[getter]
    fn tag(&self) -> &'static str {
        self.rec.classification().tag.as_str()
    }
    #[getter]
    fn consumes_state(&self) -> bool {
        self.rec.classification().consumes_state
    }
    #[getter]
    fn creates_state(&self) -> bool {
        self.rec.classification().creates_state
    }
    #[getter]
    fn state_holder(&self) -> Option<&'static str> {
        self.rec.classification().state_holder.map(|h| h.as_str())
    }
    /// The kinds of state the event consumes, creates or acts on: sorted, unique.
    #[getter]
    fn state_kinds(&self) -> Vec<&'static str> {
        kind_names(self.rec.classification().state_kinds)
    }
    #[getter]
    fn evidence<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        evidence_list(py, self.rec.classification())
    }
    /// The name of the ruleset that classified the event.
    #[getter]
    fn ruleset(&self) -> &str {
        &self.rec.classification().ruleset
    }
    /// The digest of that ruleset's evidence catalogue (`Ruleset.digest`).
    #[getter]
    fn ruleset_digest(&self) -> &str {
        &self.rec.classification().ruleset_digest
    }
    #[getter]
    fn classification(&self) -> Classification {
        Classification {
            inner: self.rec.classification().clone(),
        }
    }
    #[getter]
    fn session_tag(&self) -> Option<&'static str> {
        self.session_tag.map(Tag::as_str)
    }

    /// The event as a dict: its record fields, `seq`, the classification and `session_tag`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        row_dict(py, &self.rec, self.session_tag)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.downcast::<Event>().is_ok_and(|o| {
            let o = o.get();
            Arc::ptr_eq(&o.rec, &self.rec)
                || (o.rec.event.id == self.rec.event.id
                    && o.rec.event.to_map() == self.rec.event.to_map())
        })
    }

    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        super::py_modules::html(slf.as_any(), "event_html")
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.rec.event.id.hash(&mut h);
        h.finish()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let e = &self.rec.event;
        let what = match (&e.provider, &e.tool, &e.op) {
            (Some(p), _, _) => format!(
                " provider={} model={} api={}",
                pyrepr::text(py, p),
                pyrepr::opt_text(py, e.model.as_deref()),
                pyrepr::opt_text(py, e.api.as_deref())
            ),
            (_, Some(t), _) => format!(" tool={}", pyrepr::text(py, t)),
            (_, _, Some(op)) => format!(
                " op={} store={}",
                pyrepr::text(py, op),
                pyrepr::opt_text(py, e.store.as_deref())
            ),
            _ => String::new(),
        };
        format!(
            "<Event seq={} {}{} tag={}{}>",
            self.rec
                .seq()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "pending".into()),
            e.kind.as_str(),
            what,
            pyrepr::text(py, self.rec.classification().tag.as_str()),
            self.session_tag
                .map(|t| format!(" session_tag={}", pyrepr::text(py, t.as_str())))
                .unwrap_or_default()
        )
    }
}

/// One event as a flat dict (the row shape of `EventTable.to_pylist()`).
pub fn row_dict<'py>(
    py: Python<'py>,
    rec: &Recorded,
    session_tag: Option<Tag>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = map_to_py(py, &rec.event.to_map())?;
    d.set_item("seq", rec.seq())?;
    put_classification(&d, rec.classification())?;
    d.set_item("session_tag", session_tag.map(Tag::as_str))?;
    Ok(d)
}
