//! The sessions table: one row per `session_id` seen in a ledger, summarised from
//! [`EventColumns`] (`ledger.sessions()`).
//!
//! A row's identity fields (`agent`, `tenant`, `venue`, `runtime`, `runtime_session_id`) come
//! from the session's `session_start` event, or from its first event that has them when the
//! start was not recorded. `start` is the `session_start`'s `ts` (else the earliest event's),
//! `end` the `session_end`'s `ts` (else `None`: the session is still open, or its end was never
//! recorded); `last_ts` is the latest `ts + duration_ns` of any of its events. Counts are per
//! kind; tokens sum the session's model calls; `stateful_events` counts events whose own (call
//! level) tag is stateful; `session_tag` is the derived session-level tag. Events without a
//! `session_id` belong to no session and are not in this table. Rows are in the order the
//! sessions' first events were recorded.
//!
//! Inner calls: the steps a provider-managed runtime reported for a call the client made into
//! it (the integrations record them as children of that call). An event is an inner call when
//! its `parent_id` is the id of a `model_call` in the ledger; `inner_model_calls`,
//! `inner_tool_calls`, `inner_state_ops` count them per session (they are also in the plain
//! counts) and `inner_input_tokens`, `inner_output_tokens`, `inner_cached_tokens` sum the
//! inner model calls' tokens.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::event::Tag;
use crate::ledger::{Head, Store};
use crate::stored::columns::{
    stream_stored, ColumnCache, EventColumns, Projection, StrColumn, NULL,
};

/// The columns [`summarise`] reads besides those always held; with `inner` (some event has
/// a `parent_id`) also the ids, to find which parents are model calls.
pub fn columns_needed(inner: bool) -> Projection {
    let p = Projection::BASE.with_all(&[
        "agent",
        "tenant",
        "venue",
        "runtime",
        "runtime_session_id",
        "status",
        "parent_id",
        "duration_ns",
        "cached_tokens",
    ]);
    if inner {
        p.with("id")
    } else {
        p
    }
}

/// One session's summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub session_id: Arc<str>,
    pub agent: Option<Arc<str>>,
    pub tenant: Option<Arc<str>>,
    pub venue: Option<Arc<str>>,
    pub runtime: Option<Arc<str>>,
    pub runtime_session_id: Option<Arc<str>>,
    /// `ts` of the `session_start` (else the earliest `ts` of its events).
    pub start: i64,
    /// `ts` of the `session_end`, if recorded.
    pub end: Option<i64>,
    /// The latest `ts + duration_ns` over the session's events.
    pub last_ts: i64,
    /// The `session_end`'s status (`ok`, `error`, ...), if recorded.
    pub status: Option<Arc<str>>,
    pub first_seq: u64,
    pub events: u64,
    pub model_calls: u64,
    pub tool_calls: u64,
    pub state_ops: u64,
    pub tool_errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub stateful_events: u64,
    pub inner_model_calls: u64,
    pub inner_tool_calls: u64,
    pub inner_state_ops: u64,
    pub inner_input_tokens: u64,
    pub inner_output_tokens: u64,
    pub inner_cached_tokens: u64,
    pub session_tag: Tag,
}

impl SessionRow {
    /// `end - start` when the end is recorded, else `last_ts - start`.
    pub fn duration_ns(&self) -> i64 {
        self.end.unwrap_or(self.last_ts).saturating_sub(self.start)
    }
}

/// The field of a row that an identity column fills.
type IdentityField = fn(&mut SessionRow) -> &mut Option<Arc<str>>;

/// Summarises the sessions of `cols`.
pub fn summarise(cols: &EventColumns) -> Vec<SessionRow> {
    let mut s = Summary::default();
    s.add(cols, &inner_parents(cols));
    s.finish()
}

/// The sessions table built a part of the ledger at a time: [`Summary::add`] each part in
/// seq order (a whole ledger's columns, or the segments [`crate::stored::columns::stream_stored`]
/// hands over, each with dictionaries of its own), then [`Summary::finish`]. Holds one row
/// per session and the index of session ids, never the events.
#[derive(Debug, Default)]
pub struct Summary {
    /// The row of each session id.
    slots: HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
    rows: Vec<SessionRow>,
    /// Per row: whether its `session_start` was seen (then `start` is its ts), and whether
    /// any of its events makes the session stateful.
    started: Vec<bool>,
    stateful: Vec<bool>,
}

impl Summary {
    /// Whether `cols` has an event with a `parent_id`: summarising them needs the inner
    /// parents of the whole ledger ([`summarise`] over every event), not a part at a time.
    pub fn has_parents(cols: &EventColumns) -> bool {
        !cols.parent_id.values.is_empty()
    }

    /// Adds the events of `cols` (the part of the ledger after those added so far).
    /// `inner[c]`: whether the `parent_id` of code `c` is a model call of the ledger.
    pub fn add(&mut self, cols: &EventColumns, inner: &[bool]) {
        // This part's session codes → rows (NULL: not met in this part yet).
        let mut slot: Vec<u32> = vec![NULL; cols.session_id.values.len()];
        // The identity columns, each with the field of a row it fills.
        let identity: [(&StrColumn, IdentityField); 5] = [
            (&cols.agent, |s| &mut s.agent),
            (&cols.tenant, |s| &mut s.tenant),
            (&cols.venue, |s| &mut s.venue),
            (&cols.runtime, |s| &mut s.runtime),
            (&cols.runtime_session_id, |s| &mut s.runtime_session_id),
        ];
        let status = &cols.status;
        // The `status` code of "error" (tool errors), if any event has it.
        let error = status
            .values
            .iter()
            .position(|v| &**v == "error")
            .map(|c| c as u32);
        for i in 0..cols.len {
            let code = cols.session_id.codes[i];
            if code == NULL {
                continue;
            }
            let kind = cols.kind[i];
            let ts = cols.ts[i];
            if slot[code as usize] == NULL {
                let id = &cols.session_id.values[code as usize];
                let next = self.rows.len() as u32;
                let row = *self.slots.entry(Arc::clone(id)).or_insert(next);
                if row == next {
                    self.rows.push(SessionRow {
                        session_id: Arc::clone(id),
                        agent: None,
                        tenant: None,
                        venue: None,
                        runtime: None,
                        runtime_session_id: None,
                        start: ts,
                        end: None,
                        last_ts: ts,
                        status: None,
                        first_seq: cols.seq[i],
                        events: 0,
                        model_calls: 0,
                        tool_calls: 0,
                        state_ops: 0,
                        tool_errors: 0,
                        input_tokens: 0,
                        output_tokens: 0,
                        cached_tokens: 0,
                        stateful_events: 0,
                        inner_model_calls: 0,
                        inner_tool_calls: 0,
                        inner_state_ops: 0,
                        inner_input_tokens: 0,
                        inner_output_tokens: 0,
                        inner_cached_tokens: 0,
                        session_tag: Tag::Stateless,
                    });
                    self.started.push(false);
                    self.stateful.push(false);
                }
                slot[code as usize] = row;
            }
            let row = slot[code as usize] as usize;
            let s = &mut self.rows[row];
            let has_start = &mut self.started[row];
            if cols.session_stateful[i] {
                self.stateful[row] = true;
            }
            s.events += 1;
            s.last_ts = s
                .last_ts
                .max(ts.saturating_add(cols.duration_ns[i].unwrap_or(0)));
            if cols.tag[i] == Tag::Stateful {
                s.stateful_events += 1;
            }
            let start = kind == EventKind::SessionStart;
            if !start && !*has_start {
                s.start = s.start.min(ts);
            }
            // Identity: the start event wins; otherwise the first event that has the field.
            for (col, field) in &identity {
                let field = field(s);
                if start || field.is_none() {
                    let code = col.codes[i];
                    if code != NULL {
                        *field = Some(Arc::clone(&col.values[code as usize]));
                    }
                }
            }
            let parent = cols.parent_id.codes[i];
            if parent != NULL && inner[parent as usize] {
                match kind {
                    EventKind::ModelCall => {
                        s.inner_model_calls += 1;
                        s.inner_input_tokens += cols.input_tokens[i];
                        s.inner_output_tokens += cols.output_tokens[i];
                        s.inner_cached_tokens += cols.cached_tokens[i];
                    }
                    EventKind::ToolCall => s.inner_tool_calls += 1,
                    EventKind::StateOp => s.inner_state_ops += 1,
                    EventKind::SessionStart | EventKind::SessionEnd => {}
                }
            }
            match kind {
                EventKind::SessionStart => {
                    s.start = ts;
                    *has_start = true;
                }
                EventKind::SessionEnd => {
                    s.end = Some(ts);
                    s.status = match status.codes[i] {
                        NULL => None,
                        c => Some(Arc::clone(&status.values[c as usize])),
                    };
                }
                EventKind::ModelCall => {
                    s.model_calls += 1;
                    s.input_tokens += cols.input_tokens[i];
                    s.output_tokens += cols.output_tokens[i];
                    s.cached_tokens += cols.cached_tokens[i];
                }
                EventKind::ToolCall => {
                    s.tool_calls += 1;
                    if error.is_some_and(|e| status.codes[i] == e) {
                        s.tool_errors += 1;
                    }
                }
                EventKind::StateOp => s.state_ops += 1,
            }
        }
    }

    /// The rows, in the order the sessions' first events were added, with their session
    /// tags (stateful when any event of the session makes it so).
    pub fn finish(self) -> Vec<SessionRow> {
        let mut rows = self.rows;
        for (r, &stateful) in rows.iter_mut().zip(&self.stateful) {
            r.session_tag = if stateful {
                Tag::Stateful
            } else {
                Tag::Stateless
            };
        }
        rows
    }
}

/// The sessions table of `store` as of its head: summarised from `columns` when they hold
/// the store's current columns (or the store is in memory: then loaded into `columns`),
/// else from its column store a segment at a time
/// ([`stream_stored`]: no column is held whole, nor kept after), unless the ledger has events
/// with a `parent_id` (then from every column, loaded into `columns`: inner calls need the
/// whole ledger's model call ids). A table still held from an earlier call at the same head
/// is returned again.
pub fn sessions_of(
    store: &Arc<Mutex<Store>>,
    columns: &ColumnCache,
    tables: &SessionsCache,
) -> Result<Arc<Vec<SessionRow>>> {
    let head = store.lock().head()?;
    if let Some(rows) = tables.get(store, head) {
        return Ok(rows);
    }
    let need = columns_needed(false);
    if store.lock().path().is_none() {
        // In memory: no column store to read a part at a time; the columns stay cached.
        let mut cols = columns.columns_for(store, need)?;
        if !cols.present.id() && Summary::has_parents(&cols) {
            cols = columns.columns_for(store, columns_needed(true))?;
        }
        let rows = Arc::new(summarise(&cols));
        tables.put(store, head, &rows);
        return Ok(rows);
    }
    let rows = match columns.current(store, need)? {
        Some(cols) if cols.present.id() || !Summary::has_parents(&cols) => Some(summarise(&cols)),
        Some(_) => None,
        None => {
            let mut summary = Summary::default();
            let mut parents = false;
            let last = stream_stored(&store.lock(), need, &mut |part| {
                if Summary::has_parents(part) {
                    parents = true;
                    return Err(Error::Ledger("events with parents".into()));
                }
                summary.add(part, &[]);
                Ok(())
            });
            match last {
                Ok(last) if last == head.seq => Some(summary.finish()),
                // Appended meanwhile: the table is as of the later head (not kept).
                Ok(_) => return Ok(Arc::new(summary.finish())),
                Err(_) if parents => None,
                Err(e) => return Err(e),
            }
        }
    };
    let rows = match rows {
        Some(rows) => rows,
        None => summarise(&*columns.columns_for(store, columns_needed(true))?),
    };
    let rows = Arc::new(rows);
    tables.put(store, head, &rows);
    Ok(rows)
}

/// Sessions tables handed out, by store and head, held weakly: a table the caller still
/// holds is returned again for an unchanged ledger, and one it dropped is not kept.
#[derive(Debug, Default)]
pub struct SessionsCache {
    entries: Mutex<Vec<HeldTable>>,
}

/// A table handed out: its store, the head it is as of, and the rows.
type HeldTable = (Weak<Mutex<Store>>, Head, Weak<Vec<SessionRow>>);

impl SessionsCache {
    pub const fn new() -> Self {
        SessionsCache {
            entries: Mutex::new(Vec::new()),
        }
    }

    fn get(&self, store: &Arc<Mutex<Store>>, head: Head) -> Option<Arc<Vec<SessionRow>>> {
        let entries = self.entries.lock();
        entries
            .iter()
            .find(|(s, h, _)| std::ptr::eq(s.as_ptr(), Arc::as_ptr(store)) && *h == head)
            .and_then(|(_, _, rows)| rows.upgrade())
    }

    fn put(&self, store: &Arc<Mutex<Store>>, head: Head, rows: &Arc<Vec<SessionRow>>) {
        let mut entries = self.entries.lock();
        entries.retain(|(s, _, r)| {
            s.strong_count() > 0
                && r.strong_count() > 0
                && !std::ptr::eq(s.as_ptr(), Arc::as_ptr(store))
        });
        entries.push((Arc::downgrade(store), head, Arc::downgrade(rows)));
    }
}

/// For each `parent_id` dictionary code: whether that parent is a `model_call` of the ledger
/// (its children are inner calls).
fn inner_parents(cols: &EventColumns) -> Vec<bool> {
    let parents = &cols.parent_id.values;
    if parents.is_empty() {
        return Vec::new();
    }
    if !cols.present.id() {
        // The caller loads the ids when there are parents (see `columns_needed`).
        panic!("summarising sessions with parents needs the id column");
    }
    let wanted: HashSet<&str> = parents.iter().map(|p| &**p).collect();
    let mut calls: HashSet<&str> = HashSet::new();
    for i in 0..cols.len {
        if cols.kind[i] == EventKind::ModelCall {
            let id = cols.id.get(i);
            if wanted.contains(id) {
                calls.insert(id);
            }
        }
    }
    parents.iter().map(|p| calls.contains(&**p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Ruleset;
    use crate::event::Event;

    fn push(
        cols: &mut EventColumns,
        kind: EventKind,
        session: Option<&str>,
        ts: i64,
        f: impl FnOnce(&mut Event),
    ) {
        let mut e = Event::new(kind);
        e.session_id = session.map(Into::into);
        e.ts = ts;
        f(&mut e);
        let e = e.finish().unwrap();
        let c = Ruleset::builtin_default().classify(&e);
        cols.push(cols.len as u64 + 1, &e, &c);
    }

    #[test]
    fn one_row_per_session_with_counts_identity_and_tags() {
        let mut c = EventColumns::default();
        push(&mut c, EventKind::SessionStart, Some("rt"), 100, |e| {
            e.agent = Some("claims".into());
            e.venue = Some("aws".into());
            e.runtime = Some("agentcore".into());
            e.runtime_session_id = Some("rs-1".into());
        });
        push(&mut c, EventKind::ModelCall, Some("plain"), 90, |e| {
            e.agent = Some("bot".into());
            e.provider = Some("openai".into());
            e.model = Some("gpt-5".into());
            e.api = Some("chat.completions".into());
            e.input_tokens = Some(7);
            e.duration_ns = Some(50);
        });
        push(&mut c, EventKind::ModelCall, Some("rt"), 110, |e| {
            e.provider = Some("aws.bedrock".into());
            e.model = Some("m".into());
            e.api = Some("converse".into());
            e.input_tokens = Some(10);
            e.output_tokens = Some(2);
            e.cached_tokens = Some(4);
        });
        push(&mut c, EventKind::ToolCall, Some("rt"), 120, |e| {
            e.tool = Some("t".into());
            e.status = Some("error".into());
        });
        push(&mut c, EventKind::StateOp, None, 125, |e| {
            e.op = Some("write".into());
            e.store = Some("mem".into());
            e.holder = Some("provider".into());
        });
        push(&mut c, EventKind::SessionEnd, Some("rt"), 130, |e| {
            e.status = Some("ok".into());
        });
        c.derive_session_tags();
        let s = summarise(&c);
        assert_eq!(s.len(), 2);
        let rt = &s[0];
        assert_eq!(&*rt.session_id, "rt");
        assert_eq!(rt.agent.as_deref(), Some("claims"));
        assert_eq!(rt.runtime.as_deref(), Some("agentcore"));
        assert_eq!(rt.runtime_session_id.as_deref(), Some("rs-1"));
        assert_eq!((rt.start, rt.end, rt.duration_ns()), (100, Some(130), 30));
        assert_eq!(rt.status.as_deref(), Some("ok"));
        assert_eq!(
            (rt.events, rt.model_calls, rt.tool_calls, rt.state_ops),
            (4, 1, 1, 0)
        );
        assert_eq!(rt.tool_errors, 1);
        assert_eq!(
            (rt.input_tokens, rt.output_tokens, rt.cached_tokens),
            (10, 2, 4)
        );
        // The runtime makes the session stateful; its model call alone is stateless.
        assert_eq!(rt.session_tag, Tag::Stateful);
        let plain = &s[1];
        assert_eq!((plain.start, plain.end, plain.last_ts), (90, None, 140));
        assert_eq!(plain.duration_ns(), 50);
        assert_eq!(plain.session_tag, Tag::Stateless);
        assert_eq!(plain.first_seq, 2);
        let b = crate::arrow::sessions::batches(&s).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.batches[0].schema(), crate::arrow::sessions::schema());
    }

    #[test]
    fn inner_calls_are_the_children_of_model_calls() {
        let mut c = EventColumns::default();
        push(&mut c, EventKind::ModelCall, Some("s"), 100, |e| {
            e.id = "outer".into();
            e.provider = Some("aws.bedrock".into());
            e.model = Some("agent".into());
            e.api = Some("invoke_agent".into());
        });
        push(&mut c, EventKind::ModelCall, Some("s"), 110, |e| {
            e.parent_id = Some("outer".into());
            e.provider = Some("aws.bedrock".into());
            e.model = Some("m".into());
            e.api = Some("invoke_model".into());
            e.input_tokens = Some(300);
            e.output_tokens = Some(40);
            e.cached_tokens = Some(100);
        });
        push(&mut c, EventKind::ToolCall, Some("s"), 120, |e| {
            e.id = "tool".into();
            e.parent_id = Some("outer".into());
            e.tool = Some("t".into());
        });
        // A child of a tool call, and of an id the ledger does not hold: not inner calls.
        push(&mut c, EventKind::StateOp, Some("s"), 125, |e| {
            e.parent_id = Some("tool".into());
            e.op = Some("read".into());
            e.store = Some("kb".into());
            e.holder = Some("provider".into());
        });
        push(&mut c, EventKind::ModelCall, Some("s"), 130, |e| {
            e.parent_id = Some("elsewhere".into());
            e.provider = Some("openai".into());
            e.model = Some("gpt-5".into());
            e.api = Some("responses".into());
            e.input_tokens = Some(7);
        });
        push(&mut c, EventKind::StateOp, Some("s"), 140, |e| {
            e.parent_id = Some("outer".into());
            e.op = Some("write".into());
            e.store = Some("memory_store".into());
            e.holder = Some("provider".into());
        });
        c.derive_session_tags();
        let [s] = &summarise(&c)[..] else {
            panic!("one session")
        };
        assert_eq!(
            (s.model_calls, s.tool_calls, s.state_ops, s.input_tokens),
            (3, 1, 2, 307)
        );
        assert_eq!(
            (s.inner_model_calls, s.inner_tool_calls, s.inner_state_ops),
            (1, 1, 1)
        );
        assert_eq!(
            (
                s.inner_input_tokens,
                s.inner_output_tokens,
                s.inner_cached_tokens
            ),
            (300, 40, 100)
        );
    }
}
