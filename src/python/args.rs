//! Argument extraction for the record methods: wrong types are `ValidationError`s naming the
//! argument (never `TypeError`), and `None` means "not given".

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};
use serde_json::{Map, Value};
use std::sync::OnceLock;

use super::convert;
use super::errors::invalid;
use crate::event::Text;

pub type Arg<'a, 'py> = Option<&'a Bound<'py, PyAny>>;

fn given<'a, 'py>(v: Arg<'a, 'py>) -> Option<&'a Bound<'py, PyAny>> {
    v.filter(|v| !v.is_none())
}

pub fn opt_str(field: &str, v: Arg<'_, '_>) -> PyResult<Option<String>> {
    match given(v) {
        None => Ok(None),
        Some(v) => match v.downcast::<PyString>() {
            Ok(s) => Ok(Some(
                convert::utf8(s).map_err(|m| invalid(field, m))?.to_owned(),
            )),
            Err(_) => Err(invalid(
                field,
                format!("must be a string, not {}", type_name(v)),
            )),
        },
    }
}

pub fn req_str(field: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    opt_str(field, Some(v))?.ok_or_else(|| invalid(field, "is required"))
}

/// Like [`opt_str`], as shared event text.
pub fn opt_text(field: &str, v: Arg<'_, '_>) -> PyResult<Option<Text>> {
    match given(v) {
        None => Ok(None),
        Some(v) => match v.downcast::<PyString>() {
            Ok(s) => Ok(Some(Text::from(
                convert::utf8(s).map_err(|m| invalid(field, m))?,
            ))),
            Err(_) => Err(invalid(
                field,
                format!("must be a string, not {}", type_name(v)),
            )),
        },
    }
}

/// The string objects a [`req_text`] or [`opt_known_text`] argument was, each with its text:
/// the first [`KnownTexts::KEPT`] distinct ones, kept for the owner's life (a session's
/// providers, models, apis and venues are a handful, usually the very same `str` objects on
/// every call). Read without a lock: each entry is set once ([`OnceLock`]), so a hit costs
/// loads and one pointer comparison per entry, and no atomic read-modify-write besides the
/// returned text's reference count.
#[derive(Default)]
pub struct KnownTexts {
    entries: [OnceLock<(Py<PyAny>, Text)>; KnownTexts::KEPT],
}

impl KnownTexts {
    pub const KEPT: usize = 4;

    /// The text of `v` if it is a known object.
    #[inline(always)]
    fn by_object(&self, v: &Bound<'_, PyAny>) -> Option<Text> {
        for entry in &self.entries {
            match entry.get() {
                // The same object (kept alive here, so its address is not reused).
                Some((obj, t)) if obj.as_ptr() == v.as_ptr() => return Some(Text::clone(t)),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }

    /// A known text equal to `s`, or `shared` if it is equal (shared instead of allocated
    /// again), after remembering the object `v` whose text it is if there is room.
    fn remember(&self, v: &Bound<'_, PyAny>, s: &str, shared: Option<&Text>) -> Text {
        let known = self
            .entries
            .iter()
            .filter_map(OnceLock::get)
            .map(|(_, t)| t)
            .chain(shared)
            .find(|t| ***t == *s)
            .map(Text::clone);
        let t = known.unwrap_or_else(|| Text::from(s));
        for entry in &self.entries {
            if entry.get().is_none() && entry.set((v.clone().unbind(), Text::clone(&t))).is_ok() {
                break;
            }
        }
        t
    }
}

/// Like [`req_str`], as shared event text; `known` remembers the arguments seen, so that a
/// repeated one costs neither a UTF-8 conversion nor an allocation.
#[inline]
pub fn req_text(field: &str, v: &Bound<'_, PyAny>, known: &KnownTexts) -> PyResult<Text> {
    if let Some(t) = known.by_object(v) {
        return Ok(t);
    }
    let s = match v.downcast::<PyString>() {
        Ok(s) => convert::utf8(s).map_err(|m| invalid(field, m))?,
        Err(_) if v.is_none() => return Err(invalid(field, "is required")),
        Err(_) => {
            return Err(invalid(
                field,
                format!("must be a string, not {}", type_name(v)),
            ))
        }
    };
    Ok(known.remember(v, s, None))
}

/// An optional text argument as shared event text, `default` when it is not given: like
/// [`req_text`], `known` remembers the arguments seen, and a text equal to `default` shares it.
pub fn opt_known_text(
    field: &str,
    v: Arg<'_, '_>,
    known: &KnownTexts,
    default: Option<&Text>,
) -> PyResult<Option<Text>> {
    let Some(v) = given(v) else {
        return Ok(default.cloned());
    };
    if let Some(t) = known.by_object(v) {
        return Ok(Some(t));
    }
    let s = match v.downcast::<PyString>() {
        Ok(s) => convert::utf8(s).map_err(|m| invalid(field, m))?,
        Err(_) => {
            return Err(invalid(
                field,
                format!("must be a string, not {}", type_name(v)),
            ))
        }
    };
    Ok(Some(known.remember(v, s, default)))
}

/// Like [`opt_str`], borrowed from the argument (nothing allocated).
pub fn opt_borrowed_str<'a>(field: &str, v: Arg<'a, '_>) -> PyResult<Option<&'a str>> {
    match given(v) {
        None => Ok(None),
        Some(v) => match v.downcast::<PyString>() {
            Ok(s) => Ok(Some(convert::utf8(s).map_err(|m| invalid(field, m))?)),
            Err(_) => Err(invalid(
                field,
                format!("must be a string, not {}", type_name(v)),
            )),
        },
    }
}

pub fn opt_count(field: &str, v: Arg<'_, '_>) -> PyResult<Option<u64>> {
    match given(v) {
        None => Ok(None),
        // The usual case first: an `int` (not a subclass such as `bool`) in range.
        Some(v) if v.is_exact_instance_of::<PyInt>() => match v.extract::<u64>() {
            Ok(n) if n <= crate::event::MAX_COUNT => Ok(Some(n)),
            _ => count(field, v),
        },
        Some(v) => count(field, v),
    }
}

/// [`opt_count`] of a given value, with the error that says what is wrong with it.
fn count(field: &str, v: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(invalid(
            field,
            format!("must be an integer, not {}", type_name(v)),
        ));
    }
    match v.extract::<u64>() {
        Ok(n) => crate::event::check_count(field, Some(n))
            .map(|()| Some(n))
            .map_err(PyErr::from),
        Err(_) => match v.extract::<i64>() {
            Ok(n) if n < 0 => Err(invalid(field, format!("must be >= 0, got {n}"))),
            _ => Err(invalid(
                field,
                format!(
                    "{v} is out of range (at most {}, the signed 64-bit range)",
                    crate::event::MAX_COUNT
                ),
            )),
        },
    }
}

pub fn opt_i64(field: &str, v: Arg<'_, '_>) -> PyResult<Option<i64>> {
    Ok(opt_count(field, v)?.map(|n| n as i64))
}

/// A non-negative integer argument within the signed 64-bit range (a seq, a capacity):
/// anything else is a `ValidationError` naming `field`, never `OverflowError`/`TypeError`.
pub fn req_count(field: &str, v: &Bound<'_, PyAny>) -> PyResult<u64> {
    opt_count(field, Some(v))?.ok_or_else(|| invalid(field, "is required"))
}

pub fn opt_map(field: &str, v: Arg<'_, '_>) -> PyResult<Option<Map<String, Value>>> {
    match given(v) {
        None => Ok(None),
        Some(v) => convert::to_map(field, v).map(Some),
    }
}

/// A sequence index into `n` items (negative counts from the end): `IndexError` when out of
/// range, however large the int (never `OverflowError`); `TypeError` when not an int.
pub fn index(v: &Bound<'_, PyAny>, n: usize, what: &str) -> PyResult<usize> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{what} indices must be integers, not {}",
            type_name(v)
        )));
    }
    let out = || {
        pyo3::exceptions::PyIndexError::new_err(format!("index {v} out of range for {n} {what}"))
    };
    let i: i128 = v.extract().map_err(|_| out())?;
    let j = if i < 0 { i + n as i128 } else { i };
    if j < 0 || j >= n as i128 {
        return Err(out());
    }
    Ok(j as usize)
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}
