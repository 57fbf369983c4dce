//! Verification: re-derive every hash of the chain, in one streaming pass, and say where and
//! how the ledger first goes wrong.
//!
//! Two signals per row: the hash link (`SHA-256(prev || record)` must equal the stored hash,
//! or in version 3 its stored check: the first 4 bytes, on rows that need not keep it whole)
//! and the `seq` embedded at the end of the record (it must equal the row's `seq`, which must
//! be the row's position 1, 2, 3, ...). The embedded seq is covered by the hash, so renumbering
//! rows after a deletion, or moving them, shows even when the attacker re-derived every hash.
//! The first failing row is then classified with a few extra lookups (only on failure):
//! - `deleted`: a gap in the seqs, or a row holding the record of a later seq whose own record
//!   appears nowhere after it (rows were renumbered);
//! - `reordered`: a row holding the record of another seq, while its own record is further on;
//! - `inserted`: a row the chain continues correctly without, or whose embedded seq repeats an
//!   earlier one, or a second row numbered like the one before it with another record;
//! - `duplicated`: a row that is an exact copy of the row before it, seq and all (only an
//!   altered `events` table, without its primary key, can hold one);
//! - `edited`: a record or hash changed in place (the next row tells which, when there is one);
//! - against a kept [`Head`]: `truncated` (the ledger ends before the head's seq) and `swapped`
//!   (the hash at the head's seq differs: another ledger, or history rewritten up to there);
//! - `damaged`: SQLite cannot read the file past some row (a corrupt page, e.g. a disk fault):
//!   everything before it verified, nothing after it could be checked;
//! - `altered`: the schema is not the one statemeter creates (a trigger, a view, an extra or
//!   rebuilt table or index, a missing table): a trigger can drop or change events as they are
//!   appended without touching a stored row, leaving a chain that verifies;
//! - `deleted` / `edited` for the ruleset catalogues: every `ruleset_digest` a record names must
//!   be stored, with a catalogue whose text hashes to it (else every explanation is lost).
//!
//! Performance notes: rows are streamed from one `SELECT` (one consistent snapshot in WAL) and
//! borrowed, not copied; per row the work is one SHA-256 and a scan of the record's last bytes.

use rusqlite::OptionalExtension;

use super::chain::{chain_hash, embedded_seq, Head};
use super::compact::{Context, Keys};
use super::merkle::leaf_hash;
use super::schema::HASH_STRIDE;
use super::store::{stored_matches, Store};
use super::tree;
use crate::error::{Error, Result};

/// The result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// True when every hash re-derives, every seq is in place and the kept head (if any) holds.
    pub ok: bool,
    /// Number of events (rows) in the ledger.
    pub events: u64,
    /// The ledger's head: its last seq and stored hash (zero hash if that is unreadable).
    pub head: Head,
    /// The first seq that is wrong (for `truncated`, the first missing seq; for `swapped`, the
    /// kept head's seq; 1 for a row numbered below 1; for a missing catalogue, the first event
    /// naming it); `None` when no seq is (an altered schema, an edited catalogue).
    pub first_bad_seq: Option<u64>,
    /// What is wrong, starting with one of `edited`, `deleted`, `inserted`, `duplicated`,
    /// `reordered`, `truncated`, `swapped`, `damaged`, `altered`.
    pub problem: Option<String>,
}

/// The first failing row, copied out of the stream.
struct BadRow {
    pos: u64,
    record: Vec<u8>,
    stored: Vec<u8>,
    computed: [u8; 32],
    /// Hash before this row, and before the previous row.
    prev: [u8; 32],
    prev2: [u8; 32],
}

enum Failure {
    /// The row at position `pos` carries seq `found`; `copy`: it is the previous row again.
    Gap {
        pos: u64,
        found: i64,
        copy: bool,
    },
    Row(BadRow),
    Swapped {
        seq: u64,
    },
    /// Version 3: the row at `seq` keeps only a check of its chain hash (which agrees) where
    /// the format keeps the whole hash; `last`: it is the last row.
    Short {
        seq: u64,
        last: bool,
    },
}

/// The catalogue digests the records name: each with the first seq naming it and how many
/// records do (records of one ledger nearly always name one or two).
#[derive(Default)]
struct Named(
    Vec<(Vec<u8>, u64, u64)>,
    std::collections::HashMap<u64, Vec<u8>>,
);

impl Named {
    fn add(&mut self, seq: u64, record: &[u8]) {
        let digest = match named_digest(record) {
            Some(digest) => {
                if record.starts_with(b"{\"c\":{") {
                    self.1.insert(seq, digest.to_vec());
                }
                digest.to_vec()
            }
            // A version-2 record names the catalogue of the context it refers to.
            None => match context_ref(record).and_then(|at| self.1.get(&at)) {
                Some(digest) => digest.clone(),
                None => return,
            },
        };
        match self.0.iter_mut().rev().find(|(d, _, _)| *d == digest) {
            Some((_, _, n)) => *n += 1,
            None => self.0.push((digest, seq, 1)),
        }
    }
}

/// The seq a version-2 record takes its context from; `None` for any other record.
fn context_ref(record: &[u8]) -> Option<u64> {
    let rest = record.strip_prefix(b"{\"c\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The `ruleset_digest` a record names: the first `"ruleset_digest":"` in the record is the
/// classification's (it comes first in the canonical record, and a key inside a JSON string
/// would have its quotes escaped).
fn named_digest(record: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"ruleset_digest\":\"";
    // A version-2 record referring to its context names no classification of its own (its
    // `e` may hold the same text inside attrs).
    if record.starts_with(b"{\"c\":") && !record.starts_with(b"{\"c\":{") {
        return None;
    }
    let at = memchr::memmem::find(record, KEY)? + KEY.len();
    let len = memchr::memchr(b'"', &record[at..])?;
    Some(&record[at..at + len])
}

/// Version-2 records: the records defining a context (with the keys of the context's event),
/// and the first record whose context is not usable: a reference naming no earlier
/// definition, a definition that is not `{"classification":...,"event":...}`, or an `e` that
/// shadows a key of its context (the event it expands to would hold that key twice).
#[derive(Default)]
struct Contexts {
    defined: std::collections::HashMap<u64, super::compact::ContextKeys>,
    bad: Option<(u64, String)>,
}

impl Contexts {
    fn add(&mut self, seq: u64, record: &[u8]) {
        if self.bad.is_some() || !record.starts_with(b"{\"c\":") {
            return;
        }
        if let Some(problem) = self.problem(seq, record) {
            self.bad = Some((seq, problem));
        }
    }

    fn problem(&mut self, seq: u64, record: &[u8]) -> Option<String> {
        let Some((context, own)) = std::str::from_utf8(record)
            .ok()
            .and_then(super::compact::record_parts_v2)
        else {
            return Some(format!(
                "edited: the record at seq {seq} is not a version-2 record (c, e, s, v)"
            ));
        };
        let (keys, from) = match context {
            Context::Inline(definition) => {
                let Some(keys) = super::compact::ContextKeys::of(definition) else {
                    return Some(format!(
                        "edited: the record at seq {seq} defines a context that is not \
                         {{\"classification\":...,\"event\":{{...}}}}"
                    ));
                };
                (&*self.defined.entry(seq).or_insert(keys), String::new())
            }
            Context::Ref(at) => match self.defined.get(&at).filter(|_| at < seq) {
                Some(keys) => (keys, format!(" (defined at seq {at})")),
                None => {
                    return Some(format!(
                        "edited: the record at seq {seq} takes its context from seq {at}, \
                         which is not an earlier record defining one"
                    ))
                }
            },
        };
        match super::compact::shadowed_key(own, keys) {
            Keys::Disjoint => None,
            Keys::Twice(key) => Some(format!(
                "edited: the record at seq {seq} holds the event key {key:?} twice, in its e \
                 and in its context{from}: the event it stands for is ambiguous"
            )),
            Keys::NotAnObject => Some(format!(
                "edited: the record at seq {seq} is not a version-2 record (its e is not an \
                 object)"
            )),
        }
    }
}

/// The checks that need only the records, on a second thread beside the chain: the
/// version-2 contexts ([`Contexts`]) and the tree's hashes (a leaf and an interior hash per
/// record). Records go over in batches; the subtrees they complete come back and are checked
/// against the stored nodes by the reading thread, which holds the ledger's connection.
struct Beside<'scope> {
    batch: Vec<u8>,
    ends: Vec<usize>,
    to: Option<std::sync::mpsc::SyncSender<(Vec<u8>, Vec<usize>)>>,
    from: std::sync::mpsc::Receiver<Vec<(u32, u64, [u8; 32])>>,
    thread: std::thread::ScopedJoinHandle<'scope, Contexts>,
}

/// Records per batch: large enough that the hand-over costs nothing per record, small enough
/// that the batches in flight stay a few hundred KiB.
const BATCH: usize = 1024;

impl<'scope> Beside<'scope> {
    /// `tree`: whether to re-derive the tree (the ledger stores one).
    fn spawn(scope: &'scope std::thread::Scope<'scope, '_>, tree: bool) -> Self {
        let (to, batches) = std::sync::mpsc::sync_channel::<(Vec<u8>, Vec<usize>)>(2);
        let (done, from) = std::sync::mpsc::channel();
        let thread = scope.spawn(move || {
            let mut contexts = Contexts::default();
            let mut subtrees = tree.then(tree::Completed::default);
            let mut seq = 0;
            for (bytes, ends) in batches {
                let mut out = Vec::new();
                let mut start = 0;
                for end in ends {
                    let record = &bytes[start..end];
                    seq += 1;
                    contexts.add(seq, record);
                    if let Some(subtrees) = subtrees.as_mut() {
                        subtrees.push(leaf_hash(record), &mut out);
                    }
                    start = end;
                }
                // An error: the verification stopped, nothing more is checked.
                if subtrees.is_some() && done.send(out).is_err() {
                    break;
                }
            }
            contexts
        });
        Beside {
            batch: Vec::with_capacity(BATCH * 256),
            ends: Vec::with_capacity(BATCH),
            to: Some(to),
            from,
            thread,
        }
    }

    /// Queues the next record; checks the subtrees completed so far.
    fn add(&mut self, record: &[u8], tree: Option<&mut tree::Checker<'_, '_>>) -> Result<()> {
        self.batch.extend_from_slice(record);
        self.ends.push(self.batch.len());
        if self.ends.len() == BATCH {
            self.send();
            if let Some(tree) = tree {
                for nodes in self.from.try_iter() {
                    for (level, idx, hash) in nodes {
                        tree.check(level, idx, &hash)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn send(&mut self) {
        let batch = (
            std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH * 256)),
            std::mem::replace(&mut self.ends, Vec::with_capacity(BATCH)),
        );
        if let Some(to) = &self.to {
            // Fails only when the thread ended early (it panicked): joining it reports that.
            let _ = to.send(batch);
        }
    }

    /// Hands over the last records, checks every subtree still to come and returns what the
    /// contexts check found.
    fn finish(mut self, mut tree: Option<&mut tree::Checker<'_, '_>>) -> Result<Contexts> {
        self.send();
        self.to = None; // the thread ends once it has checked everything sent
        for nodes in self.from.iter() {
            if let Some(tree) = tree.as_deref_mut() {
                for (level, idx, hash) in nodes {
                    tree.check(level, idx, &hash)?;
                }
            }
        }
        self.thread
            .join()
            .map_err(|_| Error::Integrity("the verification's checking thread failed".into()))
    }
}

/// A catalogue problem: a stored catalogue whose text no longer matches its digest (records
/// name their catalogue by digest, so an edited explanation is tampering too), or a digest a
/// record names with no catalogue stored under it (deleted, or replaced by another whose text
/// hashes to another digest), with the first seq naming it (`None` for an edited one: the
/// catalogue is wrong, not an event).
fn catalogue_problem(store: &Store, named: &Named) -> Result<Option<(Option<u64>, String)>> {
    let stored = store.catalogues()?;
    for (digest, name, text) in &stored {
        if crate::canonical::catalogue_digest(text) != *digest {
            return Ok(Some((
                None,
                format!(
                    "edited: the stored catalogue of ruleset {name:?} does not match its digest {digest}"
                ),
            )));
        }
    }
    for (digest, first, count) in &named.0 {
        if !stored.iter().any(|(d, _, _)| d.as_bytes() == &digest[..]) {
            let digest = String::from_utf8_lossy(digest);
            let others = match count - 1 {
                0 => String::new(),
                1 => " and 1 later event".to_string(),
                n => format!(" and {n} later events"),
            };
            return Ok(Some((
                Some(*first),
                format!(
                    "deleted: the ruleset catalogue {digest:?} named by seq {first}{others} is \
                     not stored in the ledger (removed, or replaced by one with another \
                     digest): their evidence cannot be explained"
                ),
            )));
        }
    }
    Ok(None)
}

/// Whether the ledger has its `events` table at all.
fn has_events_table(store: &Store) -> Result<bool> {
    Ok(store.connection().query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'events'",
        [],
        |r| r.get(0),
    )?)
}

/// `altered: ...` for a schema statemeter did not create.
fn altered(problems: &[String]) -> String {
    format!(
        "altered: the ledger's schema is not the one statemeter creates: {}",
        problems.join("; ")
    )
}

/// Re-derives a chain from its rows held outside the ledger (an exported dataset's `seq`,
/// `record` and `hash` columns), in ascending `seq` order: the same links as [`verify`]
/// (`SHA-256(prev || record)` equal to the stored hash, the embedded seq equal to the row's,
/// seqs 1, 2, 3, ...). The first failing row is named: `deleted` (a gap), `inserted` (a seq
/// repeated), `edited` (a record or hash that does not re-derive), and against a kept head
/// `truncated` or `swapped`.
pub fn verify_rows<'a>(
    rows: impl IntoIterator<Item = (i64, &'a [u8], &'a [u8])>,
    head: Option<&Head>,
) -> Verification {
    let (mut pos, mut prev) = (0u64, [0u8; 32]);
    let fail = |pos: u64, prev: [u8; 32], bad: u64, problem: String| Verification {
        ok: false,
        events: pos,
        head: Head {
            seq: pos,
            hash: prev,
        },
        first_bad_seq: Some(bad),
        problem: Some(problem),
    };
    for (seq, record, stored) in rows {
        let expected = pos + 1;
        if seq < expected as i64 {
            return fail(
                pos,
                prev,
                expected,
                format!("inserted: seq {seq} appears twice"),
            );
        }
        if seq > expected as i64 {
            let missing = if seq as u64 == expected + 1 {
                format!("seq {expected}")
            } else {
                format!("seqs {expected} to {}", seq - 1)
            };
            return fail(pos, prev, expected, format!("deleted: {missing} missing"));
        }
        let computed = chain_hash(&prev, record);
        if computed[..] != *stored || embedded_seq(record) != Some(expected) {
            return fail(
                pos,
                prev,
                expected,
                format!("edited: the record or hash at seq {expected} does not re-derive"),
            );
        }
        if head.is_some_and(|h| h.seq == expected && h.hash != computed) {
            return fail(
                pos,
                prev,
                expected,
                format!("swapped: the hash at seq {expected} is not the kept head's"),
            );
        }
        pos = expected;
        prev = computed;
    }
    match head.filter(|h| h.seq > pos) {
        Some(h) => fail(
            pos,
            prev,
            pos + 1,
            format!(
                "truncated: the rows end at seq {pos} but the kept head is at seq {}",
                h.seq
            ),
        ),
        None => Verification {
            ok: true,
            events: pos,
            head: Head {
                seq: pos,
                hash: prev,
            },
            first_bad_seq: None,
            problem: None,
        },
    }
}

/// [`verify`], and when the kept head says which ledger it was read from (`kept_ledger_id`),
/// that `store` is that ledger: another id is `swapped` (`first_bad_seq` the head's seq),
/// even when the chains agree (two ledgers can hold the same events). A ledger without an id
/// (made before ledgers had one, opened read-only since) is checked by its chain only.
pub fn verify_identity(
    store: &Store,
    head: Option<&Head>,
    kept_ledger_id: Option<&str>,
) -> Result<Verification> {
    let mut v = verify(store, head)?;
    let Some(kept) = kept_ledger_id.filter(|_| v.ok) else {
        return Ok(v);
    };
    if let Some(id) = store.ledger_id()? {
        if kept != id {
            v.ok = false;
            v.first_bad_seq = Some(head.map_or(1, |h| h.seq.max(1)));
            v.problem = Some(format!(
                "swapped: the kept head is of ledger {kept}; this is ledger {id}"
            ));
        }
    }
    Ok(v)
}

/// Re-derives every hash of `store` and checks it against `head`, a head kept earlier.
pub fn verify(store: &Store, head: Option<&Head>) -> Result<Verification> {
    if let Some(h) = head {
        if h.seq == 0 && h.hash != [0; 32] {
            return Err(Error::validation(
                "head",
                "seq 0 must come with the zero hash",
            ));
        }
    }
    let schema = store.schema_problems()?;
    if !has_events_table(store)? {
        return Ok(Verification {
            ok: false,
            events: 0,
            head: Head::EMPTY,
            first_bad_seq: Some(1),
            problem: Some(altered(&schema)),
        });
    }
    let (mut pos, mut prev, mut prev2) = (0u64, [0u8; 32], [0u8; 32]);
    let version = store.version();
    // Version 3: the length of the last row's stored hash (it must be whole).
    let mut last_len = 32;
    let mut failure = None;
    let mut named = Named::default();
    let mut contexts = None;
    // The stored Merkle tree, re-derived in the same pass (its cursor opened first, so both
    // read one snapshot).
    let mut nodes = store.connection().prepare(tree::NODES_IN_ORDER);
    let mut tree = match nodes.as_mut() {
        Ok(stmt) => tree::Checker::new(store.connection(), stmt)?,
        Err(_) => None,
    };
    // The contexts and the tree's hashes are checked on a second thread from batches of
    // records; the comparison with the stored nodes stays here.
    let scanned = std::thread::scope(|scope| {
        let mut beside = Beside::spawn(scope, tree.is_some());
        let scanned = store.for_each_row(|seq, record, stored| {
            pos += 1;
            if seq != pos as i64 {
                let copy = pos > 1
                    && stored_matches(stored, &prev, version)
                    && chain_hash(&prev2, record) == prev;
                failure = Some(Failure::Gap {
                    pos,
                    found: seq,
                    copy,
                });
                return Ok(false);
            }
            let computed = chain_hash(&prev, record);
            if !stored_matches(stored, &computed, version) || embedded_seq(record) != Some(pos) {
                failure = Some(Failure::Row(BadRow {
                    pos,
                    record: record.to_vec(),
                    stored: stored.to_vec(),
                    computed,
                    prev,
                    prev2,
                }));
                return Ok(false);
            }
            if version >= 3 && pos % HASH_STRIDE == 0 && stored.len() != 32 {
                failure = Some(Failure::Short {
                    seq: pos,
                    last: false,
                });
                return Ok(false);
            }
            if head.is_some_and(|h| h.seq == pos && h.hash != computed) {
                failure = Some(Failure::Swapped { seq: pos });
                return Ok(false);
            }
            last_len = stored.len();
            named.add(pos, record);
            beside.add(record, tree.as_mut())?;
            prev2 = prev;
            prev = computed;
            Ok(true)
        });
        if scanned.is_ok() && failure.is_none() {
            contexts = Some(beside.finish(tree.as_mut())?);
            if version >= 3 && pos > 0 && last_len != 32 {
                failure = Some(Failure::Short {
                    seq: pos,
                    last: true,
                });
            }
        }
        scanned
    });
    match scanned {
        Ok(()) => {}
        // A corrupt page (the error conversion marks SQLite's corruption codes as Integrity):
        // report it like any other damage instead of failing the verification.
        Err(Error::Integrity(m)) if failure.is_none() => {
            return Ok(Verification {
                ok: false,
                events: store.len().unwrap_or(pos),
                head: stored_head(store).unwrap_or(Head {
                    seq: pos,
                    hash: prev,
                }),
                first_bad_seq: Some(pos + 1),
                problem: Some(format!(
                    "damaged: the file cannot be read after seq {pos} ({m}); seqs 1 to {pos} verified"
                )),
            });
        }
        Err(e) => return Err(e),
    }
    let (first_bad_seq, problem) = match failure {
        None => {
            let tree_problem = match tree {
                Some(tree) => tree.finish()?,
                None => None,
            };
            let problem = if schema.is_empty() {
                match (contexts.and_then(|c| c.bad), tree_problem) {
                    (Some((seq, problem)), _) => Some((Some(seq), problem)),
                    (None, Some(problem)) => Some((None, problem)),
                    (None, None) => catalogue_problem(store, &named)?,
                }
            } else {
                Some((None, altered(&schema)))
            };
            if let Some((first_bad_seq, problem)) = problem {
                return Ok(Verification {
                    ok: false,
                    events: pos,
                    head: Head {
                        seq: pos,
                        hash: prev,
                    },
                    first_bad_seq,
                    problem: Some(problem),
                });
            }
            let kept = head.filter(|h| h.seq > pos);
            let verification = Verification {
                ok: kept.is_none(),
                events: pos,
                head: Head {
                    seq: pos,
                    hash: prev,
                },
                first_bad_seq: kept.map(|_| pos + 1),
                problem: kept.map(|h| {
                    format!(
                        "truncated: the ledger ends at seq {pos} but the kept head is at seq {}",
                        h.seq
                    )
                }),
            };
            return Ok(verification);
        }
        Some(Failure::Gap { pos, found, .. }) if found > pos as i64 => (
            pos,
            format!(
                "deleted: {} missing (the ledger jumps from seq {} to seq {found})",
                seq_range(pos, found as u64 - 1),
                pos - 1
            ),
        ),
        Some(Failure::Gap { found, .. }) if found < 1 => (
            1,
            format!("inserted: a row numbered seq {found}, below 1, comes before seq 1"),
        ),
        // Rows are read in seq order and seqs 1 to pos - 1 were in place: this row repeats
        // seq pos - 1, which only an `events` table rebuilt without its primary key allows.
        Some(Failure::Gap {
            pos, found, copy, ..
        }) => (
            found as u64,
            if copy {
                format!("duplicated: the record of seq {found} appears again at row {pos}")
            } else {
                format!(
                    "inserted: row {pos} is a second row numbered seq {found}, with another \
                     record"
                )
            },
        ),
        Some(Failure::Short { seq, last: true }) => (
            seq + 1,
            format!(
                "truncated: the last row (seq {seq}) keeps only a check of its chain hash, and \
                 the last row of every append keeps the whole hash: rows after seq {seq} were \
                 removed"
            ),
        ),
        Some(Failure::Short { seq, last: false }) => (
            seq,
            format!(
                "edited: the row at seq {seq} keeps only a check of its chain hash, where the \
                 format keeps the whole hash (every {HASH_STRIDE}th row)"
            ),
        ),
        Some(Failure::Swapped { seq }) => (
            seq,
            format!(
                "swapped: the hash at seq {seq} differs from the kept head: this is another \
                 ledger, or its history up to seq {seq} was rewritten"
            ),
        ),
        Some(Failure::Row(bad)) => match diagnose(store, &bad) {
            Ok(d) => d,
            // The row is bad and the rows after it cannot even be read to say how.
            Err(Error::Integrity(m)) => (
                bad.pos,
                format!(
                    "edited: the row at seq {} does not re-derive, and the file is damaged after it ({m})",
                    bad.pos
                ),
            ),
            Err(e) => return Err(e),
        },
    };
    // A corrupt file may not even give its length or last row: fall back to what was read.
    let events = match store.len() {
        Err(Error::Integrity(_)) => pos,
        other => other?,
    };
    let head = match stored_head(store) {
        Err(Error::Integrity(_)) => Head {
            seq: pos,
            hash: prev,
        },
        other => other?,
    };
    Ok(Verification {
        ok: false,
        events,
        head,
        first_bad_seq: Some(first_bad_seq),
        problem: Some(problem),
    })
}

/// `seq 7` or `seqs 7 to 9`.
fn seq_range(first: u64, last: u64) -> String {
    if first == last {
        format!("seq {first}")
    } else {
        format!("seqs {first} to {last}")
    }
}

/// Classifies the first row whose hash or embedded seq is wrong.
fn diagnose(store: &Store, bad: &BadRow) -> Result<(u64, String)> {
    let a = bad.pos;
    let version = store.version();
    let next = row(store, a + 1)?;
    // Does the chain continue correctly if row `a` is skipped?
    let skippable = next
        .as_ref()
        .is_some_and(|(rec, hash)| stored_matches(hash, &chain_hash(&bad.prev, rec), version));
    let inserted_here =
        || format!("inserted: the row at seq {a} does not belong (the chain continues without it)");
    let found = match embedded_seq(&bad.record) {
        Some(e) if e < a => {
            if a > 1 && stored_matches(&bad.stored, &chain_hash(&bad.prev2, &bad.record), version) {
                let msg = format!(
                    "inserted: the row at seq {} does not belong (the chain continues without it)",
                    a - 1
                );
                return Ok((a - 1, msg));
            }
            let msg = format!("inserted: the row at seq {a} repeats the record of seq {e}");
            return Ok((a, msg));
        }
        Some(e) if e > a => e,
        Some(_) | None if skippable => return Ok((a, inserted_here())),
        Some(_) => return Ok((a, edited(a, bad, next.as_ref(), version))),
        None => {
            let msg = format!(
                "edited: the record at seq {a} is not a valid record (it does not end with its seq)"
            );
            return Ok((a, msg));
        }
    };
    if let Some(b) = holder_of(store, a, found)? {
        let msg = format!(
            "reordered: the row at seq {a} holds the record of seq {found}; \
             the record of seq {a} is at seq {b}"
        );
        return Ok((a, msg));
    }
    if skippable {
        return Ok((a, inserted_here()));
    }
    let msg = format!(
        "deleted: the record of seq {a} is missing (the row at seq {a} holds the record of seq \
         {found}: later rows were renumbered)"
    );
    Ok((a, msg))
}

/// An in-place edit at seq `a`: the next row's link tells whether the record or the hash
/// changed (a version-3 row keeping only a check of its hash links nothing).
fn edited(a: u64, bad: &BadRow, next: Option<&(Vec<u8>, Vec<u8>)>, version: u32) -> String {
    let links = |from: &[u8]| {
        next.is_some_and(|(rec, hash)| {
            <[u8; 32]>::try_from(from)
                .is_ok_and(|f| stored_matches(hash, &chain_hash(&f, rec), version))
        })
    };
    if links(&bad.stored) {
        format!("edited: the record at seq {a} was changed (its stored hash no longer matches)")
    } else if links(&bad.computed) {
        format!("edited: the hash at seq {a} was changed (the record still links to the next one)")
    } else {
        format!("edited: the record or hash at seq {a} was changed")
    }
}

/// The record and hash of the row at `seq`, if there is one.
fn row(store: &Store, seq: u64) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let sql = "SELECT record, hash FROM events WHERE seq = ?1";
    Ok(store
        .connection()
        .query_row(sql, [seq as i64], |r| {
            let bytes = |i| r.get_ref(i).map(|v| v.as_bytes().unwrap_or(b"").to_vec());
            Ok((bytes(0)?, bytes(1)?))
        })
        .optional()?)
}

/// The seq of a row after `a` whose record embeds seq `a`, looking first at `hint` (a swap).
fn holder_of(store: &Store, a: u64, hint: u64) -> Result<Option<u64>> {
    if let Some((record, _)) = row(store, hint)? {
        if embedded_seq(&record) == Some(a) {
            return Ok(Some(hint));
        }
    }
    let suffix = format!(",\"seq\":{a},\"v\":1}}");
    let sql = "SELECT seq FROM events \
               WHERE seq > ?1 AND substr(CAST(record AS BLOB), -?2) = CAST(?3 AS BLOB) \
               ORDER BY seq LIMIT 1";
    let found: Option<i64> = store
        .connection()
        .query_row(
            sql,
            rusqlite::params![a as i64, suffix.len() as i64, suffix],
            |r| r.get(0),
        )
        .optional()?;
    Ok(found.map(|s| s as u64))
}

/// The last row's seq and stored hash, read leniently (a damaged hash reads as zeros).
fn stored_head(store: &Store) -> Result<Head> {
    let sql = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1";
    let head = store
        .connection()
        .query_row(sql, [], |r| {
            let seq: i64 = r.get(0)?;
            let hash = r
                .get_ref(1)?
                .as_bytes()
                .ok()
                .and_then(|h| <[u8; 32]>::try_from(h).ok());
            Ok(Head {
                seq: seq.max(0) as u64,
                hash: hash.unwrap_or([0; 32]),
            })
        })
        .optional()?;
    Ok(head.unwrap_or(Head::EMPTY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::chain::write_record;
    use crate::ledger::store::{Durability, Pending};

    /// A ledger of `n` events whose attrs carry `tag`, so two ledgers can differ.
    fn ledger(n: u64, tag: &str) -> Store {
        let mut store = Store::open_v1_in_memory().unwrap();
        let batch: Vec<Pending> = (1..=n)
            .map(|i| Pending {
                id: format!("{tag}-{i}"),
                event_json: format!(
                    r#"{{"attrs":{{"seq":{i},"t":"{tag}"}},"id":"{tag}-{i}","ts":{i}}}"#
                ),
                classification_json: r#"{"tag":"stateless"}"#.into(),
                ts_explicit: true,
            })
            .collect();
        store.append(&batch).unwrap();
        store
    }

    #[test]
    fn corrupt_pages_are_reported_as_damage_not_raised() {
        // Overwrite the b-tree header of one page in the middle of a file ledger: SQLite then
        // fails while reading, and verify() reports it instead of failing.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        {
            let mut store = Store::open(Some(&path), Durability::Sync).unwrap();
            let batch: Vec<Pending> = (1..=400)
                .map(|i| Pending {
                    id: format!("e{i}"),
                    event_json: format!(
                        r#"{{"attrs":{{"pad":"{}"}},"id":"e{i}","ts":{i}}}"#,
                        "x".repeat(400)
                    ),
                    classification_json: r#"{"tag":"stateless"}"#.into(),
                    ts_explicit: true,
                })
                .collect();
            store.append(&batch).unwrap();
            store
                .connection()
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let page = 16384;
        let pages = bytes.len() / page;
        assert!(pages > 8, "{pages} pages");
        let at = (pages / 2) * page;
        bytes[at..at + 64].fill(0xA5);
        std::fs::write(&path, &bytes).unwrap();
        let store = Store::open(Some(&path), Durability::Sync).unwrap();
        let v = verify(&store, None).unwrap();
        let problem = v.problem.clone().unwrap_or_default();
        assert!(!v.ok, "{v:?}");
        assert!(
            problem.starts_with("damaged:") || problem.starts_with("edited:"),
            "{problem}"
        );
        let bad = v.first_bad_seq.unwrap();
        assert!(bad > 1 && bad <= 400, "{v:?}");
        // Reading the events fails with the same diagnosis class, never a panic.
        let err = store.for_each_record(0, |_, _| Ok(())).unwrap_err();
        assert!(
            matches!(err, Error::Integrity(ref m) if m.contains("damaged")),
            "{err:?}"
        );
    }

    fn sql(store: &Store, sql: &str) {
        store.connection().execute_batch(sql).unwrap();
    }

    /// Asserts a failed verification at `seq` whose problem starts with `word`.
    fn assert_bad(store: &Store, head: Option<&Head>, seq: u64, word: &str) -> Verification {
        let v = verify(store, head).unwrap();
        let problem = v.problem.clone().unwrap_or_default();
        assert!(!v.ok, "{v:?}");
        assert_eq!(v.first_bad_seq, Some(seq), "{problem}");
        assert!(problem.starts_with(&format!("{word}:")), "{problem}");
        v
    }

    /// Shifts rows `from..` up by one (to make room for an inserted row).
    fn shift_up(store: &Store, from: u64) {
        let shift = format!(
            "UPDATE events SET seq = -seq WHERE seq >= {from}; \
             UPDATE events SET seq = 1 - seq WHERE seq < 0;"
        );
        sql(store, &shift);
    }

    #[test]
    fn intact_ledger() {
        let store = ledger(10, "a");
        let head = store.head().unwrap();
        let v = verify(&store, None).unwrap();
        assert_eq!(
            v,
            Verification {
                ok: true,
                events: 10,
                head,
                first_bad_seq: None,
                problem: None
            }
        );
        assert!(verify(&store, Some(&head)).unwrap().ok);
        let empty = ledger(0, "e");
        assert_eq!(
            verify(&empty, Some(&Head::EMPTY)).unwrap().head,
            Head::EMPTY
        );
    }

    #[test]
    fn edited_record() {
        let store = ledger(10, "a");
        sql(
            &store,
            "UPDATE events SET record = replace(record, '\"t\":\"a\"', '\"t\":\"b\"') \
             WHERE seq = 4",
        );
        let v = assert_bad(&store, None, 4, "edited");
        assert!(v.problem.unwrap().contains("record at seq 4 was changed"));
        assert_eq!(v.events, 10);
        assert_eq!(v.head, store.head().unwrap());
        // The last row has no next row to tell record from hash.
        let store = ledger(10, "a");
        sql(
            &store,
            "UPDATE events SET record = replace(record, 'a-10', 'a-11') WHERE seq = 10",
        );
        assert_bad(&store, None, 10, "edited");
    }

    #[test]
    fn edited_hash() {
        let store = ledger(10, "a");
        sql(
            &store,
            "UPDATE events SET hash = zeroblob(32) WHERE seq = 4",
        );
        let v = assert_bad(&store, None, 4, "edited");
        assert!(v.problem.unwrap().contains("hash at seq 4"));
        // A hash of the wrong type or length too.
        let store = ledger(10, "a");
        sql(&store, "UPDATE events SET hash = 'x' WHERE seq = 1");
        assert_bad(&store, None, 1, "edited");
    }

    #[test]
    fn deleted_row_leaves_a_gap() {
        let store = ledger(10, "a");
        sql(&store, "DELETE FROM events WHERE seq = 4");
        let v = assert_bad(&store, None, 4, "deleted");
        assert_eq!(v.events, 9);
        assert!(v.problem.unwrap().starts_with("deleted: seq 4 missing"));
        sql(&store, "DELETE FROM events WHERE seq IN (5, 6)");
        let v = assert_bad(&store, None, 4, "deleted");
        assert!(v
            .problem
            .unwrap()
            .starts_with("deleted: seqs 4 to 6 missing"));
    }

    #[test]
    fn deleted_and_renumbered() {
        let store = ledger(10, "a");
        sql(
            &store,
            "DELETE FROM events WHERE seq = 4; UPDATE events SET seq = seq - 1 WHERE seq > 4;",
        );
        assert_bad(&store, None, 4, "deleted");
        // Deleting the first row too.
        let store = ledger(10, "a");
        sql(
            &store,
            "DELETE FROM events WHERE seq = 1; UPDATE events SET seq = seq - 1;",
        );
        assert_bad(&store, None, 1, "deleted");
    }

    #[test]
    fn deleted_renumbered_and_rehashed_is_still_seen() {
        // An attacker re-derives every hash after renumbering: the embedded seq still tells.
        let store = ledger(10, "a");
        sql(
            &store,
            "DELETE FROM events WHERE seq = 4; UPDATE events SET seq = seq - 1 WHERE seq > 4;",
        );
        let mut rows = Vec::new();
        store
            .for_each_record(0, |seq, r| {
                rows.push((seq, r.to_string()));
                Ok(())
            })
            .unwrap();
        let mut prev = [0u8; 32];
        for (seq, record) in rows {
            prev = chain_hash(&prev, record.as_bytes());
            store
                .connection()
                .execute(
                    "UPDATE events SET hash = ?1 WHERE seq = ?2",
                    rusqlite::params![&prev[..], seq as i64],
                )
                .unwrap();
        }
        assert_bad(&store, None, 4, "deleted");
    }

    #[test]
    fn swapped_rows_are_reordered() {
        for (x, y) in [(3, 7), (3, 4)] {
            let store = ledger(10, "a");
            sql(
                &store,
                &format!(
                    "UPDATE events SET seq = -1 WHERE seq = {x}; \
                 UPDATE events SET seq = {x} WHERE seq = {y}; \
                 UPDATE events SET seq = {y} WHERE seq = -1;"
                ),
            );
            let v = assert_bad(&store, None, x, "reordered");
            assert!(v
                .problem
                .unwrap()
                .contains(&format!("record of seq {x} is at seq {y}")));
        }
    }

    #[test]
    fn forged_row_inserted_in_the_middle() {
        // With a hash that links to the previous row and the right embedded seq.
        let store = ledger(10, "a");
        let prev = store
            .connection()
            .query_row("SELECT hash FROM events WHERE seq = 4", [], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .unwrap();
        shift_up(&store, 5);
        let mut record = String::new();
        write_record(&mut record, "{}", r#"{"id":"forged"}"#, 5);
        let hash = chain_hash(&prev.try_into().unwrap(), record.as_bytes());
        store
            .connection()
            .execute(
                "INSERT INTO events (seq, id, record, hash) VALUES (5, 'forged', ?1, ?2)",
                rusqlite::params![record, &hash[..]],
            )
            .unwrap();
        assert_bad(&store, None, 5, "inserted");
        // With a made-up hash.
        let store = ledger(10, "a");
        shift_up(&store, 5);
        let forged = format!(
            "INSERT INTO events (seq, id, record, hash) \
             VALUES (5, 'forged', '{record}', zeroblob(32))"
        );
        sql(&store, &forged);
        assert_bad(&store, None, 5, "inserted");
    }

    #[test]
    fn copied_row_repeats_an_embedded_seq() {
        let store = ledger(10, "a");
        // A copy of row 2 appended at the end, with a hash that links.
        let (record, head) = store
            .connection()
            .query_row("SELECT record FROM events WHERE seq = 2", [], |r| {
                r.get::<_, String>(0)
            })
            .map(|r| (r, store.head().unwrap()))
            .unwrap();
        let hash = chain_hash(&head.hash, record.as_bytes());
        store
            .connection()
            .execute(
                "INSERT INTO events (seq, id, record, hash) VALUES (11, 'copy', ?1, ?2)",
                rusqlite::params![record, &hash[..]],
            )
            .unwrap();
        let v = assert_bad(&store, None, 11, "inserted");
        assert!(v.problem.unwrap().contains("repeats the record of seq 2"));
    }

    #[test]
    fn truncated_against_a_kept_head() {
        let store = ledger(10, "a");
        let kept = store.head().unwrap();
        sql(&store, "DELETE FROM events WHERE seq > 7");
        assert!(
            verify(&store, None).unwrap().ok,
            "a clean cut is invisible without a kept head"
        );
        let v = assert_bad(&store, Some(&kept), 8, "truncated");
        assert_eq!((v.events, v.head.seq), (7, 7));
    }

    #[test]
    fn swapped_ledger_against_a_kept_head() {
        let kept = ledger(10, "a").head().unwrap();
        let other = ledger(12, "b");
        assert!(verify(&other, None).unwrap().ok);
        let v = assert_bad(&other, Some(&kept), 10, "swapped");
        assert_eq!(v.head, other.head().unwrap());
        // A ledger that grew after the head was kept is fine.
        let grown = ledger(12, "a");
        assert!(verify(&grown, Some(&kept)).unwrap().ok);
    }

    #[test]
    fn seq_below_one_and_bad_kept_head() {
        let store = ledger(3, "a");
        sql(&store, "UPDATE events SET seq = 0 WHERE seq = 1");
        let v = assert_bad(&store, None, 1, "inserted");
        assert!(v.problem.unwrap().contains("seq 0, below 1"));
        let bad = Head {
            seq: 0,
            hash: [1; 32],
        };
        assert!(matches!(
            verify(&store, Some(&bad)),
            Err(Error::Validation { .. })
        ));
    }

    /// Rebuilds `events` without its primary key (an attacker's altered table), keeping rows.
    fn without_primary_key(store: &Store) {
        sql(
            store,
            "CREATE TABLE e2 (seq INTEGER, id TEXT, record TEXT, hash BLOB); \
             INSERT INTO e2 SELECT * FROM events; DROP TABLE events; \
             ALTER TABLE e2 RENAME TO events;",
        );
    }

    #[test]
    fn a_duplicated_row_is_named_at_its_real_seq() {
        let store = ledger(5, "a");
        without_primary_key(&store);
        sql(
            &store,
            "INSERT INTO events SELECT * FROM events WHERE seq = 3",
        );
        let v = assert_bad(&store, None, 3, "duplicated");
        assert_eq!(
            v.problem.as_deref(),
            Some("duplicated: the record of seq 3 appears again at row 4")
        );
        // The same seq with another record: a second row, not a copy.
        let store = ledger(5, "a");
        without_primary_key(&store);
        sql(
            &store,
            "INSERT INTO events SELECT seq, 'x', replace(record, '\"t\":\"a\"', '\"t\":\"b\"'), \
             hash FROM events WHERE seq = 3",
        );
        let v = assert_bad(&store, None, 3, "inserted");
        assert!(v
            .problem
            .unwrap()
            .contains("row 4 is a second row numbered seq 3"));
    }

    #[test]
    fn an_altered_schema_is_reported_even_when_the_chain_holds() {
        let store = ledger(4, "a");
        assert!(store.schema_problems().unwrap().is_empty());
        sql(
            &store,
            "CREATE TRIGGER drop_it AFTER INSERT ON events WHEN NEW.id LIKE 'secret%' \
             BEGIN DELETE FROM events WHERE seq = NEW.seq; END;",
        );
        let v = verify(&store, None).unwrap();
        assert!(!v.ok && v.first_bad_seq.is_none(), "{v:?}");
        let problem = v.problem.unwrap();
        assert!(
            problem.starts_with("altered:") && problem.contains("trigger \"drop_it\""),
            "{problem}"
        );
        for (object, named) in [
            ("CREATE VIEW v AS SELECT * FROM events", "view \"v\""),
            ("CREATE TABLE notes (x)", "table \"notes\" was added"),
            (
                "CREATE INDEX by_record ON events (record)",
                "index \"by_record\"",
            ),
        ] {
            let store = ledger(2, "a");
            sql(&store, object);
            let problem = verify(&store, None).unwrap().problem.unwrap();
            assert!(problem.contains(named), "{problem}");
        }
        // SQLite's statistics tables change nothing stored.
        let store = ledger(2, "a");
        sql(&store, "ANALYZE");
        assert!(verify(&store, None).unwrap().ok);
        // A rebuilt events table (same columns, no primary key) is altered too.
        let store = ledger(2, "a");
        without_primary_key(&store);
        let problem = verify(&store, None).unwrap().problem.unwrap();
        assert!(
            problem.contains("table \"events\" was altered"),
            "{problem}"
        );
    }

    #[test]
    fn a_missing_events_table_is_not_intact() {
        let store = ledger(3, "a");
        sql(&store, "DROP TABLE events");
        let v = verify(&store, None).unwrap();
        assert!(
            !v.ok && v.events == 0 && v.first_bad_seq == Some(1),
            "{v:?}"
        );
        assert!(v.problem.unwrap().contains("table \"events\" is missing"));
    }

    #[test]
    fn every_named_catalogue_must_be_stored_under_its_digest() {
        use crate::classify::Ruleset;
        let rs = Ruleset::builtin_default();
        let mut store = Store::open(None, Durability::Sync).unwrap();
        store
            .register_catalogue(rs.digest(), rs.name(), rs.catalogue())
            .unwrap();
        let batch: Vec<Pending> = (1..=3)
            .map(|i| Pending {
                id: format!("e{i}"),
                event_json: format!(r#"{{"attrs":{{"ruleset_digest":"x"}},"id":"e{i}","ts":{i}}}"#),
                classification_json: format!(
                    r#"{{"evidence":[],"ruleset":"default","ruleset_digest":"{}"}}"#,
                    rs.digest()
                ),
                ts_explicit: true,
            })
            .collect();
        store.append(&batch).unwrap();
        let head = store.head().unwrap();
        assert!(verify(&store, Some(&head)).unwrap().ok);
        // Replaced by a self-consistent catalogue under another digest.
        let other = rs.catalogue().replace("no rule matched", "nothing matched");
        let digest = crate::canonical::catalogue_digest(&other);
        store
            .connection()
            .execute(
                "UPDATE rulesets SET digest = ?1, catalogue = ?2",
                rusqlite::params![digest, other],
            )
            .unwrap();
        let v = assert_bad(&store, Some(&head), 1, "deleted");
        let problem = v.problem.unwrap();
        assert!(
            problem.contains(rs.digest()) && problem.contains("seq 1 and 2 later events"),
            "{problem}"
        );
        // Deleted outright.
        sql(&store, "DELETE FROM rulesets");
        assert_bad(&store, Some(&head), 1, "deleted");
        sql(&store, "DROP TABLE rulesets");
        assert_bad(&store, Some(&head), 1, "deleted");
    }

    #[test]
    fn version_2_contexts_must_name_an_earlier_definition() {
        let mut store = Store::open(None, Durability::Sync).unwrap();
        assert_eq!(store.version(), 3);
        let batch: Vec<Pending> = (1..=3)
            .map(|i| Pending {
                id: format!("e{i}"),
                event_json: format!(r#"{{"id":"e{i}","kind":"tool_call","ts":{i}}}"#),
                classification_json: r#"{"tag":"stateless"}"#.into(),
                ts_explicit: true,
            })
            .collect();
        store.append(&batch).unwrap();
        assert!(verify(&store, None).unwrap().ok);
        // Re-signed: the last record now refers to seq 2, itself a reference.
        for (at, word) in [("2", "edited"), ("3", "edited"), ("1", "")] {
            let record = format!(r#"{{"c":{at},"e":{{"id":"e3","ts":3}},"s":3,"v":2}}"#);
            let prev = store.hash_at(2).unwrap().unwrap();
            let hash = chain_hash(&prev, record.as_bytes());
            store
                .connection()
                .execute(
                    "UPDATE events SET record = ?1, hash = ?2 WHERE seq = 3",
                    rusqlite::params![record, &hash[..]],
                )
                .unwrap();
            if word.is_empty() {
                assert!(verify(&store, None).unwrap().ok);
            } else {
                let v = assert_bad(&store, None, 3, word);
                assert!(v.problem.unwrap().contains(&format!("from seq {at}")));
            }
        }
    }

    /// A version-2 ledger of `n` tool calls of one context (seq 1 defines it).
    fn ledger_v2(n: u64) -> Store {
        let mut store = Store::open(None, Durability::Sync).unwrap();
        let batch: Vec<Pending> = (1..=n)
            .map(|i| Pending {
                id: format!("e{i}"),
                event_json: format!(r#"{{"id":"e{i}","kind":"tool_call","ts":{i}}}"#),
                classification_json: r#"{"tag":"stateless"}"#.into(),
                ts_explicit: true,
            })
            .collect();
        store.append(&batch).unwrap();
        store
    }

    /// A version-3 ledger of tool calls appended in batches of `sizes` events.
    fn ledger_v3(sizes: &[u64]) -> Store {
        let mut store = Store::open(None, Durability::Sync).unwrap();
        assert_eq!(store.version(), 3);
        let mut n = 0;
        for size in sizes {
            let batch: Vec<Pending> = (n + 1..=n + size)
                .map(|i| Pending {
                    id: format!("e{i}"),
                    event_json: format!(r#"{{"id":"e{i}","kind":"tool_call","ts":{i}}}"#),
                    classification_json: r#"{"tag":"stateless"}"#.into(),
                    ts_explicit: true,
                })
                .collect();
            store.append(&batch).unwrap();
            n += size;
        }
        store
    }

    /// The length of each row's stored hash, in seq order.
    fn hash_lengths(store: &Store) -> Vec<usize> {
        let mut out = Vec::new();
        store
            .for_each_row(|_, _, h| {
                out.push(h.len());
                Ok(true)
            })
            .unwrap();
        out
    }

    #[test]
    fn version_3_keeps_whole_hashes_every_64th_row_and_at_each_appends_end() {
        // Appends end at seqs 3, 73 and 78; seq 64 is a multiple of the stride.
        let store = ledger_v3(&[3, 70, 5]);
        let lengths = hash_lengths(&store);
        let whole: Vec<usize> = (1..=lengths.len())
            .filter(|&s| lengths[s - 1] == 32)
            .collect();
        assert_eq!(whole, [3, 64, 73, 78]);
        assert!(lengths.iter().all(|&l| l == 32 || l == 4), "{lengths:?}");
        let v = verify(&store, None).unwrap();
        assert!(v.ok && v.events == 78, "{v:?}");
        assert_eq!(v.head, store.head().unwrap());
        // hash_at re-derives every seq's hash from the nearest whole one below it.
        let mut prev = [0u8; 32];
        let mut expected = vec![prev];
        store
            .for_each_row(|_, r, _| {
                prev = chain_hash(&prev, r);
                expected.push(prev);
                Ok(true)
            })
            .unwrap();
        for (seq, hash) in expected.iter().enumerate() {
            assert_eq!(store.hash_at(seq as u64).unwrap(), Some(*hash), "seq {seq}");
        }
        assert_eq!(store.hash_at(79).unwrap(), None);
        // Exported rows get the whole hash of every seq.
        let mut exported = Vec::new();
        store
            .for_each_stored_between(60, 70, 100, |seq, _, _, h| {
                exported.push((seq, h.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(exported.len(), 10);
        assert!(exported
            .iter()
            .all(|(s, h)| h[..] == expected[*s as usize][..]));
        // A check that disagrees: hash_at and the export refuse to vouch past it.
        sql(
            &store,
            "UPDATE events SET hash = x'00000000' WHERE seq = 66",
        );
        assert_eq!(store.hash_at(67).unwrap(), None);
        assert_eq!(store.hash_at(65).unwrap(), Some(expected[65]));
        let err = store
            .for_each_stored_between(60, 70, 100, |_, _, _, _| Ok(()))
            .unwrap_err();
        assert!(
            matches!(err, Error::Integrity(ref m) if m.contains("seq 66")),
            "{err:?}"
        );
        // A version-2 ledger keeps the whole hash in every row, and a 4-byte one is an edit.
        let mut v2 = Store::open_v2_in_memory().unwrap();
        assert_eq!(v2.version(), 2);
        v2.append(&[
            Pending {
                id: "a".into(),
                event_json: r#"{"id":"a","kind":"tool_call","ts":1}"#.into(),
                classification_json: r#"{"tag":"stateless"}"#.into(),
                ts_explicit: true,
            },
            Pending {
                id: "b".into(),
                event_json: r#"{"id":"b","kind":"tool_call","ts":2}"#.into(),
                classification_json: r#"{"tag":"stateless"}"#.into(),
                ts_explicit: true,
            },
        ])
        .unwrap();
        assert_eq!(hash_lengths(&v2), [32, 32]);
        assert!(verify(&v2, None).unwrap().ok);
        sql(
            &v2,
            "UPDATE events SET hash = substr(hash, 1, 4) WHERE seq = 1",
        );
        assert_bad(&v2, None, 1, "edited");
    }

    #[test]
    fn version_3_tampering_is_located_at_the_row() {
        let cases: &[(&str, u64, &str, &str)] = &[
            (
                "UPDATE events SET record = replace(record, '\"ts\":10', '\"ts\":11') \
                 WHERE seq = 10",
                10,
                "edited",
                "record or hash at seq 10",
            ),
            (
                "UPDATE events SET hash = x'00000000' WHERE seq = 10",
                10,
                "edited",
                "the hash at seq 10 was changed",
            ),
            (
                "UPDATE events SET hash = x'' WHERE seq = 50",
                50,
                "edited",
                "the hash at seq 50 was changed",
            ),
            (
                "UPDATE events SET hash = substr(hash, 1, 4) WHERE seq = 64",
                64,
                "edited",
                "keeps only a check of its chain hash",
            ),
            (
                "DELETE FROM events WHERE seq > 70",
                71,
                "truncated",
                "the last row (seq 70) keeps only a check",
            ),
            (
                "DELETE FROM events WHERE seq = 20",
                20,
                "deleted",
                "seq 20 missing",
            ),
            (
                "UPDATE events SET seq = -1 WHERE seq = 30; \
                 UPDATE events SET seq = 30 WHERE seq = 31; \
                 UPDATE events SET seq = 31 WHERE seq = -1;",
                30,
                "reordered",
                "holds the record of seq 31",
            ),
        ];
        for (tamper, seq, word, says) in cases {
            let store = ledger_v3(&[3, 70, 5]);
            sql(&store, tamper);
            let v = assert_bad(&store, None, *seq, word);
            assert!(
                v.problem.as_deref().unwrap().contains(says),
                "{tamper}: {v:?}"
            );
        }
        // Cut where an append ended, the rest is a valid shorter ledger: only a kept head
        // tells.
        let store = ledger_v3(&[3, 70, 5]);
        let head = store.head().unwrap();
        sql(&store, "DELETE FROM events WHERE seq > 73");
        assert!(verify(&store, None).unwrap().ok);
        assert_bad(&store, Some(&head), 74, "truncated");
    }

    /// Replaces the record at `seq` and re-derives every hash from there (a re-signed rewrite).
    fn rewrite(store: &Store, seq: u64, record: &str) {
        sql(
            store,
            &format!("UPDATE events SET record = '{record}' WHERE seq = {seq}"),
        );
        let mut prev = [0u8; 32];
        let mut rows = Vec::new();
        store
            .for_each_row(|s, r, _| {
                rows.push((s, r.to_vec()));
                Ok(true)
            })
            .unwrap();
        for (s, r) in rows {
            prev = chain_hash(&prev, &r);
            store
                .connection()
                .execute(
                    "UPDATE events SET hash = ?1 WHERE seq = ?2",
                    rusqlite::params![&prev[..], s],
                )
                .unwrap();
        }
    }

    #[test]
    fn a_record_whose_e_shadows_its_context_is_ambiguous() {
        // Referring to a definition that holds "kind", with a "kind" of its own.
        let store = ledger_v2(3);
        rewrite(
            &store,
            2,
            r#"{"c":1,"e":{"id":"e2","kind":"model_call","ts":2},"s":2,"v":2}"#,
        );
        let v = assert_bad(&store, None, 2, "edited");
        let problem = v.problem.unwrap();
        assert!(
            problem.contains(r#"key "kind" twice"#) && problem.contains("defined at seq 1"),
            "{problem}"
        );
        // In the definition's own record.
        let store = ledger_v2(3);
        rewrite(
            &store,
            1,
            r#"{"c":{"classification":{"tag":"stateless"},"event":{"kind":"tool_call"}},"e":{"id":"e1","kind":"x","ts":1},"s":1,"v":2}"#,
        );
        let v = assert_bad(&store, None, 1, "edited");
        assert!(v.problem.unwrap().contains(r#""kind""#));
        // A key twice in e itself; a definition that is not one.
        let store = ledger_v2(3);
        rewrite(
            &store,
            3,
            r#"{"c":1,"e":{"id":"e3","ts":3,"ts":4},"s":3,"v":2}"#,
        );
        assert!(assert_bad(&store, None, 3, "edited")
            .problem
            .unwrap()
            .contains(r#""ts" twice"#));
        let store = ledger_v2(3);
        rewrite(
            &store,
            1,
            r#"{"c":{"event":{"kind":"tool_call"}},"e":{"id":"e1","ts":1},"s":1,"v":2}"#,
        );
        assert!(assert_bad(&store, None, 1, "edited")
            .problem
            .unwrap()
            .contains("defines a context that is not"));
        // A key of a nested object is no key of the event.
        let store = ledger_v2(3);
        rewrite(
            &store,
            2,
            r#"{"c":1,"e":{"attrs":{"kind":"x"},"id":"e2","ts":2},"s":2,"v":2}"#,
        );
        let v = verify(&store, None).unwrap();
        assert!(v.ok, "{v:?}");
    }

    #[test]
    fn the_writer_never_writes_a_key_twice() {
        let mut store = Store::open(None, Durability::Sync).unwrap();
        let p = |event: &str| Pending {
            id: "a".into(),
            event_json: event.into(),
            classification_json: r#"{"tag":"stateless"}"#.into(),
            ts_explicit: true,
        };
        for event in [
            r#"{"id":"a","kind":"x","kind":"y","ts":1}"#,
            r#"{"id":"a","ts":1,"ts":2}"#,
        ] {
            let err = store.append(&[p(event)]).unwrap_err();
            assert!(
                matches!(err, Error::Validation { ref message, .. } if message.contains("each key once")),
                "{err:?}"
            );
        }
        assert_eq!(store.head().unwrap(), Head::EMPTY);
        store
            .append(&[p(r#"{"id":"a","kind":"x","ts":1}"#)])
            .unwrap();
        assert!(verify(&store, None).unwrap().ok);
    }

    #[test]
    fn the_stored_merkle_tree_is_checked() {
        // 100 records: nodes at levels 4 (6), 5 (3) and 6 (1).
        let store = ledger_v2(100);
        let head = store.head().unwrap();
        assert!(verify(&store, Some(&head)).unwrap().ok);
        let nodes = |store: &Store| -> i64 {
            store
                .connection()
                .query_row("SELECT count(*) FROM merkle_nodes", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(nodes(&store), 10);
        // Each node edited in turn is named, whatever its level.
        for (level, idx, first, last) in
            [(4, 0, 1, 16), (4, 5, 81, 96), (5, 2, 65, 96), (6, 0, 1, 64)]
        {
            let store = ledger_v2(100);
            sql(
                &store,
                &format!(
                    "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = {level} AND idx = {idx}"
                ),
            );
            let v = verify(&store, Some(&head)).unwrap();
            assert!(!v.ok && v.first_bad_seq.is_none(), "{v:?}");
            let problem = v.problem.unwrap();
            assert!(
                problem.starts_with("edited:")
                    && problem.contains(&format!(
                        "(level {level}, index {idx}) is not the hash of records {first} to {last}"
                    )),
                "{problem}"
            );
        }
        // Two bad nodes: the first re-derived is named.
        let store = ledger_v2(100);
        sql(
            &store,
            "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE idx = 1",
        );
        let problem = verify(&store, None).unwrap().problem.unwrap();
        assert!(problem.contains("(level 4, index 1)"), "{problem}");
        // Missing, added, or stored out of the writer's order.
        let store = ledger_v2(100);
        sql(
            &store,
            "DELETE FROM merkle_nodes WHERE level = 5 AND idx = 1",
        );
        let problem = verify(&store, None).unwrap().problem.unwrap();
        assert!(
            problem.starts_with("deleted:")
                && problem.contains("(level 5, index 1) over records 33 to 64"),
            "{problem}"
        );
        for (level, idx) in [(3, 0), (4, 6), (7, 0)] {
            let store = ledger_v2(100);
            sql(
                &store,
                &format!("INSERT INTO merkle_nodes VALUES ({level}, {idx}, zeroblob(32))"),
            );
            let problem = verify(&store, None).unwrap().problem.unwrap();
            assert!(
                problem.starts_with("inserted:")
                    && problem.contains(&format!("(level {level}, index {idx})")),
                "{problem}"
            );
        }
        let store = ledger_v2(100);
        sql(
            &store,
            "CREATE TEMP TABLE t AS SELECT * FROM merkle_nodes ORDER BY level DESC, idx DESC; \
             DELETE FROM merkle_nodes; INSERT INTO merkle_nodes SELECT * FROM t; DROP TABLE t;",
        );
        assert!(verify(&store, Some(&head)).unwrap().ok);
        // The records stay what is checked first: a chain problem is reported before the tree.
        sql(&store, "UPDATE merkle_nodes SET hash = zeroblob(32)");
        sql(
            &store,
            "UPDATE events SET hash = zeroblob(32) WHERE seq = 50",
        );
        assert_bad(&store, None, 50, "edited");
    }

    #[test]
    fn the_tree_is_checked_across_many_batches_of_the_hashing_thread() {
        let store = ledger_v2(5000);
        assert!(verify(&store, None).unwrap().ok);
        // Nodes completed in the first batch, in the middle and by the last records.
        for (level, idx) in [(4, 3), (7, 12), (12, 0), (4, 311)] {
            let store = ledger_v2(5000);
            sql(
                &store,
                &format!(
                    "UPDATE merkle_nodes SET hash = zeroblob(32) \
                     WHERE level = {level} AND idx = {idx}"
                ),
            );
            let problem = verify(&store, None).unwrap().problem.unwrap();
            assert!(
                problem.contains(&format!("(level {level}, index {idx})")),
                "{problem}"
            );
        }
        // A chain problem late in the ledger is still named, the tree left unfinished.
        let store = ledger_v2(5000);
        sql(
            &store,
            "UPDATE events SET hash = zeroblob(32) WHERE seq = 4500",
        );
        assert_bad(&store, None, 4500, "edited");
    }

    #[test]
    fn a_version_1_ledger_is_appended_to_in_version_1() {
        let mut store = Store::open_v1_in_memory().unwrap();
        assert_eq!(store.version(), 1);
        let p = |id: &str| Pending {
            id: id.into(),
            event_json: format!(r#"{{"id":"{id}","kind":"tool_call","ts":1}}"#),
            classification_json: r#"{"tag":"stateless"}"#.into(),
            ts_explicit: false,
        };
        let out = store.append(&[p("a"), p("b"), p("a")]).unwrap();
        assert_eq!(out[2], crate::ledger::Outcome::Duplicate { seq: 1 });
        let mut records = Vec::new();
        store
            .for_each_record(0, |_, r| {
                records.push(r.to_string());
                Ok(())
            })
            .unwrap();
        let mut expected = String::new();
        write_record(
            &mut expected,
            r#"{"tag":"stateless"}"#,
            r#"{"id":"b","kind":"tool_call","ts":1}"#,
            2,
        );
        assert_eq!(records[1], expected);
        assert!(verify(&store, None).unwrap().ok);
        assert!(store.schema_problems().unwrap().is_empty());
    }
}
