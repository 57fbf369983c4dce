//! The one place the bindings call back into the `statemeter` Python package: presentation
//! that lives in Python (dataframes, HTML, CSV and text, plots, the Parquet dataset writer). Every
//! `import` of a `statemeter.*` module from Rust is here, so the package's Python API the
//! extension depends on reads as one list.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyTuple};

fn module<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyModule>> {
    py.import(name)
}

/// `statemeter.frames.<func>(table)` (`to_pandas`, `to_polars`): the optional dataframe
/// libraries are imported there, with an error naming the extra that installs them.
pub fn frames<'py>(table: &Bound<'py, PyAny>, func: &str) -> PyResult<Bound<'py, PyAny>> {
    module(table.py(), "statemeter.frames")?.call_method1(func, (table,))
}

/// `statemeter.display.<func>(obj)`: the HTML of `_repr_html_` (made in one place).
pub fn html(obj: &Bound<'_, PyAny>, func: &str) -> PyResult<String> {
    module(obj.py(), "statemeter.display")?
        .call_method1(func, (obj,))?
        .extract()
}

/// `statemeter.plot.<func>(obj, **kwargs)`: a matplotlib chart.
pub fn plot<'py>(
    obj: &Bound<'py, PyAny>,
    func: &str,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    module(obj.py(), "statemeter.plot")?.call_method(func, (obj,), kwargs)
}

/// `statemeter.parquet.export_parquet(*args, **options)`.
pub fn export_parquet<'py>(
    args: &Bound<'py, PyTuple>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    module(args.py(), "statemeter.parquet")?.call_method("export_parquet", args, options)
}

/// `statemeter.report.<func>(*args)`: a `Report`'s presentation (`to_csv`, `text`, `plot`).
pub fn report<'py>(
    py: Python<'py>,
    func: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    module(py, "statemeter.report")?.call_method1(func, args)
}
