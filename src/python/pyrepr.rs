//! Values in `__repr__` written as Python writes them: text through Python's own `repr`
//! (`'provider'`, with Python's quoting and escapes), `None`, `True`/`False`, lists of text
//! (`['a', 'b']`), never Rust's `Some("provider")` or `"provider"`.

use pyo3::prelude::*;
use pyo3::types::PyString;

/// `'text'`, as `repr(str)` gives it.
pub fn text(py: Python<'_>, s: &str) -> String {
    PyString::new(py, s)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// `'text'` or `None`.
pub fn opt_text(py: Python<'_>, s: Option<&str>) -> String {
    s.map_or_else(|| "None".into(), |s| text(py, s))
}

/// `['a', 'b']`, as `repr(list[str])` gives it.
pub fn texts<'a>(py: Python<'_>, items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| text(py, s)).collect();
    format!("[{}]", items.join(", "))
}

/// `True` or `False`.
pub fn boolean(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// A number, or `None`.
pub fn opt_int(n: Option<impl std::fmt::Display>) -> String {
    n.map_or_else(|| "None".into(), |n| n.to_string())
}
