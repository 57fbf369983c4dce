//! Checkpoints in the C2SP `tlog-checkpoint` format (<https://c2sp.org/tlog-checkpoint>): a
//! signed note whose text is the origin line, the tree size in decimal and the base64 root hash,
//! each ending in a newline, optionally followed by extension lines.
//!
//! A ledger's origin is `statemeter/<ledger id>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::note::{Checked, Note, SigningKey, VerifyingKey};
use crate::error::{Error, Result};
use crate::ledger::merkle::Hash;
use crate::ledger::Store;

/// The origin line of a ledger's checkpoints.
pub fn origin(ledger_id: &str) -> String {
    format!("statemeter/{ledger_id}")
}

/// A signed tree head: origin, size and root of a ledger's Merkle tree, in a signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Extension lines after the root (none in checkpoints statemeter writes).
    pub extensions: Vec<String>,
    pub note: Note,
}

fn bad(m: impl Into<String>) -> Error {
    Error::validation("checkpoint", m)
}

impl Checkpoint {
    /// Signs the checkpoint of `size` and `root` under `origin` with `key`.
    pub fn sign(origin: &str, size: u64, root: &Hash, key: &SigningKey) -> Result<Checkpoint> {
        if origin.is_empty() || origin.contains('\n') {
            return Err(bad("the origin must be one non-empty line"));
        }
        let text = format!("{origin}\n{size}\n{}\n", B64.encode(root));
        Checkpoint::from_note(Note::sign(&text, key)?)
    }

    /// Parses a signed checkpoint note (signatures are not checked: see [`Checkpoint::verify`]).
    pub fn parse(text: &str) -> Result<Checkpoint> {
        Checkpoint::from_note(Note::parse(text)?)
    }

    fn from_note(note: Note) -> Result<Checkpoint> {
        let mut lines = note.text.split_terminator('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(bad(
                "a checkpoint's text has at least three lines: origin, size, root hash",
            ));
        };
        if origin.is_empty() {
            return Err(bad("the origin line is empty"));
        }
        let canonical = size == "0" || (!size.starts_with('0') && !size.is_empty());
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| canonical && size.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad(format!("the size {size:?} is not a decimal number")))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("the root hash is not base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an extension line is empty"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
            note,
        })
    }

    /// What the signatures say about `key`: [`Checked::Verified`] when its line verifies.
    pub fn check(&self, key: &VerifyingKey) -> Checked {
        self.note.check(key)
    }

    /// Whether a signature of `key` verifies over this checkpoint.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        self.check(key) == Checked::Verified
    }

    /// This checkpoint with `key`'s signature added (a witness co-signing it).
    pub fn cosign(&self, key: &SigningKey) -> Checkpoint {
        let mut out = self.clone();
        out.note.add_signature(key);
        out
    }

    /// The signed note's text.
    pub fn text(&self) -> String {
        self.note.to_string()
    }
}

/// Signs the checkpoint of `store`'s tree at its current size and keeps it in the ledger's
/// `checkpoints` table (when the ledger is writable).
pub fn take(store: &mut Store, key: &SigningKey) -> Result<Checkpoint> {
    let id = store.ledger_id()?.ok_or_else(|| {
        Error::Ledger(
            "this ledger has no ledger_id yet (it was written by an earlier version and is \
             open read-only): open it for writing once to give it one"
                .into(),
        )
    })?;
    let size = store.head()?.seq;
    let root = store.tree_root(size)?;
    let cp = Checkpoint::sign(&origin(&id), size, &root, key)?;
    store.keep_checkpoint(size, &root, &cp.text())?;
    Ok(cp)
}

/// Checks that `cp` is a checkpoint of `store` (same origin, size within the ledger, the root
/// its tree has at that size).
pub fn check_against(store: &Store, cp: &Checkpoint) -> Result<()> {
    if let Some(id) = store.ledger_id()? {
        if cp.origin != origin(&id) {
            return Err(Error::validation(
                "checkpoint",
                format!(
                    "the checkpoint is of {:?}, not of this ledger ({:?})",
                    cp.origin,
                    origin(&id)
                ),
            ));
        }
    }
    let n = store.head()?.seq;
    if cp.size > n {
        return Err(Error::validation(
            "checkpoint",
            format!(
                "the checkpoint's size {} is beyond the ledger's {n} records",
                cp.size
            ),
        ));
    }
    if store.tree_root(cp.size)? != cp.root {
        return Err(Error::Integrity(format!(
            "the ledger's tree of {} records has another root than the checkpoint: the ledger \
             was rewritten since, or the checkpoint is of another ledger",
            cp.size
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_tampering_fails() {
        let key = SigningKey::generate("statemeter.example/test").unwrap();
        let vk = key.verifying_key();
        let root = [7u8; 32];
        let cp = Checkpoint::sign("statemeter/abc", 42, &root, &key).unwrap();
        let text = cp.text();
        assert!(text.starts_with(&format!(
            "statemeter/abc\n42\n{}\n\n\u{2014} ",
            B64.encode(root)
        )));
        let back = Checkpoint::parse(&text).unwrap();
        assert_eq!(back, cp);
        assert!(back.verify(&vk));
        let other = B64.encode([8u8; 32]);
        for edited in [
            text.replacen("\n42\n", "\n43\n", 1),
            text.replacen("statemeter/abc", "statemeter/abd", 1),
            text.replacen(&B64.encode(root), &other, 1),
        ] {
            assert!(!Checkpoint::parse(&edited).unwrap().verify(&vk), "{edited}");
        }
        // A flipped signature byte.
        let sig_at = text.rfind(' ').unwrap() + 10;
        let mut bytes = text.clone().into_bytes();
        bytes[sig_at] = if bytes[sig_at] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(!Checkpoint::parse(&flipped).is_ok_and(|c| c.verify(&vk)));
        for bad in [
            "x\n\n\u{2014} a AAAAAAAA\n",
            "o\n042\nAAAA\n\n\u{2014} a AAAAAAAA\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err());
        }
        let witness = SigningKey::generate("witness.example").unwrap();
        let both = Checkpoint::parse(&cp.cosign(&witness).text()).unwrap();
        assert!(both.verify(&vk) && both.verify(&witness.verifying_key()));
    }
}
