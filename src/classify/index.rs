//! The candidate index: which rules can possibly match an event, found from a few fields.
//!
//! Performance note. `classify` runs once per recorded event, so it must not walk every rule
//! and compare strings for each. When a ruleset is compiled, each rule's equality on `kind`,
//! `api` or `provider` (with string values) is taken over by a table: one list of rule positions
//! per combination of values that rules name, plus an "anything else" slot per field. The
//! condition is then dropped from the rule's own checks. Classifying reads those three fields
//! once, hashes each to its slot and walks one short list in catalogue order: a plain OpenAI
//! `chat.completions` call sees only the chat rules, never the Bedrock or Gemini ones, and checks
//! no provider. A field is indexed only if some rule names it, and only while the table stays
//! under `MAX_LISTS`; otherwise its conditions stay with the rules.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use super::rule::{Cond, Rule};
use crate::event::{FieldRef, Fields};

/// The fields that can be indexed, in order of preference.
const INDEXED: [&str; 3] = ["kind", "api", "provider"];
/// The most lists a table may have (the product of each indexed field's slot count).
const MAX_LISTS: usize = 1 << 14;

#[derive(Debug)]
pub(crate) struct Index {
    dims: Box<[Dim]>,
    /// Rule positions per combination of slots (row-major over `dims`), in rule order.
    lists: Box<[Box<[u32]>]>,
}

/// One indexed field: each value rules name gets a slot; slot `keys.len()` is "anything else".
#[derive(Debug)]
struct Dim {
    path: &'static str,
    keys: HashMap<Box<str>, usize, BuildHasherDefault<Fx>>,
    stride: usize,
}

impl Dim {
    #[inline]
    fn slot(&self, ev: &dyn Fields) -> usize {
        match ev.field(self.path).map(FieldRef::normalized) {
            Some(FieldRef::Str(s)) => self.keys.get(s).copied().unwrap_or(self.keys.len()),
            _ => self.keys.len(),
        }
    }
}

impl Index {
    /// Builds the table for `rules` and returns, per rule, the conditions it leaves to check.
    pub(crate) fn build(rules: &[Rule]) -> (Index, Vec<Box<[Cond]>>) {
        let mut chosen: Vec<(&'static str, Vec<&str>)> = Vec::new();
        let mut lists_len = 1usize;
        for path in INDEXED {
            let values: BTreeSet<&str> = rules
                .iter()
                .flat_map(|r| r.conds.iter().filter_map(|c| c.string_values(path)))
                .flatten()
                .collect();
            let slots = values.len() + 1;
            if values.is_empty() || lists_len * slots > MAX_LISTS {
                continue;
            }
            lists_len *= slots;
            chosen.push((path, values.into_iter().collect()));
        }
        let mut stride = lists_len;
        let dims: Box<[Dim]> = chosen
            .iter()
            .map(|(path, values)| {
                stride /= values.len() + 1;
                let keys = values.iter().enumerate().map(|(i, v)| (Box::from(*v), i));
                Dim {
                    path,
                    keys: keys.collect(),
                    stride,
                }
            })
            .collect();
        // For each rule and dimension: the slots it accepts (`None`: any slot).
        let accepts: Vec<Vec<Option<Vec<usize>>>> = rules
            .iter()
            .map(|r| {
                let on = |d: &Dim| r.conds.iter().find_map(|c| c.string_values(d.path));
                let slots = |vals: Vec<&str>, d: &Dim| vals.iter().map(|v| d.keys[*v]).collect();
                dims.iter()
                    .map(|d| on(d).map(|vals| slots(vals, d)))
                    .collect()
            })
            .collect();
        let lists = (0..lists_len)
            .map(|at| {
                let slot = |d: &Dim, n: usize| at / d.stride % n;
                (0..rules.len())
                    .filter(|&i| {
                        dims.iter().zip(&accepts[i]).all(|(d, acc)| match acc {
                            None => true,
                            Some(slots) => slots.contains(&slot(d, d.keys.len() + 1)),
                        })
                    })
                    .map(|i| i as u32)
                    .collect()
            })
            .collect();
        let indexed = |c: &Cond| dims.iter().any(|d| c.string_values(d.path).is_some());
        let checks = rules
            .iter()
            .map(|r| r.conds.iter().filter(|c| !indexed(c)).cloned().collect())
            .collect();
        (Index { dims, lists }, checks)
    }

    /// The positions of the rules that may match `ev`, in rule order.
    #[inline]
    pub(crate) fn candidates(&self, ev: &dyn Fields) -> &[u32] {
        let at: usize = self.dims.iter().map(|d| d.slot(ev) * d.stride).sum();
        &self.lists[at]
    }
}

/// A small, fast, non-cryptographic hasher (the FxHash scheme) for the short keys above.
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, b: u8) {
        self.write_u64(u64::from(b));
    }

    #[inline]
    fn write_u64(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::parse::parse;
    use serde_json::{json, Map, Value};

    fn rules(whens: &[&str]) -> Vec<Rule> {
        let text: String = whens
            .iter()
            .enumerate()
            .map(|(i, w)| format!("[[rule]]\nid = \"r{i}\"\nwhen = {{ {w} }}\nexplain = \"e\"\n"))
            .collect();
        parse(&text)
            .unwrap()
            .rules
            .into_iter()
            .map(Rule::compile)
            .collect()
    }

    fn ev(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn files_rules_by_kind_api_and_provider_in_order() {
        let rules = rules(&[
            r#"kind = "model_call", api = "responses""#,
            r#"tool = "t""#,
            r#"kind = ["tool_call", "model_call"]"#,
            r#"kind = "model_call", api = ["chat.completions", "responses"], provider = "openai""#,
            r#"api = "responses", provider = ["openai", "anthropic"]"#,
        ]);
        let (idx, checks) = Index::build(&rules);
        let c = |v| idx.candidates(&ev(v)).to_vec();
        let mc = |api: &str, p: &str| json!({"kind": "model_call", "api": api, "provider": p});
        assert_eq!(c(mc("responses", "openai")), [0, 1, 2, 3, 4]);
        assert_eq!(c(mc("responses", "anthropic")), [0, 1, 2, 4]);
        assert_eq!(c(mc("responses", "other")), [0, 1, 2]);
        assert_eq!(c(mc("chat.completions", "openai")), [1, 2, 3]);
        assert_eq!(c(mc("embeddings", "openai")), [1, 2]);
        assert_eq!(c(json!({"kind": "model_call"})), [1, 2]);
        assert_eq!(
            c(json!({"kind": "tool_call", "api": "responses", "provider": "openai"})),
            [1, 2, 4]
        );
        assert_eq!(
            c(json!({"kind": "state_op", "api": "responses", "provider": "openai"})),
            [1, 4]
        );
        assert_eq!(
            c(json!({"kind": 3, "api": "responses", "provider": "anthropic"})),
            [1, 4]
        );
        assert_eq!(c(json!({})), [1]);
        // Indexed equalities leave the rules; the others stay.
        assert!(checks[0].is_empty() && checks[3].is_empty() && checks[4].is_empty());
        assert_eq!(checks[1].len(), 1);
    }

    #[test]
    fn non_string_values_stay_with_the_rule() {
        let rules = rules(&[r#"kind = "model_call", api = ["x", 3]"#, r#"api = "y""#]);
        let (idx, checks) = Index::build(&rules);
        assert_eq!(
            checks[0].len(),
            1,
            "api = [\"x\", 3] is checked by the rule"
        );
        assert_eq!(
            idx.candidates(&ev(json!({"kind": "model_call", "api": "x"}))),
            [0]
        );
        assert_eq!(
            idx.candidates(&ev(json!({"kind": "model_call", "api": "y"}))),
            [0, 1]
        );
    }

    #[test]
    fn unindexed_fields_and_empty_rulesets() {
        let rules = rules(&[r#"tool = "a""#, r#"op = "read""#]);
        let (idx, checks) = Index::build(&rules);
        assert_eq!(idx.candidates(&ev(json!({"kind": "model_call"}))), [0, 1]);
        assert!(checks.iter().all(|c| c.len() == 1));
        let (idx, _) = Index::build(&[]);
        assert!(idx.candidates(&ev(json!({}))).is_empty());
    }

    #[test]
    fn a_field_that_would_overflow_the_table_is_not_indexed() {
        let many: Vec<String> = (0..200)
            .map(|i| format!(r#"api = "a{i}", provider = "p{i}""#))
            .collect();
        let whens: Vec<&str> = many.iter().map(String::as_str).collect();
        let rules = rules(&whens);
        let (idx, checks) = Index::build(&rules);
        assert_eq!(
            idx.dims.len(),
            1,
            "201 x 201 slots exceed MAX_LISTS: provider stays a check"
        );
        assert!(checks.iter().all(|c| c.len() == 1));
        let e = ev(json!({"api": "a7", "provider": "p7"}));
        assert_eq!(idx.candidates(&e), [7]);
        assert!(checks[7][0].holds(&e));
    }

    #[test]
    fn fx_hash_distinguishes_keys() {
        let h = |s: &str| {
            let mut f = Fx::default();
            std::hash::Hash::hash(s, &mut f);
            f.finish()
        };
        assert_ne!(h("responses"), h("responses2"));
        assert_ne!(h("a"), h("b"));
        assert_eq!(h("chat.completions"), h("chat.completions"));
    }
}
