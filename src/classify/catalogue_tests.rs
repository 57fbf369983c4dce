//! Tests of the built-in catalogue: one case per rule of `default.toml`, the strict policy on
//! the same cases, catalogue invariants, and a check that docs/classification.md lists exactly
//! the built-in rules.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::Ruleset;
use crate::event::{Classification, Holder, Tag};

const P: Option<Holder> = Some(Holder::Provider);
const C: Option<Holder> = Some(Holder::Client);
const N: Option<Holder> = None;
const SL: Tag = Tag::Stateless;
const SF: Tag = Tag::Stateful;

/// One rule's case: the event that triggers it and the default ruleset's verdict on it.
struct Case {
    rule: &'static str,
    event: Value,
    tag: Tag,
    /// `"c"` consumes, `"m"` makes (creates), `"cm"` both, `""` neither.
    flags: &'static str,
    holder: Option<Holder>,
}

fn mc(provider: &str, api: &str, request: Value) -> Value {
    json!({"kind": "model_call", "provider": provider, "model": "m", "api": api, "request": request})
}

fn case(
    rule: &'static str,
    event: Value,
    tag: Tag,
    flags: &'static str,
    holder: Option<Holder>,
) -> Case {
    Case {
        rule,
        event,
        tag,
        flags,
        holder,
    }
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let no_store = |mut v: Value| { v["store"] = json!(false); v };
    vec![
        case("openai-chat-completions", mc("openai", "chat.completions", json!({})), SL, "", N),
        case("openai-chat-completions-store", mc("azure.ai.openai", "chat.completions", json!({"store": true})), SL, "", N),
        case("openai-completions-embeddings", mc("openai", "embeddings", json!({})), SL, "", N),
        case("openai-responses-store-default", mc("openai", "responses", json!({})), SL, "m", P),
        case("openai-responses-store", mc("aws.bedrock", "responses", json!({"store": true})), SL, "m", P),
        case("openai-responses-previous-response-id", mc("openai", "responses", no_store(json!({"previous_response_id": "resp_1"}))), SF, "c", P),
        case("openai-responses-conversation", mc("azure.ai.openai", "responses", no_store(json!({"conversation": {"id": "conv_1"}}))), SF, "cm", P),
        case("openai-responses-background", mc("openai", "responses", no_store(json!({"background": true}))), SL, "m", P),
        case("openai-responses-context-management", mc("openai", "responses", no_store(json!({"context_management": [{"type": "compaction"}]}))), SL, "", N),
        case("openai-responses-container", mc("openai", "responses", no_store(json!({"container": "cntr_1"}))), SF, "c", P),
        case("openai-responses-vector-store-ids", mc("openai", "responses", no_store(json!({"vector_store_ids": ["vs_1"]}))), SF, "c", P),
        case("openai-responses-stored", mc("openai", "responses.retrieve", json!({"response_id": "resp_1"})), SF, "c", P),
        case("openai-responses-stored-delete", mc("azure.ai.openai", "responses.cancel", json!({"response_id": "resp_1"})), SF, "", P),
        case("openai-prompt-cache-key", mc("openai", "chat.completions", json!({"prompt_cache_key": "k"})), SL, "", N),
        case("openai-prompt-cache-retention", mc("openai", "chat.completions", json!({"prompt_cache_retention": "24h"})), SL, "", N),
        case("openai-prompt-cache-options", mc("azure.ai.openai", "chat.completions", json!({"prompt_cache_options": {"a": 1}})), SL, "", N),
        case("openai-conversations", mc("openai", "conversations", json!({})), SL, "m", P),
        case("openai-assistants-threads", mc("azure.ai.openai", "threads.runs", json!({})), SF, "c", P),
        case("openai-realtime", mc("openai", "realtime", json!({})), SF, "c", P),
        case("openai-containers", mc("openai", "containers", json!({})), SL, "m", P),
        case("openai-vector-stores", mc("openai", "vector_stores", json!({})), SL, "m", P),
        case("openai-files", mc("openai", "files", json!({})), SL, "m", P),
        case("openai-agents-sessions", mc("openai", "agents.sessions", json!({})), SF, "c", P),
        case("openai-beta-agents-header", mc("openai", "responses", no_store(json!({"OpenAI-Beta": "agents=v1"}))), SF, "c", P),
        case("azure-agent-session-id", mc("azure.ai.openai", "agents.sessions", json!({"agent_session_id": "s"})), SF, "c", P),
        case("azure-user-isolation-key", mc("azure.ai.openai", "responses", no_store(json!({"x-ms-user-isolation-key": "u"}))), SF, "c", P),
        case("bedrock-invoke-model-converse", mc("aws.bedrock", "converse_stream", json!({})), SL, "", N),
        case("bedrock-invoke-agent-session-id", mc("aws.bedrock", "invoke_agent", json!({"sessionId": "s1"})), SF, "c", P),
        case("bedrock-invoke-agent-memory-id", mc("aws.bedrock", "invoke_agent", json!({"sessionId": "s1", "memoryId": "m1"})), SF, "cm", P),
        case("bedrock-invoke-agent-session-state", mc("aws.bedrock", "invoke_agent", json!({"sessionState": {"sessionAttributes": {}}})), SL, "", N),
        case("bedrock-invoke-agent-end-session", mc("aws.bedrock", "invoke_agent", json!({"sessionId": "s1", "endSession": true})), SF, "c", P),
        case("bedrock-agent-memory-configuration", mc("aws.bedrock", "create_agent", json!({"memoryConfiguration": {"enabledMemoryTypes": ["SESSION_SUMMARY"], "storageDays": 30}})), SL, "m", P),
        case("bedrock-session-checkpoints", mc("aws.bedrock", "put_invocation_step", json!({})), SL, "m", P),
        case("bedrock-session-checkpoint-read", mc("aws.bedrock", "get_invocation_step", json!({})), SF, "c", P),
        case("bedrock-session-end", mc("aws.bedrock", "end_session", json!({})), SL, "", N),
        case("bedrock-agentcore-runtime-session", mc("aws.bedrock", "invoke_agent_runtime", json!({"runtimeSessionId": "r-1"})), SF, "c", P),
        case("bedrock-agentcore-runtime-new-session", mc("aws.bedrock", "invoke_agent_runtime", json!({})), SL, "m", P),
        case("bedrock-agentcore-memory-event", mc("aws.bedrock", "create_event", json!({"memoryId": "m", "actorId": "a", "sessionId": "s"})), SL, "m", P),
        case("bedrock-agentcore-memory-read", mc("aws.bedrock", "retrieve_memory_records", json!({"memoryId": "m"})), SF, "c", P),
        case("bedrock-agent-memory-read", mc("aws.bedrock", "get_agent_memory", json!({"memoryId": "m"})), SF, "c", P),
        case("bedrock-managed-agents-sessions", mc("aws.bedrock", "agents.sessions", json!({})), SF, "c", P),
        case("anthropic-messages", mc("anthropic", "messages", json!({})), SL, "", N),
        case("anthropic-messages-container", mc("anthropic", "messages", json!({"container": "container_1"})), SF, "c", P),
        case("anthropic-cache-control", mc("anthropic", "messages", json!({"cache_control": {"type": "ephemeral", "ttl": "5m"}})), SL, "", N),
        case("anthropic-mcp-servers", mc("anthropic", "messages", json!({"mcp_servers": [{"name": "x"}]})), SL, "", N),
        case("anthropic-memory-tool", mc("anthropic", "messages", json!({"memory_tool": true})), SL, "", N),
        case("anthropic-files", mc("anthropic", "files", json!({})), SL, "m", P),
        case("anthropic-managed-agents", mc("anthropic", "sessions", json!({"anthropic-beta": "managed-agents-2026-04-01"})), SF, "c", P),
        case("gemini-generate-content", mc("gcp.gemini", "generate_content", json!({})), SL, "", N),
        case("gemini-cached-content", mc("gcp.vertex_ai", "generate_content", json!({"cachedContent": "cachedContents/1"})), SF, "c", P),
        case("gemini-interactions-store-default", mc("gcp.gemini", "interactions", json!({})), SL, "m", P),
        case("gemini-interactions-store", mc("gcp.gen_ai", "interactions", json!({"store": true})), SL, "m", P),
        case("gemini-interactions-previous-interaction-id", mc("gcp.gemini", "interactions", no_store(json!({"previous_interaction_id": "i1"}))), SF, "c", P),
        case("gemini-interactions-stored", mc("gcp.gemini", "interactions.retrieve", json!({"interaction_id": "i1"})), SF, "c", P),
        case("gemini-cached-contents", mc("gcp.vertex_ai", "cached_contents", json!({})), SL, "m", P),
        case("gemini-live-session-resumption-handle", mc("gcp.gemini", "live", json!({"sessionResumption": {"handle": "h"}})), SF, "c", P),
        case("gemini-live-session-resumption", mc("gcp.gemini", "live", json!({"sessionResumption": {}})), SL, "m", P),
        case("gemini-agent-engine-sessions", mc("gcp.vertex_ai", "agent_engine.sessions", json!({})), SF, "c", P),
        case("gemini-memory-bank", mc("gcp.vertex_ai", "memory_bank", json!({})), SF, "cm", P),
        case("mcp-session-id", json!({"kind": "tool_call", "tool": "t", "tool_kind": "mcp", "mcp_session_id": "abc"}), SF, "c", P),
        case("mcp-stateless", json!({"kind": "tool_call", "tool": "t", "tool_kind": "mcp"}), SL, "", N),
        case("runtime-session", json!({"kind": "session_start", "runtime": "agentcore", "runtime_session_id": "rs-1"}), SF, "c", P),
        case("state-op-read", json!({"kind": "state_op", "op": "read", "store": "mem", "holder": "provider"}), SF, "c", P),
        case("state-op-write", json!({"kind": "state_op", "op": "write", "store": "ckpt", "holder": "client"}), SF, "m", C),
        case("state-op-delete", json!({"kind": "state_op", "op": "delete", "store": "mem", "holder": "provider"}), SF, "", P),
    ]
}

fn classify(rs: &Ruleset, v: &Value) -> Classification {
    let map: &Map<String, Value> = v.as_object().expect("events are objects");
    rs.classify(map)
}

fn ids(c: &Classification) -> Vec<&str> {
    c.evidence.iter().map(|e| &*e.rule).collect()
}

fn default_ids() -> BTreeSet<String> {
    Ruleset::builtin_default()
        .rules()
        .map(|r| r.id.to_string())
        .collect()
}

#[test]
fn every_default_rule_has_a_case_and_every_case_holds() {
    let rs = Ruleset::builtin_default();
    let cases = cases();
    let tested: BTreeSet<String> = cases.iter().map(|c| c.rule.to_string()).collect();
    assert_eq!(tested.len(), cases.len(), "a rule is tested twice");
    assert_eq!(tested, default_ids(), "cases and catalogue differ");
    for case in &cases {
        let c = classify(&rs, &case.event);
        let who = case.rule;
        assert!(
            ids(&c).contains(&who),
            "{who}: not triggered, evidence {:?}",
            ids(&c)
        );
        assert_eq!(c.tag, case.tag, "{who}: tag (evidence {:?})", ids(&c));
        assert_eq!(
            c.consumes_state,
            case.flags.contains('c'),
            "{who}: consumes_state"
        );
        assert_eq!(
            c.creates_state,
            case.flags.contains('m'),
            "{who}: creates_state"
        );
        assert_eq!(c.state_holder, case.holder, "{who}: state_holder");
        let provider_state = c.tag == Tag::Stateful && c.state_holder == P;
        let runtime = case.event.get("runtime_session_id").is_some();
        assert_eq!(
            c.session_stateful,
            provider_state || runtime,
            "{who}: session_stateful"
        );
        assert_eq!(&*c.ruleset, "default");
        let info = rs.rules().find(|r| &*r.id == who).unwrap();
        let ev = c.evidence.iter().find(|e| &*e.rule == who).unwrap();
        assert_eq!(
            (ev.tag, &ev.signal, &ev.explain),
            (info.tag, &info.signal, &info.explain)
        );
    }
}

#[test]
fn strict_adds_provider_creation_and_client_sessions() {
    let (default, strict) = (Ruleset::builtin_default(), Ruleset::builtin_strict());
    for case in cases() {
        let (d, s) = (
            classify(&default, &case.event),
            classify(&strict, &case.event),
        );
        let who = case.rule;
        assert_eq!(ids(&d), ids(&s), "{who}: same rules match");
        assert_eq!(
            (d.consumes_state, d.creates_state, d.state_holder),
            (s.consumes_state, s.creates_state, s.state_holder),
            "{who}"
        );
        let made_by_provider = d.creates_state && d.state_holder == P;
        let tag = if d.tag == SF || made_by_provider {
            SF
        } else {
            SL
        };
        assert_eq!(s.tag, tag, "{who}: strict tag");
        assert_eq!(
            s.session_stateful,
            s.tag == SF || d.session_stateful,
            "{who}: strict session"
        );
        assert_eq!(&*s.ruleset, "strict");
    }
    // The headline cases, spelled out.
    let responses = mc("openai", "responses", json!({}));
    assert_eq!(classify(&default, &responses).tag, SL);
    let s = classify(&strict, &responses);
    assert_eq!((s.tag, s.session_stateful), (SF, true));
    let local = json!({"kind": "state_op", "op": "write", "store": "ckpt", "holder": "client"});
    assert!(!classify(&default, &local).session_stateful);
    assert!(classify(&strict, &local).session_stateful);
}

#[test]
fn plain_calls_get_exactly_their_stateless_evidence() {
    let rs = Ruleset::builtin_default();
    let chat = classify(
        &rs,
        &mc("openai", "chat.completions", json!({"store": false})),
    );
    assert_eq!(ids(&chat), ["openai-chat-completions"]);
    let resp = classify(&rs, &mc("openai", "responses", json!({"store": false})));
    assert_eq!(ids(&resp), ["no-state-signal"]);
    assert_eq!((resp.tag, resp.creates_state), (SL, false));
    for unknown in [
        mc("mistral_ai", "chat.completions", json!({})),
        json!({"kind": "tool_call", "tool": "t"}),
        json!({"kind": "session_start"}),
        json!({"kind": "model_call"}),
    ] {
        let c = classify(&rs, &unknown);
        assert_eq!(ids(&c), ["no-state-signal"], "{unknown}");
        assert_eq!((c.tag, c.session_stateful), (SL, false));
    }
}

#[test]
fn several_signals_in_one_request_all_count() {
    let rs = Ruleset::builtin_default();
    let c = classify(
        &rs,
        &mc(
            "openai",
            "responses",
            json!({"previous_response_id": "r", "prompt_cache_key": "k"}),
        ),
    );
    assert_eq!(
        ids(&c),
        [
            "openai-responses-store-default",
            "openai-responses-previous-response-id",
            "openai-prompt-cache-key"
        ]
    );
    assert_eq!((c.tag, c.consumes_state, c.creates_state), (SF, true, true));
}

#[test]
fn catalogue_rules_are_consistent() {
    let rs = Ruleset::builtin_default();
    assert!(!rs.creates_state_is_stateful() && !rs.client_state_makes_session_stateful());
    for r in rs.rules() {
        let id = &*r.id;
        let prefix_ok = [
            "openai-",
            "azure-",
            "bedrock-",
            "anthropic-",
            "gemini-",
            "mcp-",
            "runtime-",
            "state-op-",
        ]
        .iter()
        .any(|p| id.starts_with(p));
        assert!(
            prefix_ok
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{id}"
        );
        let has_effect = r.consumes_state || r.creates_state || r.tag == Tag::Stateful;
        assert_eq!(
            has_effect,
            r.state_holder.is_some(),
            "{id}: a holder exactly when there is state"
        );
        assert!(
            r.condition.starts_with("kind "),
            "{id}: every built-in rule is filed by kind"
        );
        assert!(
            !r.signal.is_empty() && r.signal.as_ref() != "kind",
            "{id}: signal {}",
            r.signal
        );
    }
    let strict_ids: Vec<String> = Ruleset::builtin_strict()
        .rules()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(
        strict_ids.into_iter().collect::<BTreeSet<_>>(),
        default_ids()
    );
}

/// docs/classification.md lists every built-in rule (first cell of the table rows under the
/// "## Built-in rules" heading, in backticks) and no other.
#[test]
fn docs_list_exactly_the_builtin_rules() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/classification.md");
    let text = std::fs::read_to_string(path).expect("docs/classification.md exists");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Built-in rules"))
        .expect("a \"## Built-in rules\" section");
    let listed: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(id, _)| id.to_string()))
        .collect();
    let builtin = default_ids();
    let missing: Vec<&String> = builtin.difference(&listed).collect();
    let unknown: Vec<&String> = listed.difference(&builtin).collect();
    assert!(
        missing.is_empty(),
        "rules missing from docs/classification.md: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/classification.md lists rules that do not exist: {unknown:?}"
    );
}
