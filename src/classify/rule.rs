//! One compiled rule: its field conditions and its shared evidence.

use std::sync::Arc;

use super::spec::{HolderSource, RuleSpec, Scalar};
use crate::event::{Evidence, Holder, StateKind, Tag};
use crate::event::{FieldRef, Fields};

/// What a rule is, for listing and documentation (the matching itself is compiled away).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    pub id: Arc<str>,
    pub tag: Tag,
    pub signal: Arc<str>,
    pub explain: Arc<str>,
    pub consumes_state: bool,
    pub creates_state: bool,
    pub state_holder: Option<HolderSource>,
    /// The kind of state the rule concerns, if any.
    pub state: Option<StateKind>,
    /// The rule's conditions, readable: `kind = "model_call", has request.container`.
    pub condition: Arc<str>,
}

/// One field condition, evaluated against an event.
#[derive(Clone, Debug)]
pub(crate) enum Cond {
    /// The field equals one of the values.
    Eq(Box<str>, Box<[Scalar]>),
    Has(Box<str>),
    NotHas(Box<str>),
}

impl Cond {
    /// Whether the condition holds for `ev`.
    #[inline]
    pub(crate) fn holds(&self, ev: &dyn Fields) -> bool {
        match self {
            Cond::Eq(path, values) => match ev.field(path) {
                Some(f) => {
                    let f = f.normalized();
                    values.iter().any(|v| scalar_eq(v, f))
                }
                None => false,
            },
            Cond::Has(path) => ev.has(path),
            Cond::NotHas(path) => !ev.has(path),
        }
    }

    /// The accepted values when this is an equality on `path` with only string values (the
    /// conditions the index can take over).
    pub(crate) fn string_values(&self, path: &str) -> Option<Vec<&str>> {
        match self {
            Cond::Eq(p, values) if **p == *path => values
                .iter()
                .map(|v| match v {
                    Scalar::Str(s) => Some(&**s),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }
}

#[inline]
fn scalar_eq(v: &Scalar, f: FieldRef<'_>) -> bool {
    match (v, f) {
        (Scalar::Str(a), FieldRef::Str(b)) => **a == *b,
        (Scalar::Int(a), FieldRef::Int(b)) => *a == b,
        (Scalar::Bool(a), FieldRef::Bool(b)) => *a == b,
        _ => false,
    }
}

/// A compiled rule: its conditions and its precomputed evidence.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub info: RuleInfo,
    pub evidence: Arc<Evidence>,
    /// Every condition, in the order written (`when`, then `has`, then `not_has`).
    pub conds: Box<[Cond]>,
}

impl Rule {
    /// Compiles a rule from its validated specification.
    pub(crate) fn compile(spec: RuleSpec) -> Rule {
        let condition = describe(&spec);
        let conds: Vec<Cond> = (spec.when.into_iter())
            .map(|w| Cond::Eq(w.path, w.values.into_boxed_slice()))
            .chain(spec.has.into_iter().map(Cond::Has))
            .chain(spec.not_has.into_iter().map(Cond::NotHas))
            .collect();
        let info = RuleInfo {
            id: spec.id.into(),
            tag: spec.tag,
            signal: spec.signal.into(),
            explain: spec.explain.into(),
            consumes_state: spec.consumes_state,
            creates_state: spec.creates_state,
            state_holder: spec.state_holder,
            state: spec.state,
            condition: condition.into(),
        };
        let evidence = Arc::new(Evidence {
            rule: info.id.clone(),
            tag: info.tag,
            signal: info.signal.clone(),
            explain: info.explain.clone(),
            state: info.state,
        });
        Rule {
            info,
            evidence,
            conds: conds.into_boxed_slice(),
        }
    }

    /// Whether every condition holds for `ev` (the engine checks only those the index leaves).
    #[cfg(test)]
    pub(crate) fn matches(&self, ev: &dyn Fields) -> bool {
        self.conds.iter().all(|c| c.holds(ev))
    }

    /// The holder this rule sets for `ev`, if any. Provider-held state on a server whose
    /// operator is not known (the event's `provider` is `"unknown"`) is held by `Unknown`.
    #[inline]
    pub(crate) fn holder(&self, ev: &dyn Fields) -> Option<Holder> {
        match self.info.state_holder? {
            HolderSource::Provider => match ev.field("provider") {
                Some(FieldRef::Str("unknown")) => Some(Holder::Unknown),
                _ => Some(Holder::Provider),
            },
            HolderSource::Client => Some(Holder::Client),
            HolderSource::FromEvent => match ev.field("holder")?.normalized() {
                FieldRef::Str("provider") => Some(Holder::Provider),
                FieldRef::Str("client") => Some(Holder::Client),
                _ => None,
            },
        }
    }
}

/// Renders a rule's conditions: `kind = "model_call", provider in ["a", "b"], has request.x`.
fn describe(spec: &RuleSpec) -> String {
    let value = |v: &Scalar| match v {
        Scalar::Str(s) => format!("{s:?}"),
        Scalar::Int(i) => i.to_string(),
        Scalar::Bool(b) => b.to_string(),
    };
    let mut parts: Vec<String> = spec
        .when
        .iter()
        .map(|w| match w.values.as_slice() {
            [one] => format!("{} = {}", w.path, value(one)),
            many => format!(
                "{} in [{}]",
                w.path,
                many.iter().map(value).collect::<Vec<_>>().join(", ")
            ),
        })
        .collect();
    parts.extend(spec.has.iter().map(|p| format!("has {p}")));
    parts.extend(spec.not_has.iter().map(|p| format!("not_has {p}")));
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::parse::parse;
    use serde_json::{json, Map, Value};

    fn compile(text: &str) -> Rule {
        Rule::compile(parse(text).unwrap().rules.remove(0))
    }

    fn ev(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn string_equalities_are_offered_to_the_index() {
        let r = compile(
            r#"[[rule]]
id = "a"
when = { kind = "model_call", api = ["x", "y"], provider = "p", bytes = [1, "z"] }
explain = "e""#,
        );
        assert_eq!(r.conds[0].string_values("kind"), Some(vec!["model_call"]));
        assert_eq!(r.conds[1].string_values("api"), Some(vec!["x", "y"]));
        assert_eq!(r.conds[1].string_values("kind"), None);
        assert_eq!(r.conds[3].string_values("bytes"), None, "not all strings");
        assert!(r.matches(&ev(
            json!({"kind": "model_call", "api": "y", "provider": "p", "bytes": 1})
        )));
        assert!(!r.matches(&ev(
            json!({"kind": "model_call", "api": "z", "provider": "p", "bytes": 1})
        )));
        assert_eq!(
            &*r.info.condition,
            r#"kind = "model_call", api in ["x", "y"], provider = "p", bytes in [1, "z"]"#
        );
    }

    #[test]
    fn conditions_compare_by_type_and_presence() {
        let r = compile(
            r#"[[rule]]
id = "a"
when = { request.n = [1, "one"], request.b = false }
has = ["request.h"]
not_has = ["request.x"]
explain = "e""#,
        );
        let base = json!({"request": {"n": 1, "b": false, "h": {}}});
        assert!(r.matches(&ev(base.clone())));
        for (key, value, expect) in [
            ("n", json!("one"), true),
            ("n", json!("1"), false),
            ("n", json!(1.0), false),
            ("b", json!(0), false),
            ("h", Value::Null, false),
            ("x", json!(""), false),
            ("x", Value::Null, true),
        ] {
            let mut e = base.clone();
            e["request"][key] = value.clone();
            assert_eq!(r.matches(&ev(e)), expect, "{key} = {value}");
        }
        assert_eq!(
            &*r.info.condition,
            r#"request.n in [1, "one"], request.b = false, has request.h, not_has request.x"#
        );
    }

    #[test]
    fn holder_sources() {
        let text = |h: &str| {
            format!("[[rule]]\nid = \"a\"\nhas = [\"op\"]\nstate_holder = \"{h}\"\nexplain = \"e\"")
        };
        let e = ev(json!({"holder": "client"}));
        assert_eq!(
            compile(&text("provider")).holder(&e),
            Some(Holder::Provider)
        );
        assert_eq!(
            compile(&text("client")).holder(&ev(json!({}))),
            Some(Holder::Client)
        );
        assert_eq!(
            compile(&text("from_event")).holder(&e),
            Some(Holder::Client)
        );
        assert_eq!(
            compile(&text("from_event")).holder(&ev(json!({"holder": "x"}))),
            None
        );
        assert_eq!(compile(&text("from_event")).holder(&ev(json!({}))), None);
        let none = compile("[[rule]]\nid = \"a\"\nhas = [\"op\"]\nexplain = \"e\"");
        assert_eq!(none.holder(&e), None);
    }

    #[test]
    fn evidence_is_built_once_from_the_spec() {
        let r =
            compile("[[rule]]\nid = \"a\"\nhas = [\"op\"]\ntag = \"stateful\"\nexplain = \"e\"");
        assert_eq!(
            (
                &*r.evidence.rule,
                r.evidence.tag,
                &*r.evidence.signal,
                &*r.evidence.explain
            ),
            ("a", Tag::Stateful, "op", "e")
        );
        assert!(Arc::ptr_eq(&r.evidence.rule, &r.info.id));
    }
}
