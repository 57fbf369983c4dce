//! Readings: a ledger's events classified again, under another ruleset, from their columns.
//!
//! A contract interpretation may read the calls under a ruleset other than the one they were
//! recorded with (`ruleset = "strict"`, see docs/contracts.md). A [`Reading`] is every event
//! of an [`EventColumns`] classified under that ruleset: each event's own verdict (`tag`,
//! `consumes_state`, `creates_state`, `state_holder`, `state_kinds`, `session_stateful`),
//! then `session_tag` derived from the new `session_stateful` across each whole session, as
//! for the recorded classification ([`EventColumns::derive_session_tags`]).
//!
//! - The engine reads each row through [`RowFields`] (columns plus the canonical JSON of
//!   `request` and `attrs`): no record is read back, no Python runs per event.
//! - Large columns are classified on several threads (at most [`MAX_THREADS`]), in contiguous
//!   chunks, so the result does not depend on the split.
//! - Readings are cached with the columns they were computed from
//!   ([`EventColumns::reading`]), keyed by the ruleset's [`fingerprint`]: a second report
//!   under the same ruleset on an unchanged ledger reuses it; on a ledger that only grew, the
//!   cached reading is extended by the new events (and session tags re-derived).

use std::fmt;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::classify::Ruleset;
use crate::event::{Holder, StateKinds, Tag};
use crate::stored::columns::{EventColumns, Projection, StrColumn, NULL};
use crate::stored::fields::RowFields;

/// The most threads one reading uses.
pub const MAX_THREADS: usize = 2;
/// Fewer rows than this are classified on the calling thread.
const PARALLEL_FROM: usize = 65_536;
/// How many readings one set of columns keeps (least recently computed dropped first).
const MAX_CACHED: usize = 8;

/// Every event of some columns classified under one ruleset (one entry per row).
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// The ruleset's name (what a classification under it records).
    pub ruleset: Arc<str>,
    /// Its [`fingerprint`].
    pub key: Arc<str>,
    pub len: usize,
    pub tag: Vec<Tag>,
    pub session_tag: Vec<Tag>,
    pub consumes_state: Vec<bool>,
    pub creates_state: Vec<bool>,
    pub session_stateful: Vec<bool>,
    pub state_holder: Vec<Option<Holder>>,
    pub state_kinds: Vec<StateKinds>,
}

/// The per-event verdicts a report, a cost table or a scenario judges by: the recorded
/// classification ([`EventColumns::recorded`]) or a [`Reading`] ([`Reading::tags`]).
#[derive(Clone, Copy, Debug)]
pub struct Tags<'a> {
    pub tag: &'a [Tag],
    pub session_tag: &'a [Tag],
    pub state_holder: &'a [Option<Holder>],
}

impl Reading {
    /// Classifies every row of `cols` under `ruleset`. With `base` (a reading of a prefix of
    /// the same rows under the same ruleset), only the rows after it are classified. Uses up
    /// to [`MAX_THREADS`] threads when there are many rows.
    pub fn compute(cols: &EventColumns, ruleset: &Ruleset, base: Option<&Reading>) -> Reading {
        let n = cols.len - base.map_or(0, |b| b.len.min(cols.len));
        let threads = if n < PARALLEL_FROM {
            1
        } else {
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .clamp(1, MAX_THREADS)
        };
        Reading::compute_on(cols, ruleset, base, threads)
    }

    /// [`Reading::compute`] on `threads` threads (contiguous chunks of rows).
    pub fn compute_on(
        cols: &EventColumns,
        ruleset: &Ruleset,
        base: Option<&Reading>,
        threads: usize,
    ) -> Reading {
        let key = fingerprint(ruleset);
        let mut r = match base {
            Some(b) if b.len <= cols.len && *b.key == *key => b.clone(),
            _ => Reading {
                ruleset: ruleset.name().into(),
                key: key.into(),
                ..Reading::default()
            },
        };
        let from = r.len;
        let n = cols.len - from;
        let chunk = n.div_ceil(threads.max(1)).max(1);
        let parts: Vec<Part> = if threads <= 1 {
            vec![Part::classify(cols, ruleset, from, cols.len)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (from..cols.len)
                    .step_by(chunk)
                    .map(|lo| {
                        let hi = (lo + chunk).min(cols.len);
                        s.spawn(move || Part::classify(cols, ruleset, lo, hi))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("classification does not panic"))
                    .collect()
            })
        };
        r.reserve(n);
        for p in parts {
            r.tag.extend(p.tag);
            r.consumes_state.extend(p.consumes_state);
            r.creates_state.extend(p.creates_state);
            r.session_stateful.extend(p.session_stateful);
            r.state_holder.extend(p.state_holder);
            r.state_kinds.extend(p.state_kinds);
        }
        r.len = cols.len;
        r.session_tag = session_tags(&cols.session_id, &r.session_stateful);
        r
    }

    fn reserve(&mut self, n: usize) {
        self.tag.reserve(n);
        self.consumes_state.reserve(n);
        self.creates_state.reserve(n);
        self.session_stateful.reserve(n);
        self.state_holder.reserve(n);
        self.state_kinds.reserve(n);
    }

    /// The verdicts to judge by.
    pub fn tags(&self) -> Tags<'_> {
        Tags {
            tag: &self.tag,
            session_tag: &self.session_tag,
            state_holder: &self.state_holder,
        }
    }
}

/// The verdicts of rows `lo..hi`.
#[derive(Default)]
struct Part {
    tag: Vec<Tag>,
    consumes_state: Vec<bool>,
    creates_state: Vec<bool>,
    session_stateful: Vec<bool>,
    state_holder: Vec<Option<Holder>>,
    state_kinds: Vec<StateKinds>,
}

impl Part {
    fn classify(cols: &EventColumns, ruleset: &Ruleset, lo: usize, hi: usize) -> Part {
        let n = hi - lo;
        let mut p = Part {
            tag: Vec::with_capacity(n),
            consumes_state: Vec::with_capacity(n),
            creates_state: Vec::with_capacity(n),
            session_stateful: Vec::with_capacity(n),
            state_holder: Vec::with_capacity(n),
            state_kinds: Vec::with_capacity(n),
        };
        for i in lo..hi {
            let v = ruleset.verdict(&RowFields::new(cols, i));
            p.tag.push(v.tag);
            p.consumes_state.push(v.consumes_state);
            p.creates_state.push(v.creates_state);
            p.session_stateful.push(v.session_stateful);
            p.state_holder.push(v.state_holder);
            p.state_kinds.push(v.state_kinds);
        }
        p
    }
}

/// Each event's `session_tag`: stateful when any event of its session is `session_stateful`
/// (an event without a session stands alone).
pub fn session_tags(session_id: &StrColumn, session_stateful: &[bool]) -> Vec<Tag> {
    let mut stateful = vec![false; session_id.values.len()];
    for (&code, &sf) in session_id.codes.iter().zip(session_stateful) {
        if code != NULL && sf {
            stateful[code as usize] = true;
        }
    }
    session_id
        .codes
        .iter()
        .zip(session_stateful)
        .map(|(&code, &sf)| {
            let sf = if code == NULL {
                sf
            } else {
                stateful[code as usize]
            };
            if sf {
                Tag::Stateful
            } else {
                Tag::Stateless
            }
        })
        .collect()
}

/// What identifies a ruleset's verdicts: the first 16 hex digits of SHA-256 over its name,
/// policy and every rule (conditions, effects and evidence), in evaluation order. Two
/// rulesets with the same fingerprint classify every event alike. (The ruleset's `digest`
/// covers only its evidence catalogue, not its conditions or policy.)
pub fn fingerprint(ruleset: &Ruleset) -> String {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    put(ruleset.name());
    put(&format!(
        "{}{}{}",
        ruleset.creates_state_is_stateful() as u8,
        ruleset.provider_state_is_stateful() as u8,
        ruleset.client_state_makes_session_stateful() as u8
    ));
    for r in ruleset.rules() {
        put(&r.id);
        put(&r.condition);
        put(&format!(
            "{}|{}|{}|{}|{}",
            r.consumes_state as u8,
            r.creates_state as u8,
            r.state_holder.map_or("", |h| h.as_str()),
            r.state.map_or("", |k| k.as_str()),
            r.tag.as_str()
        ));
        put(&r.signal);
        put(&r.explain);
    }
    hex::encode(&h.finalize()[..8])
}

/// The readings computed from one set of columns, by ruleset fingerprint (see
/// [`EventColumns::reading`]). Cloning the columns (to append to them) carries the readings
/// along as bases to extend, not as results.
#[derive(Default)]
pub struct ReadingCache {
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    key: Arc<str>,
    cell: Arc<OnceLock<Arc<Reading>>>,
    /// A reading of a prefix of the rows, to extend.
    base: Option<Arc<Reading>>,
}

impl Clone for ReadingCache {
    fn clone(&self) -> Self {
        let entries = self
            .entries
            .lock()
            .iter()
            .filter_map(|e| {
                let done = e.cell.get().cloned().or_else(|| e.base.clone())?;
                Some(Entry {
                    key: e.key.clone(),
                    cell: Arc::default(),
                    base: Some(done),
                })
            })
            .collect();
        ReadingCache {
            entries: Mutex::new(entries),
        }
    }
}

impl fmt::Debug for ReadingCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<Arc<str>> = self.entries.lock().iter().map(|e| e.key.clone()).collect();
        f.debug_struct("ReadingCache").field("keys", &keys).finish()
    }
}

impl ReadingCache {
    /// The reading of `cols` under `ruleset` (fingerprint `key`), computed once.
    pub(crate) fn get(&self, cols: &EventColumns, ruleset: &Ruleset, key: &str) -> Arc<Reading> {
        assert!(
            cols.present == Projection::ALL,
            "classifying events again reads every column"
        );
        let (cell, base) = {
            let mut entries = self.entries.lock();
            let at = match entries.iter().position(|e| *e.key == *key) {
                Some(at) => at,
                None => {
                    if entries.len() >= MAX_CACHED {
                        entries.remove(0);
                    }
                    entries.push(Entry {
                        key: key.into(),
                        cell: Arc::default(),
                        base: None,
                    });
                    entries.len() - 1
                }
            };
            (Arc::clone(&entries[at].cell), entries[at].base.clone())
        };
        // Computed outside the cache's lock: a concurrent read of another ruleset does not
        // wait, one of the same ruleset waits for this result.
        let reading =
            cell.get_or_init(|| Arc::new(Reading::compute(cols, ruleset, base.as_deref())));
        if base.is_some() {
            let mut entries = self.entries.lock();
            if let Some(e) = entries.iter_mut().find(|e| *e.key == *key) {
                e.base = None;
            }
        }
        Arc::clone(reading)
    }

    /// How many readings are kept.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl EventColumns {
    /// The verdicts recorded in the ledger.
    pub fn recorded(&self) -> Tags<'_> {
        Tags {
            tag: &self.tag,
            session_tag: &self.session_tag,
            state_holder: &self.state_holder,
        }
    }

    /// Every event classified again under `ruleset`, cached with these columns (see the
    /// module documentation).
    pub fn reading(&self, ruleset: &Ruleset) -> Arc<Reading> {
        self.reading_keyed(ruleset, &fingerprint(ruleset))
    }

    /// [`EventColumns::reading`] with the ruleset's [`fingerprint`] already known.
    pub fn reading_keyed(&self, ruleset: &Ruleset, key: &str) -> Arc<Reading> {
        self.readings.get(self, ruleset, key)
    }
}

#[cfg(test)]
#[path = "reading_tests.rs"]
pub(crate) mod tests;
