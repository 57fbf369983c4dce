//! The inputs of a ruleset's verdict: every field path the engine may read while classifying
//! an event, and whether it reads the field's value or only its presence.
//!
//! The engine reads an event only through [`crate::event::Fields`]: the paths of the rules'
//! conditions (indexed or checked), `provider` and `holder` for the rules that take their state
//! holder from them, and `runtime_session_id` (present: the session is stateful). Two events
//! that answer every input alike get the same classification, which lets a batch classify each
//! distinct combination of inputs once (`crate::stored::memo`).

use super::rule::{Cond, Rule};
use super::spec::HolderSource;

/// How the engine reads a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Read {
    /// Only whether it is present (`has` / `not_has`).
    Presence,
    /// Its value (an equality, a holder, an index slot); presence too.
    Value,
}

/// One field path a ruleset reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub path: Box<str>,
    pub read: Read,
}

/// The inputs of `rules` under the engine's session rule, sorted by path, each path once (read
/// for its value when any use needs the value).
pub(crate) fn of(rules: &[Rule]) -> Box<[Input]> {
    let mut all: Vec<(&str, Read)> = vec![("runtime_session_id", Read::Presence)];
    for r in rules {
        for c in r.conds.iter() {
            all.push(match c {
                Cond::Eq(path, _) => (path, Read::Value),
                Cond::Has(path) | Cond::NotHas(path) => (path, Read::Presence),
            });
        }
        match r.info.state_holder {
            Some(HolderSource::Provider) => all.push(("provider", Read::Value)),
            Some(HolderSource::FromEvent) => all.push(("holder", Read::Value)),
            Some(HolderSource::Client) | None => {}
        }
    }
    // Value sorts after Presence: the last entry of each path is the strongest read.
    all.sort_unstable();
    let mut out: Vec<Input> = Vec::new();
    for (path, read) in all {
        match out.last_mut() {
            Some(last) if *last.path == *path => last.read = last.read.max(read),
            _ => out.push(Input {
                path: path.into(),
                read,
            }),
        }
    }
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::{Map, Value};

    use super::*;
    use crate::classify::spec::Scalar;
    use crate::classify::Ruleset;
    use crate::event::{FieldRef, Fields};

    /// An event that records every path the engine asks it for.
    struct Recording {
        event: Map<String, Value>,
        reads: RefCell<Vec<(String, Read)>>,
    }

    impl Fields for Recording {
        fn field(&self, path: &str) -> Option<FieldRef<'_>> {
            self.reads.borrow_mut().push((path.into(), Read::Value));
            self.event.field(path)
        }

        fn has(&self, path: &str) -> bool {
            self.reads.borrow_mut().push((path.into(), Read::Presence));
            self.event.has(path)
        }
    }

    fn set(event: &mut Map<String, Value>, path: &str, value: Value) {
        match path.split_once('.') {
            Some((top @ ("request" | "attrs"), rest)) => {
                let inner = event
                    .entry(top)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = inner {
                    m.insert(rest.into(), value);
                }
            }
            _ => {
                event.insert(path.into(), value);
            }
        }
    }

    /// One event per rule that satisfies the rule's equalities and `has` conditions, so every
    /// rule's checks run; plus variations with each `has` path missing.
    fn events_for(rules: &[Rule]) -> Vec<Map<String, Value>> {
        let mut out = Vec::new();
        for r in rules {
            let mut e = Map::new();
            for c in r.conds.iter() {
                match c {
                    Cond::Eq(path, values) => {
                        let v = match &values[0] {
                            Scalar::Str(s) => Value::from(&**s),
                            Scalar::Int(i) => Value::from(*i),
                            Scalar::Bool(b) => Value::from(*b),
                        };
                        set(&mut e, path, v);
                    }
                    Cond::Has(path) => set(&mut e, path, Value::from("x")),
                    Cond::NotHas(_) => {}
                }
            }
            for holder in ["provider", "client", "unknown"] {
                let mut v = e.clone();
                v.insert("holder".into(), holder.into());
                v.insert("runtime_session_id".into(), "rs".into());
                out.push(v);
            }
            out.push(e);
        }
        out
    }

    /// Every path the engine reads while classifying is one of the ruleset's inputs, read no
    /// more strongly than the inputs say.
    #[test]
    fn the_engine_reads_only_the_declared_inputs() {
        for ruleset in [Ruleset::builtin_default(), Ruleset::builtin_strict()] {
            let inputs = ruleset.inputs();
            let mut seen = 0;
            for event in events_for(ruleset.compiled()) {
                let rec = Recording {
                    event,
                    reads: RefCell::new(Vec::new()),
                };
                ruleset.classify(&rec);
                for (path, read) in rec.reads.into_inner() {
                    let input = inputs.iter().find(|i| *i.path == *path);
                    assert!(
                        input.is_some_and(|i| i.read >= read),
                        "{} reads {path} ({read:?}), inputs say {input:?}",
                        ruleset.name()
                    );
                    seen += 1;
                }
            }
            assert!(seen > 1000, "the events exercise the rules ({seen} reads)");
        }
    }

    #[test]
    fn paths_are_listed_once_with_their_strongest_read() {
        let rs = Ruleset::from_toml(
            r#"
name = "t"
[[rule]]
id = "a"
when = { kind = "model_call", "request.x" = 1 }
has = ["request.y"]
explain = "e"
[[rule]]
id = "b"
has = ["request.x", "tool"]
not_has = ["request.y"]
state_holder = "from_event"
explain = "e"
"#,
        )
        .unwrap();
        let got: Vec<(&str, Read)> = rs.inputs().iter().map(|i| (&*i.path, i.read)).collect();
        assert_eq!(
            got,
            [
                ("holder", Read::Value),
                ("kind", Read::Value),
                ("request.x", Read::Value),
                ("request.y", Read::Presence),
                ("runtime_session_id", Read::Presence),
                ("tool", Read::Presence),
            ]
        );
    }
}
