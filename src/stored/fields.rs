//! [`RowFields`]: the rules engine's view ([`Fields`]) of one row of [`EventColumns`], so that
//! a ledger's events can be classified again under another ruleset without reading their
//! records back (see [`crate::stored::reading`]).
//!
//! Top-level fields come from the columns. `request.*` and `attrs.*` paths are looked up in
//! the canonical JSON text the columns keep for those two mappings (the bytes of the record,
//! RFC 8785: sorted keys, no whitespace), by a scanner that walks the text without building a
//! tree: a string without escapes, an integer, `true`/`false` or `null` is answered straight
//! from the text. Anything else (an object or a list, a float, a string with escapes) parses
//! the mapping once per view with `serde_json` and answers from the tree, so every answer is
//! exactly what the recorded event's own [`Fields`] gives: the engine cannot tell the two apart.

use std::cell::OnceCell;

use serde_json::{Map, Value};

use crate::event::lookup_path;
use crate::event::{EventKind, FieldRef, Fields};
use crate::stored::columns::EventColumns;

/// One row of [`EventColumns`] as the rules engine sees it.
pub struct RowFields<'a> {
    cols: &'a EventColumns,
    row: usize,
    request: OnceCell<Option<Map<String, Value>>>,
    attrs: OnceCell<Option<Map<String, Value>>>,
}

impl<'a> RowFields<'a> {
    pub fn new(cols: &'a EventColumns, row: usize) -> Self {
        RowFields {
            cols,
            row,
            request: OnceCell::new(),
            attrs: OnceCell::new(),
        }
    }

    /// The canonical JSON text of a nested mapping at this row (`None`: absent).
    fn text(&self, attrs: bool) -> Option<&'a str> {
        let col = if attrs {
            &self.cols.attrs
        } else {
            &self.cols.request
        };
        let t = col.get(self.row);
        (!t.is_empty()).then_some(t)
    }

    /// The mapping parsed as a tree (the slow path), once per view.
    fn tree(&self, attrs: bool) -> Option<&Map<String, Value>> {
        let cell = if attrs { &self.attrs } else { &self.request };
        cell.get_or_init(|| serde_json::from_str(self.text(attrs)?).ok())
            .as_ref()
    }

    fn nested(&self, attrs: bool, path: &str) -> Option<FieldRef<'_>> {
        let text = self.text(attrs)?;
        match scan::lookup(text, path) {
            scan::Found::Absent => None,
            scan::Found::Value(raw) => match scan::scalar(raw) {
                Some(v) => v,
                None => FieldRef::from_json(lookup_path(self.tree(attrs)?, path)?),
            },
            scan::Found::Slow => FieldRef::from_json(lookup_path(self.tree(attrs)?, path)?),
        }
    }

    fn nested_has(&self, attrs: bool, path: &str) -> bool {
        let Some(text) = self.text(attrs) else {
            return false;
        };
        match scan::lookup(text, path) {
            scan::Found::Absent => false,
            scan::Found::Value(raw) => raw != "null",
            scan::Found::Slow => self.nested(attrs, path).is_some(),
        }
    }
}

impl Fields for RowFields<'_> {
    fn field(&self, path: &str) -> Option<FieldRef<'_>> {
        if let Some(rest) = path.strip_prefix("request.") {
            return self.nested(false, rest);
        }
        if let Some(rest) = path.strip_prefix("attrs.") {
            return self.nested(true, rest);
        }
        let (c, i) = (self.cols, self.row);
        let kind = c.kind[i];
        // Counts exist on the kinds that have them (a finished event always carries them).
        let count = |v: u64, of: EventKind| (kind == of).then_some(FieldRef::Int(v as i64));
        match path {
            "kind" => Some(FieldRef::Str(kind.as_str())),
            "id" => Some(FieldRef::Str(c.id.get(i))),
            "ts" => Some(FieldRef::Int(c.ts[i])),
            "duration_ns" => c.duration_ns[i].map(FieldRef::Int),
            "input_tokens" => count(c.input_tokens[i], EventKind::ModelCall),
            "output_tokens" => count(c.output_tokens[i], EventKind::ModelCall),
            "cached_tokens" => count(c.cached_tokens[i], EventKind::ModelCall),
            "bytes" => count(c.bytes[i], EventKind::StateOp),
            // The classification's own ruleset is not an event field.
            "ruleset" | "ruleset_digest" => None,
            other => c.str_column(other)?.get(i).map(FieldRef::Str),
        }
    }

    fn has(&self, path: &str) -> bool {
        if let Some(rest) = path.strip_prefix("request.") {
            return self.nested_has(false, rest);
        }
        if let Some(rest) = path.strip_prefix("attrs.") {
            return self.nested_has(true, rest);
        }
        self.field(path).is_some()
    }
}

/// Lookups in canonical JSON text without building a tree.
pub(crate) mod scan {
    use crate::event::FieldRef;

    /// What a lookup found.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Found<'a> {
        /// No such member.
        Absent,
        /// The member's value, as its JSON text.
        Value(&'a str),
        /// The text needs a real parser (a key with escapes, or text that is not canonical).
        Slow,
    }

    /// The value at `path` inside the object `obj`, with the semantics of
    /// [`crate::event::fields::lookup_path`]: a key that itself contains dots is found whole
    /// first; otherwise each segment descends one nested object.
    pub fn lookup<'a>(obj: &'a str, path: &str) -> Found<'a> {
        let whole = member(obj, path);
        if whole != Found::Absent || !path.contains('.') {
            return whole;
        }
        let mut cur = obj;
        for part in path.split('.') {
            if !cur.starts_with('{') {
                return Found::Absent;
            }
            match member(cur, part) {
                Found::Value(v) => cur = v,
                other => return other,
            }
        }
        Found::Value(cur)
    }

    /// The value of member `key` of the object `obj`.
    pub fn member<'a>(obj: &'a str, key: &str) -> Found<'a> {
        let b = obj.as_bytes();
        if b.first() != Some(&b'{') {
            return Found::Slow;
        }
        // A key written with escapes can only equal a key that has characters to escape.
        let plain = !key.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20);
        let mut i = 1;
        if b.get(i) == Some(&b'}') {
            return Found::Absent;
        }
        loop {
            if b.get(i) != Some(&b'"') {
                return Found::Slow;
            }
            let Some((end, escaped)) = skip_string(b, i) else {
                return Found::Slow;
            };
            if escaped && !plain {
                return Found::Slow;
            }
            let matched = !escaped && &obj[i + 1..end - 1] == key;
            if b.get(end) != Some(&b':') {
                return Found::Slow;
            }
            let start = end + 1;
            let Some(stop) = skip_value(b, start) else {
                return Found::Slow;
            };
            if matched {
                return Found::Value(&obj[start..stop]);
            }
            match b.get(stop) {
                Some(b',') => i = stop + 1,
                Some(b'}') => return Found::Absent,
                _ => return Found::Slow,
            }
        }
    }

    /// Calls `f(key, escaped, value)` for every member of the object `obj`, in order (`key`
    /// as written, without its quotes; `escaped`: it has escapes; `value` as its JSON text).
    /// `false` when the text is not an object [`member`] reads whole without the parser (its
    /// lookups could then be `Slow`).
    pub fn members<'a>(obj: &'a str, mut f: impl FnMut(&'a str, bool, &'a str)) -> bool {
        let b = obj.as_bytes();
        if b.first() != Some(&b'{') {
            return false;
        }
        let mut i = 1;
        if b.get(i) == Some(&b'}') {
            return i + 1 == b.len();
        }
        loop {
            if b.get(i) != Some(&b'"') {
                return false;
            }
            let Some((end, escaped)) = skip_string(b, i) else {
                return false;
            };
            if b.get(end) != Some(&b':') {
                return false;
            }
            let start = end + 1;
            let Some(stop) = skip_value(b, start) else {
                return false;
            };
            f(&obj[i + 1..end - 1], escaped, &obj[start..stop]);
            match b.get(stop) {
                Some(b',') => i = stop + 1,
                Some(b'}') => return stop + 1 == b.len(),
                _ => return false,
            }
        }
    }

    /// A scalar read straight from its text: `Some(None)` for `null`, `Some(Some(..))` for a
    /// string without escapes, `true`/`false` or an integer that fits `i64`; `None` when the
    /// value needs the parser (objects, lists, floats, big integers, escaped strings).
    pub fn scalar(raw: &str) -> Option<Option<FieldRef<'_>>> {
        let b = raw.as_bytes();
        match *b.first()? {
            b'"' => {
                let inner = raw.get(1..raw.len().checked_sub(1)?)?;
                (!inner.contains('\\')).then_some(Some(FieldRef::Str(inner)))
            }
            b't' if raw == "true" => Some(Some(FieldRef::Bool(true))),
            b'f' if raw == "false" => Some(Some(FieldRef::Bool(false))),
            b'n' if raw == "null" => Some(None),
            b'-' | b'0'..=b'9' => {
                let digits = raw.strip_prefix('-').unwrap_or(raw);
                if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                raw.parse::<i64>().ok().map(|v| Some(FieldRef::Int(v)))
            }
            _ => None,
        }
    }

    /// The end (one past the closing quote) of the string starting at `b[i] == '"'`, and
    /// whether it has escapes.
    fn skip_string(b: &[u8], i: usize) -> Option<(usize, bool)> {
        let mut j = i + 1;
        let mut escaped = false;
        loop {
            j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
            if b[j] == b'"' {
                return Some((j + 1, escaped));
            }
            escaped = true;
            j += 2;
        }
    }

    /// The end of the value starting at `b[i]`.
    fn skip_value(b: &[u8], i: usize) -> Option<usize> {
        match *b.get(i)? {
            b'"' => skip_string(b, i).map(|(end, _)| end),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut j = i;
                loop {
                    match *b.get(j)? {
                        b'"' => {
                            j = skip_string(b, j)?.0;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => {
                let n = b[i..]
                    .iter()
                    .position(|&c| matches!(c, b',' | b'}' | b']'))
                    .unwrap_or(b.len() - i);
                (n > 0).then_some(i + n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scan::{lookup, member, scalar, Found};
    use super::*;
    use crate::canonical::to_canonical;
    use crate::classify::Ruleset;
    use crate::event::Event;
    use serde_json::json;

    #[test]
    fn members_and_paths_in_canonical_text() {
        let text = to_canonical(&json!({
            "a": 1, "b": {"c": "x", "d": [1, {"e": "}"}]}, "f.g": true, "f": {"g": false},
            "h": null, "q\"": 2, "s": "a\\b", "t": 1.5, "u": 18446744073709551615u64,
        }))
        .unwrap();
        assert_eq!(member(&text, "a"), Found::Value("1"));
        assert_eq!(
            member(&text, "zz"),
            Found::Absent,
            "past a key with escapes"
        );
        assert_eq!(member(&text, "q\""), Found::Slow, "a key to unescape");
        assert_eq!(lookup(&text, "b.c"), Found::Value("\"x\""));
        assert_eq!(lookup(&text, "b.d"), Found::Value("[1,{\"e\":\"}\"}]"));
        assert_eq!(
            lookup(&text, "f.g"),
            Found::Value("true"),
            "whole key first"
        );
        assert_eq!(
            lookup(&text, "a.b"),
            Found::Absent,
            "no descent through a scalar"
        );
        assert_eq!(member("{}", "a"), Found::Absent);
        assert_eq!(member("{\"a\":1}", "b"), Found::Absent);
        assert_eq!(member("[1]", "a"), Found::Slow);
        assert_eq!(scalar("\"x\""), Some(Some(FieldRef::Str("x"))));
        assert_eq!(scalar("\"a\\\\b\""), None);
        assert_eq!(scalar("-12"), Some(Some(FieldRef::Int(-12))));
        assert_eq!(scalar("1.5"), None);
        assert_eq!(scalar("18446744073709551615"), None);
        assert_eq!(scalar("null"), Some(None));
        assert_eq!(scalar("{}"), None);
    }

    /// A text `members` reads whole is one `member` never needs the parser for (plain keys),
    /// and `member` finds each key's first value there.
    #[test]
    fn members_agree_with_member() {
        use super::scan::members;
        let texts = [
            "{}",
            r#"{"a":1,"b":{"c":[1,{"d":"}"}]},"e":"x\"y","f":null}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"k\"q":1,"z":true}"#,
            r#"{ "a": 1 }"#,
            r#"{"a":1,}"#,
            r#"{"a":1}x"#,
            r#"{"a":}"#,
            r#"{"a":1"#,
            "{}x",
            "[1]",
            "",
        ];
        for text in texts {
            let mut found: Vec<(&str, bool, &str)> = Vec::new();
            let whole = members(text, |k, escaped, v| found.push((k, escaped, v)));
            if !whole {
                continue;
            }
            for key in ["a", "b", "e", "f", "z", "missing"] {
                let first = found.iter().find(|(k, esc, _)| !esc && *k == key);
                let want = first.map_or(Found::Absent, |(_, _, v)| Found::Value(v));
                assert_eq!(member(text, key), want, "{text} {key}");
            }
        }
        let whole = |t: &str| members(t, |_, _, _| {});
        assert!(whole("{}") && whole(r#"{"a":{"b":1},"c":[2]}"#));
        for bad in [
            r#"{ "a": 1 }"#,
            r#"{"a":1,}"#,
            r#"{"a":1}x"#,
            "{}x",
            "[1]",
            "",
            "5",
        ] {
            assert!(!whole(bad), "{bad}");
        }
    }

    /// Every path the text view answers is answered exactly as the event's own view does.
    #[test]
    fn rows_answer_as_the_recorded_event_does() {
        let mut e = Event::new(EventKind::ModelCall);
        e.provider = Some("openai".into());
        e.model = Some("gpt-5".into());
        e.api = Some("responses".into());
        e.session_id = Some("s".into());
        let request = json!({
            "previous_response_id": "resp_1", "store": true, "n": -3, "big": 18446744073709551615u64,
            "t": 0.5, "esc": "a\"b", "nested": {"x": {"y": "z"}, "l": [1, 2]}, "nul": null,
            "dotted.key": "whole", "dotted": {"key": "descended"}, "é": "ü",
        });
        e.request = request.as_object().cloned();
        e.attrs = json!({"http.request.method": "DELETE", "a": {"b": 1}})
            .as_object()
            .cloned()
            .unwrap();
        let e = e.finish().unwrap();
        let mut cols = EventColumns::default();
        let c = Ruleset::builtin_default().classify(&e);
        cols.push(1, &e, &c);
        let row = RowFields::new(&cols, 0);
        let paths = [
            "kind",
            "id",
            "ts",
            "duration_ns",
            "provider",
            "model",
            "api",
            "venue",
            "session_id",
            "input_tokens",
            "bytes",
            "holder",
            "ruleset",
            "request",
            "attrs",
            "request.previous_response_id",
            "request.store",
            "request.n",
            "request.big",
            "request.t",
            "request.esc",
            "request.nested",
            "request.nested.x.y",
            "request.nested.l",
            "request.nested.x.z",
            "request.nul",
            "request.missing",
            "request.dotted.key",
            "request.é",
            "attrs.http.request.method",
            "attrs.a.b",
            "attrs.a",
            "attrs.none",
            "request.store.x",
        ];
        for p in paths {
            assert_eq!(row.field(p), e.field(p), "{p}");
            assert_eq!(row.has(p), e.has(p), "{p}");
        }
        // An event without request or attrs.
        let mut t = Event::new(EventKind::StateOp);
        t.op = Some("write".into());
        t.store = Some("m".into());
        t.holder = Some("client".into());
        let t = t.finish().unwrap();
        cols.push(2, &t, &c);
        let row = RowFields::new(&cols, 1);
        for p in [
            "request.x",
            "attrs.x",
            "bytes",
            "input_tokens",
            "holder",
            "op",
        ] {
            assert_eq!(row.field(p), t.field(p), "{p}");
        }
    }
}
