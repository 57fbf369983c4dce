//! The GenAI semantic conventions as statemeter reads them: which attributes are read at all
//! (never prompt or completion content), which operation becomes which event, the API an
//! inference span used, the old provider names, and attribute value coercion. Pure
//! functions; [`super::genai::Mapper`] applies them.

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
        Some("invoke_agent" | "create_agent") if span.kind == KIND_CLIENT => Some("model_call"),
        Some("execute_tool") => Some("tool_call"),
        Some(op) if memory_op(op).is_some() => Some("state_op"),
        Some(_) => None,
        None if span.str_attr("mcp.method.name") == Some("tools/call") => Some("tool_call"),
        None => None,
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

/// The API of an inference span: the response id's shape when it tells, else the provider's
/// usual API for the operation. Returns the API and what it was inferred from.
pub fn infer_api(
    op: &str,
    provider: &str,
    response_id: Option<&str>,
) -> (&'static str, &'static str) {
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

/// A non-negative integer attribute (int, integral double or decimal string); absent is 0.
pub fn count(v: Option<&Value>, field: &str) -> Result<u64> {
    let bad = || Error::validation(field, "must be a non-negative integer");
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|x| *x >= 0.0 && x.fract() == 0.0 && *x < 1.8e19)
                    .map(|x| x as u64)
            })
            .ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
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
