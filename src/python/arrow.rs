//! The Arrow PyCapsule stream interface: `__arrow_c_stream__(requested_schema=None)` hands
//! a table's record batches (built in Rust, `crate::arrow`) to pyarrow, polars, DuckDB, ...
//! as an `ArrowArrayStream` in a capsule named `"arrow_array_stream"`.
//! (`to_pandas()` / `to_polars()` live in Python, `statemeter.frames`, reached through
//! `py_modules`: they only call the consumer library on the stream.)

use std::ffi::CString;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::Schema;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::arrow::{self as core, Batches};
use crate::error::Result;

/// The schema a consumer asked for, if it passed a readable `arrow_schema` capsule.
fn requested(schema: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Schema>> {
    let Some(obj) = schema.filter(|s| !s.is_none()) else {
        return Ok(None);
    };
    let capsule = obj.downcast::<PyCapsule>().map_err(|_| {
        PyValueError::new_err("requested_schema must be an 'arrow_schema' PyCapsule or None")
    })?;
    let named = capsule
        .name()?
        .is_some_and(|n| n.to_bytes() == b"arrow_schema");
    if !named {
        return Err(PyValueError::new_err(
            "requested_schema must be a PyCapsule named 'arrow_schema'",
        ));
    }
    // SAFETY: an "arrow_schema" capsule holds a valid `struct ArrowSchema*` (the PyCapsule
    // interface); we only read it while the capsule is alive and do not take ownership.
    let ffi = unsafe { &*(capsule.pointer() as *const FFI_ArrowSchema) };
    // A schema we cannot read is a request we cannot honour: the spec lets us send our own.
    Ok(Schema::try_from(ffi).ok())
}

/// Builds the batches (GIL released), conforms them to `requested_schema` where possible and
/// returns the stream capsule.
pub fn stream<'py>(
    py: Python<'py>,
    build: impl FnOnce() -> Result<Batches> + Send,
    requested_schema: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyCapsule>> {
    let want = requested(requested_schema)?;
    let batches = py.detach(move || -> Result<Batches> {
        let b = build()?;
        match want {
            Some(s) => core::conform(b, &s),
            None => Ok(b),
        }
    })?;
    let ffi = FFI_ArrowArrayStream::new(core::stream::reader(batches));
    let name = CString::new("arrow_array_stream").expect("no NUL");
    PyCapsule::new(py, ffi, Some(name))
}
