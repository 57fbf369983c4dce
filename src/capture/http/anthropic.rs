//! The Anthropic API shape: api.anthropic.com, Claude on Microsoft Foundry
//! (`/anthropic/v1/messages`), Claude Managed Agents on Amazon Bedrock
//! (`bedrock.{region}.amazonaws.com/anthropic/v1`), bedrock-mantle's `/anthropic/v1`, and the
//! operators and gateways that speak it.

use std::sync::LazyLock;

use serde_json::Value;

use super::body::{raw_str, Body, KeyFinder};
use super::refs::{self, push_unique};
use super::url::decode;
use super::{Ctx, Draft};

static CACHE_CONTROL: LazyLock<KeyFinder> = LazyLock::new(|| KeyFinder::new("cache_control"));

/// Whether a path on an unknown host has the Anthropic shape (`.../v1/messages`).
pub(super) fn is_shape(segs: &[&str]) -> bool {
    segs.windows(2).any(|w| w == ["v1", "messages"])
}

pub(super) fn describe(cx: &Ctx<'_>, provider: &'static str) -> Draft {
    let segs = cx.segments.as_slice();
    let rel = match segs.iter().position(|s| *s == "v1") {
        Some(i) => &segs[i..],
        None => segs,
    };
    describe_rel(cx, provider, rel)
}

/// `rel` starts at the version segment (`v1`).
pub(super) fn describe_rel(cx: &Ctx<'_>, provider: &'static str, rel: &[&str]) -> Draft {
    let rel = rel.strip_prefix(&["v1"]).unwrap_or(rel);
    let id = |s: &str| Value::String(decode(s).into_owned());
    let mut ids: Vec<(&str, Value)> = Vec::new();
    let api: String = match rel {
        ["messages"] => "messages".into(),
        ["messages", "count_tokens"] => "messages.count_tokens".into(),
        ["messages", "batches", ..] => "messages.batches".into(),
        ["files", ..] => "files".into(),
        ["agents", rest @ ..] => {
            if let Some(a) = rest.first() {
                ids.push(("agent_id", id(a)));
            }
            "agents".into()
        }
        ["sessions", rest @ ..] => {
            if let Some(s) = rest.first() {
                ids.push(("session_id", id(s)));
            }
            "sessions".into()
        }
        ["environments", rest @ ..] => {
            if let Some(e) = rest.first() {
                ids.push(("environment_id", id(e)));
            }
            "environments".into()
        }
        // Managed Agents memory stores: /v1/memory_stores[/{id}[/archive|/memories|/memory_versions]]
        ["memory_stores", rest @ ..] => {
            if let Some(m) = rest.first() {
                ids.push(("memory_store_id", id(m)));
            }
            "memory_stores".into()
        }
        [first, ..] => (*first).to_owned(),
        [] => "unknown".into(),
    };
    let mut d = Draft::new(provider, api);
    d.shape = "anthropic";
    for (k, v) in ids {
        d.keep(k, v);
    }
    let body = cx.body();
    d.model = body.str("model").map(|m| m.into_owned());
    if d.api == "messages" {
        messages(body, &mut d);
    } else if let Some(v) = body.value("stream") {
        d.keep("stream", v);
    }
    if d.api == "sessions" {
        session(body, &mut d);
    }
    // Files referenced by content blocks (`source: {"type": "file"}`, `container_upload`) in
    // messages or in the events sent to a managed-agent session.
    let mut files: Vec<Value> = d
        .request
        .remove("file_ids")
        .and_then(|v| match v {
            Value::Array(a) => Some(a),
            _ => None,
        })
        .unwrap_or_default();
    if cx.file_refs {
        for k in ["messages", "events"] {
            if let Some(raw) = body.raw(k) {
                refs::file_ids(raw, &mut files);
            }
        }
    }
    d.keep_ids("file_ids", files);
    if let Some(beta) = cx.header("anthropic-beta") {
        d.keep("anthropic-beta", beta);
    }
    d
}

/// A managed-agent session created with `POST /v1/sessions`: `environment_id`, the agent's id
/// (`agent` as a string, or an `{id, version}` object's id, kept as `agent_id`), and what its
/// `resources` mount: `file_ids` (`{"type": "file"}`) and `memory_store_ids`
/// (`{"type": "memory_store"}`); mount paths, instructions and repository URLs are not kept.
fn session(body: &Body<'_>, d: &mut Draft) {
    if let Some(e) = body.str("environment_id") {
        d.keep("environment_id", e.into_owned());
    }
    if let Some(raw) = body.raw("agent") {
        let agent = raw_str(raw).map(|s| s.into_owned()).or_else(|| {
            Body::parse(raw.as_bytes()).and_then(|a| a.str("id").map(|s| s.into_owned()))
        });
        if let Some(a) = agent {
            d.keep("agent_id", a);
        }
    }
    let Some(resources) = body.array("resources") else {
        return;
    };
    let mut files = Vec::new();
    let mut stores = Vec::new();
    for r in resources {
        let Some(res) = Body::parse(r.as_bytes()) else {
            continue;
        };
        match res.str("type").as_deref() {
            Some("file") => {
                if let Some(id) = res.str("file_id") {
                    push_unique(&mut files, id);
                }
            }
            Some("memory_store") => {
                if let Some(id) = res.str("memory_store_id") {
                    push_unique(&mut stores, id);
                }
            }
            _ => {}
        }
    }
    d.keep_ids("file_ids", files);
    d.keep_ids("memory_store_ids", stores);
}

/// Messages: `container` (an id string, or the `id` of a container object; an object without
/// an id asks for a new container and is not kept), `cache_control` (`true` when a cache marker
/// appears anywhere: top level, `system`, `messages`, `tools`), `mcp_servers` (the servers'
/// `name`s only: URLs and authorization tokens are never kept), `memory_tool` (`true` when a
/// `memory_*` tool is declared), `code_execution` (`true` when a `code_execution_*` tool is
/// declared: without a `container` it runs in a new one), `stream`, `service_tier`.
fn messages(body: &Body<'_>, d: &mut Draft) {
    for k in ["stream", "service_tier"] {
        if let Some(v) = body.value(k) {
            d.keep(k, v);
        }
    }
    if let Some(raw) = body.raw("container") {
        let id = raw_str(raw).map(|s| s.into_owned()).or_else(|| {
            Body::parse(raw.as_bytes()).and_then(|c| c.str("id").map(|s| s.into_owned()))
        });
        if let Some(id) = id {
            d.keep("container", id);
        }
    }
    let cached = body.has("cache_control")
        || ["system", "messages", "tools"]
            .iter()
            .filter_map(|k| body.raw(k))
            .any(|raw| CACHE_CONTROL.in_json(raw.as_bytes()));
    if cached {
        d.keep("cache_control", true);
    }
    if let Some(servers) = body.array("mcp_servers") {
        let names: Vec<Value> = servers
            .iter()
            .map(|s| {
                Body::parse(s.as_bytes())
                    .and_then(|b| b.str("name").map(|n| Value::String(n.into_owned())))
                    .unwrap_or(Value::Null)
            })
            .collect();
        d.keep("mcp_servers", Value::Array(names));
    }
    if let Some(tools) = body.array("tools") {
        let types: Vec<_> = tools
            .iter()
            .filter_map(|t| Body::parse(t.as_bytes()).and_then(|b| b.str("type")))
            .collect();
        if types.iter().any(|ty| ty.starts_with("memory_")) {
            d.keep("memory_tool", true);
        }
        if types.iter().any(|ty| ty.starts_with("code_execution_")) {
            d.keep("code_execution", true);
        }
    }
}
