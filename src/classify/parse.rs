//! Reading a ruleset file: TOML text to a validated [`RulesetSpec`].
//!
//! The TOML is parsed with spans so that every error can name the line, and tables are read in
//! the order they were written (a rule's default `signal` is its first `when` field as written).
//! Every error is an `Error::Ruleset` naming where it is (top level, `[policy]`, or the rule's
//! position and id), the key and the line.

use std::fmt::Display;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::spec::{
    closed_set, is_field_path, Base, HolderSource, PolicySpec, RuleSpec, RulesetSpec, Scalar,
    WhenSpec,
};
use crate::error::{Error, Result};
use crate::event::{StateKind, Tag};

type Entry<'a, 'i> = (
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
);

/// Parses and validates a ruleset file.
pub(crate) fn parse(text: &str) -> Result<RulesetSpec> {
    let cx = Cx { text };
    let doc = DeTable::parse(text).map_err(|e| {
        let line = e.span().map(|s| format!(" (line {})", cx.line(s.start)));
        Error::Ruleset(format!(
            "ruleset: {}{}",
            e.message().trim_end(),
            line.unwrap_or_default()
        ))
    })?;
    let mut spec = RulesetSpec {
        name: None,
        extends: None,
        policy: PolicySpec::default(),
        rules: Vec::new(),
    };
    for (k, v) in in_written_order(doc.get_ref()) {
        let at = "top level";
        match k.get_ref().as_ref() {
            "name" => spec.name = Some(cx.nonempty_str(at, "name", v)?.to_owned()),
            "extends" => {
                let bases = [("default", Base::Default), ("strict", Base::Strict)];
                spec.extends = Some(cx.choice(at, "extends", v, &bases)?)
            }
            "policy" => spec.policy = cx.policy(v)?,
            "rule" => {
                let DeValue::Array(items) = v.get_ref() else {
                    return Err(cx.err(
                        at,
                        "`rule` must be an array of tables ([[rule]])",
                        v.span(),
                    ));
                };
                for (i, item) in items.iter().enumerate() {
                    let rule = cx.rule(i, item)?;
                    if let Some(j) = spec.rules.iter().position(|r| r.id == rule.id) {
                        let msg = format!("duplicate id (rule {} has the same id)", j + 1);
                        return Err(cx.err(&label(i, Some(&rule.id)), msg, item.span()));
                    }
                    spec.rules.push(rule);
                }
            }
            other => return Err(cx.err(at, format!("unknown key `{other}`"), k.span())),
        }
    }
    Ok(spec)
}

fn label(index: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("rule {} `{id}`", index + 1),
        None => format!("rule {}", index + 1),
    }
}

/// Table entries in the order they were written (toml keeps them sorted by key).
fn in_written_order<'a, 'i>(t: &'a DeTable<'i>) -> Vec<Entry<'a, 'i>> {
    let mut entries: Vec<Entry<'a, 'i>> = t.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

/// Error context: the source text, for line numbers.
struct Cx<'t> {
    text: &'t str,
}

impl Cx<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(&self, at: &str, msg: impl Display, span: Range<usize>) -> Error {
        Error::Ruleset(format!(
            "ruleset: {at}: {msg} (line {})",
            self.line(span.start)
        ))
    }

    fn str<'v>(&self, at: &str, key: &str, v: &'v Spanned<DeValue<'_>>) -> Result<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            other => Err(self.err(
                at,
                format!("`{key}` must be a string, not {}", other.type_str()),
                v.span(),
            )),
        }
    }

    fn nonempty_str<'v>(
        &self,
        at: &str,
        key: &str,
        v: &'v Spanned<DeValue<'_>>,
    ) -> Result<&'v str> {
        match self.str(at, key, v)? {
            "" => Err(self.err(at, format!("`{key}` must not be empty"), v.span())),
            s => Ok(s),
        }
    }

    fn bool(&self, at: &str, key: &str, v: &Spanned<DeValue<'_>>) -> Result<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            other => Err(self.err(
                at,
                format!("`{key}` must be true or false, not {}", other.type_str()),
                v.span(),
            )),
        }
    }

    /// A string that must be one of `options`.
    fn choice<T: Copy>(
        &self,
        at: &str,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        options: &[(&str, T)],
    ) -> Result<T> {
        let s = self.str(at, key, v)?;
        match options.iter().find(|(name, _)| *name == s) {
            Some((_, value)) => Ok(*value),
            None => {
                let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
                let msg = format!("`{key}` must be one of {}, not {s:?}", names.join(", "));
                Err(self.err(at, msg, v.span()))
            }
        }
    }

    fn policy(&self, v: &Spanned<DeValue<'_>>) -> Result<PolicySpec> {
        let at = "[policy]";
        let DeValue::Table(t) = v.get_ref() else {
            return Err(self.err(at, "`policy` must be a table", v.span()));
        };
        let mut p = PolicySpec::default();
        for (k, v) in in_written_order(t) {
            match k.get_ref().as_ref() {
                "creates_state_is_stateful" => {
                    p.creates_state_is_stateful = Some(self.bool(at, k.get_ref(), v)?)
                }
                "client_state_makes_session_stateful" => {
                    p.client_state_makes_session_stateful = Some(self.bool(at, k.get_ref(), v)?)
                }
                "provider_state_is_stateful" => {
                    p.provider_state_is_stateful = Some(self.bool(at, k.get_ref(), v)?)
                }
                other => return Err(self.err(at, format!("unknown key `{other}`"), k.span())),
            }
        }
        Ok(p)
    }

    fn rule(&self, index: usize, v: &Spanned<DeValue<'_>>) -> Result<RuleSpec> {
        let DeValue::Table(t) = v.get_ref() else {
            return Err(self.err(&label(index, None), "a rule must be a table", v.span()));
        };
        let entries = in_written_order(t);
        let id = entries
            .iter()
            .find(|(k, _)| k.get_ref() == "id")
            .map(|(_, v)| v);
        let id = match id {
            Some(v) => self.nonempty_str(&label(index, None), "id", v)?.to_owned(),
            None => return Err(self.err(&label(index, None), "missing `id`", v.span())),
        };
        let at = label(index, Some(&id));
        let at = at.as_str();
        let mut rule = RuleSpec {
            id,
            when: Vec::new(),
            has: Vec::new(),
            not_has: Vec::new(),
            consumes_state: false,
            creates_state: false,
            state_holder: None,
            state: None,
            tag: Tag::Stateless,
            explain: String::new(),
            signal: String::new(),
        };
        for (k, v) in entries {
            let key: &str = k.get_ref();
            match key {
                "id" => {}
                "when" => match v.get_ref() {
                    DeValue::Table(t) => self.flatten_when(at, "", t, &mut rule.when)?,
                    other => {
                        return Err(self.err(
                            at,
                            format!("`when` must be a table, not {}", other.type_str()),
                            v.span(),
                        ))
                    }
                },
                "has" => rule.has = self.paths(at, key, v)?,
                "not_has" => rule.not_has = self.paths(at, key, v)?,
                "consumes_state" => rule.consumes_state = self.bool(at, key, v)?,
                "creates_state" => rule.creates_state = self.bool(at, key, v)?,
                "state_holder" => {
                    let holders = [
                        ("provider", HolderSource::Provider),
                        ("client", HolderSource::Client),
                        ("from_event", HolderSource::FromEvent),
                    ];
                    rule.state_holder = Some(self.choice(at, key, v, &holders)?)
                }
                "state" => {
                    let kinds = StateKind::ALL.map(|k| (k.as_str(), k));
                    rule.state = Some(self.choice(at, key, v, &kinds)?)
                }
                "tag" => {
                    let tags = [("stateless", Tag::Stateless), ("stateful", Tag::Stateful)];
                    rule.tag = self.choice(at, key, v, &tags)?
                }
                "explain" => rule.explain = self.nonempty_str(at, key, v)?.to_owned(),
                "signal" => rule.signal = self.nonempty_str(at, key, v)?.to_owned(),
                other => return Err(self.err(at, format!("unknown key `{other}`"), k.span())),
            }
        }
        if rule.explain.is_empty() {
            return Err(self.err(at, "missing `explain`", v.span()));
        }
        if rule.when.is_empty() && rule.has.is_empty() {
            return Err(self.err(at, "needs a `when` or a `has` condition", v.span()));
        }
        if rule.signal.is_empty() {
            rule.signal = match rule.has.first() {
                Some(p) => p.to_string(),
                None => rule.when[0].path.to_string(),
            };
        }
        Ok(rule)
    }

    /// Flattens `when`: nested tables (`request.store = true` in TOML) become dotted paths.
    fn flatten_when(
        &self,
        at: &str,
        prefix: &str,
        t: &DeTable<'_>,
        out: &mut Vec<WhenSpec>,
    ) -> Result<()> {
        for (k, v) in in_written_order(t) {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            if let DeValue::Table(inner) = v.get_ref() {
                if inner.is_empty() {
                    return Err(self.err(at, format!("`when.{path}` has no value"), v.span()));
                }
                self.flatten_when(at, &path, inner, out)?;
                continue;
            }
            self.check_path(at, &path, k.span())?;
            if out.iter().any(|w| *w.path == *path) {
                return Err(self.err(at, format!("`when` names `{path}` twice"), k.span()));
            }
            let values = match v.get_ref() {
                DeValue::Array(items) if items.is_empty() => {
                    return Err(self.err(at, format!("`when.{path}` is an empty list"), v.span()))
                }
                DeValue::Array(items) => items
                    .iter()
                    .map(|i| self.scalar(at, &path, i))
                    .collect::<Result<Vec<_>>>()?,
                _ => vec![self.scalar(at, &path, v)?],
            };
            if let Some(allowed) = closed_set(&path) {
                for value in &values {
                    match value {
                        Scalar::Str(s) if allowed.split(' ').any(|a| a == &**s) => {}
                        _ => {
                            let msg =
                                format!("`when.{path}` accepts only {allowed}, not {value:?}");
                            return Err(self.err(at, msg, v.span()));
                        }
                    }
                }
            }
            out.push(WhenSpec {
                path: path.into(),
                values,
            });
        }
        Ok(())
    }

    fn scalar(&self, at: &str, path: &str, v: &Spanned<DeValue<'_>>) -> Result<Scalar> {
        match v.get_ref() {
            DeValue::String(s) => Ok(Scalar::Str(s.as_ref().into())),
            DeValue::Boolean(b) => Ok(Scalar::Bool(*b)),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .map(Scalar::Int)
                .map_err(|_| {
                    self.err(at, format!("`when.{path}`: integer out of range"), v.span())
                }),
            other => {
                let ty = other.type_str();
                let msg = format!("`when.{path}` must be a string, boolean or integer, not {ty}");
                Err(self.err(at, msg, v.span()))
            }
        }
    }

    fn paths(&self, at: &str, key: &str, v: &Spanned<DeValue<'_>>) -> Result<Vec<Box<str>>> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.err(
                at,
                format!("`{key}` must be a list of field paths"),
                v.span(),
            ));
        };
        let mut out: Vec<Box<str>> = Vec::with_capacity(items.len());
        for item in items.iter() {
            let path = self.str(at, key, item)?;
            self.check_path(at, path, item.span())?;
            out.push(path.into());
        }
        Ok(out)
    }

    fn check_path(&self, at: &str, path: &str, span: Range<usize>) -> Result<()> {
        if is_field_path(path) {
            Ok(())
        } else {
            let msg = format!(
                "unknown field `{path}` (expected an event field such as `api`, \
                 or `request.<name>` / `attrs.<name>`)"
            );
            Err(self.err(at, msg, span))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse(text) {
            Err(Error::Ruleset(m)) => m,
            other => panic!("expected a ruleset error, got {other:?}"),
        }
    }

    const MINIMAL: &str = r#"
[[rule]]
id = "r1"
has = ["request.previous_response_id"]
explain = "x"
"#;

    #[test]
    fn parses_a_full_rule_in_written_order() {
        let spec = parse(
            r#"
name = "mine"
extends = "strict"
[policy]
creates_state_is_stateful = false
[[rule]]
id = "r1"
when = { provider = ["openai", "azure.ai.openai"], kind = "model_call", request.store = true, "request.n" = 3 }
not_has = ["request.conversation"]
consumes_state = true
creates_state = true
state_holder = "from_event"
tag = "stateful"
explain = "because"
"#,
        )
        .unwrap();
        assert_eq!(spec.name.as_deref(), Some("mine"));
        assert_eq!(spec.extends, Some(Base::Strict));
        assert_eq!(spec.policy.creates_state_is_stateful, Some(false));
        assert_eq!(spec.policy.client_state_makes_session_stateful, None);
        let r = &spec.rules[0];
        let paths: Vec<&str> = r.when.iter().map(|w| &*w.path).collect();
        assert_eq!(paths, ["provider", "kind", "request.store", "request.n"]);
        assert_eq!(
            r.when[0].values,
            vec![
                Scalar::Str("openai".into()),
                Scalar::Str("azure.ai.openai".into())
            ]
        );
        assert_eq!(r.when[2].values, vec![Scalar::Bool(true)]);
        assert_eq!(r.when[3].values, vec![Scalar::Int(3)]);
        assert_eq!(
            r.signal, "provider",
            "default signal: the first `when` field as written"
        );
        assert_eq!(r.state_holder, Some(HolderSource::FromEvent));
        assert_eq!(r.tag, Tag::Stateful);
        assert!(r.consumes_state && r.creates_state);
    }

    #[test]
    fn defaults_and_signal_from_has() {
        let spec = parse(MINIMAL).unwrap();
        let r = &spec.rules[0];
        assert_eq!((spec.name, spec.extends), (None, None));
        assert_eq!(r.tag, Tag::Stateless);
        assert_eq!(r.state_holder, None);
        assert!(!r.consumes_state && !r.creates_state);
        assert_eq!(r.signal, "request.previous_response_id");
        assert!(parse("").unwrap().rules.is_empty());
    }

    #[test]
    fn unknown_keys_name_the_rule_key_and_line() {
        let m = err(&format!("{MINIMAL}tga = \"stateful\"\n"));
        assert!(
            m.contains("rule 1 `r1`") && m.contains("unknown key `tga`") && m.contains("line 6"),
            "{m}"
        );
        let m = err("nme = \"x\"\n");
        assert!(
            m.contains("top level") && m.contains("`nme`") && m.contains("line 1"),
            "{m}"
        );
        let m = err("[policy]\nstrict = true\n");
        assert!(
            m.contains("[policy]") && m.contains("`strict`") && m.contains("line 2"),
            "{m}"
        );
        let m = err("[[rule]]\nhas = [\"api\"]\nexplain = \"x\"\nwhy = 1\n");
        assert!(m.contains("rule 1:") && m.contains("missing `id`"), "{m}");
    }

    #[test]
    fn bad_types_and_values_are_ruleset_errors() {
        let cases = [
            ("extends = \"lenient\"", "extends"),
            ("name = 3", "`name` must be a string"),
            ("rule = 3", "array of tables"),
            ("[policy]\ncreates_state_is_stateful = \"yes\"", "true or false"),
            ("[[rule]]\nid = \"a\"\nhas = [\"api\"]\nexplain = \"x\"\ntag = \"maybe\"", "`tag`"),
            ("[[rule]]\nid = \"a\"\nhas = [\"api\"]\nexplain = \"x\"\nstate_holder = \"server\"", "`state_holder`"),
            ("[[rule]]\nid = \"a\"\nhas = [\"api\"]\nexplain = \"x\"\nstate = \"session\"", "`state`"),
            ("[[rule]]\nid = \"a\"\nhas = [\"api\"]\nexplain = \"x\"\nstate = 1", "`state`"),
            ("[policy]\nprovider_state_is_stateful = 1", "true or false"),
            ("[[rule]]\nid = \"a\"\nhas = [\"api\"]\nexplain = \"x\"\nconsumes_state = 1", "true or false"),
            ("[[rule]]\nid = \"a\"\nhas = \"api\"\nexplain = \"x\"", "list of field paths"),
            ("[[rule]]\nid = \"a\"\nhas = [\"reqest.store\"]\nexplain = \"x\"", "unknown field `reqest.store`"),
            ("[[rule]]\nid = \"a\"\nhas = [\"request.\"]\nexplain = \"x\"", "unknown field"),
            ("[[rule]]\nid = \"a\"\nhas = [\"api.x\"]\nexplain = \"x\"", "unknown field"),
            ("[[rule]]\nid = \"a\"\nwhen = { api = 1.5 }\nexplain = \"x\"", "string, boolean or integer"),
            ("[[rule]]\nid = \"a\"\nwhen = { api = [] }\nexplain = \"x\"", "empty list"),
            ("[[rule]]\nid = \"a\"\nwhen = { request = {} }\nexplain = \"x\"", "no value"),
            ("[[rule]]\nid = \"a\"\nwhen = { kind = \"model-call\" }\nexplain = \"x\"", "accepts only"),
            ("[[rule]]\nid = \"a\"\nwhen = { \"request.a\" = 1, request.a = 2 }\nexplain = \"x\"", "twice"),
            ("[[rule]]\nid = \"a\"\nwhen = \"api\"\nexplain = \"x\"", "`when` must be a table"),
            ("[[rule]]\nid = \"a\"\nnot_has = [\"api\"]\nexplain = \"x\"", "`when` or a `has`"),
            ("[[rule]]\nid = \"a\"\nhas = [\"api\"]", "missing `explain`"),
            ("[[rule]]\nid = \"\"\nhas = [\"api\"]\nexplain = \"x\"", "must not be empty"),
            ("[[rule]]\nid = \"a\"\nhas = [\"api\"]\nexplain = \"x\"\nsignal = \"\"", "must not be empty"),
            ("[[rule]]\nid = \"a\"\nhas = [\"api\"]\nexplain = \"x\"\n[[rule]]\nid = \"a\"\nhas = [\"api\"]\nexplain = \"y\"", "duplicate id (rule 1"),
            ("[[rule]\n", "line 1"),
        ];
        for (text, needle) in cases {
            let m = err(text);
            assert!(
                m.starts_with("ruleset: ") && m.contains(needle),
                "{text:?} gave {m:?}"
            );
        }
    }

    #[test]
    fn integers_in_any_radix_and_negative() {
        let spec =
            parse("[[rule]]\nid = \"a\"\nwhen = { bytes = [0x10, -3, 1_000] }\nexplain = \"x\"")
                .unwrap();
        assert_eq!(
            spec.rules[0].when[0].values,
            vec![Scalar::Int(16), Scalar::Int(-3), Scalar::Int(1000)]
        );
    }
}
