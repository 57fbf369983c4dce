//! Events → OTLP/JSON GenAI spans, one span per event.
//!
//! Each span carries the GenAI attributes an OpenTelemetry backend understands
//! (`gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`, token usage,
//! `gen_ai.conversation.id` = the session, `gen_ai.agent.name`, `gen_ai.tool.name`,
//! `mcp.session.id`, `gen_ai.memory.*`), the verdict (`statemeter.tag`,
//! `statemeter.consumes_state`, `statemeter.creates_state`, `statemeter.state_holder`,
//! `statemeter.state_kinds` (when the event names any), `statemeter.session_tag`,
//! `statemeter.evidence` = the matching rule ids) and, as
//! `statemeter.*`, every event field the conventions have no place for, so that
//! [`super::genai`] rebuilds the exact event on import.
//!
//! The trace id is derived from the session id (a session's events share a trace; a 32-hex
//! session id, as imported from OpenTelemetry, is kept as is), the span id from the event id
//! (an `otel:{trace}:{span}` id keeps its span id) and the parent span id from `parent_id`.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::otlp::to_any_value;
use super::{KIND_CLIENT, KIND_INTERNAL, STATUS_ERROR};
use crate::canonical;
use crate::error::{Error, Result};

/// Builds one OTLP/JSON document from event rows: the record fields of each event plus its
/// classification (`tag`, `consumes_state`, `creates_state`, `state_holder`, `state_kinds`,
/// `evidence` as a list of `{rule, ...}` or rule ids) and, when known, `session_tag`.
pub fn spans_from_events(rows: &[Map<String, Value>]) -> Result<Value> {
    let spans = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            span(r).map_err(|e| match e {
                Error::Validation { field, message } => {
                    Error::validation(format!("events[{i}].{field}"), message)
                }
                other => other,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", &json!("statemeter"))]},
        "scopeSpans": [{
            "scope": {"name": "statemeter", "version": env!("CARGO_PKG_VERSION")},
            "spans": spans,
        }],
    }]}))
}

fn attr(key: &str, v: &Value) -> Value {
    json!({"key": key, "value": to_any_value(v)})
}

fn text<'a>(r: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    r.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn digest_hex(s: &str, bytes: usize) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..bytes])
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The trace id of a session (or, without one, of the event alone).
fn trace_id(session: Option<&str>, id: &str) -> String {
    match session {
        Some(s) if is_hex(s, 32) => s.to_ascii_lowercase(),
        Some(s) => digest_hex(&format!("session:{s}"), 16),
        None => digest_hex(&format!("event:{id}"), 16),
    }
}

/// The span id of an event id.
pub fn span_id(id: &str) -> String {
    match id.strip_prefix("otel:").and_then(|r| r.split_once(':')) {
        Some((t, s)) if is_hex(t, 32) && is_hex(s, 16) => s.to_ascii_lowercase(),
        _ => digest_hex(&format!("event:{id}"), 8),
    }
}

fn operation(r: &Map<String, Value>, kind: &str) -> Option<&'static str> {
    Some(match kind {
        "model_call" => match text(r, "api").unwrap_or("") {
            "embeddings" => "embeddings",
            "completions" => "text_completion",
            "generate_content" => "generate_content",
            "invoke_agent" | "invoke_agent_runtime" => "invoke_agent",
            "create_agent" => "create_agent",
            _ => "chat",
        },
        "tool_call" => "execute_tool",
        "state_op" => match text(r, "op").unwrap_or("") {
            "read" => "search_memory",
            "delete" => "delete_memory",
            _ => "update_memory",
        },
        _ => return None,
    })
}

fn span(r: &Map<String, Value>) -> Result<Value> {
    let id = text(r, "id").ok_or_else(|| Error::validation("id", "is required"))?;
    let kind = text(r, "kind").ok_or_else(|| Error::validation("kind", "is required"))?;
    let ts = r
        .get("ts")
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::validation("ts", "must be an integer"))?;
    let duration = r.get("duration_ns").and_then(Value::as_i64);
    let session = text(r, "session_id");
    let op = operation(r, kind);
    let mut a: Vec<Value> = Vec::with_capacity(24);
    let mut set = |k: &str, v: Option<&Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            a.push(attr(k, v));
        }
    };
    let s = |v: &str| Value::from(v);
    set("gen_ai.operation.name", op.map(s).as_ref());
    set("statemeter.event.id", Some(&s(id)));
    set("statemeter.kind", Some(&s(kind)));
    set("gen_ai.conversation.id", r.get("session_id"));
    set("gen_ai.agent.name", r.get("agent"));
    set("statemeter.parent_id", r.get("parent_id"));
    set("statemeter.tenant", r.get("tenant"));
    set("statemeter.duration_ns", r.get("duration_ns"));
    set("statemeter.venue", r.get("venue"));
    set("statemeter.status", r.get("status"));
    set("statemeter.runtime", r.get("runtime"));
    set("statemeter.runtime_session_id", r.get("runtime_session_id"));
    set("gen_ai.provider.name", r.get("provider"));
    set("gen_ai.request.model", r.get("model"));
    set("statemeter.api", r.get("api"));
    set("statemeter.endpoint", r.get("endpoint"));
    if let Some(host) = text(r, "endpoint").and_then(host_of) {
        set("server.address", Some(&s(&host)));
    }
    for (k, name) in [
        ("request", "statemeter.request"),
        ("attrs", "statemeter.attrs"),
    ] {
        match r.get(k) {
            Some(Value::Object(m)) if k == "request" || !m.is_empty() => {
                set(
                    name,
                    Some(&s(&canonical::to_canonical(&Value::Object(m.clone()))?)),
                );
            }
            _ => {}
        }
    }
    if kind == "model_call" {
        set("gen_ai.usage.input_tokens", r.get("input_tokens"));
        set("gen_ai.usage.output_tokens", r.get("output_tokens"));
        set(
            "gen_ai.usage.cache_read.input_tokens",
            r.get("cached_tokens"),
        );
    }
    set("gen_ai.tool.name", r.get("tool"));
    set("gen_ai.tool.type", r.get("tool_kind"));
    set("statemeter.tool_kind", r.get("tool_kind"));
    set("statemeter.effect", r.get("effect"));
    set("mcp.session.id", r.get("mcp_session_id"));
    set("statemeter.op", r.get("op"));
    set("gen_ai.memory.store.id", r.get("store"));
    set("statemeter.holder", r.get("holder"));
    set("statemeter.scope", r.get("scope"));
    set("gen_ai.memory.record.id", r.get("key"));
    set("statemeter.bytes", r.get("bytes"));
    set("statemeter.tag", r.get("tag"));
    set("statemeter.consumes_state", r.get("consumes_state"));
    set("statemeter.creates_state", r.get("creates_state"));
    set("statemeter.state_holder", r.get("state_holder"));
    let kinds = r.get("state_kinds");
    set(
        "statemeter.state_kinds",
        kinds.filter(|k| k.as_array().is_some_and(|k| !k.is_empty())),
    );
    set("statemeter.session_tag", r.get("session_tag"));
    if let Some(Value::Array(ev)) = r.get("evidence") {
        let rules: Vec<Value> = ev
            .iter()
            .filter_map(|e| match e {
                Value::Object(o) => o.get("rule").cloned(),
                Value::String(_) => Some(e.clone()),
                _ => None,
            })
            .collect();
        set("statemeter.evidence", Some(&Value::Array(rules)));
    }
    let status = text(r, "status").unwrap_or("ok");
    let name = match (op, kind) {
        (Some("execute_tool"), _) => format!("execute_tool {}", text(r, "tool").unwrap_or("")),
        (Some(o), "state_op") => format!("{o} {}", text(r, "store").unwrap_or("")),
        (Some(o), _) => format!("{o} {}", text(r, "model").unwrap_or("")),
        (None, k) => format!("{k} {}", text(r, "agent").or(session).unwrap_or("")),
    };
    let span_kind = match kind {
        "model_call" => KIND_CLIENT,
        "state_op" if text(r, "holder") == Some("provider") => KIND_CLIENT,
        _ => KIND_INTERNAL,
    };
    let mut out = json!({
        "traceId": trace_id(session, id),
        "spanId": span_id(id),
        "name": name.trim_end(),
        "kind": span_kind,
        "startTimeUnixNano": ts.to_string(),
        "endTimeUnixNano": ts.saturating_add(duration.unwrap_or(0)).to_string(),
        "attributes": a,
        "status": if status == "ok" { json!({}) } else { json!({"code": STATUS_ERROR, "message": status}) },
    });
    if let Some(p) = text(r, "parent_id") {
        out["parentSpanId"] = Value::from(span_id(p));
    }
    Ok(out)
}

/// The host of a URL (no user info, no port), for `server.address`.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(crate::classify::venue::normalise_host(host)).filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(row: Value) -> Map<String, Value> {
        let doc = spans_from_events(&[row.as_object().unwrap().clone()]).unwrap();
        let span = &doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv["key"].as_str().unwrap().to_string(), kv["value"].clone()))
            .collect()
    }

    #[test]
    fn state_kinds_travel_as_a_string_array_when_there_are_any() {
        let row = json!({"id": "e1", "kind": "model_call", "ts": 1, "provider": "openai",
            "model": "gpt-5", "api": "responses", "tag": "stateful",
            "state_holder": "unknown", "state_kinds": ["content", "conversation"]});
        let a = attrs(row.clone());
        assert_eq!(
            a["statemeter.state_kinds"],
            json!({"arrayValue": {"values": [{"stringValue": "content"},
                {"stringValue": "conversation"}]}})
        );
        assert_eq!(
            a["statemeter.state_holder"],
            json!({"stringValue": "unknown"})
        );
        let mut none = row;
        none["state_kinds"] = json!([]);
        assert!(!attrs(none).contains_key("statemeter.state_kinds"));
    }
}
