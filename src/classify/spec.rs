//! Validated rule specifications: what a ruleset file says, before compilation.
//!
//! `parse.rs` reads TOML into these types; `rule.rs` compiles them. The file format
//! (docs/classification.md has the full description):
//!
//! ```toml
//! name = "my-rules"                 # optional
//! extends = "default"               # optional: "default" or "strict"
//! [policy]                          # optional
//! creates_state_is_stateful = false
//! provider_state_is_stateful = false
//! client_state_makes_session_stateful = false
//! [[rule]]
//! id = "openai-responses-previous-response-id"
//! when = { kind = "model_call", api = "responses", provider = ["openai", "azure.ai.openai"] }
//! has = ["request.previous_response_id"]
//! not_has = []
//! consumes_state = true
//! creates_state = false
//! state_holder = "provider"         # "provider" | "client" | "from_event"
//! state = "conversation"            # conversation | runtime | memory | environment | content
//! tag = "stateful"                  # default "stateless"
//! signal = "request.previous_response_id"   # default: first `has` path, else first `when` field
//! explain = "continues a stored response held by the provider"
//! ```
//!
//! This file also holds the field vocabulary a rule may name, so that a typo in a path or in a
//! closed-set value is an error rather than a rule that silently never matches.

use crate::event::{StateKind, Tag};

/// Where a rule takes the event's `state_holder` from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HolderSource {
    Provider,
    Client,
    /// The event's own `holder` field (`state_op` events).
    FromEvent,
}

impl HolderSource {
    /// `"provider"`, `"client"` or `"from_event"`, as written in a ruleset.
    pub fn as_str(self) -> &'static str {
        match self {
            HolderSource::Provider => "provider",
            HolderSource::Client => "client",
            HolderSource::FromEvent => "from_event",
        }
    }
}

/// A built-in ruleset another file can extend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    Default,
    Strict,
}

/// Policy switches; `None` inherits from the base ruleset (or `false` without one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PolicySpec {
    pub creates_state_is_stateful: Option<bool>,
    pub provider_state_is_stateful: Option<bool>,
    pub client_state_makes_session_stateful: Option<bool>,
}

/// A value a `when` condition accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scalar {
    Str(Box<str>),
    Int(i64),
    Bool(bool),
}

/// `when` entry: the field at `path` equals one of `values`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WhenSpec {
    pub path: Box<str>,
    pub values: Vec<Scalar>,
}

/// One validated `[[rule]]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RuleSpec {
    pub id: String,
    pub when: Vec<WhenSpec>,
    pub has: Vec<Box<str>>,
    pub not_has: Vec<Box<str>>,
    pub consumes_state: bool,
    pub creates_state: bool,
    pub state_holder: Option<HolderSource>,
    pub state: Option<StateKind>,
    pub tag: Tag,
    pub explain: String,
    pub signal: String,
}

/// One validated ruleset file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RulesetSpec {
    pub name: Option<String>,
    pub extends: Option<Base>,
    pub policy: PolicySpec,
    pub rules: Vec<RuleSpec>,
}

/// The event fields a path may start with (`request` and `attrs` also take dotted sub-paths).
const FIELDS: &str = "id kind ts duration_ns session_id parent_id agent tenant provider model api \
    venue endpoint status runtime runtime_session_id tool tool_kind effect mcp_session_id op store \
    holder scope key bytes input_tokens output_tokens cached_tokens request attrs";

/// Fields whose values are a closed set: a typo there would silently never match.
const ENUMS: &[(&str, &str)] = &[
    (
        "kind",
        "session_start session_end model_call tool_call state_op",
    ),
    ("effect", "none read write"),
    ("op", "read write delete"),
    ("holder", "client provider"),
];

/// Whether `path` names an event field, or `request.`/`attrs.` followed by non-empty segments.
pub(crate) fn is_field_path(path: &str) -> bool {
    let head = path.split('.').next().unwrap_or("");
    let nested = head == "request" || head == "attrs";
    FIELDS.split_whitespace().any(|f| f == head)
        && path.split('.').all(|s| !s.is_empty())
        && (nested || !path.contains('.'))
}

/// The values a closed-set field can take (space-separated), if `path` is one.
pub(crate) fn closed_set(path: &str) -> Option<&'static str> {
    ENUMS.iter().find(|(f, _)| *f == path).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths() {
        for ok in [
            "kind",
            "api",
            "request",
            "request.store",
            "request.a.b",
            "attrs.x",
            "bytes",
        ] {
            assert!(is_field_path(ok), "{ok}");
        }
        for bad in [
            "",
            "reqest.store",
            "request.",
            "request..x",
            "api.x",
            "Kind",
            ".api",
        ] {
            assert!(!is_field_path(bad), "{bad}");
        }
    }

    #[test]
    fn closed_sets() {
        assert_eq!(closed_set("op"), Some("read write delete"));
        assert!(closed_set("kind")
            .unwrap()
            .split(' ')
            .any(|k| k == "state_op"));
        assert_eq!(closed_set("api"), None);
        assert_eq!(HolderSource::FromEvent.as_str(), "from_event");
    }
}
