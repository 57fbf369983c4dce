//! OpenTelemetry GenAI spans in and out: the OTLP/JSON parser ([`otlp`]), the mapping from
//! GenAI semantic-convention spans to statemeter events ([`genai`]) and the export of events
//! as GenAI spans ([`export`]); a captured HTTP call and the span of the same call become one
//! event ([`join`]). No pyo3 here: `src/python/otel.rs` is the thin binding used by
//! `statemeter.integrations.otel` (the live `MeterSpanProcessor` and `import_otlp_json` /
//! `export_otlp_json`).
//!
//! A [`Span`] is the one shape both inputs share: the OTLP parser builds it from a file, the
//! span processor from a live SDK span. Attribute values are JSON values (OTLP `AnyValue`:
//! string, bool, int, double, bytes as base64 text, arrays, key-value lists as objects).

use serde_json::{Map, Value};

pub mod conventions;
pub mod export;
pub mod frameworks;
pub mod genai;
pub mod join;
pub mod live;
pub mod otlp;

pub use export::spans_from_events;
pub use genai::{Mapper, Outcome};
pub use live::LiveTraces;
pub use otlp::parse_otlp_json;

/// OTLP `SpanKind` values (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5
/// consumer). The Python SDK's `SpanKind` enum counts from INTERNAL = 0, one less: see
/// [`kind_from_sdk`].
pub const KIND_INTERNAL: i64 = 1;
pub const KIND_SERVER: i64 = 2;
pub const KIND_CLIENT: i64 = 3;

/// The OTLP `SpanKind` of a Python SDK `SpanKind.value` (INTERNAL 0, SERVER 1, CLIENT 2,
/// PRODUCER 3, CONSUMER 4); anything else is unspecified.
pub fn kind_from_sdk(sdk_kind: i64) -> i64 {
    if (0..=4).contains(&sdk_kind) {
        sdk_kind + 1
    } else {
        0
    }
}

/// OTLP `Status.code`: 0 unset, 1 ok, 2 error.
pub const STATUS_ERROR: i64 = 2;

/// One finished span, ids as lower-case hex (`trace_id` 32 digits, `span_id` 16).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    /// OTLP `SpanKind` (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer).
    pub kind: i64,
    pub start_ns: i64,
    pub end_ns: i64,
    pub status_code: i64,
    pub status_message: Option<String>,
    pub attributes: Map<String, Value>,
    /// The resource's attributes (`service.name`, ...).
    pub resource: Map<String, Value>,
}

impl Span {
    /// A string attribute (non-empty), if present.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attributes.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    /// `"{trace_id}:{span_id}"`: unique across traces (span ids alone are only unique within one).
    pub fn key(&self) -> String {
        format!("{}:{}", self.trace_id, self.span_id)
    }
}
