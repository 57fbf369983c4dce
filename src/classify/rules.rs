//! The rules engine: a compiled, immutable [`Ruleset`] and its `classify`.
//!
//! Semantics (docs/classification.md has the long form):
//! - every matching rule adds its evidence, in catalogue order; with no match the event gets the
//!   single fallback evidence `no-state-signal`;
//! - `consumes_state` / `creates_state` are the OR over matching rules;
//! - `state_holder` comes from the first matching rule that sets one (`from_event` sets it only
//!   when the event's `holder` is `provider` or `client`);
//! - `state_kinds` is the set of `state` kinds of the matching rules;
//! - a rule's `state_holder = "provider"` reads as `unknown` when the event's `provider` is
//!   `"unknown"` (an unrecognised host no mapping names: the server holds the state, but whose
//!   server it is is not known);
//! - the tag is stateful if any matching rule says `tag = "stateful"`; or if the policy
//!   `provider_state_is_stateful` is on and a matching rule names a kind of state held
//!   server-side (provider or unknown), whether consumed, created or acted on; or if the
//!   policy `creates_state_is_stateful` is on and the event creates server-held state;
//! - `session_stateful` = stateful with server-held state (any holder under the policy
//!   `client_state_makes_session_stateful`), or the event carries a `runtime_session_id`.

use std::fmt;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use smallvec::SmallVec;

use super::index::Index;
use super::inputs::{self, Input};
use super::parse::parse;
use super::rule::{Cond, Rule, RuleInfo};
use super::spec::Base;
use crate::canonical::catalogue_digest;
use crate::error::{read_text, Error, Result};
use crate::event::Fields;
use crate::event::{Classification, Evidence, Holder, StateKinds, Tag};
use crate::event::{Classifier, Event};

/// The built-in catalogue (encodes the providers' API documentation; docs/classification.md).
pub(crate) const DEFAULT_TOML: &str = include_str!("catalogue/default.toml");
/// The strict catalogue: `extends = "default"` plus policy.
pub(crate) const STRICT_TOML: &str = include_str!("catalogue/strict.toml");

/// The names of the built-in rulesets, which no other ruleset may take.
pub const RESERVED_NAMES: [&str; 2] = ["default", "strict"];

/// The fallback evidence's rule id, used when no rule matches.
pub const NO_STATE_SIGNAL: &str = "no-state-signal";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Policy {
    creates_state_is_stateful: bool,
    provider_state_is_stateful: bool,
    client_state_makes_session_stateful: bool,
}

/// A compiled ruleset: immutable, `Send + Sync`, cheap to evaluate and to share in an `Arc`.
pub struct Ruleset {
    name: Arc<str>,
    policy: Policy,
    rules: Vec<Rule>,
    /// Per rule, the conditions the index does not already guarantee.
    checks: Vec<Box<[Cond]>>,
    index: Index,
    /// Every field path a verdict reads ([`Ruleset::inputs`]).
    inputs: Box<[Input]>,
    /// The evidence lists classifications carry (shared, see [`EvidenceLists`]).
    lists: EvidenceLists,
    /// Canonical JSON of the evidence catalogue (see [`Ruleset::catalogue`]).
    catalogue: Arc<str>,
    /// First 16 hex digits of SHA-256(catalogue).
    digest: Arc<str>,
}

/// The evidence lists a ruleset's classifications carry, one per distinct set of matching
/// rules and shared by every classification with that set: classifying an event then takes
/// a reference to a list instead of allocating one (and dropping the classification frees
/// nothing). The lists of one rule (and the fallback's) are made with the ruleset; lists of
/// several rules as they occur, the first [`EvidenceLists::SEVERAL_KEPT`] kept (others are
/// made per event, as they were before).
struct EvidenceLists {
    single: Box<[EvidenceList]>,
    fallback: EvidenceList,
    /// By the indices of the matching rules, in evaluation order.
    several: Mutex<Vec<(Box<[u32]>, EvidenceList)>>,
}

/// The evidence a classification carries (see [`Classification::evidence`]).
type EvidenceList = Arc<[Arc<Evidence>]>;

impl EvidenceLists {
    const SEVERAL_KEPT: usize = 64;

    fn new(rules: &[Rule], fallback: &Arc<Evidence>) -> Self {
        EvidenceLists {
            single: rules
                .iter()
                .map(|r| Arc::from([r.evidence.clone()]))
                .collect(),
            fallback: Arc::from([fallback.clone()]),
            several: Mutex::new(Vec::new()),
        }
    }

    /// The list of the evidence of `rules[i]` for each `i` of `matched` (the fallback's when
    /// `matched` is empty).
    fn of(&self, matched: &[u32], rules: &[Rule]) -> EvidenceList {
        match matched {
            [] => self.fallback.clone(),
            [one] => self.single[*one as usize].clone(),
            _ => {
                // Never waits for the lock: another thread holds it only to look a list up,
                // and a thread of the parent holding it at a `fork()` would hold it in the
                // child for ever. Without it the list is made for this event alone.
                let mut several = self.several.try_lock();
                if let Some(several) = &several {
                    if let Some((_, list)) = several.iter().find(|(key, _)| **key == *matched) {
                        return list.clone();
                    }
                }
                let list: EvidenceList = matched
                    .iter()
                    .map(|&i| rules[i as usize].evidence.clone())
                    .collect();
                if let Some(several) = several.as_mut().filter(|s| s.len() < Self::SEVERAL_KEPT) {
                    several.push((matched.into(), list.clone()));
                }
                list
            }
        }
    }
}

impl fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ruleset")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Ruleset {
    /// The built-in default ruleset (`catalogue/default.toml`), parsed once per process.
    pub fn builtin_default() -> Arc<Ruleset> {
        static DEFAULT: OnceLock<Arc<Ruleset>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Arc::new(
                    Ruleset::compile(DEFAULT_TOML, true).expect("catalogue/default.toml is valid"),
                )
            })
            .clone()
    }

    /// The built-in strict ruleset (`catalogue/strict.toml`), parsed once per process.
    pub fn builtin_strict() -> Arc<Ruleset> {
        static STRICT: OnceLock<Arc<Ruleset>> = OnceLock::new();
        STRICT
            .get_or_init(|| {
                Arc::new(
                    Ruleset::compile(STRICT_TOML, true).expect("catalogue/strict.toml is valid"),
                )
            })
            .clone()
    }

    /// Reads and compiles a ruleset file ([`Ruleset::from_toml`]); a file that cannot be read
    /// is an `Error::Ruleset` naming it.
    pub fn load(path: &std::path::Path) -> Result<Ruleset> {
        Ruleset::from_toml(&read_text(path, Error::Ruleset)?)
    }

    /// Parses and compiles a ruleset file. With `extends`, the file's rules are laid over the
    /// built-in base: a rule whose `id` matches a base rule replaces it in place (keeping the
    /// base's order), other rules are appended in file order; `[policy]` keys override the
    /// base's, absent keys inherit. The name defaults to `"custom"`; the built-in names
    /// ([`RESERVED_NAMES`]) are an `Error::Ruleset`: a ruleset calling itself `default` would
    /// be told from the built-in by its digest alone.
    pub fn from_toml(text: &str) -> Result<Ruleset> {
        Ruleset::compile(text, false)
    }

    /// [`Ruleset::from_toml`]; `builtin` allows the reserved names.
    fn compile(text: &str, builtin: bool) -> Result<Ruleset> {
        let spec = parse(text)?;
        if let Some(name) = spec
            .name
            .as_deref()
            .filter(|n| !builtin && RESERVED_NAMES.contains(n))
        {
            return Err(Error::Ruleset(format!(
                "ruleset: name {name:?} is reserved for the built-in ruleset \
                 (Ruleset.{name}()); give yours another name (a ruleset may still \
                 `extends = {name:?}`)"
            )));
        }
        let (mut rules, mut policy) = match spec.extends {
            None => (Vec::new(), Policy::default()),
            Some(base) => {
                let base = match base {
                    Base::Default => Ruleset::builtin_default(),
                    Base::Strict => Ruleset::builtin_strict(),
                };
                (base.rules.clone(), base.policy)
            }
        };
        if let Some(v) = spec.policy.creates_state_is_stateful {
            policy.creates_state_is_stateful = v;
        }
        if let Some(v) = spec.policy.provider_state_is_stateful {
            policy.provider_state_is_stateful = v;
        }
        if let Some(v) = spec.policy.client_state_makes_session_stateful {
            policy.client_state_makes_session_stateful = v;
        }
        for rule in spec.rules.into_iter().map(Rule::compile) {
            match rules.iter().position(|r| r.info.id == rule.info.id) {
                Some(at) => rules[at] = rule,
                None => rules.push(rule),
            }
        }
        let (index, checks) = Index::build(&rules);
        let inputs = inputs::of(&rules);
        let fallback = Arc::new(Evidence {
            rule: NO_STATE_SIGNAL.into(),
            tag: Tag::Stateless,
            signal: "".into(),
            explain: "no rule matched: the request carries no server-held state".into(),
            state: None,
        });
        let name: Arc<str> = spec.name.as_deref().unwrap_or("custom").into();
        let catalogue = catalogue_json(&name, rules.iter().map(|r| &*r.evidence), &fallback);
        let digest = catalogue_digest(&catalogue).into();
        let lists = EvidenceLists::new(&rules, &fallback);
        Ok(Ruleset {
            name,
            policy,
            rules,
            checks,
            index,
            inputs,
            lists,
            catalogue: catalogue.into(),
            digest,
        })
    }

    /// The ruleset's name (recorded in every classification it makes).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The evidence catalogue: canonical JSON `{"name":N,"rules":[{"explain","rule","signal",
    /// "state"?,"tag"},...]}` listing every rule's evidence (`state` only for a rule that names
    /// a kind of state) (and the `no-state-signal` fallback). A
    /// ledger stores it once per ruleset so records need not repeat the explanations.
    pub fn catalogue(&self) -> &str {
        &self.catalogue
    }

    /// The first 16 hex digits of SHA-256([`Ruleset::catalogue`]).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The rules in evaluation (catalogue) order.
    pub fn rules(&self) -> impl Iterator<Item = &RuleInfo> {
        self.rules.iter().map(|r| &r.info)
    }

    /// Every field path the engine reads to classify an event under this ruleset, sorted, each
    /// once: events that answer all of them alike get the same classification.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// The compiled rules (for the crate's own checks of what the engine reads).
    #[cfg(test)]
    pub(crate) fn compiled(&self) -> &[Rule] {
        &self.rules
    }

    /// Policy: creating provider-held state makes an event stateful (strict).
    pub fn creates_state_is_stateful(&self) -> bool {
        self.policy.creates_state_is_stateful
    }

    /// Policy: any server-held state of any kind, consumed, created or acted on, makes an
    /// event stateful (strict).
    pub fn provider_state_is_stateful(&self) -> bool {
        self.policy.provider_state_is_stateful
    }

    /// Policy: stateful events with client-held state make their session stateful (strict).
    pub fn client_state_makes_session_stateful(&self) -> bool {
        self.policy.client_state_makes_session_stateful
    }

    /// Classifies one event. Allocates nothing, but the evidence list of a new combination of
    /// several matching rules (see [`EvidenceLists`]).
    pub fn classify(&self, ev: &dyn Fields) -> Classification {
        let mut matched: SmallVec<[u32; 8]> = SmallVec::new();
        let v = self.judge(ev, |i| matched.push(i));
        let evidence = self.lists.of(&matched, &self.rules);
        Classification {
            consumes_state: v.consumes_state,
            creates_state: v.creates_state,
            state_holder: v.state_holder,
            state_kinds: v.state_kinds,
            tag: v.tag,
            evidence,
            session_stateful: v.session_stateful,
            ruleset: self.name.clone(),
            ruleset_digest: self.digest.clone(),
        }
    }

    /// The verdict of [`Ruleset::classify`] without the evidence: allocates nothing and
    /// touches no shared counter, for classifying many stored events again
    /// (`crate::stored::reading`).
    pub fn verdict(&self, ev: &dyn Fields) -> Verdict {
        self.judge(ev, |_| {})
    }

    /// Evaluates the candidate rules, calling `matched` for each matching rule in order.
    #[inline]
    fn judge(&self, ev: &dyn Fields, mut matched: impl FnMut(u32)) -> Verdict {
        let (mut consumes, mut creates, mut stateful) = (false, false, false);
        let mut holder = None;
        let mut kinds = StateKinds::EMPTY;
        let mut server_state = false;
        for &i in self.index.candidates(ev) {
            let rule = &self.rules[i as usize];
            if !self.checks[i as usize].iter().all(|c| c.holds(ev)) {
                continue;
            }
            matched(i);
            consumes |= rule.info.consumes_state;
            creates |= rule.info.creates_state;
            stateful |= rule.info.tag == Tag::Stateful;
            let rule_holder = rule.holder(ev);
            if let Some(kind) = rule.info.state {
                kinds.insert(kind);
                server_state |= rule_holder.is_some_and(Holder::is_server_side);
            }
            if holder.is_none() {
                holder = rule_holder;
            }
        }
        let p = self.policy;
        let server_held = holder.is_some_and(Holder::is_server_side);
        stateful |= p.creates_state_is_stateful && creates && server_held;
        stateful |= p.provider_state_is_stateful && server_state;
        let session_stateful = (stateful && (server_held || p.client_state_makes_session_stateful))
            || ev.has("runtime_session_id");
        Verdict {
            consumes_state: consumes,
            creates_state: creates,
            state_holder: holder,
            state_kinds: kinds,
            tag: if stateful {
                Tag::Stateful
            } else {
                Tag::Stateless
            },
            session_stateful,
        }
    }
}

/// A [`Classification`] without its evidence and ruleset: what reports judge by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub consumes_state: bool,
    pub creates_state: bool,
    pub state_holder: Option<Holder>,
    pub state_kinds: StateKinds,
    pub tag: Tag,
    pub session_stateful: bool,
}

impl Classifier for Ruleset {
    fn classify_event(&self, event: &Event) -> Classification {
        self.classify(event)
    }
}

/// The canonical JSON of a ruleset's evidence catalogue.
fn catalogue_json<'a>(
    name: &str,
    rules: impl Iterator<Item = &'a Evidence>,
    fallback: &'a Evidence,
) -> String {
    use crate::canonical::write_str;
    let mut out = String::from("{\"name\":");
    write_str(&mut out, name);
    out.push_str(",\"rules\":[");
    for (i, e) in rules.chain(std::iter::once(fallback)).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"explain\":");
        write_str(&mut out, &e.explain);
        out.push_str(",\"rule\":");
        write_str(&mut out, &e.rule);
        out.push_str(",\"signal\":");
        write_str(&mut out, &e.signal);
        if let Some(kind) = e.state {
            out.push_str(",\"state\":\"");
            out.push_str(kind.as_str());
            out.push('"');
        }
        out.push_str(",\"tag\":\"");
        out.push_str(e.tag.as_str());
        out.push_str("\"}");
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn catalogue_is_canonical_complete_and_digested() {
        let rs = Ruleset::builtin_default();
        let v: serde_json::Value = serde_json::from_str(rs.catalogue()).unwrap();
        assert_eq!(
            crate::canonical::to_canonical(&v).unwrap(),
            rs.catalogue(),
            "the catalogue is canonical JSON"
        );
        let ids: Vec<&str> = v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rule"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), rs.rules().count() + 1);
        assert!(rs.rules().all(|r| ids.contains(&&*r.id)));
        assert_eq!(ids.last(), Some(&NO_STATE_SIGNAL));
        assert_eq!(rs.digest(), catalogue_digest(rs.catalogue()));
        assert_eq!(rs.digest().len(), 16);
        assert_ne!(rs.digest(), Ruleset::builtin_strict().digest());
    }
    use super::*;
    use crate::event::StateKind;
    use serde_json::{json, Map, Value};

    fn ev(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn ids(c: &Classification) -> Vec<&str> {
        c.evidence.iter().map(|e| &*e.rule).collect()
    }

    const RULES: &str = r#"
name = "t"
[[rule]]
id = "a-consume"
when = { kind = "model_call", api = "x" }
has = ["request.prev"]
consumes_state = true
state_holder = "provider"
tag = "stateful"
explain = "uses prev"
[[rule]]
id = "b-create"
when = { kind = "model_call", "request.store" = [true, "yes", 1] }
creates_state = true
state_holder = "client"
explain = "stores"
[[rule]]
id = "c-op"
when = { kind = "state_op" }
not_has = ["key"]
state_holder = "from_event"
tag = "stateful"
explain = "op"
"#;

    #[test]
    fn combines_matching_rules() {
        let rs = Ruleset::from_toml(RULES).unwrap();
        assert_eq!(rs.name(), "t");
        let c = rs.classify(&ev(json!({"kind": "model_call", "api": "x",
            "request": {"prev": "r1", "store": true}})));
        assert_eq!(ids(&c), ["a-consume", "b-create"]);
        assert!(c.consumes_state && c.creates_state);
        assert_eq!(
            c.state_holder,
            Some(Holder::Provider),
            "first rule that sets it wins"
        );
        assert_eq!(c.tag, Tag::Stateful);
        assert!(c.session_stateful);
        assert_eq!(&*c.ruleset, "t");
        assert_eq!(c.evidence[1].tag, Tag::Stateless);
        assert_eq!(&*c.evidence[0].signal, "request.prev");
    }

    #[test]
    fn when_lists_match_any_value_of_the_same_type() {
        let rs = Ruleset::from_toml(RULES).unwrap();
        for store in [json!(true), json!("yes"), json!(1)] {
            let c = rs.classify(&ev(
                json!({"kind": "model_call", "request": {"store": store}}),
            ));
            assert_eq!(ids(&c), ["b-create"], "{store}");
            assert_eq!(
                (c.tag, c.state_holder),
                (Tag::Stateless, Some(Holder::Client))
            );
        }
        for store in [
            json!(false),
            json!("true"),
            json!(2),
            json!(1.0),
            json!([true]),
        ] {
            let c = rs.classify(&ev(
                json!({"kind": "model_call", "request": {"store": store}}),
            ));
            assert_eq!(ids(&c), [NO_STATE_SIGNAL], "{store}");
        }
    }

    #[test]
    fn no_match_gives_the_fallback_evidence() {
        let rs = Ruleset::from_toml(RULES).unwrap();
        let c = rs.classify(&ev(json!({"kind": "tool_call"})));
        assert_eq!(c.evidence.len(), 1);
        let e = &c.evidence[0];
        assert_eq!(
            (&*e.rule, e.tag, &*e.signal),
            (NO_STATE_SIGNAL, Tag::Stateless, "")
        );
        assert_eq!(
            &*e.explain,
            "no rule matched: the request carries no server-held state"
        );
        assert!(!c.consumes_state && !c.creates_state && !c.session_stateful);
        assert_eq!((c.tag, c.state_holder), (Tag::Stateless, None));
    }

    #[test]
    fn holder_from_event_and_client_state_sessions() {
        let rs = Ruleset::from_toml(RULES).unwrap();
        let c = rs.classify(&ev(json!({"kind": "state_op", "holder": "client"})));
        assert_eq!(
            (c.tag, c.state_holder, c.session_stateful),
            (Tag::Stateful, Some(Holder::Client), false)
        );
        let c = rs.classify(&ev(json!({"kind": "state_op", "holder": "provider"})));
        assert_eq!(
            (c.state_holder, c.session_stateful),
            (Some(Holder::Provider), true)
        );
        let c = rs.classify(&ev(json!({"kind": "state_op", "holder": "elsewhere"})));
        assert_eq!(
            (c.tag, c.state_holder, c.session_stateful),
            (Tag::Stateful, None, false)
        );
        let c = rs.classify(&ev(json!({"kind": "state_op", "key": "k"})));
        assert_eq!(ids(&c), [NO_STATE_SIGNAL]);
    }

    #[test]
    fn policies_change_tag_and_session() {
        let policy = "[policy]
creates_state_is_stateful = true
client_state_makes_session_stateful = true
";
        let strictish = format!("{policy}{}", RULES.replace("name = \"t\"", ""));
        let rs = Ruleset::from_toml(&strictish).unwrap();
        assert_eq!(rs.name(), "custom");
        assert!(rs.creates_state_is_stateful() && rs.client_state_makes_session_stateful());
        // Client-held creation stays stateless: the policy is about provider-held state.
        let c = rs.classify(&ev(
            json!({"kind": "model_call", "request": {"store": true}}),
        ));
        assert_eq!(c.tag, Tag::Stateless);
        let c = rs.classify(&ev(json!({"kind": "state_op", "holder": "client"})));
        assert!(
            c.session_stateful,
            "client state counts for the session under the policy"
        );
        let provider_create = r#"
[policy]
creates_state_is_stateful = true
[[rule]]
id = "p"
has = ["request.s"]
creates_state = true
state_holder = "provider"
explain = "x"
"#;
        let c = Ruleset::from_toml(provider_create)
            .unwrap()
            .classify(&ev(json!({"request": {"s": 1}})));
        assert_eq!((c.tag, c.session_stateful), (Tag::Stateful, true));
        assert_eq!(
            c.evidence[0].tag,
            Tag::Stateless,
            "evidence keeps the rule's own tag"
        );
    }

    const KINDS: &str = r#"
[[rule]]
id = "consume-conversation"
has = ["request.prev"]
consumes_state = true
state_holder = "provider"
state = "conversation"
tag = "stateful"
explain = "x"
[[rule]]
id = "file"
has = ["request.file_id"]
consumes_state = true
state_holder = "provider"
state = "content"
explain = "x"
[[rule]]
id = "cache-note"
has = ["request.cache"]
explain = "prompt caching is not state"
[[rule]]
id = "client-memory"
has = ["request.memory"]
state_holder = "client"
state = "memory"
explain = "x"
"#;

    #[test]
    fn state_kinds_come_from_the_matching_rules() {
        let rs = Ruleset::from_toml(KINDS).unwrap();
        let c = rs.classify(&ev(json!({"provider": "openai",
            "request": {"prev": "r", "file_id": "f", "cache": "k"}})));
        assert_eq!(
            c.state_kinds.iter().collect::<Vec<_>>(),
            [StateKind::Content, StateKind::Conversation]
        );
        assert_eq!(c.evidence[0].state, Some(StateKind::Conversation));
        assert_eq!(c.evidence[2].state, None, "a note names no state");
        let c = rs.classify(&ev(json!({"request": {"cache": "k"}})));
        assert!(c.state_kinds.is_empty());
        // The catalogue carries each rule's kind, so stored evidence can be explained fully.
        assert!(rs
            .catalogue()
            .contains(r#""signal":"request.prev","state":"conversation","tag":"stateful""#));
    }

    #[test]
    fn provider_state_policy_makes_any_server_held_kind_stateful() {
        let strict = format!("[policy]\nprovider_state_is_stateful = true\n{KINDS}");
        let (default, strict) = (
            Ruleset::from_toml(KINDS).unwrap(),
            Ruleset::from_toml(&strict).unwrap(),
        );
        assert!(strict.provider_state_is_stateful() && !default.provider_state_is_stateful());
        let file = ev(json!({"provider": "openai", "request": {"file_id": "f"}}));
        assert_eq!(
            default.classify(&file).tag,
            Tag::Stateless,
            "content stays stateless"
        );
        let c = strict.classify(&file);
        assert_eq!((c.tag, c.session_stateful), (Tag::Stateful, true));
        // Client-held memory and notes without a kind stay stateless under the policy.
        for req in [json!({"memory": true}), json!({"cache": "k"})] {
            let c = strict.classify(&ev(json!({"provider": "anthropic", "request": req})));
            assert_eq!(c.tag, Tag::Stateless, "{req}");
        }
    }

    #[test]
    fn provider_held_state_on_an_unknown_operator_is_held_by_unknown() {
        let rs = Ruleset::from_toml(KINDS).unwrap();
        let c = rs.classify(&ev(
            json!({"provider": "unknown", "request": {"prev": "r"}}),
        ));
        assert_eq!(c.state_holder, Some(Holder::Unknown));
        assert_eq!(
            c.tag,
            Tag::Stateful,
            "the server still holds the conversation"
        );
        assert!(c.session_stateful);
        let c = rs.classify(&ev(json!({"provider": "groq", "request": {"prev": "r"}})));
        assert_eq!(c.state_holder, Some(Holder::Provider));
    }

    #[test]
    fn runtime_session_id_makes_the_session_stateful() {
        let rs = Ruleset::from_toml("").unwrap();
        let c = rs.classify(&ev(
            json!({"kind": "session_start", "runtime_session_id": "s-1"}),
        ));
        assert_eq!((c.tag, c.session_stateful), (Tag::Stateless, true));
        let c = rs.classify(&ev(
            json!({"kind": "session_start", "runtime_session_id": null}),
        ));
        assert!(!c.session_stateful);
    }

    #[test]
    fn extends_replaces_by_id_in_place_and_appends_new_rules() {
        let base = Ruleset::builtin_default();
        let base_ids: Vec<Arc<str>> = base.rules().map(|r| r.id.clone()).collect();
        let replaced = base_ids[3].clone();
        let text = format!(
            r#"
extends = "default"
name = "mine"
[[rule]]
id = "zz-new"
has = ["attrs.x"]
explain = "new"
[[rule]]
id = "{replaced}"
has = ["attrs.y"]
tag = "stateful"
explain = "replaced"
"#
        );
        let rs = Ruleset::from_toml(&text).unwrap();
        let ids: Vec<Arc<str>> = rs.rules().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), base_ids.len() + 1);
        assert_eq!(ids[..base_ids.len()], base_ids[..]);
        assert_eq!(&*ids[base_ids.len()], "zz-new");
        let info = rs.rules().nth(3).unwrap();
        assert_eq!((&*info.explain, info.tag), ("replaced", Tag::Stateful));
        assert!(
            !rs.creates_state_is_stateful(),
            "policy inherited from default"
        );
        let c = rs.classify(&ev(json!({"kind": "tool_call", "attrs": {"x": 1, "y": 2}})));
        assert_eq!(ids_of(&c), [replaced.to_string(), "zz-new".to_string()]);
        assert_eq!(&*c.ruleset, "mine");
    }

    fn ids_of(c: &Classification) -> Vec<String> {
        c.evidence.iter().map(|e| e.rule.to_string()).collect()
    }

    #[test]
    fn extends_strict_inherits_policy_and_can_override_it() {
        let rs = Ruleset::from_toml("extends = \"strict\"").unwrap();
        assert!(rs.creates_state_is_stateful() && rs.client_state_makes_session_stateful());
        assert_eq!(
            rs.rules().count(),
            Ruleset::builtin_default().rules().count()
        );
        let rs =
            Ruleset::from_toml("extends = \"strict\"\n[policy]\ncreates_state_is_stateful = false")
                .unwrap();
        assert!(!rs.creates_state_is_stateful() && rs.client_state_makes_session_stateful());
    }

    #[test]
    fn builtins_are_cached_and_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Ruleset>();
        assert!(Arc::ptr_eq(
            &Ruleset::builtin_default(),
            &Ruleset::builtin_default()
        ));
        assert!(Arc::ptr_eq(
            &Ruleset::builtin_strict(),
            &Ruleset::builtin_strict()
        ));
        assert_eq!(Ruleset::builtin_default().name(), "default");
        assert_eq!(Ruleset::builtin_strict().name(), "strict");
        assert!(format!("{:?}", Ruleset::builtin_default()).contains("default"));
    }

    #[test]
    fn the_verdict_is_the_classification_without_evidence() {
        let rs = Ruleset::from_toml(RULES).unwrap();
        for e in [
            json!({"kind": "model_call", "api": "x", "request": {"prev": "r1", "store": true}}),
            json!({"kind": "state_op", "holder": "client"}),
            json!({"kind": "session_start", "runtime_session_id": "s"}),
            json!({"kind": "tool_call"}),
        ] {
            let (c, v) = (rs.classify(&ev(e.clone())), rs.verdict(&ev(e.clone())));
            assert_eq!(
                (
                    c.consumes_state,
                    c.creates_state,
                    c.state_holder,
                    c.state_kinds
                ),
                (
                    v.consumes_state,
                    v.creates_state,
                    v.state_holder,
                    v.state_kinds
                ),
                "{e}"
            );
            assert_eq!(
                (c.tag, c.session_stateful),
                (v.tag, v.session_stateful),
                "{e}"
            );
        }
    }

    #[test]
    fn evidence_is_shared_not_copied() {
        let rs = Ruleset::from_toml(RULES).unwrap();
        let e = ev(json!({"kind": "state_op", "holder": "client"}));
        let (a, b) = (rs.classify(&e), rs.classify(&e));
        assert!(Arc::ptr_eq(&a.evidence[0], &b.evidence[0]));
    }

    /// Events matching the same rules (one, none, or several) get the same evidence list, not
    /// a copy; other rules, another list, with the rules' evidence in evaluation order.
    #[test]
    fn evidence_lists_are_shared_per_set_of_matching_rules() {
        let rs = Ruleset::from_toml(RULES).unwrap();
        let both = json!({"kind": "model_call", "api": "x", "request": {"prev": "a", "store": 1}});
        let classify = |v: &Value| rs.classify(&ev(v.clone()));
        for v in [
            json!({"kind": "state_op", "holder": "client"}),
            json!({"kind": "tool_call"}),
            both.clone(),
        ] {
            let (a, b) = (classify(&v), classify(&v));
            assert!(Arc::ptr_eq(&a.evidence, &b.evidence), "{v}");
        }
        let several = classify(&both);
        assert_eq!(ids(&several), ["a-consume", "b-create"]);
        let other = classify(&json!({"kind": "model_call", "api": "x", "request": {"prev": "a"}}));
        assert_eq!(ids(&other), ["a-consume"]);
        assert!(!Arc::ptr_eq(&several.evidence, &other.evidence));
        assert!(Arc::ptr_eq(&several.evidence[0], &other.evidence[0]));
        // With the list of several rules locked elsewhere, the same list is made afresh.
        let held = rs.lists.several.lock();
        let fresh = classify(&both);
        drop(held);
        assert!(!Arc::ptr_eq(&fresh.evidence, &several.evidence));
        assert_eq!(fresh.evidence, several.evidence);
    }

    #[test]
    fn the_built_in_names_are_reserved() {
        for name in RESERVED_NAMES {
            let text = format!("name = {name:?}\nextends = \"default\"\n");
            match Ruleset::from_toml(&text) {
                Err(Error::Ruleset(m)) => assert!(m.contains("is reserved"), "{m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let mine = Ruleset::from_toml("name = \"default-ish\"\nextends = \"default\"\n").unwrap();
        assert_eq!(mine.name(), "default-ish");
        assert_ne!(mine.digest(), Ruleset::builtin_default().digest());
    }
}
