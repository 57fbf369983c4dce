//! Classify real traffic: from a raw HTTP request (method, URL, headers, body) derive the event
//! an SDK call amounts to — `provider`, `venue`, `api`, `model` and the request's state signals —
//! and classify it with a ruleset.
//!
//! What is kept. Only non-content parameters, under the provider's own names (the vocabulary of
//! `catalogue/default.toml`): ids (`previous_response_id`, `conversation`, `sessionId`,
//! `runtimeSessionId`, `container`, `vector_store_ids`, ...), flags (`store`, `background`,
//! `stream`, `endSession`), cache settings (`prompt_cache_key`, ...) and a few headers
//! (`OpenAI-Beta`, `anthropic-beta`, `x-ms-user-isolation-key`, `Mcp-Session-Id`). Content —
//! `messages`, `input`, `contents`, `prompt`, `instructions`, `system`, tool arguments and
//! outputs, file bytes, agent payloads — is never copied; where a rule needs to know that a
//! content block carries a marker (`cache_control`, a memory tool) only `true` is kept. The
//! URL's credentials and query string never reach the event (`endpoint` is scheme, host, port
//! and path). docs/classification.md ("Request-level classification") has the full table.
//!
//! How the provider is found. The host decides first (`api.openai.com`, `*.openai.azure.com`,
//! `bedrock-runtime.{region}.amazonaws.com`, ...). On a host statemeter does not know (a gateway,
//! a proxy, a loopback test server) the path shape decides (`/v1/chat/completions` is the OpenAI
//! shape, `/openai/deployments/...` Azure's, `/v1/messages` Anthropic's, `:generateContent`
//! Gemini's) and `attrs.provider_evidence` says so. A JSON-RPC body or an `Mcp-Session-Id` /
//! `MCP-Protocol-Version` header makes the request an MCP `tool_call` on any host.
//!
//! The venue comes from the host alone (`super::venue`): the decision is kept in
//! `attrs.venue_evidence = {venue, rule, explain}`, so the reason is hashed into the ledger with
//! the event. An unknown host gives `venue = "unknown"`, never a guess.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::classify::venue::{venue_for_host, VenueMatch};
use crate::classify::Ruleset;
use crate::error::{Error, Result};
use crate::event::Classification;
use crate::event::{Event, EventKind};

mod anthropic;
mod aws;
mod body;
mod gemini;
mod limits;
mod mcp;
mod openai;
mod url;

#[cfg(test)]
mod corpus_tests;

pub use body::has_key;
use body::Body;
pub use url::Url;

/// The header names the classifier reads, lower case. Everything else (including
/// `authorization`, `api-key`, `x-api-key`) is ignored, so a caller may pass only these.
pub const HEADERS_READ: &[&str] = &[
    "openai-beta",
    "anthropic-beta",
    "x-ms-user-isolation-key",
    "mcp-session-id",
    "mcp-protocol-version",
    "x-amzn-bedrock-agentcore-runtime-session-id",
];

/// A raw HTTP request as an SDK sends it.
#[derive(Clone, Copy, Debug)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// Absolute URL.
    pub url: &'a str,
    /// Header (name, value) pairs; names compare case-insensitively.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body bytes, if any. Read only when it is a JSON object (or a JSON-RPC batch).
    pub body: Option<&'a [u8]>,
}

/// What a request was read as, before it becomes an event.
pub(crate) struct Draft {
    pub provider: &'static str,
    pub api: String,
    pub model: Option<String>,
    pub request: Map<String, Value>,
    pub attrs: Map<String, Value>,
}

impl Draft {
    pub fn new(provider: &'static str, api: impl Into<String>) -> Draft {
        Draft {
            provider,
            api: api.into(),
            model: None,
            request: Map::new(),
            attrs: Map::new(),
        }
    }

    /// Keeps `value` as `request[key]`.
    pub fn keep(&mut self, key: &str, value: impl Into<Value>) {
        self.request.insert(key.to_owned(), value.into());
    }
}

/// The parts of a request the provider modules read.
pub(crate) struct Ctx<'a> {
    /// Upper case.
    pub method: Cow<'a, str>,
    pub url: Url<'a>,
    pub segments: Vec<&'a str>,
    headers: &'a [(&'a str, &'a str)],
    pub raw_body: Option<&'a [u8]>,
    pub body: Option<Body<'a>>,
}

impl<'a> Ctx<'a> {
    /// The value of header `name` (case-insensitive), trimmed; empty values count as absent.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn is(&self, method: &str) -> bool {
        self.method == method
    }

    /// The body's top-level members, or an empty view.
    pub fn body(&self) -> &Body<'a> {
        self.body.as_ref().unwrap_or(&NO_BODY)
    }
}

static NO_BODY: Body<'static> = Body::empty();

/// Builds the event a request amounts to (a `model_call`, or a `tool_call` for MCP), without
/// classifying it. `venues` maps hosts to venues (`"*.gw.example.com"` matches subdomains) and
/// wins over the built-in host patterns.
pub fn describe_request(req: &HttpRequest<'_>, venues: &BTreeMap<String, String>) -> Result<Event> {
    describe_request_as(req, None, venues)
}

/// [`describe_request`] for a caller that knows which API it is talking to (the botocore
/// integration knows the service): on a host statemeter does not recognise (a custom
/// `endpoint_url`), `api_family` picks the provider family instead of the path shape. One of
/// `openai`, `azure`, `anthropic`, `gemini`, `vertex`, `bedrock-runtime`, `bedrock-mantle`,
/// `bedrock-agent-runtime`, `bedrock-agentcore`. The venue still comes from the host alone.
pub fn describe_request_as(
    req: &HttpRequest<'_>,
    api_family: Option<&str>,
    venues: &BTreeMap<String, String>,
) -> Result<Event> {
    let hint = match api_family {
        None => None,
        Some(name) => Some(Family::named(name).ok_or_else(|| {
            Error::validation(
                "api_family",
                format!("{name:?} is not one of openai, azure, anthropic, gemini, vertex, bedrock-runtime, bedrock-mantle, bedrock-agent-runtime, bedrock-agentcore"),
            )
        })?),
    };
    let method = req.method.trim();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Error::validation(
            "method",
            format!("{method:?} is not an HTTP method"),
        ));
    }
    let url = Url::parse(req.url)?;
    let segments = url.segments();
    let (family, source) = match family_for_host(&url.host) {
        Some(f) => (Some(f), Source::Host),
        None => match hint {
            Some(f) => (Some(f), Source::Hint),
            None => (family_for_shape(&segments), Source::Shape),
        },
    };
    let raw_body = req.body.filter(|b| !b.is_empty());
    // Anthropic's cache_control markers sit inside content blocks: only then is content kept
    // (as raw slices, searched for the key, never copied).
    let scan_content = family == Some(Family::Anthropic) || segments.first() == Some(&"anthropic");
    let want = |k: &str| BODY_KEYS.contains(&k) || (scan_content && CONTENT_SCANNED.contains(&k));
    let body = raw_body.and_then(|b| Body::parse_some(b, &want));
    let method = if method.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(method.to_ascii_uppercase())
    } else {
        Cow::Borrowed(method)
    };
    let cx = Ctx {
        method,
        url,
        segments,
        headers: req.headers,
        raw_body,
        body,
    };
    let (venue, venue_evidence) = venue_cached(&cx.url.host, venues);
    let mut attrs = Map::new();
    attrs.insert("venue_evidence".into(), venue_evidence);
    attrs.insert(
        "server.address".into(),
        Value::String(cx.url.host.as_ref().to_owned()),
    );
    attrs.insert(
        "http.request.method".into(),
        Value::String(cx.method.as_ref().to_owned()),
    );
    if let Some(b) = cx.raw_body {
        if cx.body.is_none() && !mcp::is_batch(b) {
            attrs.insert(
                "body_unread".into(),
                Value::String("the body is not a JSON object: its parameters were not read".into()),
            );
        }
    }

    if let Some(tool) = mcp::describe(&cx) {
        let mut ev = Event::new(EventKind::ToolCall);
        ev.tool = Some(tool.tool.into());
        ev.tool_kind = Some("mcp".into());
        ev.mcp_session_id = tool.session_id.map(Into::into);
        attrs.extend(tool.attrs);
        ev.attrs = attrs;
        limits::fit(&mut ev);
        return Ok(ev);
    }

    let draft = match (family, source) {
        (Some(f), Source::Host) => f.describe(&cx),
        (Some(f), source) => {
            let mut d = f.describe(&cx);
            let why = match source {
                Source::Hint => format!(
                    "host {} is not a known provider endpoint; provider {} from the caller's API ({})",
                    cx.url.host,
                    d.provider,
                    api_family.unwrap_or_default()
                ),
                _ => format!(
                    "host {} is not a known provider endpoint; provider {} inferred from the API shape of {}",
                    cx.url.host, d.provider, cx.url.path
                ),
            };
            d.attrs
                .insert("provider_evidence".into(), Value::String(why));
            d
        }
        (None, _) => {
            let mut d = Draft::new("unknown", "unknown");
            d.attrs.insert(
                "provider_evidence".into(),
                Value::String(format!(
                    "neither host {} nor path {} is a known provider API",
                    cx.url.host, cx.url.path
                )),
            );
            d
        }
    };
    let mut ev = Event::new(EventKind::ModelCall);
    ev.provider = Some(draft.provider.into());
    // A path the family reads no API from (e.g. Gemini's `/:`) is `unknown`, as is a missing
    // model: an empty name would make the event unrecordable.
    ev.api = Some(if draft.api.is_empty() {
        "unknown".into()
    } else {
        draft.api.into()
    });
    ev.model = Some(
        draft
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
            .into(),
    );
    ev.venue = Some(venue.into());
    ev.endpoint = Some(cx.url.endpoint().into());
    ev.request = Some(draft.request);
    attrs.extend(draft.attrs);
    ev.attrs = attrs;
    limits::fit(&mut ev);
    Ok(ev)
}

/// One remembered venue decision: host, user mapping, venue, `venue_evidence` attribute.
type VenueEntry = (String, BTreeMap<String, String>, String, Value);

thread_local! {
    /// The last hosts' venue decisions: an SDK client talks to one or two hosts, and the
    /// decision (with its explanation) is the costliest part of describing a request.
    static VENUES: RefCell<Vec<VenueEntry>> =
        const { RefCell::new(Vec::new()) };
}

/// `venue_for_host`, remembered per thread for the last 16 (host, user mapping) pairs: the
/// venue and the `venue_evidence` attribute.
fn venue_cached(host: &str, venues: &BTreeMap<String, String>) -> (String, Value) {
    VENUES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, _, v, e)) = cache.iter().find(|(h, m, _, _)| h == host && m == venues) {
            return (v.clone(), e.clone());
        }
        let VenueMatch {
            venue,
            rule,
            explain,
        } = venue_for_host(host, venues);
        let evidence = json!({"venue": venue, "rule": rule, "explain": explain});
        if cache.len() >= 16 {
            cache.remove(0);
        }
        cache.push((
            host.to_owned(),
            venues.clone(),
            venue.clone(),
            evidence.clone(),
        ));
        (venue, evidence)
    })
}

/// [`describe_request`], then classifies the event with `ruleset`.
pub fn classify_request(
    req: &HttpRequest<'_>,
    ruleset: &Ruleset,
    venues: &BTreeMap<String, String>,
) -> Result<(Event, Classification)> {
    let ev = describe_request(req, venues)?;
    let c = ruleset.classify(&ev);
    Ok((ev, c))
}

/// Where the provider family came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Host,
    Hint,
    Shape,
}

/// The body members any family reads (everything else is skipped unread). Content members
/// are absent on purpose; `tools` is read for the state it references (containers, vector
/// stores, a memory tool) and `params` for an MCP tool's name.
const BODY_KEYS: &[&str] = &[
    "model",
    "store",
    "stream",
    "background",
    "previous_response_id",
    "conversation",
    "context_management",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "service_tier",
    "agent_session_id",
    "assistant_id",
    "container",
    "cache_control",
    "mcp_servers",
    "tools",
    "session",
    "memoryId",
    "endSession",
    "enableTrace",
    "sessionState",
    "inlineSessionState",
    "foundationModel",
    "actorId",
    "sessionId",
    "modelId",
    "cachedContent",
    "previous_interaction_id",
    "agent",
    "jsonrpc",
    "method",
    "params",
];
/// Content members searched (never copied) for `cache_control` on Anthropic requests.
const CONTENT_SCANNED: &[&str] = &["system", "messages"];

/// The provider API families, each handled by one module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    OpenAi,
    Azure,
    BedrockRuntime,
    BedrockMantle,
    BedrockAgentRuntime,
    AgentCore,
    Anthropic,
    Gemini,
    Vertex,
}

impl Family {
    fn named(name: &str) -> Option<Family> {
        Some(match name {
            "openai" => Family::OpenAi,
            "azure" => Family::Azure,
            "anthropic" => Family::Anthropic,
            "gemini" => Family::Gemini,
            "vertex" => Family::Vertex,
            "bedrock-runtime" => Family::BedrockRuntime,
            "bedrock-mantle" => Family::BedrockMantle,
            "bedrock-agent-runtime" => Family::BedrockAgentRuntime,
            "bedrock-agentcore" => Family::AgentCore,
            _ => return None,
        })
    }

    fn describe(self, cx: &Ctx<'_>) -> Draft {
        match self {
            Family::OpenAi => openai::describe(cx, "openai"),
            Family::Azure => openai::describe_azure(cx),
            Family::BedrockRuntime => aws::describe_runtime(cx),
            Family::BedrockMantle => aws::describe_mantle(cx),
            Family::BedrockAgentRuntime => aws::describe_agent_runtime(cx),
            Family::AgentCore => aws::describe_agentcore(cx),
            Family::Anthropic => anthropic::describe(cx, "anthropic"),
            Family::Gemini => gemini::describe(cx, "gcp.gemini"),
            Family::Vertex => gemini::describe(cx, "gcp.vertex_ai"),
        }
    }
}

fn family_for_host(host: &str) -> Option<Family> {
    let aws = |prefix: &str| {
        host.strip_prefix(prefix)
            .and_then(|h| h.strip_suffix(".amazonaws.com"))
            .is_some_and(|region| !region.is_empty() && !region.contains('.'))
    };
    Some(match host {
        "api.openai.com" => Family::OpenAi,
        "api.anthropic.com" => Family::Anthropic,
        "generativelanguage.googleapis.com" => Family::Gemini,
        "aiplatform.googleapis.com" => Family::Vertex,
        h if h.ends_with("-aiplatform.googleapis.com") => Family::Vertex,
        h if h.ends_with(".openai.azure.com")
            || h.ends_with(".services.ai.azure.com")
            || h.ends_with(".cognitiveservices.azure.com") =>
        {
            Family::Azure
        }
        _ if aws("bedrock-runtime.") || aws("bedrock-runtime-fips.") => Family::BedrockRuntime,
        _ if aws("bedrock-agent-runtime.") => Family::BedrockAgentRuntime,
        _ if aws("bedrock-agentcore.") => Family::AgentCore,
        h if h.starts_with("bedrock-mantle.") && h.ends_with(".api.aws") => Family::BedrockMantle,
        _ => return None,
    })
}

/// On an unknown host (gateway, proxy, test server): the family whose path shape this is.
fn family_for_shape(s: &[&str]) -> Option<Family> {
    let has = |w: &[&str]| s.windows(w.len()).any(|x| x == w);
    if s.last()
        .is_some_and(|l| l.contains(":generateContent") || l.contains(":streamGenerateContent"))
    {
        return Some(if has(&["publishers"]) {
            Family::Vertex
        } else {
            Family::Gemini
        });
    }
    if has(&["openai", "deployments"]) || s.first() == Some(&"openai") && !has(&["openai", "v1"]) {
        return Some(Family::Azure);
    }
    if s.first() == Some(&"model") && s.len() >= 3 {
        return Some(Family::BedrockRuntime);
    }
    if s.first() == Some(&"runtimes") && s.get(2) == Some(&"invocations") {
        return Some(Family::AgentCore);
    }
    if s.first() == Some(&"agents") && s.get(2) == Some(&"agentAliases") {
        return Some(Family::BedrockAgentRuntime);
    }
    if anthropic::is_shape(s) {
        return Some(Family::Anthropic);
    }
    if openai::is_shape(s) {
        return Some(Family::OpenAi);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Event {
        let req = HttpRequest {
            method,
            url,
            headers,
            body: (!body.is_empty()).then_some(body.as_bytes()),
        };
        describe_request(&req, &BTreeMap::new()).unwrap()
    }

    #[test]
    fn bad_method_or_url_names_the_field() {
        let req = HttpRequest {
            method: "PO ST",
            url: "https://api.openai.com/v1/responses",
            headers: &[],
            body: None,
        };
        let err = describe_request(&req, &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, Error::Validation { field, .. } if field == "method"));
        let req = HttpRequest {
            method: "POST",
            url: "/v1/responses",
            headers: &[],
            body: None,
        };
        let err = describe_request(&req, &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, Error::Validation { field, .. } if field == "url"));
    }

    #[test]
    fn unknown_host_and_path_is_unknown_with_evidence() {
        let ev = describe("GET", "https://example.com/index.html", &[], "");
        assert_eq!(ev.provider.as_deref(), Some("unknown"));
        assert_eq!(ev.api.as_deref(), Some("unknown"));
        assert_eq!(ev.venue.as_deref(), Some("unknown"));
        assert_eq!(ev.attrs["venue_evidence"]["rule"], "venue-unknown-host");
        assert!(ev.attrs["provider_evidence"]
            .as_str()
            .unwrap()
            .contains("example.com"));
    }

    #[test]
    fn gateway_shape_is_inferred_and_said_so() {
        let ev = describe(
            "POST",
            "http://127.0.0.1:8080/v1/chat/completions",
            &[],
            r#"{"model":"gpt-5","messages":[]}"#,
        );
        assert_eq!(ev.provider.as_deref(), Some("openai"));
        assert_eq!(ev.api.as_deref(), Some("chat.completions"));
        assert_eq!(ev.model.as_deref(), Some("gpt-5"));
        assert_eq!(ev.venue.as_deref(), Some("unknown"));
        assert!(ev.attrs["provider_evidence"]
            .as_str()
            .unwrap()
            .contains("inferred"));
        assert_eq!(
            ev.endpoint.as_deref(),
            Some("http://127.0.0.1:8080/v1/chat/completions")
        );
    }

    #[test]
    fn user_venue_mapping_applies() {
        let mut venues = BTreeMap::new();
        venues.insert("llm.internal".to_owned(), "on_prem".to_owned());
        let req = HttpRequest {
            method: "POST",
            url: "https://llm.internal/v1/responses",
            headers: &[],
            body: Some(b"{}"),
        };
        let ev = describe_request(&req, &venues).unwrap();
        assert_eq!(ev.venue.as_deref(), Some("on_prem"));
        assert_eq!(ev.attrs["venue_evidence"]["rule"], "venue-user-mapping");
    }

    #[test]
    fn unreadable_body_is_noted_not_fatal() {
        let ev = describe(
            "POST",
            "https://api.openai.com/v1/files",
            &[],
            "--boundary\r\ncontent",
        );
        assert_eq!(ev.api.as_deref(), Some("files"));
        assert!(ev.attrs.contains_key("body_unread"));
    }

    #[test]
    fn an_api_family_hint_decides_on_unknown_hosts_only() {
        let req = HttpRequest {
            method: "POST",
            url: "http://127.0.0.1:9/memories/m-1/events",
            headers: &[],
            body: Some(br#"{"actorId":"a","sessionId":"s","payload":[]}"#),
        };
        let none = BTreeMap::new();
        assert_eq!(
            describe_request(&req, &none).unwrap().provider.as_deref(),
            Some("unknown")
        );
        let ev = describe_request_as(&req, Some("bedrock-agentcore"), &none).unwrap();
        assert_eq!(
            (ev.provider.as_deref(), ev.api.as_deref()),
            (Some("aws.bedrock"), Some("create_event"))
        );
        assert_eq!(ev.venue.as_deref(), Some("unknown"));
        assert!(ev.attrs["provider_evidence"]
            .as_str()
            .unwrap()
            .contains("bedrock-agentcore"));
        let err = describe_request_as(&req, Some("bedrock"), &none).unwrap_err();
        assert!(matches!(err, Error::Validation { field, .. } if field == "api_family"));
        // A known host wins over the hint.
        let known = HttpRequest {
            url: "https://api.anthropic.com/v1/messages",
            ..req
        };
        let ev = describe_request_as(&known, Some("bedrock-agentcore"), &none).unwrap();
        assert_eq!(ev.provider.as_deref(), Some("anthropic"));
    }

    #[test]
    fn events_validate() {
        let ev = describe(
            "POST",
            "https://api.anthropic.com/v1/messages",
            &[],
            r#"{"model":"claude","messages":[]}"#,
        );
        ev.finish().unwrap();
    }
}
