//! Inclusion and consistency proofs against signed checkpoints.

use super::checkpoint::Checkpoint;
use crate::ledger::merkle::{leaf_hash, verify_consistency, verify_inclusion, Hash};

/// That a record is leaf `leaf_index` (its seq − 1) of the tree of `tree_size` records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The audit path, bottom up.
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// Whether `record` (its bytes as stored) is at `leaf_index` in the tree `checkpoint` signs
    /// (the checkpoint's signature is checked separately).
    pub fn verify(&self, record: &[u8], checkpoint: &Checkpoint) -> bool {
        self.tree_size == checkpoint.size
            && verify_inclusion(
                self.leaf_index,
                self.tree_size,
                &leaf_hash(record),
                &self.hashes,
                &checkpoint.root,
            )
    }
}

/// That the tree of `old_size` records is a prefix of the tree of `new_size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub hashes: Vec<Hash>,
}

impl ConsistencyProof {
    /// Whether the tree `old` signs is a prefix of the tree `new` signs (same origin).
    pub fn verify(&self, old: &Checkpoint, new: &Checkpoint) -> bool {
        old.origin == new.origin
            && self.old_size == old.size
            && self.new_size == new.size
            && verify_consistency(old.size, new.size, &old.root, &new.root, &self.hashes)
    }
}
