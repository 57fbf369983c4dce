//! AWS: Bedrock runtime (InvokeModel, Converse and the OpenAI-compatible `/openai/v1` paths),
//! bedrock-mantle (OpenAI- and Anthropic-compatible, including Bedrock Managed Agents), Bedrock
//! agent runtime (InvokeAgent, RetrieveAndGenerate, the session checkpoint APIs), AgentCore
//! (InvokeAgentRuntime, Memory) and the `bedrock` endpoint's Claude Managed Agents
//! (`/anthropic/v1`). Paths follow the botocore service models (`bedrock-runtime` 2023-09-30,
//! `bedrock-agent-runtime` 2023-07-26, `bedrock-agentcore` 2024-02-28). The provider is always
//! `aws.bedrock`.

use serde_json::{Map, Value};

use super::url::decode;
use super::{anthropic, openai, Ctx, Draft};

const PROVIDER: &str = "aws.bedrock";

fn id(s: &str) -> String {
    decode(s).into_owned()
}

/// bedrock-runtime.{region}.amazonaws.com
pub(super) fn describe_runtime(cx: &Ctx<'_>) -> Draft {
    match cx.segments.as_slice() {
        ["openai", "v1", rest @ ..] => openai::describe_rel(cx, PROVIDER, rest, None),
        ["model", model, op] => {
            let (api, stream) = match *op {
                "invoke" => ("invoke_model", false),
                "invoke-with-response-stream" => ("invoke_model", true),
                "converse" => ("converse", false),
                "converse-stream" => ("converse_stream", false),
                "count-tokens" => ("count_tokens", false),
                "invoke-with-bidirectional-stream" => {
                    ("invoke_model_with_bidirectional_stream", false)
                }
                other => (other, false),
            };
            let mut d = Draft::new(PROVIDER, api.replace('-', "_"));
            d.model = Some(id(model));
            if stream {
                d.keep("stream", true);
            }
            d
        }
        ["async-invoke", ..] => {
            let mut d = Draft::new(PROVIDER, "async_invoke");
            d.model = cx.body().str("modelId").map(|m| m.into_owned());
            d
        }
        ["guardrail", ..] | ["guardrail-checks", ..] => Draft::new(PROVIDER, "apply_guardrail"),
        segs => fallback(segs),
    }
}

/// bedrock-mantle.{region}.api.aws: OpenAI-compatible (`/v1`, `/openai/v1`, including managed
/// agents `/openai/v1/agents/sessions`) and Anthropic-compatible (`/anthropic/v1/messages`).
pub(super) fn describe_mantle(cx: &Ctx<'_>) -> Draft {
    match cx.segments.as_slice() {
        ["anthropic", rest @ ..] => anthropic::describe_rel(cx, PROVIDER, rest),
        ["openai", "v1", rest @ ..] | ["v1", rest @ ..] => {
            openai::describe_rel(cx, PROVIDER, rest, None)
        }
        segs => fallback(segs),
    }
}

/// bedrock.{region}.amazonaws.com (and the other control-plane hosts): Claude Managed Agents
/// under `/anthropic/v1` (agents, sessions, memory stores; "a path outside /anthropic/v1/ is
/// not served" there), else the operation's first path segment.
pub(super) fn describe_control(cx: &Ctx<'_>) -> Draft {
    match cx.segments.as_slice() {
        ["anthropic", rest @ ..] => anthropic::describe_rel(cx, PROVIDER, rest),
        segs => fallback(segs),
    }
}

/// bedrock-agent-runtime.{region}.amazonaws.com
pub(super) fn describe_agent_runtime(cx: &Ctx<'_>) -> Draft {
    let body = cx.body();
    let m: &str = &cx.method;
    match (m, cx.segments.as_slice()) {
        (_, ["agents", agent, "agentAliases", alias, "sessions", session, "text"]) => {
            let mut d = Draft::new(PROVIDER, "invoke_agent");
            d.keep("sessionId", id(session));
            d.attrs
                .insert("gen_ai.agent.id".into(), Value::String(id(agent)));
            d.attrs.insert(
                "aws.bedrock.agent_alias_id".into(),
                Value::String(id(alias)),
            );
            invoke_agent_body(cx, &mut d);
            d
        }
        // InvokeInlineAgent: POST /agents/{sessionId}; the model is `foundationModel`.
        ("POST", ["agents", session]) => {
            let mut d = Draft::new(PROVIDER, "invoke_agent");
            d.keep("sessionId", id(session));
            d.model = body.str("foundationModel").map(|m| m.into_owned());
            d.attrs.insert(
                "aws.operation".into(),
                Value::String("InvokeInlineAgent".into()),
            );
            invoke_agent_body(cx, &mut d);
            d
        }
        (m, ["agents", agent, "agentAliases", _, "memories"]) => {
            let mut d = Draft::new(
                PROVIDER,
                if m == "DELETE" {
                    "delete_agent_memory"
                } else {
                    "get_agent_memory"
                },
            );
            d.attrs
                .insert("gen_ai.agent.id".into(), Value::String(id(agent)));
            if let Some(mid) = cx.url.query_param("memoryId") {
                d.keep("memoryId", mid.into_owned());
            }
            d
        }
        ("PUT", ["sessions"]) => Draft::new(PROVIDER, "create_session"),
        ("POST", ["sessions"]) => Draft::new(PROVIDER, "list_sessions"),
        (m, ["sessions", s, rest @ ..]) => {
            let api = match (m, rest) {
                ("PATCH", []) => "end_session",
                ("GET", []) => "get_session",
                ("PUT", []) => "update_session",
                ("DELETE", []) => "delete_session",
                ("PUT", ["invocations"]) => "create_invocation",
                (_, ["invocations"]) => "list_invocations",
                ("PUT", ["invocationSteps"]) => "put_invocation_step",
                (_, ["invocationSteps"]) => "list_invocation_steps",
                (_, ["invocationSteps", _]) => "get_invocation_step",
                _ => "sessions",
            };
            let mut d = Draft::new(PROVIDER, api);
            d.keep("sessionIdentifier", id(s));
            d
        }
        // RetrieveAndGenerate: `sessionId` continues a RAG session (none: Bedrock starts one);
        // a knowledge base is provider-held content, external sources (S3 objects) are not.
        (_, ["retrieveAndGenerate"]) | (_, ["retrieveAndGenerateStream"]) => {
            let mut d = Draft::new(PROVIDER, "retrieve_and_generate");
            if let Some(s) = body.str("sessionId") {
                d.keep("sessionId", s.into_owned());
            }
            let config = body.object("retrieveAndGenerateConfiguration");
            let kb = config
                .as_ref()
                .and_then(|c| c.object("knowledgeBaseConfiguration"));
            if let Some(kb) = kb {
                if let Some(k) = kb.str("knowledgeBaseId") {
                    d.keep("knowledgeBaseId", k.into_owned());
                }
                d.model = kb.str("modelArn").map(|m| m.into_owned());
            } else if let Some(ext) = config
                .as_ref()
                .and_then(|c| c.object("externalSourcesConfiguration"))
            {
                d.model = ext.str("modelArn").map(|m| m.into_owned());
            }
            d
        }
        (_, ["knowledgebases", kb, "retrieve"]) => {
            let mut d = Draft::new(PROVIDER, "retrieve");
            d.keep("knowledgeBaseId", id(kb));
            d.attrs
                .insert("gen_ai.data_source.id".into(), Value::String(id(kb)));
            d
        }
        (_, ["flows", ..]) => Draft::new(PROVIDER, "invoke_flow"),
        (_, segs) => fallback(segs),
    }
}

/// InvokeAgent's non-content members: `memoryId`, `endSession`, `enableTrace`, and the shape of
/// `sessionState` (which members it has, each as `true`: its values are client data and
/// `conversationHistory` is content). `inputText`, `inlineSessionState` files and
/// `promptCreationConfigurations` are never read.
fn invoke_agent_body(cx: &Ctx<'_>, d: &mut Draft) {
    let body = cx.body();
    if let Some(m) = body.str("memoryId") {
        d.keep("memoryId", m.into_owned());
    }
    for k in ["endSession", "enableTrace"] {
        if let Some(b) = body.bool(k) {
            d.keep(k, b);
        }
    }
    if let Some(state) = body
        .object("sessionState")
        .or_else(|| body.object("inlineSessionState"))
    {
        let mut shape = Map::new();
        for k in [
            "sessionAttributes",
            "promptSessionAttributes",
            "conversationHistory",
            "files",
            "knowledgeBaseConfigurations",
            "returnControlInvocationResults",
            "invocationId",
        ] {
            if state.has(k) {
                shape.insert(k.into(), Value::Bool(true));
            }
        }
        d.keep("sessionState", Value::Object(shape));
    }
}

/// bedrock-agentcore.{region}.amazonaws.com
pub(super) fn describe_agentcore(cx: &Ctx<'_>) -> Draft {
    let body = cx.body();
    let m: &str = &cx.method;
    match (m, cx.segments.as_slice()) {
        (_, ["runtimes", arn, op, ..]) if *op == "invocations" || *op == "stopruntimesession" => {
            let api = if *op == "invocations" {
                "invoke_agent_runtime"
            } else {
                "stop_runtime_session"
            };
            let mut d = Draft::new(PROVIDER, api);
            if let Some(s) = cx.header("x-amzn-bedrock-agentcore-runtime-session-id") {
                d.keep("runtimeSessionId", s);
            }
            if let Some(q) = cx.url.query_param("qualifier") {
                d.keep("qualifier", q.into_owned());
            }
            d.attrs
                .insert("gen_ai.agent.id".into(), Value::String(id(arn)));
            d
        }
        (m, ["memories", memory, rest @ ..]) => {
            let api = match (m, rest) {
                ("POST", ["events"]) => "create_event",
                (_, ["retrieve"]) => "retrieve_memory_records",
                (_, ["actor", _, "sessions", _]) => "list_events",
                ("GET", ["actor", _, "sessions", _, "events", _]) => "get_event",
                ("DELETE", ["actor", _, "sessions", _, "events", _]) => "delete_event",
                (_, ["memoryRecords"]) => "list_memory_records",
                (_, ["memoryRecords", "batchCreate"]) => "batch_create_memory_records",
                (_, ["memoryRecords", "batchUpdate"]) => "batch_update_memory_records",
                (_, ["memoryRecords", "batchDelete"]) => "batch_delete_memory_records",
                ("DELETE", ["memoryRecords", _]) => "delete_memory_record",
                ("GET", ["memoryRecord", _]) => "get_memory_record",
                (_, ["actor", _, "sessions"]) => "list_sessions",
                (_, ["actors"]) => "list_actors",
                (_, ["ingest"]) => "ingest_data",
                (_, ["extractionJobs", "start"]) => "start_memory_extraction_job",
                (_, ["extractionJobs"]) => "list_memory_extraction_jobs",
                _ => "memory",
            };
            let mut d = Draft::new(PROVIDER, api);
            d.keep("memoryId", id(memory));
            if let ["actor", actor, rest @ ..] = rest {
                d.keep("actorId", id(actor));
                if let ["sessions", session, ..] = rest {
                    d.keep("sessionId", id(session));
                }
            }
            if let ["memoryRecord" | "memoryRecords", record] = rest {
                if !record.starts_with("batch") {
                    d.keep("memoryRecordId", id(record));
                }
            }
            for k in ["actorId", "sessionId"] {
                if let Some(v) = body.str(k) {
                    d.keep(k, v.into_owned());
                }
            }
            d
        }
        (_, segs) => fallback(segs),
    }
}

/// An operation statemeter has no name for: the first path segment, so it stays visible.
fn fallback(segs: &[&str]) -> Draft {
    Draft::new(
        PROVIDER,
        segs.first()
            .map_or("unknown".to_owned(), |s| s.replace('-', "_")),
    )
}
