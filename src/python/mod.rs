//! PyO3 bindings: one file per exposed concept. Nothing here holds logic the core lacks.

use pyo3::prelude::*;

mod agent_trace;
mod args;
mod arrow;
mod capture;
mod captured_calls;
mod classification;
mod contract;
mod convert;
mod dataset;
mod errors;
mod event;
mod event_table;
mod export;
mod held_bytes;
mod httpx_transport;
mod interrupt;
mod keywords;
mod ledger;
mod meter;
mod observed_body;
mod otel;
mod pricing;
mod py_modules;
mod pyrepr;
mod report;
mod sessions;
mod sql;
mod stream_tap;
mod transparency;
mod venue;

/// Flushes every live meter; registered with `atexit` by the Python package.
#[pyfunction]
fn _flush_all(py: Python<'_>) -> Vec<String> {
    py.detach(crate::meter::flush_all)
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // "release" or "debug": benchmarks record which build they measured.
    m.add(
        "_build",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    errors::register(m)?;
    m.add_class::<meter::Meter>()?;
    m.add_class::<meter::Session>()?;
    keywords::install(&m.py().get_type::<meter::Session>())?;
    m.add_class::<meter::ToolSpan>()?;
    m.add_class::<event::Event>()?;
    m.add_class::<event_table::EventTable>()?;
    m.add_class::<ledger::Ledger>()?;
    m.add_class::<ledger::Head>()?;
    m.add_class::<ledger::Verification>()?;
    m.add_class::<sessions::SessionTable>()?;
    m.add_class::<sql::SqlResult>()?;
    m.add_class::<classification::Ruleset>()?;
    m.add_class::<contract::Contract>()?;
    m.add_class::<pricing::PriceTable>()?;
    m.add_class::<report::Report>()?;
    m.add_class::<report::Scenario>()?;
    m.add_class::<classification::Classification>()?;
    m.add_class::<classification::Evidence>()?;
    m.add_function(wrap_pyfunction!(classification::classify, m)?)?;
    m.add_function(wrap_pyfunction!(venue::venue_for_host, m)?)?;
    m.add_function(wrap_pyfunction!(otel::_otel_import, m)?)?;
    m.add_function(wrap_pyfunction!(otel::_otel_export, m)?)?;
    m.add_class::<otel::_SpanMapper>()?;
    m.add_function(wrap_pyfunction!(capture::classify_request, m)?)?;
    m.add_function(wrap_pyfunction!(capture::_describe_request, m)?)?;
    m.add_function(wrap_pyfunction!(capture::_read_usage, m)?)?;
    m.add_class::<captured_calls::CapturedCalls>()?;
    m.add_class::<observed_body::ObservedBody>()?;
    m.add_class::<httpx_transport::CaptureTransport>()?;
    m.add_class::<agent_trace::AgentTrace>()?;
    m.add_class::<stream_tap::StreamTap>()?;
    m.add_class::<stream_tap::TappedEvents>()?;
    m.add_class::<transparency::SigningKey>()?;
    m.add_class::<transparency::VerifyingKey>()?;
    m.add_class::<transparency::Checkpoint>()?;
    m.add_class::<transparency::InclusionProof>()?;
    m.add_class::<transparency::ConsistencyProof>()?;
    m.add_class::<transparency::EvidenceResult>()?;
    m.add_function(wrap_pyfunction!(transparency::_verify_evidence, m)?)?;
    m.add_function(wrap_pyfunction!(_flush_all, m)?)?;
    m.add_class::<arrow::ArrowBatches>()?;
    m.add_function(wrap_pyfunction!(dataset::_classify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::_dataset_report, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::_dataset_report_columns, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::_dataset_verify, m)?)?;
    Ok(())
}
