//! Google: the Gemini API (generativelanguage.googleapis.com) and Vertex AI
//! (`{region}-aiplatform.googleapis.com/v1/projects/{p}/locations/{l}/...`). Methods are the
//! `:verb` suffix of the last path segment (`models/gemini-2.5-pro:generateContent`). Media
//! uploads go to the same paths under `/upload` (`/upload/v1beta/files`,
//! `/upload/v1beta/fileSearchStores/{id}:uploadToFileSearchStore`).

use std::borrow::Cow;

use serde_json::Value;

use super::body::Body;
use super::refs::{self, push_unique};
use super::url::decode;
use super::{Ctx, Draft};

const KEEP_INTERACTIONS: &[&str] = &["previous_interaction_id", "store", "background", "stream"];

pub(super) fn describe(cx: &Ctx<'_>, provider: &'static str) -> Draft {
    let segs = cx.segments.as_slice();
    let segs = segs.strip_prefix(&["upload"]).unwrap_or(segs);
    let segs = match segs.first() {
        Some(v) if v.starts_with("v1") => &segs[1..],
        _ => segs,
    };
    // Vertex: drop projects/{p}/locations/{l}.
    let rel = match segs {
        ["projects", _, "locations", _, rest @ ..] => rest,
        ["projects", _, rest @ ..] => rest,
        s => s,
    };
    let body = cx.body();
    let (last, verb) = match rel.last().and_then(|l| l.split_once(':')) {
        Some((name, verb)) => (Some(name), Some(verb)),
        None => (rel.last().copied(), None),
    };
    let is = |w: &str| rel.iter().any(|s| s.split(':').next() == Some(w));
    let mut d = if let Some(verb) =
        verb.filter(|_| is("models") || is("tunedModels") || is("endpoints"))
    {
        let api: Cow<'static, str> = match verb {
            "generateContent" | "streamGenerateContent" => "generate_content".into(),
            "countTokens" => "count_tokens".into(),
            "embedContent" | "batchEmbedContents" | "asyncBatchEmbedContent" => "embeddings".into(),
            "rawPredict" | "streamRawPredict" => "raw_predict".into(),
            other => other.to_owned().into(),
        };
        let generate = api == "generate_content";
        let mut d = Draft::new(provider, api);
        let name = last.map(|n| decode(n).into_owned());
        d.model = if is("endpoints") {
            name.map(|n| format!("endpoints/{n}"))
        } else {
            name
        };
        if verb.starts_with("stream") {
            d.keep("stream", true);
        }
        if generate {
            generate_content(body, &mut d);
        }
        d
    } else if rel.first() == Some(&"interactions") {
        let api = match (cx.method.as_ref(), &rel[1..]) {
            ("POST", []) => "interactions",
            ("DELETE", [_]) => "interactions.delete",
            (_, [_, "cancel"]) => "interactions.cancel",
            _ => "interactions.retrieve",
        };
        let mut d = Draft::new(provider, api);
        if let Some(id) = rel.get(1) {
            d.keep("interaction_id", decode(id).into_owned());
        }
        d.model = body
            .str("model")
            .or_else(|| body.str("agent"))
            .map(|m| m.into_owned());
        for k in KEEP_INTERACTIONS {
            if let Some(v) = body.value(k) {
                d.keep(k, v);
            }
        }
        // The file_search tool: `{"type": "file_search", "file_search_store_names": [...]}`.
        let mut stores = Vec::new();
        for tool in tools(body) {
            if tool.str("type").as_deref() == Some("file_search") {
                store_names(&tool, &mut stores);
            }
        }
        d.keep_ids("file_search_store_names", stores);
        d
    } else if is("reasoningEngines") {
        let api = if is("memories") {
            "memory_bank"
        } else if is("sessions") {
            "agent_engine.sessions"
        } else {
            "agent_engine"
        };
        let mut d = Draft::new(provider, api);
        if let Some(i) = rel.iter().position(|s| *s == "reasoningEngines") {
            if let Some(engine) = rel.get(i + 1) {
                let engine = engine.split(':').next().unwrap_or(engine);
                d.attrs.insert(
                    "gen_ai.agent.id".into(),
                    Value::String(decode(engine).into_owned()),
                );
            }
        }
        d
    } else if rel
        .first()
        .is_some_and(|s| s.split(':').next() == Some("fileSearchStores"))
    {
        file_search_stores(provider, rel, verb)
    } else if is("cachedContents") {
        let mut d = Draft::new(provider, "cached_contents");
        d.model = body.str("model").map(|m| m.into_owned());
        d
    } else {
        Draft::new(
            provider,
            rel.first().map_or("unknown".to_owned(), |s| {
                s.split(':').next().unwrap_or(s).to_owned()
            }),
        )
    };
    if d.model.is_none() && d.api == "generate_content" {
        d.model = body.str("model").map(|m| m.into_owned());
    }
    d.shape = if provider == "gcp.vertex_ai" {
        "vertex"
    } else {
        "gemini"
    };
    d
}

/// generateContent's references to content Google holds: `cachedContent` (either spelling),
/// the Files-API files its parts name (`fileUris`), and the stores its `fileSearch` tool
/// searches (`fileSearchStoreNames`, read from `fileSearch` / `file_search` with
/// `fileSearchStoreNames` / `file_search_store_names`: the REST API takes either spelling).
fn generate_content(body: &Body<'_>, d: &mut Draft) {
    if let Some(c) = body
        .str("cachedContent")
        .or_else(|| body.str("cached_content"))
    {
        d.keep("cachedContent", c.into_owned());
    }
    if let Some(contents) = body.raw("contents") {
        let mut uris = Vec::new();
        refs::gemini_file_uris(contents, &mut uris);
        d.keep_ids("fileUris", uris);
    }
    let mut stores = Vec::new();
    for tool in tools(body) {
        if let Some(fs) = tool
            .object("fileSearch")
            .or_else(|| tool.object("file_search"))
        {
            store_names(&fs, &mut stores);
        }
    }
    d.keep_ids("fileSearchStoreNames", stores);
}

/// The objects of the `tools` array.
fn tools<'a>(body: &Body<'a>) -> Vec<Body<'a>> {
    body.array("tools")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| Body::parse(t.as_bytes()))
        .collect()
}

/// Appends a file-search tool's store names (either spelling).
fn store_names(tool: &Body<'_>, out: &mut Vec<Value>) {
    for k in ["fileSearchStoreNames", "file_search_store_names"] {
        if let Some(Value::Array(names)) = tool.value(k) {
            for n in names {
                if let Value::String(n) = n {
                    push_unique(out, n.into());
                }
            }
        }
    }
}

/// File Search stores (Gemini API only): `fileSearchStores` (create, list, get, delete),
/// `file_search_stores.upload` (`:uploadToFileSearchStore`, media or metadata),
/// `file_search_stores.import_file` (`:importFile`), `file_search_stores.documents` and
/// `file_search_stores.operations`. The store's resource name is kept as
/// `fileSearchStoreName` (`fileSearchStores/{id}`).
fn file_search_stores(provider: &'static str, rel: &[&str], verb: Option<&str>) -> Draft {
    let api = match (verb, rel.get(2).map(|s| s.split(':').next().unwrap_or(s))) {
        (Some("uploadToFileSearchStore"), _) => "file_search_stores.upload",
        (Some("importFile"), _) => "file_search_stores.import_file",
        (_, Some("documents")) => "file_search_stores.documents",
        (_, Some("operations")) | (_, Some("upload")) => "file_search_stores.operations",
        _ => "file_search_stores",
    };
    let mut d = Draft::new(provider, api);
    if let Some(id) = rel.get(1) {
        let id = id.split(':').next().unwrap_or(id);
        d.keep(
            "fileSearchStoreName",
            format!("fileSearchStores/{}", decode(id)),
        );
    }
    d
}
