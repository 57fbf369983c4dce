//! Events read back from a ledger: parsing records, the derived `session_tag`, and the
//! filters of `EventTable` (kind, session_id, tag).
//!
//! `session_tag` is derived here, on read, because a later event can make a whole session
//! stateful: a session is stateful when any of its events has `session_stateful` in its
//! stored classification (the ruleset that recorded it decided what counts). An event with no
//! `session_id` is its own session.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::classify::{Classification, Evidence, Holder, Tag};
use crate::error::{Error, Result};
use crate::event::{Event, EventKind};
use crate::ledger::Store;
use crate::meter::Recorded;

/// A read event: the recorded event and its session's tag.
#[derive(Clone, Debug)]
pub struct Row {
    pub rec: Arc<Recorded>,
    pub session_tag: Tag,
}

/// Which rows a table keeps.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub kind: Option<EventKind>,
    pub session_id: Option<String>,
    pub tag: Option<Tag>,
}

impl Filter {
    pub fn keeps(&self, row: &Row) -> bool {
        let ev = &row.rec.event;
        self.kind.is_none_or(|k| ev.kind == k)
            && self
                .session_id
                .as_deref()
                .is_none_or(|s| ev.session_id.as_deref() == Some(s))
            && self.tag.is_none_or(|t| row.rec.classification().tag == t)
    }
}

/// Reads every event of the store in seq order, with session tags.
pub fn load(store: &Store) -> Result<Vec<Row>> {
    let mut recs: Vec<Arc<Recorded>> = Vec::new();
    store.for_each_record(0, |seq, text| {
        recs.push(Arc::new(parse_record(seq, text)?));
        Ok(())
    })?;
    Ok(with_session_tags(recs))
}

/// Derives each event's `session_tag` from the events of its session.
pub fn with_session_tags(recs: Vec<Arc<Recorded>>) -> Vec<Row> {
    let mut stateful: HashMap<&str, bool> = HashMap::new();
    for r in &recs {
        if let Some(s) = r.event.session_id.as_deref() {
            *stateful.entry(s).or_default() |= r.classification().session_stateful;
        }
    }
    let tags: Vec<Tag> = recs
        .iter()
        .map(|r| {
            let sf = match r.event.session_id.as_deref() {
                Some(s) => stateful[s],
                None => r.classification().session_stateful,
            };
            if sf {
                Tag::Stateful
            } else {
                Tag::Stateless
            }
        })
        .collect();
    recs.into_iter()
        .zip(tags)
        .map(|(rec, session_tag)| Row { rec, session_tag })
        .collect()
}

/// Parses one ledger record (see docs/ledger-format.md).
pub fn parse_record(seq: u64, text: &str) -> Result<Recorded> {
    let bad = |what: &str| Error::Integrity(format!("record at seq {seq}: {what}"));
    let value: Value = serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let obj = value.as_object().ok_or_else(|| bad("not an object"))?;
    let event = obj
        .get("event")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no event object"))?;
    let event = Event::from_map(event).map_err(|e| bad(&e.to_string()))?;
    let class = obj
        .get("classification")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no classification object"))?;
    let class = parse_classification(class).map_err(|e| bad(&e))?;
    Ok(Recorded::stored(event, class, seq))
}

fn parse_classification(m: &Map<String, Value>) -> std::result::Result<Classification, String> {
    let flag = |k: &str| {
        m.get(k)
            .and_then(Value::as_bool)
            .ok_or_else(|| format!("classification.{k} is not a boolean"))
    };
    let text = |v: Option<&Value>, k: &str| {
        v.and_then(Value::as_str)
            .map(Arc::<str>::from)
            .ok_or_else(|| format!("classification: {k} is not a string"))
    };
    let tag = |v: Option<&Value>| match v.and_then(Value::as_str) {
        Some("stateless") => Ok(Tag::Stateless),
        Some("stateful") => Ok(Tag::Stateful),
        other => Err(format!("classification: bad tag {other:?}")),
    };
    let state_holder = match m.get("state_holder") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "provider" => Some(Holder::Provider),
        Some(Value::String(s)) if s == "client" => Some(Holder::Client),
        Some(other) => return Err(format!("classification: bad state_holder {other}")),
    };
    let evidence = m
        .get("evidence")
        .and_then(Value::as_array)
        .ok_or("classification.evidence is not a list")?
        .iter()
        .map(|e| {
            Ok(Arc::new(Evidence {
                rule: text(e.get("rule"), "evidence.rule")?,
                tag: tag(e.get("tag"))?,
                signal: text(e.get("signal"), "evidence.signal")?,
                explain: text(e.get("explain"), "evidence.explain")?,
            }))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(Classification {
        consumes_state: flag("consumes_state")?,
        creates_state: flag("creates_state")?,
        state_holder,
        tag: tag(m.get("tag"))?,
        evidence,
        session_stateful: flag("session_stateful")?,
        ruleset: text(m.get("ruleset"), "ruleset")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Ruleset;

    fn rec(kind: EventKind, session: &str, f: impl FnOnce(&mut Event)) -> Arc<Recorded> {
        let mut e = Event::new(kind);
        e.session_id = Some(session.into());
        f(&mut e);
        Arc::new(Recorded::pending(
            e.finish().unwrap(),
            Ruleset::builtin_default(),
        ))
    }

    fn call(session: &str, request: Option<Value>) -> Arc<Recorded> {
        rec(EventKind::ModelCall, session, |e| {
            e.provider = Some("openai".into());
            e.model = Some("gpt-5".into());
            e.api = Some("chat.completions".into());
            e.request = request.and_then(|v| v.as_object().cloned());
        })
    }

    #[test]
    fn a_later_stateful_event_makes_the_whole_session_stateful() {
        let rows = with_session_tags(vec![
            call("s1", None),
            call("s2", None),
            rec(EventKind::ModelCall, "s1", |e| {
                e.provider = Some("openai".into());
                e.model = Some("gpt-5".into());
                e.api = Some("responses".into());
                e.request = serde_json::json!({"previous_response_id": "resp_1"})
                    .as_object()
                    .cloned();
            }),
        ]);
        assert_eq!(rows[0].rec.classification().tag, Tag::Stateless);
        assert_eq!(rows[0].session_tag, Tag::Stateful);
        assert_eq!(rows[1].session_tag, Tag::Stateless);
        assert_eq!(rows[2].session_tag, Tag::Stateful);
    }

    #[test]
    fn runtime_session_makes_stateless_calls_session_stateful() {
        let rows = with_session_tags(vec![
            rec(EventKind::SessionStart, "rt", |e| {
                e.runtime = Some("agentcore".into());
                e.runtime_session_id = Some("rs-1".into());
            }),
            call("rt", None),
        ]);
        assert_eq!(rows[1].rec.classification().tag, Tag::Stateless);
        assert_eq!(rows[1].session_tag, Tag::Stateful);
    }

    #[test]
    fn record_round_trip_and_filters() {
        let r = call("s1", Some(serde_json::json!({"store": true})));
        let mut ev = String::new();
        r.event.write_canonical_json(&mut ev).unwrap();
        let mut cl = String::new();
        r.classification().write_canonical_json(&mut cl);
        let text = format!(r#"{{"classification":{cl},"event":{ev},"seq":7,"v":1}}"#);
        let back = parse_record(7, &text).unwrap();
        assert_eq!(back.event.to_map(), r.event.to_map());
        assert_eq!(back.classification(), r.classification());
        assert_eq!(back.seq(), Some(7));
        let rows = with_session_tags(vec![Arc::new(back)]);
        let f = Filter {
            kind: Some(EventKind::ToolCall),
            ..Default::default()
        };
        assert!(!f.keeps(&rows[0]));
        let f = Filter {
            session_id: Some("s1".into()),
            tag: Some(Tag::Stateless),
            ..Default::default()
        };
        assert!(f.keeps(&rows[0]));
        assert!(parse_record(1, "{\"event\":{}}").is_err());
    }
}
