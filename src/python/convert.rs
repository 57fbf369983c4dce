//! Python values ↔ JSON values for `attrs`, `request` and raw event mappings. Anything that
//! is not JSON-able is a `ValidationError` naming the field (never a `TypeError`).

use std::fmt;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use super::errors::invalid;
use crate::event::MAX_DEPTH;

/// Why a Python `str` has no UTF-8 text, for error messages.
pub const NOT_UTF8: &str =
    "is not valid Unicode text: it holds a lone surrogate, which has no UTF-8 form";

/// The UTF-8 text of `s`, or [`NOT_UTF8`] when it holds a lone surrogate (Python strings can,
/// e.g. after `surrogateescape` decoding). Callers raise their own error kind naming the field,
/// so a `UnicodeEncodeError` never escapes.
pub fn utf8<'a>(s: &'a Bound<'_, PyString>) -> Result<&'a str, &'static str> {
    s.to_str().map_err(|_| NOT_UTF8)
}

/// A `str` argument as UTF-8 text; the message says why not (another type, a lone surrogate).
pub fn str_arg<'a>(v: &'a Bound<'_, PyAny>) -> Result<&'a str, String> {
    let s = v.downcast::<PyString>().map_err(|_| {
        let tn = v
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        format!("must be a str, not {tn}")
    })?;
    utf8(s).map_err(str::to_owned)
}

/// Converts a Python mapping (dict or any `Mapping`) into a JSON object.
pub fn to_map(field: &str, obj: &Bound<'_, PyAny>) -> PyResult<Map<String, Value>> {
    match to_value(field, obj, 0)? {
        Value::Object(m) => Ok(m),
        _ => Err(invalid(field, "must be a mapping")),
    }
}

/// Converts a Python value into JSON; `field` names it in errors, `depth` is how deep it sits.
pub fn to_value(field: &str, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    value_at(Path::Field(field), obj, depth)
}

/// Where a value sits in what was given (`attrs.tags[2]`). Its text is spelled out only for
/// an error: a valid mapping is converted without formatting a path for each of its keys.
#[derive(Clone, Copy)]
enum Path<'a> {
    Field(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Field(field) => f.write_str(field),
            Path::Key(up, key) => write!(f, "{up}.{key}"),
            Path::Index(up, i) => write!(f, "{up}[{i}]"),
        }
    }
}

fn value_at(path: Path<'_>, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    let fail = |message: String| invalid(&path.to_string(), message);
    if depth > MAX_DEPTH {
        return Err(fail(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(Value::String(
            utf8(s).map_err(|m| fail(m.to_owned()))?.to_owned(),
        ));
    }
    if let Ok(b) = obj.downcast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::Number(u.into()));
        }
        return Err(fail("integer out of the 64-bit range".to_owned()));
    }
    if let Ok(f) = obj.downcast::<PyFloat>() {
        let x = f.value();
        return Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| fail(format!("{x} is not a finite number")));
    }
    if let Ok(d) = obj.downcast::<PyDict>() {
        let mut m = Map::new();
        for (k, v) in d.iter() {
            let k = k
                .downcast::<PyString>()
                .map_err(|_| fail("mapping keys must be strings".to_owned()))?;
            let k = utf8(k).map_err(|m| fail(format!("a key {m}")))?;
            let value = value_at(Path::Key(&path, k), &v, depth + 1)?;
            m.insert(k.to_owned(), value);
        }
        return Ok(Value::Object(m));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, v) in obj.try_iter()?.enumerate() {
            out.push(value_at(Path::Index(&path, i), &v?, depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    // Other mappings (MappingProxy, OrderedDict subclasses are dicts already, ...).
    if let Ok(items) = obj.call_method0("items") {
        let d = PyDict::new(obj.py());
        for kv in items.try_iter()? {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = kv?.extract()?;
            d.set_item(k, v)?;
        }
        return value_at(path, d.as_any(), depth);
    }
    let tn = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    Err(fail(format!("a {tn} is not JSON-able")))
}

/// Converts a JSON value into Python objects.
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(m) => map_to_py(py, m)?.into_any(),
    })
}

pub fn map_to_py<'py>(py: Python<'py>, m: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, to_py(py, v)?)?;
    }
    Ok(d)
}
