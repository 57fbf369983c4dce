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

use crate::canonical::catalogue_digest;
use crate::error::{Error, Result};
use crate::event::Recorded;
use crate::event::{Classification, Evidence, Holder, StateKind, StateKinds, Tag};
use crate::event::{Event, EventKind};
use crate::ledger::Store;

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

/// The evidence catalogues stored in a ledger, by digest: records name their ruleset's
/// catalogue and carry only each evidence's rule, signal and tag; the explanation comes from
/// here. Each catalogue is checked against its digest when loaded.
#[derive(Debug, Default)]
pub struct Catalogues {
    by_digest: HashMap<String, HashMap<String, Arc<Evidence>>>,
}

impl Catalogues {
    pub fn load(store: &Store) -> Result<Self> {
        let mut by_digest = HashMap::new();
        for (digest, name, text) in store.catalogues()? {
            if catalogue_digest(&text) != digest {
                return Err(Error::Integrity(format!(
                    "the stored catalogue of ruleset {name:?} does not match its digest {digest}: edited"
                )));
            }
            let bad = |what: &str| Error::Integrity(format!("ruleset catalogue {digest}: {what}"));
            let v: Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
            let mut rules = HashMap::new();
            for r in v
                .get("rules")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("no rules"))?
            {
                let ev = parse_evidence(r, None).map_err(|e| bad(&e))?;
                rules.insert(ev.rule.to_string(), Arc::new(ev));
            }
            by_digest.insert(digest, rules);
        }
        Ok(Catalogues { by_digest })
    }

    /// The explanation of `rule` in the catalogue `digest` identifies, if it is stored.
    pub fn explain(&self, digest: &str, rule: &str) -> Option<&str> {
        self.by_digest
            .get(digest)
            .and_then(|rules| rules.get(rule))
            .map(|e| &*e.explain)
    }
}

/// Reads every event of the store in seq order, with session tags and explained evidence.
pub fn load(store: &Store) -> Result<Vec<Row>> {
    let catalogues = Catalogues::load(store)?;
    let mut recs: Vec<Arc<Recorded>> = Vec::new();
    store.for_each_record(0, |seq, text| {
        recs.push(Arc::new(parse_record_explained(seq, text, &catalogues)?));
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

/// Parses one ledger record (see docs/ledger-format.md) without the evidence explanations
/// (`explain` is empty): enough for column scans. [`load`] fills them in.
pub fn parse_record(seq: u64, text: &str) -> Result<Recorded> {
    parse_record_explained(seq, text, &Catalogues::default())
}

/// Parses one ledger record, taking each evidence's explanation from `catalogues` (an evidence
/// whose catalogue is not there keeps an empty `explain`).
pub fn parse_record_explained(seq: u64, text: &str, catalogues: &Catalogues) -> Result<Recorded> {
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
    let class = parse_classification(class, catalogues).map_err(|e| bad(&e))?;
    Ok(Recorded::stored(event, class, seq))
}

fn parse_evidence(e: &Value, explain: Option<&str>) -> std::result::Result<Evidence, String> {
    let text = |k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .map(Arc::<str>::from)
            .ok_or_else(|| format!("evidence.{k} is not a string"))
    };
    let state = match e.get("state") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => {
            Some(StateKind::parse(k).map_err(|_| format!("bad state {k:?}"))?)
        }
        Some(other) => return Err(format!("bad state {other}")),
    };
    Ok(Evidence {
        rule: text("rule")?,
        tag: parse_tag(e.get("tag"))?,
        signal: text("signal")?,
        explain: match explain {
            Some(x) => x.into(),
            None => text("explain")?,
        },
        state,
    })
}

fn parse_tag(v: Option<&Value>) -> std::result::Result<Tag, String> {
    match v.and_then(Value::as_str) {
        Some("stateless") => Ok(Tag::Stateless),
        Some("stateful") => Ok(Tag::Stateful),
        other => Err(format!("bad tag {other:?}")),
    }
}

fn parse_classification(
    m: &Map<String, Value>,
    catalogues: &Catalogues,
) -> std::result::Result<Classification, String> {
    let flag = |k: &str| {
        m.get(k)
            .and_then(Value::as_bool)
            .ok_or_else(|| format!("classification.{k} is not a boolean"))
    };
    let text = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .map(Arc::<str>::from)
            .ok_or_else(|| format!("classification.{k} is not a string"))
    };
    let state_holder = match m.get("state_holder") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "provider" => Some(Holder::Provider),
        Some(Value::String(s)) if s == "client" => Some(Holder::Client),
        Some(Value::String(s)) if s == "unknown" => Some(Holder::Unknown),
        Some(other) => return Err(format!("classification: bad state_holder {other}")),
    };
    // Records written before state kinds existed have no `state_kinds`: none.
    let state_kinds = match m.get("state_kinds") {
        None => StateKinds::EMPTY,
        Some(Value::Array(kinds)) => kinds
            .iter()
            .map(|k| {
                k.as_str()
                    .and_then(|k| StateKind::parse(k).ok())
                    .ok_or_else(|| format!("classification: bad state kind {k}"))
            })
            .collect::<std::result::Result<StateKinds, String>>()?,
        Some(other) => return Err(format!("classification: bad state_kinds {other}")),
    };
    let digest = text("ruleset_digest")?;
    let catalogue = catalogues.by_digest.get(&*digest);
    let evidence = m
        .get("evidence")
        .and_then(Value::as_array)
        .ok_or("classification.evidence is not a list")?
        .iter()
        .map(|e| {
            let mut ev = parse_evidence(e, Some(""))?;
            if let Some(known) = catalogue.and_then(|c| c.get(&*ev.rule)) {
                if known.signal == ev.signal && known.tag == ev.tag {
                    // Share the catalogue's evidence: no per-event copy of the strings.
                    return Ok(Arc::clone(known));
                }
                ev.explain = Arc::clone(&known.explain);
                ev.state = ev.state.or(known.state);
            }
            Ok(Arc::new(ev))
        })
        .collect::<std::result::Result<Arc<[_]>, String>>()?;
    Ok(Classification {
        consumes_state: flag("consumes_state")?,
        creates_state: flag("creates_state")?,
        state_holder,
        state_kinds,
        tag: parse_tag(m.get("tag")).map_err(|e| format!("classification: {e}"))?,
        evidence,
        session_stateful: flag("session_stateful")?,
        ruleset: text("ruleset")?,
        ruleset_digest: digest,
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
        let bare = parse_record(7, &text).unwrap();
        assert!(bare
            .classification()
            .evidence
            .iter()
            .all(|e| e.explain.is_empty()));
        let rs = Ruleset::builtin_default();
        let mut store = Store::open(None, crate::ledger::Durability::Sync).unwrap();
        store
            .register_catalogue(rs.digest(), rs.name(), rs.catalogue())
            .unwrap();
        let catalogues = Catalogues::load(&store).unwrap();
        let back = parse_record_explained(7, &text, &catalogues).unwrap();
        assert_eq!(back.event.to_map(), r.event.to_map());
        assert_eq!(back.classification(), r.classification());
        let again =
            parse_record_explained(8, &text.replace(r#""seq":7"#, r#""seq":8"#), &catalogues)
                .unwrap();
        // Loaded events share the catalogue's evidence instead of copying its strings.
        assert!(Arc::ptr_eq(
            &back.classification().evidence[0],
            &again.classification().evidence[0]
        ));
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
