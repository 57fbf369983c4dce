//! The read-only view of an event that the rules engine evaluates.
//!
//! The engine never sees an event type: it asks for fields by path. Top-level names are the
//! event's own fields (`kind`, `provider`, `api`, `mcp_session_id`, `holder`, ...); a dotted path
//! such as `request.previous_response_id` or `request.sessionResumption.handle` descends into
//! nested mappings. `event.rs` implements [`Fields`] for the recorded event; this file implements
//! it for a raw JSON mapping (what `sm.classify(mapping)` receives).

use serde_json::{Map, Value};

/// One field value as the engine sees it. Scalars come as `Str`, `Int` or `Bool`; anything else
/// found inside `request` or `attrs` (lists, mappings, floats) comes as `Json`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldRef<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Json(&'a Value),
}

impl<'a> FieldRef<'a> {
    /// Borrows a JSON value the way [`Fields`] reports it: `None` for `null`, scalars as
    /// `Str`/`Int`/`Bool`, everything else (including floats and integers beyond `i64`) as `Json`.
    pub fn from_json(v: &'a Value) -> Option<FieldRef<'a>> {
        Some(match v {
            Value::Null => return None,
            Value::String(s) => FieldRef::Str(s),
            Value::Bool(b) => FieldRef::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => FieldRef::Int(i),
                None => FieldRef::Json(v),
            },
            other => FieldRef::Json(other),
        })
    }

    /// The same value with a JSON scalar unwrapped, so `Json("x")` and `Str("x")` compare equal.
    pub(crate) fn normalized(self) -> FieldRef<'a> {
        match self {
            FieldRef::Json(v) => FieldRef::from_json(v).unwrap_or(FieldRef::Json(v)),
            other => other,
        }
    }
}

/// Read access to an event's fields by path. `None` means absent; JSON `null` counts as absent.
pub trait Fields {
    fn field(&self, path: &str) -> Option<FieldRef<'_>>;

    /// Whether the field is present (`has`/`not_has` conditions): `field(path).is_some()`,
    /// which a view that can tell presence without building the value answers faster.
    fn has(&self, path: &str) -> bool {
        self.field(path).is_some()
    }
}

impl<T: Fields + ?Sized> Fields for &T {
    fn field(&self, path: &str) -> Option<FieldRef<'_>> {
        (**self).field(path)
    }

    fn has(&self, path: &str) -> bool {
        (**self).has(path)
    }
}

/// The value at a dotted `path` inside `map`. A key that itself contains dots (OpenTelemetry
/// style, e.g. `http.request.method` in `attrs`) is found whole first; otherwise each segment
/// descends one nested mapping.
pub fn lookup_path<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = map.get(path) {
        return Some(v);
    }
    if !path.contains('.') {
        return None;
    }
    let mut parts = path.split('.');
    let mut cur = map.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// A raw event mapping: top-level keys as they are, dotted paths descend into nested objects.
impl Fields for Map<String, Value> {
    fn field(&self, path: &str) -> Option<FieldRef<'_>> {
        let value = match path.split_once('.') {
            Some((head @ ("request" | "attrs"), rest)) => {
                lookup_path(self.get(head)?.as_object()?, rest)?
            }
            _ => lookup_path(self, path)?,
        };
        FieldRef::from_json(value)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dotted_keys_are_found_whole_before_descending() {
        let m: super::Map<String, super::Value> = serde_json::from_value(serde_json::json!({
            "attrs": {"http.request.method": "DELETE", "a": {"b": 1}},
        }))
        .unwrap();
        let attrs = m["attrs"].as_object().unwrap();
        assert_eq!(
            super::lookup_path(attrs, "http.request.method"),
            Some(&serde_json::json!("DELETE"))
        );
        assert_eq!(
            super::lookup_path(attrs, "a.b"),
            Some(&serde_json::json!(1))
        );
        assert_eq!(super::lookup_path(attrs, "a.c"), None);
        use super::Fields;
        assert_eq!(
            m.field("attrs.http.request.method"),
            Some(super::FieldRef::Str("DELETE"))
        );
    }

    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn top_level_and_dotted_paths() {
        let m = map(json!({
            "kind": "model_call",
            "input_tokens": 12,
            "request": {"store": false, "previous_response_id": "resp_1",
                        "sessionResumption": {"handle": "h1"}, "tools": [1, 2], "t": 0.5},
        }));
        assert_eq!(m.field("kind"), Some(FieldRef::Str("model_call")));
        assert_eq!(m.field("input_tokens"), Some(FieldRef::Int(12)));
        assert_eq!(m.field("request.store"), Some(FieldRef::Bool(false)));
        assert_eq!(
            m.field("request.previous_response_id"),
            Some(FieldRef::Str("resp_1"))
        );
        assert_eq!(
            m.field("request.sessionResumption.handle"),
            Some(FieldRef::Str("h1"))
        );
        assert!(matches!(m.field("request.tools"), Some(FieldRef::Json(v)) if v.is_array()));
        assert!(matches!(m.field("request.t"), Some(FieldRef::Json(v)) if v.is_f64()));
        assert!(matches!(m.field("request"), Some(FieldRef::Json(v)) if v.is_object()));
    }

    #[test]
    fn null_and_missing_are_absent() {
        let m = map(json!({"provider": null, "request": {"store": null, "x": "s"}}));
        assert_eq!(m.field("provider"), None);
        assert_eq!(m.field("request.store"), None);
        assert_eq!(m.field("request.missing"), None);
        assert_eq!(m.field("nothing"), None);
        // Descending through a scalar finds nothing.
        assert_eq!(m.field("request.x.y"), None);
        assert_eq!(m.field(""), None);
    }

    #[test]
    fn normalized_unwraps_json_scalars() {
        let s = json!("abc");
        let big = json!(u64::MAX);
        assert_eq!(FieldRef::Json(&s).normalized(), FieldRef::Str("abc"));
        assert_eq!(FieldRef::Json(&json!(3)).normalized(), FieldRef::Int(3));
        assert_eq!(FieldRef::Json(&big).normalized(), FieldRef::Json(&big));
        assert_eq!(FieldRef::Int(1).normalized(), FieldRef::Int(1));
    }

    #[test]
    fn references_forward() {
        let m = map(json!({"kind": "state_op"}));
        let r: &dyn Fields = &m;
        assert_eq!((&r).field("kind"), Some(FieldRef::Str("state_op")));
    }
}
