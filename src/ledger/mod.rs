//! The ledger: canonical encoding, SQLite storage, hash chain and verification.
//!
//! - [`canonical`]: the RFC 8785 writer that produces the hashed bytes;
//! - [`record`]: the record text, the chain link and the [`Head`];
//! - `schema`: opening a file and checking it is a ledger;
//! - [`Store`]: appending (idempotent, multi-process safe) and streaming records;
//! - [`verify()`]: re-deriving the chain and diagnosing the first problem.
//!
//! The on-disk format is specified in docs/ledger-format.md.

pub mod canonical;
pub mod record;
mod schema;
mod store;
mod verify;

pub use record::{chain_hash, Head};
pub use schema::{BUSY_TIMEOUT, FORMAT, VERSION};
pub use store::{Durability, Outcome, Pending, Store};
pub use verify::{verify, Verification};
