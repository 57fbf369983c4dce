//! The ledger: SQLite storage, hash chain and verification.
//!
//! - [`chain`]: the record text, the chain link and the [`Head`] (the hashed bytes themselves
//!   come from `crate::canonical`);
//! - [`compact`]: the version-2 record (contexts written once, referenced by seq; 16-byte id
//!   keys);
//! - `schema`: opening a file and checking it is a ledger;
//! - [`locks`]: noticing another SQLite library in this process released our locks;
//! - [`sql`]: read-only SQL through the ledger's own connection;
//! - [`merkle`]: the RFC 9162 Merkle tree: hashes, inclusion and consistency proofs;
//! - [`tree`]: the ledger's Merkle tree, stored beside the chain and extended by the writer;
//! - `ahead`: rows the recorder's encoder writes ahead of their append (record, chain and leaf
//!   hash, id key), taken as written while the append starts where they assumed;
//! - [`Store`]: appending (idempotent, multi-process safe) and streaming records;
//! - [`verify()`]: re-deriving the chain and diagnosing the first problem;
//! - `wait`: waiting for another connection's lock, interruptibly ([`interruptible`]).
//!
//! The on-disk format is specified in docs/ledger-format.md.

mod ahead;
pub mod chain;
pub mod compact;
pub mod locks;
pub mod merkle;
mod schema;
pub mod sql;
mod store;
pub mod tree;
mod verify;
mod wait;

pub(crate) use ahead::{Ahead, AheadWriter};
pub use chain::{chain_hash, Head};
pub use schema::{parse_ledger_id, BUSY_TIMEOUT, FORMAT, LEDGER_ID_KEY, VERSION};
pub use store::{Durability, Outcome, Pending, Store};
pub use verify::{verify, verify_identity, verify_rows, Verification};
pub use wait::interruptible;
