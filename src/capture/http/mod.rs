//! Classify real traffic: from a raw HTTP request (method, URL, headers, body) derive the event
//! an SDK call amounts to — `provider`, `venue`, `api`, `model` and the request's state signals —
//! and classify it with a ruleset.
//!
//! What is kept. Only non-content parameters, under the provider's own names (the vocabulary of
//! `catalogue/default.toml`): ids (`previous_response_id`, `conversation`, `sessionId`,
//! `runtimeSessionId`, `container`, `vector_store_ids`, ...), references to provider-held
//! content (`file_ids`, Gemini Files-API `fileUris`, file-search store names, `knowledgeBaseId`),
//! flags (`store`, `background`, `stream`, `endSession`), cache settings (`prompt_cache_key`,
//! ...) and a few headers (`OpenAI-Beta`, `anthropic-beta`, `x-ms-user-isolation-key`,
//! `Mcp-Session-Id`). Content — `messages`, `input`, `contents`, `prompt`, `instructions`,
//! `system`, tool arguments and outputs, file bytes, agent payloads — is never copied; where a
//! rule needs to know that a content block carries a marker (`cache_control`, a memory tool, a
//! code-execution tool) only `true` is kept, and where a content block references a stored file
//! only the file's id is kept. The URL's credentials and query string never reach the event
//! (`endpoint` is scheme, host, port and path). docs/classification.md ("Request-level
//! classification") has the full table.
//!
//! Who serves it. The host decides ([`super::super::classify::venue`] and [`family_for_host`]):
//! a provider's own endpoint (`api.openai.com`, `*.openai.azure.com`,
//! `bedrock-runtime.{region}.amazonaws.com`, ...) names the provider (the path may refine it:
//! Claude on Foundry is `anthropic`); a third-party operator's host (`api.groq.com`,
//! `openrouter.ai`, OCI Generative AI, ...) names that operator, whatever API shape it speaks.
//! The user's `providers` mapping (host pattern → provider) wins over both. On a host none of
//! these names (a gateway, a proxy, a loopback test server) the provider is `unknown`: the path
//! shape (`/v1/chat/completions` is the OpenAI shape, `/openai/deployments/...` Azure's,
//! `/v1/messages` Anthropic's, `:generateContent` Gemini's) or the caller's API family still says
//! which API it is, so `api`, `model` and `request` are read as usual. Every model call carries
//! `attrs.provider_evidence = {provider, rule, shape, explain}` (rules `provider-endpoint`,
//! `provider-user-mapping`, `provider-unknown-host`; `shape` is the API shape read). A JSON-RPC
//! body or an `Mcp-Session-Id` / `MCP-Protocol-Version` header makes the request an MCP
//! `tool_call` on any host.
//!
//! The venue comes from the host alone (`super::venue`): the decision is kept in
//! `attrs.venue_evidence = {venue, rule, explain}`, so the reason is hashed into the ledger with
//! the event. An unknown host gives `venue = "unknown"`, never a guess. `attrs` also carries
//! `http.request.method` (upper case) and `server.address` on every event.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{json, Map, Value};

use crate::classify::venue::{self, venue_for_host, Operator, VenueMatch};
use crate::classify::Ruleset;
use crate::error::{Error, Result};
use crate::event::Classification;
use crate::event::{Event, EventKind, Text};

mod anthropic;
mod aws;
mod body;
mod gemini;
mod limits;
mod mcp;
mod openai;
mod refs;
mod url;

#[cfg(test)]
mod corpus_tests;

pub use body::has_key;
use body::Body;
pub use url::{target, Url};

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

/// The user's say about hosts: `venues` maps host patterns to venues, `providers` to the
/// provider operating them (`"llm-proxy.internal"`, `"*.gw.example.com"`: a `*.` prefix matches
/// subdomains). Both are checked before the built-in host tables.
#[derive(Clone, Copy, Debug)]
pub struct HostMappings<'a> {
    pub venues: &'a BTreeMap<String, String>,
    pub providers: &'a BTreeMap<String, String>,
}

static NO_MAPPING: BTreeMap<String, String> = BTreeMap::new();

impl<'a> HostMappings<'a> {
    /// No user mapping at all.
    pub fn none() -> HostMappings<'static> {
        HostMappings {
            venues: &NO_MAPPING,
            providers: &NO_MAPPING,
        }
    }

    /// A venue mapping and no provider mapping.
    pub fn venues(venues: &'a BTreeMap<String, String>) -> HostMappings<'a> {
        HostMappings {
            venues,
            providers: &NO_MAPPING,
        }
    }
}

/// What a request was read as, before it becomes an event.
pub(crate) struct Draft {
    /// The provider the API family implies (used when the host is that family's own endpoint).
    pub provider: &'static str,
    /// The API shape read (`openai`, `anthropic`, `gemini`, `bedrock-runtime`, ...); empty
    /// until the family sets it.
    pub shape: &'static str,
    /// Usually a name from a route table (shared, see [`static_text`]).
    pub api: Cow<'static, str>,
    pub model: Option<String>,
    pub request: Map<String, Value>,
    pub attrs: Map<String, Value>,
}

impl Draft {
    pub fn new(provider: &'static str, api: impl Into<Cow<'static, str>>) -> Draft {
        Draft {
            provider,
            shape: "",
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

    /// Keeps a non-empty list of ids as `request[key]`.
    pub fn keep_ids(&mut self, key: &str, ids: Vec<Value>) {
        if !ids.is_empty() {
            self.keep(key, Value::Array(ids));
        }
    }
}

/// The parts of a request the provider modules read.
pub(crate) struct Ctx<'a> {
    /// Upper case.
    pub method: Cow<'a, str>,
    pub url: Url<'a>,
    pub segments: url::Segments<'a>,
    headers: &'a [(&'a str, &'a str)],
    pub raw_body: Option<&'a [u8]>,
    pub body: Option<Body<'a>>,
    /// Whether the body has a `"file_id"` key anywhere (then the content members that may
    /// reference files were kept as raw slices, to be walked for them).
    pub file_refs: bool,
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
    describe_request_with(req, None, HostMappings::venues(venues))
}

/// [`describe_request_with`] with a venue mapping only.
pub fn describe_request_as(
    req: &HttpRequest<'_>,
    api_family: Option<&str>,
    venues: &BTreeMap<String, String>,
) -> Result<Event> {
    describe_request_with(req, api_family, HostMappings::venues(venues))
}

/// The names `api_family` accepts.
const FAMILY_NAMES: &str = "openai, azure, anthropic, gemini, vertex, bedrock, bedrock-runtime, bedrock-mantle, bedrock-agent-runtime, bedrock-agentcore";

/// Builds the event a request amounts to, for a caller that may know which API it is talking to
/// (the botocore integration knows the service): on a host statemeter does not recognise (a
/// custom `endpoint_url`), `api_family` picks the API family instead of the path shape. One of
/// `openai`, `azure`, `anthropic`, `gemini`, `vertex`, `bedrock`, `bedrock-runtime`,
/// `bedrock-mantle`, `bedrock-agent-runtime`, `bedrock-agentcore`. It says how to read the
/// request, not who serves it: the provider stays `unknown` unless `hosts.providers` names the
/// host's operator. The venue comes from the host alone.
pub fn describe_request_with(
    req: &HttpRequest<'_>,
    api_family: Option<&str>,
    hosts: HostMappings<'_>,
) -> Result<Event> {
    let hint = match api_family {
        None => None,
        Some(name) => Some(Family::named(name).ok_or_else(|| {
            Error::validation(
                "api_family",
                format!("{name:?} is not one of {FAMILY_NAMES}"),
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
    let host = host_cached(&url.host, hosts);
    let (family, source) = match (host.family, &host.operated) {
        (Some(f), _) => (Some(f), Source::Host),
        (None, _) if hint.is_some() => (hint, Source::Hint),
        (None, Operated::Operator(_) | Operated::User(_)) => (
            Some(family_for_shape(&segments).unwrap_or(Family::OpenAi)),
            Source::Named,
        ),
        (None, _) => (family_for_shape(&segments), Source::Shape),
    };
    let raw_body = req.body.filter(|b| !b.is_empty());
    // Anthropic's cache_control markers sit inside content blocks: only then is content kept
    // (as raw slices, searched for the key, never copied). Likewise the members that may
    // reference stored files, when the body has a `file_id` key at all, and Gemini's contents
    // when they name a file URI.
    let scan_content = family == Some(Family::Anthropic) || segments.first() == Some(&"anthropic");
    let gemini = matches!(family, Some(Family::Gemini | Family::Vertex));
    let file_uris =
        gemini && raw_body.is_some_and(|b| has_key(b, "fileUri") || has_key(b, "file_uri"));
    let want = |k: &str| {
        is_body_key(k) || (scan_content && is_content_scanned(k)) || (file_uris && k == "contents")
    };
    // Whether the body has a `file_id` key anywhere is found in the same pass.
    let if_file_id = |k: &str| refs::is_file_scanned(k);
    let (body, file_refs) = match raw_body.and_then(|b| Body::parse_request(b, &want, &if_file_id))
    {
        Some((body, file_refs)) => (Some(body), file_refs),
        None => (None, false),
    };
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
        file_refs,
    };
    let body_unread = cx
        .raw_body
        .is_some_and(|b| cx.body.is_none() && !mcp::is_batch(b));

    if let Some(tool) = mcp::describe(&cx) {
        let mut attrs = Map::new();
        attrs.insert("venue_evidence".into(), host.venue_evidence.clone());
        attrs.insert(
            "server.address".into(),
            Value::String(cx.url.host.as_ref().to_owned()),
        );
        attrs.insert(
            "http.request.method".into(),
            Value::String(cx.method.as_ref().to_owned()),
        );
        if body_unread {
            attrs.insert("body_unread".into(), body_unread_note());
        }
        let mut ev = Event::new(EventKind::ToolCall);
        ev.tool = Some(tool.tool.into());
        ev.tool_kind = Some("mcp".into());
        ev.mcp_session_id = tool.session_id.map(Into::into);
        attrs.extend(tool.attrs);
        ev.attrs = attrs;
        limits::fit(&mut ev);
        return Ok(ev);
    }

    let mut draft = match family {
        Some(f) if source == Source::Named && f == Family::OpenAi => {
            openai::describe_lenient(&cx, "unknown")
        }
        Some(f) => f.describe(&cx),
        None => Draft::new("unknown", "unknown"),
    };
    if draft.shape.is_empty() {
        draft.shape = family.map_or("", Family::shape);
    }
    if let Operated::Operator(op) = host.operated {
        if op.provider == "huggingface" {
            huggingface_upstream(&cx.segments, &mut draft);
        }
    }
    let (provider, rule): (Text, &'static str) = match &host.operated {
        Operated::User(p) => (p.clone(), "provider-user-mapping"),
        Operated::Operator(op) => (static_text(op.provider), "provider-endpoint"),
        Operated::Endpoint => (static_text(draft.provider), "provider-endpoint"),
        Operated::Unknown => (static_text("unknown"), "provider-unknown-host"),
    };
    let explain: Cow<'_, str> = match (&host.operated, source) {
        (Operated::Unknown, Source::Hint) => Cow::Owned(format!(
            "{}; the caller's API is {} ({} shape), which does not say who operates the host",
            host.explain,
            api_family.unwrap_or_default(),
            shape_name(draft.shape)
        )),
        (Operated::Unknown, _) if family.is_some() => Cow::Owned(format!(
            "{}; the path {} has the {} shape, which does not say who operates the host",
            host.explain,
            cx.url.path,
            shape_name(draft.shape)
        )),
        (Operated::Unknown, _) => Cow::Owned(format!(
            "{}, and the path {} is not a known provider API",
            host.explain, cx.url.path
        )),
        _ => Cow::Borrowed(host.explain.as_str()),
    };
    let (mut attrs, base_fits) = model_call_attrs(&AttrsKey {
        host: &host,
        method: &cx.method,
        provider: &provider,
        rule,
        shape: draft.shape,
        explain: &explain,
    });
    if body_unread {
        attrs.insert("body_unread".into(), body_unread_note());
    }

    let mut ev = Event::new(EventKind::ModelCall);
    ev.provider = Some(provider);
    // A path the family reads no API from (e.g. Gemini's `/:`) is `unknown`, as is a missing
    // model: an empty name would make the event unrecordable.
    ev.api = Some(match draft.api {
        Cow::Borrowed("") => static_text("unknown"),
        Cow::Borrowed(api) => static_text(api),
        Cow::Owned(api) if api.is_empty() => static_text("unknown"),
        Cow::Owned(api) => api.into(),
    });
    ev.model = Some(match draft.model.as_deref() {
        None | Some("") => static_text("unknown"),
        Some(model) => recent_text(model.len(), |t| t == model, || model.into()),
    });
    ev.venue = Some(host.venue.clone());
    let url = &cx.url;
    ev.endpoint = Some(recent_text(
        url.scheme.len() + 3 + url.authority.len() + url.path.len(),
        |t| cx.url.is_endpoint(t),
        || cx.url.endpoint().into(),
    ));
    ev.request = Some(draft.request);
    // The base attrs were checked against the limits when first built; only the family's own
    // are checked here.
    let attrs_fit = base_fits && !draft.attrs.values().any(limits::over);
    attrs.extend(draft.attrs);
    ev.attrs = attrs;
    limits::fit_with(&mut ev, attrs_fit);
    Ok(ev)
}

thread_local! {
    /// [`static_text`]'s texts: the provider and api names of the tables, a few dozen at most.
    static STATIC_TEXTS: RefCell<Vec<(&'static str, Text)>> = const { RefCell::new(Vec::new()) };
}

/// `s` as event text, shared by every event that names it (a provider or api name from a
/// table): no allocation per request.
fn static_text(s: &'static str) -> Text {
    STATIC_TEXTS.with(|texts| {
        let mut texts = texts.borrow_mut();
        if let Some((_, t)) = texts.iter().find(|(k, _)| std::ptr::eq(*k, s) || *k == s) {
            return Text::clone(t);
        }
        let t: Text = s.into();
        texts.push((s, Text::clone(&t)));
        t
    })
}

/// Longest text [`recent_text`] remembers, in bytes.
const RECENT_TEXT_MAX: usize = 256;

thread_local! {
    /// [`recent_text`]'s texts: the last models and endpoints named, 32 at most.
    static RECENT_TEXTS: RefCell<Vec<Text>> = const { RefCell::new(Vec::new()) };
    /// [`model_call_attrs`]'s last maps: what they were built from, and the map.
    static RECENT_ATTRS: RefCell<Vec<RecentAttrs>> =
        const { RefCell::new(Vec::new()) };
}

/// A request's text (a model name, an endpoint) as event text, shared with the last requests
/// that named the same text: an SDK client sends one endpoint and a few models over and over.
/// `is` says whether a remembered text is the one wanted, `make` builds it otherwise; `len`
/// (the text's length) bounds what is remembered.
fn recent_text(len: usize, is: impl Fn(&str) -> bool, make: impl FnOnce() -> Text) -> Text {
    if len > RECENT_TEXT_MAX {
        return make();
    }
    RECENT_TEXTS.with(|texts| {
        let mut texts = texts.borrow_mut();
        if let Some(t) = texts.iter().rev().find(|t| is(t)) {
            return Text::clone(t);
        }
        let t = make();
        if texts.len() >= 32 {
            texts.remove(0);
        }
        texts.push(Text::clone(&t));
        t
    })
}

/// One of [`model_call_attrs`]'s remembered maps: what it was built from, the map, and whether
/// it is within [`limits`].
type RecentAttrs = (AttrsEntry, Map<String, Value>, bool);

/// What a model call's base `attrs` are made of.
struct AttrsKey<'k> {
    host: &'k Rc<HostInfo>,
    method: &'k str,
    provider: &'k Text,
    rule: &'static str,
    shape: &'static str,
    explain: &'k str,
}

/// An [`AttrsKey`] remembered with the map built from it.
struct AttrsEntry {
    host: Rc<HostInfo>,
    method: String,
    provider: Text,
    rule: &'static str,
    shape: &'static str,
    explain: String,
}

impl AttrsEntry {
    fn is(&self, k: &AttrsKey<'_>) -> bool {
        Rc::ptr_eq(&self.host, k.host)
            && self.method == k.method
            && *self.provider == **k.provider
            && self.rule == k.rule
            && self.shape == k.shape
            && self.explain == k.explain
    }
}

/// A model call's `attrs` before the API family's own: `venue_evidence`, `server.address`,
/// `http.request.method` and `provider_evidence`. They depend on the host, the method and what
/// was read, so the map is built once per thread for each of the last few combinations and
/// copied after that (a copy allocates as much, but skips the sorted inserts and the formatting).
/// Also whether the map is within [`limits`] (checked once, when it is built).
fn model_call_attrs(k: &AttrsKey<'_>) -> (Map<String, Value>, bool) {
    RECENT_ATTRS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, attrs, fits)) = cache.iter().find(|(e, _, _)| e.is(k)) {
            return (attrs.clone(), *fits);
        }
        let mut evidence = Map::new();
        evidence.insert(
            "provider".into(),
            Value::String(k.provider.as_ref().to_owned()),
        );
        evidence.insert("rule".into(), Value::String(k.rule.to_owned()));
        if !k.shape.is_empty() {
            evidence.insert("shape".into(), Value::String(k.shape.to_owned()));
        }
        evidence.insert("explain".into(), Value::String(k.explain.to_owned()));
        let mut attrs = Map::new();
        attrs.insert("venue_evidence".into(), k.host.venue_evidence.clone());
        attrs.insert("server.address".into(), Value::String(k.host.host.clone()));
        attrs.insert(
            "http.request.method".into(),
            Value::String(k.method.to_owned()),
        );
        attrs.insert("provider_evidence".into(), Value::Object(evidence));
        let fits = !attrs.values().any(limits::over);
        if cache.len() >= 8 {
            cache.remove(0);
        }
        cache.push((
            AttrsEntry {
                host: Rc::clone(k.host),
                method: k.method.to_owned(),
                provider: Text::clone(k.provider),
                rule: k.rule,
                shape: k.shape,
                explain: k.explain.to_owned(),
            },
            attrs.clone(),
            fits,
        ));
        (attrs, fits)
    })
}

/// `attrs.body_unread`: a body that is not a JSON object.
fn body_unread_note() -> Value {
    Value::String("the body is not a JSON object: its parameters were not read".into())
}

/// A shape's name in explanations.
fn shape_name(shape: &str) -> &str {
    match shape {
        "openai" => "OpenAI-compatible",
        "anthropic" => "Anthropic-compatible",
        "gemini" => "Gemini-compatible",
        "vertex" => "Vertex AI",
        "" => "no known",
        other => other,
    }
}

/// Hugging Face's router names the upstream inference provider in the first path segment
/// (`router.huggingface.co/together/v1/chat/completions`): kept as `attrs.upstream_provider`.
/// Hugging Face serves (and bills) the request, so it stays the provider.
fn huggingface_upstream(segs: &[&str], d: &mut Draft) {
    if let [first, _, ..] = segs {
        if !openai::is_version(first) {
            d.attrs.insert(
                "upstream_provider".into(),
                Value::String(url::decode(first).into_owned()),
            );
        }
    }
}

/// Who operates a host, as far as statemeter can tell from the host alone.
enum Operated {
    /// A provider family's own endpoint: the family names the provider (the path may refine
    /// it, e.g. Claude on Foundry).
    Endpoint,
    /// A third-party operator of the built-in table.
    Operator(&'static Operator),
    /// The user's provider mapping names it.
    User(Text),
    /// Nobody says.
    Unknown,
}

/// What the host alone decides, remembered per thread.
struct HostInfo {
    /// The host (normalised), `attrs."server.address"`.
    host: String,
    venue: Text,
    venue_evidence: Value,
    family: Option<Family>,
    operated: Operated,
    /// Why the provider is what it is (for an unknown host, the start of the explanation).
    explain: String,
}

/// One remembered decision: host, the user's venue and provider mappings, the decision.
type HostEntry = (
    String,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    Rc<HostInfo>,
);

thread_local! {
    /// The last hosts' decisions: an SDK client talks to one or two hosts, and the decision
    /// (with its explanations) is the costliest part of describing a request.
    static HOSTS: RefCell<Vec<HostEntry>> = const { RefCell::new(Vec::new()) };
}

/// [`host_info`], remembered per thread for the last 16 (host, mappings) triples.
fn host_cached(host: &str, hosts: HostMappings<'_>) -> Rc<HostInfo> {
    HOSTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, _, _, info)) = cache
            .iter()
            .find(|(h, v, p, _)| h == host && v == hosts.venues && p == hosts.providers)
        {
            return Rc::clone(info);
        }
        let info = Rc::new(host_info(host, hosts));
        if cache.len() >= 16 {
            cache.remove(0);
        }
        cache.push((
            host.to_owned(),
            hosts.venues.clone(),
            hosts.providers.clone(),
            Rc::clone(&info),
        ));
        info
    })
}

/// The venue of `host` (normalised), the API family its own endpoint implies, and who operates it.
fn host_info(host: &str, hosts: HostMappings<'_>) -> HostInfo {
    let VenueMatch {
        venue,
        rule,
        explain,
    } = venue_for_host(host, hosts.venues);
    let venue_evidence = json!({"venue": venue, "rule": rule, "explain": explain});
    let family = family_for_host(host);
    let (operated, explain) = if let Some((pattern, p)) =
        venue::user_mapping_for_host(host, hosts.providers)
    {
        (
            Operated::User(p.into()),
            format!(
                "host {host} is mapped to provider {p} by the user's provider mapping ({pattern})"
            ),
        )
    } else if let Some((f, pattern)) = family {
        (
            Operated::Endpoint,
            format!(
                "host {host} matches {pattern}, an endpoint of {}",
                f.endpoint_name()
            ),
        )
    } else if let Some(op) = venue::operator_for_host(host) {
        (
            Operated::Operator(op),
            format!(
                "host {host} matches {}, operated by {}",
                op.pattern, op.provider
            ),
        )
    } else {
        (
            Operated::Unknown,
            format!("host {host} is no known provider's endpoint and no provider mapping names it"),
        )
    };
    HostInfo {
        host: host.to_owned(),
        venue: venue.into(),
        venue_evidence,
        family: family.map(|(f, _)| f),
        operated,
        explain,
    }
}

/// [`describe_request`], then classifies the event with `ruleset`.
pub fn classify_request(
    req: &HttpRequest<'_>,
    ruleset: &Ruleset,
    venues: &BTreeMap<String, String>,
) -> Result<(Event, Classification)> {
    classify_request_with(req, ruleset, HostMappings::venues(venues))
}

/// [`describe_request_with`] (no API family), then classifies the event with `ruleset`.
pub fn classify_request_with(
    req: &HttpRequest<'_>,
    ruleset: &Ruleset,
    hosts: HostMappings<'_>,
) -> Result<(Event, Classification)> {
    let ev = describe_request_with(req, None, hosts)?;
    let c = ruleset.classify(&ev);
    Ok((ev, c))
}

/// Where the API family came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The host is the family's own endpoint.
    Host,
    /// The caller named the family.
    Hint,
    /// A named operator's host (built-in or user-mapped): the path shape, read leniently.
    Named,
    /// An unknown host: the path shape, read strictly (a version prefix and a known route).
    Shape,
}

/// Defines [`BODY_KEYS`] and [`is_body_key`] from one list (a `match`, compiled to a test of the
/// length and a few comparisons).
macro_rules! body_keys {
    ($(#[$doc:meta])* [$($key:literal),* $(,)?]) => {
        $(#[$doc])*
        #[cfg_attr(not(test), allow(dead_code))]
        const BODY_KEYS: &[&str] = &[$($key),*];

        /// Whether a top-level member is one of [`BODY_KEYS`].
        fn is_body_key(k: &str) -> bool {
            matches!(k, $($key)|*)
        }
    };
}

body_keys! {
    /// The body members any family reads (everything else is skipped unread). Content members
    /// are absent on purpose; `tools` is read for the state it references (containers, vector
    /// stores, file-search stores, a memory or code-execution tool), `params` for an MCP tool's
    /// name, `resources` for the files and memory stores a managed-agent session mounts, `thread`
    /// for the `tool_resources` of a thread created with its run (its messages stay unread).
    [
        "actorId",
        "agent",
        "agent_id",
        "agent_session_id",
        "assistant_id",
        "background",
        "cache_control",
        "cachedContent",
        "cached_content",
        "container",
        "context_management",
        "conversation",
        "enableTrace",
        "endSession",
        "environment",
        "environment_id",
        "file_id",
        "file_ids",
        "foundationModel",
        "inlineSessionState",
        "jsonrpc",
        "mcp_servers",
        "memoryId",
        "method",
        "model",
        "modelId",
        "params",
        "previous_interaction_id",
        "previous_response_id",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "resources",
        "retrieveAndGenerateConfiguration",
        "service_tier",
        "servingMode",
        "session",
        "sessionId",
        "sessionState",
        "store",
        "stream",
        "thread",
        "tool_resources",
        "tools",
    ]
}

/// Whether a top-level member is content searched (never copied) for `cache_control` on
/// Anthropic requests.
fn is_content_scanned(k: &str) -> bool {
    matches!(k, "system" | "messages")
}

/// The provider API families, each handled by one module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    OpenAi,
    Azure,
    BedrockRuntime,
    BedrockMantle,
    BedrockAgentRuntime,
    AgentCore,
    /// The `bedrock` control plane (`bedrock.{region}.amazonaws.com`), which also serves Claude
    /// Managed Agents under `/anthropic/v1`.
    Bedrock,
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
            "bedrock" => Family::Bedrock,
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
            Family::Bedrock => aws::describe_control(cx),
            Family::Anthropic => anthropic::describe(cx, "anthropic"),
            Family::Gemini => gemini::describe(cx, "gcp.gemini"),
            Family::Vertex => gemini::describe(cx, "gcp.vertex_ai"),
        }
    }

    /// The API shape a family's requests have when the module did not say otherwise.
    fn shape(self) -> &'static str {
        match self {
            Family::OpenAi | Family::Azure | Family::BedrockMantle => "openai",
            Family::BedrockRuntime => "bedrock-runtime",
            Family::BedrockAgentRuntime => "bedrock-agent-runtime",
            Family::AgentCore => "bedrock-agentcore",
            Family::Bedrock => "bedrock",
            Family::Anthropic => "anthropic",
            Family::Gemini => "gemini",
            Family::Vertex => "vertex",
        }
    }

    /// Whose endpoint a host of this family is, for explanations.
    fn endpoint_name(self) -> &'static str {
        match self {
            Family::OpenAi => "the OpenAI API",
            Family::Azure => "Azure OpenAI / Microsoft Foundry",
            Family::BedrockRuntime => "Amazon Bedrock (bedrock-runtime)",
            Family::BedrockMantle => "Amazon Bedrock (bedrock-mantle)",
            Family::BedrockAgentRuntime => "Amazon Bedrock Agents (bedrock-agent-runtime)",
            Family::AgentCore => "Amazon Bedrock AgentCore",
            Family::Bedrock => "Amazon Bedrock",
            Family::Anthropic => "the Claude API",
            Family::Gemini => "the Gemini API",
            Family::Vertex => "Vertex AI",
        }
    }
}

/// Provider endpoints and the family each serves (first match wins; the pattern syntax of
/// `classify::venue`). Every host here is also one of the venue table's.
const FAMILY_HOSTS: &[(&str, Family)] = &[
    ("api.openai.com", Family::OpenAi),
    ("api.anthropic.com", Family::Anthropic),
    ("generativelanguage.googleapis.com", Family::Gemini),
    ("aiplatform.googleapis.com", Family::Vertex),
    ("*-aiplatform.googleapis.com", Family::Vertex),
    ("*.openai.azure.com", Family::Azure),
    ("*.services.ai.azure.com", Family::Azure),
    ("*.cognitiveservices.azure.com", Family::Azure),
    ("*.api.azureml.ms", Family::Azure),
    ("bedrock-runtime.{r}.amazonaws.com", Family::BedrockRuntime),
    (
        "bedrock-runtime-fips.{r}.amazonaws.com",
        Family::BedrockRuntime,
    ),
    (
        "*.bedrock-runtime.{r}.vpce.amazonaws.com",
        Family::BedrockRuntime,
    ),
    (
        "bedrock-agent-runtime.{r}.amazonaws.com",
        Family::BedrockAgentRuntime,
    ),
    (
        "*.bedrock-agent-runtime.{r}.vpce.amazonaws.com",
        Family::BedrockAgentRuntime,
    ),
    ("bedrock-agentcore.{r}.amazonaws.com", Family::AgentCore),
    (
        "*.bedrock-agentcore.{r}.vpce.amazonaws.com",
        Family::AgentCore,
    ),
    (
        "*.gateway.bedrock-agentcore.{r}.amazonaws.com",
        Family::AgentCore,
    ),
    ("bedrock-mantle.{r}.api.aws", Family::BedrockMantle),
    ("bedrock.{r}.amazonaws.com", Family::Bedrock),
    ("bedrock-agent.{r}.amazonaws.com", Family::Bedrock),
    (
        "bedrock-agentcore-control.{r}.amazonaws.com",
        Family::Bedrock,
    ),
];

/// The family whose own endpoint `host` (normalised) is, and the pattern it matched.
fn family_for_host(host: &str) -> Option<(Family, &'static str)> {
    FAMILY_HOSTS
        .iter()
        .find(|(pattern, _)| venue::matches(pattern, host))
        .map(|(p, f)| (*f, *p))
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
        let pe = &ev.attrs["provider_evidence"];
        assert_eq!(pe["rule"], "provider-unknown-host");
        assert_eq!(pe["provider"], "unknown");
        assert!(pe.get("shape").is_none());
        let explain = pe["explain"].as_str().unwrap();
        assert!(
            explain.contains("example.com") && explain.contains("/index.html"),
            "{explain}"
        );
    }

    #[test]
    fn an_openai_shape_on_an_unknown_host_is_not_openai() {
        let ev = describe(
            "POST",
            "http://127.0.0.1:8080/v1/chat/completions",
            &[],
            r#"{"model":"gpt-5","messages":[]}"#,
        );
        assert_eq!(ev.provider.as_deref(), Some("unknown"));
        assert_eq!(ev.api.as_deref(), Some("chat.completions"));
        assert_eq!(ev.model.as_deref(), Some("gpt-5"));
        assert_eq!(ev.venue.as_deref(), Some("unknown"));
        let pe = &ev.attrs["provider_evidence"];
        assert_eq!(
            (&pe["provider"], &pe["rule"], &pe["shape"]),
            (
                &json!("unknown"),
                &json!("provider-unknown-host"),
                &json!("openai")
            )
        );
        assert!(pe["explain"]
            .as_str()
            .unwrap()
            .contains("OpenAI-compatible"));
        assert_eq!(
            ev.endpoint.as_deref(),
            Some("http://127.0.0.1:8080/v1/chat/completions")
        );
    }

    #[test]
    fn operators_are_recognised_by_host_whatever_the_shape() {
        let body = r#"{"model":"m","messages":[]}"#;
        for (url, provider, venue, api) in [
            ("https://api.groq.com/openai/v1/chat/completions", "groq", "groq", "chat.completions"),
            ("https://api.mistral.ai/v1/chat/completions", "mistral_ai", "mistral_ai", "chat.completions"),
            ("https://api.deepseek.com/chat/completions", "deepseek", "deepseek", "chat.completions"),
            ("https://api.deepseek.com/responses", "deepseek", "deepseek", "responses"),
            ("https://api.x.ai/v1/responses", "x_ai", "x_ai", "responses"),
            ("https://api.perplexity.ai/chat/completions", "perplexity", "perplexity", "chat.completions"),
            ("https://api.cohere.com/compatibility/v1/chat/completions", "cohere", "cohere", "chat.completions"),
            ("https://api.cohere.com/v2/chat", "cohere", "cohere", "chat"),
            ("https://openrouter.ai/api/v1/responses", "openrouter", "openrouter", "responses"),
            ("https://api.together.xyz/v1/chat/completions", "together", "together", "chat.completions"),
            ("https://api.fireworks.ai/inference/v1/chat/completions", "fireworks", "fireworks", "chat.completions"),
            ("https://api.cerebras.ai/v1/chat/completions", "cerebras", "cerebras", "chat.completions"),
            ("https://api.inference.crusoecloud.com/v1/chat/completions", "crusoe", "crusoe", "chat.completions"),
            ("https://api.z.ai/api/paas/v4/chat/completions", "z_ai", "z_ai", "chat.completions"),
            ("https://api.z.ai/api/anthropic/v1/messages", "z_ai", "z_ai", "messages"),
            ("https://inference.generativeai.us-chicago-1.oci.oraclecloud.com/openai/v1/responses", "oci.generative_ai", "oracle", "responses"),
            ("https://inference.generativeai.eu-frankfurt-1.oci.oraclecloud.com/20231130/actions/chat", "oci.generative_ai", "oracle", "chat"),
        ] {
            let ev = describe("POST", url, &[], body);
            assert_eq!(
                (ev.provider.as_deref(), ev.venue.as_deref(), ev.api.as_deref()),
                (Some(provider), Some(venue), Some(api)),
                "{url}"
            );
            let pe = &ev.attrs["provider_evidence"];
            assert_eq!(pe["rule"], "provider-endpoint", "{url}");
            assert_eq!(ev.model.as_deref(), Some("m"), "{url}");
        }
        let ev = describe(
            "POST",
            "https://router.huggingface.co/together/v1/chat/completions",
            &[],
            body,
        );
        assert_eq!(ev.provider.as_deref(), Some("huggingface"));
        assert_eq!(ev.attrs["upstream_provider"], "together");
        let ev = describe(
            "POST",
            "https://router.huggingface.co/v1/chat/completions",
            &[],
            body,
        );
        assert!(!ev.attrs.contains_key("upstream_provider"));
    }

    #[test]
    fn a_provider_mapping_names_the_operator() {
        let venues = BTreeMap::new();
        let mut providers = BTreeMap::new();
        providers.insert("*.gw.example.com".to_owned(), "openai".to_owned());
        providers.insert("api.groq.com".to_owned(), "groq-eu".to_owned());
        let hosts = HostMappings {
            venues: &venues,
            providers: &providers,
        };
        let req = |url| HttpRequest {
            method: "POST",
            url,
            headers: &[],
            body: Some(br#"{"model":"gpt-5","input":"x","previous_response_id":"resp_1"}"#),
        };
        let ev = describe_request_with(&req("https://eu.gw.example.com/v1/responses"), None, hosts)
            .unwrap();
        assert_eq!(ev.provider.as_deref(), Some("openai"));
        assert_eq!(ev.venue.as_deref(), Some("unknown"));
        assert_eq!(
            ev.attrs["provider_evidence"]["rule"],
            "provider-user-mapping"
        );
        assert!(ev.attrs["provider_evidence"]["explain"]
            .as_str()
            .unwrap()
            .contains("*.gw.example.com"));
        assert_eq!(
            ev.request.as_ref().unwrap()["previous_response_id"],
            "resp_1"
        );
        // Leniently read, like a built-in operator: no version prefix needed.
        let ev = describe_request_with(&req("https://eu.gw.example.com/responses"), None, hosts)
            .unwrap();
        assert_eq!(ev.api.as_deref(), Some("responses"));
        // The mapping wins over the built-in operator table and over provider endpoints.
        let ev = describe_request_with(
            &req("https://api.groq.com/openai/v1/responses"),
            None,
            hosts,
        )
        .unwrap();
        assert_eq!(
            (ev.provider.as_deref(), ev.venue.as_deref()),
            (Some("groq-eu"), Some("groq"))
        );
        providers.insert("api.openai.com".to_owned(), "openai-eu".to_owned());
        let hosts = HostMappings {
            venues: &venues,
            providers: &providers,
        };
        let ev = describe_request_with(&req("https://api.openai.com/v1/responses"), None, hosts)
            .unwrap();
        assert_eq!(ev.provider.as_deref(), Some("openai-eu"));
        assert_eq!(ev.api.as_deref(), Some("responses"));
    }

    #[test]
    fn every_event_carries_its_method() {
        for (method, url, body) in [
            ("post", "https://api.openai.com/v1/files", ""),
            ("DELETE", "https://api.openai.com/v1/files/file-1", ""),
            ("Get", "https://example.org/x", ""),
            ("DELETE", "https://mcp.example.com/mcp", ""),
            (
                "POST",
                "https://mcp.example.com/mcp",
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            ),
        ] {
            let headers: &[(&str, &str)] = if url.contains("mcp") {
                &[("mcp-session-id", "s")]
            } else {
                &[]
            };
            let ev = describe(method, url, headers, body);
            assert_eq!(
                ev.attrs["http.request.method"],
                method.to_ascii_uppercase(),
                "{method} {url}"
            );
        }
    }

    #[test]
    fn an_empty_mcp_method_or_tool_name_names_no_tool() {
        for (body, tool, method) in [
            (r#"{"jsonrpc":[],"method":""}"#, "unknown", None),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}"#,
                "tools/call",
                Some("tools/call"),
            ),
            (r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, "response", None),
        ] {
            let ev = describe("POST", "a://a/", &[], body);
            assert_eq!(ev.tool.as_deref(), Some(tool), "{body}");
            assert_eq!(
                ev.attrs.get("mcp.method.name").and_then(|v| v.as_str()),
                method,
                "{body}"
            );
            assert!(!ev.attrs.contains_key("gen_ai.tool.name"), "{body}");
            ev.finish().expect(body);
        }
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
        let ev = describe_request(&req, &none).unwrap();
        assert_eq!(
            (ev.provider.as_deref(), ev.api.as_deref()),
            (Some("unknown"), Some("unknown"))
        );
        // The hint says how to read the request, not who serves it.
        let ev = describe_request_as(&req, Some("bedrock-agentcore"), &none).unwrap();
        assert_eq!(
            (ev.provider.as_deref(), ev.api.as_deref()),
            (Some("unknown"), Some("create_event"))
        );
        assert_eq!(ev.venue.as_deref(), Some("unknown"));
        let pe = &ev.attrs["provider_evidence"];
        assert_eq!(pe["shape"], "bedrock-agentcore");
        assert!(pe["explain"]
            .as_str()
            .unwrap()
            .contains("bedrock-agentcore"));
        let mut providers = BTreeMap::new();
        providers.insert("127.0.0.1".to_owned(), "aws.bedrock".to_owned());
        let hosts = HostMappings {
            venues: &none,
            providers: &providers,
        };
        let ev = describe_request_with(&req, Some("bedrock-agentcore"), hosts).unwrap();
        assert_eq!(
            (ev.provider.as_deref(), ev.api.as_deref()),
            (Some("aws.bedrock"), Some("create_event"))
        );
        let err = describe_request_as(&req, Some("sagemaker"), &none).unwrap_err();
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
    fn body_keys_by_length() {
        assert!(BODY_KEYS.iter().all(|k| is_body_key(k)));
        for other in [
            "",
            "messages",
            "input",
            "temperature",
            "modelx",
            "mode",
            "x".repeat(99).as_str(),
        ] {
            assert!(!is_body_key(other), "{other}");
        }
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
