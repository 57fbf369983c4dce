//! The event model: one struct for every kind, validation, ids (UUIDv7), the canonical JSON
//! of the `event` object in a ledger record, and the [`Fields`] view the rules engine reads.
//!
//! An event is immutable once built. Kind-specific fields are `Option`s: the record of an event
//! carries exactly the keys of its kind (absent values as `null`), see docs/ledger-format.md.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::classify::{FieldRef, Fields};
use crate::error::{Error, Result};
use crate::ledger::canonical;

/// Longest accepted string field, in bytes.
pub const MAX_STR_BYTES: usize = 4096;
/// Largest accepted `attrs` or `request`, in bytes of canonical JSON.
pub const MAX_MAPPING_BYTES: usize = 64 * 1024;
/// Deepest accepted nesting inside `attrs` or `request`.
pub const MAX_DEPTH: usize = 64;

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

/// A key of the record's `event` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Agent,
    Api,
    Attrs,
    Bytes,
    CachedTokens,
    DurationNs,
    Effect,
    Endpoint,
    Holder,
    Id,
    InputTokens,
    Key,
    Kind,
    McpSessionId,
    Model,
    Op,
    OutputTokens,
    ParentId,
    Provider,
    Request,
    Runtime,
    RuntimeSessionId,
    Scope,
    SessionId,
    Status,
    Store,
    Tenant,
    Tool,
    ToolKind,
    Ts,
    Venue,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Agent => "agent",
            Field::Api => "api",
            Field::Attrs => "attrs",
            Field::Bytes => "bytes",
            Field::CachedTokens => "cached_tokens",
            Field::DurationNs => "duration_ns",
            Field::Effect => "effect",
            Field::Endpoint => "endpoint",
            Field::Holder => "holder",
            Field::Id => "id",
            Field::InputTokens => "input_tokens",
            Field::Key => "key",
            Field::Kind => "kind",
            Field::McpSessionId => "mcp_session_id",
            Field::Model => "model",
            Field::Op => "op",
            Field::OutputTokens => "output_tokens",
            Field::ParentId => "parent_id",
            Field::Provider => "provider",
            Field::Request => "request",
            Field::Runtime => "runtime",
            Field::RuntimeSessionId => "runtime_session_id",
            Field::Scope => "scope",
            Field::SessionId => "session_id",
            Field::Status => "status",
            Field::Store => "store",
            Field::Tenant => "tenant",
            Field::Tool => "tool",
            Field::ToolKind => "tool_kind",
            Field::Ts => "ts",
            Field::Venue => "venue",
        }
    }
}

/// The keys of each kind's record, in canonical (sorted) order: the common keys plus the
/// kind's own. A unit test checks these against `COMMON_KEYS` and `EventKind::own_keys`.
fn record_fields(kind: EventKind) -> &'static [Field] {
    use Field::*;
    match kind {
        EventKind::SessionStart => &[
            Agent,
            Attrs,
            DurationNs,
            Id,
            Kind,
            ParentId,
            Runtime,
            RuntimeSessionId,
            SessionId,
            Tenant,
            Ts,
            Venue,
        ],
        EventKind::SessionEnd => &[
            Agent,
            Attrs,
            DurationNs,
            Id,
            Kind,
            ParentId,
            Runtime,
            RuntimeSessionId,
            SessionId,
            Status,
            Tenant,
            Ts,
            Venue,
        ],
        EventKind::ModelCall => &[
            Agent,
            Api,
            Attrs,
            CachedTokens,
            DurationNs,
            Endpoint,
            Id,
            InputTokens,
            Kind,
            Model,
            OutputTokens,
            ParentId,
            Provider,
            Request,
            SessionId,
            Status,
            Tenant,
            Ts,
            Venue,
        ],
        EventKind::ToolCall => &[
            Agent,
            Attrs,
            DurationNs,
            Effect,
            Id,
            Kind,
            McpSessionId,
            ParentId,
            SessionId,
            Status,
            Tenant,
            Tool,
            ToolKind,
            Ts,
        ],
        EventKind::StateOp => &[
            Agent, Attrs, Bytes, DurationNs, Holder, Id, Key, Kind, Op, ParentId, Scope, SessionId,
            Store, Tenant, Ts,
        ],
    }
}

/// Text of an event field: shared, so values repeated across events (a session's id, agent and
/// venue; provider, model, api) are reference-counted instead of copied on the hot path.
pub type Text = Arc<str>;

/// One recorded thing an agent did. See design.md "Events".
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: String,
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
    pub fn new(kind: EventKind) -> Self {
        Event {
            id: String::new(),
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
        if self.id.is_empty() {
            self.id = new_uuid_v7();
        }
        if self.ts == 0 && !self.ts_explicit {
            self.ts = now_ns();
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
        self.validate()?;
        Ok(self)
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

    /// Writes the record's `event` object as RFC 8785 canonical JSON.
    ///
    /// Keys come from a static, pre-sorted list per kind (they are ASCII without escapes), so
    /// this is a straight sequence of writes: it runs once per event on the writer thread.
    /// Absent values (`None`, empty `attrs`) are omitted: a reader treats a missing key of the
    /// kind as `null` (`attrs` as `{}`); this keeps records ~15% smaller.
    pub fn write_canonical_json(&self, out: &mut String) -> Result<()> {
        out.push('{');
        let mut first = true;
        for f in record_fields(self.kind) {
            if self.is_absent(*f) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push('"');
            out.push_str(f.name());
            out.push_str("\":");
            self.write_field(out, *f)?;
        }
        out.push('}');
        Ok(())
    }

    fn is_absent(&self, f: Field) -> bool {
        match f {
            Field::Id | Field::Kind | Field::Ts => false,
            Field::Attrs => self.attrs.is_empty(),
            Field::DurationNs => self.duration_ns.is_none(),
            Field::Request => self.request.is_none(),
            Field::InputTokens => self.input_tokens.is_none(),
            Field::OutputTokens => self.output_tokens.is_none(),
            Field::CachedTokens => self.cached_tokens.is_none(),
            Field::Bytes => self.bytes.is_none(),
            Field::SessionId => self.session_id.is_none(),
            Field::ParentId => self.parent_id.is_none(),
            Field::Agent => self.agent.is_none(),
            Field::Tenant => self.tenant.is_none(),
            Field::Venue => self.venue.is_none(),
            Field::Status => self.status.is_none(),
            Field::Runtime => self.runtime.is_none(),
            Field::RuntimeSessionId => self.runtime_session_id.is_none(),
            Field::Provider => self.provider.is_none(),
            Field::Model => self.model.is_none(),
            Field::Api => self.api.is_none(),
            Field::Endpoint => self.endpoint.is_none(),
            Field::Tool => self.tool.is_none(),
            Field::ToolKind => self.tool_kind.is_none(),
            Field::Effect => self.effect.is_none(),
            Field::McpSessionId => self.mcp_session_id.is_none(),
            Field::Op => self.op.is_none(),
            Field::Store => self.store.is_none(),
            Field::Holder => self.holder.is_none(),
            Field::Scope => self.scope.is_none(),
            Field::Key => self.key.is_none(),
        }
    }

    fn write_field(&self, out: &mut String, f: Field) -> Result<()> {
        fn s(out: &mut String, v: &Option<Text>) {
            match v {
                Some(v) => canonical::write_str(out, v),
                None => out.push_str("null"),
            }
        }
        fn u(out: &mut String, v: Option<u64>) {
            match v {
                Some(v) => canonical::write_u64(out, v),
                None => out.push_str("null"),
            }
        }
        match f {
            Field::Id => canonical::write_str(out, &self.id),
            Field::Kind => canonical::write_str(out, self.kind.as_str()),
            Field::Ts => canonical::write_i64(out, self.ts),
            Field::DurationNs => match self.duration_ns {
                Some(d) => canonical::write_i64(out, d),
                None => out.push_str("null"),
            },
            Field::Attrs => write_map(out, &self.attrs)?,
            Field::Request => match &self.request {
                Some(r) => write_map(out, r)?,
                None => out.push_str("null"),
            },
            Field::InputTokens => u(out, self.input_tokens),
            Field::OutputTokens => u(out, self.output_tokens),
            Field::CachedTokens => u(out, self.cached_tokens),
            Field::Bytes => u(out, self.bytes),
            Field::SessionId => s(out, &self.session_id),
            Field::ParentId => s(out, &self.parent_id),
            Field::Agent => s(out, &self.agent),
            Field::Tenant => s(out, &self.tenant),
            Field::Venue => s(out, &self.venue),
            Field::Status => s(out, &self.status),
            Field::Runtime => s(out, &self.runtime),
            Field::RuntimeSessionId => s(out, &self.runtime_session_id),
            Field::Provider => s(out, &self.provider),
            Field::Model => s(out, &self.model),
            Field::Api => s(out, &self.api),
            Field::Endpoint => s(out, &self.endpoint),
            Field::Tool => s(out, &self.tool),
            Field::ToolKind => s(out, &self.tool_kind),
            Field::Effect => s(out, &self.effect),
            Field::McpSessionId => s(out, &self.mcp_session_id),
            Field::Op => s(out, &self.op),
            Field::Store => s(out, &self.store),
            Field::Holder => s(out, &self.holder),
            Field::Scope => s(out, &self.scope),
            Field::Key => s(out, &self.key),
        }
        Ok(())
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
    /// `meter.record(...)` receives). Unknown keys are an error; `seq` is ignored.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let kind = match map.get("kind") {
            Some(Value::String(k)) => EventKind::parse(k)?,
            Some(_) => return Err(Error::validation("kind", "must be a string")),
            None => return Err(Error::validation("kind", "is required")),
        };
        let mut ev = Event::new(kind);
        let allowed = |k: &str| COMMON_KEYS.contains(&k) || kind.own_keys().contains(&k);
        for (k, v) in map {
            if k == "seq" || k == "kind" {
                continue;
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
                    ev.id = as_string(k, v)?;
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
    let mut parts = path.split('.');
    let mut cur = map.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    match cur {
        Value::Null => None,
        Value::String(s) => Some(FieldRef::Str(s)),
        Value::Bool(b) => Some(FieldRef::Bool(*b)),
        Value::Number(n) if n.is_i64() => Some(FieldRef::Int(n.as_i64().unwrap())),
        other => Some(FieldRef::Json(other)),
    }
}

fn write_map(out: &mut String, m: &Map<String, Value>) -> Result<()> {
    // Fast path for the common empty mapping.
    if m.is_empty() {
        out.push_str("{}");
        return Ok(());
    }
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        canonical::write_str(out, k);
        out.push(':');
        canonical::write_value(out, v)?;
    }
    out.push('}');
    Ok(())
}

fn check_str(field: &str, v: Option<&str>, required: bool, max: usize) -> Result<()> {
    match v {
        None if required => Err(Error::validation(field, "is required")),
        None => Ok(()),
        Some("") => Err(Error::validation(field, "must not be empty")),
        Some(s) if s.len() > max => Err(Error::validation(
            field,
            format!("is {} bytes long; the limit is {max}", s.len()),
        )),
        Some(_) => Ok(()),
    }
}

fn check_enum(field: &str, v: &Option<Text>, allowed: &[&str]) -> Result<()> {
    match v {
        Some(s) if !allowed.contains(&&**s) => Err(Error::validation(
            field,
            format!("{s:?} is not one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// Checks nesting depth, number finiteness and canonical size of a mapping.
fn check_mapping(field: &str, m: &Map<String, Value>) -> Result<()> {
    if m.is_empty() {
        return Ok(());
    }
    fn depth(v: &Value, d: usize, field: &str) -> Result<()> {
        if d > MAX_DEPTH {
            return Err(Error::validation(
                field,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        match v {
            Value::Array(a) => a.iter().try_for_each(|x| depth(x, d + 1, field)),
            Value::Object(o) => o.values().try_for_each(|x| depth(x, d + 1, field)),
            _ => Ok(()),
        }
    }
    for v in m.values() {
        depth(v, 1, field)?;
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

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).expect("the OS random source is available");
        u64::from_le_bytes(seed) | 1
    });
}

/// wyrand: fast, good enough for the random bits of a UUIDv7 (uniqueness, not secrecy).
fn next_random() -> u64 {
    RNG.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = (x as u128).wrapping_mul((x ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) ^ t) as u64
    })
}

/// A new UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, 74 random bits.
pub fn new_uuid_v7() -> String {
    let ms = (now_ns() / 1_000_000) as u64;
    let r1 = next_random();
    let r2 = next_random();
    let hi = (ms << 16) | 0x7000 | (r1 & 0x0fff);
    let lo = (r2 & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let mut buf = [0u8; 36];
    let hex = b"0123456789abcdef";
    let bytes: [u8; 16] = ((hi as u128) << 64 | lo as u128).to_be_bytes();
    let mut j = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf[j] = b'-';
            j += 1;
        }
        buf[j] = hex[(b >> 4) as usize];
        buf[j + 1] = hex[(b & 15) as usize];
        j += 2;
    }
    String::from_utf8(buf.to_vec()).expect("ascii")
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
    fn uuid_v7_shape_and_uniqueness() {
        let a = new_uuid_v7();
        let b = new_uuid_v7();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, b);
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
    fn canonical_json_has_sorted_kind_keys_and_nulls() {
        let mut e = model_call();
        e.id = "e1".into();
        e.ts = 1_700_000_000_000_000_123;
        e.ts_explicit = true;
        e.request = Some(Map::from_iter([("store".to_owned(), json!(true))]));
        let e = e.finish().unwrap();
        let mut out = String::new();
        e.write_canonical_json(&mut out).unwrap();
        assert_eq!(
            out,
            r#"{"api":"responses","cached_tokens":0,"id":"e1","input_tokens":0,"kind":"model_call","model":"gpt-5","output_tokens":0,"provider":"openai","request":{"store":true},"status":"ok","ts":1700000000000000123}"#
        );
    }

    #[test]
    fn record_field_lists_match_the_key_lists() {
        for kind in EventKind::ALL {
            let e = Event::new(kind);
            let names: Vec<&str> = record_fields(kind).iter().map(|f| f.name()).collect();
            assert_eq!(names, e.keys(), "{kind:?}");
        }
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
