//! The version-2 record: what repeats across events (the classification and the event's
//! low-cardinality keys) is written once, in the record of the first event that has it, and
//! later records name that record by its seq; the id index keys ids as 16 bytes.
//!
//! A version-2 record is the canonical JSON `{"c":C,"e":E,"s":N,"v":2}`:
//! - `c`, the event's *context*: either the object `{"classification":CL,"event":P}` (a
//!   definition: CL the classification, P the event's keys listed in [`CONTEXT_KEYS`]), or the
//!   integer seq of an earlier record whose `c` is such an object (a reference);
//! - `e`: the event's other keys; the event is the union of `e` and the context's `event`
//!   (their keys are disjoint);
//! - `s`: the row's seq.
//!
//! Everything an event says is thus inside the chain: a reference is covered by the hash of its
//! record, and the definition it names by the hash of the earlier record. See
//! docs/ledger-format.md ("Version 2").

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::canonical;

/// The event keys a version-2 writer puts in the context: the ones that repeat the same few
/// values across an agent's events. Every other key stays in the record's `e`. Sorted.
pub const CONTEXT_KEYS: [&str; 17] = [
    "agent",
    "api",
    "effect",
    "endpoint",
    "holder",
    "kind",
    "model",
    "op",
    "provider",
    "runtime",
    "scope",
    "status",
    "store",
    "tenant",
    "tool",
    "tool_kind",
    "venue",
];

/// The text that ends every version-2 record after its seq digits.
pub(crate) const TAIL_V2: &[u8] = b",\"v\":2}";
/// The text just before a version-2 record's seq digits.
pub(crate) const SEQ_KEY_V2: &[u8] = b",\"s\":";

/// A version-2 record's context: the definition's text, or the seq of the record holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context<'a> {
    Inline(&'a str),
    Ref(u64),
}

/// The members of a JSON object's text, as `(key as written, "key":value text)`, in order;
/// `None` when `text` is not an object this scanner can follow (it trusts the JSON to be
/// valid: callers pass canonical texts the writer made, or records read back, which readers
/// parse in full anyway).
pub fn members(text: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    for member in Members::new(text)? {
        out.push(member?);
    }
    Some(out)
}

/// The members of a JSON object's text, one at a time (see [`members`]): each item is
/// `Some((key, member))`, or `None` once when the text stops being an object this scanner
/// can follow (and nothing after that).
pub struct Members<'a> {
    text: &'a str,
    at: usize,
    done: bool,
}

impl<'a> Members<'a> {
    /// `None` when `text` is not `{...}`.
    pub fn new(text: &'a str) -> Option<Self> {
        let b = text.as_bytes();
        if b.first() != Some(&b'{') || b.last() != Some(&b'}') {
            return None;
        }
        Some(Members {
            text,
            at: 1,
            done: b.len() == 2,
        })
    }

    fn step(&mut self) -> Option<(&'a str, &'a str)> {
        let (text, b) = (self.text, self.text.as_bytes());
        let start = self.at;
        if b.get(start) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, start)?;
        let key = &text[start + 1..key_end];
        if b.get(key_end + 1) != Some(&b':') {
            return None;
        }
        let end = value_end(b, key_end + 2)?;
        match b.get(end) {
            Some(b',') => self.at = end + 1,
            Some(b'}') if end == b.len() - 1 => self.done = true,
            _ => return None,
        }
        Some((key, &text[start..end]))
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Option<(&'a str, &'a str)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let member = self.step();
        self.done |= member.is_none();
        Some(member)
    }
}

/// The index of the quote closing the string that opens at `at`.
fn string_end(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i] == b'"' {
            return Some(i);
        }
        i += 2;
    }
}

/// The index just after the JSON value starting at `at`.
fn value_end(b: &[u8], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    while i < b.len() {
        match b[i] {
            b'"' => i = string_end(b, i)?,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b',' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The keys of a context's `event` object (the definition text's `event` member), for
/// [`shadowed_key`]: a verifier asks, for every key of every record's `e`, whether the
/// context holds it, so a 64-bit mask of the keys' lengths and end bytes answers "no" for
/// nearly all of them without a string comparison.
#[derive(Clone, Debug, Default)]
pub struct ContextKeys {
    mask: u64,
    keys: Vec<String>,
}

impl ContextKeys {
    /// The keys of the definition `{"classification":CL,"event":P}`; `None` when
    /// `definition` is not one.
    pub fn of(definition: &str) -> Option<Self> {
        let m = members(definition)?;
        let [("classification", _), ("event", ev)] = m[..] else {
            return None;
        };
        let mut out = ContextKeys::default();
        for member in Members::new(&ev[8..])? {
            let key = member?.0;
            out.mask |= Self::bit(key);
            out.keys.push(key.to_string());
        }
        Some(out)
    }

    fn bit(key: &str) -> u64 {
        let b = key.as_bytes();
        let end = b
            .first()
            .map_or(0, |&f| usize::from(f) ^ (usize::from(b[b.len() - 1]) << 2));
        1 << ((b.len() * 7 + end) % 64)
    }

    /// Whether the context's event holds `key` (as written in the JSON text).
    pub fn holds(&self, key: &str) -> bool {
        self.mask & Self::bit(key) != 0 && self.keys.iter().any(|k| k == key)
    }
}

/// What [`shadowed_key`] found in a record's `e`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys<'a> {
    /// Every key once, none of them the context's.
    Disjoint,
    /// The first key the expanded event would hold twice.
    Twice(&'a str),
    /// `e` is not an object.
    NotAnObject,
}

/// Whether the event a version-2 record expands to would be ambiguous: the first key of its
/// `e` (`own_event`) that its context's event also holds, or that `e` holds twice in a row (in
/// a canonical object equal keys are neighbours).
pub fn shadowed_key<'a>(own_event: &'a str, context: &ContextKeys) -> Keys<'a> {
    let Some(members) = Members::new(own_event) else {
        return Keys::NotAnObject;
    };
    let mut last = None;
    for member in members {
        let Some((key, _)) = member else {
            return Keys::NotAnObject;
        };
        if last == Some(key) || context.holds(key) {
            return Keys::Twice(key);
        }
        last = Some(key);
    }
    Keys::Disjoint
}

/// Whether `key` is one of [`CONTEXT_KEYS`] (a `match` the compiler turns into length and
/// byte comparisons: the writer asks it for every key of every event).
fn is_context_key(key: &str) -> bool {
    matches!(
        key,
        "agent"
            | "api"
            | "effect"
            | "endpoint"
            | "holder"
            | "kind"
            | "model"
            | "op"
            | "provider"
            | "runtime"
            | "scope"
            | "status"
            | "store"
            | "tenant"
            | "tool"
            | "tool_kind"
            | "venue"
    )
}

/// Splits a canonical event object into `(e, context event)`: the keys of [`CONTEXT_KEYS`] go
/// to the second. Both stay canonical (a sorted list split in two stays sorted). One pass over
/// the text, as [`members`] reads it, without collecting the members first. No key is in both:
/// `None` for an object that is not canonical enough to split so (a key given twice).
pub fn split_event(event_json: &str) -> Option<(String, String)> {
    let mut own = String::with_capacity(event_json.len());
    let mut shared = String::with_capacity(160);
    split_event_into(event_json, &mut own, &mut shared).then_some((own, shared))
}

/// [`split_event`] into buffers the caller keeps (cleared first): false, with the buffers
/// holding nothing meaningful, where [`split_event`] gives `None`.
pub fn split_event_into(event_json: &str, own: &mut String, shared: &mut String) -> bool {
    own.clear();
    shared.clear();
    let b = event_json.as_bytes();
    if b.first() != Some(&b'{') || b.last() != Some(&b'}') {
        return false;
    }
    own.push('{');
    shared.push('{');
    let mut i = 1;
    let mut last = "";
    if b.len() > 2 {
        loop {
            let start = i;
            if b.get(i) != Some(&b'"') {
                return false;
            }
            let Some(key_end) = string_end(b, i) else {
                return false;
            };
            let key = &event_json[i + 1..key_end];
            // A key given twice would be in `e` or the context twice: the expanded event
            // would be ambiguous (canonical objects list equal keys next to each other).
            if start > 1 && key == last {
                return false;
            }
            last = key;
            i = key_end + 1;
            if b.get(i) != Some(&b':') {
                return false;
            }
            let Some(end) = value_end(b, i + 1) else {
                return false;
            };
            i = end;
            push_member(key, &event_json[start..i], own, shared);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') if i == b.len() - 1 => break,
                _ => return false,
            }
        }
    }
    own.push('}');
    shared.push('}');
    true
}

/// Appends `member` (`"key":value`) to the half of a split event its key belongs to: the
/// context's event for a key of [`CONTEXT_KEYS`], else the record's own (each opened with `{`).
fn push_member(key: &str, member: &str, own: &mut String, shared: &mut String) {
    let out = if is_context_key(key) { shared } else { own };
    if out.len() > 1 {
        out.push(',');
    }
    out.push_str(member);
}

/// A member of an event object's text as its writer tells it
/// ([`crate::event::Event::write_canonical_json_marking`]): the key, and where `"key":value`
/// is in the text.
pub type Member = (&'static str, std::ops::Range<usize>);

/// [`split_event_into`] of an event object whose members are known (`members`, in order, as
/// its writer told them), copying them without reading the text: the same two texts.
pub fn split_members_into(
    event_json: &str,
    members: &[Member],
    own: &mut String,
    shared: &mut String,
) {
    own.clear();
    shared.clear();
    own.push('{');
    shared.push('{');
    for (key, at) in members {
        push_member(key, &event_json[at.clone()], own, shared);
    }
    own.push('}');
    shared.push('}');
}

/// The two texts a version-2 record is made of, for one event: its own members (`e`) and its
/// context definition (`{"classification":CL,"event":P}`), as [`split_event`] and
/// [`write_context`] make them. The recorder's encoder thread makes them beside the event's
/// canonical JSON, so that the committer, the slower thread, only looks the definition up and
/// joins the record; the buffers are reused from group to group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parts {
    own: String,
    definition: String,
    /// The definition when it is shared with other events' parts ([`SharedDefinitions`]);
    /// `definition` is then empty.
    context: Option<Arc<str>>,
    shared: String,
    ok: bool,
    /// The record written ahead of the append (see `super::ahead`), or empty.
    pub(crate) ahead: Written,
}

/// A version-2 record written ahead of its append (`super::ahead`): the row it becomes when
/// the append starts where the writer assumed. `seq` 0: none.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Written {
    pub(crate) seq: u64,
    pub(crate) record: String,
    /// `SHA-256(previous hash || record)`, the row's chain hash.
    pub(crate) hash: [u8; 32],
    /// `SHA-256(0x00 || record)`, the record's Merkle leaf.
    pub(crate) leaf: [u8; 32],
    /// The event id's 8-byte key ([`short_id_key`]).
    pub(crate) key: [u8; 8],
    /// Whether the record holds its context's definition (else it refers to an earlier one).
    pub(crate) defines: bool,
    /// When `seq` is a multiple of 16: the root of the Merkle tree's 16-leaf subtree this
    /// leaf completes, from the leaves before it as the writer assumed them (`super::tree`).
    pub(crate) chunk: Option<[u8; 32]>,
}

impl Parts {
    /// Splits `event_json` and writes the definition with `classification_json`; false (and
    /// [`Parts::get`] gives `None`) when the event cannot be split.
    pub fn fill(&mut self, event_json: &str, classification_json: &str) -> bool {
        if self.split(event_json, None) {
            write_context(&mut self.definition, classification_json, &self.shared);
        }
        self.ok
    }

    /// Clears the parts and splits `event_json` into `e` and the context's event, from its
    /// `members` where they are known (else read from the text).
    fn split(&mut self, event_json: &str, members: Option<&[Member]>) -> bool {
        self.definition.clear();
        self.context = None;
        self.ahead.seq = 0;
        self.ok = match members {
            Some(members) => {
                split_members_into(event_json, members, &mut self.own, &mut self.shared);
                true
            }
            None => split_event_into(event_json, &mut self.own, &mut self.shared),
        };
        self.ok
    }

    /// The bytes the buffers hold room for.
    pub fn capacity(&self) -> usize {
        self.own.capacity()
            + self.definition.capacity()
            + self.shared.capacity()
            + self.ahead.record.capacity()
    }

    /// `(e, definition)`, or `None` when the last [`Parts::fill`] failed (or there was none).
    pub fn get(&self) -> Option<(&str, &str)> {
        let definition = self.context.as_deref().unwrap_or(&self.definition);
        self.ok.then_some((&self.own, definition))
    }

    /// The definition, when it is shared with other events' parts (see
    /// [`SharedDefinitions`]): parts holding the same one hold the same text.
    pub(crate) fn shared_definition(&self) -> Option<&Arc<str>> {
        self.context.as_ref().filter(|_| self.ok)
    }
}

/// [`Parts::fill`] for a run of events, most of which have the context of the event before:
/// such an event's parts share that event's definition text (one reference more) instead of
/// writing it again (the longest of the parts: the classification and the context's event),
/// and whoever compares definitions compares pointers first. Whether the context is the
/// same is told by the classification's identity (`classification`: equal numbers for equal
/// texts, as the caller assigns them) and the context's event text, which is short.
#[derive(Default)]
pub(crate) struct SharedDefinitions {
    /// The classification's number, the context's event text and the definition of the
    /// last event filled.
    last: Option<(u64, String, Arc<str>)>,
    text: String,
}

impl SharedDefinitions {
    /// [`Parts::fill`] of `parts`, where `classification` numbers `classification_json`
    /// and `members` are the event's members as its writer told them, if known.
    pub(crate) fn fill(
        &mut self,
        parts: &mut Parts,
        event_json: &str,
        members: Option<&[Member]>,
        classification_json: &str,
        classification: u64,
    ) -> bool {
        if !parts.split(event_json, members) {
            return false;
        }
        let definition = match &mut self.last {
            Some((number, shared, definition))
                if *number == classification && *shared == parts.shared =>
            {
                Arc::clone(definition)
            }
            last => {
                self.text.clear();
                write_context(&mut self.text, classification_json, &parts.shared);
                let definition: Arc<str> = Arc::from(self.text.as_str());
                let (mut shared, _) = last.take().map(|(_, s, d)| (s, d)).unwrap_or_default();
                shared.clear();
                shared.push_str(&parts.shared);
                *last = Some((classification, shared, Arc::clone(&definition)));
                definition
            }
        };
        parts.context = Some(definition);
        true
    }
}

/// Appends the context definition `{"classification":CL,"event":P}`.
pub fn write_context(out: &mut String, classification_json: &str, shared_event: &str) {
    out.push_str("{\"classification\":");
    out.push_str(classification_json);
    out.push_str(",\"event\":");
    out.push_str(shared_event);
    out.push('}');
}

/// Appends the version-2 record `{"c":C,"e":E,"s":N,"v":2}`.
pub fn write_record_v2(out: &mut String, context: Context<'_>, own_event: &str, seq: u64) {
    out.push_str("{\"c\":");
    match context {
        Context::Inline(text) => out.push_str(text),
        Context::Ref(at) => canonical::write_u64(out, at),
    }
    out.push_str(",\"e\":");
    out.push_str(own_event);
    out.push_str(",\"s\":");
    canonical::write_u64(out, seq);
    out.push_str(",\"v\":2}");
}

/// A version-2 record's parts: its context and its `e` text; `None` when the record does not
/// start like one.
pub fn parse_record_v2(record: &str) -> Option<(Context<'_>, &str)> {
    let m = members(record)?;
    let [(c, cm), (e, em), (s, _), (v, vm)] = m[..] else {
        return None;
    };
    if (c, e, s, v, vm) != ("c", "e", "s", "v", "\"v\":2") {
        return None;
    }
    let ctx = &cm[4..];
    let context = if ctx.starts_with('{') {
        Context::Inline(ctx)
    } else {
        let digits = ctx.bytes().all(|b| b.is_ascii_digit()) && !ctx.starts_with('0');
        Context::Ref(if digits {
            ctx.parse().ok()?
        } else {
            return None;
        })
    };
    Some((context, &em[4..]))
}

/// [`parse_record_v2`] for a record whose end is known to be `,"s":N,"v":2}` (a verifier
/// that read its seq from there): the context and the `e` text, found by scanning the
/// context's value only. `None` when the record does not start like a version-2 record.
pub fn record_parts_v2(record: &str) -> Option<(Context<'_>, &str)> {
    let b = record.as_bytes();
    let rest = b.strip_prefix(b"{\"c\":")?;
    let (context, after) = if rest.first() == Some(&b'{') {
        let end = value_end(b, 5)?;
        (Context::Inline(&record[5..end]), end)
    } else {
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || (digits > 1 && rest[0] == b'0') {
            return None;
        }
        (
            Context::Ref(record[5..5 + digits].parse().ok()?),
            5 + digits,
        )
    };
    let own_start = after + b",\"e\":".len();
    if b.get(after..own_start)? != b",\"e\":" {
        return None;
    }
    let body = b.strip_suffix(TAIL_V2)?;
    let digits = body.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    let own_end = body.len() - digits - SEQ_KEY_V2.len();
    if own_end < own_start || !body[..body.len() - digits].ends_with(SEQ_KEY_V2) {
        return None;
    }
    Some((context, &record[own_start..own_end]))
}

/// The v1-shaped text `{"classification":CL,"event":EVENT,"seq":N,"v":2}` readers parse, from
/// a version-2 record's definition text and `e` (the event's members are `e`'s then the
/// context's: valid JSON, not canonical order). `None` when the definition is not one.
pub fn expand(definition: &str, own_event: &str, seq: u64) -> Option<String> {
    let m = members(definition)?;
    let [("classification", cl), ("event", ev)] = m[..] else {
        return None;
    };
    let (cl, ev) = (&cl[17..], &ev[8..]);
    let mut out = String::with_capacity(definition.len() + own_event.len() + 40);
    out.push_str("{\"classification\":");
    out.push_str(cl);
    out.push_str(",\"event\":");
    let inner = |o: &str| o[1..o.len() - 1].to_string();
    let (a, b) = (inner(own_event), inner(ev));
    out.push('{');
    out.push_str(&a);
    if !a.is_empty() && !b.is_empty() {
        out.push(',');
    }
    out.push_str(&b);
    out.push_str("},\"seq\":");
    canonical::write_u64(&mut out, seq);
    out.push_str(",\"v\":2}");
    Some(out)
}

/// The 16-byte key of an event id in the `ids` index: the UUID's bytes when the id is a UUID
/// in lowercase hyphenated form (as statemeter makes them), else the first 16 bytes of
/// SHA-256 of the id's UTF-8.
pub fn id_key(id: &str) -> [u8; 16] {
    if let Some(key) = lowercase_uuid_bytes(id.as_bytes()) {
        return key;
    }
    let digest = Sha256::digest(id.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The 8-byte key of an event id in the `ids` table of a ledger that keys ids by 8 bytes
/// (`meta.id_keys = 8`). For a UUID in lowercase hyphenated form: its first 6 bytes (a
/// UUIDv7's millisecond timestamp, so keys follow recording order and the table's B-tree
/// fills its pages as it grows at the end), then its bytes 11 and 15 — in statemeter's ids
/// (RFC 9562 method 1: a 42-bit counter that counts the ids of one millisecond, then 32
/// random bits) byte 11 is the counter's low byte, so up to 256 ids minted in one millisecond
/// get distinct keys, and byte 15 is random in every UUIDv7 layout. Any other id: the first 8
/// bytes of SHA-256 of its UTF-8. Two ids may share a key; the second is then keyed by
/// [`id_key`] (a lookup confirms either against the record).
pub fn short_id_key(id: &str) -> [u8; 8] {
    let mut key = [0u8; 8];
    if let Some(b) = lowercase_uuid_bytes(id.as_bytes()) {
        key[..6].copy_from_slice(&b[..6]);
        key[6] = b[11];
        key[7] = b[15];
    } else {
        key.copy_from_slice(&Sha256::digest(id.as_bytes())[..8]);
    }
    key
}

/// The 16 bytes of a UUID written in lowercase hyphenated form (`8-4-4-4-12` lowercase hex
/// digits), or `None` for any other text. The writer asks this for every event it appends:
/// 36 bytes that the uuid crate parses are the hyphenated form (the other forms it reads have
/// other lengths), and without an uppercase letter they are its lowercase spelling — no need
/// to format the UUID again to compare.
fn lowercase_uuid_bytes(text: &[u8]) -> Option<[u8; 16]> {
    if text.len() != 36 || text.iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    uuid::Uuid::try_parse_ascii(text)
        .ok()
        .map(|u| *u.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts filled through [`SharedDefinitions`] are the parts [`Parts::fill`] makes; events
    /// of the same context (classification number and context keys) share one definition
    /// text, and another classification or other context keys get their own.
    #[test]
    fn members_as_the_writer_tells_them_split_like_the_text() {
        use crate::event::{Event, EventKind};
        let tricky = |k: &str| format!("{k} \"quoted\", {{braced}}: \\ é 🙂");
        for kind in EventKind::ALL {
            for full in [false, true] {
                let mut e = Event::new(kind);
                if full {
                    e.duration_ns = Some(-5);
                    for (field, name) in [
                        (&mut e.session_id, "session_id"),
                        (&mut e.parent_id, "parent_id"),
                        (&mut e.agent, "agent"),
                        (&mut e.tenant, "tenant"),
                        (&mut e.venue, "venue"),
                        (&mut e.status, "status"),
                        (&mut e.runtime, "runtime"),
                        (&mut e.runtime_session_id, "runtime_session_id"),
                        (&mut e.provider, "provider"),
                        (&mut e.model, "model"),
                        (&mut e.api, "api"),
                        (&mut e.endpoint, "endpoint"),
                        (&mut e.tool, "tool"),
                        (&mut e.tool_kind, "tool_kind"),
                        (&mut e.effect, "effect"),
                        (&mut e.mcp_session_id, "mcp_session_id"),
                        (&mut e.op, "op"),
                        (&mut e.store, "store"),
                        (&mut e.holder, "holder"),
                        (&mut e.scope, "scope"),
                        (&mut e.key, "key"),
                    ] {
                        *field = Some(tricky(name).into());
                    }
                    e.input_tokens = Some(1);
                    e.output_tokens = Some(u64::MAX);
                    e.cached_tokens = Some(0);
                    e.bytes = Some(7);
                    let nested = serde_json::json!({"b": [1, "x,y", {"c": "}"}], "a": null});
                    e.request = nested.as_object().cloned();
                    e.attrs = nested.as_object().cloned().unwrap();
                }
                let (mut text, mut members) = (String::new(), Vec::new());
                e.write_canonical_json_marking(&mut text, |k, at| members.push((k, at)))
                    .unwrap();
                let mut plain = String::new();
                e.write_canonical_json(&mut plain).unwrap();
                assert_eq!(text, plain);
                let (own, shared) = split_event(&text).unwrap();
                let (mut own2, mut shared2) = (String::from("stale"), String::from("stale"));
                split_members_into(&text, &members, &mut own2, &mut shared2);
                assert_eq!((own2, shared2), (own, shared), "{kind:?} {text}");
            }
        }
    }

    #[test]
    fn shared_definitions_are_the_definitions_written_afresh() {
        let events = [
            (
                r#"{"agent":"a","id":"1","model":"m","ts":1}"#,
                r#"{"tag":"x"}"#,
                1,
            ),
            (
                r#"{"agent":"a","id":"2","model":"m","ts":2}"#,
                r#"{"tag":"x"}"#,
                1,
            ),
            (
                r#"{"agent":"a","id":"3","model":"m","ts":3}"#,
                r#"{"tag":"y"}"#,
                2,
            ),
            (
                r#"{"agent":"b","id":"4","model":"m","ts":4}"#,
                r#"{"tag":"y"}"#,
                2,
            ),
            (
                r#"{"agent":"b","id":"5","model":"m","ts":5}"#,
                r#"{"tag":"y"}"#,
                2,
            ),
            (r#"{"id":"6","id":"7"}"#, r#"{"tag":"y"}"#, 2),
        ];
        let mut shared = SharedDefinitions::default();
        let mut made: Vec<Parts> = Vec::new();
        for (event, classification, number) in events {
            let mut fresh = Parts::default();
            let filled = fresh.fill(event, classification);
            let mut parts = Parts::default();
            assert_eq!(
                shared.fill(&mut parts, event, None, classification, number),
                filled
            );
            assert_eq!(parts.get(), fresh.get(), "{event}");
            assert_eq!(parts.shared_definition().is_some(), filled);
            made.push(parts);
        }
        let def = |i: usize| made[i].shared_definition().unwrap();
        assert!(Arc::ptr_eq(def(0), def(1)));
        assert!(!Arc::ptr_eq(def(1), def(2)), "another classification");
        assert!(!Arc::ptr_eq(def(2), def(3)), "other context keys");
        assert!(Arc::ptr_eq(def(3), def(4)));
    }

    #[test]
    fn the_context_key_test_names_exactly_the_context_keys() {
        for key in CONTEXT_KEYS {
            assert!(is_context_key(key), "{key}");
        }
        for key in [
            "",
            "id",
            "ts",
            "attrs",
            "request",
            "agents",
            "Kind",
            "tool_kin",
            "session_id",
        ] {
            assert!(!is_context_key(key), "{key}");
        }
    }

    #[test]
    fn context_keys_are_sorted() {
        let mut sorted = CONTEXT_KEYS;
        sorted.sort_unstable();
        assert_eq!(sorted, CONTEXT_KEYS);
    }

    #[test]
    fn members_follow_nested_values_and_strings() {
        let text = r#"{"a":{"x":[1,{"y":"}"}]},"b":"q\"}","c":-1.5e3,"d":null}"#;
        let m = members(text).unwrap();
        let keys: Vec<_> = m.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        assert_eq!(m[1].1, r#""b":"q\"}""#);
        assert_eq!(members("{}").unwrap(), vec![]);
        for bad in ["", "[]", "{\"a\"}", "{\"a\":1,}", "{\"a\":1}x"] {
            assert!(members(bad).is_none(), "{bad}");
            assert!(split_event(bad).is_none(), "{bad}");
        }
        assert_eq!(
            split_event("{}").unwrap(),
            ("{}".to_string(), "{}".to_string())
        );
    }

    #[test]
    fn parts_are_what_split_and_write_context_make_whatever_the_buffers_held() {
        let cl = r#"{"tag":"stateless"}"#;
        let long = r#"{"agent":"a-long-agent-name","attrs":{"k":"a long value, longer than the next"},"id":"a","kind":"model_call","ts":5}"#;
        let events = [
            long,
            r#"{"id":"b","kind":"tool_call","ts":6}"#,
            "{}",
            r#"{"id":"c","id":"d"}"#,
            r#"{"attrs":{},"id":"e","ts":7}"#,
            "[]",
            long,
        ];
        let mut parts = Parts::default();
        assert_eq!(parts.get(), None);
        for event in events {
            let filled = parts.fill(event, cl);
            match split_event(event) {
                Some((own, shared)) => {
                    assert!(filled, "{event}");
                    let mut def = String::new();
                    write_context(&mut def, cl, &shared);
                    assert_eq!(parts.get(), Some((own.as_str(), def.as_str())), "{event}");
                }
                None => {
                    assert!(!filled, "{event}");
                    assert_eq!(parts.get(), None, "{event}");
                }
            }
        }
    }

    #[test]
    fn split_write_parse_expand_round_trip() {
        let event = r#"{"agent":"bot","attrs":{"kind":"x"},"id":"a","kind":"model_call","ts":5,"venue":"azure"}"#;
        let (own, shared) = split_event(event).unwrap();
        assert_eq!(own, r#"{"attrs":{"kind":"x"},"id":"a","ts":5}"#);
        assert_eq!(
            shared,
            r#"{"agent":"bot","kind":"model_call","venue":"azure"}"#
        );
        let mut def = String::new();
        write_context(&mut def, r#"{"tag":"stateless"}"#, &shared);
        let mut first = String::new();
        write_record_v2(&mut first, Context::Inline(&def), &own, 7);
        assert_eq!(first, format!(r#"{{"c":{def},"e":{own},"s":7,"v":2}}"#));
        let mut later = String::new();
        write_record_v2(&mut later, Context::Ref(7), &own, 9);
        assert_eq!(later, format!(r#"{{"c":7,"e":{own},"s":9,"v":2}}"#));
        assert_eq!(
            parse_record_v2(&first),
            Some((Context::Inline(&def), own.as_str()))
        );
        assert_eq!(
            parse_record_v2(&later),
            Some((Context::Ref(7), own.as_str()))
        );
        for bad in [
            r#"{"c":07,"e":{},"s":9,"v":2}"#,
            r#"{"c":"7","e":{},"s":9,"v":2}"#,
            r#"{"c":7,"e":{},"s":9,"v":1}"#,
            r#"{"classification":{},"event":{},"seq":1,"v":1}"#,
        ] {
            assert!(parse_record_v2(bad).is_none(), "{bad}");
        }
        let full = expand(&def, &own, 9).unwrap();
        let v: serde_json::Value = serde_json::from_str(&full).unwrap();
        let original: serde_json::Value = serde_json::from_str(event).unwrap();
        assert_eq!(v["event"], original);
        assert_eq!(v["classification"]["tag"], "stateless");
        assert_eq!(v["seq"], 9);
        let empty = expand(r#"{"classification":{},"event":{}}"#, "{}", 1).unwrap();
        assert_eq!(empty, r#"{"classification":{},"event":{},"seq":1,"v":2}"#);
    }

    #[test]
    fn shadowed_keys_are_found_at_the_top_level_only() {
        let def = r#"{"classification":{"tag":"x"},"event":{"agent":"a","kind":"k","model":"m"}}"#;
        let keys = ContextKeys::of(def).unwrap();
        for key in ["agent", "kind", "model"] {
            assert!(keys.holds(key), "{key}");
        }
        for key in ["", "agents", "id", "ts", "kind2", "mode", "tool_kind"] {
            assert!(!keys.holds(key), "{key}");
        }
        let shadowed = |e: &'static str| shadowed_key(e, &keys);
        assert_eq!(shadowed(r#"{"id":"a","ts":1}"#), Keys::Disjoint);
        assert_eq!(shadowed("{}"), Keys::Disjoint);
        assert_eq!(
            shadowed(r#"{"attrs":{"kind":"k","model":{"agent":1}},"id":"a"}"#),
            Keys::Disjoint
        );
        assert_eq!(shadowed(r#"{"id":"a","model":"m2"}"#), Keys::Twice("model"));
        assert_eq!(shadowed(r#"{"id":"a","ts":1,"ts":2}"#), Keys::Twice("ts"));
        assert_eq!(shadowed(r#"{"s":"\"kind\":"}"#), Keys::Disjoint);
        assert_eq!(shadowed("[]"), Keys::NotAnObject);
        assert_eq!(shadowed(r#"{"id"}"#), Keys::NotAnObject);
        assert!(ContextKeys::of(r#"{"event":{}}"#).is_none());
        // The writer splits no event so that a key lands in both, and refuses a key twice.
        assert!(split_event(r#"{"id":"a","kind":"x","kind":"y"}"#).is_none());
        assert!(split_event(r#"{"id":"a","id":"b"}"#).is_none());
    }

    #[test]
    fn version_2_parts_from_both_ends() {
        let def = r#"{"classification":{},"event":{"kind":"k"}}"#;
        let inline = format!(r#"{{"c":{def},"e":{{"id":"a"}},"s":12,"v":2}}"#);
        assert_eq!(
            record_parts_v2(&inline),
            Some((Context::Inline(def), r#"{"id":"a"}"#))
        );
        assert_eq!(
            record_parts_v2(r#"{"c":7,"e":{"s":1},"s":9,"v":2}"#),
            Some((Context::Ref(7), r#"{"s":1}"#))
        );
        for bad in [
            r#"{"c":07,"e":{},"s":9,"v":2}"#,
            r#"{"c":,"e":{},"s":9,"v":2}"#,
            r#"{"c":7,"x":{},"s":9,"v":2}"#,
            r#"{"c":7,"e":{},"s":9,"v":1}"#,
            r#"{"c":7,"s":9,"v":2}"#,
        ] {
            assert_eq!(record_parts_v2(bad), None, "{bad}");
        }
    }

    #[test]
    fn id_keys() {
        let id = "0199a8c0-7c2e-7d3b-9f1a-3c5e2b8d4f10";
        assert_eq!(hex::encode(id_key(id)), id.replace('-', ""));
        // Another spelling of the same UUID is another id: hashed.
        let upper = id.to_uppercase();
        assert_ne!(id_key(&upper), id_key(id));
        // Exactly the texts the uuid crate parses and writes back unchanged are keyed by
        // their bytes; anything else is hashed.
        let by_uuid = |t: &str| {
            uuid::Uuid::try_parse(t)
                .ok()
                .filter(|u| u.hyphenated().to_string() == t)
                .map(|u| *u.as_bytes())
        };
        for t in [
            id,
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "0199a8c0-7c2e-7d3b-9f1a-3c5e2b8d4f1A",
            "0199a8c0-7c2e-7d3b-9f1a-3c5e2b8d4f1g",
            "0199a8c07-c2e-7d3b-9f1a-3c5e2b8d4f10",
            "0199a8c0-7c2e-7d3b-9f1a+3c5e2b8d4f10",
            "0199a8c0-7c2e-7d3b-9f1a-3c5e2b8d4f1",
            "0199a8c07c2e7d3b9f1a3c5e2b8d4f10",
            "{0199a8c0-7c2e-7d3b-9f1a-3c5e2b8d4f1}",
            "0199a8c0-7c2e-7d3b-9f1a-3c5e2b8d4f\u{e9}",
        ] {
            let want = by_uuid(t).unwrap_or_else(|| {
                let mut k = [0u8; 16];
                k.copy_from_slice(&Sha256::digest(t.as_bytes())[..16]);
                k
            });
            assert_eq!(id_key(t), want, "{t}");
        }
        assert_eq!(
            hex::encode(short_id_key(id)),
            "0199a8c07c2e5e10" // bytes 0-5, 11, 15
        );
        assert_eq!(
            short_id_key(&upper)[..],
            Sha256::digest(upper.as_bytes())[..8]
        );
        assert_eq!(short_id_key("call-1")[..], id_key("call-1")[..8]);
        // SHA-256("call-1")[:16], computed independently with Python hashlib.
        assert_eq!(
            hex::encode(id_key("call-1")),
            hex::encode(&Sha256::digest(b"call-1")[..16])
        );
    }
}
