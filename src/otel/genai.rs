//! GenAI semantic-convention spans → statemeter events.
//!
//! | `gen_ai.operation.name` | event |
//! |---|---|
//! | `chat`, `generate_content`, `text_completion`, `embeddings` | `model_call` |
//! | `invoke_agent`, `create_agent` on a CLIENT span (a remote agent service; not one naming no agent id with model calls beneath) | `model_call` |
//! | `invoke_agent`, `create_agent`, `invoke_workflow`, `plan` otherwise | none: the span names the agent (and maybe the conversation) of the spans beneath it |
//! | `execute_tool`; an MCP `tools/call` span | `tool_call` (`tool_kind="mcp"` when `mcp.*` attributes are present) |
//! | `search_memory` / `create_memory`, `update_memory`, `upsert_memory`, `create_memory_store` / `delete_memory`, `delete_memory_store` | `state_op` read / write / delete |
//! | `retrieval` | `state_op` read of the data source (`scope="global"`) |
//! | none, but a provider, a model and token usage | `model_call`, with `attrs.inferred` saying so (Vercel AI SDK exports), unless a model call above or below it in the trace is the same call |
//! | anything else | none |
//!
//! Provider: `gen_ai.provider.name`, else the pre-1.37 `gen_ai.system`, with the old names
//! mapped (`az.ai.openai` → `azure.ai.openai`, `vertex_ai` → `gcp.vertex_ai`, ...) and provider
//! ids that name an API read as both (`openai.responses` → `openai`, API `responses`). Request
//! parameters recorded as `gen_ai.openai.request.*` attributes, and a `gen_ai.conversation.id`
//! shaped like an OpenAI conversation on a Responses call, become the event's `request` under
//! the provider's parameter names, with `attrs.request_from` naming each source. Session: the
//! span's `gen_ai.conversation.id`, else the nearest ancestor's, else any in the trace, else the
//! trace id. Agent: the nearest `gen_ai.agent.name`. Venue: `server.address` through
//! [`crate::classify::venue::venue_for_host`], with the match kept in `attrs.venue_evidence`.
//! `parent_id`: the event of the nearest ancestor span that is one.
//!
//! `statemeter.*` attributes (written by [`super::export`], or set by hand) override what is
//! derived: `statemeter.kind` marks an exported event, whose fields are then taken exactly
//! (`statemeter.request` is the request mapping as JSON; `statemeter.request.<name>` sets one
//! request key). That makes export → import lossless.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::conventions::{
    count, event_id, flag, infer_api, inferred_model_call, is_provider_conversation_id,
    json_object, kind_of, memory_op, put, sdk_provider_id, skip_reason, REQUEST_ATTRIBUTES,
};
use super::frameworks::{self, tool_kind};
use super::{Span, KIND_CLIENT, STATUS_ERROR};
use crate::classify::venue::venue_for_host;
use crate::error::{Error, Result};
use crate::event::{Event, SCOPES};

pub use super::conventions::provider_name;

/// Beyond this many open spans the mapper forgets everything (spans that never end must not
/// grow memory without bound); later spans then fall back to their own attributes.
const MAX_OPEN_SPANS: usize = 100_000;

/// The session, agent and enclosing event around a span (see [`Mapper::context`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanContext {
    /// `gen_ai.conversation.id` of the span, its nearest ancestor, or any span of the trace.
    pub conversation: Option<String>,
    /// The nearest `gen_ai.agent.name`.
    pub agent: Option<String>,
    /// The event of the span itself when it is one, else of its nearest ancestor that is one.
    pub parent_id: Option<String>,
}

/// Spans that are not events, by reason.
pub type SkipCounts = BTreeMap<&'static str, u64>;

/// What one span became.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// An event mapping (the shape `Event::from_map` reads).
    Event(Map<String, Value>),
    /// Not an event, and why (see [`skip_reason`]; `repeats_model_call`: an inferred model
    /// call that repeats one the trace records anyway).
    Skipped(&'static str),
    /// One event for the span and the HTTP call captured for it (see [`super::join`]).
    Joined(Map<String, Value>),
}

impl Outcome {
    /// The event mapping, if the span is one.
    pub fn event(self) -> Option<Map<String, Value>> {
        match self {
            Outcome::Event(ev) | Outcome::Joined(ev) => Some(ev),
            Outcome::Skipped(_) => None,
        }
    }
}

#[derive(Default)]
struct Node {
    parent: Option<String>,
    conversation: Option<String>,
    agent: Option<String>,
    event_id: Option<String>,
    /// A model call by its operation name (known at start).
    model_call: bool,
    /// A model call was recorded from a span beneath this one.
    below: bool,
}

#[derive(Default)]
struct TraceInfo {
    conversation: Option<String>,
    open: usize,
}

/// Maps spans to event mappings (the shape `Event::from_map` reads), keeping what later spans
/// need from earlier ones: the conversation, agent and event id of each open span.
#[derive(Default)]
pub struct Mapper {
    venues: BTreeMap<String, String>,
    nodes: HashMap<String, Node>,
    traces: HashMap<String, TraceInfo>,
    /// Per span key: the GenAI attributes copied from other conventions, and their sources.
    derived: HashMap<String, Map<String, Value>>,
}

impl Mapper {
    /// `venues`: the user's host-pattern → venue mapping (see `venue_for_host`).
    pub fn new(venues: BTreeMap<String, String>) -> Self {
        Mapper {
            venues,
            ..Default::default()
        }
    }

    /// Notes a span that started (live spans: `on_start`); its attributes so far are used.
    pub fn start(&mut self, span: &Span) {
        if self.nodes.len() >= MAX_OPEN_SPANS {
            self.nodes.clear();
            self.traces.clear();
        }
        let conversation = span.str_attr("gen_ai.conversation.id").map(str::to_owned);
        let trace = self.traces.entry(span.trace_id.clone()).or_default();
        trace.open += 1;
        if trace.conversation.is_none() {
            trace.conversation.clone_from(&conversation);
        }
        let node = Node {
            parent: span
                .parent_span_id
                .as_ref()
                .map(|p| format!("{}:{p}", span.trace_id)),
            conversation,
            agent: span.str_attr("gen_ai.agent.name").map(str::to_owned),
            event_id: kind_of(span).map(|_| event_id(span)),
            model_call: kind_of(span) == Some("model_call"),
            below: false,
        };
        self.nodes.insert(span.key(), node);
    }

    /// How many started spans have not ended yet.
    pub fn open_spans(&self) -> usize {
        self.nodes.len()
    }

    /// Maps a finished span and forgets it. `Ok(None)`: not an event (see the module table).
    pub fn end(&mut self, span: &Span) -> Result<Option<Map<String, Value>>> {
        let key = span.key();
        if !self.nodes.contains_key(&key) {
            self.start(span);
        }
        let out = self.map(span).map(Outcome::event);
        if matches!(&out, Ok(Some(ev)) if ev.get("kind") == Some(&Value::from("model_call"))) {
            self.mark_ancestors(span);
        }
        self.nodes.remove(&key);
        if let Some(t) = self.traces.get_mut(&span.trace_id) {
            t.open = t.open.saturating_sub(1);
            if t.open == 0 {
                self.traces.remove(&span.trace_id);
            }
        }
        out
    }

    /// Maps every span of a file (ancestors may come after their children). Each event is
    /// validated; the first problem is an error naming the span, and nothing is returned.
    pub fn map_all(
        venues: BTreeMap<String, String>,
        spans: &[Span],
    ) -> Result<Vec<Map<String, Value>>> {
        Ok(Self::map_all_counted(venues, spans)?.0)
    }

    /// [`Mapper::map_all`], with the spans that are not events counted by reason (see
    /// [`Outcome::Skipped`]).
    pub fn map_all_counted(
        venues: BTreeMap<String, String>,
        spans: &[Span],
    ) -> Result<(Vec<Map<String, Value>>, SkipCounts)> {
        let mut events = Vec::new();
        let mut skipped = BTreeMap::new();
        for outcome in Self::map_spans(venues, spans) {
            match outcome? {
                Outcome::Event(ev) | Outcome::Joined(ev) => events.push(ev),
                Outcome::Skipped(reason) => *skipped.entry(reason).or_default() += 1,
            }
        }
        Ok((events, skipped))
    }

    /// Maps a set of spans seeing all of them at once (a file, or a whole trace of live spans
    /// once it ended): one outcome per span, in order. An event is validated; a problem is an
    /// error naming the span. The one mapping both the file import and the live processor use.
    pub fn map_spans(venues: BTreeMap<String, String>, spans: &[Span]) -> Vec<Result<Outcome>> {
        let (m, spans) = Mapper::prepared(venues, spans);
        spans
            .iter()
            .enumerate()
            .map(|(i, s)| m.map_checked(i, s))
            .collect()
    }

    /// A mapper that has seen every span of the set, and the spans with other conventions'
    /// attributes read under their GenAI names (see `frameworks`); [`Mapper::map_checked`] then
    /// maps each one, [`Mapper::context`] tells the session and agent around any of them.
    pub fn prepared(venues: BTreeMap<String, String>, spans: &[Span]) -> (Mapper, Vec<Span>) {
        let mut m = Mapper::new(venues);
        let normalized: Vec<Span> = spans
            .iter()
            .map(|s| match frameworks::normalize(s) {
                Some((n, from)) => {
                    m.derived.insert(s.key(), from);
                    n
                }
                None => s.clone(),
            })
            .collect();
        for s in &normalized {
            m.start(s);
        }
        // Which spans have a model call beneath them (a span ends after its children: the live
        // processor learns the same as they end).
        for s in &normalized {
            if kind_of(s) == Some("model_call") || inferred_model_call(s).is_some() {
                m.mark_ancestors(s);
            }
        }
        // A conversation id seen anywhere in a trace applies to the whole trace.
        for s in &normalized {
            if let Some(c) = s.str_attr("gen_ai.conversation.id") {
                let t = m.traces.entry(s.trace_id.clone()).or_default();
                if t.conversation.is_none() {
                    t.conversation = Some(c.to_owned());
                }
            }
        }
        (m, normalized)
    }

    /// Maps the `i`-th span of a [`Mapper::prepared`] set, validating an event; a problem is an
    /// error naming the span.
    pub fn map_checked(&self, i: usize, s: &Span) -> Result<Outcome> {
        let named = |e: Error| match e {
            Error::Validation { field, message } => Error::validation(
                field,
                format!(
                    "{message} (span {i}: {:?}, trace {} span {})",
                    s.name, s.trace_id, s.span_id
                ),
            ),
            other => other,
        };
        let out = self.map(s).map_err(named)?;
        if let Outcome::Event(ev) = &out {
            Event::from_map(ev).and_then(Event::finish).map_err(named)?;
        }
        Ok(out)
    }

    /// The session, agent and enclosing event of the span `key` (`trace:span`) of a
    /// [`Mapper::prepared`] set, as its own event would have them; `None` for a span not in it.
    pub fn context(&self, key: &str) -> Option<SpanContext> {
        let node = self.nodes.get(key)?;
        let trace_id = key.split(':').next().unwrap_or_default();
        let mut out = SpanContext {
            conversation: node.conversation.clone(),
            agent: node.agent.clone(),
            parent_id: node.event_id.clone(),
        };
        let mut cur = node.parent.clone();
        let mut steps = 0;
        while let Some(k) = cur {
            let Some(n) = self.nodes.get(&k) else { break };
            if out.conversation.is_none() {
                out.conversation.clone_from(&n.conversation);
            }
            if out.agent.is_none() {
                out.agent.clone_from(&n.agent);
            }
            if out.parent_id.is_none() {
                out.parent_id.clone_from(&n.event_id);
            }
            cur = n.parent.clone();
            steps += 1;
            if steps > 10_000 {
                break; // a cycle in a malformed file
            }
        }
        if out.conversation.is_none() {
            out.conversation = self
                .traces
                .get(trace_id)
                .and_then(|t| t.conversation.clone());
        }
        Some(out)
    }

    /// The key of `key`'s parent span, when the parent is in the set.
    pub fn parent_key(&self, key: &str) -> Option<&str> {
        self.nodes.get(key)?.parent.as_deref()
    }

    /// Notes on every open ancestor of `span` that a model call lies beneath it.
    fn mark_ancestors(&mut self, span: &Span) {
        let mut cur = span
            .parent_span_id
            .as_ref()
            .map(|p| format!("{}:{p}", span.trace_id));
        let mut steps = 0;
        while let Some(k) = cur {
            let Some(node) = self.nodes.get_mut(&k) else {
                return;
            };
            node.below = true;
            cur = node.parent.clone();
            steps += 1;
            if steps > 10_000 {
                return; // a cycle in a malformed file
            }
        }
    }

    /// Whether an inferred model call repeats one the trace records anyway: a model call by
    /// operation name above it (an SDK or HTTP-level span beneath a `chat` span), or any model
    /// call beneath it (a wrapper span summing its calls' usage).
    fn repeats_a_model_call(&self, span: &Span) -> bool {
        self.nodes.get(&span.key()).is_some_and(|n| n.below)
            || self
                .ancestor(span, |n| n.model_call.then_some(()))
                .is_some()
    }

    /// Walks from `span`'s parent up through the open spans; returns the first `Some(f(node))`.
    fn ancestor<T>(&self, span: &Span, f: impl Fn(&Node) -> Option<T>) -> Option<T> {
        let mut cur = span
            .parent_span_id
            .as_ref()
            .map(|p| format!("{}:{p}", span.trace_id));
        let mut steps = 0;
        while let Some(k) = cur {
            let node = self.nodes.get(&k)?;
            if let Some(v) = f(node) {
                return Some(v);
            }
            cur = node.parent.clone();
            steps += 1;
            if steps > 10_000 {
                return None; // a cycle in a malformed file
            }
        }
        None
    }

    fn map(&self, span: &Span) -> Result<Outcome> {
        let (kind, inferred) = match kind_of(span) {
            Some(kind) => (kind, None),
            None => match inferred_model_call(span) {
                Some(_) if self.repeats_a_model_call(span) => {
                    return Ok(Outcome::Skipped("repeats_model_call"))
                }
                Some(from) => ("model_call", Some(from)),
                None => return Ok(Outcome::Skipped(skip_reason(span))),
            },
        };
        let exact = span.attributes.contains_key("statemeter.kind");
        let derived = self.derived.get(&span.key());
        // A model call read from another convention's span kind (an OpenInference LLM span
        // around an instrumented client's own) with a model call beneath it is that call.
        if kind == "model_call"
            && derived.is_some_and(|d| d.contains_key("gen_ai.operation.name"))
            && self.nodes.get(&span.key()).is_some_and(|n| n.below)
        {
            return Ok(Outcome::Skipped("repeats_model_call"));
        }
        // An agent span marked CLIENT that names no agent id and has model calls beneath it runs
        // in this process (some instrumentations mark every agent CLIENT): it names the agent of
        // those calls. A remote agent service names the agent it invokes by its id.
        if kind == "model_call"
            && matches!(
                span.str_attr("gen_ai.operation.name"),
                Some("invoke_agent" | "create_agent")
            )
            && span.str_attr("gen_ai.agent.id").is_none()
            && self.nodes.get(&span.key()).is_some_and(|n| n.below)
        {
            return Ok(Outcome::Skipped("agent_or_workflow"));
        }
        let mut ev = Map::new();
        let mut attrs = Map::new();
        if let Some(d) = derived {
            let mut from = d.clone();
            if let Some(f) = from.remove("framework") {
                attrs.insert("framework".into(), f);
            }
            if !from.is_empty() {
                attrs.insert("attributes_from".into(), Value::Object(from));
            }
        }
        put(&mut ev, "kind", Some(kind.to_owned()));
        put(&mut ev, "id", Some(event_id(span)));
        if span.start_ns > 0 {
            ev.insert("ts".into(), Value::from(span.start_ns));
        }
        let st = |name: &str| span.attributes.get(&format!("statemeter.{name}"));
        let st_str = |name: &str| match st(name) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let own_conv = span.str_attr("gen_ai.conversation.id").map(str::to_owned);
        if exact {
            if let Some(d) = st("duration_ns") {
                ev.insert(
                    "duration_ns".into(),
                    Value::from(count(Some(d), "statemeter.duration_ns")?),
                );
            }
            put(&mut ev, "session_id", own_conv);
            put(&mut ev, "parent_id", st_str("parent_id"));
            put(
                &mut ev,
                "agent",
                span.str_attr("gen_ai.agent.name").map(str::to_owned),
            );
            put(&mut ev, "venue", st_str("venue"));
            put(&mut ev, "status", st_str("status"));
            match st("attrs") {
                Some(Value::String(s)) => attrs = json_object(s, "statemeter.attrs")?,
                Some(Value::Object(o)) => attrs = o.clone(),
                _ => {}
            }
        } else {
            if span.end_ns > span.start_ns {
                ev.insert(
                    "duration_ns".into(),
                    Value::from(span.end_ns.saturating_sub(span.start_ns)),
                );
            }
            let conv = own_conv
                .or_else(|| self.ancestor(span, |n| n.conversation.clone()))
                .or_else(|| {
                    self.traces
                        .get(&span.trace_id)
                        .and_then(|t| t.conversation.clone())
                })
                .unwrap_or_else(|| span.trace_id.clone());
            put(&mut ev, "session_id", Some(conv));
            put(
                &mut ev,
                "parent_id",
                self.ancestor(span, |n| n.event_id.clone()),
            );
            let agent = span
                .str_attr("gen_ai.agent.name")
                .map(str::to_owned)
                .or_else(|| self.ancestor(span, |n| n.agent.clone()));
            put(&mut ev, "agent", agent);
            if kind != "session_start" {
                let error =
                    span.status_code == STATUS_ERROR || span.str_attr("error.type").is_some();
                let status =
                    st_str("status").unwrap_or_else(|| if error { "error" } else { "ok" }.into());
                put(&mut ev, "status", Some(status));
            }
            if let Some(host) = span.str_attr("server.address") {
                let m = venue_for_host(host, &self.venues);
                let mut e = Map::new();
                e.insert("venue".into(), Value::from(m.venue.clone()));
                e.insert("rule".into(), Value::from(m.rule));
                e.insert("explain".into(), Value::from(m.explain));
                e.insert("signal".into(), Value::from("server.address"));
                attrs.insert("venue_evidence".into(), Value::Object(e));
                put(&mut ev, "venue", st_str("venue").or(Some(m.venue)));
            } else {
                put(&mut ev, "venue", st_str("venue"));
            }
            attrs.insert("otel.trace_id".into(), Value::from(span.trace_id.clone()));
            attrs.insert("otel.span_id".into(), Value::from(span.span_id.clone()));
            attrs.insert("otel.span_name".into(), Value::from(span.name.clone()));
            for (from, to) in [
                ("gen_ai.response.id", "response_id"),
                ("gen_ai.agent.id", "agent_id"),
                ("gen_ai.tool.call.id", "tool_call_id"),
                ("mcp.method.name", "mcp_method"),
                ("error.type", "error_type"),
                ("user.id", "user_id"),
            ] {
                if let Some(v) = span.str_attr(from) {
                    attrs.insert(to.into(), Value::from(v));
                }
            }
            if let Some(Value::String(svc)) = span.resource.get("service.name") {
                attrs.insert("service".into(), Value::from(svc.clone()));
            }
        }
        put(&mut ev, "tenant", st_str("tenant"));
        let named = ["gen_ai.provider.name", "gen_ai.system"]
            .into_iter()
            .find_map(|k| span.str_attr(k).map(|v| (k, v)));
        let mut api_named = None;
        let provider = named.map(|(key, value)| match sdk_provider_id(value) {
            Some((p, api)) => {
                if !exact {
                    let api_text = api.map_or(String::new(), |a| format!(", API {a}"));
                    attrs.insert(
                        "provider_evidence".into(),
                        Value::from(format!(
                            "{key} {value} is a provider id naming its API: provider {p}{api_text}"
                        )),
                    );
                }
                api_named = api.map(|a| (a, key));
                p.to_owned()
            }
            None => provider_name(value).to_owned(),
        });
        if let Some(from) = inferred.filter(|_| !exact) {
            let mut e = Map::new();
            e.insert("kind".into(), Value::from("model_call"));
            e.insert("from".into(), Value::from(from));
            let explain = match span.str_attr("gen_ai.operation.name") {
                Some(op) => format!(
                    "gen_ai.operation.name {op} is no operation statemeter records: a span with \
                     a model name or token usage is read as one model call"
                ),
                None => "no gen_ai.operation.name: a span with a model name or token usage is \
                         read as one model call"
                    .to_owned(),
            };
            e.insert("explain".into(), Value::from(explain));
            attrs.insert("inferred".into(), Value::Object(e));
        }
        match kind {
            "model_call" => {
                self.model_call(span, &mut ev, &mut attrs, provider, api_named, exact)?;
            }
            "tool_call" => {
                let tool = span
                    .str_attr("gen_ai.tool.name")
                    .map(str::to_owned)
                    .or_else(|| st_str("tool"))
                    .or_else(|| {
                        let n = span.name.split_once(' ').map(|(_, t)| t).unwrap_or("");
                        Some(n.to_owned()).filter(|n| !n.is_empty())
                    })
                    .unwrap_or_else(|| "unknown".into());
                let mcp = span.attributes.keys().any(|k| k.starts_with("mcp."));
                let tool_kind = st_str("tool_kind")
                    .or_else(|| mcp.then(|| "mcp".to_owned()))
                    .or_else(|| span.str_attr("gen_ai.tool.type").map(tool_kind));
                if let Some(t) = span.str_attr("gen_ai.tool.type") {
                    if !exact && tool_kind.as_deref() != Some(t) {
                        attrs.insert("tool_type".into(), Value::from(t));
                    }
                }
                put(&mut ev, "tool", Some(tool));
                put(&mut ev, "tool_kind", tool_kind);
                put(&mut ev, "effect", st_str("effect"));
                put(
                    &mut ev,
                    "mcp_session_id",
                    span.str_attr("mcp.session.id").map(str::to_owned),
                );
            }
            "state_op" => {
                let op_name = span.str_attr("gen_ai.operation.name").unwrap_or("");
                let op = st_str("op").or_else(|| memory_op(op_name).map(str::to_owned));
                let store = span
                    .str_attr("gen_ai.memory.store.id")
                    .or_else(|| span.str_attr("gen_ai.memory.store.name"))
                    .or_else(|| span.str_attr("gen_ai.data_source.id"))
                    .map(str::to_owned)
                    .or_else(|| st_str("store"))
                    .or_else(|| provider.clone())
                    .unwrap_or_else(|| {
                        if op_name == "retrieval" {
                            "retrieval"
                        } else {
                            "memory"
                        }
                        .into()
                    });
                let holder = st_str("holder").unwrap_or_else(|| {
                    if span.kind == KIND_CLIENT || provider.is_some() {
                        "provider"
                    } else {
                        "client"
                    }
                    .into()
                });
                let scope = st_str("scope")
                    .or_else(|| {
                        span.str_attr("gen_ai.memory.scope")
                            .filter(|s| SCOPES.contains(s))
                            .map(str::to_owned)
                    })
                    .or_else(|| (op_name == "retrieval").then(|| "global".to_owned()));
                put(&mut ev, "op", op);
                put(&mut ev, "store", Some(store));
                put(&mut ev, "holder", Some(holder));
                put(&mut ev, "scope", scope);
                put(
                    &mut ev,
                    "key",
                    span.str_attr("gen_ai.memory.record.id")
                        .map(str::to_owned)
                        .or_else(|| st_str("key")),
                );
                if let Some(b) = st("bytes") {
                    ev.insert(
                        "bytes".into(),
                        Value::from(count(Some(b), "statemeter.bytes")?),
                    );
                }
                if let Some(p) = provider.filter(|_| !exact) {
                    attrs.insert("provider".into(), Value::from(p));
                }
            }
            _ => {
                put(&mut ev, "runtime", st_str("runtime"));
                put(&mut ev, "runtime_session_id", st_str("runtime_session_id"));
            }
        }
        // Venue and status belong to some kinds only (see `Event`).
        if !matches!(kind, "model_call" | "session_start" | "session_end") {
            ev.remove("venue");
            attrs.remove("venue_evidence");
        }
        if !matches!(kind, "model_call" | "tool_call" | "session_end") {
            ev.remove("status");
        }
        ev.insert("attrs".into(), Value::Object(attrs));
        Ok(Outcome::Event(ev))
    }

    fn model_call(
        &self,
        span: &Span,
        ev: &mut Map<String, Value>,
        attrs: &mut Map<String, Value>,
        provider: Option<String>,
        api_named: Option<(&'static str, &'static str)>,
        exact: bool,
    ) -> Result<()> {
        let op = span.str_attr("gen_ai.operation.name").unwrap_or("chat");
        let model = span
            .str_attr("gen_ai.request.model")
            .or_else(|| span.str_attr("gen_ai.response.model"))
            .unwrap_or("unknown");
        // No provider named: the one serving the address, or the one the model id names.
        let provider = provider.unwrap_or_else(|| {
            let found = span
                .str_attr("server.address")
                .and_then(frameworks::provider_for_host)
                .map(|p| (p, "server.address"))
                .or_else(|| {
                    ["gen_ai.request.model", "gen_ai.response.model"]
                        .into_iter()
                        .find_map(|k| {
                            span.str_attr(k)
                                .and_then(frameworks::provider_for_model)
                                .map(|p| (p, k))
                        })
                });
            match found {
                Some((p, from)) if !exact => {
                    let entry = attrs
                        .entry("attributes_from")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(m) = entry {
                        m.insert("gen_ai.provider.name".into(), Value::from(from));
                    }
                    p.to_owned()
                }
                _ => "unknown".into(),
            }
        });
        // Fields the span did not give, recorded as `unknown` (or zero tokens): said, not hidden.
        if !exact {
            let no_usage = !super::conventions::has_usage(span);
            let missing: Vec<Value> = [
                (provider == "unknown", "provider"),
                (model == "unknown", "model"),
                (no_usage, "usage"),
            ]
            .into_iter()
            .filter(|(m, _)| *m)
            .map(|(_, f)| Value::from(f))
            .collect();
            if !missing.is_empty() {
                attrs.insert("missing".into(), Value::Array(missing));
            }
        }
        let mut request = match span.attributes.get("statemeter.request") {
            Some(Value::String(s)) => json_object(s, "statemeter.request")?,
            Some(Value::Object(o)) => o.clone(),
            _ => Map::new(),
        };
        for (k, v) in &span.attributes {
            if let Some(name) = k.strip_prefix("statemeter.request.") {
                request.insert(name.to_owned(), v.clone());
            }
        }
        // Request parameters the instrumentation recorded (set by hand wins).
        let mut request_from = Map::new();
        if !exact {
            for (attr, name) in REQUEST_ATTRIBUTES {
                let Some(v) = span.attributes.get(*attr) else {
                    continue;
                };
                let v = match *name {
                    "store" | "background" => flag(v).map(Value::Bool),
                    _ => v.as_str().filter(|s| !s.is_empty()).map(Value::from),
                };
                if let Some(v) = v.filter(|_| !request.contains_key(*name)) {
                    request.insert((*name).to_owned(), v);
                    request_from.insert((*name).to_owned(), Value::from(*attr));
                }
            }
        }
        let api = match span.attributes.get("statemeter.api") {
            Some(Value::String(a)) if !a.is_empty() => a.clone(),
            _ => {
                // Parameters only the Responses API takes name it too.
                let responses_only = ["previous_response_id", "conversation", "background"]
                    .into_iter()
                    .find_map(|k| match request_from.get(k) {
                        Some(Value::String(attr)) => REQUEST_ATTRIBUTES
                            .iter()
                            .find(|(a, _)| a == attr)
                            .map(|(a, _)| ("responses", *a)),
                        _ => None,
                    });
                let (api, from) = infer_api(
                    op,
                    &provider,
                    span.str_attr("gen_ai.response.id"),
                    api_named.or(responses_only),
                );
                if !exact {
                    attrs.insert("api_inferred_from".into(), Value::from(from));
                }
                api.to_owned()
            }
        };
        // An OpenAI conversation id on a Responses call is the `conversation` parameter (the
        // call runs inside that provider-held conversation); other conversation ids are the
        // application's own and only name the session.
        if !exact
            && api == "responses"
            && matches!(provider.as_str(), "openai" | "azure.ai.openai")
            && !request.contains_key("conversation")
        {
            if let Some(c) = span
                .str_attr("gen_ai.conversation.id")
                .filter(|c| is_provider_conversation_id(c))
            {
                request.insert("conversation".into(), Value::from(c));
                request_from.insert("conversation".into(), Value::from("gen_ai.conversation.id"));
            }
        }
        if !request_from.is_empty() {
            attrs.insert("request_from".into(), Value::Object(request_from));
        }
        // InvokeAgent always names its session: for Bedrock agents the conversation id is it.
        if !exact
            && provider == "aws.bedrock"
            && api == "invoke_agent"
            && !request.contains_key("sessionId")
        {
            if let Some(Value::String(c)) = ev.get("session_id") {
                if span.str_attr("gen_ai.conversation.id").is_some() {
                    request.insert("sessionId".into(), Value::from(c.clone()));
                }
            }
        }
        let input = count(
            span.attributes
                .get("gen_ai.usage.input_tokens")
                .or_else(|| span.attributes.get("gen_ai.usage.prompt_tokens")),
            "gen_ai.usage.input_tokens",
        )?;
        let output = count(
            span.attributes
                .get("gen_ai.usage.output_tokens")
                .or_else(|| span.attributes.get("gen_ai.usage.completion_tokens")),
            "gen_ai.usage.output_tokens",
        )?;
        let cached = count(
            span.attributes.get("gen_ai.usage.cache_read.input_tokens"),
            "gen_ai.usage.cache_read.input_tokens",
        )?;
        // The convention counts cached tokens inside input tokens; some instrumentations of
        // providers that report them apart (Anthropic) do not. Keep the invariant, say so.
        let input = if cached > input && !exact {
            attrs.insert("input_tokens_adjusted".into(), Value::from(true));
            input + cached
        } else {
            input
        };
        put(ev, "provider", Some(provider));
        put(ev, "model", Some(model.to_owned()));
        put(ev, "api", Some(api));
        put(
            ev,
            "endpoint",
            span.attributes
                .get("statemeter.endpoint")
                .and_then(Value::as_str)
                .map(str::to_owned),
        );
        if !request.is_empty() || span.attributes.contains_key("statemeter.request") {
            ev.insert("request".into(), Value::Object(request));
        }
        ev.insert("input_tokens".into(), Value::from(input));
        ev.insert("output_tokens".into(), Value::from(output));
        ev.insert("cached_tokens".into(), Value::from(cached));
        Ok(())
    }
}

#[cfg(test)]
#[path = "genai_tests.rs"]
mod tests;
