//! `classify_request(method, url, headers, body)`: a raw HTTP request → `(event dict,
//! Classification)` (`crate::capture::http`), and `_read_usage(body, content_type)`: the
//! token usage and ids of a provider response (`crate::capture::usage`), for the capture integrations.

use std::borrow::Cow;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString, PyTuple};

use super::classification::{Classification, Ruleset};
use super::convert::{map_to_py, str_arg, utf8};
use super::errors::invalid;
use super::venue::{user_providers, user_venues};
use crate::capture::http::{self, HostMappings, HttpRequest, HEADERS_READ};
use crate::classify::Ruleset as CoreRuleset;
use crate::event::Event as CoreEvent;

/// A header name or value given as `str` or `bytes` (latin-1 is what HTTP allows; invalid
/// UTF-8 is replaced).
fn text(field: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = v.downcast::<PyString>() {
        return Ok(utf8(s).map_err(|m| invalid(field, m))?.to_owned());
    }
    if let Ok(b) = v.downcast::<PyBytes>() {
        return Ok(String::from_utf8_lossy(b.as_bytes()).into_owned());
    }
    Err(invalid(
        field,
        "header names and values must be str or bytes",
    ))
}

/// Whether a header name (`str` or `bytes`) is one the classifier reads; compared in place,
/// without allocating, since most headers (and every credential) are not.
fn is_read(name: &Bound<'_, PyAny>) -> PyResult<bool> {
    let bytes: &[u8] = if let Ok(s) = name.downcast::<PyString>() {
        match utf8(s) {
            Ok(s) => s.as_bytes(),
            // A lone surrogate: not one of the header names read.
            Err(_) => return Ok(false),
        }
    } else if let Ok(b) = name.downcast::<PyBytes>() {
        b.as_bytes()
    } else {
        return Err(invalid(
            "headers",
            "header names and values must be str or bytes",
        ));
    };
    Ok(HEADERS_READ
        .iter()
        .any(|r| r.as_bytes().eq_ignore_ascii_case(bytes)))
}

/// Keeps the headers the classifier reads (others, credentials included, are never copied).
/// Accepts a mapping (dict, `httpx.Headers`, ...) or an iterable of `(name, value)` pairs.
pub(super) fn read_headers(headers: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    let Some(h) = headers.filter(|h| !h.is_none()) else {
        return Ok(out);
    };
    let mut take = |k: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>| -> PyResult<()> {
        if is_read(k)? {
            out.push((text("headers", k)?, text("headers", v)?));
        }
        Ok(())
    };
    if let Ok(d) = h.downcast::<PyDict>() {
        for (k, v) in d.iter() {
            take(&k, &v)?;
        }
        return Ok(out);
    }
    let pairs = if h.hasattr("items")? {
        h.call_method0("items")?
    } else {
        h.clone()
    };
    let iter = pairs.try_iter().map_err(|_| {
        invalid(
            "headers",
            "must be a mapping or an iterable of (name, value) pairs",
        )
    })?;
    for pair in iter {
        let pair = pair?;
        let t = pair
            .downcast::<PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .ok_or_else(|| invalid("headers", "each header must be a (name, value) pair"))?;
        take(&t.get_item(0)?, &t.get_item(1)?)?;
    }
    Ok(out)
}

/// The body as bytes (borrowed from `bytes` and `str`, copied from `bytearray` and other
/// buffers such as `memoryview`), or `None`.
pub(super) fn read_body<'a>(body: Option<&'a Bound<'_, PyAny>>) -> PyResult<Option<Cow<'a, [u8]>>> {
    let Some(b) = body.filter(|b| !b.is_none()) else {
        return Ok(None);
    };
    if let Ok(b) = b.downcast::<PyBytes>() {
        return Ok(Some(Cow::Borrowed(b.as_bytes())));
    }
    if let Ok(s) = b.downcast::<PyString>() {
        return Ok(Some(Cow::Borrowed(
            utf8(s).map_err(|m| invalid("body", m))?.as_bytes(),
        )));
    }
    if let Ok(a) = b.downcast::<PyByteArray>() {
        return Ok(Some(Cow::Owned(a.to_vec())));
    }
    if let Ok(v) = b
        .call_method0("tobytes")
        .and_then(|x| x.extract::<Vec<u8>>())
    {
        return Ok(Some(Cow::Owned(v)));
    }
    Err(invalid(
        "body",
        "must be bytes, bytearray, memoryview, str or None",
    ))
}

/// The event's set fields as a dict (`kind`, `provider`, `model`, `api`, `venue`, `endpoint`,
/// `request`, `attrs`; `tool`, `tool_kind`, `mcp_session_id` for MCP): ready for
/// `session.record(...)` once usage, timing and status are added.
fn event_dict<'py>(py: Python<'py>, ev: &CoreEvent) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("kind", ev.kind.as_str())?;
    for (k, v) in [
        ("provider", &ev.provider),
        ("model", &ev.model),
        ("api", &ev.api),
        ("venue", &ev.venue),
        ("endpoint", &ev.endpoint),
        ("tool", &ev.tool),
        ("tool_kind", &ev.tool_kind),
        ("mcp_session_id", &ev.mcp_session_id),
    ] {
        if let Some(v) = v.as_deref() {
            d.set_item(k, v)?;
        }
    }
    if let Some(r) = &ev.request {
        d.set_item("request", map_to_py(py, r)?)?;
    }
    d.set_item("attrs", map_to_py(py, &ev.attrs)?)?;
    Ok(d)
}

fn describe(
    method: &Bound<'_, PyAny>,
    url: &Bound<'_, PyAny>,
    headers: Option<&Bound<'_, PyAny>>,
    body: Option<&Bound<'_, PyAny>>,
    venues: Option<&Bound<'_, PyAny>>,
    providers: Option<&Bound<'_, PyAny>>,
    api_family: Option<&str>,
) -> PyResult<CoreEvent> {
    let method = str_arg(method).map_err(|m| invalid("method", m))?;
    let url = str_arg(url).map_err(|m| invalid("url", m))?;
    let headers = read_headers(headers)?;
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = read_body(body)?;
    let req = HttpRequest {
        method,
        url,
        headers: &refs,
        body: body.as_deref(),
    };
    let venues = user_venues(venues)?;
    let providers = user_providers(providers)?;
    let hosts = HostMappings {
        venues: &venues,
        providers: &providers,
    };
    Ok(http::describe_request_with(&req, api_family, hosts)?)
}

/// Classifies a raw HTTP request: returns `(event, classification)` where `event` is the dict
/// of the `model_call` (or MCP `tool_call`) it amounts to. Only non-content parameters are
/// kept; `ruleset` defaults to `Ruleset.default()`, `venues` maps hosts to venues and
/// `providers` maps hosts to the provider operating them.
#[pyfunction]
#[pyo3(signature = (method, url, headers = None, body = None, *, ruleset = None, venues = None, providers = None))]
#[allow(clippy::too_many_arguments)]
pub fn classify_request<'py>(
    py: Python<'py>,
    method: &Bound<'py, PyAny>,
    url: &Bound<'py, PyAny>,
    headers: Option<&Bound<'py, PyAny>>,
    body: Option<&Bound<'py, PyAny>>,
    ruleset: Option<&Bound<'py, Ruleset>>,
    venues: Option<&Bound<'py, PyAny>>,
    providers: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyDict>, Classification)> {
    let ev = describe(method, url, headers, body, venues, providers, None)?;
    let rs = match ruleset {
        Some(r) => Arc::clone(&r.get().inner),
        None => CoreRuleset::builtin_default(),
    };
    let c = rs.classify(&ev);
    Ok((event_dict(py, &ev)?, Classification { inner: c }))
}

/// `classify_request` without the classification (recording classifies anyway): the event dict.
/// `api_family` names the API when the caller knows it (botocore: the service), used to read
/// requests to hosts statemeter does not recognise; `providers` says who operates such hosts.
#[pyfunction]
#[pyo3(signature = (method, url, headers = None, body = None, venues = None, api_family = None, providers = None))]
#[allow(clippy::too_many_arguments)]
pub fn _describe_request<'py>(
    py: Python<'py>,
    method: &Bound<'py, PyAny>,
    url: &Bound<'py, PyAny>,
    headers: Option<&Bound<'py, PyAny>>,
    body: Option<&Bound<'py, PyAny>>,
    venues: Option<&Bound<'py, PyAny>>,
    api_family: Option<&str>,
    providers: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    event_dict(
        py,
        &describe(method, url, headers, body, venues, providers, api_family)?,
    )
}

/// Token usage and ids from a response body (JSON or server-sent events): a dict with the keys
/// that were found among `input_tokens` (cache included), `output_tokens`, `cached_tokens`,
/// `cache_creation_tokens`, `reasoning_tokens`, `response_id`, `response_model`.
#[pyfunction]
#[pyo3(signature = (body, content_type = None))]
pub fn _read_usage<'py>(
    py: Python<'py>,
    body: &Bound<'py, PyAny>,
    content_type: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let bytes = read_body(Some(body))?.unwrap_or_default();
    let u = if bytes.len() > 64 * 1024 {
        py.detach(|| crate::capture::usage::read_usage(content_type, &bytes))
    } else {
        crate::capture::usage::read_usage(content_type, &bytes)
    };
    let d = PyDict::new(py);
    for (k, v) in [
        ("input_tokens", u.input_tokens),
        ("output_tokens", u.output_tokens),
        ("cached_tokens", u.cached_tokens),
        ("cache_creation_tokens", u.cache_creation_tokens),
        ("reasoning_tokens", u.reasoning_tokens),
    ] {
        if let Some(v) = v {
            d.set_item(k, v)?;
        }
    }
    for (k, v) in [
        ("response_id", u.response_id),
        ("response_model", u.response_model),
    ] {
        if let Some(v) = v {
            d.set_item(k, v)?;
        }
    }
    Ok(d)
}
