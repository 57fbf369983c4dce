//! The verdict an event carries: [`Tag`], [`Holder`], [`StateKind`]s, [`Evidence`] and
//! [`Classification`] with its canonical (RFC 8785) JSON encoding. The rules engine in `crate::classify`
//! produces them; the ledger readers parse them back.

use std::fmt;
use std::sync::Arc;

use crate::canonical;
use crate::error::{Error, Result};

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
    /// Held by the server that answered, whose operator statemeter does not know: an
    /// unrecognised host that no user mapping names (the event's `provider` is `"unknown"`).
    Unknown,
}

impl Holder {
    /// `"provider"`, `"client"` or `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Holder::Provider => "provider",
            Holder::Client => "client",
            Holder::Unknown => "unknown",
        }
    }

    /// Parses `"provider"` / `"client"` / `"unknown"`; anything else is a `Validation` error on
    /// `holder`. (A `state_op`'s own `holder` field accepts only `provider` and `client`.)
    pub fn parse(s: &str) -> Result<Holder> {
        match s {
            "provider" => Ok(Holder::Provider),
            "client" => Ok(Holder::Client),
            "unknown" => Ok(Holder::Unknown),
            other => Err(Error::validation(
                "holder",
                format!("{other:?} is not one of provider, client, unknown"),
            )),
        }
    }

    /// Whether the state lives on a server rather than with the client.
    pub fn is_server_side(self) -> bool {
        self != Holder::Client
    }
}

/// Which state an event consumes, creates or acts on (design: "What state, held by whom").
/// Prompt caching is none of these. Declared in alphabetical order, so sorting kinds sorts
/// their names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKind {
    /// Files, vector stores, knowledge bases, explicit context caches.
    Content,
    /// Response chains, conversations, threads, Gemini interactions, realtime sessions.
    Conversation,
    /// Containers, sandboxes, code-interpreter sessions.
    Environment,
    /// Memory stores, memory tools, long-term agent memory.
    Memory,
    /// Agent runtime and managed-agent sessions.
    Runtime,
}

impl StateKind {
    /// Every kind, in name order.
    pub const ALL: [StateKind; 5] = [
        StateKind::Content,
        StateKind::Conversation,
        StateKind::Environment,
        StateKind::Memory,
        StateKind::Runtime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Content => "content",
            StateKind::Conversation => "conversation",
            StateKind::Environment => "environment",
            StateKind::Memory => "memory",
            StateKind::Runtime => "runtime",
        }
    }

    /// Parses a kind name; anything else is a `Validation` error on `state`.
    pub fn parse(s: &str) -> Result<StateKind> {
        StateKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::validation(
                    "state",
                    format!(
                        "{s:?} is not one of content, conversation, environment, memory, runtime"
                    ),
                )
            })
    }

    /// Whether using or acting on this kind of provider-held state continues an earlier
    /// interaction (everything but `content`): what makes a call stateful under the default
    /// ruleset.
    pub fn continues_interaction(self) -> bool {
        self != StateKind::Content
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`StateKind`]s (one bit each), iterated in name order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StateKinds(u8);

impl StateKinds {
    pub const EMPTY: StateKinds = StateKinds(0);

    pub fn insert(&mut self, k: StateKind) {
        self.0 |= k.bit();
    }

    pub fn contains(self, k: StateKind) -> bool {
        self.0 & k.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds, sorted by name.
    pub fn iter(self) -> impl Iterator<Item = StateKind> {
        StateKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }

    /// The set as its bits (bit `k as u8` for each kind), for compact columns.
    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn from_bits(bits: u8) -> StateKinds {
        StateKinds(bits & 0b1_1111)
    }
}

impl FromIterator<StateKind> for StateKinds {
    fn from_iter<I: IntoIterator<Item = StateKind>>(iter: I) -> Self {
        let mut s = StateKinds::EMPTY;
        for k in iter {
            s.insert(k);
        }
        s
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
    /// The kind of state the rule concerns, if any (evidence that only notes a fact, such as
    /// prompt caching or retention, has none).
    pub state: Option<StateKind>,
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
    /// The kinds of state the event consumes, creates or acts on (from the matching rules).
    pub state_kinds: StateKinds,
    /// The call-level verdict.
    pub tag: Tag,
    /// One entry per matching rule, in catalogue order; never empty (see `no-state-signal`).
    /// Shared: a ruleset hands out one list per distinct set of matching rules.
    pub evidence: Arc<[Arc<Evidence>]>,
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
    /// no whitespace, `state_holder` as `null` when `None`, `state_kinds` as a sorted list of
    /// kind names, `evidence` as a list of `{"rule","signal","tag"}` objects in order. The
    /// explanations and each rule's state kind are not repeated in every record: they live in
    /// the ruleset's catalogue, which `ruleset_digest` identifies.
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
            canonical::write_str(out, &ev.rule);
            out.push_str(",\"signal\":");
            canonical::write_str(out, &ev.signal);
            out.push_str(",\"tag\":\"");
            out.push_str(ev.tag.as_str());
            out.push_str("\"}");
        }
        out.push_str("],\"ruleset\":");
        canonical::write_str(out, &self.ruleset);
        out.push_str(",\"ruleset_digest\":");
        canonical::write_str(out, &self.ruleset_digest);
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
        out.push_str(",\"state_kinds\":[");
        for (i, k) in self.state_kinds.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(k.as_str());
            out.push('"');
        }
        out.push_str("],\"tag\":\"");
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(Holder::parse("unknown").unwrap(), Holder::Unknown);
        assert!(!Holder::Client.is_server_side() && Holder::Unknown.is_server_side());
    }

    #[test]
    fn state_kinds_parse_sort_and_reject_unknown_names() {
        for k in StateKind::ALL {
            assert_eq!(StateKind::parse(k.as_str()).unwrap(), k);
        }
        let names: Vec<&str> = StateKind::ALL.iter().map(|k| k.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "declaration order is name order");
        assert!(
            matches!(StateKind::parse("session"), Err(Error::Validation { field, .. }) if field == "state")
        );
        let set: StateKinds = [StateKind::Runtime, StateKind::Content, StateKind::Runtime]
            .into_iter()
            .collect();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [StateKind::Content, StateKind::Runtime]
        );
        assert_eq!(StateKinds::from_bits(set.bits()), set);
        assert!(StateKind::Conversation.continues_interaction());
        assert!(!StateKind::Content.continues_interaction());
    }

    fn sample() -> Classification {
        Classification {
            consumes_state: true,
            creates_state: false,
            state_holder: Some(Holder::Provider),
            tag: Tag::Stateful,
            evidence: Arc::from([Arc::new(Evidence {
                rule: "r-1".into(),
                tag: Tag::Stateful,
                signal: "request.previous_response_id".into(),
                explain: "uses \"a\" prior\nresponse".into(),
                state: Some(StateKind::Conversation),
            })]),
            state_kinds: [StateKind::Conversation, StateKind::Content]
                .into_iter()
                .collect(),
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
                r#""session_stateful":true,"state_holder":"provider","#,
                r#""state_kinds":["content","conversation"],"tag":"stateful"}"#
            )
        );
    }

    #[test]
    fn canonical_json_writes_null_holder_and_several_evidence() {
        let mut c = sample();
        c.state_holder = None;
        c.state_kinds = StateKinds::EMPTY;
        c.evidence = Arc::from([c.evidence[0].clone(), c.evidence[0].clone()]);
        let mut out = String::from("prefix:");
        c.write_canonical_json(&mut out);
        let text = out.strip_prefix("prefix:").unwrap();
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["state_holder"], serde_json::Value::Null);
        assert_eq!(v["evidence"].as_array().unwrap().len(), 2);
        assert_eq!(text.matches(r#"{"rule":"#).count(), 2);
        assert!(!text.contains("explain"));
        assert!(text.ends_with(r#""state_holder":null,"state_kinds":[],"tag":"stateful"}"#));
    }
}
