//! Size limits on what a captured request contributes to its event.
//!
//! A request is hostile input: a 10 MB header, a URL with a megabyte-long path, a body whose
//! `model` is a novel. Recording enforces the event's limits (4 KiB per text field, 64 KiB per
//! mapping) by rejecting the event, which for captured traffic would lose the call from the
//! audit log. So [`fit`] truncates instead, before the event leaves the classifier, and says so:
//! every string the request contributed (the event's text fields, and any string inside
//! `request` or `attrs`) is cut to [`MAX_KEPT_STR`] bytes at a character boundary with a
//! `…[truncated from N bytes]` suffix, every array to [`MAX_KEPT_ITEMS`] elements, and
//! `attrs.truncated` lists the paths that were cut. Real parameters (ids, flags, model names,
//! endpoints) are far below these limits, so they are never touched. docs/classification.md
//! ("Limits") documents this.

use serde_json::{Map, Value};

use crate::event::{Event, Text};

/// Longest string (in UTF-8 bytes) a captured request keeps, before the truncation suffix.
pub const MAX_KEPT_STR: usize = 1024;
/// Most elements a kept array holds.
pub const MAX_KEPT_ITEMS: usize = 64;

/// Truncates what `ev` got from its request to the limits and lists the cut paths in
/// `attrs.truncated`.
pub fn fit(ev: &mut Event) {
    fit_with(ev, false);
}

/// [`fit`] for an event whose `attrs` the caller knows to be within the limits already
/// (`attrs_fit`): they are then not walked again.
pub fn fit_with(ev: &mut Event, attrs_fit: bool) {
    let mut cut: Vec<Value> = Vec::new();
    for (name, field) in [
        ("model", &mut ev.model),
        ("api", &mut ev.api),
        ("endpoint", &mut ev.endpoint),
        ("tool", &mut ev.tool),
        ("mcp_session_id", &mut ev.mcp_session_id),
    ] {
        if let Some(t) = field.as_ref().filter(|t| t.len() > MAX_KEPT_STR) {
            let short: Text = truncated(t).into();
            *field = Some(short);
            cut.push(Value::String(name.to_owned()));
        }
    }
    // The common case (nothing over a limit) is checked without building any path.
    if ev.request.as_ref().is_some_and(|r| r.values().any(over)) {
        if let Some(request) = ev.request.as_mut() {
            fit_map(request, "request", &mut cut);
        }
    }
    if !attrs_fit && ev.attrs.values().any(over) {
        fit_map(&mut ev.attrs, "attrs", &mut cut);
    }
    if !cut.is_empty() {
        ev.attrs.insert("truncated".into(), Value::Array(cut));
    }
}

/// Whether anything in `v` is over a limit.
pub fn over(v: &Value) -> bool {
    match v {
        Value::String(s) => s.len() > MAX_KEPT_STR,
        Value::Array(items) => items.len() > MAX_KEPT_ITEMS || items.iter().any(over),
        Value::Object(m) => m.values().any(over),
        _ => false,
    }
}

fn fit_map(map: &mut Map<String, Value>, path: &str, cut: &mut Vec<Value>) {
    for (k, v) in map.iter_mut() {
        fit_value(v, &format!("{path}.{k}"), cut);
    }
}

fn fit_value(v: &mut Value, path: &str, cut: &mut Vec<Value>) {
    match v {
        Value::String(s) if s.len() > MAX_KEPT_STR => {
            *s = truncated(s);
            cut.push(Value::String(path.to_owned()));
        }
        Value::Array(items) => {
            if items.len() > MAX_KEPT_ITEMS {
                items.truncate(MAX_KEPT_ITEMS);
                cut.push(Value::String(path.to_owned()));
            }
            for (i, item) in items.iter_mut().enumerate() {
                fit_value(item, &format!("{path}[{i}]"), cut);
            }
        }
        Value::Object(m) => fit_map(m, path, cut),
        _ => {}
    }
}

/// The first [`MAX_KEPT_STR`] bytes of `s` (at a character boundary) and a note of the length.
fn truncated(s: &str) -> String {
    let mut end = MAX_KEPT_STR;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated from {} bytes]", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use serde_json::json;

    #[test]
    fn long_values_are_cut_and_listed_short_ones_untouched() {
        let mut ev = Event::new(EventKind::ModelCall);
        ev.provider = Some("openai".into());
        ev.api = Some("responses".into());
        ev.model = Some("gpt-5".into());
        ev.endpoint = Some(format!("https://h/{}", "p".repeat(5000)).into());
        ev.request = json!({
            "previous_response_id": "resp_1",
            "OpenAI-Beta": "é".repeat(3000),
            "vector_store_ids": (0..100).map(|i| format!("vs_{i}")).collect::<Vec<_>>(),
        })
        .as_object()
        .cloned();
        fit(&mut ev);
        assert_eq!(ev.model.as_deref(), Some("gpt-5"));
        let endpoint = ev.endpoint.as_deref().unwrap();
        assert!(
            endpoint.ends_with("…[truncated from 5010 bytes]"),
            "{endpoint}"
        );
        let r = ev.request.as_ref().unwrap();
        assert_eq!(r["previous_response_id"], "resp_1");
        let beta = r["OpenAI-Beta"].as_str().unwrap();
        assert!(beta.starts_with("éé") && beta.ends_with("[truncated from 6000 bytes]"));
        assert!(beta.len() < MAX_KEPT_STR + 40);
        assert_eq!(
            r["vector_store_ids"].as_array().unwrap().len(),
            MAX_KEPT_ITEMS
        );
        assert_eq!(
            ev.attrs["truncated"],
            json!([
                "endpoint",
                "request.OpenAI-Beta",
                "request.vector_store_ids"
            ])
        );
        // The result passes the event's own limits.
        ev.finish().unwrap();
    }

    #[test]
    fn nothing_to_cut_adds_nothing() {
        let mut ev = Event::new(EventKind::ToolCall);
        ev.tool = Some("search".into());
        ev.attrs.insert("k".into(), json!(["a", {"b": "c"}]));
        let before = ev.clone();
        fit(&mut ev);
        assert_eq!(ev, before);
    }
}
