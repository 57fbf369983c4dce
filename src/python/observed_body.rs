//! `_ObservedBody`: an httpx response's byte stream as the httpx capture wraps it
//! (`crate::capture::observed_body`), and what it reads of httpx's requests and responses. The
//! capture subclasses it together with the client's own stream type (httpx checks the stream's
//! type), so that iterating the body runs no Python code of statemeter's: each chunk is kept
//! for usage as it passes, and at the body's end (or when the caller closes it) the call is
//! handed to the meter's writer thread ([`CapturedCalls::hand_over`]) as it was observed.

use parking_lot::Mutex;
use pyo3::impl_::pyclass_init::PyObjectInit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pyclass_init::PyClassInitializer;
use pyo3::sync::PyOnceLock;
use pyo3::type_object::PyTypeInfo;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyList, PySet, PyString, PyTuple, PyType};

use super::capture::{read_body, read_headers};
use super::captured_calls::CapturedCalls;
use super::convert::str_arg;
use super::errors::invalid;
use super::held_bytes::HeldBytes;
use crate::capture::call::{CapturedCall, CapturedRequest, Held, Outcome, ResponseBody};
use crate::capture::http::HEADERS_READ;
use crate::capture::observed_body::ObservedBody as Kept;

/// The call still to hand over, and what was kept of its body.
struct State {
    iter: Option<Py<PyIterator>>,
    request: Option<Py<PyAny>>,
    body: Kept,
}

#[pyclass(frozen, subclass, module = "statemeter._core", name = "_ObservedBody")]
pub struct ObservedBody {
    /// The byte stream wrapped.
    inner: Py<PyAny>,
    /// The capture (`failed(exc)`, `finish_described(...)`).
    capture: Py<PyAny>,
    calls: Py<CapturedCalls>,
    /// The request's URL as text, read when it was sent.
    url: Py<PyString>,
    ts: i64,
    t0: i64,
    status: i64,
    state: Mutex<State>,
}

#[pymethods]
impl ObservedBody {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// The next chunk of the wrapped stream, kept as it passes; at the end (or on an error)
    /// the call is handed over.
    fn __next__<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        let this = slf.get();
        let iter = this.state.lock().iter.as_ref().map(|i| i.clone_ref(py));
        let iter = match iter {
            Some(i) => i.into_bound(py),
            None => match this.inner.bind(py).try_iter() {
                Ok(i) => {
                    this.state.lock().iter = Some(i.clone().unbind());
                    i
                }
                Err(e) => {
                    this.finish(py, Outcome::Error);
                    return Err(e);
                }
            },
        };
        // The lock is never held while Python code runs (the stream's own, here).
        match iter.clone().next() {
            Some(Ok(chunk)) => {
                if let Ok(b) = chunk.downcast::<PyBytes>() {
                    this.state.lock().body.feed(b.as_bytes());
                } else {
                    match read_body(Some(&chunk)) {
                        Ok(Some(b)) => this.state.lock().body.feed(&b),
                        Ok(None) => {}
                        Err(e) => {
                            this.state.lock().body.stop();
                            this.failed(py, e);
                        }
                    }
                }
                Ok(Some(chunk))
            }
            Some(Err(e)) => {
                this.finish(py, Outcome::Error);
                Err(e)
            }
            None => {
                this.finish(py, Outcome::Complete);
                Ok(None)
            }
        }
    }

    /// Closes the wrapped stream; a call not read to its end is cancelled (complete when an
    /// event stream had reached its provider's end marker).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let closed = self.inner.bind(py).call_method0(intern!(py, "close"));
        self.finish(py, Outcome::Cancelled);
        closed.map(drop)
    }
}

impl ObservedBody {
    /// Wraps `inner`, the byte stream of the response to `request` (its URL's text `url`; sent
    /// at `ts`, ns since the epoch, and `t0`, `time.perf_counter_ns()`) with HTTP `status`,
    /// keeping its body in `body`, as an instance of `cls`: the capture's subclass of
    /// `_ObservedBody` and the client's stream type. Made here rather than by calling `cls`:
    /// no argument tuple, no Python integers and no argument parsing per response.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn wrap<'py>(
        cls: &Bound<'py, PyType>,
        capture: &Bound<'py, PyAny>,
        calls: &Bound<'py, CapturedCalls>,
        inner: Bound<'py, PyAny>,
        request: &Bound<'py, PyAny>,
        url: Bound<'py, PyString>,
        ts: i64,
        t0: i64,
        status: i64,
        body: Kept,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let base = ObservedBody::type_object_raw(py);
        let target = cls.as_type_ptr();
        // SAFETY: both are valid type objects (`cls` is borrowed, the base lives as long as
        // the module); `PyType_IsSubtype` only reads their MRO.
        if unsafe { pyo3::ffi::PyType_IsSubtype(target, base) } == 0 {
            return Err(invalid(
                "body_cls",
                "must be a subclass of statemeter._core._ObservedBody",
            ));
        }
        let value = ObservedBody {
            inner: inner.unbind(),
            capture: capture.clone().unbind(),
            calls: calls.clone().unbind(),
            url: url.unbind(),
            ts,
            t0,
            status,
            state: Mutex::new(State {
                iter: None,
                request: Some(request.clone().unbind()),
                body,
            }),
        };
        // SAFETY: `target` is `_ObservedBody` or a subclass of it (checked above, on this
        // call, so a class whose bases changed since cannot slip through), which is what
        // `into_new_object` requires: it allocates the object with the subclass's own
        // `tp_alloc` (as calling the class would) and writes `value` into the part of its
        // layout that `_ObservedBody` owns. The pointer it returns is a new, owned reference.
        unsafe {
            let obj = PyObjectInit::into_new_object(PyClassInitializer::from(value), py, target)?;
            Ok(Bound::from_owned_ptr(py, obj))
        }
    }

    /// Hands the call over once; never raises (failures are counted by the capture).
    fn finish(&self, py: Python<'_>, outcome: Outcome) {
        let (request, body) = {
            let mut st = self.state.lock();
            let Some(request) = st.request.take() else {
                return;
            };
            st.iter = None;
            (request, std::mem::take(&mut st.body))
        };
        let outcome = if outcome != Outcome::Complete && body.event_stream() && body.ended() {
            Outcome::Complete
        } else {
            outcome
        };
        if let Err(e) = self.hand_over(py, request.bind(py), body, outcome) {
            self.failed(py, e);
        }
    }

    fn hand_over(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        body: Kept,
        outcome: Outcome,
    ) -> PyResult<()> {
        let end = perf_counter_ns(py)?;
        if !processors(py)?.is_empty() {
            // A span processor started following traces meanwhile: it may take the call,
            // which the capture then describes and records itself.
            let (content_type, response_body, unread) = match body.into_response() {
                ResponseBody::Read { content_type, body } => {
                    (Some(content_type), Some(PyBytes::new(py, &body)), None)
                }
                ResponseBody::Unread(why) => (None, None, Some(why)),
                ResponseBody::Nothing => (None, None, None),
            };
            let args = (
                request,
                self.ts,
                end - self.t0,
                self.status,
                outcome_name(outcome),
                content_type,
                response_body,
                unread,
            );
            self.capture
                .bind(py)
                .call_method1(intern!(py, "finish_described"), args)?;
            return Ok(());
        }
        let calls = self.calls.get();
        calls.hand_over(
            py,
            CapturedCall {
                request: captured_request(request, self.url.bind(py))?,
                hosts: calls.hosts(),
                ts: self.ts,
                duration_ns: end - self.t0,
                http_status: Some(self.status),
                outcome,
                response: body.into_response(),
            },
        )
    }

    fn failed(&self, py: Python<'_>, e: PyErr) {
        let exc = e.into_value(py);
        if let Err(e) = self
            .capture
            .bind(py)
            .call_method1(intern!(py, "failed"), (exc,))
        {
            e.write_unraisable(py, Some(self.capture.bind(py)));
        }
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Complete => "complete",
        Outcome::Cancelled => "cancelled",
        Outcome::Error => "error",
    }
}

static PROCESSORS: PyOnceLock<Py<PySet>> = PyOnceLock::new();

/// `time.perf_counter_ns()`: the clock the request's `t0` was read from (the capture's Python
/// path reads it there). On Linux that clock is `CLOCK_MONOTONIC`, read here without calling
/// into Python (a call per hook otherwise).
#[cfg(target_os = "linux")]
#[allow(clippy::useless_conversion)] // `time_t` and `c_long` are 32 bits on some Linux targets
pub(super) fn perf_counter_ns(_py: Python<'_>) -> PyResult<i64> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; CLOCK_MONOTONIC is always available on Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(i64::from(t.tv_sec) * 1_000_000_000 + i64::from(t.tv_nsec))
}

/// `time.perf_counter_ns()`: the clock the request's `t0` was read from (the capture's Python
/// path reads it there).
#[cfg(not(target_os = "linux"))]
pub(super) fn perf_counter_ns(py: Python<'_>) -> PyResult<i64> {
    static PERF_COUNTER_NS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    PERF_COUNTER_NS
        .get_or_try_init(py, || {
            py.import("time")
                .and_then(|m| m.getattr("perf_counter_ns"))
                .map(Bound::unbind)
        })?
        .bind(py)
        .call0()?
        .extract()
}

/// The span processors capture may hand calls to (`statemeter.integrations._join`: the weak
/// set's own set, read without a call).
pub(super) fn processors(py: Python<'_>) -> PyResult<&Bound<'_, PySet>> {
    PROCESSORS
        .get_or_try_init(py, || {
            py.import("statemeter.integrations._join")?
                .getattr("_processors")?
                .getattr("data")?
                .downcast_into::<PySet>()
                .map(Bound::unbind)
                .map_err(PyErr::from)
        })
        .map(|s| s.bind(py))
}

/// The request as sent: method, URL (its text `url`, read when it was sent), the headers the
/// classifier reads and the body (`None` when it was streamed and not read).
fn captured_request(
    request: &Bound<'_, PyAny>,
    url: &Bound<'_, PyString>,
) -> PyResult<CapturedRequest> {
    let py = request.py();
    let method = request.getattr(intern!(py, "method"))?;
    let headers = request.getattr(intern!(py, "headers"))?;
    // The body httpx read (`content` is a property over it that raises when it was not):
    // `bytes`, held as they are.
    let body = match request
        .getattr(intern!(py, "_content"))
        .or_else(|_| request.getattr(intern!(py, "content")))
    {
        Ok(b) => match b.downcast::<PyBytes>() {
            Ok(b) => Some(Held::Shared(Box::new(HeldBytes::new(b)))),
            Err(_) => read_body(Some(&b))?.map(|b| Held::Copied(b.into_owned())),
        },
        Err(_) => None, // a streamed (e.g. multipart file) body not read: not read
    };
    Ok(CapturedRequest {
        method: str_arg(&method)
            .map_err(|m| invalid("method", m))?
            .to_owned(),
        url: str_arg(url.as_any())
            .map_err(|m| invalid("url", m))?
            .to_owned(),
        headers: request_headers(&headers)?,
        body,
    })
}

static URLS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
/// URLs kept as text, past which the cache starts again.
const URLS_KEPT: usize = 256;

/// `str(url)`. httpx builds it from the parsed parts it keeps (`_uri_reference`, a named
/// tuple) in Python on every call; the text of recent parts is kept, by those parts.
pub(super) fn url_text<'py>(url: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let py = url.py();
    let Ok(parts) = url.getattr(intern!(py, "_uri_reference")) else {
        return url.str();
    };
    if !parts.is_instance_of::<PyTuple>() {
        return url.str();
    }
    let cache = URLS.get_or_init(py, || PyDict::new(py).unbind()).bind(py);
    match cache.get_item(&parts) {
        Ok(Some(text)) => {
            if let Ok(text) = text.downcast_into::<PyString>() {
                return Ok(text);
            }
        }
        Ok(None) => {}
        Err(_) => return url.str(), // parts that do not hash
    }
    let text = url.str()?;
    if cache.len() >= URLS_KEPT {
        cache.clear();
    }
    cache.set_item(parts, &text)?;
    Ok(text)
}

/// httpx `Headers` keep `(raw name, lowercased name, value)` byte triples in `_list`: read in
/// place (the public `raw` builds a list of pairs first), in one pass. Calls `take(lowercased
/// name, raw name, value)` for each, or returns `false` having stopped at the first entry of
/// any other shape (the caller then reads `raw`).
fn each_triple<'py>(
    headers: &Bound<'py, PyAny>,
    mut take: impl FnMut(&[u8], &Bound<'py, PyTuple>) -> PyResult<()>,
) -> PyResult<bool> {
    let Ok(list) = headers.getattr(intern!(headers.py(), "_list")) else {
        return Ok(false);
    };
    let Ok(list) = list.downcast_into::<PyList>() else {
        return Ok(false);
    };
    for t in list.iter() {
        let Ok(t) = t.downcast_into::<PyTuple>() else {
            return Ok(false);
        };
        if t.len() != 3 {
            return Ok(false);
        }
        let lower = t.get_borrowed_item(1)?;
        let Ok(lower) = lower.downcast::<PyBytes>() else {
            return Ok(false);
        };
        take(lower.as_bytes(), &t)?;
    }
    Ok(true)
}

/// Item `i` of a header triple, read as bytes (a `TypeError` for anything else).
fn triple_bytes<R>(t: &Bound<'_, PyTuple>, i: usize, read: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    let item = t.get_borrowed_item(i)?;
    Ok(read(item.downcast::<PyBytes>()?.as_bytes()))
}

/// The request headers the classifier reads (no other is copied).
fn request_headers(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    let read = each_triple(headers, |lower, t| {
        if HEADERS_READ.iter().any(|r| r.as_bytes() == lower) {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            out.push((triple_bytes(t, 0, text)?, triple_bytes(t, 2, text)?));
        }
        Ok(())
    })?;
    if read {
        return Ok(out);
    }
    read_headers(Some(&headers.getattr(intern!(headers.py(), "raw"))?))
}

/// The response's content type and content encoding, lowercased (`""` when absent; repeated
/// headers joined by ", ", as `Headers.get` does; the encoding trimmed).
pub(super) fn content_headers(headers: &Bound<'_, PyAny>) -> PyResult<(String, String)> {
    let mut found = ContentHeaders::default();
    let read = each_triple(headers, |lower, t| {
        if lower == b"content-type" || lower == b"content-encoding" {
            triple_bytes(t, 2, |value| found.take(lower, value))?;
        }
        Ok(())
    })?;
    if !read {
        found = ContentHeaders::default();
        for pair in headers.getattr(intern!(headers.py(), "raw"))?.try_iter()? {
            let pair = pair?;
            let name = pair.get_item(0)?;
            let value = pair.get_item(1)?;
            found.take(
                name.downcast::<PyBytes>()?.as_bytes(),
                value.downcast::<PyBytes>()?.as_bytes(),
            );
        }
    }
    Ok(found.lowercased())
}

/// The values of `content-type` and `content-encoding` headers, joined as they come (bytes
/// read as Latin-1, as httpx decodes header values); `None` while there was none.
#[derive(Default)]
struct ContentHeaders {
    ctype: Option<String>,
    encoding: Option<String>,
}

impl ContentHeaders {
    fn take(&mut self, name: &[u8], value: &[u8]) {
        let into = if name.eq_ignore_ascii_case(b"content-type") {
            &mut self.ctype
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            &mut self.encoding
        } else {
            return;
        };
        let latin1 = value.iter().map(|&b| b as char);
        match into {
            Some(text) => {
                text.push_str(", ");
                text.extend(latin1);
            }
            None => *into = Some(latin1.collect()),
        }
    }

    /// The content type and the trimmed content encoding, lowercased.
    fn lowercased(self) -> (String, String) {
        let lower = |s: Option<String>| match s {
            None => String::new(),
            Some(mut s) if s.is_ascii() => {
                s.make_ascii_lowercase();
                s
            }
            Some(s) => s.to_lowercase(),
        };
        let encoding = lower(self.encoding);
        let trimmed = encoding.trim();
        let encoding = if trimmed.len() == encoding.len() {
            encoding
        } else {
            trimmed.to_owned()
        };
        (lower(self.ctype), encoding)
    }
}
