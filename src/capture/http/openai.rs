//! The OpenAI API shape: api.openai.com, Azure OpenAI / Microsoft Foundry, Bedrock's
//! OpenAI-compatible paths (bedrock-runtime `/openai/v1`, bedrock-mantle) and gateways that speak
//! it. One route table maps the path after the version prefix to an `api` value of the catalogue;
//! one keep-list per api says which body members are copied.

use serde_json::{json, Value};

use super::body::{raw_str, Body};
use super::url::decode;
use super::{Ctx, Draft};

/// Scalar body members kept as they are, per api (everything else in the body is ignored).
const KEEP_CHAT: &[&str] = &[
    "store",
    "stream",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "service_tier",
];
const KEEP_RESPONSES: &[&str] = &[
    "store",
    "stream",
    "background",
    "previous_response_id",
    "context_management",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "service_tier",
    "agent_session_id",
];
const KEEP_RUNS: &[&str] = &["assistant_id", "stream"];
const KEEP_SESSIONS: &[&str] = &["agent_session_id", "stream"];
const KEEP_OTHER: &[&str] = &["stream"];

/// A matched route: the catalogue's `api` and the ids the path carries.
struct Route {
    api: String,
    ids: Vec<(&'static str, String)>,
}

fn route(method: &str, rel: &[&str]) -> Option<Route> {
    let id = |s: &str| decode(s).into_owned();
    let plain = |api: &str| Route {
        api: api.to_owned(),
        ids: Vec::new(),
    };
    let get = method.eq_ignore_ascii_case("GET");
    let delete = method.eq_ignore_ascii_case("DELETE");
    Some(match rel {
        ["chat", "completions", ..] => plain("chat.completions"),
        ["completions"] => plain("completions"),
        ["embeddings"] => plain("embeddings"),
        ["responses"] => plain("responses"),
        ["responses", "input_tokens"] => plain("responses.input_tokens"),
        ["responses", "compact"] => plain("responses.compact"),
        ["responses", r, rest @ ..] => {
            let api = match rest {
                [] if get => "responses.retrieve",
                [] if delete => "responses.delete",
                ["cancel"] => "responses.cancel",
                ["input_items"] => "responses.input_items",
                _ => "responses.retrieve",
            };
            Route {
                api: api.to_owned(),
                ids: vec![("response_id", id(r))],
            }
        }
        ["conversations", c, ..] => Route {
            api: "conversations".into(),
            ids: vec![("conversation_id", id(c))],
        },
        ["conversations"] => plain("conversations"),
        ["assistants", ..] => plain("assistants"),
        ["threads"] => plain("threads"),
        ["threads", "runs"] => plain("threads.runs"),
        ["threads", t, rest @ ..] => {
            let api = match rest.first() {
                Some(&"runs") => "threads.runs",
                Some(&"messages") => "threads.messages",
                _ => "threads",
            };
            Route {
                api: api.into(),
                ids: vec![("thread_id", id(t))],
            }
        }
        ["realtime", ..] => plain("realtime"),
        ["containers", ..] => plain("containers"),
        ["vector_stores", ..] => plain("vector_stores"),
        ["files", ..] | ["uploads", ..] => plain("files"),
        ["agents", "sessions", ..] => plain("agents.sessions"),
        // Foundry hosted agents: POST /agents/{name}/endpoint/sessions
        ["agents", _name, "endpoint", "sessions", ..] => plain("agents.sessions"),
        _ => return None,
    })
}

/// The path after the API version: `/v1/...`, `/openai/v1/...`, `/openai/...`,
/// `/openai/deployments/{d}/...`, `/api/projects/{p}/...` (Foundry). Also the deployment name.
fn relative<'s, 'a>(segs: &'s [&'a str]) -> (&'s [&'a str], Option<&'a str>) {
    match segs {
        ["api", "projects", _, rest @ ..] => relative(rest),
        ["openai", "deployments", d, rest @ ..] => (rest, Some(d)),
        ["openai", "v1", rest @ ..] | ["v1", rest @ ..] => (rest, None),
        ["openai", rest @ ..] => (rest, None),
        _ => match segs.iter().position(|s| *s == "v1") {
            Some(i) => (&segs[i + 1..], None),
            None => (segs, None),
        },
    }
}

/// Whether a path on an unknown host has the OpenAI shape (a known route after `v1`).
pub(super) fn is_shape(segs: &[&str]) -> bool {
    let (rel, _) = relative(segs);
    rel.len() < segs.len() && route("POST", rel).is_some()
}

/// api.openai.com (and OpenAI-shaped gateways).
pub(super) fn describe(cx: &Ctx<'_>, provider: &'static str) -> Draft {
    let (rel, deployment) = relative(&cx.segments);
    describe_rel(cx, provider, rel, deployment)
}

/// Azure OpenAI / Foundry. Anthropic models on Foundry (`/anthropic/v1/messages`) keep
/// provider `anthropic` (the venue stays Azure); the model-inference route `/models/...` is
/// `azure.ai.inference`.
pub(super) fn describe_azure(cx: &Ctx<'_>) -> Draft {
    let segs: &[&str] = match cx.segments.as_slice() {
        ["api", "projects", _, rest @ ..] => rest,
        s => s,
    };
    if segs.first() == Some(&"anthropic") {
        return super::anthropic::describe_rel(cx, "anthropic", &segs[1..]);
    }
    if segs.first() == Some(&"models") {
        let mut d = describe_rel(cx, "azure.ai.inference", &segs[1..], None);
        if d.api == "unknown" {
            d.api = segs[1..].join(".");
        }
        return d;
    }
    let (rel, deployment) = relative(&cx.segments);
    let mut d = describe_rel(cx, "azure.ai.openai", rel, deployment);
    if let Some(v) = cx.url.query_param("api-version") {
        d.keep("api-version", v.into_owned());
    }
    if let Some(k) = cx.header("x-ms-user-isolation-key") {
        d.keep("x-ms-user-isolation-key", k);
    }
    d
}

/// Reads the route `rel` of the OpenAI shape for `provider`.
pub(super) fn describe_rel(
    cx: &Ctx<'_>,
    provider: &'static str,
    rel: &[&str],
    deployment: Option<&str>,
) -> Draft {
    let Some(route) = route(&cx.method, rel) else {
        let mut d = Draft::new(
            provider,
            if rel.is_empty() {
                "unknown".to_owned()
            } else {
                rel[0].to_owned()
            },
        );
        d.model = cx.body().str("model").map(|m| m.into_owned());
        return d;
    };
    let mut d = Draft::new(provider, route.api);
    for (k, v) in route.ids {
        d.keep(k, v);
    }
    let body = cx.body();
    d.model = body
        .str("model")
        .map(|m| m.into_owned())
        .or_else(|| deployment.map(|s| decode(s).into_owned()));
    let keep = match d.api.as_str() {
        "chat.completions" => KEEP_CHAT,
        "responses" => KEEP_RESPONSES,
        "threads.runs" => KEEP_RUNS,
        "agents.sessions" => KEEP_SESSIONS,
        _ => KEEP_OTHER,
    };
    for k in keep {
        if let Some(v) = body.value(k) {
            d.keep(k, v);
        }
    }
    match d.api.as_str() {
        "responses" => responses_extras(body, &mut d),
        "realtime" => {
            let session_model = body
                .object("session")
                .and_then(|s| s.str("model").map(|m| m.into_owned()));
            d.model = d
                .model
                .or(session_model)
                .or_else(|| cx.url.query_param("model").map(|m| m.into_owned()))
                .or_else(|| cx.url.query_param("deployment").map(|m| m.into_owned()));
        }
        _ => {}
    }
    if let Some(beta) = cx.header("openai-beta") {
        d.keep("OpenAI-Beta", beta);
    }
    d
}

/// Responses: `conversation` (an id string, or an object of which only `id` is kept) and the
/// state its tools reference: a `code_interpreter` tool's `container` when it names an existing
/// container (a string id; `{"type": "auto"}` asks for a new one and is not kept), and the union
/// of the `file_search` tools' `vector_store_ids`.
fn responses_extras(body: &Body<'_>, d: &mut Draft) {
    if let Some(raw) = body.raw("conversation") {
        if let Some(id) = raw_str(raw) {
            d.keep("conversation", id.into_owned());
        } else if let Some(id) =
            Body::parse(raw.get().as_bytes()).and_then(|c| c.str("id").map(|s| s.into_owned()))
        {
            d.keep("conversation", json!({ "id": id }));
        }
    }
    let Some(tools) = body.array("tools") else {
        return;
    };
    let mut stores: Vec<Value> = Vec::new();
    for t in tools {
        let Some(tool) = Body::parse(t.get().as_bytes()) else {
            continue;
        };
        match tool.str("type").as_deref() {
            Some("code_interpreter") => {
                if let Some(c) = tool.str("container") {
                    d.keep("container", c.into_owned());
                }
            }
            Some("file_search") => {
                if let Some(Value::Array(ids)) = tool.value("vector_store_ids") {
                    for id in ids.into_iter().filter(Value::is_string) {
                        if !stores.contains(&id) {
                            stores.push(id);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !stores.is_empty() {
        d.keep("vector_store_ids", Value::Array(stores));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |m: &str, p: &str| {
            let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
            route(m, relative(&segs).0).map(|r| r.api)
        };
        assert_eq!(
            r("POST", "/v1/chat/completions").as_deref(),
            Some("chat.completions")
        );
        assert_eq!(
            r("POST", "/openai/deployments/gpt/chat/completions").as_deref(),
            Some("chat.completions")
        );
        assert_eq!(
            r("POST", "/openai/v1/responses").as_deref(),
            Some("responses")
        );
        assert_eq!(
            r("GET", "/v1/responses/resp_1").as_deref(),
            Some("responses.retrieve")
        );
        assert_eq!(
            r("DELETE", "/v1/responses/resp_1").as_deref(),
            Some("responses.delete")
        );
        assert_eq!(
            r("GET", "/v1/responses/resp_1/input_items").as_deref(),
            Some("responses.input_items")
        );
        assert_eq!(
            r("POST", "/v1/threads/thread_1/runs").as_deref(),
            Some("threads.runs")
        );
        assert_eq!(
            r("POST", "/v1/threads/runs").as_deref(),
            Some("threads.runs")
        );
        assert_eq!(
            r("POST", "/v1/threads/t/messages").as_deref(),
            Some("threads.messages")
        );
        assert_eq!(
            r("POST", "/api/projects/p/openai/v1/responses").as_deref(),
            Some("responses")
        );
        assert_eq!(
            r("POST", "/api/projects/p/agents/bot/endpoint/sessions").as_deref(),
            Some("agents.sessions")
        );
        assert_eq!(
            r("POST", "/v1/realtime/client_secrets").as_deref(),
            Some("realtime")
        );
        assert_eq!(r("POST", "/v1/images/generations"), None);
    }

    #[test]
    fn shape_needs_a_version_prefix_and_a_known_route() {
        assert!(is_shape(&["v1", "chat", "completions"]));
        assert!(is_shape(&["proxy", "v1", "responses"]));
        assert!(!is_shape(&["chat", "completions"]));
        assert!(!is_shape(&["v1", "images", "generations"]));
    }
}
