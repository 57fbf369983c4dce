//! The labelled request corpus (`tests/corpus/requests/*.json`): every case must classify to
//! its expected kind, provider, venue and api, and, where given, its model, `consumes_state`,
//! `creates_state`, tag, exact evidence rules and kept `request` mapping. A case may carry the
//! user's `venues` and `providers` host mappings. Every event carries its HTTP method in
//! `attrs["http.request.method"]`, and every model call its `attrs.provider_evidence`. No case
//! may leak anything marked `SECRET` (prompt text, keys, tokens) into the event.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::{classify_request_with, HostMappings, HttpRequest};
use crate::classify::Ruleset;

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
        let text = std::fs::read_to_string(&f).unwrap();
        let cases: Vec<Value> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        for c in cases {
            out.push((format!("{stem}: {}", c["name"].as_str().unwrap()), c));
        }
    }
    out
}

fn str_of(v: &Value) -> Option<&str> {
    v.as_str()
}

#[test]
fn corpus_classifies_as_labelled_and_keeps_no_content() {
    let rs = Ruleset::builtin_default();
    let cases = corpus();
    assert!(cases.len() >= 60, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for (who, c) in &cases {
        let headers: Vec<(String, String)> = c["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body: Option<Vec<u8>> = match (c.get("body"), c.get("body_text")) {
            (_, Some(Value::String(t))) => Some(t.as_bytes().to_vec()),
            (Some(Value::Null), _) | (None, _) => None,
            (Some(b), _) => Some(serde_json::to_vec(b).unwrap()),
        };
        let mapping = |key: &str| -> BTreeMap<String, String> {
            c.get(key)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let venues = mapping("venues");
        let providers = mapping("providers");
        let req = HttpRequest {
            method: c["method"].as_str().unwrap(),
            url: c["url"].as_str().unwrap(),
            headers: &header_refs,
            body: body.as_deref(),
        };
        let hosts = HostMappings {
            venues: &venues,
            providers: &providers,
        };
        let (ev, cl) = match classify_request_with(&req, &rs, hosts) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{who}: error {e}"));
                continue;
            }
        };
        let ev = ev
            .finish()
            .unwrap_or_else(|e| panic!("{who}: invalid event {e}"));
        let e = &c["expect"];
        let map: Map<String, Value> = ev.to_map();
        let venue = map
            .get("venue")
            .and_then(str_of)
            .or_else(|| ev.attrs["venue_evidence"]["venue"].as_str());
        let mut check = |what: &str, got: Value, want: &Value| {
            if &got != want {
                failures.push(format!("{who}: {what} = {got}, expected {want}"));
            }
        };
        check("kind", Value::from(ev.kind.as_str()), &e["kind"]);
        for k in [
            "provider",
            "api",
            "model",
            "tool",
            "tool_kind",
            "mcp_session_id",
        ] {
            if let Some(want) = e.get(k) {
                check(k, map.get(k).cloned().unwrap_or(Value::Null), want);
            }
        }
        check("venue", venue.map_or(Value::Null, Value::from), &e["venue"]);
        for (k, got) in [
            ("consumes_state", Value::from(cl.consumes_state)),
            ("creates_state", Value::from(cl.creates_state)),
            ("tag", Value::from(cl.tag.as_str())),
        ] {
            if let Some(want) = e.get(k) {
                check(k, got, want);
            }
        }
        let method = c["method"].as_str().unwrap().trim().to_ascii_uppercase();
        check(
            "attrs.http.request.method",
            ev.attrs
                .get("http.request.method")
                .cloned()
                .unwrap_or(Value::Null),
            &Value::from(method),
        );
        if ev.kind.as_str() == "model_call" {
            let pe = &ev.attrs["provider_evidence"];
            check(
                "attrs.provider_evidence.provider",
                pe["provider"].clone(),
                &map.get("provider").cloned().unwrap_or(Value::Null),
            );
            if let Some(want) = e.get("provider_rule") {
                check("attrs.provider_evidence.rule", pe["rule"].clone(), want);
            }
            if let Some(want) = e.get("shape") {
                check("attrs.provider_evidence.shape", pe["shape"].clone(), want);
            }
        }
        if let Some(want) = e.get("attrs") {
            for (k, v) in want.as_object().unwrap() {
                check(
                    &format!("attrs.{k}"),
                    ev.attrs.get(k).cloned().unwrap_or(Value::Null),
                    v,
                );
            }
        }
        if let Some(want) = e.get("rules") {
            let got: Vec<Value> = cl.evidence.iter().map(|x| Value::from(&*x.rule)).collect();
            check("rules", Value::Array(got), want);
        }
        if let Some(want) = e.get("request") {
            check(
                "request",
                map.get("request").cloned().unwrap_or(Value::Null),
                want,
            );
        }
        let mut record = String::new();
        ev.write_canonical_json(&mut record).unwrap();
        if record.contains("SECRET") {
            failures.push(format!("{who}: content or a credential leaked: {record}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
