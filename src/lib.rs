//! statemeter core: meter what AI agents do, tag every event stateless or stateful with the
//! evidence for the tag, and keep it in a hash-chained ledger.
//!
//! Module map (no pyo3 outside `python/`):
//! - [`event`]: the event model, ids and validation
//! - [`classify`]: the rules engine and the built-in catalogue
//! - [`ledger`]: canonical encoding, SQLite storage, hash chain, verification
//! - [`meter`]: the recorder (hot path, buffer, background writer)
//! - [`table`]: events read back, `session_tag`, filters
//! - [`columns`]: events as a struct of arrays, scanned by the engines below
//! - [`contract`], [`pricing`], [`report`], [`costing`], [`scenario`]: compliance and cost
//!   accounting ([`calendar`], [`money`], [`groupby`], [`tomlfile`] support them)
//! - [`arrow`]: Arrow record batches of events, sessions ([`sessions`]) and result tables
//! - [`otel`]: OpenTelemetry GenAI spans in (OTLP/JSON, live spans) and out
//! - [`usage`]: token usage and response ids read from provider responses (capture)

pub mod arrow;
pub mod calendar;
pub mod classify;
pub mod columns;
pub mod contract;
pub mod costing;
pub mod error;
pub mod event;
pub mod groupby;
pub mod ledger;
pub mod meter;
pub mod money;
pub mod otel;
pub mod pricing;
pub mod record_view;
pub mod report;
pub mod scenario;
pub mod sessions;
pub mod table;
pub mod tomlfile;
pub mod usage;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
