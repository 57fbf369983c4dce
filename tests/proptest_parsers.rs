//! Property tests (proptest) of everything that reads outside input or writes the hashed bytes,
//! run by `cargo test` without Python: the counterpart of a `cargo fuzz` target that fits in
//! the normal test run. `PROPTEST_CASES=20000 cargo test --test proptest_parsers` runs longer
//! (`make test-long` does).
//!
//! - canonical encoder (`ledger::canonical`): parsing the output gives the input back (numbers
//!   compared by value: `56.0` is written `56`), the output is a fixed point, keys are in
//!   UTF-16 order, and any JSON text canonicalizes without panicking;
//! - rules engine: any event map (raw or validated) classifies without panicking, with evidence
//!   that is never empty; any ruleset, contract or price TOML parses or errs without panicking;
//! - OTLP/JSON parser and span mapper (`otel`): arbitrary text and arbitrary OTLP-shaped JSON
//!   never panic, and mapped events are valid events;
//! - HTTP request classifier (`classify::request`): arbitrary methods, URLs, headers and body
//!   bytes never panic, and a described request always makes a recordable event (the limits in
//!   `classify/request/limits.rs` keep it within the event's own);
//! - the response usage reader (`usage`): arbitrary bytes never panic.

use std::collections::BTreeMap;

use _core::canonical::{cmp_keys, to_canonical};
use _core::capture::http::{classify_request, describe_request, HttpRequest};
use _core::classify::Ruleset;
use _core::event::Event;
use _core::event::Tag;
use _core::otel::{parse_otlp_json, Mapper};
use proptest::prelude::*;
use serde_json::{json, Map, Number, Value};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any string, weighted towards the characters that matter to JSON and to UTF-16 ordering.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z_.]{0,12}",
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\u{0}'),
                Just('\u{1f}'),
                Just('\u{7f}'),
                Just('\u{e000}'),
                Just('\u{fb33}'),
                Just('\u{ffff}'),
                Just('\u{1f602}'),
                Just('é'),
                any::<char>(),
            ],
            0..8
        )
        .prop_map(|cs| cs.into_iter().collect()),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| Value::Number(Number::from_f64(x).expect("finite"))),
        prop_oneof![
            Just(0.1),
            Just(1e21),
            Just(1e-7),
            Just(5e-324),
            Just(-0.0),
            Just(56.0)
        ]
        .prop_map(|x: f64| Value::Number(Number::from_f64(x).expect("finite"))),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Equality of JSON values with numbers compared by value (an integral float is written as
/// an integer, and `-0` as `0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(i), Some(j), _, _) => i == j,
                (_, _, Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Object keys appear in UTF-16 order at every level of canonical text.
fn keys_in_order(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().all(keys_in_order),
        Value::Object(m) => m.values().all(keys_in_order),
        _ => true,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn canonical_round_trips_and_is_a_fixed_point(v in json_value()) {
        let text = to_canonical(&v).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        prop_assert!(same(&parsed, &v), "{} read back as {}", v, parsed);
        prop_assert_eq!(to_canonical(&parsed).unwrap(), text.clone());
        prop_assert!(keys_in_order(&parsed));
        prop_assert!(!text.contains(['\n', '\t', '\r']) || text.contains('"'));
    }

    #[test]
    fn canonical_key_order_is_utf16(a in text(), b in text()) {
        let doc = json!({ a.clone(): 1, b.clone(): 2 });
        let text = to_canonical(&doc).unwrap();
        if a != b {
            let (first, _) = if cmp_keys(&a, &b).is_lt() { (&a, &b) } else { (&b, &a) };
            let mut expected = String::from("{");
            _core::canonical::write_str(&mut expected, first);
            prop_assert!(text.starts_with(&expected), "{} does not start with {}", text, expected);
        }
    }

    #[test]
    fn any_json_text_canonicalizes_without_panic(s in prop_oneof![
        any::<String>(),
        json_value().prop_map(|v| v.to_string()),
        "[\\[\\]{}:,\"0-9a-z.eE+-]{0,40}",
    ]) {
        if let Ok(v) = serde_json::from_str::<Value>(&s) {
            let once = to_canonical(&v).unwrap();
            let again: Value = serde_json::from_str(&once).unwrap();
            prop_assert_eq!(to_canonical(&again).unwrap(), once);
        }
    }
}

const FIELDS: &[&str] = &[
    "kind",
    "id",
    "ts",
    "duration_ns",
    "session_id",
    "parent_id",
    "agent",
    "tenant",
    "attrs",
    "venue",
    "status",
    "runtime",
    "runtime_session_id",
    "provider",
    "model",
    "api",
    "endpoint",
    "request",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "tool",
    "tool_kind",
    "effect",
    "mcp_session_id",
    "op",
    "store",
    "holder",
    "scope",
    "key",
    "bytes",
];

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop_oneof![
            Just(json!("model_call")), Just(json!("tool_call")), Just(json!("state_op")),
            Just(json!("session_start")), Just(json!("session_end")), Just(json!("openai")),
            Just(json!("anthropic")), Just(json!("aws.bedrock")), Just(json!("responses")),
            Just(json!("chat.completions")), Just(json!("messages")), Just(json!("converse")),
            Just(json!("invoke_agent")), Just(json!("read")), Just(json!("write")),
            Just(json!("provider")), Just(json!("client")), Just(json!("session")),
            Just(json!("mcp")), Just(json!(true)), Just(json!(12)),
            Just(json!({"previous_response_id": "r"})), Just(json!({"conversation": {"id": "c"}})),
            Just(json!({"store": false})), Just(json!({"sessionId": "s", "memoryId": "m"})),
            Just(json!({"container": "cntr", "cache_control": true})),
        ],
        1 => json_value(),
    ]
}

fn event_map() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(
        prop_oneof![4 => proptest::sample::select(FIELDS).prop_map(str::to_owned), 1 => text()],
        field_value(),
        0..10,
    )
    .prop_map(|m| m.into_iter().collect())
}

fn check_classification(c: &_core::event::Classification) -> Result<(), TestCaseError> {
    prop_assert!(!c.evidence.is_empty(), "no evidence");
    let stateful = c.evidence.iter().any(|e| e.tag == Tag::Stateful);
    // Under the built-in rulesets an event is stateful only with a stateful piece of evidence.
    prop_assert!(c.tag == Tag::Stateless || stateful || c.creates_state || c.consumes_state);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_event_map_classifies_with_evidence(m in event_map()) {
        for rs in [Ruleset::builtin_default(), Ruleset::builtin_strict()] {
            // Raw maps (no validation at all) and, when it validates, the event itself.
            check_classification(&rs.classify(&m))?;
            if let Ok(ev) = Event::from_map(&m).and_then(Event::finish) {
                let c = rs.classify(&ev);
                check_classification(&c)?;
                let mut out = String::new();
                ev.write_canonical_json(&mut out).unwrap();
                let back: Value = serde_json::from_str(&out).unwrap();
                prop_assert_eq!(to_canonical(&back).unwrap(), out);
                let mut cj = String::new();
                c.write_canonical_json(&mut cj);
                prop_assert!(serde_json::from_str::<Value>(&cj).is_ok());
            }
        }
    }

    #[test]
    fn any_toml_text_parses_or_errs(s in prop_oneof![
        any::<String>(),
        "[\\[\\]a-z_ =\"'{},.0-9\n#-]{0,80}",
        Just(include_str!("../src/classify/catalogue/default.toml").to_owned()).prop_flat_map(|t| {
            (0..t.len()).prop_map(move |cut| {
                let mut cut = cut;
                while !t.is_char_boundary(cut) { cut -= 1; }
                t[..cut].to_owned()
            })
        }),
    ]) {
        if let Ok(rs) = Ruleset::from_toml(&s) {
            check_classification(&rs.classify(&Map::new()))?;
        }
        let _ = _core::accounting::contract::Contract::from_toml(&s);
        let _ = _core::accounting::pricing::PriceTable::from_toml(&s);
    }
}

fn otlp_attr() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("gen_ai.operation.name"),
        Just("gen_ai.provider.name"),
        Just("gen_ai.system"),
        Just("gen_ai.request.model"),
        Just("gen_ai.usage.input_tokens"),
        Just("gen_ai.usage.output_tokens"),
        Just("gen_ai.conversation.id"),
        Just("gen_ai.response.id"),
        Just("gen_ai.tool.name"),
        Just("mcp.session.id"),
        Just("server.address"),
        Just("statemeter.event"),
        Just("statemeter.tag"),
        Just("gen_ai.openai.request.previous_response_id"),
        Just("x"),
    ];
    let value = prop_oneof![
        prop_oneof![Just("chat"), Just("invoke_agent"), Just("execute_tool"), Just("openai"),
                    Just("api.openai.com"), Just("{\"kind\":\"tool_call\"}"), Just("12")]
            .prop_map(|s| json!({"stringValue": s})),
        text().prop_map(|s| json!({"stringValue": s})),
        any::<i64>().prop_map(|i| json!({"intValue": i.to_string()})),
        any::<i64>().prop_map(|i| json!({"intValue": i})),
        any::<bool>().prop_map(|b| json!({"boolValue": b})),
        Just(json!({"doubleValue": 1.5})),
        json_value().prop_map(|v| json!({"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": v.to_string()}}]}})),
        json_value(),
    ];
    (key, value).prop_map(|(k, v)| json!({"key": k, "value": v}))
}

fn hex(len: usize) -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), len / 2).prop_map(|b| json!(hex::encode(b))),
        text().prop_map(Value::String),
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
    ]
}

fn otlp_span() -> impl Strategy<Value = Value> {
    (
        hex(32),
        hex(16),
        prop_oneof![Just(Value::Null), hex(16)],
        text(),
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            Just(json!("1767225600000000000"))
        ],
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            Just(json!("1767225601000000000"))
        ],
        proptest::collection::vec(otlp_attr(), 0..8),
        0i64..7,
    )
        .prop_map(|(t, s, p, name, start, end, attrs, kind)| {
            json!({"traceId": t, "spanId": s, "parentSpanId": p, "name": name,
                   "startTimeUnixNano": start, "endTimeUnixNano": end,
                   "attributes": attrs, "kind": kind, "status": {"code": kind % 3}})
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn otlp_parser_and_mapper_never_panic(doc in prop_oneof![
        any::<String>(),
        json_value().prop_map(|v| v.to_string()),
        proptest::collection::vec(otlp_span(), 0..6).prop_map(|spans| {
            json!({"resourceSpans": [{"resource": {"attributes": []},
                                      "scopeSpans": [{"spans": spans}]}]}).to_string()
        }),
    ]) {
        if let Ok(spans) = parse_otlp_json(&doc) {
            if let Ok(events) = Mapper::map_all(BTreeMap::new(), &spans) {
                for e in &events {
                    // Mapped events are valid events (they were validated before returning).
                    prop_assert!(Event::from_map(e).and_then(Event::finish).is_ok(), "{:?}", e);
                }
            }
        }
    }
}

fn url() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just("api.openai.com"),
        Just("api.anthropic.com"),
        Just("x.openai.azure.com"),
        Just("bedrock-runtime.us-east-1.amazonaws.com"),
        Just("bedrock-agentcore.us-east-1.amazonaws.com"),
        Just("bedrock-agent-runtime.eu-west-1.amazonaws.com"),
        Just("generativelanguage.googleapis.com"),
        Just("us-central1-aiplatform.googleapis.com"),
        Just("gw.example.com"),
        Just("127.0.0.1:8080"),
        Just("[::1]"),
    ];
    let path = prop_oneof![
        Just("/v1/responses"),
        Just("/v1/chat/completions"),
        Just("/v1/messages"),
        Just("/openai/deployments/d/chat/completions"),
        Just("/model/m/converse"),
        Just("/runtimes/arn%3Aaws%3Ax/invocations"),
        Just("/v1beta/models/g:generateContent"),
        Just("/agents/a/agentAliases/b/sessions/s/text"),
        Just("/mcp"),
        Just("/v1/threads/t/runs"),
    ]
    .prop_map(str::to_owned);
    let path = prop_oneof![path, "/[a-zA-Z0-9/%:._-]{0,40}"];
    prop_oneof![
        4 => (host, path, "(\\?[a-z=&%]{0,10})?").prop_map(|(h, p, q)| format!("https://{h}{p}{q}")),
        1 => any::<String>(),
        1 => "[a-z]{0,5}://[^/]{0,20}/.{0,20}",
    ]
}

fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Some),
        proptest::collection::btree_map(
            prop_oneof![
                Just("model".to_owned()),
                Just("previous_response_id".to_owned()),
                Just("store".to_owned()),
                Just("conversation".to_owned()),
                Just("tools".to_owned()),
                Just("container".to_owned()),
                Just("messages".to_owned()),
                Just("system".to_owned()),
                Just("sessionState".to_owned()),
                Just("memoryId".to_owned()),
                Just("jsonrpc".to_owned()),
                Just("method".to_owned()),
                Just("params".to_owned()),
                Just("mcp_servers".to_owned()),
                Just("vector_store_ids".to_owned()),
                Just("cachedContent".to_owned()),
                Just("cache_control".to_owned()),
                text(),
            ],
            json_value(),
            0..6,
        )
        .prop_map(|m| Some(
            Value::Object(m.into_iter().collect())
                .to_string()
                .into_bytes()
        )),
        json_value().prop_map(|v| Some(v.to_string().into_bytes())),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn http_requests_never_panic_and_make_recordable_events(
        method in prop_oneof![Just("POST".to_owned()), Just("GET".to_owned()), any::<String>()],
        url in url(),
        headers in proptest::collection::vec((
            prop_oneof![Just("Mcp-Session-Id".to_owned()), Just("OpenAI-Beta".to_owned()),
                        Just("anthropic-beta".to_owned()), Just("mcp-protocol-version".to_owned()),
                        Just("X-Amzn-Bedrock-AgentCore-Runtime-Session-Id".to_owned()), text()],
            text()), 0..4),
        body in body(),
    ) {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let req = HttpRequest { method: &method, url: &url, headers: &h, body: body.as_deref() };
        let venues = BTreeMap::new();
        if let Ok((ev, c)) = classify_request(&req, &Ruleset::builtin_default(), &venues) {
            check_classification(&c)?;
            let finished = ev.clone().finish();
            prop_assert!(finished.is_ok(), "{:?} for {:?}", finished.err(), ev);
        }
        let _ = describe_request(&req, &venues);
    }

    #[test]
    fn usage_reader_never_panics(
        content_type in prop_oneof![Just(None), Just(Some("application/json")),
                                    Just(Some("text/event-stream"))],
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            json_value().prop_map(|v| format!("data: {{\"usage\": {v}}}\n\n").into_bytes()),
        ],
    ) {
        let _ = _core::capture::usage::read_usage(content_type, &body);
    }
}

/// Found by `http_requests_never_panic_and_make_recordable_events`: a Gemini path with an empty
/// method (`/:`) gave `api = ""`, an event that could not be recorded.
#[test]
fn gemini_path_without_a_method_is_recordable() {
    let req = HttpRequest {
        method: "POST",
        url: "https://generativelanguage.googleapis.com/:",
        headers: &[],
        body: None,
    };
    let ev = describe_request(&req, &BTreeMap::new()).unwrap();
    assert_eq!(ev.api.as_deref(), Some("unknown"));
    ev.finish().unwrap();
}
