//! The httpx capture's event hooks for sync clients, in Rust so that a request's hooks run no
//! Python code of statemeter's (`statemeter.integrations.httpx` binds them with
//! `functools.partial`): `_httpx_sent` notes when a request was sent, `_httpx_received` wraps
//! its response's byte stream in an `_ObservedBody`. Calls the capture describes on the sending
//! thread (a provider-managed runtime's sessions and threads, calls a span processor may take)
//! and responses the Rust observer does not take go back to the capture's Python methods.
//! Neither hook raises: failures are counted by the capture (`failed(exc)`).

use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyWeakrefMethods, PyWeakrefReference};

use super::captured_calls::CapturedCalls;
use super::observed_body::{content_headers, perf_counter_ns, processors};
use crate::capture::observed_body::ObservedBody as Kept;

/// Pending requests below which those that will never get a response are not looked for (past
/// it, the capture's own `prune_at` says when: `prune()` drops them).
const PRUNE_AT: usize = 256;

/// The request hook: notes `request` in `pending` (by `id()`: a weak reference, the event
/// `None` until described, the wall-clock and `perf_counter_ns` times, no span), or has the
/// capture describe it now (`pending_described`).
#[pyfunction]
pub fn _httpx_sent(
    capture: &Bound<'_, PyAny>,
    pending: &Bound<'_, PyDict>,
    request: &Bound<'_, PyAny>,
) {
    if let Err(e) = sent(capture, pending, request) {
        failed(capture, e);
    }
}

fn sent(
    capture: &Bound<'_, PyAny>,
    pending: &Bound<'_, PyDict>,
    request: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = capture.py();
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let t0 = perf_counter_ns(py)?;
    if !processors(py)?.is_empty() || runtime_path(&request.getattr(intern!(py, "url"))?)? {
        capture.call_method1(intern!(py, "pending_described"), (request, ts, t0))?;
        return Ok(());
    }
    if pending.len() >= PRUNE_AT {
        capture.call_method0(intern!(py, "prune"))?;
    }
    let item = PyTuple::new(
        py,
        [
            PyWeakrefReference::new(request)?.into_any(),
            py.None().into_bound(py),
            ts.into_pyobject(py)?.into_any(),
            t0.into_pyobject(py)?.into_any(),
            py.None().into_bound(py),
        ],
    )?;
    pending.set_item(request.as_ptr() as usize, item)
}

/// Whether the URL's path or query names runtime sessions or threads (`/sessions`,
/// `/threads`): those requests are described when sent. Read from the parsed parts httpx
/// keeps (`_uri_reference`: the path and query, percent-encoded as sent), or `raw_path`.
fn runtime_path(url: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = url.py();
    let has = |s: &[u8]| {
        memchr::memmem::find(s, b"/sessions").is_some()
            || memchr::memmem::find(s, b"/threads").is_some()
    };
    if let Ok(parts) = url.getattr(intern!(py, "_uri_reference")) {
        let path = parts.getattr(intern!(py, "path"))?;
        let query = parts.getattr(intern!(py, "query"))?;
        if let Ok(path) = path.downcast::<PyString>() {
            if query.is_none() {
                return Ok(has(path.to_cow()?.as_bytes()));
            }
            if let Ok(query) = query.downcast::<PyString>() {
                return Ok(has(path.to_cow()?.as_bytes()) || has(query.to_cow()?.as_bytes()));
            }
        }
    }
    let raw = url.getattr(intern!(py, "raw_path"))?;
    Ok(has(raw.extract::<&[u8]>()?))
}

/// The response hook: takes the request's entry out of `pending` and wraps the response's
/// stream in `cls` (a subclass of `_ObservedBody` and the client's stream type); the capture's
/// `watch(response, item)` takes responses this does not (requests described when sent,
/// responses already read, bodies read for usage in a content encoding).
#[pyfunction]
pub fn _httpx_received(
    capture: &Bound<'_, PyAny>,
    calls: &Bound<'_, CapturedCalls>,
    pending: &Bound<'_, PyDict>,
    cls: &Bound<'_, PyAny>,
    response: &Bound<'_, PyAny>,
) {
    if let Err(e) = received(capture, calls, pending, cls, response) {
        failed(capture, e);
    }
}

fn received(
    capture: &Bound<'_, PyAny>,
    calls: &Bound<'_, CapturedCalls>,
    pending: &Bound<'_, PyDict>,
    cls: &Bound<'_, PyAny>,
    response: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = capture.py();
    let request = sent_request(response)?;
    let key = request.as_ptr() as usize;
    let Some(item) = pending.get_item(key)? else {
        return Ok(());
    };
    pending.del_item(key)?;
    let item = item.downcast_into::<PyTuple>()?;
    let noted = item.get_item(0)?;
    let same = noted
        .downcast::<PyWeakrefReference>()?
        .upgrade()
        .is_some_and(|r| r.is(&request));
    if !same {
        return Ok(());
    }
    if item.get_item(1)?.is_none() {
        let ts: i64 = item.get_item(2)?.extract()?;
        let t0: i64 = item.get_item(3)?.extract()?;
        if observe(capture, calls, cls, response, &request, ts, t0)? {
            return Ok(());
        }
    }
    capture.call_method1(intern!(py, "watch"), (response, item))?;
    Ok(())
}

/// The request `response` answers: httpx keeps it in `_request` (the public `request` is a
/// Python property over it, which raises when it is unset).
fn sent_request<'py>(response: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = response.py();
    match response.getattr(intern!(py, "_request")) {
        Ok(r) if !r.is_none() => Ok(r),
        _ => response.getattr(intern!(py, "request")),
    }
}

/// Wraps the stream of `response` (body still to be read) in `cls`; `false`, changing
/// nothing, for a response already read or a body read for usage in a content encoding.
fn observe(
    capture: &Bound<'_, PyAny>,
    calls: &Bound<'_, CapturedCalls>,
    cls: &Bound<'_, PyAny>,
    response: &Bound<'_, PyAny>,
    request: &Bound<'_, PyAny>,
    ts: i64,
    t0: i64,
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
    let observed = cls.call1((
        capture,
        calls,
        inner,
        request,
        ts,
        t0,
        status,
        body.reads().then_some(content_type),
    ))?;
    response.setattr(intern!(py, "stream"), observed)?;
    Ok(true)
}

fn failed(capture: &Bound<'_, PyAny>, e: PyErr) {
    let py = capture.py();
    if let Err(e) = capture.call_method1(intern!(py, "failed"), (e.into_value(py),)) {
        e.write_unraisable(py, Some(capture));
    }
}
