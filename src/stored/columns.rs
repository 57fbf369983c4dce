//! [`EventColumns`]: a ledger's events as a struct of arrays, built once from the loaded rows
//! and scanned by the report, cost and scenario engines (and, later, Arrow export).
//!
//! Layout (one entry per event, in `seq` order; `len` entries in every column):
//! - `seq: Vec<u64>`, `ts: Vec<i64>` (ns since the epoch), `duration_ns: Vec<Option<i64>>`,
//!   `kind: Vec<EventKind>`.
//! - `id: TextColumn`: the event ids as one UTF-8 buffer plus offsets (Arrow `Utf8` layout).
//! - String fields as [`StrColumn`]: a `u32` code per event indexing `values` (a dictionary in
//!   order of first appearance, like an Arrow dictionary array); [`NULL`] (`u32::MAX`) where the
//!   field is absent or does not belong to the event's kind.
//! - Counts `input_tokens`, `output_tokens`, `cached_tokens`, `bytes` as `Vec<u64>`: 0 where
//!   the kind has no such field (the `kind` column says which kinds have them).
//! - The classification: `tag`, `session_tag` (the derived session verdict, see
//!   [`crate::stored::rows`]), `consumes_state`, `creates_state`, `session_stateful`,
//!   `state_holder` (`Option<Holder>`), `state_kinds` (a bit set per event), `ruleset` (a
//!   `StrColumn`).
//!
//! - `request`, `attrs`: [`TextColumn`]s of each mapping's canonical JSON, the bytes of the
//!   record (empty where absent; `attrs` also where empty), so that the events can be
//!   classified again under another ruleset without reading the records back
//!   ([`crate::stored::reading`]).
//!
//! Not in columns: `evidence` (read it from the records).
//!
//! Columns grow with [`EventColumns::push`] (then [`EventColumns::derive_session_tags`]);
//! [`load`] reads a whole store and [`load_after`] appends what a store gained since;
//! [`refresh`] brings a [`Snapshot`] up to date by head, and [`ColumnCache`] keeps one per store.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::event::{Classification, Holder, StateKinds, Tag};
use crate::event::{Event, EventKind};
use crate::ledger::{Head, Store};
use crate::stored::column_store;
use crate::stored::reading::{session_tags, ReadingCache};
use crate::stored::rows::{self, Row};
use crate::stored::scalars::{self, Parsed};

/// The code of an absent value in a [`StrColumn`].
pub const NULL: u32 = u32::MAX;

/// Which columns an [`EventColumns`] holds. Always held: `seq`, `kind`, `ts`,
/// `input_tokens`, `output_tokens`, the classification (`tag`, `session_tag`,
/// `consumes_state`, `creates_state`, `session_stateful`, `state_holder`, `state_kinds`) and
/// `session_id` (session tags are derived from it). Every other column is held only when the
/// projection names it; a column not held is empty (reading it is a bug, caught by the index
/// check). A report asks for the columns it reads, so that a fresh process decodes only
/// those from the column store; [`Projection::ALL`] is every column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Projection(u32);

/// Bits of the optional columns besides the string fields (string field `k` of
/// [`STR_FIELDS`] is bit `k`).
const ID_BIT: u32 = 23;
const DURATION_BIT: u32 = 24;
const CACHED_BIT: u32 = 25;
const BYTES_BIT: u32 = 26;
const REQUEST_BIT: u32 = 27;
const ATTRS_BIT: u32 = 28;

impl Projection {
    /// Every column.
    pub const ALL: Projection = Projection((1 << 29) - 1);
    /// The columns always held (see the type's documentation).
    pub const BASE: Projection = Projection(1);

    /// Adds a column by its event field name (a string field, `id`, `duration_ns`,
    /// `cached_tokens`, `bytes`, `request`, `attrs`; always-held names are accepted and add
    /// nothing). Panics on a name that is no column.
    pub fn with(self, name: &str) -> Projection {
        let bit = match name {
            "id" => ID_BIT,
            "duration_ns" => DURATION_BIT,
            "cached_tokens" => CACHED_BIT,
            "bytes" => BYTES_BIT,
            "request" => REQUEST_BIT,
            "attrs" => ATTRS_BIT,
            "seq" | "kind" | "ts" | "input_tokens" | "output_tokens" | "tag" | "session_tag"
            | "consumes_state" | "creates_state" | "session_stateful" | "state_holder"
            | "state_kinds" => return self,
            other => match STR_FIELDS.iter().position(|f| *f == other) {
                Some(k) => k as u32,
                None => panic!("{other} is not an event column"),
            },
        };
        Projection(self.0 | 1 << bit)
    }

    /// [`Projection::with`] for each name.
    pub fn with_all(self, names: &[&str]) -> Projection {
        names.iter().fold(self, |p, n| p.with(n))
    }

    pub fn union(self, other: Projection) -> Projection {
        Projection(self.0 | other.0)
    }

    /// Whether every column of `other` is held.
    pub fn covers(self, other: Projection) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the string field `k` of [`STR_FIELDS`] is held.
    pub fn str_field(self, k: usize) -> bool {
        self.0 & (1 << k) != 0
    }

    pub fn id(self) -> bool {
        self.0 & (1 << ID_BIT) != 0
    }

    pub fn duration_ns(self) -> bool {
        self.0 & (1 << DURATION_BIT) != 0
    }

    pub fn cached_tokens(self) -> bool {
        self.0 & (1 << CACHED_BIT) != 0
    }

    pub fn bytes(self) -> bool {
        self.0 & (1 << BYTES_BIT) != 0
    }

    pub fn request(self) -> bool {
        self.0 & (1 << REQUEST_BIT) != 0
    }

    pub fn attrs(self) -> bool {
        self.0 & (1 << ATTRS_BIT) != 0
    }
}

impl Default for Projection {
    fn default() -> Self {
        Projection::ALL
    }
}

/// A dictionary-encoded string column.
#[derive(Clone, Debug, Default)]
pub struct StrColumn {
    /// One code per event: an index into `values`, or [`NULL`].
    pub codes: Vec<u32>,
    /// The distinct values, in order of first appearance.
    pub values: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
    last: Option<(Arc<str>, u32)>,
}

impl StrColumn {
    /// The code of `value`, adding it to the dictionary if new.
    pub fn intern(&mut self, value: &str) -> u32 {
        if let Some((s, c)) = &self.last {
            if &**s == value {
                return *c;
            }
        }
        let code = match self.index.get(value) {
            Some(&c) => c,
            None => {
                let c = u32::try_from(self.values.len()).expect("fewer than 2^32 - 1 values");
                assert!(c != NULL, "dictionary full");
                let s: Arc<str> = Arc::from(value);
                self.values.push(Arc::clone(&s));
                self.index.insert(s, c);
                c
            }
        };
        self.last = Some((self.values[code as usize].clone(), code));
        code
    }

    /// [`StrColumn::intern`] of a shared value (kept as it is when new, not copied).
    pub fn intern_shared(&mut self, value: &Arc<str>) -> u32 {
        if let Some(&c) = self.index.get(&**value) {
            return c;
        }
        let c = u32::try_from(self.values.len()).expect("fewer than 2^32 - 1 values");
        assert!(c != NULL, "dictionary full");
        self.values.push(Arc::clone(value));
        self.index.insert(Arc::clone(value), c);
        c
    }

    pub fn push(&mut self, value: Option<&str>) {
        let code = match value {
            Some(v) => self.intern(v),
            None => NULL,
        };
        self.codes.push(code);
    }

    /// The code of `value` if it occurs in the column.
    pub fn code(&self, value: &str) -> Option<u32> {
        self.index.get(value).copied()
    }

    /// The value at row `i`.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.value(self.codes[i])
    }

    /// The value of a code ([`NULL`] is `None`).
    pub fn value(&self, code: u32) -> Option<&str> {
        if code == NULL {
            None
        } else {
            Some(&self.values[code as usize])
        }
    }
}

/// A plain string column (values mostly distinct): one UTF-8 buffer and `len + 1` offsets.
#[derive(Clone, Debug)]
pub struct TextColumn {
    pub offsets: Vec<usize>,
    pub data: String,
}

impl Default for TextColumn {
    fn default() -> Self {
        TextColumn {
            offsets: vec![0],
            data: String::new(),
        }
    }
}

impl TextColumn {
    pub fn push(&mut self, s: &str) {
        self.data.push_str(s);
        self.offsets.push(self.data.len());
    }

    pub fn get(&self, i: usize) -> &str {
        &self.data[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// A ledger's events as columns; see the module documentation for the layout.
#[derive(Clone, Debug, Default)]
pub struct EventColumns {
    pub len: usize,
    pub seq: Vec<u64>,
    pub id: TextColumn,
    pub kind: Vec<EventKind>,
    pub ts: Vec<i64>,
    pub duration_ns: Vec<Option<i64>>,
    pub session_id: StrColumn,
    pub parent_id: StrColumn,
    pub agent: StrColumn,
    pub tenant: StrColumn,
    pub venue: StrColumn,
    pub status: StrColumn,
    pub runtime: StrColumn,
    pub runtime_session_id: StrColumn,
    pub provider: StrColumn,
    pub model: StrColumn,
    pub api: StrColumn,
    pub endpoint: StrColumn,
    pub tool: StrColumn,
    pub tool_kind: StrColumn,
    pub effect: StrColumn,
    pub mcp_session_id: StrColumn,
    pub op: StrColumn,
    pub store: StrColumn,
    pub holder: StrColumn,
    pub scope: StrColumn,
    pub key: StrColumn,
    pub input_tokens: Vec<u64>,
    pub output_tokens: Vec<u64>,
    pub cached_tokens: Vec<u64>,
    pub bytes: Vec<u64>,
    pub tag: Vec<Tag>,
    pub session_tag: Vec<Tag>,
    pub consumes_state: Vec<bool>,
    pub creates_state: Vec<bool>,
    pub session_stateful: Vec<bool>,
    pub state_holder: Vec<Option<Holder>>,
    pub state_kinds: Vec<StateKinds>,
    pub ruleset: StrColumn,
    pub ruleset_digest: StrColumn,
    pub request: TextColumn,
    pub attrs: TextColumn,
    /// The events classified again under other rulesets, computed on demand
    /// ([`EventColumns::reading`]; needs every column).
    pub readings: ReadingCache,
    /// The columns held ([`Projection::ALL`] unless loaded for a report that reads fewer).
    pub present: Projection,
}

/// The names of the dictionary-encoded string columns, as event fields.
pub const STR_FIELDS: &[&str] = &[
    "session_id",
    "parent_id",
    "agent",
    "tenant",
    "venue",
    "status",
    "runtime",
    "runtime_session_id",
    "provider",
    "model",
    "api",
    "endpoint",
    "tool",
    "tool_kind",
    "effect",
    "mcp_session_id",
    "op",
    "store",
    "holder",
    "scope",
    "key",
    "ruleset",
    "ruleset_digest",
];

impl EventColumns {
    /// Columns of already loaded rows (their `session_tag` is taken as given).
    pub fn from_rows(rows: &[Row]) -> EventColumns {
        let mut c = EventColumns::default();
        for r in rows {
            c.push(
                r.rec.seq().unwrap_or(0),
                &r.rec.event,
                r.rec.classification(),
            );
        }
        c.session_tag = rows.iter().map(|r| r.session_tag).collect();
        c
    }

    /// Appends one event. `session_tag` is provisional (the event's own verdict on its
    /// session) until [`EventColumns::derive_session_tags`].
    pub fn push(&mut self, seq: u64, e: &Event, c: &Classification) {
        self.push_parsed(seq, &Parsed::of(e, c));
    }

    /// Appends one event from its record view (see [`crate::stored::scalars`]).
    pub fn push_parsed(&mut self, seq: u64, p: &Parsed<'_>) {
        assert!(
            self.present == Projection::ALL,
            "events are appended to columns that hold every column"
        );
        let e = &p.event;
        self.len += 1;
        self.seq.push(seq);
        self.id.push(&e.id);
        self.kind.push(p.kind);
        self.ts.push(e.ts);
        self.duration_ns.push(e.duration_ns);
        self.session_id.push(e.session_id.as_deref());
        self.parent_id.push(e.parent_id.as_deref());
        self.agent.push(e.agent.as_deref());
        self.tenant.push(e.tenant.as_deref());
        self.venue.push(e.venue.as_deref());
        self.status.push(e.status.as_deref());
        self.runtime.push(e.runtime.as_deref());
        self.runtime_session_id
            .push(e.runtime_session_id.as_deref());
        self.provider.push(e.provider.as_deref());
        self.model.push(e.model.as_deref());
        self.api.push(e.api.as_deref());
        self.endpoint.push(e.endpoint.as_deref());
        self.tool.push(e.tool.as_deref());
        self.tool_kind.push(e.tool_kind.as_deref());
        self.effect.push(e.effect.as_deref());
        self.mcp_session_id.push(e.mcp_session_id.as_deref());
        self.op.push(e.op.as_deref());
        self.store.push(e.store.as_deref());
        self.holder.push(e.holder.as_deref());
        self.scope.push(e.scope.as_deref());
        self.key.push(e.key.as_deref());
        self.input_tokens.push(e.input_tokens.unwrap_or(0));
        self.output_tokens.push(e.output_tokens.unwrap_or(0));
        self.cached_tokens.push(e.cached_tokens.unwrap_or(0));
        self.bytes.push(e.bytes.unwrap_or(0));
        self.tag.push(p.tag);
        self.session_tag.push(if p.session_stateful {
            Tag::Stateful
        } else {
            Tag::Stateless
        });
        self.consumes_state.push(p.consumes_state);
        self.creates_state.push(p.creates_state);
        self.session_stateful.push(p.session_stateful);
        self.state_holder.push(p.state_holder);
        self.state_kinds.push(p.state_kinds);
        self.ruleset.push(Some(&p.ruleset));
        self.ruleset_digest.push(Some(&p.ruleset_digest));
        self.request.push(p.request.as_deref().unwrap_or(""));
        self.attrs.push(p.attrs.as_deref().unwrap_or(""));
    }

    /// Derives every `session_tag` from `session_stateful` (same rule as
    /// [`crate::stored::rows::with_session_tags`]: a session is stateful when any of its events is).
    pub fn derive_session_tags(&mut self) {
        self.session_tag = session_tags(&self.session_id, &self.session_stateful);
    }

    /// The string column of an event field, by name (see [`STR_FIELDS`]).
    pub fn str_column(&self, name: &str) -> Option<&StrColumn> {
        Some(match name {
            "session_id" => &self.session_id,
            "parent_id" => &self.parent_id,
            "agent" => &self.agent,
            "tenant" => &self.tenant,
            "venue" => &self.venue,
            "status" => &self.status,
            "runtime" => &self.runtime,
            "runtime_session_id" => &self.runtime_session_id,
            "provider" => &self.provider,
            "model" => &self.model,
            "api" => &self.api,
            "endpoint" => &self.endpoint,
            "tool" => &self.tool,
            "tool_kind" => &self.tool_kind,
            "effect" => &self.effect,
            "mcp_session_id" => &self.mcp_session_id,
            "op" => &self.op,
            "store" => &self.store,
            "holder" => &self.holder,
            "scope" => &self.scope,
            "key" => &self.key,
            "ruleset" => &self.ruleset,
            "ruleset_digest" => &self.ruleset_digest,
            _ => return None,
        })
    }

    /// The last `seq`, or 0 when empty.
    pub fn last_seq(&self) -> u64 {
        self.seq.last().copied().unwrap_or(0)
    }

    /// Row index of `seq` (rows are in ascending seq order).
    pub fn row_of_seq(&self, seq: u64) -> Option<usize> {
        self.seq.binary_search(&seq).ok()
    }
}

/// Reads every event of `store` into columns, streaming (no intermediate rows).
pub fn load(store: &Store) -> Result<EventColumns> {
    let mut cols = EventColumns::default();
    load_after(store, &mut cols)?;
    Ok(cols)
}

/// Appends the events of `store` after `cols.last_seq()` and re-derives session tags.
/// Returns how many events were appended. `cols` must hold every column.
pub fn load_after(store: &Store, cols: &mut EventColumns) -> Result<usize> {
    let before = cols.len;
    let mut expected = cols.last_seq() + 1;
    store.for_each_record(cols.last_seq(), |seq, text| {
        if seq != expected {
            return Err(Error::Integrity(format!(
                "expected the event at seq {expected}, found seq {seq} (run verify())"
            )));
        }
        expected += 1;
        cols.push_parsed(seq, &scalars::parse(seq, text)?);
        Ok(())
    })?;
    if cols.len != before {
        cols.derive_session_tags();
    }
    Ok(cols.len - before)
}

/// Every column of the events of `store` after seq `after`, read from the records.
fn records_after(store: &Store, after: u64) -> Result<EventColumns> {
    let mut tail = EventColumns::default();
    let mut expected = after + 1;
    store.for_each_record(after, |seq, text| {
        if seq != expected {
            return Err(Error::Integrity(format!(
                "expected the event at seq {expected}, found seq {seq} (run verify())"
            )));
        }
        expected += 1;
        tail.push_parsed(seq, &scalars::parse(seq, text)?);
        Ok(())
    })?;
    Ok(tail)
}

impl EventColumns {
    /// These columns holding only those of `need` (the others dropped).
    pub fn project(mut self, need: Projection) -> EventColumns {
        let keep = self.present.covers(need);
        assert!(keep, "columns cannot be projected onto columns they lack");
        if !need.id() {
            self.id = TextColumn::default();
        }
        if !need.duration_ns() {
            self.duration_ns = Vec::new();
        }
        for (k, name) in STR_FIELDS.iter().enumerate() {
            if !need.str_field(k) {
                *self.str_column_mut(name) = StrColumn::default();
            }
        }
        if !need.cached_tokens() {
            self.cached_tokens = Vec::new();
        }
        if !need.bytes() {
            self.bytes = Vec::new();
        }
        if !need.request() {
            self.request = TextColumn::default();
        }
        if !need.attrs() {
            self.attrs = TextColumn::default();
        }
        self.readings = ReadingCache::default();
        self.present = need;
        self
    }

    /// The string column of an event field, by name, for writing (see [`STR_FIELDS`]).
    pub fn str_column_mut(&mut self, name: &str) -> &mut StrColumn {
        match name {
            "session_id" => &mut self.session_id,
            "parent_id" => &mut self.parent_id,
            "agent" => &mut self.agent,
            "tenant" => &mut self.tenant,
            "venue" => &mut self.venue,
            "status" => &mut self.status,
            "runtime" => &mut self.runtime,
            "runtime_session_id" => &mut self.runtime_session_id,
            "provider" => &mut self.provider,
            "model" => &mut self.model,
            "api" => &mut self.api,
            "endpoint" => &mut self.endpoint,
            "tool" => &mut self.tool,
            "tool_kind" => &mut self.tool_kind,
            "effect" => &mut self.effect,
            "mcp_session_id" => &mut self.mcp_session_id,
            "op" => &mut self.op,
            "store" => &mut self.store,
            "holder" => &mut self.holder,
            "scope" => &mut self.scope,
            "key" => &mut self.key,
            "ruleset" => &mut self.ruleset,
            "ruleset_digest" => &mut self.ruleset_digest,
            other => unreachable!("{other} is not a string column"),
        }
    }
}

/// Every event of `store` with the columns of `need`: the trusted prefix from its column
/// store ([`crate::stored::column_store`]), decoding only those columns, the rest from the
/// records; segments completed by what was read from the records are saved (replacing any
/// not trusted) for the next process (best effort: a read-only directory or a full disk only
/// leaves them unsaved).
pub fn load_stored(store: &Store, need: Projection) -> Result<EventColumns> {
    let (mut cols, coverage) = column_store::load(store, need);
    let tail = records_after(store, cols.last_seq())?;
    let _ = column_store::save(store, &tail, coverage.events + 1, true);
    if cols.len == 0 {
        cols = if need == Projection::ALL {
            tail
        } else {
            tail.project(need)
        };
    } else if tail.len > 0 {
        column_store::append(&mut cols, tail)?;
    }
    cols.derive_session_tags();
    Ok(cols)
}

/// Hands every event of `store` to `f` in seq order, a part at a time, with the columns of
/// `need`: each segment of the trusted prefix of its column store as it is decoded, then the
/// events after it, read from the records (segments these complete are saved as
/// [`load_stored`] saves them). The parts are dropped after `f` returns, so memory stays at a
/// few segments besides what `f` keeps. Each part has dictionaries of its own (codes differ
/// between parts), and its `session_tag`s are each event's own verdict on its session
/// (`session_stateful`), not derived over the ledger. Returns the last seq handed over (0:
/// none).
pub fn stream_stored(
    store: &Store,
    need: Projection,
    f: &mut dyn FnMut(&EventColumns) -> Result<()>,
) -> Result<u64> {
    let mut last = 0u64;
    let mut failed: Option<Error> = None;
    let coverage = column_store::for_each_segment(store, need, &mut |_, seg| {
        if failed.is_some() {
            return Err(Error::Ledger("stopped".into()));
        }
        match f(&seg) {
            Ok(()) => {
                last = seg.last_seq();
                Ok(())
            }
            Err(e) => {
                failed = Some(e);
                Err(Error::Ledger("stopped".into()))
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    debug_assert_eq!(last, coverage.events);
    let tail = records_after(store, coverage.events)?;
    let _ = column_store::save(store, &tail, coverage.events + 1, true);
    if tail.len > 0 {
        f(&tail)?;
        last = tail.last_seq();
    }
    Ok(last)
}

/// Columns of a store as of a head: what a cache keeps between reports.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub head: Head,
    pub cols: Arc<EventColumns>,
}

/// Brings `cached` up to date with `store`, holding at least the columns of `need` (and
/// those `cached` holds): the same snapshot when the head did not move and it holds them,
/// the new events appended when the ledger only grew (the hash at the cached head is
/// unchanged), else a full load.
pub fn refresh(store: &Store, cached: Option<&Snapshot>, need: Projection) -> Result<Snapshot> {
    let head = store.head()?;
    let mut want = need;
    if let Some(c) = cached {
        want = want.union(c.cols.present);
        let holds = c.cols.present.covers(need);
        if holds && c.head == head {
            return Ok(c.clone());
        }
        if holds
            && c.head.seq < head.seq
            && c.cols.last_seq() == c.head.seq
            && store.hash_at(c.head.seq)? == Some(c.head.hash)
        {
            let mut cols = (*c.cols).clone();
            // Segments the new events completed are saved for the next process (best
            // effort). Columns holding fewer than every column have the new events appended
            // from all of theirs, read apart (a segment's earlier events are then not at
            // hand: the segment is left to the writer or the next full load).
            if cols.present == Projection::ALL {
                load_after(store, &mut cols)?;
                let _ = column_store::save(store, &cols, c.head.seq + 1, false);
            } else {
                let tail = records_after(store, cols.last_seq())?;
                let _ = column_store::save(store, &tail, c.head.seq + 1, false);
                if tail.len > 0 {
                    column_store::append(&mut cols, tail)?;
                    cols.derive_session_tags();
                }
            }
            if cols.last_seq() == head.seq {
                return Ok(Snapshot {
                    head,
                    cols: Arc::new(cols),
                });
            }
        }
    }
    let cols = load_stored(store, want)?;
    // Appends between reading the head and loading show up at the next refresh.
    let head = if cols.last_seq() == head.seq {
        head
    } else {
        Head {
            seq: cols.last_seq(),
            hash: store.hash_at(cols.last_seq())?.unwrap_or([0; 32]),
        }
    };
    Ok(Snapshot {
        head,
        cols: Arc::new(cols),
    })
}

/// Columns kept per store between reads (reports, cost tables, sessions, exports), each
/// brought up to date by [`refresh`] when read: unchanged head → the same columns, a ledger
/// that only grew → the new events appended, anything else → reloaded.
///
/// Entries are keyed by the store's identity (its `Arc`) and hold it weakly: a dropped store's
/// entry is pruned at the next read. The store is locked only while refreshing, the cache
/// only while looking up and storing an entry, so reads of different stores do not wait on
/// each other's loads.
#[derive(Debug, Default)]
pub struct ColumnCache {
    entries: Mutex<Vec<(Weak<Mutex<Store>>, Snapshot)>>,
}

impl ColumnCache {
    pub const fn new() -> Self {
        ColumnCache {
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The columns of `store` as of its current head, every column held.
    pub fn columns(&self, store: &Arc<Mutex<Store>>) -> Result<Arc<EventColumns>> {
        self.columns_for(store, Projection::ALL)
    }

    /// The columns of `store` as of its current head, holding at least those of `need`.
    pub fn columns_for(
        &self,
        store: &Arc<Mutex<Store>>,
        need: Projection,
    ) -> Result<Arc<EventColumns>> {
        let cached = {
            let mut entries = self.entries.lock();
            entries.retain(|(w, _)| w.strong_count() > 0);
            entries
                .iter()
                .find(|(w, _)| Self::is(w, store))
                .map(|(_, s)| s.clone())
        };
        let snap = refresh(&store.lock(), cached.as_ref(), need)?;
        let cols = Arc::clone(&snap.cols);
        let mut entries = self.entries.lock();
        match entries.iter_mut().find(|(w, _)| Self::is(w, store)) {
            Some(entry) => entry.1 = snap,
            None => entries.push((Arc::downgrade(store), snap)),
        }
        Ok(cols)
    }

    /// The cached columns of `store` if they are up to date (its head did not move) and hold
    /// those of `need`; `None` otherwise (nothing is loaded).
    pub fn current(
        &self,
        store: &Arc<Mutex<Store>>,
        need: Projection,
    ) -> Result<Option<Arc<EventColumns>>> {
        let cached = {
            let entries = self.entries.lock();
            entries
                .iter()
                .find(|(w, _)| Self::is(w, store))
                .map(|(_, s)| s.clone())
        };
        let Some(snap) = cached else {
            return Ok(None);
        };
        if !snap.cols.present.covers(need) || store.lock().head()? != snap.head {
            return Ok(None);
        }
        Ok(Some(snap.cols))
    }

    /// How many stores have columns cached (dropped stores are pruned at the next read).
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `entry` is `store`'s. (A `Weak` keeps its allocation, so a dead entry's address
    /// is never reused by a live store.)
    fn is(entry: &Weak<Mutex<Store>>, store: &Arc<Mutex<Store>>) -> bool {
        std::ptr::eq(entry.as_ptr(), Arc::as_ptr(store))
    }
}

/// The rows at `indices` of `cols` read back from `store` as full events (for an
/// `EventTable`), each with its derived `session_tag` from `cols`.
pub fn rows_at(store: &Store, cols: &EventColumns, indices: &[usize]) -> Result<Vec<Row>> {
    let mut out = Vec::with_capacity(indices.len());
    for &i in indices {
        let seq = cols.seq[i];
        let text = store
            .expanded_record_at(seq)
            .map_err(|e| Error::Integrity(format!("cannot read the event at seq {seq}: {e}")))?
            .ok_or_else(|| Error::Integrity(format!("the event at seq {seq} is missing")))?;
        out.push(Row {
            rec: Arc::new(rows::parse_record(seq, &text)?),
            session_tag: cols.session_tag[i],
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Ruleset;
    use crate::event::Recorded;

    fn rec(kind: EventKind, session: Option<&str>, f: impl FnOnce(&mut Event)) -> Arc<Recorded> {
        let mut e = Event::new(kind);
        e.session_id = session.map(Into::into);
        f(&mut e);
        Arc::new(Recorded::pending(
            e.finish().unwrap(),
            Ruleset::builtin_default(),
        ))
    }

    fn call(session: Option<&str>, api: &str, request: Option<serde_json::Value>) -> Arc<Recorded> {
        rec(EventKind::ModelCall, session, |e| {
            e.provider = Some("openai".into());
            e.model = Some("gpt-5".into());
            e.api = Some(api.into());
            e.venue = Some("azure".into());
            e.input_tokens = Some(10);
            e.request = request.and_then(|v| v.as_object().cloned());
        })
    }

    #[test]
    fn columns_match_rows_and_session_tags_derive_the_same() {
        let recs = vec![
            call(Some("s1"), "chat.completions", None),
            call(Some("s2"), "chat.completions", None),
            call(None, "chat.completions", None),
            call(
                Some("s1"),
                "responses",
                Some(serde_json::json!({"previous_response_id": "r"})),
            ),
            rec(EventKind::ToolCall, Some("s2"), |e| {
                e.tool = Some("search".into())
            }),
        ];
        let rows = rows::with_session_tags(recs.clone());
        let from_rows = EventColumns::from_rows(&rows);
        let mut pushed = EventColumns::default();
        for (i, r) in recs.iter().enumerate() {
            pushed.push(i as u64 + 1, &r.event, r.classification());
        }
        pushed.derive_session_tags();
        assert_eq!(pushed.session_tag, from_rows.session_tag);
        assert_eq!(
            pushed.session_tag,
            [
                Tag::Stateful,
                Tag::Stateless,
                Tag::Stateless,
                Tag::Stateful,
                Tag::Stateless
            ]
        );
        assert_eq!(pushed.tag[0], Tag::Stateless);
        assert_eq!(pushed.len, 5);
        assert_eq!(pushed.venue.values.len(), 1);
        assert_eq!(pushed.venue.get(4), None);
        assert_eq!(pushed.tool.get(4), Some("search"));
        assert_eq!(pushed.id.get(2), recs[2].event.id);
        assert_eq!(pushed.kind[4], EventKind::ToolCall);
        assert_eq!(pushed.input_tokens[..3], [10, 10, 10]);
        assert_eq!(pushed.row_of_seq(4), Some(3));
        assert_eq!(
            pushed.str_column("provider").unwrap().code("openai"),
            Some(0)
        );
        assert!(pushed.str_column("nope").is_none());
    }

    #[test]
    fn loads_a_store_incrementally() {
        use crate::ledger::Durability;
        use crate::meter::Recorder;
        let store = Arc::new(parking_lot::Mutex::new(
            Store::open(None, Durability::Sync).unwrap(),
        ));
        let recorder = Recorder::new(
            Arc::clone(&store),
            Ruleset::builtin_default(),
            Durability::Sync,
            16,
        )
        .unwrap();
        let write =
            |r: &Arc<Recorded>| recorder.write_now(&recorder.wrap(r.event.clone())).unwrap();
        write(&call(Some("s"), "chat.completions", None));
        let mut cols = load(&store.lock()).unwrap();
        assert_eq!((cols.len, cols.session_tag[0]), (1, Tag::Stateless));
        write(&call(
            Some("s"),
            "responses",
            Some(serde_json::json!({"previous_response_id": "r"})),
        ));
        assert_eq!(load_after(&store.lock(), &mut cols).unwrap(), 1);
        // The later event made the whole session stateful, the first event included.
        assert_eq!(cols.session_tag, [Tag::Stateful, Tag::Stateful]);
        assert_eq!(cols.seq, [1, 2]);
        assert_eq!(load_after(&store.lock(), &mut cols).unwrap(), 0);
        // Snapshots: unchanged, grown, and rows read back.
        let snap = refresh(&store.lock(), None, Projection::ALL).unwrap();
        assert_eq!(snap.head.seq, 2);
        let same = refresh(&store.lock(), Some(&snap), Projection::ALL).unwrap();
        assert!(Arc::ptr_eq(&same.cols, &snap.cols));
        write(&call(Some("t"), "chat.completions", None));
        let grown = refresh(&store.lock(), Some(&snap), Projection::ALL).unwrap();
        assert_eq!((grown.head.seq, grown.cols.len), (3, 3));
        assert_eq!(grown.head, store.lock().head().unwrap());
        let rows = rows_at(&store.lock(), &grown.cols, &[0, 2]).unwrap();
        assert_eq!(rows[0].session_tag, Tag::Stateful);
        assert_eq!(rows[1].rec.event.session_id.as_deref(), Some("t"));
    }

    #[test]
    fn the_cache_refreshes_by_head_and_forgets_dropped_stores() {
        use crate::ledger::Durability;
        use crate::meter::Recorder;
        let cache = ColumnCache::new();
        let open = || Arc::new(Mutex::new(Store::open(None, Durability::Sync).unwrap()));
        let (a, b) = (open(), open());
        let recorder = Recorder::new(
            Arc::clone(&a),
            Ruleset::builtin_default(),
            Durability::Sync,
            16,
        )
        .unwrap();
        let write = |s: Option<&str>| {
            let r = call(s, "chat.completions", None);
            recorder.write_now(&recorder.wrap(r.event.clone())).unwrap();
        };
        write(Some("s"));
        let first = cache.columns(&a).unwrap();
        assert_eq!(first.len, 1);
        // Unchanged head: the same columns, not a reload.
        assert!(Arc::ptr_eq(&first, &cache.columns(&a).unwrap()));
        // Each store has its own entry.
        assert_eq!(cache.columns(&b).unwrap().len, 0);
        assert_eq!(cache.len(), 2);
        // Grown: the new event appended; the earlier columns are left as they were.
        write(Some("t"));
        let grown = cache.columns(&a).unwrap();
        assert_eq!((grown.len, first.len), (2, 1));
        assert_eq!(grown.session_id.get(1), Some("t"));
        // A dropped store's entry goes at the next read.
        drop(b);
        cache.columns(&a).unwrap();
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_holds_at_least_the_columns_asked_for() {
        use crate::ledger::Durability;
        use crate::meter::Recorder;
        let cache = ColumnCache::new();
        let a = Arc::new(Mutex::new(Store::open(None, Durability::Sync).unwrap()));
        let recorder = Recorder::new(
            Arc::clone(&a),
            Ruleset::builtin_default(),
            Durability::Sync,
            16,
        )
        .unwrap();
        let write = |s: &str| {
            let r = call(Some(s), "chat.completions", None);
            recorder.write_now(&recorder.wrap(r.event.clone())).unwrap();
        };
        write("s");
        let venue = Projection::BASE.with("venue");
        let part = cache.columns_for(&a, venue).unwrap();
        assert_eq!((part.len, part.present), (1, venue));
        assert_eq!(part.venue.get(0), Some("azure"));
        assert!(part.model.codes.is_empty() && part.id.data.is_empty());
        // The same columns again; more columns: reloaded holding both.
        assert!(Arc::ptr_eq(&part, &cache.columns_for(&a, venue).unwrap()));
        let model = Projection::BASE.with("model");
        let both = cache.columns_for(&a, model).unwrap();
        assert_eq!(both.present, venue.union(model));
        assert_eq!(both.model.get(0), Some("gpt-5"));
        // Grown: the new events appended to the columns held.
        write("t");
        let grown = cache.columns_for(&a, venue).unwrap();
        assert_eq!((grown.len, grown.present), (2, venue.union(model)));
        assert_eq!(grown.session_id.get(1), Some("t"));
        assert_eq!(grown.model.codes, [0, 0]);
        // Every column: reloaded, then kept for narrower asks.
        let all = cache.columns(&a).unwrap();
        assert_eq!((all.len, all.present), (2, Projection::ALL));
        assert!(Arc::ptr_eq(&all, &cache.columns_for(&a, venue).unwrap()));
        assert!(Projection::ALL.covers(venue) && !venue.covers(model));
        assert_eq!(Projection::BASE.with("ts"), Projection::BASE);
    }

    #[test]
    fn the_record_view_loader_matches_the_full_parser() {
        use crate::ledger::Durability;
        use crate::meter::Recorder;
        let store = Arc::new(parking_lot::Mutex::new(
            Store::open(None, Durability::Sync).unwrap(),
        ));
        let recorder = Recorder::new(
            Arc::clone(&store),
            Ruleset::builtin_strict(),
            Durability::Sync,
            16,
        )
        .unwrap();
        let mut events = vec![
            rec(EventKind::SessionStart, Some("s\"1\u{e9}"), |e| {
                e.runtime = Some("agentcore".into());
                e.runtime_session_id = Some("rs".into());
                e.venue = Some("aws".into());
                e.agent = Some("bot".into());
                e.tenant = Some("t\\x".into());
            }),
            call(
                Some("s\"1\u{e9}"),
                "responses",
                Some(serde_json::json!({"previous_response_id": "r", "n": [1, {"a": null}]})),
            ),
            rec(EventKind::ToolCall, Some("s2"), |e| {
                e.tool = Some("search".into());
                e.mcp_session_id = Some("m".into());
                e.duration_ns = Some(5);
                e.attrs = serde_json::json!({"x": "y\n", "deep": {"z": [1.5]}})
                    .as_object()
                    .cloned()
                    .unwrap();
            }),
            rec(EventKind::StateOp, None, |e| {
                e.op = Some("write".into());
                e.store = Some("mem".into());
                e.holder = Some("client".into());
                e.key = Some("k".into());
                e.bytes = Some(42);
            }),
            rec(EventKind::SessionEnd, Some("s2"), |e| {
                e.status = Some("error".into())
            }),
        ];
        for r in events.drain(..) {
            recorder.write_now(&recorder.wrap(r.event.clone())).unwrap();
        }
        let fast = load(&store.lock()).unwrap();
        let slow = EventColumns::from_rows(&rows::load(&store.lock()).unwrap());
        assert_eq!(fast.len, 5);
        assert_eq!(fast.seq, slow.seq);
        assert_eq!(fast.id.data, slow.id.data);
        assert_eq!(fast.id.offsets, slow.id.offsets);
        assert_eq!(fast.kind, slow.kind);
        assert_eq!(fast.ts, slow.ts);
        assert_eq!(fast.duration_ns, slow.duration_ns);
        for name in STR_FIELDS {
            let (a, b) = (
                fast.str_column(name).unwrap(),
                slow.str_column(name).unwrap(),
            );
            let decode = |c: &StrColumn| {
                (0..c.codes.len())
                    .map(|i| c.get(i).map(str::to_owned))
                    .collect::<Vec<_>>()
            };
            assert_eq!(decode(a), decode(b), "{name}");
        }
        assert_eq!(fast.input_tokens, slow.input_tokens);
        assert_eq!(fast.cached_tokens, slow.cached_tokens);
        assert_eq!(fast.bytes, slow.bytes);
        assert_eq!(fast.tag, slow.tag);
        assert_eq!(fast.session_tag, slow.session_tag);
        assert_eq!(fast.consumes_state, slow.consumes_state);
        assert_eq!(fast.creates_state, slow.creates_state);
        assert_eq!(fast.state_holder, slow.state_holder);
        assert_eq!(fast.state_kinds, slow.state_kinds);
        assert_eq!(fast.session_stateful, slow.session_stateful);
        // `request` and `attrs` are the record's canonical JSON, as the event writes it.
        assert_eq!(fast.request.offsets, slow.request.offsets);
        assert_eq!(fast.request.data, slow.request.data);
        assert_eq!(fast.attrs.data, slow.attrs.data);
        assert_eq!(
            fast.request.get(1),
            r#"{"n":[1,{"a":null}],"previous_response_id":"r"}"#
        );
        assert_eq!(fast.attrs.get(2), r#"{"deep":{"z":[1.5]},"x":"y\n"}"#);
        assert_eq!((fast.request.get(0), fast.attrs.get(0)), ("", ""));
        assert_eq!(fast.session_id.get(0), Some("s\"1\u{e9}"));
        assert!(crate::stored::scalars::parse(1, "{\"event\":{}}").is_err());
    }
}
