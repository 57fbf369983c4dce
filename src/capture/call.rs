//! One HTTP call a capture integration observed, kept raw: the request as it was sent (the
//! headers the classifier reads, never the others) and what its response said (status, the
//! body read for usage). [`CapturedCall::event`] turns it into the event to record — the
//! request described as [`http::describe_request_with`] does, the usage read as
//! [`usage::read_usage`] does — so that this work can run on the meter's writer thread instead
//! of the thread that sent the request.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::http::{self, HostMappings, HttpRequest};
use super::usage;
use crate::error::Result;
use crate::event::{Event, EventKind};

/// The user's host mappings of one instrumented client: `venues` (host pattern → venue) and
/// `providers` (host pattern → the provider operating it), checked before the built-in tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hosts {
    pub venues: BTreeMap<String, String>,
    pub providers: BTreeMap<String, String>,
}

/// The request as sent.
#[derive(Debug, Default)]
pub struct CapturedRequest {
    pub method: String,
    pub url: String,
    /// Only the headers the classifier reads ([`http::HEADERS_READ`]).
    pub headers: Vec<(String, String)>,
    /// `None` when the body was streamed and not read.
    pub body: Option<Held>,
}

/// Bytes a captured call holds until the writer reads them: a copy of its own, or bytes that
/// their owner never changes, held as they are (an HTTP client's request body, kept by a
/// reference to it), so that the thread handing the call over copies nothing.
pub enum Held {
    Copied(Vec<u8>),
    Shared(Box<dyn AsRef<[u8]> + Send>),
}

impl Held {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Held::Copied(b) => b,
            Held::Shared(b) => (**b).as_ref(),
        }
    }
}

impl From<Vec<u8>> for Held {
    fn from(bytes: Vec<u8>) -> Self {
        Held::Copied(bytes)
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Held::Copied(_) => "Copied",
            Held::Shared(_) => "Shared",
        };
        write!(f, "Held::{kind}({} bytes)", self.bytes().len())
    }
}

/// What the response body gave to read usage from.
#[derive(Clone, Debug)]
pub enum ResponseBody {
    /// A JSON or server-sent events body (decoded), with its content type.
    Read { content_type: String, body: Vec<u8> },
    /// Not read for usage, for the reason given (recorded as attrs `usage_unread`).
    Unread(String),
    /// Nothing to read usage from (another content type, or no body).
    Nothing,
}

/// How the caller's reading of the response ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The body was read to its end (or to the provider's end marker).
    Complete,
    /// The caller closed the response before its end.
    Cancelled,
    /// Reading the body failed.
    Error,
}

impl Outcome {
    /// `"complete"`, `"cancelled"` or `"error"`.
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "complete" => Some(Outcome::Complete),
            "cancelled" => Some(Outcome::Cancelled),
            "error" => Some(Outcome::Error),
            _ => None,
        }
    }

    /// The event's status: `error` for a failed read or HTTP >= 400, `cancelled` when the
    /// caller closed the stream early, else `ok`.
    pub fn status(self, http_status: Option<i64>) -> &'static str {
        if self == Outcome::Error || http_status.is_some_and(|s| s >= 400) {
            "error"
        } else if self == Outcome::Cancelled {
            "cancelled"
        } else {
            "ok"
        }
    }
}

/// One observed call: the request, the response, and when.
#[derive(Debug)]
pub struct CapturedCall {
    pub request: CapturedRequest,
    pub hosts: Arc<Hosts>,
    /// When the request was sent (ns since the epoch).
    pub ts: i64,
    /// From the request to the end of the body.
    pub duration_ns: i64,
    pub http_status: Option<i64>,
    pub outcome: Outcome,
    pub response: ResponseBody,
}

impl CapturedCall {
    /// The bytes of the request's and the response's bodies it holds.
    pub fn held_bytes(&self) -> usize {
        let response = match &self.response {
            ResponseBody::Read { body, .. } => body.len(),
            _ => 0,
        };
        self.request.body.as_ref().map_or(0, |b| b.bytes().len()) + response
    }

    /// The `model_call` (or MCP `tool_call`) this call amounts to, with its timing, status
    /// (`http.response.status_code` in attrs), usage (`input_tokens`, `output_tokens`,
    /// `cached_tokens`; reasoning and cache-creation tokens, the response id and model in attrs
    /// under their OpenTelemetry names); `None` when the request is no AI API at all (neither
    /// the host nor the path shape is one: provider and api `unknown`). Not yet completed: the
    /// recorder stamps the id and validates.
    pub fn event(&self) -> Result<Option<Event>> {
        let r = &self.request;
        let refs: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let req = HttpRequest {
            method: &r.method,
            url: &r.url,
            headers: &refs,
            body: r.body.as_ref().map(Held::bytes),
        };
        let hosts = HostMappings {
            venues: &self.hosts.venues,
            providers: &self.hosts.providers,
        };
        let mut e = http::describe_request_with(&req, None, hosts)?;
        if e.kind == EventKind::ModelCall
            && e.provider.as_deref() == Some("unknown")
            && e.api.as_deref() == Some("unknown")
        {
            return Ok(None);
        }
        e.ts = self.ts;
        e.ts_explicit = true;
        e.duration_ns = Some(self.duration_ns.max(0));
        e.status = Some(self.outcome.status(self.http_status).into());
        if let Some(s) = self.http_status {
            e.attrs
                .insert("http.response.status_code".into(), Value::from(s));
        }
        match &self.response {
            ResponseBody::Read { content_type, body } => {
                add_usage(&mut e, &usage::read_usage(Some(content_type), body));
            }
            ResponseBody::Unread(why) => {
                e.attrs
                    .insert("usage_unread".into(), Value::String(why.clone()));
            }
            ResponseBody::Nothing => {}
        }
        Ok(Some(e))
    }
}

/// Usage onto the event: the counts on a model call, ids (and the extra counts) in attrs.
fn add_usage(e: &mut Event, u: &usage::Usage) {
    if e.kind == EventKind::ModelCall {
        if let Some(n) = u.input_tokens {
            e.input_tokens = Some(n);
        }
        if let Some(n) = u.output_tokens {
            e.output_tokens = Some(n);
        }
        if let Some(n) = u.cached_tokens {
            e.cached_tokens = Some(n);
        }
        if let Some(n) = u.reasoning_tokens {
            e.attrs
                .insert("gen_ai.usage.reasoning.output_tokens".into(), n.into());
        }
        if let Some(n) = u.cache_creation_tokens {
            e.attrs
                .insert("gen_ai.usage.cache_creation.input_tokens".into(), n.into());
        }
    }
    if let Some(id) = &u.response_id {
        e.attrs
            .insert("gen_ai.response.id".into(), Value::String(id.clone()));
    }
    if let Some(m) = &u.response_model {
        e.attrs
            .insert("gen_ai.response.model".into(), Value::String(m.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(url: &str, body: &[u8], response: ResponseBody) -> CapturedCall {
        CapturedCall {
            request: CapturedRequest {
                method: "POST".into(),
                url: url.into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: Some(body.to_vec().into()),
            },
            hosts: Arc::default(),
            ts: 1_700_000_000_000_000_000,
            duration_ns: 1234,
            http_status: Some(200),
            outcome: Outcome::Complete,
            response,
        }
    }

    #[test]
    fn a_chat_call_gets_timing_status_and_usage() {
        let body = br#"{"id":"chatcmpl-1","model":"gpt-5-2025","usage":{"prompt_tokens":500,"completion_tokens":40,"prompt_tokens_details":{"cached_tokens":128},"completion_tokens_details":{"reasoning_tokens":7}}}"#;
        let e = call(
            "https://api.openai.com/v1/chat/completions",
            br#"{"model":"gpt-5","messages":[]}"#,
            ResponseBody::Read {
                content_type: "application/json".into(),
                body: body.to_vec(),
            },
        )
        .event()
        .unwrap()
        .expect("an AI API call");
        assert_eq!(e.kind, EventKind::ModelCall);
        assert_eq!(e.provider.as_deref(), Some("openai"));
        assert_eq!(e.model.as_deref(), Some("gpt-5"));
        assert_eq!(e.ts, 1_700_000_000_000_000_000);
        assert!(e.ts_explicit);
        assert_eq!(e.duration_ns, Some(1234));
        assert_eq!(e.status.as_deref(), Some("ok"));
        assert_eq!(
            (e.input_tokens, e.output_tokens, e.cached_tokens),
            (Some(500), Some(40), Some(128))
        );
        assert_eq!(e.attrs["http.response.status_code"], 200);
        assert_eq!(e.attrs["gen_ai.response.id"], "chatcmpl-1");
        assert_eq!(e.attrs["gen_ai.response.model"], "gpt-5-2025");
        assert_eq!(e.attrs["gen_ai.usage.reasoning.output_tokens"], 7);
    }

    #[test]
    fn a_request_body_held_as_it_is_reads_like_a_copy() {
        /// Bytes kept by another owner, which sees (by the `Arc`) when they are released.
        struct Owned(Vec<u8>, #[allow(dead_code)] Arc<()>);
        impl AsRef<[u8]> for Owned {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
        let body = br#"{"model":"gpt-5","messages":[],"temperature":0.2}"#;
        let url = "https://api.openai.com/v1/chat/completions";
        let copied = call(url, body, ResponseBody::Nothing);
        let mut shared = call(url, b"", ResponseBody::Nothing);
        let owner = Arc::new(());
        shared.request.body = Some(Held::Shared(Box::new(Owned(
            body.to_vec(),
            Arc::clone(&owner),
        ))));
        assert_eq!(shared.held_bytes(), body.len());
        let a = copied.event().unwrap().unwrap();
        let b = shared.event().unwrap().unwrap();
        assert_eq!(b.model.as_deref(), Some("gpt-5"));
        assert_eq!((a.model, a.request), (b.model, b.request));
        drop(shared);
        assert_eq!(Arc::strong_count(&owner), 1, "released with the call");
    }

    #[test]
    fn no_ai_api_is_nothing_to_record() {
        let c = call("https://example.com/index.html", b"", ResponseBody::Nothing);
        assert!(c.event().unwrap().is_none());
    }

    #[test]
    fn status_follows_the_outcome_and_http_status() {
        assert_eq!(Outcome::Complete.status(Some(200)), "ok");
        assert_eq!(Outcome::Complete.status(Some(429)), "error");
        assert_eq!(Outcome::Cancelled.status(Some(200)), "cancelled");
        assert_eq!(Outcome::Error.status(None), "error");
        assert_eq!(Outcome::parse("cancelled"), Some(Outcome::Cancelled));
        assert_eq!(Outcome::parse("done"), None);
    }

    #[test]
    fn an_unread_body_is_noted() {
        let mut c = call(
            "https://api.openai.com/v1/chat/completions",
            br#"{"model":"gpt-5"}"#,
            ResponseBody::Unread("response body over 8388608 bytes".into()),
        );
        c.duration_ns = -5;
        let e = c.event().unwrap().unwrap();
        assert_eq!(e.attrs["usage_unread"], "response body over 8388608 bytes");
        assert_eq!(e.duration_ns, Some(0));
        assert_eq!(e.input_tokens, None);
    }

    #[test]
    fn a_malformed_request_is_an_error() {
        let mut c = call("not a url", b"", ResponseBody::Nothing);
        assert!(c.event().is_err());
        c.request.url = "https://api.openai.com/v1/chat/completions".into();
        c.request.method = "P OST".into();
        assert!(c.event().is_err());
    }
}
