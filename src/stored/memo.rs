//! Classifying many rows at once, each distinct combination of inputs once.
//!
//! A classification is a pure function of the fields its ruleset reads
//! ([`Ruleset::inputs`]), and a fleet's events repeat a handful of combinations (the same
//! provider, api and flags, a `previous_response_id` present or not). So each row gets a key
//! built from exactly what the engine would read, and rows with equal keys share one
//! classification:
//!
//! - a top-level string field is its dictionary code in [`EventColumns`] (read for its value)
//!   or one byte (read only for its presence: a `runtime_session_id` is one per session, its
//!   presence is all the engine asks); integers are their values; `kind` is always in the key;
//! - `request` and `attrs` are scanned once, member by member (canonical JSON, no tree): a
//!   member a rule names for its presence adds whether it is there and null or not, one named
//!   for its value adds its text; a path through a nested object (`request.environment.type`)
//!   takes the member's whole value, and a value the engine would hand to the JSON parser (an
//!   object, a float, an escaped string) puts the whole text in the key, since the parser's
//!   answer can depend on the rest of it;
//! - a row whose text a plain scan cannot read (not canonical, duplicate members) is
//!   classified on its own, as is every row when a rule names a key with characters JSON
//!   escapes.
//!
//! Keys are bytes in a hash map (foldhash): equal bytes mean equal inputs, so the result is
//! exactly the engine's on every row. The verdicts are then kept once each, with their
//! evidence: a batch holds few distinct classifications, and its rows index them. When fewer
//! than one in `MIN_REPEAT` of a batch's first `PROBE` rows repeat an earlier key (the
//! worst case: all-distinct inputs), keys are no longer built and the rest is classified row
//! by row; verdicts are still shared.

use std::collections::HashMap;
use std::sync::Arc;

use crate::classify::{Read, Ruleset};
use crate::event::{Classification, EventKind};
use crate::stored::columns::{EventColumns, TextColumn, NULL};
use crate::stored::fields::{scan, RowFields};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Rows looked at before deciding whether keys pay off.
const PROBE: usize = 4096;
/// Below this share of repeated keys among the probed rows (1 in `MIN_REPEAT`), stop.
const MIN_REPEAT: usize = 4;

/// Every row's classification, as an index into the distinct ones.
#[derive(Debug, Default)]
pub struct Classified {
    /// The distinct classifications, in order of first appearance.
    pub distinct: Vec<Classification>,
    /// Per row, the index of its classification in `distinct`.
    pub rows: Vec<u32>,
}

/// Classifies every row of `cols` under `ruleset` (see the module documentation).
pub fn classify_rows(cols: &EventColumns, ruleset: &Ruleset) -> Classified {
    let plan = Plan::new(cols, ruleset);
    let mut out = Classified {
        distinct: Vec::new(),
        rows: Vec::with_capacity(cols.len),
    };
    let mut by_inputs: Map<Box<[u8]>, u32> = Map::default();
    let mut by_verdict: Map<VerdictKey, u32> = Map::default();
    let mut key = Vec::with_capacity(64);
    let (mut keyed, mut hits) = (plan.is_some(), 0usize);
    for i in 0..cols.len {
        if keyed && i == PROBE && hits * MIN_REPEAT < PROBE {
            keyed = false;
            by_inputs = Map::default();
        }
        key.clear();
        if keyed && plan.as_ref().is_some_and(|p| p.key(i, &mut key)) {
            if let Some(&at) = by_inputs.get(key.as_slice()) {
                out.rows.push(at);
                hits += 1;
                continue;
            }
            let at = share(
                &mut out.distinct,
                &mut by_verdict,
                classify(cols, i, ruleset),
            );
            by_inputs.insert(key.as_slice().into(), at);
            out.rows.push(at);
        } else {
            let at = share(
                &mut out.distinct,
                &mut by_verdict,
                classify(cols, i, ruleset),
            );
            out.rows.push(at);
        }
    }
    out
}

fn classify(cols: &EventColumns, row: usize, ruleset: &Ruleset) -> Classification {
    ruleset.classify(&RowFields::new(cols, row))
}

/// A classification's identity within one ruleset: its verdict and its evidence (each rule's
/// evidence is one shared allocation, compared by address).
#[derive(PartialEq, Eq, Hash)]
struct VerdictKey {
    flags: u8,
    holder: u8,
    kinds: u8,
    evidence: Box<[usize]>,
}

impl VerdictKey {
    fn of(c: &Classification) -> VerdictKey {
        VerdictKey {
            flags: u8::from(c.consumes_state)
                | u8::from(c.creates_state) << 1
                | u8::from(c.session_stateful) << 2
                | u8::from(c.tag == crate::event::Tag::Stateful) << 3,
            holder: c.state_holder.map_or(0, |h| h as u8 + 1),
            kinds: c.state_kinds.bits(),
            evidence: c.evidence.iter().map(|e| Arc::as_ptr(e) as usize).collect(),
        }
    }
}

/// The index of `c` among `distinct`, added when new.
fn share(
    distinct: &mut Vec<Classification>,
    seen: &mut Map<VerdictKey, u32>,
    c: Classification,
) -> u32 {
    *seen.entry(VerdictKey::of(&c)).or_insert_with(|| {
        distinct.push(c);
        u32::try_from(distinct.len() - 1).expect("fewer than 2^32 distinct classifications")
    })
}

/// How to read one top-level input of a row.
enum Top<'a> {
    /// A string field's dictionary code.
    Code(&'a [u32]),
    /// Whether a string field is present.
    Present(&'a [u32]),
    Text(&'a TextColumn),
    Int(&'a [i64]),
    OptInt(&'a [Option<i64>]),
    /// Whether an optional integer is present.
    OptPresent(&'a [Option<i64>]),
    Count(&'a [u64]),
}

/// The members of `request` or `attrs` the ruleset reads.
struct Nested<'a> {
    text: &'a TextColumn,
    /// Member name -> (position, how it is read).
    members: Map<&'a str, (u16, Read)>,
}

/// What makes up a row's key under one ruleset.
struct Plan<'a> {
    kind: &'a [EventKind],
    top: Vec<Top<'a>>,
    nested: Vec<Nested<'a>>,
}

impl<'a> Plan<'a> {
    /// The plan for `ruleset` over `cols`; `None` when rows must be classified one by one (a
    /// rule names a `request` or `attrs` key with characters JSON escapes).
    fn new(cols: &'a EventColumns, ruleset: &'a Ruleset) -> Option<Plan<'a>> {
        let mut plan = Plan {
            kind: &cols.kind,
            top: Vec::new(),
            nested: Vec::new(),
        };
        let mut request = Map::default();
        let mut attrs = Map::default();
        for input in ruleset.inputs() {
            let (path, read) = (&*input.path, input.read);
            let (members, rest) = if let Some(rest) = path.strip_prefix("request.") {
                (&mut request, rest)
            } else if let Some(rest) = path.strip_prefix("attrs.") {
                (&mut attrs, rest)
            } else {
                if let Some(top) = top(cols, path, read) {
                    plan.top.push(top);
                }
                continue;
            };
            // The member named whole (a key may contain dots), then the first segment a
            // dotted path descends through.
            let mut add = |name: &'a str, read: Read| -> Option<()> {
                if name.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20) {
                    return None;
                }
                let next = u16::try_from(members.len()).ok()?;
                let e = members.entry(name).or_insert((next, read));
                e.1 = e.1.max(read);
                Some(())
            };
            add(rest, read)?;
            if let Some((first, _)) = rest.split_once('.') {
                add(first, Read::Value)?;
            }
        }
        for (members, text) in [(request, &cols.request), (attrs, &cols.attrs)] {
            if !members.is_empty() {
                plan.nested.push(Nested { text, members });
            }
        }
        Some(plan)
    }

    /// Appends row `i`'s key to `key`; `false` when the row must be classified on its own.
    fn key(&self, i: usize, key: &mut Vec<u8>) -> bool {
        key.push(self.kind[i] as u8);
        for t in &self.top {
            match t {
                Top::Code(c) => key.extend_from_slice(&c[i].to_le_bytes()),
                Top::Present(c) => key.push(u8::from(c[i] != NULL)),
                Top::Text(t) => text(key, t.get(i)),
                Top::Int(v) => key.extend_from_slice(&v[i].to_le_bytes()),
                Top::OptInt(v) => match v[i] {
                    Some(x) => {
                        key.push(1);
                        key.extend_from_slice(&x.to_le_bytes());
                    }
                    None => key.push(0),
                },
                Top::OptPresent(v) => key.push(u8::from(v[i].is_some())),
                Top::Count(v) => key.extend_from_slice(&v[i].to_le_bytes()),
            }
        }
        self.nested.iter().all(|n| n.key(i, key))
    }
}

/// How a top-level input is read from the columns (`None`: its answer is the same for every
/// row of a kind, and `kind` is already in the key).
fn top<'a>(cols: &'a EventColumns, path: &str, read: Read) -> Option<Top<'a>> {
    let value = read == Read::Value;
    Some(match path {
        // Always present: only the value can differ.
        "id" if value => Top::Text(&cols.id),
        "ts" if value => Top::Int(&cols.ts),
        "duration_ns" if value => Top::OptInt(&cols.duration_ns),
        "duration_ns" => Top::OptPresent(&cols.duration_ns),
        // Present exactly on the kinds that have them.
        "input_tokens" if value => Top::Count(&cols.input_tokens),
        "output_tokens" if value => Top::Count(&cols.output_tokens),
        "cached_tokens" if value => Top::Count(&cols.cached_tokens),
        "bytes" if value => Top::Count(&cols.bytes),
        // Not event fields (the engine reads them as absent), or handled above.
        "kind" | "id" | "ts" | "input_tokens" | "output_tokens" | "cached_tokens" | "bytes"
        | "ruleset" | "ruleset_digest" => return None,
        other => {
            let codes = &cols.str_column(other)?.codes;
            if value {
                Top::Code(codes)
            } else {
                Top::Present(codes)
            }
        }
    })
}

/// A length-prefixed string.
fn text(key: &mut Vec<u8>, s: &str) {
    key.extend_from_slice(&(s.len() as u64).to_le_bytes());
    key.extend_from_slice(s.as_bytes());
}

impl Nested<'_> {
    /// Appends the members of row `i`'s text the ruleset reads; `false` when the text needs
    /// the parser (then the row is classified on its own).
    fn key(&self, i: usize, key: &mut Vec<u8>) -> bool {
        let t = self.text.get(i);
        if t.is_empty() {
            key.push(0);
            return true;
        }
        key.push(1);
        let (mut whole, mut ok) = (false, true);
        let mut seen: u128 = 0;
        let read = scan::members(t, |name, escaped, raw| {
            // An escaped name never equals a name the rules write plainly (see `scan::member`).
            if escaped || !ok {
                return;
            }
            let Some(&(at, how)) = self.members.get(name) else {
                return;
            };
            // A repeated member: the scan finds the first, the parser keeps the last.
            let bit = 1u128.checked_shl(u32::from(at)).unwrap_or(0);
            if bit == 0 || seen & bit != 0 {
                ok = false;
                return;
            }
            seen |= bit;
            key.extend_from_slice(&at.to_le_bytes());
            match how {
                Read::Presence => key.push(if raw == "null" { 1 } else { 2 }),
                Read::Value => {
                    if scan::scalar(raw).is_none() {
                        whole = true;
                    }
                    text(key, raw);
                }
            }
        });
        if !read || !ok {
            return false;
        }
        key.extend_from_slice(&u16::MAX.to_le_bytes());
        if whole {
            text(key, t);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::Event;

    fn model_call(i: usize, request: serde_json::Value) -> Event {
        let mut e = Event::new(EventKind::ModelCall);
        e.provider = Some(if i % 5 == 0 { "unknown" } else { "openai" }.into());
        e.api = Some(
            if i % 2 == 0 {
                "responses"
            } else {
                "chat.completions"
            }
            .into(),
        );
        e.session_id = Some(format!("s{}", i % 7).into());
        e.model = Some("gpt-5".into());
        e.input_tokens = Some(1000 + (i % 4) as u64);
        e.request = request.as_object().cloned();
        e.finish().unwrap()
    }

    fn columns(events: &[Event]) -> EventColumns {
        let c = Ruleset::builtin_default().classify(&events[0]);
        let mut cols = EventColumns::default();
        for (i, e) in events.iter().enumerate() {
            cols.push(i as u64 + 1, e, &c);
        }
        cols
    }

    fn assert_as_alone(cols: &EventColumns, ruleset: &Ruleset) -> Classified {
        let got = classify_rows(cols, ruleset);
        assert_eq!(got.rows.len(), cols.len);
        for i in 0..cols.len {
            let want = ruleset.classify(&RowFields::new(cols, i));
            let c = &got.distinct[got.rows[i] as usize];
            assert!(VerdictKey::of(c) == VerdictKey::of(&want), "row {i}");
            assert_eq!(
                (&c.ruleset, &c.ruleset_digest),
                (&want.ruleset, &want.ruleset_digest)
            );
        }
        got
    }

    #[test]
    fn rows_sharing_inputs_share_the_engines_classification() {
        let requests = [
            json!(null),
            json!({}),
            json!({"store": true}),
            json!({"store": null}),
            json!({"previous_response_id": "r1"}),
            json!({"previous_response_id": "r2"}),
            json!({"previous_response_id": null}),
            json!({"environment": {"type": "openai_hosted"}}),
            json!({"background": true, "n": 1.5}),
        ];
        let events: Vec<Event> = (0..400)
            .map(|i| model_call(i, requests[i % requests.len()].clone()))
            .collect();
        let cols = columns(&events);
        for ruleset in [Ruleset::builtin_default(), Ruleset::builtin_strict()] {
            let got = assert_as_alone(&cols, &ruleset);
            assert!(got.distinct.len() < 20, "{} verdicts", got.distinct.len());
        }
    }

    /// A batch whose rows all differ in what the ruleset reads stops building keys after
    /// the probe, with the same results, and still shares equal verdicts.
    #[test]
    fn all_distinct_inputs_are_classified_row_by_row() {
        let by_id = Ruleset::from_toml(
            "name = \"by-id\"\nextends = \"strict\"\n[[rule]]\nid = \"one\"\n\
             when = { id = \"none\" }\nexplain = \"reads the id\"\n",
        )
        .unwrap();
        let events: Vec<Event> = (0..PROBE + 500)
            .map(|i| model_call(i, json!({"store": i % 2 == 0})))
            .collect();
        let cols = columns(&events);
        let got = assert_as_alone(&cols, &by_id);
        assert!(got.distinct.len() < 20, "{} verdicts", got.distinct.len());
    }
}
