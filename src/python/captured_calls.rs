//! `_CapturedCalls`: where one instrumented HTTP client's calls go (a session, or a meter
//! outside any session, with the client's host mappings). `record` hands one observed call
//! over raw (`crate::capture::call`): the meter's writer thread describes the request, reads
//! the usage and records the event, so the thread that sent the request only copies what it
//! saw (a request body in a `bytes` object not even that: it is held as it is).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::capture::{read_body, read_headers};
use super::convert::str_arg;
use super::errors::invalid;
use super::held_bytes::HeldBytes;
use super::meter::{Meter, Session, SessionFields};
use super::venue::{user_providers, user_venues};
use crate::capture::call::{CapturedCall, CapturedRequest, Held, Hosts, Outcome, ResponseBody};
use crate::event::Text;
use crate::meter::{Built, Deferred, Recorder};

#[pyclass(frozen, module = "statemeter._core", name = "_CapturedCalls")]
pub struct CapturedCalls {
    recorder: Arc<Recorder>,
    /// `None` for a meter: events outside any session. Shared with each call handed over (one
    /// reference count taken per call, not one per field).
    session: Option<Arc<SessionFields>>,
    hosts: Arc<Hosts>,
    /// The integration failures are counted under (`stats()["integration_errors"]`).
    source: Text,
}

#[pymethods]
impl CapturedCalls {
    /// `target` is a `Session` or a `Meter`; `venues` and `providers` map host patterns to
    /// venues and to the provider operating them; `source` names the integration.
    #[new]
    #[pyo3(signature = (target, source, venues = None, providers = None))]
    fn new(
        target: &Bound<'_, PyAny>,
        source: &str,
        venues: Option<&Bound<'_, PyAny>>,
        providers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (recorder, session) = if let Ok(s) = target.downcast::<Session>() {
            let (recorder, fields) = s.get().deferred_target();
            (recorder, Some(Arc::new(fields)))
        } else if let Ok(m) = target.downcast::<Meter>() {
            (m.get().recorder(), None)
        } else {
            return Err(invalid("target", "expected a statemeter Session or Meter"));
        };
        Ok(CapturedCalls {
            recorder,
            session,
            hosts: Arc::new(Hosts {
                venues: user_venues(venues)?,
                providers: user_providers(providers)?,
            }),
            source: source.into(),
        })
    }

    /// Hands over one call: the request's `method`, `url`, `headers` (a mapping or `(name,
    /// value)` pairs; only those the classifier reads are kept) and `body` (`None`: not read);
    /// when it was sent (`ts`, ns since the epoch) and how long until the body's end
    /// (`duration_ns`); the HTTP status, how reading ended (`outcome`: `complete`, `cancelled`
    /// or `error`), and the response body to read usage from with its `content_type` (both or
    /// neither), or why it was not read (`usage_unread`). Raises only on arguments of the
    /// wrong type; what the writer then finds wrong is counted in
    /// `stats()["integration_errors"]`.
    #[pyo3(signature = (method, url, headers, body, ts, duration_ns, http_status, outcome, content_type = None, response_body = None, usage_unread = None))]
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        py: Python<'_>,
        method: &Bound<'_, PyAny>,
        url: &Bound<'_, PyAny>,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
        ts: i64,
        duration_ns: i64,
        http_status: Option<i64>,
        outcome: &str,
        content_type: Option<&str>,
        response_body: Option<&Bound<'_, PyAny>>,
        usage_unread: Option<String>,
    ) -> PyResult<()> {
        let outcome = Outcome::parse(outcome).ok_or_else(|| {
            invalid(
                "outcome",
                format!("{outcome:?} is not one of complete, cancelled, error"),
            )
        })?;
        let request = CapturedRequest {
            method: str_arg(method)
                .map_err(|m| invalid("method", m))?
                .to_owned(),
            url: str_arg(url).map_err(|m| invalid("url", m))?.to_owned(),
            headers: read_headers(headers)?,
            body: match body.map(|b| b.downcast::<PyBytes>()) {
                Some(Ok(b)) => Some(Held::Shared(Box::new(HeldBytes::new(b)))),
                _ => read_body(body)?.map(|b| Held::Copied(b.into_owned())),
            },
        };
        let response = match (content_type, read_body(response_body)?, usage_unread) {
            (Some(ct), Some(b), _) => ResponseBody::Read {
                content_type: ct.to_owned(),
                body: b.into_owned(),
            },
            (_, _, Some(why)) => ResponseBody::Unread(why),
            _ => ResponseBody::Nothing,
        };
        self.hand_over(
            py,
            CapturedCall {
                request,
                hosts: Arc::clone(&self.hosts),
                ts,
                duration_ns,
                http_status,
                outcome,
                response,
            },
        )
    }
}

impl CapturedCalls {
    /// The client's host mappings.
    pub(super) fn hosts(&self) -> Arc<Hosts> {
        Arc::clone(&self.hosts)
    }

    /// Queues one call for the writer thread, which builds its event (or nothing, for a
    /// request that is no AI API).
    pub(super) fn hand_over(&self, py: Python<'_>, call: CapturedCall) -> PyResult<()> {
        let session = self.session.clone();
        let deferred = Deferred {
            source: Text::clone(&self.source),
            places: Deferred::places_for(1, call.held_bytes()),
            build: Box::new(move || {
                let Some(mut e) = call.event()? else {
                    return Ok(Built::default());
                };
                if let Some(fields) = &session {
                    fields.fill(&mut e);
                }
                Ok(Some(e).into())
            }),
        };
        let recorder = &self.recorder;
        match recorder.durability() {
            crate::ledger::Durability::Batch => {
                if let Err(back) = recorder.try_defer(deferred)? {
                    py.detach(|| recorder.defer(back))?;
                }
            }
            crate::ledger::Durability::Sync => {
                super::interrupt::detach(py, || recorder.defer(deferred))?
            }
        }
        Ok(())
    }
}
