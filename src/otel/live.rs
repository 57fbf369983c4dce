//! Live spans, mapped exactly as a file of the same spans: [`LiveTraces`] holds the spans of a
//! trace as they end and maps them together ([`Mapper::map_spans`], the mapping the OTLP/JSON
//! import uses) once the last span of the trace that started in this process has ended. A
//! parent's attributes are read when the parent has ended, so attributes an instrumentation
//! sets after a span started (an agent name set during the run) are seen live as in a file.
//!
//! Memory is bounded: a trace holding [`MAX_TRACE_SPANS`] ended spans, or the oldest trace once
//! all traces together hold [`MAX_BUFFERED_SPANS`], is mapped early with what has ended so far
//! (its later spans are mapped on their own, without the context of the earlier ones), and
//! [`LiveTraces::flush`] (the processor's `force_flush` / `shutdown`) maps every ended span.
//!
//! Calls HTTP capture recorded while a span of an open trace was current are handed over with
//! [`LiveTraces::attach`] and joined to the trace's spans when it is mapped ([`super::join`]).

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{Map, Value};

use super::genai::Outcome;
use super::join::{map_spans_joined, Captured};
use super::Span;
use crate::error::Result;

/// Ended spans of one trace held at most (a trace that never ends must not grow memory).
pub const MAX_TRACE_SPANS: usize = 10_000;
/// Ended spans held across all open traces at most.
pub const MAX_BUFFERED_SPANS: usize = 100_000;
/// Open traces remembered at most (spans that start and never end).
pub const MAX_OPEN_TRACES: usize = 100_000;

#[derive(Default)]
struct Pending {
    /// Spans of the trace started in this process and not ended yet.
    open: usize,
    /// Ended spans not mapped yet.
    ended: Vec<Span>,
    /// Captured calls sent while a span of the trace was current, not joined yet.
    captured: Vec<Captured>,
}

/// The live processor's state: open traces and their ended spans.
#[derive(Default)]
pub struct LiveTraces {
    venues: BTreeMap<String, String>,
    traces: HashMap<String, Pending>,
    /// Trace ids in the order they were first seen (eviction order; may hold stale ids).
    order: VecDeque<String>,
    buffered: usize,
    /// Captured calls held across all open traces.
    captured: usize,
}

/// The outcome of each span mapped, with the span's key (`trace:span`); then, with an empty
/// key, the captured calls that joined no span, as events in their span's context.
pub type Mapped = Vec<(String, Result<Outcome>)>;

impl LiveTraces {
    pub fn new(venues: BTreeMap<String, String>) -> Self {
        LiveTraces {
            venues,
            ..Default::default()
        }
    }

    /// Notes a span that started.
    pub fn start(&mut self, trace_id: &str) {
        if !self.traces.contains_key(trace_id) {
            if self.traces.len() >= MAX_OPEN_TRACES {
                // Spans that never end: forget the open counts; what ended is kept and mapped
                // when the next span of its trace ends.
                self.traces
                    .retain(|_, t| !t.ended.is_empty() || !t.captured.is_empty());
                for t in self.traces.values_mut() {
                    t.open = 0;
                }
            }
            self.order.push_back(trace_id.to_owned());
        }
        self.traces.entry(trace_id.to_owned()).or_default().open += 1;
    }

    /// Takes an ended span; returns the outcomes of the spans mapped now (all the spans of its
    /// trace when it was the trace's last open span, else usually none).
    pub fn end(&mut self, span: Span) -> Mapped {
        let trace_id = span.trace_id.clone();
        let t = self.traces.entry(trace_id.clone()).or_default();
        t.open = t.open.saturating_sub(1);
        t.ended.push(span);
        self.buffered += 1;
        let mut out = Vec::new();
        if t.open == 0 || t.ended.len() >= MAX_TRACE_SPANS {
            let done = t.open == 0;
            out.extend(self.take(&trace_id, done));
        }
        while self.buffered > MAX_BUFFERED_SPANS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            out.extend(self.take(&oldest, false));
        }
        out
    }

    /// Maps every ended span held (the open traces' later spans are mapped as they end).
    pub fn flush(&mut self) -> Mapped {
        let ids: Vec<String> = self.traces.keys().cloned().collect();
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.take(&id, false));
        }
        out
    }

    /// Whether a span of the trace started here and the trace has not been mapped whole yet.
    pub fn is_open(&self, trace_id: &str) -> bool {
        self.traces.get(trace_id).is_some_and(|t| t.open > 0)
    }

    /// Hands over a call captured while span `span_id` of an open trace was current; it is
    /// joined when the trace is mapped. `false` (the caller records the call itself): the trace
    /// is not open here, or holds [`MAX_TRACE_SPANS`] captured calls already, or all traces
    /// together hold [`MAX_BUFFERED_SPANS`].
    pub fn attach(&mut self, trace_id: &str, span_id: &str, event: Map<String, Value>) -> bool {
        if self.captured >= MAX_BUFFERED_SPANS {
            return false;
        }
        match self.traces.get_mut(trace_id) {
            Some(t) if t.open > 0 && t.captured.len() < MAX_TRACE_SPANS => {
                t.captured.push(Captured {
                    span_key: format!("{trace_id}:{span_id}"),
                    event,
                });
                self.captured += 1;
                true
            }
            _ => false,
        }
    }

    /// Spans started and not ended, and ended spans held (for tests and diagnostics).
    pub fn held(&self) -> (usize, usize) {
        (self.traces.values().map(|t| t.open).sum(), self.buffered)
    }

    /// Maps the ended spans of a trace; `done`: the trace is forgotten, else it stays open.
    /// Captured calls go with them, except, while the trace stays open, those sent under a
    /// span that has not ended (they wait for it).
    fn take(&mut self, trace_id: &str, done: bool) -> Mapped {
        let (spans, captured) = if done {
            self.order.retain(|t| t != trace_id);
            self.traces
                .remove(trace_id)
                .map(|t| (t.ended, t.captured))
                .unwrap_or_default()
        } else {
            match self.traces.get_mut(trace_id) {
                Some(t) => {
                    let spans = std::mem::take(&mut t.ended);
                    let keys: std::collections::HashSet<String> =
                        spans.iter().map(Span::key).collect();
                    let (now, later) = std::mem::take(&mut t.captured)
                        .into_iter()
                        .partition(|c| keys.contains(&c.span_key) || t.open == 0);
                    t.captured = later;
                    (spans, now)
                }
                None => Default::default(),
            }
        };
        if !done && self.traces.get(trace_id).is_some_and(|t| t.open == 0) {
            self.traces.remove(trace_id);
        }
        self.buffered -= spans.len();
        self.captured -= captured.len();
        let keys: Vec<String> = spans.iter().map(Span::key).collect();
        let (outcomes, rest) = map_spans_joined(self.venues.clone(), &spans, captured);
        let mut out: Mapped = keys.into_iter().zip(outcomes).collect();
        out.extend(
            rest.into_iter()
                .map(|r| (String::new(), r.map(Outcome::Event))),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span(id: &str, parent: Option<&str>, attrs: serde_json::Value) -> Span {
        Span {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
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

    #[test]
    fn a_trace_is_mapped_when_its_last_span_ends_with_final_parent_attributes() {
        let agent = span("1", None, json!({"gen_ai.operation.name": "invoke_agent"}));
        let chat = span(
            "2",
            Some("1"),
            json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                   "gen_ai.request.model": "m"}),
        );
        let mut live = LiveTraces::default();
        live.start(&agent.trace_id);
        live.start(&chat.trace_id);
        assert!(live.end(chat.clone()).is_empty());
        assert_eq!(live.held(), (1, 1));
        // The agent's name and conversation are set after it started.
        let mut late = agent.clone();
        late.attributes
            .insert("gen_ai.agent.name".into(), json!("support"));
        late.attributes
            .insert("gen_ai.conversation.id".into(), json!("c-1"));
        let out = live.end(late.clone());
        assert_eq!(live.held(), (0, 0));
        let live_events: Vec<_> = out
            .into_iter()
            .filter_map(|(_, o)| o.unwrap().event())
            .collect();
        let file = super::super::Mapper::map_all(BTreeMap::new(), &[chat, late]).unwrap();
        assert_eq!(live_events, file);
        assert_eq!(live_events[0]["agent"], "support");
        assert_eq!(live_events[0]["session_id"], "c-1");
    }

    #[test]
    fn a_captured_call_waits_for_its_trace_and_joins_its_span() {
        let chat = span(
            "2",
            None,
            json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                   "gen_ai.request.model": "m"}),
        );
        let wire = json!({"kind": "model_call", "provider": "openai", "model": "m",
                          "api": "responses", "request": {"previous_response_id": "r0"},
                          "attrs": {}})
        .as_object()
        .unwrap()
        .clone();
        let mut live = LiveTraces::default();
        assert!(!live.attach(&chat.trace_id, &chat.span_id, wire.clone()));
        live.start(&chat.trace_id);
        assert!(live.is_open(&chat.trace_id));
        assert!(live.attach(&chat.trace_id, &chat.span_id, wire.clone()));
        // A flush while the span is open keeps the call for it.
        assert!(live.flush().is_empty());
        let out = live.end(chat.clone());
        assert!(!live.is_open(&chat.trace_id));
        assert_eq!(out.len(), 1);
        let Ok(Outcome::Joined(ev)) = &out[0].1 else {
            panic!("{out:?}")
        };
        assert_eq!(ev["request"], json!({"previous_response_id": "r0"}));
        assert_eq!(
            ev["id"],
            json!(format!("otel:{}:{}", chat.trace_id, chat.span_id))
        );
        assert_eq!(live.captured, 0);
    }

    #[test]
    fn memory_is_bounded_and_flush_maps_what_ended() {
        let mut live = LiveTraces::default();
        live.start("t");
        live.start("t");
        let mut s = span("1", None, json!({}));
        s.trace_id = "t".into();
        assert!(live.end(s).is_empty());
        assert_eq!(live.flush().len(), 1);
        assert_eq!(live.held(), (1, 0));
        for i in 0..MAX_TRACE_SPANS {
            let mut s = span(&format!("{i:x}"), None, json!({}));
            s.trace_id = "u".into();
            live.start("u");
            live.start("u");
            let out = live.end(s);
            assert_eq!(out.len(), if i + 1 == MAX_TRACE_SPANS { i + 1 } else { 0 });
        }
        assert_eq!(live.held().1, 0);
    }
}
