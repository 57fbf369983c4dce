//! `_CaptureTransport`: the httpx capture's entry point for sync clients, a transport wrapping
//! the client's own. `statemeter.integrations.httpx` subclasses it with the client's
//! `BaseTransport` and puts it in place of the client's transports, so that a request passes
//! through one Rust method and runs no Python code of statemeter's: the send time is read,
//! the request goes to the wrapped transport, and its response's byte stream is wrapped in an
//! `_ObservedBody`. Calls the capture describes on the sending thread (a provider-managed
//! runtime's sessions and threads, calls a span processor may take, targets that are neither a
//! `Session` nor a `Meter`) and responses the Rust observer does not take go to the capture's
//! Python methods. Errors of the wrapped transport reach the caller unchanged; the capture's
//! own failures never do (they are counted by the capture, `failed(exc)`).

use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use super::captured_calls::CapturedCalls;
use super::errors::invalid;
use super::observed_body::{content_headers, perf_counter_ns, processors, url_text, ObservedBody};
use crate::capture::http::target;
use crate::capture::observed_body::ObservedBody as Kept;

#[pyclass(
    frozen,
    subclass,
    module = "statemeter._core",
    name = "_CaptureTransport"
)]
pub struct CaptureTransport {
    /// The transport wrapped, which sends the requests.
    #[pyo3(get)]
    inner: Py<PyAny>,
    /// The capture (`described`, `watch`, `failed`).
    #[pyo3(get)]
    capture: Py<PyAny>,
    /// Where the calls go; `None`: every call is described by the capture, in Python.
    calls: Option<Py<CapturedCalls>>,
    /// The response stream wrapper: a subclass of `_ObservedBody` and the client's stream type.
    body_cls: Py<PyType>,
}

#[pymethods]
impl CaptureTransport {
    /// Wraps `inner` for `capture`; calls go to `calls` (`None`: to the capture) and response
    /// bodies are observed through `body_cls` (a subclass of `_ObservedBody`).
    #[new]
    fn new(
        inner: Py<PyAny>,
        capture: Py<PyAny>,
        calls: Option<Py<CapturedCalls>>,
        body_cls: &Bound<'_, PyType>,
    ) -> PyResult<CaptureTransport> {
        if !body_cls.is_subclass_of::<ObservedBody>()? {
            return Err(invalid(
                "body_cls",
                "must be a subclass of statemeter._core._ObservedBody",
            ));
        }
        Ok(CaptureTransport {
            inner,
            capture,
            calls,
            body_cls: body_cls.clone().unbind(),
        })
    }

    /// Sends `request` through the wrapped transport and returns its response, whose body is
    /// observed as the caller reads it.
    fn handle_request<'py>(&self, request: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = request.py();
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let t0 = perf_counter_ns(py).unwrap_or(0);
        let capture = self.capture.bind(py);
        // The call handed to the writer at the body's end, with the URL's text read now.
        let handed = match &self.calls {
            Some(calls) => match handed_over(request) {
                Ok(url) => url.map(|url| (calls.bind(py), url)),
                Err(e) => {
                    failed(capture, e);
                    None
                }
            },
            None => None,
        };
        let send = intern!(py, "handle_request");
        let Some((calls, url)) = handed else {
            // Described now; `None` when it is no AI API call (or describing it failed).
            let item = capture
                .call_method1(intern!(py, "described"), (request, ts, t0))
                .unwrap_or_else(|e| {
                    failed(capture, e);
                    py.None().into_bound(py)
                });
            let response = self.inner.bind(py).call_method1(send, (request,))?;
            if !item.is_none() {
                watch(capture, &response, request, &item);
            }
            return Ok(response);
        };
        let response = self.inner.bind(py).call_method1(send, (request,))?;
        let sent = Sent {
            request,
            url,
            ts,
            t0,
        };
        match observe(capture, calls, self.body_cls.bind(py), &response, sent) {
            Ok(true) => {}
            Ok(false) => {
                let item = (request, py.None(), ts, t0, py.None());
                watch(
                    capture,
                    &response,
                    request,
                    &item.into_pyobject(py)?.into_any(),
                );
            }
            Err(e) => failed(capture, e),
        }
        Ok(response)
    }
}

/// A request handed to the writer at its body's end, as it was sent.
struct Sent<'a, 'py> {
    request: &'a Bound<'py, PyAny>,
    /// The URL's text.
    url: Bound<'py, PyString>,
    ts: i64,
    t0: i64,
}

/// The request's URL as text when the call is handed to the writer at its body's end; `None`
/// when it is described now: a span processor follows traces (it may take the call), or the
/// URL's path or query names runtime sessions or threads (`/sessions`, `/threads`: their
/// inner-step readers are chosen from the description).
fn handed_over<'py>(request: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyString>>> {
    let py = request.py();
    if !processors(py)?.is_empty() {
        return Ok(None);
    }
    let url = url_text(&request.getattr(intern!(py, "url"))?)?;
    Ok((!runtime_path(&url.to_cow()?)).then_some(url))
}

/// Whether the path or query of `url` (an absolute URL's text, as httpx writes it: path and
/// query percent-encoded as sent) names runtime sessions or threads: `/sessions` or `/threads`
/// after any `/` (looked for at each `/`, with the `memchr` the target was found with).
fn runtime_path(url: &str) -> bool {
    let target = target(url).as_bytes();
    memchr::memchr_iter(b'/', target).any(|i| {
        let rest = &target[i + 1..];
        rest.starts_with(b"sessions") || rest.starts_with(b"threads")
    })
}

/// Wraps the stream of `response` (body still to be read) in `cls`; `false`, changing
/// nothing, for a response already read or a body read for usage in a content encoding.
fn observe(
    capture: &Bound<'_, PyAny>,
    calls: &Bound<'_, CapturedCalls>,
    cls: &Bound<'_, PyType>,
    response: &Bound<'_, PyAny>,
    sent: Sent<'_, '_>,
) -> PyResult<bool> {
    let py = capture.py();
    if response
        .getattr(intern!(py, "is_stream_consumed"))?
        .is_truthy()?
        || response.getattr(intern!(py, "is_closed"))?.is_truthy()?
    {
        return Ok(false);
    }
    let (content_type, encoding) = content_headers(&response.getattr(intern!(py, "headers"))?)?;
    let body = Kept::new(&content_type);
    if body.reads() && !(encoding.is_empty() || encoding == "identity") {
        return Ok(false);
    }
    let status: i64 = response.getattr(intern!(py, "status_code"))?.extract()?;
    let inner = response.getattr(intern!(py, "stream"))?;
    let observed = ObservedBody::wrap(
        cls,
        capture,
        calls,
        inner,
        sent.request,
        sent.url,
        sent.ts,
        sent.t0,
        status,
        body,
    )?;
    response.setattr(intern!(py, "stream"), observed)?;
    Ok(true)
}

/// Has the capture observe `response` in Python (`watch(response, request, item)`).
fn watch(
    capture: &Bound<'_, PyAny>,
    response: &Bound<'_, PyAny>,
    request: &Bound<'_, PyAny>,
    item: &Bound<'_, PyAny>,
) {
    let py = capture.py();
    if let Err(e) = capture.call_method1(intern!(py, "watch"), (response, request, item)) {
        failed(capture, e);
    }
}

fn failed(capture: &Bound<'_, PyAny>, e: PyErr) {
    let py = capture.py();
    if let Err(e) = capture.call_method1(intern!(py, "failed"), (e.into_value(py),)) {
        e.write_unraisable(py, Some(capture));
    }
}
