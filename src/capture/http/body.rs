//! A request body read only as far as classification needs.
//!
//! Performance note. A chat request is mostly content (messages, input, tool outputs): parsing it
//! into a `serde_json::Value` would allocate every string. [`Body::parse`] instead reads the
//! top-level object into `(key, &RawValue)` pairs: serde_json skips over each value (validating
//! it, allocating nothing) and hands back the slice, so a 2 KB chat body costs one pass over its
//! bytes. The provider modules then parse the few small values they keep (`store`,
//! `previous_response_id`, ...) from their slices and never touch the content ones.
//! [`has_key`] answers "is there a `cache_control` anywhere in here" with a substring search that
//! only accepts a real object key (see its doc), without parsing.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// What [`Body::value`] keeps for a member it cannot build (nested too deeply).
pub const UNREADABLE: &str = "(unreadable: nested deeper than 128 levels)";

/// The top-level members of a JSON object body, in document order.
pub struct Body<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Body<'a> {
    /// A body with no members.
    pub const fn empty() -> Body<'static> {
        Body { fields: Vec::new() }
    }

    /// Reads a JSON object body. `None` for anything else (not JSON, an array, a scalar).
    pub fn parse(bytes: &'a [u8]) -> Option<Body<'a>> {
        Body::parse_some(bytes, &|_| true)
    }

    /// [`Body::parse`] keeping only the members `want` names: the others are skipped without
    /// being kept (content such as `messages` is then passed over once, never re-validated).
    pub fn parse_some(bytes: &'a [u8], want: &dyn Fn(&str) -> bool) -> Option<Body<'a>> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
        if *first != b'{' {
            return None;
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let fields = de.deserialize_map(FieldsVisitor { want }).ok()?;
        de.end().ok()?;
        Some(Body { fields })
    }

    /// The first element of a JSON array body when it is an object (a JSON-RPC batch).
    pub fn parse_first_of_array(bytes: &'a [u8]) -> Option<(Body<'a>, usize)> {
        let items: Vec<&'a RawValue> = serde_json::from_slice(bytes).ok()?;
        let first = items.first()?;
        Some((Body::parse(first.get().as_bytes())?, items.len()))
    }

    /// The raw value of member `key` (the last one when a key repeats, as most parsers do).
    pub fn raw(&self, key: &str) -> Option<&'a RawValue> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// Whether member `key` is present and not `null`.
    pub fn has(&self, key: &str) -> bool {
        self.raw(key).is_some_and(|v| v.get() != "null")
    }

    /// Member `key` when it is a JSON string.
    pub fn str(&self, key: &str) -> Option<Cow<'a, str>> {
        raw_str(self.raw(key)?)
    }

    /// Member `key` when it is a JSON boolean.
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.raw(key)?.get() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// Member `key` parsed as a JSON value (`None` when absent or `null`). Only for small,
    /// non-content members. A member that is present but too deeply nested for serde_json to
    /// build (its recursion limit is 128 levels; skipping content has no limit) is kept as the
    /// string [`UNREADABLE`]: the parameter was sent, so its presence still counts.
    pub fn value(&self, key: &str) -> Option<Value> {
        match serde_json::from_str(self.raw(key)?.get()) {
            Ok(Value::Null) => None,
            Ok(v) => Some(v),
            Err(_) => Some(Value::String(UNREADABLE.to_owned())),
        }
    }

    /// Member `key` as a nested object body.
    pub fn object(&self, key: &str) -> Option<Body<'a>> {
        Body::parse(self.raw(key)?.get().as_bytes())
    }

    /// The members in document order.
    pub fn members(&self) -> impl Iterator<Item = (&str, &'a RawValue)> + '_ {
        self.fields.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// Member `key` as a list of raw elements (when it is an array).
    pub fn array(&self, key: &str) -> Option<Vec<&'a RawValue>> {
        let raw = self.raw(key)?;
        if !raw.get().starts_with('[') {
            return None;
        }
        serde_json::from_str(raw.get()).ok()
    }
}

/// A raw JSON string value, unescaped (borrowed when it has no escapes).
pub fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let s = raw.get();
    if !s.starts_with('"') {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(s).ok().map(Cow::Owned)
}

/// Whether `json` (valid JSON text) contains an object member named `key` at any depth.
///
/// A match of `"key"` counts only when its opening quote is not escaped (an even number of
/// backslashes before it) and a `:` follows after optional whitespace. In valid JSON an
/// unescaped quote always delimits a string, and a string followed by `:` is an object key, so
/// text inside a prompt (where quotes are escaped as `\"`) never matches.
pub fn has_key(json: &[u8], key: &str) -> bool {
    KeyFinder::new(key).in_json(json)
}

/// [`has_key`] for one key, built once (a `static` for the keys looked for on every request).
pub struct KeyFinder {
    finder: memchr::memmem::Finder<'static>,
    len: usize,
}

impl KeyFinder {
    pub fn new(key: &str) -> KeyFinder {
        let needle = format!("\"{key}\"");
        KeyFinder {
            len: needle.len(),
            finder: memchr::memmem::Finder::new(needle.as_bytes()).into_owned(),
        }
    }

    /// Whether `json` has an object member with this key at any depth (see [`has_key`]).
    pub fn in_json(&self, json: &[u8]) -> bool {
        let mut from = 0;
        while let Some(at) = self.finder.find(&json[from..]) {
            let start = from + at;
            let backslashes = json[..start]
                .iter()
                .rev()
                .take_while(|&&b| b == b'\\')
                .count();
            let after = &json[start + self.len..];
            let colon = after.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':');
            if backslashes % 2 == 0 && colon {
                return true;
            }
            from = start + 1;
        }
        false
    }
}

/// Calls `f` with the value of every object member named `key` (at any depth, document order)
/// whose value is a JSON string. `json` must be valid JSON text; a match counts only where
/// [`has_key`] would count it (an unescaped `"key"` followed by `:`), so text inside a prompt
/// never matches.
pub fn for_each_str_value<'j>(json: &'j str, key: &str, mut f: impl FnMut(Cow<'j, str>)) {
    let bytes = json.as_bytes();
    let mut needle = Vec::with_capacity(key.len() + 2);
    needle.push(b'"');
    needle.extend_from_slice(key.as_bytes());
    needle.push(b'"');
    let finder = memchr::memmem::Finder::new(&needle);
    let mut from = 0;
    while let Some(at) = finder.find(&bytes[from..]) {
        let start = from + at;
        from = start + 1;
        let backslashes = bytes[..start]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            continue;
        }
        let mut i = start + needle.len();
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if bytes.get(i) != Some(&b':') {
            continue;
        }
        i += 1;
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'"') {
            continue;
        }
        // The string runs to the next quote not escaped by a backslash.
        let open = i;
        let mut j = open + 1;
        let mut escaped = false;
        while let Some(&b) = bytes.get(j) {
            match b {
                b'\\' => j += 2,
                b'"' => break,
                _ => j += 1,
            }
            escaped |= b == b'\\';
        }
        let Some(lit) = json.get(open..=j) else {
            return;
        };
        if !escaped {
            f(Cow::Borrowed(&lit[1..lit.len() - 1]));
        } else if let Ok(s) = serde_json::from_str::<String>(lit) {
            f(Cow::Owned(s));
        }
        from = j + 1;
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

struct FieldsVisitor<'w> {
    want: &'w dyn Fn(&str) -> bool,
}

impl<'de> Visitor<'de> for FieldsVisitor<'_> {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(16);
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            if (self.want)(&k) {
                let v: &'de RawValue = map.next_value()?;
                out.push((k, v));
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom("not an object"))
    }
}

impl<'de> DeserializeSeed<'de> for FieldsVisitor<'_> {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_top_level_members_without_parsing_content() {
        let text = br#" {"model":"gpt-5","store":false,"messages":[{"role":"user","content":"hi \"there\""}],
                        "previous_response_id":"resp_1","n":null,"esc":"a\u00e9b","dup":1,"dup":2} "#;
        let b = Body::parse(text).unwrap();
        assert_eq!(b.str("model").as_deref(), Some("gpt-5"));
        assert_eq!(b.bool("store"), Some(false));
        assert!(b.has("messages"));
        assert!(!b.has("n"));
        assert!(!b.has("missing"));
        assert_eq!(b.str("esc").as_deref(), Some("aéb"));
        assert_eq!(b.value("dup"), Some(serde_json::json!(2)));
        assert_eq!(b.array("messages").unwrap().len(), 1);
        assert!(b.str("store").is_none());
        // Present but nested past serde_json's recursion limit: its presence is kept.
        let deep = format!(
            r#"{{"previous_response_id":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let b = Body::parse(deep.as_bytes()).unwrap();
        assert_eq!(
            b.value("previous_response_id"),
            Some(Value::String(UNREADABLE.into()))
        );
    }

    #[test]
    fn non_objects_and_invalid_json_are_none() {
        for bad in [&b""[..], b"[1]", b"\"s\"", b"{\"a\":", b"{} x", b"not json"] {
            assert!(
                Body::parse(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let (first, n) = Body::parse_first_of_array(br#"[{"method":"a"},{"method":"b"}]"#).unwrap();
        assert_eq!((first.str("method").as_deref(), n), (Some("a"), 2));
    }

    #[test]
    fn has_key_only_accepts_real_keys() {
        let j = br#"{"messages":[{"content":[{"type":"text","text":"x","cache_control" : {"type":"ephemeral"}}]}]}"#;
        assert!(has_key(j, "cache_control"));
        // In a prompt the quotes are escaped, and a value is not a key.
        let prompt =
            br#"{"messages":[{"content":"say \"cache_control\": now"}],"k":"cache_control"}"#;
        assert!(!has_key(prompt, "cache_control"));
        // An escaped backslash before a real key does not hide it.
        let tricky = br#"{"a":"x\\","cache_control":1}"#;
        assert!(has_key(tricky, "cache_control"));
        assert!(!has_key(b"{}", "cache_control"));
    }

    #[test]
    fn str_values_of_a_key() {
        let j = r#"{"a":{"fileUri" : "u1"},"b":[{"fileUri":"u\"2"},{"fileUri":3}],"t":"say \"fileUri\": \"x\"","fileUri":"é"}"#;
        let mut got = Vec::new();
        for_each_str_value(j, "fileUri", |v| got.push(v.into_owned()));
        assert_eq!(got, ["u1", "u\"2", "é"]);
        let mut none = Vec::new();
        for_each_str_value(r#"{"fileUri":"#, "fileUri", |v| none.push(v.into_owned()));
        for_each_str_value(r#"{"fileUri":"open"#, "fileUri", |v| {
            none.push(v.into_owned())
        });
        assert!(none.is_empty());
    }
}
