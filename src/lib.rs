//! statemeter core: meter what AI agents do, tag every event stateless or stateful with the
//! evidence for the tag, and keep it in a hash-chained ledger.
//!
//! Module map (no pyo3 outside `python/`):
//! - [`event`]: the event model, ids and validation
//! - [`classify`]: the rules engine and the built-in catalogue
//! - [`ledger`]: canonical encoding, SQLite storage, hash chain, verification
//! - [`meter`]: the recorder (hot path, buffer, background writer)
//! - [`table`]: events read back, `session_tag`, filters
//! - [`otel`]: OpenTelemetry GenAI spans in (OTLP/JSON, live spans) and out

pub mod classify;
pub mod error;
pub mod event;
pub mod ledger;
pub mod meter;
pub mod otel;
pub mod table;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
