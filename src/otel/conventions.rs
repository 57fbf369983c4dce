//! The GenAI semantic conventions as statemeter reads them: which attributes are read at all
//! (never prompt or completion content), which operation becomes which event (and when a span
//! without an operation is still a model call), the API an inference span used, the old
//! provider names and the provider ids that name an API, the request parameters
//! instrumentations record, and attribute value coercion. Pure functions;
//! [`super::genai::Mapper`] applies them.

use serde_json::{Map, Value};

use super::{Span, KIND_CLIENT};
use crate::error::{Error, Result};

/// Old `gen_ai.system` values and their `gen_ai.provider.name` equivalents.
const OLD_PROVIDER_NAMES: &[(&str, &str)] = &[
    ("az.ai.inference", "azure.ai.inference"),
    ("az.ai.openai", "azure.ai.openai"),
    ("vertex_ai", "gcp.vertex_ai"),
    ("gemini", "gcp.gemini"),
    ("xai", "x_ai"),
];

/// The `gen_ai.provider.name` values of the conventions' registry: taken as they are.
const PROVIDER_NAMES: &[&str] = &[
    "anthropic",
    "aws.bedrock",
    "azure.ai.inference",
    "azure.ai.openai",
    "cohere",
    "deepseek",
    "gcp.gemini",
    "gcp.gen_ai",
    "gcp.vertex_ai",
    "groq",
    "ibm.watsonx.ai",
    "mistral_ai",
    "openai",
    "perplexity",
    "x_ai",
];

/// Provider ids of the form `{provider}.{api}`, as the Vercel AI SDK names its model providers
/// (`openai.responses`, `azure.chat`, `anthropic.messages`, `google.generative-ai`,
/// `mistral.chat`, `xai.chat`) and copies into `gen_ai.system`: the part before the first dot
/// and the `gen_ai.provider.name` it stands for. `google.vertex.*` is Vertex AI.
const SDK_PROVIDER_PREFIXES: &[(&str, &str)] = &[
    ("openai", "openai"),
    ("azure", "azure.ai.openai"),
    ("azure-openai", "azure.ai.openai"),
    ("anthropic", "anthropic"),
    ("google", "gcp.gemini"),
    ("mistral", "mistral_ai"),
    ("groq", "groq"),
    ("xai", "x_ai"),
    ("deepseek", "deepseek"),
    ("cohere", "cohere"),
    ("perplexity", "perplexity"),
];

/// Token usage attributes, current and pre-1.37 names.
const USAGE: &[&str] = &[
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
];

/// Request parameters instrumentations record as span attributes (the OpenAI instrumentations
/// of OpenLLMetry and others, for the Responses API), and the provider's own parameter name
/// each one is. The classification rules read the provider's names.
pub const REQUEST_ATTRIBUTES: &[(&str, &str)] = &[
    (
        "gen_ai.openai.request.previous_response_id",
        "previous_response_id",
    ),
    ("gen_ai.openai.request.conversation_id", "conversation"),
    ("gen_ai.openai.request.store", "store"),
    ("gen_ai.openai.request.background", "background"),
];

/// Content attributes (prompts, completions, system instructions, tool definitions, arguments
/// and results): never read, so never stored.
const CONTENT: &[&str] = &[
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.tool.description",
];

/// Whether the mapping reads an attribute of a live span: GenAI, MCP and statemeter
/// attributes, the server address and the error type; never content ([`CONTENT`] and the
/// older `gen_ai.prompt*` / `gen_ai.completion*` attributes). A span processor keeps only
/// these, so content is not even copied out of the SDK's span.
pub fn reads_attribute(key: &str) -> bool {
    if let Some(rest) = key.strip_prefix("gen_ai.") {
        return !CONTENT.contains(&key)
            && !rest.starts_with("prompt")
            && !rest.starts_with("completion");
    }
    key.starts_with("mcp.")
        || super::frameworks::READ.contains(&key)
        || key.starts_with("statemeter.")
        || key == "server.address"
        || key == "error.type"
}

/// The `gen_ai.provider.name` of a provider value in either attribute style.
pub fn provider_name(value: &str) -> &str {
    OLD_PROVIDER_NAMES
        .iter()
        .find(|(old, _)| *old == value)
        .map_or(value, |(_, new)| new)
}

/// A provider id that names the API after the provider (`openai.responses`,
/// `anthropic.messages`, `google.vertex.chat`, `amazon-bedrock`; see [`SDK_PROVIDER_PREFIXES`]):
/// its `gen_ai.provider.name` and, when the id names one statemeter knows, the API. `None` for
/// the conventions' own names, the old names of [`provider_name`] and ids not listed.
pub fn sdk_provider_id(value: &str) -> Option<(&'static str, Option<&'static str>)> {
    if PROVIDER_NAMES.contains(&value) || OLD_PROVIDER_NAMES.iter().any(|(o, _)| *o == value) {
        return None;
    }
    let lower = value.to_ascii_lowercase();
    if lower == "amazon-bedrock" {
        return Some(("aws.bedrock", Some("converse")));
    }
    let (provider, rest) = match lower.strip_prefix("google.vertex.") {
        Some(rest) => ("gcp.vertex_ai", rest),
        None => {
            let (head, rest) = lower.split_once('.')?;
            let (_, p) = SDK_PROVIDER_PREFIXES.iter().find(|(h, _)| *h == head)?;
            (*p, rest)
        }
    };
    let api = match rest.rsplit('.').next().unwrap_or(rest) {
        "responses" => Some("responses"),
        "chat" if provider.starts_with("gcp.") => Some("generate_content"),
        "chat" => Some("chat.completions"),
        "messages" => Some("messages"),
        "completion" => Some("completions"),
        "embedding" => Some("embeddings"),
        "generative-ai" => Some("generate_content"),
        _ => None,
    };
    Some((provider, api))
}

/// Whether a span that names no operation statemeter records is still a model call: it carries
/// a model name (`gen_ai.request.model` or `gen_ai.response.model`) or token usage, and its
/// `gen_ai.operation.name` is absent or one statemeter does not know (not an agent, workflow,
/// tool or memory operation). Exports of the Vercel AI SDK look like that (a provider, a model,
/// usage, no operation), and so do instrumentations that leave out a field. Returns the
/// attributes that showed it, for the event's evidence (`attrs.inferred.from`).
pub fn inferred_model_call(span: &Span) -> Option<Vec<&'static str>> {
    if span.attributes.contains_key("statemeter.kind") || kind_of(span).is_some() {
        return None;
    }
    let op = span.str_attr("gen_ai.operation.name");
    if op.is_some_and(is_agent_operation) {
        return None;
    }
    let model = ["gen_ai.request.model", "gen_ai.response.model"]
        .into_iter()
        .find(|k| span.str_attr(k).is_some());
    let usage: Vec<&'static str> = USAGE
        .iter()
        .copied()
        .filter(|k| span.attributes.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if model.is_none() && usage.is_empty() {
        return None;
    }
    let provider = ["gen_ai.provider.name", "gen_ai.system"]
        .into_iter()
        .find(|k| span.str_attr(k).is_some());
    let op = op.map(|_| "gen_ai.operation.name");
    Some(
        [op, provider, model]
            .into_iter()
            .flatten()
            .chain(usage)
            .collect(),
    )
}

/// Whether a span carries token usage (current or pre-1.37 names).
pub fn has_usage(span: &Span) -> bool {
    USAGE
        .iter()
        .any(|k| span.attributes.get(*k).is_some_and(|v| !v.is_null()))
}

/// Operations that name an agent or a workflow (the spans beneath them are its events).
pub fn is_agent_operation(op: &str) -> bool {
    matches!(
        op,
        "invoke_agent" | "create_agent" | "invoke_workflow" | "plan"
    )
}

/// A request flag given as a boolean, or as the text `true` / `false`.
pub fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Whether a `gen_ai.conversation.id` has the shape of an OpenAI Conversations API id
/// (`conv_` and a long opaque id, e.g. `conv_689667905b048191b4740501625afd94...`), rather than
/// an application's own thread or session id.
pub fn is_provider_conversation_id(id: &str) -> bool {
    id.strip_prefix("conv_")
        .is_some_and(|rest| rest.len() >= 24 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Which event a span becomes, from the attributes it has (available at start).
pub fn kind_of(span: &Span) -> Option<&'static str> {
    if let Some(Value::String(k)) = span.attributes.get("statemeter.kind") {
        return [
            "session_start",
            "session_end",
            "model_call",
            "tool_call",
            "state_op",
        ]
        .into_iter()
        .find(|x| x == k);
    }
    match span.str_attr("gen_ai.operation.name") {
        Some("chat" | "generate_content" | "text_completion" | "embeddings") => Some("model_call"),
        Some("invoke_agent" | "create_agent") if remote_agent(span) => Some("model_call"),
        Some("execute_tool") => Some("tool_call"),
        Some(op) if memory_op(op).is_some() => Some("state_op"),
        Some(_) => None,
        None if span.str_attr("mcp.method.name") == Some("tools/call") => Some("tool_call"),
        None => None,
    }
}

/// Whether an `invoke_agent` / `create_agent` span calls a remote agent service (Bedrock
/// Agents, Assistants): a CLIENT span that names a model provider of the registry (or a
/// provider id standing for one) or the server it calls (`server.address`). Some
/// instrumentations mark in-process agents CLIENT too; naming no provider or only a framework
/// (`strands-agents`), such a span is the agent of the spans beneath it, not a model call.
pub fn remote_agent(span: &Span) -> bool {
    if span.kind != KIND_CLIENT {
        return false;
    }
    if span.str_attr("server.address").is_some() {
        return true;
    }
    ["gen_ai.provider.name", "gen_ai.system"]
        .into_iter()
        .filter_map(|k| span.str_attr(k))
        .any(|p| PROVIDER_NAMES.contains(&provider_name(p)) || sdk_provider_id(p).is_some())
}

/// Why a span that [`kind_of`] and [`inferred_model_call`] leave out is not an event: the
/// reason `meter.stats()["spans"]["skipped"]` counts it under.
pub fn skip_reason(span: &Span) -> &'static str {
    if span.attributes.contains_key("statemeter.kind") {
        return "unknown_statemeter_kind";
    }
    match span.str_attr("gen_ai.operation.name") {
        Some(op) if is_agent_operation(op) => "agent_or_workflow",
        Some(_) => "unsupported_operation",
        None if span.attributes.keys().any(|k| k.starts_with("gen_ai.")) => "incomplete_genai",
        None => "not_genai",
    }
}

/// The `state_op` op of a GenAI memory (or retrieval) operation.
pub fn memory_op(op: &str) -> Option<&'static str> {
    match op {
        "search_memory" | "retrieval" => Some("read"),
        "create_memory" | "update_memory" | "upsert_memory" | "create_memory_store" => {
            Some("write")
        }
        "delete_memory" | "delete_memory_store" => Some("delete"),
        _ => None,
    }
}

/// The API of an inference span: the response id's shape when it tells, else `named` (an API
/// the span names otherwise, and the attribute that named it), else an operation the
/// conventions do not list (its own name), else the provider's usual API for the operation.
/// Returns the API and what it was inferred from.
pub fn infer_api<'a>(
    op: &'a str,
    provider: &str,
    response_id: Option<&str>,
    named: Option<(&'static str, &'static str)>,
) -> (&'a str, &'static str) {
    match op {
        "text_completion" => return ("completions", "gen_ai.operation.name"),
        "embeddings" => return ("embeddings", "gen_ai.operation.name"),
        "invoke_agent" => return ("invoke_agent", "gen_ai.operation.name"),
        "create_agent" => return ("create_agent", "gen_ai.operation.name"),
        _ => {}
    }
    match response_id {
        Some(id) if id.starts_with("resp_") => return ("responses", "gen_ai.response.id"),
        Some(id) if id.starts_with("chatcmpl-") => {
            return ("chat.completions", "gen_ai.response.id")
        }
        Some(id) if id.starts_with("msg_") && provider == "anthropic" => {
            return ("messages", "gen_ai.response.id")
        }
        _ => {}
    }
    if let Some(named) = named {
        return named;
    }
    if !matches!(op, "chat" | "generate_content") {
        // An operation the conventions do not list (`image_generation`): its own name.
        return (op, "gen_ai.operation.name");
    }
    let api = match provider {
        "openai" | "azure.ai.openai" | "azure.ai.inference" => "chat.completions",
        "anthropic" => "messages",
        "aws.bedrock" => "converse",
        p if p.starts_with("gcp.") => "generate_content",
        _ if op == "generate_content" => "generate_content",
        _ => "chat",
    };
    (api, "gen_ai.provider.name")
}

/// `statemeter.event.id` when exported by statemeter, else `otel:{trace}:{span}` (so that
/// importing the same spans twice records them once).
pub fn event_id(span: &Span) -> String {
    match span.str_attr("statemeter.event.id") {
        Some(id) => id.to_owned(),
        None => format!("otel:{}:{}", span.trace_id, span.span_id),
    }
}

/// Sets `key` to the string `v` when there is one.
pub fn put(ev: &mut Map<String, Value>, key: &str, v: Option<String>) {
    if let Some(v) = v {
        ev.insert(key.to_owned(), Value::String(v));
    }
}

/// A non-negative integer attribute (int, integral double or decimal string) within the signed
/// 64-bit range; absent is 0.
pub fn count(v: Option<&Value>, field: &str) -> Result<u64> {
    let bad = || Error::validation(field, "must be a non-negative integer");
    let n = match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|x| *x >= 0.0 && x.fract() == 0.0 && *x < 1.8e19)
                    .map(|x| x as u64)
            })
            .ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| {
            let digits = s.trim();
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                Error::validation(field, format!("{digits} is out of the signed 64-bit range"))
            } else {
                bad()
            }
        }),
        Some(_) => Err(bad()),
    }?;
    crate::event::check_count(field, Some(n))?;
    Ok(n)
}

/// A JSON object given as text (the `statemeter.request` / `statemeter.attrs` attributes).
pub fn json_object(text: &str, field: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::validation(field, "must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_attributes_are_never_read() {
        for key in CONTENT {
            assert!(!reads_attribute(key), "{key}");
        }
        for key in [
            "gen_ai.prompt",
            "gen_ai.prompt.0.content",
            "gen_ai.completion.0.content",
        ] {
            assert!(!reads_attribute(key), "{key}");
        }
        for key in [
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.request.model",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "gen_ai.usage.completion_tokens",
            "gen_ai.tool.name",
            "gen_ai.conversation.id",
            "mcp.session.id",
            "statemeter.request",
            "server.address",
            "error.type",
        ] {
            assert!(reads_attribute(key), "{key}");
        }
        for key in ["http.url", "user.prompt", "gen_ai", "server.port", ""] {
            assert!(!reads_attribute(key), "{key}");
        }
    }
}
