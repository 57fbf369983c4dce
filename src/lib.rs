//! statemeter core: meter what AI agents do, tag every event stateless or stateful with the
//! evidence for the tag, and keep it in a hash-chained ledger.
//!
//! Module map, from the bottom layer up (a module uses only modules listed above it; no pyo3
//! outside `python/`):
//! - [`error`]: the one error type;
//! - [`fork`]: what a forked child must redo (fork generation, child handlers);
//! - [`canonical`]: RFC 8785 canonical JSON (writer, string escaper) and catalogue digests — the
//!   bytes that get hashed;
//! - [`event`]: the event model, ids, validation, the field view rules read, the verdict types
//!   ([`event::Classification`]) and [`event::Recorded`];
//! - [`classify`]: the rules engine and the built-in catalogues; venues by host;
//! - [`capture`]: raw HTTP requests and provider responses turned into classified events;
//! - [`ledger`]: SQLite storage, hash chain, verification;
//! - [`meter`]: the recorder (hot path, buffer, background writer);
//! - [`stored`]: reading a ledger back (rows with `session_tag`, columns, sessions, readings
//!   under another ruleset);
//! - [`transparency`]: signed checkpoints of the ledger's Merkle tree, proofs, evidence
//!   bundles;
//! - [`accounting`]: contracts, prices, money, and the report, cost and scenario engines;
//! - [`arrow`]: Arrow record batches of events, sessions and result tables;
//! - [`otel`]: OpenTelemetry GenAI spans in (OTLP/JSON, live spans) and out.

pub mod error;
pub mod fork;

pub mod canonical;
pub mod event;

pub mod classify;

pub mod capture;
pub mod ledger;

pub mod meter;
pub mod stored;
pub mod transparency;

pub mod accounting;
pub mod arrow;
pub mod otel;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
