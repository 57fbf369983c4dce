use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::classify::Ruleset;
use crate::event::{Event, EventKind, Fields};
use crate::stored::columns::EventColumns;

pub(crate) const CHAINS: &str = include_str!("../../tests/data/rulesets/chains.toml");
pub(crate) const CHAINS_STRICT: &str = include_str!("../../tests/data/rulesets/chains-strict.toml");

fn call(session: Option<&str>, api: &str, venue: &str, request: serde_json::Value) -> Event {
    let mut e = Event::new(EventKind::ModelCall);
    e.session_id = session.map(Into::into);
    e.provider = Some("openai".into());
    e.model = Some("gpt-5".into());
    e.api = Some(api.into());
    e.venue = Some(venue.into());
    e.input_tokens = Some(100);
    e.request = request.as_object().cloned().filter(|m| !m.is_empty());
    e.finish().unwrap()
}

/// The events of the hand-computed tests (docs: tests/data/README.md):
/// - s1: A (responses, store) at AWS; B (continues A, store) at Azure;
/// - s2: C (chat) at Azure; D (responses, store) at AWS;
/// - s3: E (chat) at AWS; a client-held memory write;
/// - F (responses, store, no session) at Azure.
pub(crate) fn events() -> Vec<Event> {
    let store = json!({"store": true});
    let mut write = Event::new(EventKind::StateOp);
    write.session_id = Some("s3".into());
    write.op = Some("write".into());
    write.store = Some("notes".into());
    write.holder = Some("client".into());
    vec![
        call(Some("s1"), "responses", "aws", store.clone()),
        call(
            Some("s1"),
            "responses",
            "azure",
            json!({"previous_response_id": "resp_a", "store": true}),
        ),
        call(Some("s2"), "chat.completions", "azure", json!({})),
        call(Some("s2"), "responses", "aws", store.clone()),
        call(Some("s3"), "chat.completions", "aws", json!({})),
        write.finish().unwrap(),
        call(None, "responses", "azure", store),
    ]
}

/// Columns of `events` as recorded under `recorded`.
pub(crate) fn columns(events: &[Event], recorded: &Ruleset) -> EventColumns {
    let mut cols = EventColumns::default();
    for (i, e) in events.iter().enumerate() {
        cols.push(i as u64 + 1, e, &recorded.classify(e));
    }
    cols.derive_session_tags();
    cols
}

use Tag::{Stateful as F, Stateless as L};

#[test]
fn a_reading_under_another_ruleset_is_computed_by_hand() {
    let (chains, strict) = (
        Ruleset::from_toml(CHAINS).unwrap(),
        Ruleset::from_toml(CHAINS_STRICT).unwrap(),
    );
    let cols = columns(&events(), &chains);
    let r = cols.reading(&strict);
    assert_eq!((&*r.ruleset, r.len), ("chains-strict", 7));
    // Storing a response is stateful under the strict reading; chat calls stay stateless.
    assert_eq!(r.tag, [F, F, L, F, L, F, F]);
    assert_eq!(cols.tag, [L, F, L, L, L, F, L], "as recorded");
    // Every session is stateful: s2 by D's stored response, s3 by its client-held memory.
    assert_eq!(r.session_tag, [F; 7]);
    assert_eq!(cols.session_tag, [F, F, L, L, L, L, L], "as recorded");
    assert_eq!(
        r.creates_state,
        [true, true, false, true, false, true, true]
    );
    assert_eq!(
        r.consumes_state,
        [false, true, false, false, false, false, false]
    );
    assert_eq!(r.state_holder[5], Some(Holder::Client));
    assert_eq!(r.state_holder[2], None);
    assert!(r.state_kinds[0].contains(crate::event::StateKind::Conversation));
    assert_eq!(r.tags().tag, &r.tag[..]);
    assert_eq!(cols.recorded().session_tag, &cols.session_tag[..]);
}

#[test]
fn a_reading_under_the_recorded_ruleset_gives_back_the_recorded_verdicts() {
    for rs in [
        Ruleset::builtin_default(),
        Ruleset::builtin_strict(),
        Arc::new(Ruleset::from_toml(CHAINS).unwrap()),
    ] {
        let mut evs = events();
        // Attributes and odd values take the engine's slow paths.
        let mut e = Event::new(EventKind::ToolCall);
        e.session_id = Some("s4".into());
        e.tool = Some("search".into());
        e.mcp_session_id = Some("m-1".into());
        e.attrs = json!({"http.request.method": "DELETE", "x": {"y": [1, 2.5]}, "q": "a\"b"})
            .as_object()
            .cloned()
            .unwrap();
        evs.push(e.finish().unwrap());
        let mut s = Event::new(EventKind::SessionStart);
        s.session_id = Some("s4".into());
        s.runtime = Some("agentcore".into());
        s.runtime_session_id = Some("rs-1".into());
        evs.push(s.finish().unwrap());
        let cols = columns(&evs, &rs);
        let r = cols.reading(&rs);
        assert_eq!(r.tag, cols.tag, "{}", rs.name());
        assert_eq!(r.session_tag, cols.session_tag, "{}", rs.name());
        assert_eq!(r.consumes_state, cols.consumes_state);
        assert_eq!(r.creates_state, cols.creates_state);
        assert_eq!(r.session_stateful, cols.session_stateful);
        assert_eq!(r.state_holder, cols.state_holder);
        assert_eq!(r.state_kinds, cols.state_kinds);
        // And the view answers what the engine asks exactly as each event does.
        for (i, e) in evs.iter().enumerate() {
            let row = crate::stored::fields::RowFields::new(&cols, i);
            for p in [
                "request.store",
                "attrs.http.request.method",
                "attrs.x",
                "attrs.q",
            ] {
                assert_eq!(row.field(p), e.field(p), "{p}");
            }
        }
    }
}

#[test]
fn threads_split_the_rows_without_changing_the_result() {
    let strict = Ruleset::from_toml(CHAINS_STRICT).unwrap();
    let evs: Vec<Event> = (0..40).flat_map(|_| events()).collect();
    let cols = columns(&evs, &strict);
    let one = Reading::compute_on(&cols, &strict, None, 1);
    for threads in [2, 3, 7] {
        let many = Reading::compute_on(&cols, &strict, None, threads);
        assert_eq!(many.tag, one.tag, "{threads}");
        assert_eq!(many.session_tag, one.session_tag);
        assert_eq!(many.state_kinds, one.state_kinds);
        assert_eq!(many.len, cols.len);
    }
    assert_eq!(one.tag, cols.tag);
}

#[test]
fn readings_are_cached_by_fingerprint_and_extended_when_the_columns_grow() {
    let chains = Ruleset::from_toml(CHAINS).unwrap();
    let strict = Ruleset::from_toml(CHAINS_STRICT).unwrap();
    let evs = events();
    let mut cols = columns(&evs[..3], &chains);
    let first = cols.reading(&strict);
    assert!(Arc::ptr_eq(&first, &cols.reading(&strict)), "computed once");
    // The same file compiled again is the same reading.
    let again = Ruleset::from_toml(CHAINS_STRICT).unwrap();
    assert!(Arc::ptr_eq(&first, &cols.reading(&again)));
    assert_eq!(fingerprint(&strict), fingerprint(&again));
    assert_ne!(fingerprint(&strict), fingerprint(&chains));
    // Same evidence, different policy: a different fingerprint.
    let policy_only = CHAINS_STRICT.replace("creates_state_is_stateful = true", "");
    assert_ne!(
        fingerprint(&Ruleset::from_toml(&policy_only).unwrap()),
        fingerprint(&strict)
    );
    assert_eq!(cols.readings.len(), 1);
    // Grown columns (a clone with events appended, as a refreshed snapshot is made) extend
    // the cached reading: session s2 turns stateful for C through D.
    let mut grown = cols.clone();
    for (i, e) in evs.iter().enumerate().skip(3) {
        grown.push(i as u64 + 1, e, &chains.classify(e));
    }
    grown.derive_session_tags();
    let extended = grown.reading(&strict);
    assert_eq!(extended.session_tag, [F; 7]);
    assert_eq!(
        first.session_tag,
        [F, F, L],
        "the earlier reading is left as it was"
    );
    let full = columns(&evs, &chains).reading(&strict);
    assert_eq!(extended.tag, full.tag);
    assert_eq!(extended.session_stateful, full.session_stateful);
    // A base under another ruleset, or longer than the columns, is not extended.
    let other = Reading::compute(&grown, &strict, Some(&cols.reading(&chains)));
    assert_eq!(other.tag, full.tag);
    cols.push(4, &evs[3], &chains.classify(&evs[3]));
    let shorter = Reading::compute(&cols, &strict, Some(&extended));
    assert_eq!(shorter.len, 4);
    assert_eq!(shorter.tag, full.tag[..4]);
}

#[test]
fn the_cache_keeps_a_bounded_number_of_readings() {
    let chains = Ruleset::from_toml(CHAINS).unwrap();
    let cols = columns(&events(), &chains);
    for i in 0..MAX_CACHED + 3 {
        let rs = Ruleset::from_toml(&CHAINS.replace("\"chains\"", &format!("\"c{i}\""))).unwrap();
        assert_eq!(&*cols.reading(&rs).ruleset, format!("c{i}"));
    }
    assert_eq!(cols.readings.len(), MAX_CACHED);
    assert!(format!("{:?}", cols.readings).contains("keys"));
}

/// The labelled request corpus (tests/corpus/requests): each request as the capture layer
/// records it, read back from columns under both built-in rulesets, gives exactly what
/// classifying the event itself gives (whatever the catalogue's rules say).
#[test]
fn captured_requests_read_from_columns_as_the_events_themselves() {
    use crate::capture::http::{describe_request, HttpRequest};
    use serde_json::Value;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/requests");
    let mut events = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let cases: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for c in cases {
            let headers: Vec<(String, String)> = c["headers"]
                .as_object()
                .map(|h| {
                    h.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let body = match (c.get("body"), c.get("body_text")) {
                (_, Some(Value::String(t))) => Some(t.as_bytes().to_vec()),
                (Some(Value::Null), _) | (None, _) => None,
                (Some(b), _) => Some(serde_json::to_vec(b).unwrap()),
            };
            let (Some(method), Some(url)) = (c["method"].as_str(), c["url"].as_str()) else {
                continue;
            };
            let req = HttpRequest {
                method,
                url,
                headers: &refs,
                body: body.as_deref(),
            };
            if let Ok(e) = describe_request(&req, &Default::default()) {
                events.push(e);
            }
        }
    }
    assert!(events.len() >= 60, "{} events", events.len());
    let cols = columns(&events, &Ruleset::builtin_default());
    for rs in [Ruleset::builtin_default(), Ruleset::builtin_strict()] {
        let r = cols.reading(&rs);
        for (i, e) in events.iter().enumerate() {
            let c = rs.classify(e);
            let got = (
                r.tag[i],
                r.consumes_state[i],
                r.creates_state[i],
                r.state_holder[i],
                r.state_kinds[i],
                r.session_stateful[i],
            );
            let want = (
                c.tag,
                c.consumes_state,
                c.creates_state,
                c.state_holder,
                c.state_kinds,
                c.session_stateful,
            );
            assert_eq!(got, want, "{} {:?} {:?}", rs.name(), e.api, e.request);
        }
    }
}
