//! The event model: one struct for every kind and its validation (this file); the [`Fields`]
//! view the rules engine reads (`fields`); the canonical JSON of the `event` object in a ledger
//! record (`encode`); ids (UUIDv7) and timestamps (`id`); the verdict an event carries
//! (`classification`); and [`Recorded`], an event with its verdict and ledger position.
//!
//! An event is immutable once built. Kind-specific fields are `Option`s: the record of an event
//! carries only keys of its kind, absent values omitted (read as `null`), see
//! docs/ledger-format.md.

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

mod classification;
mod encode;
mod event_id;
mod fields;
mod id;
mod recorded;

pub use classification::{Classification, Evidence, Holder, StateKind, StateKinds, Tag};
pub(crate) use encode::write_map;
pub use event_id::{EventId, INLINE_ID_BYTES};
pub(crate) use fields::lookup_path;
pub use fields::{FieldRef, Fields};
pub use id::{mint_uuid_v7_at, new_uuid_v7, now_ns, uuid_v7_at};
pub use recorded::{Classifier, Recorded};

/// Longest accepted string field, in bytes.
pub const MAX_STR_BYTES: usize = 4096;
/// Largest accepted `attrs` or `request`, in bytes of canonical JSON.
pub const MAX_MAPPING_BYTES: usize = 64 * 1024;
/// Deepest accepted nesting inside `attrs` or `request`.
pub const MAX_DEPTH: usize = 64;
/// Largest token or byte count an event may hold: counts are stored, exported (Arrow, Parquet,
/// pandas) and summed as signed 64-bit integers, so anything above `i64::MAX` is refused.
pub const MAX_COUNT: u64 = i64::MAX as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    SessionStart,
    SessionEnd,
    ModelCall,
    ToolCall,
    StateOp,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::SessionStart,
        EventKind::SessionEnd,
        EventKind::ModelCall,
        EventKind::ToolCall,
        EventKind::StateOp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SessionStart => "session_start",
            EventKind::SessionEnd => "session_end",
            EventKind::ModelCall => "model_call",
            EventKind::ToolCall => "tool_call",
            EventKind::StateOp => "state_op",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            Error::validation(
                "kind",
                format!("unknown kind {s:?} (expected one of session_start, session_end, model_call, tool_call, state_op)"),
            )
        })
    }

    /// The kind-specific keys of the record's `event` object (besides the common ones).
    fn own_keys(self) -> &'static [&'static str] {
        match self {
            EventKind::SessionStart => &["runtime", "runtime_session_id", "venue"],
            EventKind::SessionEnd => &["runtime", "runtime_session_id", "status", "venue"],
            EventKind::ModelCall => &[
                "api",
                "cached_tokens",
                "endpoint",
                "input_tokens",
                "model",
                "output_tokens",
                "provider",
                "request",
                "status",
                "venue",
            ],
            EventKind::ToolCall => &["effect", "mcp_session_id", "status", "tool", "tool_kind"],
            EventKind::StateOp => &["bytes", "holder", "key", "op", "scope", "store"],
        }
    }
}

/// Closed value sets, checked at validation.
pub const EFFECTS: &[&str] = &["none", "read", "write"];
pub const OPS: &[&str] = &["read", "write", "delete"];
pub const HOLDERS: &[&str] = &["client", "provider"];
pub const SCOPES: &[&str] = &["session", "user", "global"];
pub const STATUSES: &[&str] = &["ok", "error", "cancelled"];

const COMMON_KEYS: &[&str] = &[
    "agent",
    "attrs",
    "duration_ns",
    "id",
    "kind",
    "parent_id",
    "session_id",
    "tenant",
    "ts",
];

/// Text of an event field: shared, so values repeated across events (a session's id, agent and
/// venue; provider, model, api) are reference-counted instead of copied on the hot path.
pub type Text = Arc<str>;

/// One recorded thing an agent did. See design.md "Events".
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub kind: EventKind,
    pub ts: i64,
    /// Whether the caller supplied `ts` (an idempotent retry without one ignores `ts`).
    pub ts_explicit: bool,
    pub duration_ns: Option<i64>,
    pub session_id: Option<Text>,
    pub parent_id: Option<Text>,
    pub agent: Option<Text>,
    pub tenant: Option<Text>,
    pub venue: Option<Text>,
    pub status: Option<Text>,
    pub runtime: Option<Text>,
    pub runtime_session_id: Option<Text>,
    pub provider: Option<Text>,
    pub model: Option<Text>,
    pub api: Option<Text>,
    pub endpoint: Option<Text>,
    pub request: Option<Map<String, Value>>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub tool: Option<Text>,
    pub tool_kind: Option<Text>,
    pub effect: Option<Text>,
    pub mcp_session_id: Option<Text>,
    pub op: Option<Text>,
    pub store: Option<Text>,
    pub holder: Option<Text>,
    pub scope: Option<Text>,
    pub key: Option<Text>,
    pub bytes: Option<u64>,
    pub attrs: Map<String, Value>,
}

impl Event {
    /// An empty event of `kind` with a fresh id and the current time; fill fields, then
    /// call [`Event::validate`].
    #[inline(always)]
    pub fn new(kind: EventKind) -> Self {
        Event {
            id: EventId::new(),
            kind,
            ts: 0,
            ts_explicit: false,
            duration_ns: None,
            session_id: None,
            parent_id: None,
            agent: None,
            tenant: None,
            venue: None,
            status: None,
            runtime: None,
            runtime_session_id: None,
            provider: None,
            model: None,
            api: None,
            endpoint: None,
            request: None,
            input_tokens: None,
            output_tokens: None,
            cached_tokens: None,
            tool: None,
            tool_kind: None,
            effect: None,
            mcp_session_id: None,
            op: None,
            store: None,
            holder: None,
            scope: None,
            key: None,
            bytes: None,
            attrs: Map::new(),
        }
    }

    /// Assigns an id and a timestamp where none was given, applies the kind's defaults and
    /// checks every field. Errors name the field.
    pub fn finish(mut self) -> Result<Self> {
        self.complete()?;
        Ok(self)
    }

    /// [`Event::finish`] in place (no move of the event).
    pub fn complete(&mut self) -> Result<()> {
        let stamped_now = self.ts == 0 && !self.ts_explicit;
        if stamped_now {
            self.ts = now_ns();
        }
        if self.id.is_empty() {
            // One clock read serves both when the event is stamped now.
            let at = if stamped_now { self.ts } else { now_ns() };
            self.id.set_uuid(mint_uuid_v7_at(at));
        }
        match self.kind {
            EventKind::ModelCall => {
                self.input_tokens.get_or_insert(0);
                self.output_tokens.get_or_insert(0);
                self.cached_tokens.get_or_insert(0);
                self.status.get_or_insert_with(ok_status);
            }
            EventKind::ToolCall => {
                self.tool_kind
                    .get_or_insert_with(|| shared_text("function"));
                self.effect.get_or_insert_with(|| shared_text("none"));
                self.status.get_or_insert_with(ok_status);
            }
            EventKind::StateOp => {
                self.scope.get_or_insert_with(|| shared_text("session"));
                self.bytes.get_or_insert(0);
            }
            EventKind::SessionEnd => {
                self.status.get_or_insert_with(ok_status);
            }
            EventKind::SessionStart => {}
        }
        self.validate()
    }

    /// Checks the event; the error names the first bad field.
    pub fn validate(&self) -> Result<()> {
        check_str("id", Some(self.id.as_str()), true, 128)?;
        if self.ts < 0 {
            return Err(Error::validation("ts", "must be >= 0 (ns since the epoch)"));
        }
        if matches!(self.duration_ns, Some(d) if d < 0) {
            return Err(Error::validation("duration_ns", "must be >= 0"));
        }
        for (name, v) in [
            ("session_id", &self.session_id),
            ("parent_id", &self.parent_id),
            ("agent", &self.agent),
            ("tenant", &self.tenant),
            ("venue", &self.venue),
            ("runtime", &self.runtime),
            ("runtime_session_id", &self.runtime_session_id),
            ("endpoint", &self.endpoint),
            ("tool_kind", &self.tool_kind),
            ("mcp_session_id", &self.mcp_session_id),
            ("key", &self.key),
        ] {
            check_str(name, v.as_deref(), false, MAX_STR_BYTES)?;
        }
        for (name, v) in [
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("cached_tokens", self.cached_tokens),
            ("bytes", self.bytes),
        ] {
            check_count(name, v)?;
        }
        check_enum("status", &self.status, STATUSES)?;
        match self.kind {
            EventKind::ModelCall => {
                check_str("provider", self.provider.as_deref(), true, MAX_STR_BYTES)?;
                check_str("model", self.model.as_deref(), true, MAX_STR_BYTES)?;
                check_str("api", self.api.as_deref(), true, MAX_STR_BYTES)?;
                let input = self.input_tokens.unwrap_or(0);
                if self.cached_tokens.unwrap_or(0) > input {
                    return Err(Error::validation(
                        "cached_tokens",
                        format!(
                            "{} exceeds input_tokens {input} (input_tokens includes cached tokens)",
                            self.cached_tokens.unwrap_or(0)
                        ),
                    ));
                }
                if let Some(r) = &self.request {
                    check_mapping("request", r)?;
                }
            }
            EventKind::ToolCall => {
                check_str("tool", self.tool.as_deref(), true, MAX_STR_BYTES)?;
                check_enum("effect", &self.effect, EFFECTS)?;
            }
            EventKind::StateOp => {
                check_enum("op", &self.op, OPS)?;
                if self.op.is_none() {
                    return Err(Error::validation("op", "is required for a state_op"));
                }
                check_str("store", self.store.as_deref(), true, MAX_STR_BYTES)?;
                check_enum("holder", &self.holder, HOLDERS)?;
                if self.holder.is_none() {
                    return Err(Error::validation(
                        "holder",
                        "is required (client or provider)",
                    ));
                }
                check_enum("scope", &self.scope, SCOPES)?;
            }
            EventKind::SessionStart | EventKind::SessionEnd => {}
        }
        check_mapping("attrs", &self.attrs)
    }

    fn str_field(&self, name: &str) -> Option<&Option<Text>> {
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
            _ => return None,
        })
    }

    /// Builds an event from a raw mapping (the shape of a record's `event` object, or what
    /// `meter.record(...)` receives). Unknown keys are an error, `seq` included: the ledger
    /// assigns it (it is the record's, not the event's).
    pub fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let kind = match map.get("kind") {
            Some(Value::String(k)) => EventKind::parse(k)?,
            Some(_) => return Err(Error::validation("kind", "must be a string")),
            None => return Err(Error::validation("kind", "is required")),
        };
        let mut ev = Event::new(kind);
        let allowed = |k: &str| COMMON_KEYS.contains(&k) || kind.own_keys().contains(&k);
        for (k, v) in map {
            if k == "kind" {
                continue;
            }
            if k == "seq" {
                return Err(Error::validation(
                    "seq",
                    "is assigned by the ledger when the event is written; an event cannot set it",
                ));
            }
            if !allowed(k) {
                return Err(Error::validation(
                    k.as_str(),
                    format!("is not a field of a {} event", kind.as_str()),
                ));
            }
            if v.is_null() {
                continue;
            }
            match k.as_str() {
                "id" => {
                    ev.id = as_string(k, v)?.into();
                    if ev.id.is_empty() {
                        return Err(Error::validation("id", "must not be empty"));
                    }
                }
                "ts" => {
                    ev.ts = as_i64(k, v)?;
                    ev.ts_explicit = true;
                }
                "duration_ns" => ev.duration_ns = Some(as_i64(k, v)?),
                "attrs" => ev.attrs = as_map(k, v)?,
                "request" => ev.request = Some(as_map(k, v)?),
                "input_tokens" => ev.input_tokens = Some(as_u64(k, v)?),
                "output_tokens" => ev.output_tokens = Some(as_u64(k, v)?),
                "cached_tokens" => ev.cached_tokens = Some(as_u64(k, v)?),
                "bytes" => ev.bytes = Some(as_u64(k, v)?),
                other => {
                    let s = as_string(other, v)?;
                    *ev.str_field_mut(other).expect("allowed keys are fields") = Some(s.into());
                }
            }
        }
        Ok(ev)
    }

    fn str_field_mut(&mut self, name: &str) -> Option<&mut Option<Text>> {
        Some(match name {
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
            _ => return None,
        })
    }

    /// The event as a JSON mapping with the record's keys (for Python's `to_pylist`).
    /// Every key of the event's kind is present (absent values as `null`, `attrs` as `{}`).
    pub fn to_map(&self) -> Map<String, Value> {
        let mut text = String::with_capacity(256);
        self.write_canonical_json(&mut text)
            .expect("a validated event always encodes");
        let mut m = match serde_json::from_str(&text) {
            Ok(Value::Object(m)) => m,
            _ => unreachable!("canonical JSON of an event is an object"),
        };
        for k in self.keys() {
            m.entry(k).or_insert(if k == "attrs" {
                Value::Object(Map::new())
            } else {
                Value::Null
            });
        }
        m
    }

    /// The record keys of this event's kind, sorted.
    pub fn keys(&self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = COMMON_KEYS.to_vec();
        keys.extend_from_slice(self.kind.own_keys());
        keys.sort_unstable();
        keys
    }
}

impl Fields for Event {
    fn field(&self, path: &str) -> Option<FieldRef<'_>> {
        if let Some(rest) = path.strip_prefix("request.") {
            return lookup(self.request.as_ref()?, rest);
        }
        if let Some(rest) = path.strip_prefix("attrs.") {
            return lookup(&self.attrs, rest);
        }
        match path {
            "kind" => Some(FieldRef::Str(self.kind.as_str())),
            "id" => Some(FieldRef::Str(&self.id)),
            "ts" => Some(FieldRef::Int(self.ts)),
            "duration_ns" => self.duration_ns.map(FieldRef::Int),
            "input_tokens" => self.input_tokens.map(|v| FieldRef::Int(v as i64)),
            "output_tokens" => self.output_tokens.map(|v| FieldRef::Int(v as i64)),
            "cached_tokens" => self.cached_tokens.map(|v| FieldRef::Int(v as i64)),
            "bytes" => self.bytes.map(|v| FieldRef::Int(v as i64)),
            other => self.str_field(other)?.as_deref().map(FieldRef::Str),
        }
    }
}

fn lookup<'a>(map: &'a Map<String, Value>, path: &str) -> Option<FieldRef<'a>> {
    match fields::lookup_path(map, path)? {
        Value::Null => None,
        Value::String(s) => Some(FieldRef::Str(s)),
        Value::Bool(b) => Some(FieldRef::Bool(*b)),
        Value::Number(n) if n.is_i64() => Some(FieldRef::Int(n.as_i64().unwrap())),
        other => Some(FieldRef::Json(other)),
    }
}

/// The checks every field of every recorded event passes through: the passing case is inlined
/// (a length test), the message is built out of line only for a failure.
#[inline(always)]
fn check_str(field: &str, v: Option<&str>, required: bool, max: usize) -> Result<()> {
    match v {
        Some(s) if !s.is_empty() && s.len() <= max => Ok(()),
        None if !required => Ok(()),
        _ => Err(bad_str(field, v, max)),
    }
}

#[cold]
#[inline(never)]
fn bad_str(field: &str, v: Option<&str>, max: usize) -> Error {
    match v {
        None => Error::validation(field, "is required"),
        Some("") => Error::validation(field, "must not be empty"),
        Some(s) => Error::validation(
            field,
            format!("is {} bytes long; the limit is {max}", s.len()),
        ),
    }
}

#[inline(always)]
fn check_enum(field: &str, v: &Option<Text>, allowed: &[&str]) -> Result<()> {
    match v {
        Some(s) if !allowed.contains(&&**s) => Err(bad_enum(field, s, allowed)),
        _ => Ok(()),
    }
}

#[cold]
#[inline(never)]
fn bad_enum(field: &str, s: &str, allowed: &[&str]) -> Error {
    Error::validation(field, format!("{s:?} is not one of {}", allowed.join(", ")))
}

/// Checks nesting depth, number finiteness and canonical size of a mapping.
///
/// The size is bounded first without writing anything (every string byte escaped to six, every
/// number at its longest): a mapping that fits even so, as nearly every one does, is not
/// written at all; only a larger one is written to measure it.
fn check_mapping(field: &str, m: &Map<String, Value>) -> Result<()> {
    if m.is_empty() {
        return Ok(());
    }
    /// The longest canonical JSON a string of `n` bytes can take (`\u00XX` per byte).
    fn str_bound(n: usize) -> usize {
        n.saturating_mul(6).saturating_add(2)
    }
    /// Checks the depth and returns an upper bound of the canonical JSON length.
    fn walk(v: &Value, d: usize, field: &str) -> Result<usize> {
        if d > MAX_DEPTH {
            return Err(Error::validation(
                field,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(match v {
            Value::Null | Value::Bool(_) => 5,
            // u64 and i64 take at most 20 characters, an ECMAScript double at most 24.
            Value::Number(_) => 24,
            Value::String(s) => str_bound(s.len()),
            Value::Array(a) => {
                let mut n = a.len().saturating_add(1);
                for x in a {
                    n = n.saturating_add(walk(x, d + 1, field)?);
                }
                n
            }
            Value::Object(o) => members(o, d, field)?,
        })
    }
    fn members(o: &Map<String, Value>, d: usize, field: &str) -> Result<usize> {
        // Braces, commas and colons: at most two per member plus two.
        let mut n = o.len().saturating_mul(2).saturating_add(2);
        for (k, v) in o {
            n = n
                .saturating_add(str_bound(k.len()))
                .saturating_add(walk(v, d + 1, field)?);
        }
        Ok(n)
    }
    if members(m, 0, field)? <= MAX_MAPPING_BYTES {
        return Ok(());
    }
    let mut out = String::new();
    write_map(&mut out, m).map_err(|e| match e {
        Error::Validation { message, .. } => Error::validation(field, message),
        other => other,
    })?;
    if out.len() > MAX_MAPPING_BYTES {
        return Err(Error::validation(
            field,
            format!(
                "is {} bytes of JSON; the limit is {MAX_MAPPING_BYTES}",
                out.len()
            ),
        ));
    }
    Ok(())
}

fn as_string(field: &str, v: &Value) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::validation(field, "must be a string"))
}

fn as_i64(field: &str, v: &Value) -> Result<i64> {
    v.as_i64()
        .ok_or_else(|| Error::validation(field, "must be an integer"))
}

fn as_u64(field: &str, v: &Value) -> Result<u64> {
    match v {
        Value::Number(n) if n.is_u64() => Ok(n.as_u64().unwrap()),
        Value::Number(n) if n.is_i64() => Err(Error::validation(field, "must be >= 0")),
        _ => Err(Error::validation(field, "must be a non-negative integer")),
    }
}

/// A count within the signed 64-bit range ([`MAX_COUNT`]).
#[inline(always)]
pub fn check_count(field: &str, v: Option<u64>) -> Result<()> {
    match v {
        Some(n) if n > MAX_COUNT => Err(bad_count(field, n)),
        _ => Ok(()),
    }
}

#[cold]
#[inline(never)]
fn bad_count(field: &str, n: u64) -> Error {
    Error::validation(
        field,
        format!("{n} is out of range (at most {MAX_COUNT}, the signed 64-bit range)"),
    )
}

fn as_map(field: &str, v: &Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        _ => Err(Error::validation(field, "must be a mapping")),
    }
}

/// `"ok"`, shared: the default status of most events.
fn ok_status() -> Text {
    static OK: OnceLock<Text> = OnceLock::new();
    OK.get_or_init(|| Arc::from("ok")).clone()
}

/// A shared copy of one of the few default texts (no allocation after the first use).
fn shared_text(s: &'static str) -> Text {
    static TEXTS: OnceLock<[Text; 3]> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| ["function".into(), "none".into(), "session".into()]);
    texts
        .iter()
        .find(|t| &***t == s)
        .cloned()
        .unwrap_or_else(|| Arc::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model_call() -> Event {
        let mut e = Event::new(EventKind::ModelCall);
        e.provider = Some("openai".into());
        e.model = Some("gpt-5".into());
        e.api = Some("responses".into());
        e
    }

    #[test]
    fn finish_applies_defaults_and_ids() {
        let e = model_call().finish().unwrap();
        assert_eq!(e.input_tokens, Some(0));
        assert_eq!(e.status.as_deref(), Some("ok"));
        assert!(e.ts > 0 && !e.ts_explicit);
        assert_eq!(e.id.len(), 36);
    }

    #[test]
    fn validation_names_the_field() {
        let mut e = model_call();
        e.cached_tokens = Some(5);
        e.input_tokens = Some(4);
        assert!(
            matches!(e.finish(), Err(Error::Validation { field, .. }) if field == "cached_tokens")
        );
        let mut e = model_call();
        e.model = None;
        assert!(matches!(e.finish(), Err(Error::Validation { field, .. }) if field == "model"));
        let mut e = Event::new(EventKind::StateOp);
        e.op = Some("write".into());
        e.store = Some("mem".into());
        e.holder = Some("server".into());
        assert!(matches!(e.finish(), Err(Error::Validation { field, .. }) if field == "holder"));
        let mut e = model_call();
        e.attrs
            .insert("big".into(), json!("x".repeat(MAX_MAPPING_BYTES)));
        assert!(matches!(e.finish(), Err(Error::Validation { field, .. }) if field == "attrs"));
        // Past the quick bound (six bytes a character) but within the limit once written.
        let mut e = model_call();
        e.attrs
            .insert("wide".into(), json!("x".repeat(MAX_MAPPING_BYTES / 4)));
        assert!(e.finish().is_ok());
        // Escapes count as written: 1/5 of the limit in control characters is over it.
        let mut e = model_call();
        e.attrs
            .insert("ctl".into(), json!("\u{1}".repeat(MAX_MAPPING_BYTES / 5)));
        assert!(matches!(e.finish(), Err(Error::Validation { field, .. }) if field == "attrs"));
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut v = json!(1);
        for _ in 0..(MAX_DEPTH + 2) {
            v = json!([v]);
        }
        let mut e = model_call();
        e.request = Some(Map::from_iter([("x".to_owned(), v)]));
        assert!(matches!(e.finish(), Err(Error::Validation { field, .. }) if field == "request"));
    }

    #[test]
    fn map_round_trip() {
        let mut e = model_call();
        e.attrs.insert("k".into(), json!({"b": 1.5, "a": [1, "x"]}));
        let e = e.finish().unwrap();
        let back = Event::from_map(&e.to_map()).unwrap();
        assert_eq!(back.id, e.id);
        assert_eq!(back.attrs, e.attrs);
        assert_eq!(back.ts, e.ts);
        assert!(back.ts_explicit);
    }

    #[test]
    fn from_map_rejects_foreign_keys() {
        let m = json!({"kind": "tool_call", "tool": "x", "provider": "openai"});
        let err = Event::from_map(m.as_object().unwrap()).unwrap_err();
        assert!(matches!(err, Error::Validation { field, .. } if field == "provider"));
        // The ledger assigns seq: an event that brings its own is refused, not silently cut.
        let m = json!({"kind": "tool_call", "tool": "x", "seq": 5});
        let err = Event::from_map(m.as_object().unwrap()).unwrap_err();
        assert!(matches!(err, Error::Validation { field, .. } if field == "seq"));
    }

    #[test]
    fn counts_beyond_the_signed_64_bit_range_are_rejected() {
        for field in ["input_tokens", "output_tokens", "cached_tokens"] {
            let mut e = model_call();
            e.input_tokens = Some(u64::MAX);
            let slot = match field {
                "input_tokens" => &mut e.input_tokens,
                "output_tokens" => &mut e.output_tokens,
                _ => &mut e.cached_tokens,
            };
            *slot = Some(MAX_COUNT + 1);
            if field != "input_tokens" {
                e.input_tokens = Some(MAX_COUNT);
            }
            let err = e.finish().unwrap_err();
            assert!(
                matches!(&err, Error::Validation { field: f, .. } if f == field),
                "{field}: {err}"
            );
        }
        let mut e = model_call();
        e.input_tokens = Some(MAX_COUNT);
        e.cached_tokens = Some(MAX_COUNT);
        assert!(e.finish().is_ok());
        let m = json!({"kind": "state_op", "op": "write", "store": "m", "holder": "client",
                       "bytes": MAX_COUNT + 1});
        let err = Event::from_map(m.as_object().unwrap())
            .and_then(Event::finish)
            .unwrap_err();
        assert!(matches!(err, Error::Validation { field, .. } if field == "bytes"));
    }

    #[test]
    fn fields_view_reads_nested_request() {
        let mut e = model_call();
        e.request = Some(
            json!({"conversation": {"id": "conv_1"}, "store": false})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert!(matches!(
            e.field("request.conversation.id"),
            Some(FieldRef::Str("conv_1"))
        ));
        assert!(matches!(
            e.field("request.store"),
            Some(FieldRef::Bool(false))
        ));
        assert!(e.field("request.previous_response_id").is_none());
        assert!(matches!(e.field("provider"), Some(FieldRef::Str("openai"))));
    }
}
