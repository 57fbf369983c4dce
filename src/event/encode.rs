//! The record's `event` object: its keys (a static, pre-sorted list per kind) and its RFC 8785
//! canonical JSON, written once per event on the writer thread.

use serde_json::{Map, Value};

use super::{Event, EventKind, Text};
use crate::canonical;
use crate::error::Result;

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

impl Event {
    /// Writes the record's `event` object as RFC 8785 canonical JSON.
    ///
    /// Keys come from a static, pre-sorted list per kind (they are ASCII without escapes), so
    /// this is a straight sequence of writes: it runs once per event on the writer thread.
    /// Absent values (`None`, empty `attrs`) are omitted: a reader treats a missing key of the
    /// kind as `null` (`attrs` as `{}`); this keeps records ~15% smaller.
    pub fn write_canonical_json(&self, out: &mut String) -> Result<()> {
        self.write_canonical_json_marking(out, |_, _| {})
    }

    /// [`Event::write_canonical_json`], telling `member` the key and the byte range in `out`
    /// of each member (`"key":value`) as it is written, in order: a writer that splits the
    /// object by key then need not read the text back.
    pub fn write_canonical_json_marking(
        &self,
        out: &mut String,
        mut member: impl FnMut(&'static str, std::ops::Range<usize>),
    ) -> Result<()> {
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
            let start = out.len();
            out.push('"');
            out.push_str(f.name());
            out.push_str("\":");
            self.write_field(out, *f)?;
            member(f.name(), start..out.len());
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
}

pub(crate) fn write_map(out: &mut String, m: &Map<String, Value>) -> Result<()> {
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
}
