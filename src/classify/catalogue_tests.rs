//! Tests of the built-in catalogue: one case per rule of `default.toml`, the strict policy on
//! the same cases, catalogue invariants, and a check that docs/classification.md lists exactly
//! the built-in rules.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::{HolderSource, Ruleset};
use crate::event::{Classification, Holder, StateKind, StateKinds, Tag};

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

/// `v` as sent with HTTP method `method` (what the request capture records).
fn m(method: &str, mut v: Value) -> Value {
    v["attrs"] = json!({"http.request.method": method});
    v
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let no_store = |mut v: Value| { v["store"] = json!(false); v };
    let get = |v| m("GET", v);
    let post = |v| m("POST", v);
    let delete = |v| m("DELETE", v);
    vec![
        // OpenAI API shapes
        case("openai-chat-completions", mc("groq", "chat.completions", json!({})), SL, "", N),
        case("openai-chat-completions-store", mc("azure.ai.openai", "chat.completions", json!({"store": true})), SL, "", N),
        case("openai-completions-embeddings", mc("openai", "embeddings", json!({})), SL, "", N),
        case("openai-decisions", post(mc("openai", "decisions", json!({}))), SL, "", N),
        case("openai-responses-store-default", mc("openai", "responses", json!({})), SL, "m", P),
        case("openai-responses-store", mc("aws.bedrock", "responses", json!({"store": true})), SL, "m", P),
        case("openai-responses-previous-response-id", mc("openai", "responses", no_store(json!({"previous_response_id": "resp_1"}))), SF, "c", P),
        case("openai-responses-compact-previous-response-id", post(mc("openai", "responses.compact", json!({"previous_response_id": "resp_1"}))), SF, "c", P),
        case("openai-responses-conversation", mc("azure.ai.openai", "responses", no_store(json!({"conversation": {"id": "conv_1"}}))), SF, "cm", P),
        case("openai-responses-background", mc("oci.generative_ai", "responses", no_store(json!({"background": true}))), SL, "m", P),
        case("openai-responses-context-management", mc("openai", "responses", no_store(json!({"context_management": [{"type": "compaction"}]}))), SL, "", N),
        case("openai-responses-container", mc("openai", "responses", no_store(json!({"container": "cntr_1"}))), SF, "c", P),
        case("openai-responses-new-container", mc("openai", "responses", no_store(json!({"code_interpreter": true}))), SL, "m", P),
        case("openai-vector-store-ids", mc("openai", "responses", no_store(json!({"vector_store_ids": ["vs_1"]}))), SL, "c", P),
        case("openai-responses-stored", mc("openai", "responses.retrieve", json!({"response_id": "resp_1"})), SF, "c", P),
        case("openai-responses-stored-delete", mc("azure.ai.openai", "responses.cancel", json!({"response_id": "resp_1"})), SF, "", P),
        case("openai-prompt-cache-key", mc("openai", "chat.completions", json!({"prompt_cache_key": "k"})), SL, "", N),
        case("openai-prompt-cache-retention", mc("openai", "chat.completions", json!({"prompt_cache_retention": "24h"})), SL, "", N),
        case("openai-prompt-cache-options", mc("azure.ai.openai", "chat.completions", json!({"prompt_cache_options": {"a": 1}})), SL, "", N),
        case("openai-conversations-create", post(mc("openai", "conversations", json!({}))), SL, "m", P),
        case("openai-conversations-update", post(mc("openai", "conversations", json!({"conversation_id": "conv_1"}))), SF, "m", P),
        case("openai-conversations-read", get(mc("azure.ai.openai", "conversations", json!({"conversation_id": "conv_1"}))), SF, "c", P),
        case("openai-conversations-delete", delete(mc("openai", "conversations", json!({"conversation_id": "conv_1"}))), SF, "", P),
        case("mistral-conversations-append", post(mc("mistral_ai", "conversations", json!({"conversation_id": "conv_m1"}))), SF, "cm", P),
        case("openai-assistants-create", post(mc("openai", "assistants", json!({}))), SL, "m", P),
        case("openai-assistants-read", get(mc("openai", "assistants", json!({"assistant_id": "asst_1"}))), SL, "c", P),
        case("openai-assistants-delete", delete(mc("azure.ai.openai", "assistants", json!({"assistant_id": "asst_1"}))), SL, "", P),
        case("openai-assistant-id", post(mc("openai", "threads.runs", json!({"assistant_id": "asst_1"}))), SL, "cm", P),
        case("openai-threads-create", post(mc("openai", "threads", json!({}))), SL, "m", P),
        case("openai-threads-messages-create", post(mc("openai", "threads.messages", json!({"thread_id": "thread_1"}))), SF, "m", P),
        case("openai-threads-update", post(mc("openai", "threads", json!({"thread_id": "thread_1"}))), SF, "", P),
        case("openai-threads-read", get(mc("openai", "threads.messages", json!({"thread_id": "thread_1"}))), SF, "c", P),
        case("openai-threads-delete", delete(mc("openai", "threads", json!({"thread_id": "thread_1"}))), SF, "", P),
        case("openai-threads-runs", get(mc("azure.ai.openai", "threads.runs", json!({"thread_id": "thread_1"}))), SF, "c", P),
        case("openai-threads-runs-create", post(mc("openai", "threads.runs", json!({}))), SL, "m", P),
        case("openai-realtime", mc("openai", "realtime", json!({})), SF, "c", P),
        case("openai-containers-create", post(mc("openai", "containers", json!({}))), SL, "m", P),
        case("openai-containers-read", get(mc("openai", "containers", json!({"container_id": "cntr_1"}))), SF, "c", P),
        case("openai-containers-delete", delete(mc("openai", "containers", json!({"container_id": "cntr_1"}))), SF, "", P),
        case("openai-vector-stores-create", post(mc("openai", "vector_stores", json!({}))), SL, "m", P),
        case("openai-vector-stores-read", get(mc("azure.ai.openai", "vector_stores", json!({"vector_store_id": "vs_1"}))), SL, "c", P),
        case("openai-vector-stores-delete", delete(mc("openai", "vector_stores", json!({"vector_store_id": "vs_1"}))), SL, "", P),
        case("openai-files-create", post(mc("openai", "files", json!({}))), SL, "m", P),
        case("openai-files-read", get(mc("openai", "files", json!({"file_id": "file-1"}))), SL, "c", P),
        case("openai-files-delete", delete(mc("openai", "files", json!({"file_id": "file-1"}))), SL, "", P),
        case("openai-agents-create", post(mc("openai", "agents", json!({}))), SL, "m", P),
        case("openai-agents-read", get(mc("openai", "agents", json!({"agent_id": "agent_1"}))), SL, "c", P),
        case("openai-agents-delete", delete(mc("openai", "agents", json!({"agent_id": "agent_1"}))), SL, "", P),
        case("openai-agents-sessions-create", post(mc("openai", "agents.sessions", json!({}))), SL, "m", P),
        case("openai-agents-sessions-update", post(mc("openai", "agents.sessions", json!({"session_id": "sess_1"}))), SF, "", P),
        case("openai-agents-sessions-read", get(mc("aws.bedrock", "agents.sessions.items", json!({"session_id": "sess_1"}))), SF, "c", P),
        case("openai-agents-sessions-events", post(mc("openai", "agents.sessions.events", json!({"session_id": "sess_1"}))), SF, "cm", P),
        case("openai-agents-sessions-delete", delete(mc("openai", "agents.sessions", json!({"session_id": "sess_1"}))), SF, "", P),
        case("openai-agents-session-agent-id", post(mc("openai", "agents.sessions", json!({"agent_id": "agent_1", "environment": {"type": "none"}}))), SL, "cm", P),
        case("openai-agents-environment-hosted", post(mc("openai", "agents.sessions", json!({"environment": {"type": "openai_hosted"}}))), SL, "m", P),
        case("openai-agents-environment-reused", post(mc("openai", "agents.sessions", json!({"environment": {"type": "openai_hosted", "id": "env_1"}}))), SF, "cm", P),
        case("openai-agents-environment-self-hosted", post(mc("openai", "agents.sessions", json!({"environment": {"type": "self_hosted"}}))), SL, "m", P),
        case("openai-agents-artifacts-read", get(mc("openai", "agents.sessions.artifacts", json!({"session_id": "sess_1"}))), SL, "c", P),
        case("openai-agents-artifacts-delete", delete(mc("openai", "agents.sessions.artifacts", json!({"session_id": "sess_1"}))), SL, "", P),
        case("openai-agents-environments-create", post(mc("openai", "agents.environments", json!({}))), SL, "m", P),
        case("openai-agents-environments-read", get(mc("openai", "agents.environments", json!({"environment_id": "env_1"}))), SF, "c", P),
        case("openai-agents-environments-delete", delete(mc("openai", "agents.environments.templates", json!({"environment_template_id": "tpl_1"}))), SF, "", P),
        case("openai-beta-agents-header", mc("openai", "responses", no_store(json!({"OpenAI-Beta": "agents=v1"}))), SL, "", N),
        // Azure OpenAI / Microsoft Foundry
        case("azure-hosted-agent-session-create", post(mc("azure.ai.openai", "agents.sessions", json!({"agent_id": "bot", "agent_session_id": "s-12345678"}))), SL, "m", P),
        case("azure-hosted-agent-session-read", get(mc("azure.ai.openai", "agents.sessions", json!({"agent_id": "bot", "session_id": "s-12345678"}))), SF, "c", P),
        case("azure-hosted-agent-session-delete", delete(mc("azure.ai.openai", "agents.sessions", json!({"agent_id": "bot", "session_id": "s-12345678"}))), SF, "", P),
        case("azure-agent-session-id", post(mc("azure.ai.openai", "responses", no_store(json!({"agent_session_id": "s-12345678"})))), SF, "c", P),
        case("azure-user-isolation-key", mc("azure.ai.openai", "responses", no_store(json!({"x-ms-user-isolation-key": "u"}))), SL, "", N),
        case("azure-agents-create", post(mc("azure.ai.openai", "agents", json!({}))), SL, "m", P),
        case("azure-agent-versions-create", post(mc("azure.ai.openai", "agents.versions", json!({"agent_id": "bot"}))), SL, "m", P),
        case("azure-agent-versions-read", get(mc("azure.ai.openai", "agents", json!({"agent_id": "bot"}))), SL, "c", P),
        case("azure-agent-versions-delete", delete(mc("azure.ai.openai", "agents.versions", json!({"agent_id": "bot"}))), SL, "", P),
        case("azure-memory-stores-create", post(mc("azure.ai.openai", "memory_stores", json!({}))), SL, "m", P),
        case("azure-memory-stores-write", post(mc("azure.ai.openai", "memory_stores", json!({"memory_store_id": "prefs"}))), SF, "cm", P),
        case("azure-memory-stores-read", get(mc("azure.ai.openai", "memory_stores", json!({"memory_store_id": "prefs"}))), SF, "c", P),
        case("azure-memory-stores-delete", delete(mc("azure.ai.openai", "memory_stores", json!({"memory_store_id": "prefs"}))), SF, "", P),
        // AWS Bedrock and AgentCore
        case("bedrock-invoke-model-converse", mc("aws.bedrock", "converse_stream", json!({})), SL, "", N),
        case("bedrock-managed-agents-sessions", post(mc("aws.bedrock", "agents.sessions", json!({}))), SL, "m", P),
        case("bedrock-invoke-agent-session-id", mc("aws.bedrock", "invoke_agent", json!({"sessionId": "s1"})), SF, "cm", P),
        case("bedrock-invoke-agent-memory-id", mc("aws.bedrock", "invoke_agent", json!({"memoryId": "m1"})), SF, "cm", P),
        case("bedrock-invoke-agent-session-state", mc("aws.bedrock", "invoke_agent", json!({"sessionState": {"sessionAttributes": true}})), SL, "", N),
        case("bedrock-invoke-agent-knowledge-bases", mc("aws.bedrock", "invoke_agent", json!({"sessionState": {"knowledgeBaseConfigurations": true}})), SL, "c", P),
        case("bedrock-invoke-agent-end-session", mc("aws.bedrock", "invoke_agent", json!({"sessionId": "s1", "endSession": true})), SF, "cm", P),
        case("bedrock-agent-memory-configuration", mc("aws.bedrock", "create_agent", json!({"memoryConfiguration": {"enabledMemoryTypes": ["SESSION_SUMMARY"], "storageDays": 30}})), SL, "m", P),
        case("bedrock-knowledge-base-retrieve", mc("aws.bedrock", "retrieve", json!({"knowledgeBaseId": "KB1"})), SL, "c", P),
        case("bedrock-retrieve-and-generate-session", mc("aws.bedrock", "retrieve_and_generate", json!({"sessionId": "s1"})), SF, "cm", P),
        case("bedrock-retrieve-and-generate-new-session", mc("aws.bedrock", "retrieve_and_generate", json!({})), SL, "m", P),
        case("bedrock-retrieve-and-generate-knowledge-base", mc("aws.bedrock", "retrieve_and_generate", json!({"knowledgeBaseId": "KB1"})), SL, "cm", P),
        case("bedrock-session-checkpoints", mc("aws.bedrock", "put_invocation_step", json!({})), SL, "m", P),
        case("bedrock-session-checkpoint-read", mc("aws.bedrock", "get_invocation_step", json!({})), SF, "c", P),
        case("bedrock-session-end", mc("aws.bedrock", "end_session", json!({})), SF, "", P),
        case("bedrock-agentcore-runtime-session", mc("aws.bedrock", "invoke_agent_runtime", json!({"runtimeSessionId": "r-1"})), SF, "c", P),
        case("bedrock-agentcore-runtime-new-session", mc("aws.bedrock", "invoke_agent_runtime", json!({})), SL, "m", P),
        case("bedrock-agentcore-runtime-stop", mc("aws.bedrock", "stop_runtime_session", json!({"runtimeSessionId": "r-1"})), SF, "", P),
        case("bedrock-agentcore-memory-event", mc("aws.bedrock", "create_event", json!({"memoryId": "m", "actorId": "a", "sessionId": "s"})), SL, "m", P),
        case("bedrock-agentcore-memory-read", mc("aws.bedrock", "retrieve_memory_records", json!({"memoryId": "m"})), SF, "c", P),
        case("bedrock-agentcore-memory-update", mc("aws.bedrock", "delete_event", json!({"memoryId": "m"})), SF, "", P),
        case("bedrock-agent-memory-read", mc("aws.bedrock", "get_agent_memory", json!({"memoryId": "m"})), SF, "c", P),
        case("bedrock-agent-memory-delete", mc("aws.bedrock", "delete_agent_memory", json!({"memoryId": "m"})), SF, "", P),
        // Anthropic
        case("anthropic-messages", mc("anthropic", "messages", json!({})), SL, "", N),
        case("anthropic-messages-container", mc("anthropic", "messages", json!({"container": "container_1"})), SF, "c", P),
        case("anthropic-code-execution-new-container", mc("anthropic", "messages", json!({"code_execution": true})), SL, "m", P),
        case("anthropic-cache-control", mc("anthropic", "messages", json!({"cache_control": true})), SL, "", N),
        case("anthropic-mcp-servers", mc("anthropic", "messages", json!({"mcp_servers": ["x"]})), SL, "", N),
        case("anthropic-memory-tool", mc("anthropic", "messages", json!({"memory_tool": true})), SL, "", N),
        case("anthropic-files-create", post(mc("anthropic", "files", json!({}))), SL, "m", P),
        case("anthropic-files-read", get(mc("anthropic", "files", json!({}))), SL, "c", P),
        case("anthropic-files-delete", delete(mc("anthropic", "files", json!({}))), SL, "", P),
        case("anthropic-agents-create", post(mc("anthropic", "agents", json!({}))), SL, "m", P),
        case("anthropic-agents-read", get(mc("aws.bedrock", "agents", json!({"agent_id": "agent_1"}))), SL, "c", P),
        case("anthropic-agents-delete", delete(mc("anthropic", "agents", json!({"agent_id": "agent_1"}))), SL, "", P),
        case("anthropic-sessions-create", post(mc("anthropic", "sessions", json!({"environment_id": "env_1"}))), SL, "m", P),
        case("anthropic-sessions-continue", post(mc("anthropic", "sessions", json!({"session_id": "sesn_1"}))), SF, "cm", P),
        case("anthropic-sessions-read", get(mc("anthropic", "sessions", json!({"session_id": "sesn_1"}))), SF, "c", P),
        case("anthropic-sessions-delete", delete(mc("aws.bedrock", "sessions", json!({"session_id": "sesn_1"}))), SF, "", P),
        case("anthropic-session-memory-stores", post(mc("anthropic", "sessions", json!({"memory_store_ids": ["memstore_1"]}))), SF, "cm", P),
        case("anthropic-session-agent-id", post(mc("anthropic", "sessions", json!({"agent_id": "agent_1"}))), SL, "cm", P),
        case("anthropic-environments-create", post(mc("anthropic", "environments", json!({}))), SL, "m", P),
        case("anthropic-environments-read", get(mc("anthropic", "environments", json!({"environment_id": "env_1"}))), SF, "c", P),
        case("anthropic-environments-delete", delete(mc("anthropic", "environments", json!({"environment_id": "env_1"}))), SF, "", P),
        case("anthropic-memory-stores-create", post(mc("anthropic", "memory_stores", json!({}))), SL, "m", P),
        case("anthropic-memory-stores-update", m("PATCH", mc("anthropic", "memory_stores", json!({"memory_store_id": "memstore_1"}))), SF, "", P),
        case("anthropic-memory-stores-read", get(mc("anthropic", "memory_stores", json!({"memory_store_id": "memstore_1"}))), SF, "c", P),
        case("anthropic-memory-stores-delete", delete(mc("aws.bedrock", "memory_stores", json!({"memory_store_id": "memstore_1"}))), SF, "", P),
        // Google Gemini / Vertex AI
        case("gemini-generate-content", mc("gcp.gemini", "generate_content", json!({})), SL, "", N),
        case("gemini-cached-content", mc("gcp.vertex_ai", "generate_content", json!({"cachedContent": "cachedContents/1"})), SL, "c", P),
        case("gemini-file-uris", mc("gcp.gemini", "generate_content", json!({"fileUris": ["https://generativelanguage.googleapis.com/v1beta/files/f1"]})), SL, "c", P),
        case("gemini-file-search-tool", mc("gcp.gemini", "generate_content", json!({"fileSearchStoreNames": ["fileSearchStores/s1"]})), SL, "c", P),
        case("gemini-interactions-file-search", mc("gcp.gemini", "interactions", no_store(json!({"file_search_store_names": ["fileSearchStores/s1"]}))), SL, "c", P),
        case("gemini-interactions-store-default", mc("gcp.gemini", "interactions", json!({})), SL, "m", P),
        case("gemini-interactions-store", mc("gcp.gen_ai", "interactions", json!({"store": true})), SL, "m", P),
        case("gemini-interactions-previous-interaction-id", mc("gcp.gemini", "interactions", no_store(json!({"previous_interaction_id": "i1"}))), SF, "c", P),
        case("gemini-interactions-stored", mc("gcp.gemini", "interactions.retrieve", json!({"interaction_id": "i1"})), SF, "c", P),
        case("gemini-interactions-delete", mc("gcp.gemini", "interactions.delete", json!({"interaction_id": "i1"})), SF, "", P),
        case("gemini-cached-contents-create", post(mc("gcp.vertex_ai", "cached_contents", json!({}))), SL, "m", P),
        case("gemini-cached-contents-read", get(mc("gcp.gemini", "cached_contents", json!({}))), SL, "c", P),
        case("gemini-cached-contents-update", m("PATCH", mc("gcp.gemini", "cached_contents", json!({}))), SL, "", P),
        case("gemini-file-search-stores-create", post(mc("gcp.gemini", "file_search_stores.upload", json!({"fileSearchStoreName": "fileSearchStores/s1"}))), SL, "m", P),
        case("gemini-file-search-stores-read", get(mc("gcp.gemini", "file_search_stores.documents", json!({"fileSearchStoreName": "fileSearchStores/s1"}))), SL, "c", P),
        case("gemini-file-search-stores-delete", delete(mc("gcp.gemini", "file_search_stores", json!({"fileSearchStoreName": "fileSearchStores/s1"}))), SL, "", P),
        case("gemini-files-create", post(mc("gcp.gemini", "files", json!({}))), SL, "m", P),
        case("gemini-files-read", get(mc("gcp.gemini", "files", json!({}))), SL, "c", P),
        case("gemini-files-delete", delete(mc("gcp.gemini", "files", json!({}))), SL, "", P),
        case("gemini-live-session-resumption-handle", mc("gcp.gemini", "live", json!({"sessionResumption": {"handle": "h"}})), SF, "c", P),
        case("gemini-live-session-resumption", mc("gcp.gemini", "live", json!({"sessionResumption": {}})), SL, "m", P),
        case("gemini-agent-engine-sessions-create", post(mc("gcp.vertex_ai", "agent_engine.sessions", json!({}))), SL, "m", P),
        case("gemini-agent-engine-sessions", get(mc("gcp.vertex_ai", "agent_engine.sessions", json!({}))), SF, "c", P),
        case("gemini-agent-engine-sessions-delete", delete(mc("gcp.vertex_ai", "agent_engine.sessions", json!({}))), SF, "", P),
        case("gemini-memory-bank", mc("gcp.vertex_ai", "memory_bank", json!({})), SF, "cm", P),
        case("gemini-memory-bank-write", post(mc("gcp.vertex_ai", "memory_bank", json!({}))), SF, "cm", P),
        case("gemini-memory-bank-read", get(mc("gcp.vertex_ai", "memory_bank", json!({}))), SF, "c", P),
        case("gemini-memory-bank-delete", delete(mc("gcp.vertex_ai", "memory_bank", json!({}))), SF, "", P),
        // Stored files named by id
        case("content-file-ids", mc("mistral_ai", "chat.completions", json!({"file_ids": ["file-1"]})), SL, "c", P),
        // Model Context Protocol
        case("mcp-session-id", post(json!({"kind": "tool_call", "tool": "t", "tool_kind": "mcp", "mcp_session_id": "abc"})), SF, "c", P),
        case("mcp-session-id-unrecorded-method", json!({"kind": "tool_call", "tool": "t", "tool_kind": "mcp", "mcp_session_id": "abc"}), SF, "c", P),
        case("mcp-session-delete", delete(json!({"kind": "tool_call", "tool": "t", "tool_kind": "mcp", "mcp_session_id": "abc"})), SF, "", P),
        case("mcp-stateless", json!({"kind": "tool_call", "tool": "t", "tool_kind": "mcp"}), SL, "", N),
        // Provider-managed runtimes and state operations
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
            (ev.tag, &ev.signal, &ev.explain, ev.state),
            (info.tag, &info.signal, &info.explain, info.state)
        );
        if let Some(kind) = info.state {
            assert!(c.state_kinds.contains(kind), "{who}: state_kinds");
        }
        // The kinds are exactly those of the matching rules.
        let kinds: StateKinds = c.evidence.iter().filter_map(|e| e.state).collect();
        assert_eq!(c.state_kinds, kinds, "{who}: state_kinds");
    }
}

/// The design ("What state, held by whom"), rule by rule: a rule that names no kind of state
/// records evidence only; under the default ruleset a rule is stateful exactly when it
/// consumes or acts on (neither consumes nor creates: a read-free update or a delete)
/// provider-held state of kind conversation, runtime, memory or environment; content and
/// creating alone are stateless. A `state_op` is stateful whoever holds the state.
#[test]
fn default_tags_follow_the_design() {
    let rs = Ruleset::builtin_default();
    for r in rs.rules() {
        let id = &*r.id;
        let Some(kind) = r.state else {
            assert!(
                !r.consumes_state && !r.creates_state && r.state_holder.is_none(),
                "{id}: an effect without a kind of state"
            );
            assert_eq!(r.tag, SL, "{id}: evidence-only rules are stateless");
            continue;
        };
        let expected = match r.state_holder {
            Some(HolderSource::FromEvent) => SF,
            Some(HolderSource::Provider) => {
                let uses = r.consumes_state || !r.creates_state;
                if kind.continues_interaction() && uses {
                    SF
                } else {
                    SL
                }
            }
            Some(HolderSource::Client) => SL,
            None => panic!("{id}: a kind of state without a holder"),
        };
        assert_eq!(
            r.tag, expected,
            "{id}: {kind} with consumes={} creates={}",
            r.consumes_state, r.creates_state
        );
    }
}

#[test]
fn strict_makes_any_server_held_state_stateful() {
    let (default, strict) = (Ruleset::builtin_default(), Ruleset::builtin_strict());
    assert!(strict.provider_state_is_stateful() && !default.provider_state_is_stateful());
    for case in cases() {
        let (d, s) = (
            classify(&default, &case.event),
            classify(&strict, &case.event),
        );
        let who = case.rule;
        assert_eq!(ids(&d), ids(&s), "{who}: same rules match");
        assert_eq!(
            (
                d.consumes_state,
                d.creates_state,
                d.state_holder,
                d.state_kinds
            ),
            (
                s.consumes_state,
                s.creates_state,
                s.state_holder,
                s.state_kinds
            ),
            "{who}"
        );
        let server_held = d.state_holder.is_some_and(Holder::is_server_side);
        let tag = if d.tag == SF || (server_held && !d.state_kinds.is_empty()) {
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
    let file = mc(
        "openai",
        "responses",
        json!({"store": false, "file_ids": ["file-1"]}),
    );
    assert_eq!(classify(&default, &file).tag, SL, "content stays stateless");
    assert_eq!(classify(&strict, &file).tag, SF);
    let delete = m("DELETE", mc("anthropic", "files", json!({})));
    let (d, s) = (classify(&default, &delete), classify(&strict, &delete));
    assert_eq!(
        (d.tag, d.consumes_state, d.creates_state),
        (SL, false, false)
    );
    assert_eq!(
        s.tag, SF,
        "acting on provider-held content is stateful under strict"
    );
    let local = json!({"kind": "state_op", "op": "write", "store": "ckpt", "holder": "client"});
    assert!(!classify(&default, &local).session_stateful);
    assert!(classify(&strict, &local).session_stateful);
    // Prompt caching, stored completions and the client-held memory tool stay stateless.
    for ev in [
        mc(
            "openai",
            "chat.completions",
            json!({"store": true, "prompt_cache_key": "k"}),
        ),
        mc(
            "anthropic",
            "messages",
            json!({"cache_control": true, "memory_tool": true}),
        ),
    ] {
        let s = classify(&strict, &ev);
        assert_eq!((s.tag, s.state_kinds), (SL, StateKinds::EMPTY), "{ev}");
    }
}

#[test]
fn delete_acts_on_state_without_consuming_or_creating() {
    let rs = Ruleset::builtin_default();
    for (ev, kind, tag) in [
        (
            mc("openai", "conversations", json!({"conversation_id": "c"})),
            StateKind::Conversation,
            SF,
        ),
        (
            mc("azure.ai.openai", "files", json!({"file_id": "f"})),
            StateKind::Content,
            SL,
        ),
        (
            mc("gcp.gemini", "file_search_stores", json!({})),
            StateKind::Content,
            SL,
        ),
        (
            mc("anthropic", "sessions", json!({"session_id": "s"})),
            StateKind::Runtime,
            SF,
        ),
        (
            mc(
                "anthropic",
                "memory_stores",
                json!({"memory_store_id": "m"}),
            ),
            StateKind::Memory,
            SF,
        ),
        (
            mc("openai", "containers", json!({"container_id": "c"})),
            StateKind::Environment,
            SF,
        ),
    ] {
        let c = classify(&rs, &m("DELETE", ev.clone()));
        assert_eq!(
            (c.consumes_state, c.creates_state, c.tag),
            (false, false, tag),
            "{ev}"
        );
        assert_eq!(c.state_kinds.iter().collect::<Vec<_>>(), [kind], "{ev}");
        assert_eq!(c.state_holder, P);
    }
}

#[test]
fn plain_calls_get_exactly_their_stateless_evidence() {
    let rs = Ruleset::builtin_default();
    for provider in ["openai", "mistral_ai", "unknown"] {
        let chat = classify(
            &rs,
            &mc(provider, "chat.completions", json!({"store": false})),
        );
        assert_eq!(ids(&chat), ["openai-chat-completions"], "{provider}");
        assert!(chat.state_kinds.is_empty());
    }
    let resp = classify(&rs, &mc("openai", "responses", json!({"store": false})));
    assert_eq!(ids(&resp), ["no-state-signal"]);
    assert_eq!((resp.tag, resp.creates_state), (SL, false));
    for unknown in [
        mc("mistral_ai", "responses", json!({})),
        mc(
            "openrouter",
            "responses",
            json!({"previous_response_id": "r"}),
        ),
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
fn an_unknown_operator_holds_what_the_request_names() {
    let rs = Ruleset::builtin_default();
    // Store left at its default: an unknown server is not known to keep responses.
    let c = classify(&rs, &mc("unknown", "responses", json!({})));
    assert_eq!(ids(&c), ["no-state-signal"]);
    // A previous response the request names is held by that server, whoever runs it.
    let c = classify(
        &rs,
        &mc("unknown", "responses", json!({"previous_response_id": "r"})),
    );
    assert_eq!((c.tag, c.state_holder), (SF, Some(Holder::Unknown)));
    assert!(c.session_stateful);
}

#[test]
fn several_signals_in_one_request_all_count() {
    let rs = Ruleset::builtin_default();
    let c = classify(
        &rs,
        &mc(
            "openai",
            "responses",
            json!({"previous_response_id": "r", "prompt_cache_key": "k", "file_ids": ["f"]}),
        ),
    );
    assert_eq!(
        ids(&c),
        [
            "openai-responses-store-default",
            "openai-responses-previous-response-id",
            "openai-prompt-cache-key",
            "content-file-ids"
        ]
    );
    assert_eq!((c.tag, c.consumes_state, c.creates_state), (SF, true, true));
    assert_eq!(
        c.state_kinds.iter().collect::<Vec<_>>(),
        [StateKind::Content, StateKind::Conversation]
    );
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
            "mistral-",
            "content-",
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
        assert_eq!(
            r.state.is_some(),
            r.state_holder.is_some(),
            "{id}: a holder exactly when the rule names a kind of state"
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
        if r.state
            .is_some_and(|_| r.state_holder == Some(HolderSource::Provider))
        {
            assert!(
                r.explain.contains("https://") || ["runtime-session"].contains(&id),
                "{id}: a provider-held-state rule cites the provider's reference"
            );
        }
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
/// "## Built-in rules" heading, in backticks) and no other, with the catalogue's state kind
/// and tag in its `state` and `tag` columns.
#[test]
fn docs_list_exactly_the_builtin_rules() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/classification.md");
    let text = std::fs::read_to_string(path).expect("docs/classification.md exists");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Built-in rules"))
        .expect("a \"## Built-in rules\" section");
    let rows: Vec<Vec<&str>> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let listed: BTreeSet<String> = rows
        .iter()
        .map(|r| r[0].trim_matches('`').to_string())
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
    let rs = Ruleset::builtin_default();
    for row in rows {
        let id = row[0].trim_matches('`');
        let r = rs.rules().find(|r| &*r.id == id).unwrap();
        let state = r.state.map_or("—", |k| k.as_str());
        assert!(
            row.len() >= 5 && row[3] == state && row[4] == r.tag.as_str(),
            "docs/classification.md row for {id}: state {state}, tag {} expected, got {row:?}",
            r.tag
        );
    }
}
