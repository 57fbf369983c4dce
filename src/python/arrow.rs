//! The Arrow PyCapsule stream interface: `__arrow_c_stream__(requested_schema=None)` hands
//! a table's record batches (built in Rust, `crate::arrow`) to pyarrow, polars, DuckDB, ...
//! as an `ArrowArrayStream` in a capsule named `"arrow_array_stream"`.
//! (`to_pandas()` / `to_polars()` live in Python, `statemeter.frames`, reached through
//! `py_modules`: they only call the consumer library on the stream.)

use std::ffi::CString;

use arrow_array::ffi::{from_ffi, FFI_ArrowArray};
use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{RecordBatch, StructArray};
use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::Schema;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyList, PyTuple};

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

fn capsule<'a>(obj: &'a Bound<'_, PyAny>, name: &str) -> PyResult<&'a Bound<'a, PyCapsule>> {
    let c = obj
        .downcast::<PyCapsule>()
        .map_err(|_| PyValueError::new_err(format!("expected an {name:?} PyCapsule")))?;
    if c.name()?.is_none_or(|n| n.to_bytes() != name.as_bytes()) {
        return Err(PyValueError::new_err(format!(
            "expected a PyCapsule named {name:?}"
        )));
    }
    Ok(c)
}

fn import_error(e: arrow_schema::ArrowError) -> PyErr {
    super::errors::invalid("batch", format!("cannot read the Arrow data: {e}"))
}

/// Record batches from an Arrow PyCapsule producer (the C data interface): an object with
/// `__arrow_c_array__` (a record batch, e.g. `pyarrow.RecordBatch`), with
/// `__arrow_c_stream__` (a table or reader), or a list of such objects. The data is moved
/// out of the capsules (the producer's release callbacks run when the batches are dropped).
pub fn import(obj: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
    if let Ok(list) = obj.downcast::<PyList>() {
        let mut out = Vec::new();
        for item in list.iter() {
            out.extend(import(&item)?);
        }
        return Ok(out);
    }
    if obj.hasattr("__arrow_c_array__")? {
        let pair = obj.call_method0("__arrow_c_array__")?;
        let pair = pair
            .downcast::<PyTuple>()
            .map_err(|_| PyValueError::new_err("__arrow_c_array__ must return a tuple"))?;
        let schema = pair.get_item(0)?;
        let array = pair.get_item(1)?;
        let schema = capsule(&schema, "arrow_schema")?;
        let array = capsule(&array, "arrow_array")?;
        // SAFETY: the capsules hold a valid `ArrowSchema*` and `ArrowArray*` (the PyCapsule
        // interface). The array is moved out (its release callback set to null in the
        // capsule, so the capsule's destructor does not release it again); the schema is
        // only read while its capsule is alive.
        let data = unsafe {
            let ffi_array = FFI_ArrowArray::from_raw(array.pointer() as *mut FFI_ArrowArray);
            let ffi_schema = &*(schema.pointer() as *const FFI_ArrowSchema);
            from_ffi(ffi_array, ffi_schema).map_err(import_error)?
        };
        if !matches!(data.data_type(), arrow_schema::DataType::Struct(_)) {
            return Err(super::errors::invalid(
                "batch",
                "must be a record batch (a struct array), not a single column",
            ));
        }
        return Ok(vec![RecordBatch::from(StructArray::from(data))]);
    }
    if obj.hasattr("__arrow_c_stream__")? {
        let c = obj.call_method0("__arrow_c_stream__")?;
        let c = capsule(&c, "arrow_array_stream")?;
        // SAFETY: an "arrow_array_stream" capsule holds a valid `ArrowArrayStream*`; the
        // stream is moved out (the capsule keeps a released one).
        let reader = unsafe {
            RecordBatchStreamReader::from_raw(c.pointer() as *mut FFI_ArrowArrayStream)
                .map_err(import_error)?
        };
        return reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(import_error);
    }
    Err(super::errors::invalid(
        "batch",
        "must be Arrow data: a pyarrow.RecordBatch or Table, or an object with \
         __arrow_c_array__ or __arrow_c_stream__",
    ))
}

/// Record batches handed back to Python: `__arrow_c_stream__` (pyarrow reads it with
/// `pyarrow.RecordBatchReader.from_stream`).
#[pyclass(frozen, module = "statemeter")]
pub struct ArrowBatches {
    pub inner: Batches,
}

#[pymethods]
impl ArrowBatches {
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let b = self.inner.clone();
        stream(py, move || Ok(b), requested_schema)
    }
}
