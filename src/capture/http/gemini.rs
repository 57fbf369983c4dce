//! Google: the Gemini API (generativelanguage.googleapis.com) and Vertex AI
//! (`{region}-aiplatform.googleapis.com/v1/projects/{p}/locations/{l}/...`). Methods are the
//! `:verb` suffix of the last path segment (`models/gemini-2.5-pro:generateContent`).

use serde_json::Value;

use super::url::decode;
use super::{Ctx, Draft};

const KEEP_INTERACTIONS: &[&str] = &["previous_interaction_id", "store", "background", "stream"];

pub(super) fn describe(cx: &Ctx<'_>, provider: &'static str) -> Draft {
    let segs = cx.segments.as_slice();
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
    let mut d =
        if let Some(verb) = verb.filter(|_| is("models") || is("tunedModels") || is("endpoints")) {
            let api = match verb {
                "generateContent" | "streamGenerateContent" => "generate_content",
                "countTokens" => "count_tokens",
                "embedContent" | "batchEmbedContents" | "asyncBatchEmbedContent" => "embeddings",
                "rawPredict" | "streamRawPredict" => "raw_predict",
                other => other,
            };
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
            if api == "generate_content" {
                if let Some(c) = body.str("cachedContent") {
                    d.keep("cachedContent", c.into_owned());
                }
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
        } else if is("cachedContents") {
            let mut d = Draft::new(provider, "cached_contents");
            d.model = body.str("model").map(|m| m.into_owned());
            d
        } else {
            Draft::new(
                provider,
                rel.first()
                    .map_or("unknown", |s| s.split(':').next().unwrap_or(s)),
            )
        };
    if d.model.is_none() && d.api == "generate_content" {
        d.model = body.str("model").map(|m| m.into_owned());
    }
    d
}
