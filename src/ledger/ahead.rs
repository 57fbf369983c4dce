//! Rows written ahead of their append: the recorder's encoder thread writes each event's
//! version-2 record, chain hash, Merkle leaf hash and id key (and, on every 16th row, the root
//! of the Merkle tree's 16-leaf subtree it completes) before the committer thread appends it,
//! so that the committer, the busier of the two, only inserts them.
//!
//! A record names its seq and, for its context, either the definition itself or the seq of
//! the record holding it; the chain hash covers the previous one. So the rows are written on
//! an assumption ([`Ahead`]): that the append starts at a given head (seq and chain hash) and
//! that the store knows the context definitions the writer's copy holds (the store's contexts
//! epoch, which counts every change to its definitions the writer did not foresee). The store
//! checks both inside the append's transaction, once per append, and takes the rows as written
//! while each event is appended at the seq it was written for; from the first one that is not
//! (its id was already stored) it writes the rest itself. Either way the rows are the same
//! bytes: the written-ahead path is a shortcut to them, never another format.
//!
//! When an append did not take every row as written (another process appended between, a
//! duplicate, a commit that failed and was rolled back), the writer's copy is out of date:
//! the recorder waits until nothing it sent is still being appended, then takes the store's
//! state again ([`AheadWriter::sync`]).

use std::sync::Arc;

use super::chain::{chain_hash, Head};
use super::compact::{self, Context, Parts};
use super::merkle::{leaf_hash, root_of, Hash};
use super::store::{AheadState, Contexts, Pending, Store};
use super::tree::CHUNK;
use crate::error::Result;

/// Definitions [`AheadWriter`] compares before looking one up.
const RECENT: usize = 4;

/// What a group of rows written ahead assumes: the head the append starts from and the
/// store's contexts epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ahead {
    pub(crate) start: Head,
    pub(crate) epoch: u64,
}

/// The encoder's copy of what the store's next append starts from: the head after the rows
/// it wrote last, and the context definitions with their seqs, as the store will know them.
#[derive(Default)]
pub(crate) struct AheadWriter {
    /// `None`: out of date: nothing is written ahead until [`sync`].
    ///
    /// [`sync`]: AheadWriter::sync
    state: Option<(Head, u64)>,
    /// The ledger is of version 1, whose records are not written ahead.
    never: bool,
    /// The epoch `contexts` is a copy of (kept across syncs while the store's is unchanged).
    copied: Option<u64>,
    contexts: Contexts,
    /// The definitions of the last few rows written, most recent first, each with the seq of
    /// the record holding it: an agent's events come in runs of one context or alternate
    /// between a few, and comparing with those definitions (pointers first, when the parts
    /// share them: see `compact::SharedDefinitions`) costs less than hashing the definition
    /// for the lookup in `contexts`.
    recent: Vec<(Arc<str>, u64)>,
    /// The Merkle leaves after the last complete 16-leaf subtree up to the copy's head, so
    /// that the row completing the next one carries its root (`Written::chunk`).
    open: Vec<Hash>,
}

impl AheadWriter {
    /// Whether the copy must be taken again ([`AheadWriter::sync`]) before rows are written
    /// ahead.
    pub(crate) fn needs_sync(&self) -> bool {
        self.state.is_none() && !self.never
    }

    /// Marks the copy out of date.
    pub(crate) fn unsync(&mut self) {
        self.state = None;
    }

    /// Takes the store's head, epoch and (when its epoch moved) context definitions. Call it
    /// when no append of rows written earlier is pending (they would not be counted).
    pub(crate) fn sync(&mut self, store: &Store) -> Result<()> {
        self.state = None;
        let Some(AheadState {
            head,
            epoch,
            contexts,
            open,
        }) = store.ahead_state(self.copied)?
        else {
            self.never = true;
            return Ok(());
        };
        self.open = open;
        if let Some(contexts) = contexts {
            self.contexts = contexts;
            self.copied = Some(epoch);
            self.recent.clear();
        }
        self.state = Some((head, epoch));
        Ok(())
    }

    /// Writes the rows of `parts` (each [`Parts::fill`]ed from the event of the same index in
    /// `pending`) ahead, one after the other from the copy's head, and returns their
    /// assumption; `None`, writing nothing, when the copy is out of date or a part did not
    /// fill (the copy is then out of date: the store splits such an event itself).
    pub(crate) fn write(&mut self, pending: &[Pending], parts: &mut [Parts]) -> Option<Ahead> {
        let (start, epoch) = self.state?;
        if parts.iter().any(|p| p.get().is_none()) {
            for p in parts.iter_mut() {
                p.ahead.seq = 0;
            }
            self.state = None;
            return None;
        }
        let mut head = start;
        for (p, event) in parts.iter_mut().zip(pending) {
            let mut record = std::mem::take(&mut p.ahead.record);
            record.clear();
            let next = head.seq + 1;
            let (own, definition) = p.get().expect("checked above");
            let shared = p.shared_definition();
            let same = |text: &Arc<str>| {
                shared.is_some_and(|d| Arc::ptr_eq(d, text)) || **text == *definition
            };
            let hit = self.recent.iter().position(|(text, _)| same(text));
            let known = match hit {
                Some(i) => Some(self.recent[i].1),
                None => self.contexts.get(definition).copied(),
            };
            let context = match known {
                Some(at) => Context::Ref(at),
                None => Context::Inline(definition),
            };
            compact::write_record_v2(&mut record, context, own, next);
            let defines = known.is_none();
            if defines {
                self.contexts.insert(definition.to_string(), next);
            }
            let at = known.unwrap_or(next);
            match hit {
                Some(i) => self.recent[..=i].rotate_right(1),
                None => {
                    let text = shared.map_or_else(|| Arc::from(definition), Arc::clone);
                    self.recent.truncate(RECENT - 1);
                    self.recent.insert(0, (text, at));
                }
            }
            let hash = chain_hash(&head.hash, record.as_bytes());
            let leaf = leaf_hash(record.as_bytes());
            self.open.push(leaf);
            p.ahead.chunk = None;
            if next % CHUNK == 0 {
                debug_assert_eq!(self.open.len() as u64, CHUNK);
                p.ahead.chunk = (self.open.len() as u64 == CHUNK).then(|| root_of(&self.open));
                self.open.clear();
            }
            p.ahead.leaf = leaf;
            p.ahead.key = compact::short_id_key(&event.id);
            p.ahead.hash = hash;
            p.ahead.record = record;
            p.ahead.seq = next;
            p.ahead.defines = defines;
            head = Head { seq: next, hash };
        }
        self.state = Some((head, epoch));
        Some(Ahead { start, epoch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::store::tests::pending;
    use crate::ledger::{Durability, Pending};

    fn parts_of(batch: &[Pending]) -> Vec<Parts> {
        batch
            .iter()
            .map(|p| {
                let mut parts = Parts::default();
                parts.fill(&p.event_json, &p.classification_json);
                parts
            })
            .collect()
    }

    fn classified(mut p: Pending, tag: &str) -> Pending {
        p.classification_json = format!(r#"{{"tag":"{tag}"}}"#);
        p
    }

    /// Appends `batch` to `store` with the rows written ahead and plainly to `plain`: the
    /// same outcomes. Whether the rows written ahead were taken.
    fn append_both(
        store: &mut Store,
        plain: &mut Store,
        batch: &[Pending],
        parts: &[Parts],
        ahead: Option<Ahead>,
    ) -> bool {
        let (outcomes, held) = store
            .append_with_parts(batch, parts, ahead.as_ref())
            .unwrap();
        assert_eq!(outcomes, plain.append(batch).unwrap());
        held
    }

    /// Groups written ahead as the recorder does (the next one before the previous one is
    /// appended, so the group after one whose assumption failed fails too, and the copy is
    /// taken again once nothing is pending), with duplicates, conflicts, new contexts and
    /// another writer's append between two groups: the rows of appending every group plainly,
    /// and the rows written ahead taken where their assumption held.
    #[test]
    fn rows_written_ahead_are_the_rows_append_writes() {
        let groups: Vec<Vec<Pending>> = vec![
            vec![pending("a", 1, "{}"), pending("b", 2, r#"{"x":1}"#)],
            vec![
                pending("c", 3, "{}"),
                classified(pending("d", 4, "{}"), "stateful"),
            ],
            // A duplicate of "a" and a conflict with "b" in the middle; new contexts after.
            vec![
                pending("e", 5, "{}"),
                pending("a", 1, "{}"),
                classified(pending("f", 6, "{}"), "other"),
                pending("b", 9, r#"{"x":2}"#),
                classified(pending("g", 7, "{}"), "fourth"),
            ],
            vec![
                pending("h", 8, "{}"),
                classified(pending("i", 9, "{}"), "other"),
            ],
            vec![classified(pending("j", 10, "{}"), "fifth")],
            vec![
                pending("k", 11, "{}"),
                classified(pending("l", 12, "{}"), "sixth"),
            ],
            vec![
                pending("m", 13, "{}"),
                classified(pending("o", 15, "{}"), "fifth"),
            ],
            vec![
                pending("p", 16, "{}"),
                classified(pending("q", 17, "{}"), "seventh"),
            ],
        ];
        // Another writer's event, in a context of its own.
        let foreign = classified(pending("x", 99, "{}"), "foreign");
        let mut plain = Store::open(None, Durability::Batch).unwrap();
        let mut store = Store::open(None, Durability::Batch).unwrap();
        let mut writer = AheadWriter::default();
        let mut held = Vec::new();
        let mut queued: Option<(usize, Vec<Parts>, Option<Ahead>)> = None;
        for (i, group) in groups.iter().enumerate() {
            if writer.needs_sync() {
                if let Some((k, parts, ahead)) = queued.take() {
                    let ok = append_both(&mut store, &mut plain, &groups[k], &parts, ahead);
                    held.push(ok);
                }
                writer.sync(&store).unwrap();
            }
            let mut parts = parts_of(group);
            let ahead = writer.write(group, &mut parts);
            assert!(ahead.is_some(), "group {i}");
            if let Some((k, parts, ahead)) = queued.replace((i, parts, ahead)) {
                let ok = append_both(&mut store, &mut plain, &groups[k], &parts, ahead);
                if !ok {
                    writer.unsync();
                }
                held.push(ok);
            }
            if i == 5 {
                plain.append(std::slice::from_ref(&foreign)).unwrap();
                store.append(std::slice::from_ref(&foreign)).unwrap();
            }
        }
        let (k, parts, ahead) = queued.take().unwrap();
        held.push(append_both(
            &mut store, &mut plain, &groups[k], &parts, ahead,
        ));
        // 2 held a duplicate and a conflict, and 3 was written assuming 2 went as written;
        // 5 was written before the other writer's event and appended after it; 6 assuming 5
        // went as written.
        assert_eq!(held, [true, true, false, false, true, false, false, true]);
        let n = 17;
        assert_eq!(plain.stored_rows().len(), n);
        assert_eq!(store.stored_rows(), plain.stored_rows());
        assert_eq!(store.head().unwrap(), plain.head().unwrap());
        let n = n as u64;
        assert_eq!(store.tree_root(n).unwrap(), plain.tree_root(n).unwrap());
        assert!(store.tree_problem().unwrap().is_none());
        assert!(crate::ledger::verify(&store, None).unwrap().ok);
        let next = [pending("n", 14, "{}")];
        assert_eq!(store.append(&next).unwrap(), plain.append(&next).unwrap());
        assert_eq!(store.stored_rows(), plain.stored_rows());
    }

    /// Event `i`'s id: a UUID whose 8-byte key (`compact::short_id_key`) is event `i - 1`'s
    /// when `twin` (they differ in a byte the key leaves out).
    fn uuid(i: u64, twin: bool) -> String {
        let b = if twin { 'e' } else { 'd' };
        format!(
            "01938a1c-{:04x}-7{b}00-8000-0000{:08x}",
            i >> 16,
            i & 0xffff_ffff
        )
    }

    /// Groups of hundreds of events written ahead, appended a block of rows at a time: with a
    /// duplicate in a block (the rest of the group is then written by the store) and, in
    /// another group, an id whose 8-byte key is another id's (that block is appended row by
    /// row, and the blocks after it as blocks again): the rows of appending them plainly.
    #[test]
    fn rows_written_ahead_in_blocks_are_the_rows_append_writes() {
        let event = |i: u64, twin: bool| pending(&uuid(i, twin), i as i64, "{}");
        let groups: Vec<Vec<Pending>> = vec![
            (1..=200).map(|i| event(i, false)).collect(),
            (201..=400)
                .map(|i| {
                    if i == 330 {
                        event(329, true)
                    } else {
                        event(i, false)
                    }
                })
                .collect(),
            (401..=600)
                .map(|i| {
                    if i == 470 {
                        event(5, false)
                    } else {
                        event(i, false)
                    }
                })
                .collect(),
            (601..=664).map(|i| event(i, false)).collect(),
        ];
        let mut plain = Store::open(None, Durability::Batch).unwrap();
        let mut store = Store::open(None, Durability::Batch).unwrap();
        let mut writer = AheadWriter::default();
        let mut held = Vec::new();
        for group in &groups {
            if writer.needs_sync() {
                writer.sync(&store).unwrap();
            }
            let mut parts = parts_of(group);
            let ahead = writer.write(group, &mut parts);
            assert!(ahead.is_some());
            // Each row completing a 16-leaf subtree carries its root, from the leaves the
            // writer assumed (its own rows, and the store's where it took its copy).
            for p in &parts {
                assert_eq!(p.ahead.chunk.is_some(), p.ahead.seq % CHUNK == 0);
            }
            let ok = append_both(&mut store, &mut plain, group, &parts, ahead);
            if !ok {
                writer.unsync();
            }
            held.push(ok);
        }
        assert_eq!(held, [true, true, false, true]);
        assert_eq!(plain.stored_rows().len(), 663);
        assert_eq!(store.stored_rows(), plain.stored_rows());
        let ids = |s: &Store| -> Vec<(Vec<u8>, i64)> {
            let sql = "SELECT key, seq FROM ids ORDER BY key";
            let mut stmt = s.connection().prepare(sql).unwrap();
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.map(|r| r.unwrap()).collect()
        };
        assert_eq!(ids(&store), ids(&plain));
        assert_eq!(store.head().unwrap(), plain.head().unwrap());
        assert_eq!(store.tree_root(663).unwrap(), plain.tree_root(663).unwrap());
        assert!(store.tree_problem().unwrap().is_none());
        assert!(crate::ledger::verify(&store, None).unwrap().ok);
    }
}
