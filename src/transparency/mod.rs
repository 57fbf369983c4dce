//! Evidence a counterparty can check: signed checkpoints of a ledger's Merkle tree, inclusion
//! and consistency proofs against them, and evidence bundles.
//!
//! - [`note`]: C2SP signed notes and Ed25519 keys in Go's note encodings;
//! - [`checkpoint`]: C2SP `tlog-checkpoint`s of a ledger's tree;
//! - [`proof`]: inclusion and consistency proofs checked against checkpoints;
//! - [`evidence`]: self-contained JSON bundles of records with their proofs, and their check.
//!
//! The tree itself is the ledger's (`crate::ledger::tree`).

pub mod checkpoint;
pub mod evidence;
pub mod note;
pub mod proof;

pub use checkpoint::Checkpoint;
pub use note::{Checked, Note, SigningKey, VerifyingKey};
pub use proof::{ConsistencyProof, InclusionProof};
