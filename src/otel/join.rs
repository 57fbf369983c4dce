//! One call, one event: a model call that HTTP capture saw on the wire and a span that describes
//! the same call become one event. The span gives who made the call (its session, agent,
//! enclosing event and id); the wire gives what was sent and received (provider, model, API,
//! endpoint, venue, the request parameters and so the verdict, usage, status, timing).
//!
//! A captured call is handed over with the span that was current when the request was sent
//! ([`Captured`]). It joins, in this order:
//! 1. the model-call span of the set whose `gen_ai.response.id` is the response id the wire
//!    read (`by: "response_id"`);
//! 2. else the model-call span current at the request, or the nearest one above it when the
//!    current span lies inside a model call (an HTTP- or SDK-level span), unless both carry
//!    response ids that differ (`by: "trace_context"`). Several requests under one span
//!    (retries): the last one joins, the earlier ones are recorded on their own.
//!
//! A captured call that joins no span is still recorded once, with the session, agent and
//! enclosing event of the span it was sent under (`attrs.otel.trace_id` / `otel.span_id` name
//! that span).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::genai::{Mapper, Outcome, SpanContext};
use super::Span;
use crate::error::Result;
use crate::event::Event;

/// A call HTTP capture recorded while a span was current (live spans: the processor's trace).
#[derive(Clone, Debug, PartialEq)]
pub struct Captured {
    /// `trace:span` of the span current when the request was sent.
    pub span_key: String,
    /// The captured event mapping (the shape `Event::from_map` reads); `session_id`, `agent`
    /// and `tenant` when the capture records into a session.
    pub event: Map<String, Value>,
}

/// An event mapping (the shape `Event::from_map` reads).
pub type EventMap = Map<String, Value>;

/// Attributes of a span's event that describe fields the wire replaces: dropped on a join.
const SPAN_EVIDENCE: &[&str] = &[
    "venue_evidence",
    "provider_evidence",
    "api_inferred_from",
    "request_from",
    "inferred",
    "missing",
    "input_tokens_adjusted",
];

/// Maps `spans` as [`Mapper::map_spans`] does and joins the `captured` calls to them: one
/// outcome per span (a joined span's is [`Outcome::Joined`]), and the captured calls that joined
/// no span as event mappings with their span's session, agent and parent.
pub fn map_spans_joined(
    venues: std::collections::BTreeMap<String, String>,
    spans: &[Span],
    captured: Vec<Captured>,
) -> (Vec<Result<Outcome>>, Vec<Result<EventMap>>) {
    let (m, spans) = Mapper::prepared(venues, spans);
    let mut outcomes: Vec<Result<Outcome>> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| m.map_checked(i, s))
        .collect();
    if captured.is_empty() {
        return (outcomes, Vec::new());
    }
    let keys: Vec<String> = spans.iter().map(Span::key).collect();
    let index: HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    // Model-call events by response id.
    let mut by_response: HashMap<String, usize> = HashMap::new();
    for (i, o) in outcomes.iter().enumerate() {
        if let Some(rid) = model_call(o).and_then(|ev| str_at(ev, &["attrs", "response_id"])) {
            by_response.entry(rid.to_owned()).or_insert(i);
        }
    }
    let mut joined: Vec<Option<(usize, &'static str)>> = vec![None; captured.len()];
    let mut taken: HashSet<usize> = HashSet::new();
    // 1. By response id.
    for (c, cap) in captured.iter().enumerate() {
        if let Some(&i) = wire_response_id(cap).and_then(|r| by_response.get(r)) {
            if taken.insert(i) {
                joined[c] = Some((i, "response_id"));
            }
        }
    }
    // 2. By the span current at the request (the latest request under a span first).
    let mut order: Vec<usize> = (0..captured.len())
        .filter(|c| joined[*c].is_none())
        .collect();
    order.sort_by_key(|c| std::cmp::Reverse(captured[*c].event.get("ts").and_then(Value::as_i64)));
    for c in order {
        let cap = &captured[c];
        let Some(i) = model_call_at(&m, &index, &outcomes, &cap.span_key) else {
            continue;
        };
        let span_rid =
            model_call(&outcomes[i]).and_then(|ev| str_at(ev, &["attrs", "response_id"]));
        let differs = matches!((span_rid, wire_response_id(cap)), (Some(a), Some(b)) if a != b);
        if !differs && taken.insert(i) {
            joined[c] = Some((i, "trace_context"));
        }
    }
    let mut rest = Vec::new();
    for (cap, how) in captured.into_iter().zip(joined) {
        match how {
            Some((i, by)) => {
                let merged = model_call(&outcomes[i])
                    .map(|span_ev| validated(merge(span_ev, &cap.event, by, &keys[i])));
                match merged {
                    Some(Ok(ev)) => outcomes[i] = Ok(Outcome::Joined(ev)),
                    // Not one valid event together: both are kept, each as it is.
                    _ => {
                        let ctx = m.context(&cap.span_key);
                        rest.push(validated(with_context(cap, ctx)));
                    }
                }
            }
            None => {
                let ctx = m.context(&cap.span_key);
                rest.push(validated(with_context(cap, ctx)));
            }
        }
    }
    (outcomes, rest)
}

/// The event of a span that maps to a model call.
fn model_call(o: &Result<Outcome>) -> Option<&Map<String, Value>> {
    match o {
        Ok(Outcome::Event(ev)) if ev.get("kind") == Some(&Value::from("model_call")) => Some(ev),
        _ => None,
    }
}

/// The response id the wire read (`attrs["gen_ai.response.id"]`).
fn wire_response_id(cap: &Captured) -> Option<&str> {
    str_at(&cap.event, &["attrs", "gen_ai.response.id"])
}

fn str_at<'a>(ev: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, head) = path.split_last()?;
    let mut cur = ev;
    for k in head {
        cur = cur.get(*k)?.as_object()?;
    }
    cur.get(*last)?.as_str().filter(|s| !s.is_empty())
}

/// The model-call span a request sent under span `key` belongs to: that span, or the nearest
/// model call above it; not past another event (a tool call is not inside a model call).
fn model_call_at(
    m: &Mapper,
    index: &HashMap<&str, usize>,
    outcomes: &[Result<Outcome>],
    key: &str,
) -> Option<usize> {
    let mut cur = Some(key);
    let mut steps = 0;
    while let Some(k) = cur {
        if let Some(&i) = index.get(k) {
            match &outcomes[i] {
                Ok(Outcome::Event(ev)) => {
                    return (ev.get("kind") == Some(&Value::from("model_call"))).then_some(i)
                }
                Ok(Outcome::Joined(_)) | Err(_) => return None,
                Ok(Outcome::Skipped(_)) => {}
            }
        }
        cur = m.parent_key(k);
        steps += 1;
        if steps > 10_000 {
            return None;
        }
    }
    None
}

/// One event from a span's event and the captured call: identity and context from the span,
/// the call itself from the wire.
fn merge(
    span_ev: &Map<String, Value>,
    wire: &Map<String, Value>,
    by: &str,
    span_key: &str,
) -> Map<String, Value> {
    let mut ev = wire.clone();
    let trace_id = span_key.split(':').next().unwrap_or_default();
    ev.insert("id".into(), span_ev["id"].clone());
    // The span's conversation, else the capture's session, else the trace.
    let span_session = span_ev.get("session_id").and_then(Value::as_str);
    if span_session != Some(trace_id) || !ev.contains_key("session_id") {
        if let Some(s) = span_ev.get("session_id") {
            ev.insert("session_id".into(), s.clone());
        }
    }
    for key in ["agent", "parent_id"] {
        if let Some(v) = span_ev.get(key) {
            ev.insert(key.into(), v.clone());
        }
    }
    if !ev.contains_key("tenant") {
        if let Some(v) = span_ev.get("tenant") {
            ev.insert("tenant".into(), v.clone());
        }
    }
    let mut from_span = Vec::new();
    for key in ["provider", "model"] {
        if ev
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(|v| v == "unknown")
        {
            if let Some(v) = span_ev.get(key).filter(|v| v.as_str() != Some("unknown")) {
                ev.insert(key.into(), v.clone());
                from_span.push(Value::from(key));
            }
        }
    }
    if !ev.contains_key("input_tokens") && !ev.contains_key("output_tokens") {
        for key in ["input_tokens", "output_tokens", "cached_tokens"] {
            if let Some(v) = span_ev.get(key) {
                ev.insert(key.into(), v.clone());
            }
        }
        from_span.push(Value::from("usage"));
    }
    if !ev.contains_key("request") {
        if let Some(r) = span_ev.get("request") {
            ev.insert("request".into(), r.clone());
            from_span.push(Value::from("request"));
        }
    }
    let mut attrs = match span_ev.get("attrs") {
        Some(Value::Object(a)) => a.clone(),
        _ => Map::new(),
    };
    for k in SPAN_EVIDENCE {
        attrs.remove(*k);
    }
    if let Some(Value::Object(w)) = wire.get("attrs") {
        for (k, v) in w {
            attrs.insert(k.clone(), v.clone());
        }
    }
    let mut j = Map::new();
    j.insert("by".into(), Value::from(by));
    j.insert("span".into(), Value::from(span_key));
    if !from_span.is_empty() {
        j.insert("from_span".into(), Value::Array(from_span));
    }
    attrs.insert("joined".into(), Value::Object(j));
    ev.insert("attrs".into(), Value::Object(attrs));
    ev
}

/// A captured call that joined no span, with the session, agent and parent of the span it was
/// sent under (a capture's own session wins over the trace id).
fn with_context(cap: Captured, ctx: Option<SpanContext>) -> Map<String, Value> {
    let mut ev = cap.event;
    let Some(ctx) = ctx else { return ev };
    let (trace_id, span_id) = cap.span_key.split_once(':').unwrap_or_default();
    match ctx.conversation {
        Some(c) => {
            ev.insert("session_id".into(), Value::from(c));
        }
        None if !ev.contains_key("session_id") => {
            ev.insert("session_id".into(), Value::from(trace_id));
        }
        None => {}
    }
    if let Some(a) = ctx.agent {
        ev.insert("agent".into(), Value::from(a));
    }
    if let Some(p) = ctx.parent_id {
        ev.insert("parent_id".into(), Value::from(p));
    }
    if let Some(Value::Object(attrs)) = ev.get_mut("attrs") {
        attrs.insert("otel.trace_id".into(), Value::from(trace_id));
        attrs.insert("otel.span_id".into(), Value::from(span_id));
    }
    ev
}

fn validated(ev: Map<String, Value>) -> Result<Map<String, Value>> {
    Event::from_map(&ev).and_then(Event::finish)?;
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

    fn span(id: &str, parent: Option<&str>, attrs: Value) -> Span {
        Span {
            trace_id: TRACE.into(),
            span_id: format!("{id:0>16}"),
            parent_span_id: parent.map(|p| format!("{p:0>16}")),
            name: "x".into(),
            kind: super::super::KIND_CLIENT,
            start_ns: 1,
            end_ns: 2,
            attributes: attrs.as_object().unwrap().clone(),
            ..Default::default()
        }
    }

    fn wire(request: Value, rid: Option<&str>, ts: i64) -> Map<String, Value> {
        let mut attrs = json!({"http.response.status_code": 200});
        if let Some(r) = rid {
            attrs["gen_ai.response.id"] = json!(r);
        }
        json!({
            "kind": "model_call", "provider": "openai", "model": "gpt-5", "api": "responses",
            "venue": "openai", "endpoint": "https://api.openai.com/v1/responses",
            "request": request, "input_tokens": 100, "output_tokens": 9, "cached_tokens": 0,
            "status": "ok", "ts": ts, "duration_ns": 5, "attrs": attrs,
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn key(id: &str) -> String {
        format!("{TRACE}:{id:0>16}")
    }

    fn spans() -> Vec<Span> {
        vec![
            span(
                "1",
                None,
                json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bot",
                       "session.id": "s-1"}),
            ),
            span(
                "2",
                Some("1"),
                json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                       "gen_ai.request.model": "gpt-5", "gen_ai.usage.input_tokens": 7}),
            ),
            span("3", Some("2"), json!({"http.request.method": "POST"})),
            span(
                "4",
                Some("1"),
                json!({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "t"}),
            ),
        ]
    }

    #[test]
    fn a_call_sent_under_a_model_span_is_one_event_with_the_wire_verdict_fields() {
        let cap = Captured {
            span_key: key("3"), // an HTTP-level span inside the chat span
            event: wire(
                json!({"previous_response_id": "resp_0"}),
                Some("resp_1"),
                10,
            ),
        };
        let (out, rest) = map_spans_joined(BTreeMap::new(), &spans(), vec![cap]);
        assert!(rest.is_empty());
        let Ok(Outcome::Joined(ev)) = &out[1] else {
            panic!("{:?}", out[1])
        };
        assert_eq!(ev["id"], json!(format!("otel:{TRACE}:0000000000000002")));
        assert_eq!(
            (&ev["session_id"], &ev["agent"]),
            (&json!("s-1"), &json!("bot"))
        );
        assert_eq!(ev["request"], json!({"previous_response_id": "resp_0"}));
        assert_eq!(
            (&ev["input_tokens"], &ev["venue"]),
            (&json!(100), &json!("openai"))
        );
        assert_eq!(ev["attrs"]["joined"]["by"], json!("trace_context"));
        assert_eq!(ev["attrs"]["otel.span_name"], json!("x"));
        assert!(ev["attrs"].get("api_inferred_from").is_none());
    }

    #[test]
    fn response_ids_join_first_and_retries_and_stray_calls_are_kept() {
        let mut s = spans();
        s[1].attributes
            .insert("gen_ai.response.id".into(), json!("resp_9"));
        let caps = vec![
            // A retried request under the chat span: an error first, then the answer.
            Captured {
                span_key: key("2"),
                event: wire(json!({}), None, 10),
            },
            Captured {
                span_key: key("2"),
                event: wire(json!({}), Some("resp_9"), 20),
            },
            // A call made by the tool: not a model span, recorded in its context.
            Captured {
                span_key: key("4"),
                event: wire(json!({}), Some("resp_x"), 30),
            },
        ];
        let (out, rest) = map_spans_joined(BTreeMap::new(), &s, caps);
        let Ok(Outcome::Joined(ev)) = &out[1] else {
            panic!("{:?}", out[1])
        };
        assert_eq!(ev["attrs"]["joined"]["by"], json!("response_id"));
        assert_eq!(ev["ts"], json!(20));
        let rest: Vec<_> = rest.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0]["ts"], json!(10));
        assert_eq!(
            rest[0]["parent_id"],
            json!(format!("otel:{TRACE}:0000000000000002"))
        );
        assert_eq!(
            rest[1]["parent_id"],
            json!(format!("otel:{TRACE}:0000000000000004"))
        );
        assert_eq!(
            (&rest[1]["session_id"], &rest[1]["agent"]),
            (&json!("s-1"), &json!("bot"))
        );
        assert!(matches!(out[3], Ok(Outcome::Event(_))));
    }

    #[test]
    fn without_captured_calls_the_mapping_is_unchanged() {
        let (out, rest) = map_spans_joined(BTreeMap::new(), &spans(), Vec::new());
        assert!(rest.is_empty());
        let plain = Mapper::map_spans(BTreeMap::new(), &spans());
        assert_eq!(
            out.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            plain.into_iter().map(Result::unwrap).collect::<Vec<_>>()
        );
    }
}
