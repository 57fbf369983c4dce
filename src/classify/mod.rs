//! Classification: tag every event stateless or stateful, with the evidence for the tag.
//!
//! The engine ([`Ruleset`], in `rules.rs`) reads an event only through the [`Fields`] trait
//! (`fields.rs`). Rules are data: `parse.rs` reads a TOML file into the `spec.rs` types,
//! `rule.rs` compiles each rule, and `index.rs` files them by kind, api and provider so that an
//! event is checked only against the rules that could apply. The built-in catalogue
//! (`catalogue/default.toml`, `catalogue/strict.toml`) encodes
//! `shared/reference/provider-signals.md`; docs/classification.md explains the model, the file
//! format and every built-in rule.
//!
//! This file holds the result types: [`Tag`], [`Holder`], [`Evidence`] and [`Classification`]
//! with its canonical (RFC 8785) JSON encoding.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

mod fields;
mod index;
mod parse;
pub mod request;
mod rule;
mod rules;
mod spec;
pub mod venue;

#[cfg(test)]
mod catalogue_tests;

pub use fields::{FieldRef, Fields};
pub use rule::RuleInfo;
pub use rules::{catalogue_digest, Ruleset, NO_STATE_SIGNAL};
pub use spec::HolderSource;

/// The verdict on one event (or, as `session_tag`, on its session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    Stateless,
    Stateful,
}

impl Tag {
    /// `"stateless"` or `"stateful"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Stateless => "stateless",
            Tag::Stateful => "stateful",
        }
    }

    /// Parses `"stateless"` / `"stateful"`; anything else is a `Validation` error on `tag`.
    pub fn parse(s: &str) -> Result<Tag> {
        match s {
            "stateless" => Ok(Tag::Stateless),
            "stateful" => Ok(Tag::Stateful),
            other => Err(Error::validation(
                "tag",
                format!("{other:?} is not one of stateless, stateful"),
            )),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose infrastructure holds the state an event consumes or creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    Provider,
    Client,
}

impl Holder {
    /// `"provider"` or `"client"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Holder::Provider => "provider",
            Holder::Client => "client",
        }
    }

    /// Parses `"provider"` / `"client"`; anything else is a `Validation` error on `holder`.
    pub fn parse(s: &str) -> Result<Holder> {
        match s {
            "provider" => Ok(Holder::Provider),
            "client" => Ok(Holder::Client),
            other => Err(Error::validation(
                "holder",
                format!("{other:?} is not one of provider, client"),
            )),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an event got its classification: one per matching rule.
///
/// Evidence is static per rule: the engine builds one `Arc<Evidence>` per rule when a ruleset
/// is compiled and hands out clones, so classifying allocates no strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The rule id, e.g. `openai-responses-previous-response-id`.
    pub rule: Arc<str>,
    /// The rule's own tag (a rule may record a fact without making the event stateful).
    pub tag: Tag,
    /// The field or header the rule looked at, e.g. `request.previous_response_id`.
    pub signal: Arc<str>,
    /// One sentence a reader of an audit can follow.
    pub explain: Arc<str>,
}

/// The outcome of classifying one event with one ruleset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    /// The event uses context held outside the request (prior response, thread, session, memory).
    pub consumes_state: bool,
    /// The event leaves state that later interactions can use.
    pub creates_state: bool,
    /// Whose infrastructure holds that state, when a rule says so.
    pub state_holder: Option<Holder>,
    /// The call-level verdict.
    pub tag: Tag,
    /// One entry per matching rule, in catalogue order; never empty (see `no-state-signal`).
    pub evidence: Vec<Arc<Evidence>>,
    /// Whether this event makes its session stateful (the input of the derived `session_tag`).
    pub session_stateful: bool,
    /// The name of the ruleset that classified the event.
    pub ruleset: Arc<str>,
    /// The first 16 hex digits of the SHA-256 of that ruleset's evidence catalogue (see
    /// [`Ruleset::catalogue`]); a ledger stores each catalogue once, keyed by this digest.
    pub ruleset_digest: Arc<str>,
}

impl Classification {
    /// Appends the RFC 8785 (JCS) JSON object of this classification to `out`: keys sorted,
    /// no whitespace, `state_holder` as `null` when `None`, `evidence` as a list of
    /// `{"rule","signal","tag"}` objects in order. The explanations are not repeated in every
    /// record: they live in the ruleset's catalogue, which `ruleset_digest` identifies.
    pub fn write_canonical_json(&self, out: &mut String) {
        out.push_str("{\"consumes_state\":");
        out.push_str(bool_str(self.consumes_state));
        out.push_str(",\"creates_state\":");
        out.push_str(bool_str(self.creates_state));
        out.push_str(",\"evidence\":[");
        for (i, ev) in self.evidence.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"rule\":");
            write_json_str(out, &ev.rule);
            out.push_str(",\"signal\":");
            write_json_str(out, &ev.signal);
            out.push_str(",\"tag\":\"");
            out.push_str(ev.tag.as_str());
            out.push_str("\"}");
        }
        out.push_str("],\"ruleset\":");
        write_json_str(out, &self.ruleset);
        out.push_str(",\"ruleset_digest\":");
        write_json_str(out, &self.ruleset_digest);
        out.push_str(",\"session_stateful\":");
        out.push_str(bool_str(self.session_stateful));
        out.push_str(",\"state_holder\":");
        match self.state_holder {
            Some(h) => {
                out.push('"');
                out.push_str(h.as_str());
                out.push('"');
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"tag\":\"");
        out.push_str(self.tag.as_str());
        out.push_str("\"}");
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Writes `s` as an RFC 8785 JSON string: `"` and `\` escaped, control characters below 0x20
/// as `\b \t \n \f \r` or `\u00xx` (lowercase hex), everything else verbatim. Kept private and
/// local on purpose; it must agree byte for byte with `ledger::canonical::write_str`.
fn write_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_str(s: &str) -> String {
        let mut out = String::new();
        write_json_str(&mut out, s);
        out
    }

    #[test]
    fn tag_and_holder_round_trip() {
        for t in [Tag::Stateless, Tag::Stateful] {
            assert_eq!(Tag::parse(t.as_str()).unwrap(), t);
        }
        for h in [Holder::Provider, Holder::Client] {
            assert_eq!(Holder::parse(h.as_str()).unwrap(), h);
        }
        assert!(
            matches!(Tag::parse("Stateful"), Err(Error::Validation { field, .. }) if field == "tag")
        );
        assert!(
            matches!(Holder::parse("server"), Err(Error::Validation { field, .. }) if field == "holder")
        );
        assert_eq!(Tag::Stateful.to_string(), "stateful");
    }

    #[test]
    fn string_escaping_follows_rfc8785() {
        assert_eq!(json_str("plain"), r#""plain""#);
        assert_eq!(json_str("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json_str("\u{8}\t\n\u{c}\r"), r#""\b\t\n\f\r""#);
        assert_eq!(json_str("\u{0}\u{1f}\u{1b}"), r#""\u0000\u001f\u001b""#);
        // DEL, non-ASCII and U+2028 are written verbatim.
        assert_eq!(json_str("\u{7f}é€\u{2028}😀"), "\"\u{7f}é€\u{2028}😀\"");
        // Agrees with serde_json on a string with every control character.
        let all: String = (0u8..0x20)
            .map(char::from)
            .chain("x\"\\y".chars())
            .collect();
        let ours = json_str(&all);
        assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), all);
        assert!(ours.starts_with(r#""\u0000\u0001"#) && ours.contains(r#"\u000b\f\r\u000e"#));
    }

    fn sample() -> Classification {
        Classification {
            consumes_state: true,
            creates_state: false,
            state_holder: Some(Holder::Provider),
            tag: Tag::Stateful,
            evidence: vec![Arc::new(Evidence {
                rule: "r-1".into(),
                tag: Tag::Stateful,
                signal: "request.previous_response_id".into(),
                explain: "uses \"a\" prior\nresponse".into(),
            })],
            session_stateful: true,
            ruleset: "default".into(),
            ruleset_digest: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn canonical_json_has_sorted_keys_and_exact_bytes() {
        let mut out = String::new();
        sample().write_canonical_json(&mut out);
        assert_eq!(
            out,
            concat!(
                r#"{"consumes_state":true,"creates_state":false,"evidence":[{"#,
                r#""rule":"r-1","signal":"request.previous_response_id","tag":"stateful"}],"#,
                r#""ruleset":"default","ruleset_digest":"0123456789abcdef","#,
                r#""session_stateful":true,"state_holder":"provider","tag":"stateful"}"#
            )
        );
    }

    #[test]
    fn canonical_json_writes_null_holder_and_several_evidence() {
        let mut c = sample();
        c.state_holder = None;
        c.evidence.push(c.evidence[0].clone());
        let mut out = String::from("prefix:");
        c.write_canonical_json(&mut out);
        let text = out.strip_prefix("prefix:").unwrap();
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["state_holder"], serde_json::Value::Null);
        assert_eq!(v["evidence"].as_array().unwrap().len(), 2);
        assert_eq!(text.matches(r#"{"rule":"#).count(), 2);
        assert!(!text.contains("explain"));
        assert!(text.ends_with(r#""state_holder":null,"tag":"stateful"}"#));
    }
}
