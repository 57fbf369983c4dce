//! Evidence bundles: a self-contained JSON document a counterparty checks offline, without the
//! ledger — a signed checkpoint, and for each event its record bytes and inclusion proof in the
//! tree the checkpoint signs, optionally with the report rows and the context (contract,
//! clause, interpretation) they support. Records carry no prompt or completion text, so a
//! bundle discloses only the metered fields of the events it names.
//!
//! ```text
//! {"checkpoint": "<signed note>", "context": {...}, "format": "statemeter-evidence",
//!  "items": [{"event_id": "...", "proof": ["<hex>", ...], "record": "<record text>",
//!             "seq": N}, ...],
//!  "rows": [...], "version": 1}
//! ```
//!
//! Specified in docs/ledger-format.md.

use serde_json::{json, Map, Value};

use super::checkpoint::{self, Checkpoint};
use super::note::{Checked, VerifyingKey};
use super::proof::InclusionProof;
use crate::error::{Error, Result};
use crate::ledger::chain::embedded_seq;
use crate::ledger::compact::{self, Context, Keys};
use crate::ledger::Store;

/// The `format` value of a bundle.
pub const FORMAT: &str = "statemeter-evidence";
/// The `version` this code writes and reads.
pub const VERSION: u64 = 1;

/// Builds the bundle for the events `ids` (in the order given, each once) against `cp`, a
/// checkpoint of `store`. `Error::Validation` (field `events`) for an id the ledger lacks or
/// an event recorded after the checkpoint.
pub fn build(
    store: &Store,
    ids: &[String],
    cp: &Checkpoint,
    rows: Option<Value>,
    context: Option<Value>,
) -> Result<String> {
    checkpoint::check_against(store, cp)?;
    let mut items = Vec::with_capacity(ids.len());
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id.as_str()) {
            continue;
        }
        let seq = store
            .seq_of(id)?
            .ok_or_else(|| Error::validation("events", format!("no event {id} in the ledger")))?;
        if seq > cp.size {
            return Err(Error::validation(
                "events",
                format!(
                    "event {id} (seq {seq}) was recorded after the checkpoint of {} records: \
                     take a newer checkpoint",
                    cp.size
                ),
            ));
        }
        let (record, proof) = proven_record(store, seq, cp)?;
        let mut item = json!({"event_id": id, "proof": proof, "record": record, "seq": seq});
        // A version-2 record that refers to its context: the defining record goes with it,
        // proven against the same checkpoint, so the bundle shows the event whole.
        if let Some((Context::Ref(at), _)) = compact::parse_record_v2(&record) {
            if at == 0 || at >= seq {
                return Err(Error::Integrity(format!(
                    "the record at seq {seq} takes its context from seq {at}, which is not an \
                     earlier record (verify() tells what happened)"
                )));
            }
            let (definition, proof) = proven_record(store, at, cp)?;
            item["definition"] = json!({"proof": proof, "record": definition, "seq": at});
        }
        items.push(item);
    }
    let mut bundle = Map::new();
    bundle.insert("checkpoint".into(), Value::String(cp.text()));
    if let Some(c) = context {
        bundle.insert("context".into(), c);
    }
    bundle.insert("format".into(), FORMAT.into());
    bundle.insert("items".into(), Value::Array(items));
    if let Some(r) = rows {
        bundle.insert("rows".into(), r);
    }
    bundle.insert("version".into(), VERSION.into());
    Ok(serde_json::to_string_pretty(&Value::Object(bundle)).expect("JSON values serialize"))
}

/// The record at `seq` as stored, and its inclusion proof (hex) in the tree `cp` signs.
fn proven_record(store: &Store, seq: u64, cp: &Checkpoint) -> Result<(String, Vec<String>)> {
    let record = store
        .record_at(seq)?
        .ok_or_else(|| Error::Integrity(format!("the ledger has no record at seq {seq}")))?;
    let record = String::from_utf8(record)
        .map_err(|_| Error::Integrity(format!("the record at seq {seq} is not UTF-8 text")))?;
    let path = store.inclusion_path(seq - 1, cp.size)?;
    Ok((record, path.iter().map(hex::encode).collect()))
}

/// The check of one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemCheck {
    pub event_id: String,
    pub seq: Option<u64>,
    /// `None` when the item checks out, else what is wrong with it.
    pub problem: Option<String>,
    /// The event the record holds (a version-2 record's `e` and its context's event
    /// together), when the item checks out.
    pub event: Option<Value>,
    /// How the event was classified (from the record, or the context it names), when the
    /// item checks out.
    pub classification: Option<Value>,
}

/// The result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceCheck {
    /// True when the checkpoint is signed by the key and every item checks out.
    pub ok: bool,
    /// The checkpoint, when the bundle has a readable one.
    pub checkpoint: Option<Checkpoint>,
    /// What is wrong with the bundle as a whole (format, checkpoint, signature), if anything.
    pub problem: Option<String>,
    pub items: Vec<ItemCheck>,
    pub rows: Option<Value>,
    pub context: Option<Value>,
}

impl EvidenceCheck {
    /// The event ids of the items that do not check out.
    pub fn failed(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter(|i| i.problem.is_some())
            .map(|i| i.event_id.as_str())
            .collect()
    }
}

fn refused(problem: String) -> EvidenceCheck {
    EvidenceCheck {
        ok: false,
        checkpoint: None,
        problem: Some(problem),
        items: Vec::new(),
        rows: None,
        context: None,
    }
}

/// Checks a bundle with the ledger owner's verifying key: the checkpoint's signature, then each
/// item's record against its proof and the checkpoint's root, and that the record is the event
/// and seq the item names. Never fails: every problem is in the result.
pub fn verify(bundle: &str, key: &VerifyingKey) -> EvidenceCheck {
    let doc: Value = match serde_json::from_str(bundle) {
        Ok(v) => v,
        Err(e) => return refused(format!("the bundle is not JSON: {e}")),
    };
    let Some(doc) = doc.as_object() else {
        return refused("the bundle is not a JSON object".into());
    };
    if doc.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return refused(format!("the bundle's format is not {FORMAT:?}"));
    }
    if doc.get("version").and_then(Value::as_u64) != Some(VERSION) {
        return refused(format!("the bundle's version is not {VERSION}"));
    }
    let cp = match doc
        .get("checkpoint")
        .and_then(Value::as_str)
        .ok_or_else(|| "the bundle has no checkpoint text".to_string())
        .and_then(|t| Checkpoint::parse(t).map_err(|e| format!("the checkpoint: {e}")))
    {
        Ok(cp) => cp,
        Err(p) => return refused(p),
    };
    let problem = match cp.check(key) {
        Checked::Verified => None,
        Checked::Unsigned => Some(format!(
            "the checkpoint carries no signature of the key {} ({:08x})",
            key.name(),
            key.id()
        )),
        Checked::Invalid => Some(format!(
            "the signature of {} does not verify: the checkpoint was altered",
            key.name()
        )),
    };
    let Some(raw_items) = doc.get("items").and_then(Value::as_array) else {
        return EvidenceCheck {
            checkpoint: Some(cp),
            ..refused("the bundle has no items list".into())
        };
    };
    let items: Vec<ItemCheck> = raw_items.iter().map(|i| check_item(i, &cp)).collect();
    EvidenceCheck {
        ok: problem.is_none() && items.iter().all(|i| i.problem.is_none()),
        checkpoint: Some(cp),
        problem,
        items,
        rows: doc.get("rows").cloned(),
        context: doc.get("context").cloned(),
    }
}

fn check_item(item: &Value, cp: &Checkpoint) -> ItemCheck {
    let event_id = item
        .get("event_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let seq = item.get("seq").and_then(Value::as_u64);
    let (problem, event, classification) = match item_problem(item, &event_id, seq, cp) {
        Ok((event, classification)) => (None, Some(event), Some(classification)),
        Err(problem) => (Some(problem), None, None),
    };
    ItemCheck {
        event_id,
        seq,
        problem,
        event,
        classification,
    }
}

/// A record text with its inclusion proof checked: the item's (or its definition's) `record`
/// must be leaf `seq - 1` of the checkpoint's tree.
fn proven<'a>(
    entry: &'a Value,
    seq: u64,
    cp: &Checkpoint,
    what: &str,
) -> std::result::Result<&'a str, String> {
    let record = entry
        .get("record")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no {what} text"))?;
    let hashes = entry
        .get("proof")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no proof list for the {what}"))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("a proof hash of the {what} is not 64 hex digits"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let proof = InclusionProof {
        leaf_index: seq - 1,
        tree_size: cp.size,
        hashes,
    };
    if !proof.verify(record.as_bytes(), cp) {
        return Err(format!(
            "the {what} at seq {seq} is not the one the checkpoint's tree holds (the {what} or \
             its proof was altered)"
        ));
    }
    Ok(record)
}

/// The item's event and classification when it checks out, else what is wrong.
fn item_problem(
    item: &Value,
    event_id: &str,
    seq: Option<u64>,
    cp: &Checkpoint,
) -> std::result::Result<(Value, Value), String> {
    let seq = seq.filter(|&s| s >= 1).ok_or("no seq of 1 or more")?;
    if seq > cp.size {
        return Err(format!(
            "seq {seq} is beyond the checkpoint's {} records",
            cp.size
        ));
    }
    let record = proven(item, seq, cp, "record")?;
    let mut parsed: Value = serde_json::from_str(record).map_err(|_| "the record is not JSON")?;
    // A version-1 record names its event at `event.id` and its seq at `seq`; a version-2
    // record at `e.id` and `s` (docs/ledger-format.md).
    let v2 = parsed.get("v").and_then(Value::as_u64) == Some(2);
    let (id_at, seq_at) = if v2 {
        ("/e/id", "s")
    } else {
        ("/event/id", "seq")
    };
    let names = parsed.pointer(id_at).and_then(Value::as_str);
    if names != Some(event_id) || parsed.get(seq_at).and_then(Value::as_u64) != Some(seq) {
        return Err(format!(
            "the record at seq {seq} is event {}, not event {event_id:?} at seq {seq}",
            names.unwrap_or("(none)")
        ));
    }
    if !v2 {
        let event = parsed.get_mut("event").map(Value::take);
        let classification = parsed.get_mut("classification").map(Value::take);
        return match (event, classification) {
            (Some(e @ Value::Object(_)), Some(c @ Value::Object(_))) => Ok((e, c)),
            _ => Err(format!(
                "the record at seq {seq} has no event and classification objects"
            )),
        };
    }
    let (context, own) = compact::parse_record_v2(record)
        .ok_or_else(|| format!("the record at seq {seq} is not a version-2 record (c, e, s, v)"))?;
    let definition = match context {
        Context::Inline(definition) => definition,
        Context::Ref(at) => definition_of(item, seq, at, cp)?,
    };
    expanded(definition, own, seq)
}

/// The definition text a version-2 record at `seq` refers to (its context at seq `at`), from
/// the item's `definition`: the record at seq `at`, proven against the same checkpoint, whose
/// context is a definition.
fn definition_of<'a>(
    item: &'a Value,
    seq: u64,
    at: u64,
    cp: &Checkpoint,
) -> std::result::Result<&'a str, String> {
    let Some(def) = item.get("definition") else {
        return Err(format!(
            "the record at seq {seq} takes its context from seq {at}, and the bundle does not \
             carry that defining record"
        ));
    };
    let named = def.get("seq").and_then(Value::as_u64);
    if named != Some(at) {
        return Err(format!(
            "the record at seq {seq} takes its context from seq {at}, but the bundle's \
             defining record is {}",
            named.map_or("not numbered".to_string(), |n| format!("seq {n}"))
        ));
    }
    if at == 0 || at >= seq {
        return Err(format!(
            "the record at seq {seq} takes its context from seq {at}, which is not an earlier \
             record"
        ));
    }
    let text = proven(def, at, cp, "defining record")?;
    match compact::parse_record_v2(text) {
        Some((Context::Inline(definition), _)) if embedded_seq(text.as_bytes()) == Some(at) => {
            Ok(definition)
        }
        _ => Err(format!(
            "the defining record at seq {at} is not a version-2 record at seq {at} that \
             defines a context"
        )),
    }
}

/// The event (the record's `e` and its context's event, whose keys must be disjoint) and the
/// classification of a version-2 record.
fn expanded(definition: &str, own: &str, seq: u64) -> std::result::Result<(Value, Value), String> {
    let keys = compact::ContextKeys::of(definition).ok_or_else(|| {
        format!("the context of the record at seq {seq} is not {{classification, event}}")
    })?;
    match compact::shadowed_key(own, &keys) {
        Keys::Disjoint => {}
        Keys::Twice(key) => {
            return Err(format!(
                "the record at seq {seq} holds the event key {key:?} twice, in its e and in its \
                 context: the event it stands for is ambiguous"
            ))
        }
        Keys::NotAnObject => {
            return Err(format!("the e of the record at seq {seq} is not an object"))
        }
    }
    let unreadable = || format!("the record at seq {seq} is not JSON");
    let mut context: Value = serde_json::from_str(definition).map_err(|_| unreadable())?;
    let mut event: Value = serde_json::from_str(own).map_err(|_| unreadable())?;
    let (Some(Value::Object(shared)), Some(classification)) = (
        context.get_mut("event").map(Value::take),
        context.get_mut("classification").map(Value::take),
    ) else {
        return Err(unreadable());
    };
    let Some(map) = event.as_object_mut() else {
        return Err(unreadable());
    };
    map.extend(shared);
    Ok((event, classification))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Durability, Pending};
    use crate::transparency::note::SigningKey;

    fn ledger(n: u64) -> Store {
        let mut store = Store::open(None, Durability::Batch).unwrap();
        let batch: Vec<Pending> = (1..=n)
            .map(|i| Pending {
                id: format!("e{i}"),
                event_json: format!(r#"{{"id":"e{i}","kind":"tool_call","ts":{i}}}"#),
                classification_json: r#"{"tag":"stateless"}"#.to_string(),
                ts_explicit: false,
            })
            .collect();
        store.append(&batch).unwrap();
        store
    }

    #[test]
    fn a_version_2_bundle_carries_and_checks_the_defining_records() {
        let mut store = ledger(40);
        let key = SigningKey::generate("test.example/ledger").unwrap();
        let vk = key.verifying_key();
        let cp = checkpoint::take(&mut store, &key).unwrap();
        let bundle = build(&store, &["e1".into(), "e33".into()], &cp, None, None).unwrap();
        let doc: Value = serde_json::from_str(&bundle).unwrap();
        // e1 defines its context inline; e33 refers to seq 1, which comes with it.
        assert!(doc["items"][0].get("definition").is_none());
        let def = &doc["items"][1]["definition"];
        assert_eq!(def["seq"], 1);
        assert_eq!(def["record"], doc["items"][0]["record"]);
        let check = verify(&bundle, &vk);
        assert!(check.ok, "{check:?}");
        let item = &check.items[1];
        assert_eq!(
            item.event,
            Some(json!({"id": "e33", "kind": "tool_call", "ts": 33}))
        );
        assert_eq!(item.classification, Some(json!({"tag": "stateless"})));
        let fails = |doc: &Value, words: &str| {
            let check = verify(&doc.to_string(), &vk);
            assert!(!check.ok);
            assert_eq!(check.failed(), vec!["e33"]);
            let problem = check.items[1].problem.clone().unwrap();
            assert!(problem.contains(words), "{problem}");
            assert!(check.items[1].event.is_none());
        };
        let mut missing = doc.clone();
        missing["items"][1]
            .as_object_mut()
            .unwrap()
            .remove("definition");
        fails(&missing, "does not carry that defining record");
        // The defining record altered (the classification relabelled).
        let mut altered = doc.clone();
        let text = def["record"]
            .as_str()
            .unwrap()
            .replace("stateless", "stateful");
        altered["items"][1]["definition"]["record"] = json!(text);
        fails(
            &altered,
            "defining record at seq 1 is not the one the checkpoint's tree holds",
        );
        // Another record, proven at its own seq, standing in for the one referenced.
        let mut other = doc.clone();
        let (record, proof) = proven_record(&store, 2, &cp).unwrap();
        other["items"][1]["definition"] = json!({"proof": proof, "record": record, "seq": 2});
        fails(
            &other,
            "takes its context from seq 1, but the bundle's defining record is seq 2",
        );
        // ... or at the referenced seq with another record's proof.
        other["items"][1]["definition"]["seq"] = json!(1);
        fails(&other, "is not the one the checkpoint's tree holds");
        // A record that refers to itself is not a definition.
        let mut itself = doc.clone();
        itself["items"][1]["definition"] = json!({
            "proof": doc["items"][1]["proof"], "record": doc["items"][1]["record"], "seq": 33});
        fails(&itself, "is seq 33");
    }

    #[test]
    fn a_record_whose_e_shadows_its_context_fails() {
        // Re-signed by whoever holds the signing key: the tree and the signature hold, the
        // record itself is ambiguous.
        let mut store = Store::open(None, Durability::Batch).unwrap();
        let key = SigningKey::generate("test.example/ledger").unwrap();
        store
            .append(&[Pending {
                id: "a".into(),
                event_json: r#"{"id":"a","kind":"tool_call","ts":1}"#.into(),
                classification_json: r#"{"tag":"stateless"}"#.into(),
                ts_explicit: false,
            }])
            .unwrap();
        let shadowing = r#"{"c":1,"e":{"id":"b","kind":"model_call","ts":2},"s":2,"v":2}"#;
        let prev = store.head().unwrap().hash;
        let hash = crate::ledger::chain_hash(&prev, shadowing.as_bytes());
        store
            .connection()
            .execute(
                "INSERT INTO events (seq, record, hash) VALUES (2, ?1, ?2)",
                rusqlite::params![shadowing, &hash[..]],
            )
            .unwrap();
        store
            .connection()
            .execute(
                "INSERT INTO ids (key, seq) VALUES (?1, 2)",
                [&compact::id_key("b")[..]],
            )
            .unwrap();
        let cp = checkpoint::take(&mut store, &key).unwrap();
        let bundle = build(&store, &["b".into()], &cp, None, None).unwrap();
        let check = verify(&bundle, &key.verifying_key());
        assert_eq!(check.failed(), vec!["b"]);
        let problem = check.items[0].problem.clone().unwrap();
        assert!(problem.contains(r#"key "kind" twice"#), "{problem}");
    }

    #[test]
    fn a_bundle_verifies_and_every_edit_is_caught() {
        let mut store = ledger(50);
        let key = SigningKey::generate("test.example/ledger").unwrap();
        let vk = key.verifying_key();
        let cp = checkpoint::take(&mut store, &key).unwrap();
        assert_eq!(store.checkpoints().unwrap(), vec![cp.text()]);
        assert!(cp.origin.starts_with("statemeter/"));
        let ids: Vec<String> = ["e1", "e17", "e50", "e17"].map(String::from).to_vec();
        let bundle = build(&store, &ids, &cp, Some(json!([{"calls": 3}])), None).unwrap();
        let check = verify(&bundle, &vk);
        assert!(check.ok, "{check:?}");
        assert_eq!(check.items.len(), 3);
        assert_eq!(check.rows, Some(json!([{"calls": 3}])));
        // An edited record names its event; the others still check out.
        let edited = bundle.replacen(r#"\"ts\":17"#, r#"\"ts\":18"#, 1);
        assert_ne!(edited, bundle);
        let check = verify(&edited, &vk);
        assert!(!check.ok);
        assert_eq!(check.failed(), vec!["e17"]);
        // A record moved to another item's place.
        let doc: Value = serde_json::from_str(&bundle).unwrap();
        let mut swapped = doc.clone();
        swapped["items"][0]["event_id"] = json!("e17");
        assert_eq!(verify(&swapped.to_string(), &vk).failed(), vec!["e17"]);
        let mut bad_proof = doc.clone();
        let first = bad_proof["items"][1]["proof"][0]
            .as_str()
            .unwrap()
            .replace('a', "b");
        bad_proof["items"][1]["proof"][0] = json!(first);
        assert_eq!(verify(&bad_proof.to_string(), &vk).failed(), vec!["e17"]);
        // Another key, or an altered checkpoint, fails the whole bundle.
        let other = SigningKey::generate("test.example/ledger")
            .unwrap()
            .verifying_key();
        let check = verify(&bundle, &other);
        assert!(!check.ok && check.problem.unwrap().contains("no signature"));
        let mut resized = doc.clone();
        let text = cp.text().replacen("\n50\n", "\n49\n", 1);
        resized["checkpoint"] = json!(text);
        let check = verify(&resized.to_string(), &vk);
        assert!(!check.ok && check.problem.unwrap().contains("altered"));
        assert!(!verify("{", &vk).ok);
        // Events after the checkpoint, or unknown, are refused when building.
        let mut store2 = ledger(60);
        let cp2 = checkpoint::take(&mut store2, &key).unwrap();
        assert!(build(&store2, &["nope".into()], &cp2, None, None).is_err());
        // A checkpoint of another ledger is refused.
        assert!(build(&store, &["e1".into()], &cp2, None, None).is_err());
    }
}
