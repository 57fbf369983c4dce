//! The OpenAI API shape: api.openai.com, Azure OpenAI / Microsoft Foundry (also the classic
//! agents hosts `*.api.azureml.ms`), Bedrock's OpenAI-compatible paths (bedrock-runtime
//! `/openai/v1`, bedrock-mantle), OCI Generative AI's `/openai/v1`, the third-party operators
//! that speak it (Groq, Mistral, OpenRouter, ...) and gateways. One route table maps the path
//! after the version prefix to an `api` value of the catalogue; one keep-list per api says which
//! body members are copied.

use serde_json::{json, Map, Value};

use super::body::{raw_str, Body};
use super::refs::{self, push_unique};
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
const KEEP_SESSIONS: &[&str] = &["agent_session_id", "agent_id", "stream"];
const KEEP_OTHER: &[&str] = &["stream"];

/// A matched route: the catalogue's `api` and the ids the path carries.
struct Route {
    api: &'static str,
    ids: Vec<(&'static str, String)>,
}

fn route(method: &str, rel: &[&str]) -> Option<Route> {
    let id = |s: &str| decode(s).into_owned();
    let plain = |api: &'static str| Route {
        api,
        ids: Vec::new(),
    };
    let with = |api: &'static str, key: &'static str, v: &str| Route {
        api,
        ids: vec![(key, id(v))],
    };
    let get = method.eq_ignore_ascii_case("GET");
    let delete = method.eq_ignore_ascii_case("DELETE");
    Some(match rel {
        ["chat", "completions", ..] => plain("chat.completions"),
        ["completions"] => plain("completions"),
        ["embeddings"] => plain("embeddings"),
        ["decisions", ..] => plain("decisions"),
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
            with(api, "response_id", r)
        }
        ["conversations", c, ..] => with("conversations", "conversation_id", c),
        ["conversations"] => plain("conversations"),
        ["assistants", a, ..] => with("assistants", "assistant_id", a),
        ["assistants"] => plain("assistants"),
        ["threads"] => plain("threads"),
        ["threads", "runs"] => plain("threads.runs"),
        ["threads", t, rest @ ..] => {
            let api = match rest.first() {
                Some(&"runs") => "threads.runs",
                Some(&"messages") => "threads.messages",
                _ => "threads",
            };
            with(api, "thread_id", t)
        }
        ["realtime", ..] => plain("realtime"),
        ["containers", c, ..] => with("containers", "container_id", c),
        ["containers"] => plain("containers"),
        ["vector_stores", v, ..] => with("vector_stores", "vector_store_id", v),
        ["vector_stores"] => plain("vector_stores"),
        ["files", f, ..] => with("files", "file_id", f),
        ["files"] | ["uploads", ..] => plain("files"),
        // Agents API (beta): sessions and what they hold, environments, vaults, definitions.
        ["agents", "sessions"] => plain("agents.sessions"),
        ["agents", "sessions", s, rest @ ..] => {
            let api = match rest.first() {
                Some(&"turns") => "agents.sessions.turns",
                Some(&"items") => "agents.sessions.items",
                Some(&"events") => "agents.sessions.events",
                Some(&"subagents") => "agents.sessions.subagents",
                Some(&"artifacts") => "agents.sessions.artifacts",
                _ => "agents.sessions",
            };
            with(api, "session_id", s)
        }
        ["agents", "environments", "templates", rest @ ..] => match rest.first() {
            Some(t) => with(
                "agents.environments.templates",
                "environment_template_id",
                t,
            ),
            None => plain("agents.environments.templates"),
        },
        ["agents", "environments", e, ..] => with("agents.environments", "environment_id", e),
        ["agents", "environments"] => plain("agents.environments"),
        ["agents", "vaults", ..] => plain("agents.vaults"),
        // Foundry hosted agents, invoked through a protocol:
        // /agents/{name}/endpoint/protocols/openai/responses (a Responses call) or
        // /agents/{name}/endpoint/protocols/invocations (the agent's own payload).
        ["agents", name, "endpoint", "protocols", rest @ ..] => match rest {
            [.., "responses"] => with("responses", "agent_id", name),
            _ => with("invocations", "agent_id", name),
        },
        // Foundry hosted agents: /agents/{name}/endpoint/sessions[/{id}]
        ["agents", name, "endpoint", "sessions", rest @ ..] => {
            let mut r = with("agents.sessions", "agent_id", name);
            if let Some(s) = rest.first() {
                r.ids.push(("session_id", id(s)));
            }
            r
        }
        ["agents", a, "versions", ..] => with("agents.versions", "agent_id", a),
        ["agents", a, ..] => with("agents", "agent_id", a),
        ["agents"] => plain("agents"),
        // Foundry memory stores (`/memory_stores/{name}:search_memories`, ...).
        ["memory_stores", m, ..] => with(
            "memory_stores",
            "memory_store_id",
            m.split(':').next().unwrap_or(m),
        ),
        ["memory_stores"] => plain("memory_stores"),
        _ => return None,
    })
}

/// Whether a path segment is an API version (`v1`, `v2`, `v4`, `v1beta`, `v1.0`).
pub(super) fn is_version(seg: &str) -> bool {
    seg.strip_prefix('v')
        .is_some_and(|rest| rest.bytes().next().is_some_and(|b| b.is_ascii_digit()))
}

/// The path after the API version: `/v1/...`, `/openai/v1/...`, `/openai/...`,
/// `/openai/deployments/{d}/...`, `/api/projects/{p}/...` (Foundry),
/// `/agents/v1.0/subscriptions/{s}/resourceGroups/{g}/providers/{p}/workspaces/{w}/...` (Azure AI
/// Foundry classic agents on `*.api.azureml.ms`). Also the deployment name.
fn relative<'s, 'a>(segs: &'s [&'a str]) -> (&'s [&'a str], Option<&'a str>) {
    match segs {
        ["api", "projects", _, rest @ ..] => relative(rest),
        ["agents", v, "subscriptions", _, "resourceGroups", _, "providers", _, "workspaces", _, rest @ ..]
            if is_version(v) =>
        {
            (rest, None)
        }
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

/// The host of a named operator (Groq, DeepSeek, OpenRouter, OCI, a host the user mapped): the
/// OpenAI shape read leniently, since operators mount it under their own prefixes
/// (`/openai/v1`, `/api/v1`, `/inference/v1`, `/api/paas/v4`, or no prefix at all). The route is
/// looked for right after the first version segment, or after any prefix when there is none
/// (`/chat/completions`, `/together/chat/completions`); failing that the `api` is OCI's own
/// `/{version}/actions/{action}` (`chat`, `embedText`, ...) or the first segment after the
/// version (`/v2/chat` → `chat`).
pub(super) fn describe_lenient(cx: &Ctx<'_>, provider: &'static str) -> Draft {
    let segs = cx.segments.as_slice();
    let (rel, deployment) = relative(segs);
    if route(&cx.method, rel).is_some() {
        return describe_rel(cx, provider, rel, deployment);
    }
    let version = segs.iter().position(|s| is_version(s));
    let after_version = version.map_or(segs, |i| &segs[i + 1..]);
    // Without a version segment the route may follow any prefix.
    let starts = if version.is_some() {
        0..1
    } else {
        0..segs.len()
    };
    if let Some(i) = starts
        .into_iter()
        .find(|&i| i < after_version.len() && route(&cx.method, &after_version[i..]).is_some())
    {
        return describe_rel(cx, provider, &after_version[i..], None);
    }
    if let Some(i) = segs.iter().position(|s| *s == "actions") {
        if let Some(action) = segs.get(i + 1) {
            let mut d = Draft::new(provider, decode(action).into_owned());
            d.shape = "oci";
            let body = cx.body();
            d.model = body
                .object("servingMode")
                .and_then(|m| m.str("modelId").map(|m| m.into_owned()))
                .or_else(|| body.str("model").map(|m| m.into_owned()));
            return d;
        }
    }
    describe_rel(cx, provider, after_version, None)
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
            d.api = segs[1..].join(".").into();
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
                decode(rel[0]).into_owned()
            },
        );
        d.shape = "openai";
        d.model = cx.body().str("model").map(|m| m.into_owned());
        return d;
    };
    let mut d = Draft::new(provider, route.api);
    d.shape = "openai";
    for (k, v) in route.ids {
        d.keep(k, v);
    }
    let body = cx.body();
    d.model = body
        .str("model")
        .map(|m| m.into_owned())
        .or_else(|| deployment.map(|s| decode(s).into_owned()));
    let keep = match route.api {
        "chat.completions" => KEEP_CHAT,
        "responses" | "responses.compact" | "responses.input_tokens" => KEEP_RESPONSES,
        "threads.runs" => KEEP_RUNS,
        "agents.sessions" | "invocations" => KEEP_SESSIONS,
        _ => KEEP_OTHER,
    };
    for k in keep {
        if let Some(v) = body.value(k) {
            d.keep(k, v);
        }
    }
    let mut files: Vec<Value> = Vec::new();
    let mut stores: Vec<Value> = Vec::new();
    match route.api {
        "responses" | "responses.compact" | "responses.input_tokens" => {
            responses_extras(body, &mut d, &mut files, &mut stores)
        }
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
        "agents.sessions" => {
            if let Some(env) = environment(body) {
                d.keep("environment", env);
            }
        }
        _ => {}
    }
    // Files the request references: in its content (parts, items, attachments), and as
    // `file_id` / `file_ids` members (vector store files and batches, containers, uploads).
    if cx.file_refs {
        for k in refs::FILE_SCANNED {
            if let Some(raw) = body.raw(k) {
                refs::file_ids(raw, &mut files);
            }
        }
    }
    if let Some(id) = body.str("file_id") {
        push_unique(&mut files, id);
    }
    ids_into(body.value("file_ids"), &mut files);
    tool_resources(body, &mut files, &mut stores);
    if let Some(thread) = body.object("thread") {
        tool_resources(&thread, &mut files, &mut stores);
    }
    d.keep_ids("file_ids", files);
    d.keep_ids("vector_store_ids", stores);
    if let Some(beta) = cx.header("openai-beta") {
        d.keep("OpenAI-Beta", beta);
    }
    d
}

/// Appends the string elements of a JSON array to `out` (deduplicated).
fn ids_into(list: Option<Value>, out: &mut Vec<Value>) {
    if let Some(Value::Array(ids)) = list {
        for id in ids {
            if let Value::String(s) = id {
                push_unique(out, s.into());
            }
        }
    }
}

/// Assistants `tool_resources`: `code_interpreter.file_ids` and `file_search.vector_store_ids`
/// (stores created inline from `vector_stores` are new, not referenced).
fn tool_resources(body: &Body<'_>, files: &mut Vec<Value>, stores: &mut Vec<Value>) {
    let Some(res) = body.object("tool_resources") else {
        return;
    };
    if let Some(ci) = res.object("code_interpreter") {
        ids_into(ci.value("file_ids"), files);
    }
    if let Some(fs) = res.object("file_search") {
        ids_into(fs.value("vector_store_ids"), stores);
    }
}

/// An Agents API session's `environment`: its `type` (`none`, `openai_hosted`, `self_hosted`)
/// and the ids naming an existing environment or template; never its configuration (setup
/// commands, variables, files, packages).
fn environment(body: &Body<'_>) -> Option<Value> {
    let raw = body.raw("environment")?;
    if let Some(id) = raw_str(raw) {
        return Some(json!({ "id": id }));
    }
    let env = Body::parse(raw.as_bytes())?;
    let mut out = Map::new();
    for k in ["type", "id", "environment_id", "environment_template_id"] {
        if let Some(v) = env.str(k) {
            out.insert(k.into(), Value::String(v.into_owned()));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Responses: `conversation` (an id string, or an object of which only `id` is kept) and the
/// state its tools reference: a `code_interpreter` tool's `container` when it names an existing
/// container (a string id; `{"type": "auto"}` asks for a new one and is not kept, but the
/// `file_ids` it mounts are), and the union of the `file_search` tools' `vector_store_ids`.
fn responses_extras(
    body: &Body<'_>,
    d: &mut Draft,
    files: &mut Vec<Value>,
    stores: &mut Vec<Value>,
) {
    if let Some(raw) = body.raw("conversation") {
        if let Some(id) = raw_str(raw) {
            d.keep("conversation", id.into_owned());
        } else if let Some(id) =
            Body::parse(raw.as_bytes()).and_then(|c| c.str("id").map(|s| s.into_owned()))
        {
            d.keep("conversation", json!({ "id": id }));
        }
    }
    let Some(tools) = body.array("tools") else {
        return;
    };
    for t in tools {
        let Some(tool) = Body::parse(t.as_bytes()) else {
            continue;
        };
        match tool.str("type").as_deref() {
            Some("code_interpreter") => {
                if let Some(raw) = tool.raw("container") {
                    if let Some(c) = raw_str(raw) {
                        d.keep("container", c.into_owned());
                    } else if let Some(auto) = Body::parse(raw.as_bytes()) {
                        // `{"type": "auto"}`: the server starts a new container.
                        if auto.str("type").as_deref() == Some("auto") {
                            d.keep("code_interpreter", true);
                        }
                        ids_into(auto.value("file_ids"), files);
                    }
                }
            }
            Some("file_search") => ids_into(tool.value("vector_store_ids"), stores),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |m: &str, p: &str| {
            let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
            route(m, relative(&segs).0).map(|r| {
                let ids: Vec<String> = r.ids.iter().map(|(k, v)| format!("{k}={v}")).collect();
                (r.api, ids.join(","))
            })
        };
        let azureml = "/agents/v1.0/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w";
        for (m, p, api, ids) in [
            ("POST", "/v1/chat/completions", "chat.completions", ""),
            (
                "POST",
                "/openai/deployments/gpt/chat/completions",
                "chat.completions",
                "",
            ),
            ("POST", "/openai/v1/responses", "responses", ""),
            (
                "GET",
                "/v1/responses/resp_1",
                "responses.retrieve",
                "response_id=resp_1",
            ),
            (
                "DELETE",
                "/v1/responses/resp_1",
                "responses.delete",
                "response_id=resp_1",
            ),
            (
                "GET",
                "/v1/responses/resp_1/input_items",
                "responses.input_items",
                "response_id=resp_1",
            ),
            ("POST", "/v1/responses/compact", "responses.compact", ""),
            ("POST", "/v1/decisions", "decisions", ""),
            (
                "POST",
                "/v1/threads/thread_1/runs",
                "threads.runs",
                "thread_id=thread_1",
            ),
            ("POST", "/v1/threads/runs", "threads.runs", ""),
            (
                "POST",
                "/v1/threads/t/messages",
                "threads.messages",
                "thread_id=t",
            ),
            (
                "DELETE",
                "/v1/assistants/asst_1",
                "assistants",
                "assistant_id=asst_1",
            ),
            (
                "POST",
                "/api/projects/p/openai/v1/responses",
                "responses",
                "",
            ),
            (
                "POST",
                "/api/projects/p/agents/bot/endpoint/sessions",
                "agents.sessions",
                "agent_id=bot",
            ),
            (
                "GET",
                "/api/projects/p/agents/bot/endpoint/sessions/s1",
                "agents.sessions",
                "agent_id=bot,session_id=s1",
            ),
            (
                "POST",
                "/api/projects/p/agents/bot/versions",
                "agents.versions",
                "agent_id=bot",
            ),
            (
                "POST",
                "/api/projects/p/memory_stores/m:search_memories",
                "memory_stores",
                "memory_store_id=m",
            ),
            ("POST", "/v1/realtime/client_secrets", "realtime", ""),
            ("POST", "/v1/agents", "agents", ""),
            ("DELETE", "/v1/agents/ag_1", "agents", "agent_id=ag_1"),
            ("POST", "/v1/agents/sessions", "agents.sessions", ""),
            (
                "POST",
                "/v1/agents/sessions/s1",
                "agents.sessions",
                "session_id=s1",
            ),
            (
                "GET",
                "/v1/agents/sessions/s1/turns/t1",
                "agents.sessions.turns",
                "session_id=s1",
            ),
            (
                "GET",
                "/v1/agents/sessions/s1/items",
                "agents.sessions.items",
                "session_id=s1",
            ),
            (
                "POST",
                "/v1/agents/sessions/s1/events",
                "agents.sessions.events",
                "session_id=s1",
            ),
            (
                "GET",
                "/v1/agents/sessions/s1/subagents/a",
                "agents.sessions.subagents",
                "session_id=s1",
            ),
            (
                "DELETE",
                "/v1/agents/sessions/s1/artifacts/x",
                "agents.sessions.artifacts",
                "session_id=s1",
            ),
            ("POST", "/v1/agents/environments", "agents.environments", ""),
            (
                "GET",
                "/v1/agents/environments/e1/files",
                "agents.environments",
                "environment_id=e1",
            ),
            (
                "GET",
                "/v1/agents/environments/templates/t1",
                "agents.environments.templates",
                "environment_template_id=t1",
            ),
            ("POST", "/v1/agents/vaults", "agents.vaults", ""),
            (
                "GET",
                "/v1/vector_stores/vs_1/files",
                "vector_stores",
                "vector_store_id=vs_1",
            ),
            ("DELETE", "/v1/files/file-1", "files", "file_id=file-1"),
            (
                "DELETE",
                "/v1/containers/c1",
                "containers",
                "container_id=c1",
            ),
            (
                "POST",
                &format!("{azureml}/threads/runs"),
                "threads.runs",
                "",
            ),
            (
                "GET",
                &format!("{azureml}/threads/t1/runs/r1"),
                "threads.runs",
                "thread_id=t1",
            ),
            (
                "DELETE",
                &format!("{azureml}/assistants/a1"),
                "assistants",
                "assistant_id=a1",
            ),
        ] {
            assert_eq!(r(m, p), Some((api, ids.to_owned())), "{m} {p}");
        }
        assert!(r("POST", "/v1/images/generations").is_none());
    }

    #[test]
    fn versions() {
        for v in ["v1", "v2", "v4", "v1beta", "v1.0"] {
            assert!(is_version(v), "{v}");
        }
        for v in ["v", "vector_stores", "1", "api"] {
            assert!(!is_version(v), "{v}");
        }
    }

    #[test]
    fn shape_needs_a_version_prefix_and_a_known_route() {
        assert!(is_shape(&["v1", "chat", "completions"]));
        assert!(is_shape(&["proxy", "v1", "responses"]));
        assert!(!is_shape(&["chat", "completions"]));
        assert!(!is_shape(&["v1", "images", "generations"]));
    }
}
