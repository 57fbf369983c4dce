//! The labelled request corpus (`tests/corpus/requests/*.json`) under both built-in rulesets:
//! every case that states `state_kinds` or `tag_strict` classifies to them (the other fields are
//! checked by `capture::http::corpus_tests`), and every rule of the default catalogue that a
//! request can trigger is exercised by at least one case's expected `rules`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use _core::capture::http::{classify_request_with, HostMappings, HttpRequest};
use _core::classify::Ruleset;
use serde_json::Value;

/// Rules no HTTP request triggers, and why.
const NOT_ON_THE_WIRE: &[(&str, &str)] = &[
    ("runtime-session", "session_start / session_end events"),
    ("state-op-read", "state_op events"),
    ("state-op-write", "state_op events"),
    ("state-op-delete", "state_op events"),
    (
        "mcp-session-id-unrecorded-method",
        "MCP calls recorded without an HTTP method (spans, integrations)",
    ),
    (
        "gemini-memory-bank",
        "Memory Bank calls recorded without an HTTP method",
    ),
    (
        "gemini-live-session-resumption",
        "Live API setup messages travel over a WebSocket",
    ),
    (
        "gemini-live-session-resumption-handle",
        "Live API setup messages travel over a WebSocket",
    ),
    (
        "bedrock-agent-memory-configuration",
        "CreateAgent is a bedrock-agent control-plane call, recorded by the botocore integration",
    ),
];

fn corpus() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/requests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/corpus/requests exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        for c in cases {
            out.push((format!("{stem}: {}", c["name"].as_str().unwrap()), c));
        }
    }
    out
}

fn mapping(c: &Value, key: &str) -> BTreeMap<String, String> {
    c.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn state_kinds_and_the_strict_tag_are_as_labelled() {
    let (default, strict) = (Ruleset::builtin_default(), Ruleset::builtin_strict());
    let mut failures = Vec::new();
    let mut checked = 0;
    for (who, c) in corpus() {
        let e = &c["expect"];
        if e.get("state_kinds").is_none() && e.get("tag_strict").is_none() {
            continue;
        }
        checked += 1;
        let headers: Vec<(String, String)> = c["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body: Option<Vec<u8>> = match (c.get("body"), c.get("body_text")) {
            (_, Some(Value::String(t))) => Some(t.as_bytes().to_vec()),
            (Some(Value::Null), _) | (None, _) => None,
            (Some(b), _) => Some(serde_json::to_vec(b).unwrap()),
        };
        let (venues, providers) = (mapping(&c, "venues"), mapping(&c, "providers"));
        let hosts = HostMappings {
            venues: &venues,
            providers: &providers,
        };
        let req = HttpRequest {
            method: c["method"].as_str().unwrap(),
            url: c["url"].as_str().unwrap(),
            headers: &headers,
            body: body.as_deref(),
        };
        let (_, d) = classify_request_with(&req, &default, hosts).unwrap();
        let (_, s) = classify_request_with(&req, &strict, hosts).unwrap();
        if let Some(want) = e.get("state_kinds") {
            let got: Vec<Value> = d.state_kinds.iter().map(|k| k.as_str().into()).collect();
            if &Value::Array(got.clone()) != want {
                failures.push(format!("{who}: state_kinds = {got:?}, expected {want}"));
            }
            let strict_kinds: Vec<Value> =
                s.state_kinds.iter().map(|k| k.as_str().into()).collect();
            assert_eq!(
                got, strict_kinds,
                "{who}: the kinds do not depend on the ruleset"
            );
        }
        if let Some(want) = e.get("tag_strict") {
            if want != s.tag.as_str() {
                failures.push(format!("{who}: strict tag = {}, expected {want}", s.tag));
            }
        }
    }
    assert!(
        checked >= 100,
        "only {checked} cases state kinds or a strict tag"
    );
    assert!(
        failures.is_empty(),
        "{} corpus cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_a_request_can_trigger_has_a_case() {
    let exercised: BTreeSet<String> = corpus()
        .iter()
        .filter_map(|(_, c)| c["expect"].get("rules"))
        .flat_map(|r| r.as_array().unwrap().iter())
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let off_wire: BTreeSet<&str> = NOT_ON_THE_WIRE.iter().map(|(id, _)| *id).collect();
    let rules: Vec<String> = Ruleset::builtin_default()
        .rules()
        .map(|r| r.id.to_string())
        .collect();
    for id in &off_wire {
        assert!(rules.iter().any(|r| r == id), "{id} is not a built-in rule");
    }
    let missing: Vec<&String> = rules
        .iter()
        .filter(|r| !exercised.contains(*r) && !off_wire.contains(r.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "rules no corpus case exercises: {missing:?}"
    );
    let stale: Vec<&&str> = off_wire
        .iter()
        .filter(|id| exercised.contains(**id))
        .collect();
    assert!(stale.is_empty(), "now exercised by a case: {stale:?}");
}
