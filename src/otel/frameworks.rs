//! What frameworks really emit, read as the GenAI conventions: OpenInference
//! (`openinference.span.kind`, `llm.*`, `session.id`, `tool.name`, `agent.name`),
//! Traceloop / OpenLLMetry (`traceloop.span.kind`, `traceloop.entity.name`, `llm.request.type`,
//! the legacy `gen_ai.usage.*_input_tokens` names), Google ADK (`gcp.vertex.agent.session_id`)
//! and frameworks that name themselves as the provider (`strands-agents`, `gcp.vertex.agent`).
//!
//! [`normalize`] copies each such attribute to its `gen_ai.*` equivalent when the span does not
//! carry that one already, and says which attribute each value came from (the event's
//! `attrs.attributes_from`). Provider names are mapped to the registry's; a framework given as
//! the provider is kept as `attrs.framework` and the provider is inferred from the server
//! address or the model id, else `unknown`.

use serde_json::{Map, Value};

use super::conventions::provider_name;
use super::Span;

/// Attributes read besides `gen_ai.*` (never content: no messages, prompts, documents,
/// invocation parameters or tool arguments).
pub const READ: &[&str] = &[
    "openinference.span.kind",
    "llm.provider",
    "llm.system",
    "llm.model_name",
    "llm.request.model_name",
    "llm.response.model_name",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "llm.token_count.total",
    "llm.token_count.prompt_details.cache_read",
    "llm.request.type",
    "llm.usage.total_tokens",
    "session.id",
    "user.id",
    "tool.name",
    "tool.id",
    "agent.name",
    "crewai.agent.role",
    "traceloop.span.kind",
    "traceloop.entity.name",
    "gcp.vertex.agent.session_id",
];

/// Values frameworks put in `gen_ai.system` / `gen_ai.provider.name` that name themselves, not
/// the model provider.
pub const FRAMEWORKS: &[&str] = &[
    "strands-agents",
    "gcp.vertex.agent",
    "crewai",
    "langchain",
    "langgraph",
    "llama_index",
    "llamaindex",
    "autogen",
    "agno",
    "semantic_kernel",
    "pydantic_ai",
    "openai_agents",
    "smolagents",
];

/// Provider names of OpenInference (`llm.provider`, `llm.system`) and Traceloop, to the
/// registry's.
const PROVIDER_ALIASES: &[(&str, &str)] = &[
    ("mistralai", "mistral_ai"),
    ("mistral", "mistral_ai"),
    ("google", "gcp.gemini"),
    ("vertexai", "gcp.vertex_ai"),
    ("azure", "azure.ai.openai"),
    ("aws", "aws.bedrock"),
    ("bedrock", "aws.bedrock"),
    ("xai", "x_ai"),
];

/// The registry provider of a value given in any of the styles above (lower-cased).
fn provider_of(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    PROVIDER_ALIASES
        .iter()
        .find(|(a, _)| *a == lower)
        .map_or_else(
            || provider_name(&lower).to_owned(),
            |(_, p)| (*p).to_owned(),
        )
}

/// The provider serving a host, for the hosts of the providers' own APIs.
pub fn provider_for_host(host: &str) -> Option<&'static str> {
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let p = match host.as_str() {
        "api.openai.com" => "openai",
        "api.anthropic.com" => "anthropic",
        "generativelanguage.googleapis.com" => "gcp.gemini",
        "api.mistral.ai" => "mistral_ai",
        "api.x.ai" => "x_ai",
        "api.deepseek.com" => "deepseek",
        "api.groq.com" => "groq",
        "api.cohere.com" | "api.cohere.ai" => "cohere",
        "api.perplexity.ai" => "perplexity",
        h if h.ends_with(".openai.azure.com") => "azure.ai.openai",
        h if h.starts_with("bedrock-runtime.") && h.ends_with(".amazonaws.com") => "aws.bedrock",
        h if h.ends_with("aiplatform.googleapis.com") => "gcp.vertex_ai",
        _ => return None,
    };
    Some(p)
}

/// The provider a model id names: Bedrock model and inference-profile ids
/// (`anthropic.claude-...`, `us.anthropic.claude-...:0`), then well-known model families.
pub fn provider_for_model(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase();
    let m = m.strip_prefix("models/").unwrap_or(&m);
    let bedrock_vendor = |s: &str| {
        [
            "anthropic.",
            "amazon.",
            "meta.",
            "mistral.",
            "cohere.",
            "ai21.",
            "deepseek.",
            "qwen.",
            "openai.",
            "writer.",
        ]
        .iter()
        .any(|v| s.starts_with(v))
    };
    let profile = ["us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au."]
        .iter()
        .find_map(|r| m.strip_prefix(r));
    if bedrock_vendor(m) || profile.is_some_and(bedrock_vendor) {
        return Some("aws.bedrock");
    }
    let p = if m.starts_with("gpt-")
        || m.starts_with("chatgpt")
        || m.starts_with("text-embedding-")
        || ["o1", "o3", "o4"]
            .iter()
            .any(|f| m == *f || m.starts_with(&format!("{f}-")))
    {
        "openai"
    } else if m.starts_with("claude") {
        "anthropic"
    } else if m.starts_with("gemini") {
        "gcp.gemini"
    } else if m.starts_with("mistral") || m.starts_with("codestral") || m.starts_with("ministral") {
        "mistral_ai"
    } else if m.starts_with("grok") {
        "x_ai"
    } else if m.starts_with("deepseek") {
        "deepseek"
    } else if m.starts_with("command") {
        "cohere"
    } else {
        return None;
    };
    Some(p)
}

/// The tool kind of a `gen_ai.tool.type` value: the conventions' lower-case names as they are,
/// class names (`FunctionTool`, `AgentTool`, `MCPTool`) without the `Tool` suffix, lower-cased
/// (`LongRunningFunctionTool` is a function).
pub fn tool_kind(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    let base = lower
        .strip_suffix("tool")
        .filter(|b| !b.is_empty())
        .unwrap_or(&lower)
        .trim_end_matches(['_', '-']);
    match base {
        "longrunningfunction" | "func" => "function".into(),
        other => other.into(),
    }
}

/// The default agent name, id and description of `opentelemetry-instrumentation-openai-agents-v2`.
const PLACEHOLDER_AGENT: (&str, &str, &str) =
    ("OpenAI Agent", "agent", "OpenAI Agents instrumentation");

/// The name ending of LlamaIndex's request-building step (`OpenAI._prepare_chat_with_tools`),
/// which OpenInference traces as an `LLM` span although it calls no model.
const PREPARE_SUFFIX: &str = "._prepare_chat_with_tools";

/// The span with the attributes of other conventions copied to their `gen_ai.*` names (those it
/// lacks), and which attribute each copied value came from. `None` when nothing was copied.
pub fn normalize(span: &Span) -> Option<(Span, Map<String, Value>)> {
    let a = &span.attributes;
    let has = |k: &str| a.get(k).is_some_and(|v| !v.is_null() && v != "");
    let mut out = span.clone();
    // The OpenTelemetry contrib OpenAI Agents instrumentation stamps every span with a default
    // agent (name `OpenAI Agent`, id `agent`, "OpenAI Agents instrumentation") unless given
    // others: placeholders, not the agent, which its `invoke_agent` span names.
    let mut placeholder = false;
    if span.str_attr("gen_ai.agent.description") == Some(PLACEHOLDER_AGENT.2) {
        for (key, value) in [
            ("gen_ai.agent.name", PLACEHOLDER_AGENT.0),
            ("gen_ai.agent.id", PLACEHOLDER_AGENT.1),
        ] {
            if span.str_attr(key) == Some(value) {
                out.attributes.remove(key);
                placeholder = true;
            }
        }
    }
    let mut from = Map::new();
    let mut set = |out: &mut Span, to: &str, v: Value, src: &str| {
        if !out
            .attributes
            .get(to)
            .is_some_and(|x| !x.is_null() && x != "")
        {
            out.attributes.insert(to.to_owned(), v);
            from.insert(to.to_owned(), Value::from(src));
        }
    };
    // Operation.
    let op = match span.str_attr("openinference.span.kind") {
        // LlamaIndex builds a request in a method of its own, traced as an LLM span beside the
        // span of the call that sends it: a step, not a model call.
        Some("LLM") if span.name.ends_with(PREPARE_SUFFIX) => {
            Some(("invoke_workflow", "openinference.span.kind"))
        }
        Some("LLM") => Some(("chat", "openinference.span.kind")),
        Some("EMBEDDING") => Some(("embeddings", "openinference.span.kind")),
        Some("TOOL") => Some(("execute_tool", "openinference.span.kind")),
        Some("AGENT") => Some(("invoke_agent", "openinference.span.kind")),
        Some("CHAIN") => Some(("invoke_workflow", "openinference.span.kind")),
        Some("RETRIEVER") => Some(("retrieval", "openinference.span.kind")),
        _ => match span.str_attr("traceloop.span.kind") {
            Some("tool") => Some(("execute_tool", "traceloop.span.kind")),
            Some("agent") => Some(("invoke_agent", "traceloop.span.kind")),
            Some("workflow" | "task") => Some(("invoke_workflow", "traceloop.span.kind")),
            _ => match span.str_attr("llm.request.type") {
                Some("chat") => Some(("chat", "llm.request.type")),
                Some("completion") => Some(("text_completion", "llm.request.type")),
                Some("embedding") => Some(("embeddings", "llm.request.type")),
                _ => None,
            },
        },
    };
    if let Some((op, src)) = op {
        set(&mut out, "gen_ai.operation.name", Value::from(op), src);
    }
    // Provider: OpenInference names, and a framework given as the provider.
    for key in ["llm.provider", "llm.system"] {
        if let Some(v) = span.str_attr(key) {
            set(
                &mut out,
                "gen_ai.provider.name",
                Value::from(provider_of(v)),
                key,
            );
        }
    }
    for (to, key) in [
        ("gen_ai.request.model", "llm.model_name"),
        ("gen_ai.request.model", "llm.request.model_name"),
        ("gen_ai.response.model", "llm.response.model_name"),
        ("gen_ai.usage.input_tokens", "llm.token_count.prompt"),
        ("gen_ai.usage.output_tokens", "llm.token_count.completion"),
        (
            "gen_ai.usage.cache_read.input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
        (
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
        ),
        ("gen_ai.conversation.id", "session.id"),
        ("gen_ai.conversation.id", "gcp.vertex.agent.session_id"),
        ("gen_ai.tool.name", "tool.name"),
        ("gen_ai.tool.call.id", "tool.id"),
        ("gen_ai.agent.name", "agent.name"),
        // CrewAI's own tracing names the agent by a key on its agent span and by its role on
        // the model-call and tool spans beneath.
        ("gen_ai.agent.name", "crewai.agent.role"),
    ] {
        if has(key) {
            set(&mut out, to, a[key].clone(), key);
        }
    }
    if let Some(name) = span.str_attr("traceloop.entity.name") {
        match span.str_attr("traceloop.span.kind") {
            Some("tool") => set(
                &mut out,
                "gen_ai.tool.name",
                Value::from(name),
                "traceloop.entity.name",
            ),
            Some("agent") => set(
                &mut out,
                "gen_ai.agent.name",
                Value::from(name),
                "traceloop.entity.name",
            ),
            _ => {}
        }
    }
    let framework = ["gen_ai.provider.name", "gen_ai.system"]
        .into_iter()
        .find_map(|k| {
            out.str_attr(k)
                .filter(|v| FRAMEWORKS.contains(&v.to_ascii_lowercase().as_str()))
                .map(|v| (k, v.to_owned()))
        });
    if let Some((key, name)) = framework {
        let inferred = out
            .str_attr("server.address")
            .and_then(provider_for_host)
            .map(|p| (p, "server.address"))
            .or_else(|| {
                ["gen_ai.request.model", "gen_ai.response.model"]
                    .into_iter()
                    .find_map(|k| out.str_attr(k).and_then(provider_for_model).map(|p| (p, k)))
            });
        out.attributes.remove("gen_ai.system");
        let (provider, src) = inferred.unwrap_or(("unknown", key));
        out.attributes
            .insert("gen_ai.provider.name".into(), Value::from(provider));
        from.insert("gen_ai.provider.name".into(), Value::from(src));
        from.insert("framework".into(), Value::from(name));
    }
    (placeholder || !from.is_empty()).then_some((out, from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_models_and_tool_kinds() {
        assert_eq!(
            provider_for_model("us.anthropic.claude-sonnet-4-20250514-v1:0"),
            Some("aws.bedrock")
        );
        assert_eq!(provider_for_model("gpt-4.1-nano"), Some("openai"));
        assert_eq!(provider_for_model("gemini-2.0-flash"), Some("gcp.gemini"));
        assert_eq!(provider_for_model("o3-mini"), Some("openai"));
        assert_eq!(provider_for_model("llama3"), None);
        assert_eq!(
            provider_for_host("contoso.openai.azure.com:443"),
            Some("azure.ai.openai")
        );
        assert_eq!(provider_of("MistralAI"), "mistral_ai");
        assert_eq!(provider_of("Anthropic"), "anthropic");
        for (t, k) in [
            ("FunctionTool", "function"),
            ("function", "function"),
            ("AgentTool", "agent"),
            ("MCPTool", "mcp"),
            ("LongRunningFunctionTool", "function"),
            ("extension", "extension"),
        ] {
            assert_eq!(tool_kind(t), k, "{t}");
        }
    }

    #[test]
    fn llamaindex_request_preparation_is_not_a_model_call() {
        let llm = |name: &str| Span {
            name: name.into(),
            attributes: serde_json::json!({
                "openinference.span.kind": "LLM",
                "llm.provider": "openai",
                "llm.model_name": "gpt-4.1-mini",
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            ..Span::default()
        };
        let op = |s: &Span| {
            normalize(s).and_then(|(n, _)| n.str_attr("gen_ai.operation.name").map(String::from))
        };
        assert_eq!(
            op(&llm("OpenAI._prepare_chat_with_tools")).as_deref(),
            Some("invoke_workflow")
        );
        assert_eq!(op(&llm("OpenAI.astream_chat")).as_deref(), Some("chat"));
    }

    #[test]
    fn crewai_role_names_the_agent_of_a_span_without_one() {
        let span = |attrs: serde_json::Value| Span {
            attributes: attrs.as_object().cloned().unwrap_or_default(),
            ..Span::default()
        };
        let agent = |s: &Span| {
            normalize(s).map(|(n, from)| {
                (
                    n.str_attr("gen_ai.agent.name").map(String::from),
                    from.get("gen_ai.agent.name").cloned(),
                )
            })
        };
        let call = span(serde_json::json!({
            "gen_ai.provider.name": "openai",
            "crewai.agent.role": "weather_agent",
        }));
        assert_eq!(
            agent(&call),
            Some((
                Some("weather_agent".into()),
                Some(Value::from("crewai.agent.role"))
            ))
        );
        let keyed = span(serde_json::json!({
            "gen_ai.agent.name": "3b4d5df135d777973c9f99c1aa58f3f6",
            "crewai.agent.role": "weather_agent",
        }));
        assert_eq!(agent(&keyed), None); // a span's own gen_ai.agent.name is kept
        let placeholder = span(serde_json::json!({
            "gen_ai.operation.name": "chat",
            "gen_ai.agent.name": "OpenAI Agent",
            "gen_ai.agent.description": "OpenAI Agents instrumentation",
        }));
        assert_eq!(agent(&placeholder), Some((None, None)));
    }
}
