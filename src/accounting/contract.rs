//! Contracts: clauses, their effective periods, and the named interpretations under which a
//! clause is read. Parsed from TOML (see docs/contracts.md); evaluated by [`crate::accounting::report`].
//!
//! Semantics, per clause and interpretation:
//! - the clause **covers** a `model_call` event when the event's `provider` is one of the
//!   clause's `providers`, its `ts` lies in the clause's effective period
//!   (`effective_from <= ts < effective_until`, either bound optional), and the tag the
//!   interpretation judges by (`tag` at level `call`, `session_tag` at level `session`) is one of
//!   the interpretation's `tags`;
//! - a covered event **violates** the clause when its `venue` is not one of `required_venues`
//!   (an event without a venue violates: nothing shows it was served where required).
//!
//! A contract may list several `[[clause]]` tables with the same `id`: they are versions of one
//! clause (an amendment), their periods must not overlap, and reports show them as one clause,
//! each event judged by the version in force at its `ts`.

use crate::accounting::calendar;
use crate::accounting::source::{self, label, Source};
use crate::error::{Error, Result};
use crate::event::Tag;

/// How an interpretation judges an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// By the event's own `tag`.
    Call,
    /// By its session's `session_tag`.
    Session,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Call => "call",
            Level::Session => "session",
        }
    }
}

/// One reading of a clause: which events, judged at which level, it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interpretation {
    pub name: String,
    pub level: Level,
    /// The judged tags the interpretation covers.
    pub tags: Vec<Tag>,
    pub description: Option<String>,
}

impl Interpretation {
    /// Whether an event with these tags is covered (provider and period already matched).
    pub fn covers(&self, tag: Tag, session_tag: Tag) -> bool {
        let judged = match self.level {
            Level::Call => tag,
            Level::Session => session_tag,
        };
        self.tags.contains(&judged)
    }
}

/// One version of a clause (a `[[clause]]` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    pub id: String,
    pub text: Option<String>,
    pub providers: Vec<String>,
    pub required_venues: Vec<String>,
    /// Inclusive, ns since the epoch; `None`: since always.
    pub effective_from: Option<i64>,
    /// Exclusive; `None`: open-ended.
    pub effective_until: Option<i64>,
    pub interpretations: Vec<Interpretation>,
    /// Line of the `[[clause]]` table in its file.
    pub line: usize,
}

impl Clause {
    /// Whether `ts` lies in the effective period.
    pub fn in_force(&self, ts: i64) -> bool {
        self.effective_from.is_none_or(|f| ts >= f) && self.effective_until.is_none_or(|u| ts < u)
    }

    pub fn interpretation(&self, name: &str) -> Option<&Interpretation> {
        self.interpretations.iter().find(|i| i.name == name)
    }

    fn overlaps(&self, other: &Clause) -> bool {
        let lo = self
            .effective_from
            .unwrap_or(i64::MIN)
            .max(other.effective_from.unwrap_or(i64::MIN));
        let hi = self
            .effective_until
            .unwrap_or(i64::MAX)
            .min(other.effective_until.unwrap_or(i64::MAX));
        lo < hi
    }

    /// `[2025-10-28, 2026-04-27)` style description of the period.
    pub fn period(&self) -> String {
        let f = self
            .effective_from
            .map_or("-inf".into(), calendar::format_ts);
        let u = self
            .effective_until
            .map_or("+inf".into(), calendar::format_ts);
        format!("[{f}, {u})")
    }
}

/// A parsed, validated contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contract {
    pub id: String,
    pub title: Option<String>,
    /// Every clause version, in file order.
    pub clauses: Vec<Clause>,
}

impl Contract {
    /// Parses and validates contract TOML. Errors are `Error::Contract` naming the clause,
    /// the field and the line.
    pub fn from_toml(text: &str) -> Result<Contract> {
        parse(text)
    }

    /// Reads and parses a contract file; errors are `Error::Contract` naming the file.
    pub fn load(path: &std::path::Path) -> Result<Contract> {
        source::load(path, parse)
    }

    /// Clause ids in order of first appearance.
    pub fn clause_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        for c in &self.clauses {
            if !ids.contains(&c.id.as_str()) {
                ids.push(&c.id);
            }
        }
        ids
    }

    /// The (interpretation, clause id) pairs a report has rows for: interpretations in order
    /// of first appearance, then clauses in order, where that clause (some version of it)
    /// has that interpretation.
    pub fn slots(&self) -> Vec<(String, String)> {
        let mut names: Vec<&str> = Vec::new();
        for c in &self.clauses {
            for i in &c.interpretations {
                if !names.contains(&i.name.as_str()) {
                    names.push(&i.name);
                }
            }
        }
        let mut out = Vec::new();
        for n in names {
            for id in self.clause_ids() {
                if self
                    .clauses
                    .iter()
                    .any(|c| c.id == id && c.interpretation(n).is_some())
                {
                    out.push((n.to_owned(), id.to_owned()));
                }
            }
        }
        out
    }

    /// Checks that the pair exists; the error lists what does.
    pub fn check_slot(&self, interpretation: &str, clause: &str) -> Result<()> {
        if self
            .slots()
            .iter()
            .any(|(i, c)| i == interpretation && c == clause)
        {
            return Ok(());
        }
        if !self.clauses.iter().any(|c| c.id == clause) {
            return Err(Error::validation(
                "clause",
                format!(
                    "contract {:?} has no clause {clause:?} (clauses: {})",
                    self.id,
                    self.clause_ids().join(", ")
                ),
            ));
        }
        let names: Vec<String> = self
            .slots()
            .into_iter()
            .filter(|(_, c)| c == clause)
            .map(|(i, _)| i)
            .collect();
        Err(Error::validation(
            "interpretation",
            format!(
                "clause {clause:?} has no interpretation {interpretation:?} (it has: {})",
                names.join(", ")
            ),
        ))
    }
}

fn parse(text: &str) -> Result<Contract> {
    let (src, doc) = Source::parse("contract", text)?;
    let mut id = None;
    let mut title = None;
    let mut clauses: Vec<Clause> = Vec::new();
    let at = "top level";
    for (k, v) in src.entries(doc.get_ref()) {
        match k.get_ref().as_ref() {
            "id" => id = Some(src.str(at, "id", v)?.to_owned()),
            "title" => title = Some(src.str(at, "title", v)?.to_owned()),
            "clause" => {
                for (i, item) in src
                    .array_of_tables(at, "clause", v)?
                    .into_iter()
                    .enumerate()
                {
                    clauses.push(parse_clause(&src, i, item)?);
                }
            }
            other => {
                return Err(src.err(
                    at,
                    format!("unknown key `{other}` (expected id, title, clause)"),
                    k.span(),
                ))
            }
        }
    }
    let id = id.ok_or_else(|| Error::Contract("contract: top level: `id` is required".into()))?;
    if clauses.is_empty() {
        return Err(Error::Contract(format!(
            "contract {id:?}: no clauses (add [[clause]] tables)"
        )));
    }
    for (j, b) in clauses.iter().enumerate() {
        for a in &clauses[..j] {
            if a.id == b.id && a.overlaps(b) {
                return Err(Error::Contract(format!(
                    "contract: clause `{}`: the version at line {} in force {} overlaps the version at line {} in force {} (versions of one clause must not overlap) (line {})",
                    b.id,
                    b.line,
                    b.period(),
                    a.line,
                    a.period(),
                    b.line
                )));
            }
        }
    }
    Ok(Contract { id, title, clauses })
}

fn parse_clause(
    src: &Source<'_>,
    index: usize,
    v: &crate::accounting::source::Value<'_>,
) -> Result<Clause> {
    let t = src.table(&label("clause", index, None), "clause", v)?;
    let id = match t.get("id") {
        Some(idv) => src
            .str(&label("clause", index, None), "id", idv)?
            .to_owned(),
        None => {
            return Err(src.err(&label("clause", index, None), "`id` is required", v.span()));
        }
    };
    let at = label("clause", index, Some(&id));
    let mut c = Clause {
        id,
        text: None,
        providers: Vec::new(),
        required_venues: Vec::new(),
        effective_from: None,
        effective_until: None,
        interpretations: Vec::new(),
        line: src.line(v.span().start),
    };
    let mut until_span = v.span();
    let mut have = (false, false, false);
    for (k, val) in src.entries(t) {
        match k.get_ref().as_ref() {
            "id" => {}
            "text" => c.text = Some(src.str(&at, "text", val)?.to_owned()),
            "providers" => {
                c.providers = src.str_list(&at, "providers", val)?;
                have.0 = true;
            }
            "required_venues" => {
                c.required_venues = src.str_list(&at, "required_venues", val)?;
                have.1 = true;
            }
            "effective_from" => c.effective_from = Some(src.instant(&at, "effective_from", val)?),
            "effective_until" => {
                c.effective_until = Some(src.instant(&at, "effective_until", val)?);
                until_span = val.span();
            }
            "interpretations" => {
                let it = src.table(&at, "interpretations", val)?;
                for (name, iv) in src.entries(it) {
                    c.interpretations
                        .push(parse_interpretation(src, &at, name.get_ref(), iv)?);
                }
                if c.interpretations.is_empty() {
                    return Err(src.err(&at, "`interpretations` must not be empty", val.span()));
                }
                have.2 = true;
            }
            other => {
                return Err(src.err(
                    &at,
                    format!(
                        "unknown key `{other}` (expected id, text, providers, required_venues, effective_from, effective_until, interpretations)"
                    ),
                    k.span(),
                ))
            }
        }
    }
    for (present, key) in [
        (have.0, "providers"),
        (have.1, "required_venues"),
        (have.2, "interpretations"),
    ] {
        if !present {
            return Err(src.err(&at, format!("`{key}` is required"), v.span()));
        }
    }
    if let (Some(f), Some(u)) = (c.effective_from, c.effective_until) {
        if u <= f {
            return Err(src.err(
                &at,
                format!(
                    "`effective_until` ({}) must be after `effective_from` ({})",
                    calendar::format_ts(u),
                    calendar::format_ts(f)
                ),
                until_span,
            ));
        }
    }
    Ok(c)
}

fn parse_interpretation(
    src: &Source<'_>,
    clause_at: &str,
    name: &str,
    v: &crate::accounting::source::Value<'_>,
) -> Result<Interpretation> {
    let at = format!("{clause_at}: interpretation `{name}`");
    let t = src.table(&at, name, v)?;
    let mut level = None;
    let mut tags = None;
    let mut description = None;
    for (k, val) in src.entries(t) {
        match k.get_ref().as_ref() {
            "level" => {
                level = Some(match src.str(&at, "level", val)? {
                    "call" => Level::Call,
                    "session" => Level::Session,
                    other => {
                        return Err(src.err(
                            &at,
                            format!("`level` must be \"call\" or \"session\", not {other:?}"),
                            val.span(),
                        ))
                    }
                })
            }
            "tags" => {
                let mut out = Vec::new();
                for s in src.str_list(&at, "tags", val)? {
                    out.push(match s.as_str() {
                        "stateless" => Tag::Stateless,
                        "stateful" => Tag::Stateful,
                        other => {
                            return Err(src.err(
                                &at,
                                format!(
                                    "`tags`: unknown tag {other:?} (expected \"stateless\", \"stateful\")"
                                ),
                                val.span(),
                            ))
                        }
                    });
                }
                tags = Some(out);
            }
            "description" => description = Some(src.str(&at, "description", val)?.to_owned()),
            other => {
                return Err(src.err(
                    &at,
                    format!("unknown key `{other}` (expected level, tags, description)"),
                    k.span(),
                ))
            }
        }
    }
    Ok(Interpretation {
        name: name.to_owned(),
        level: level.ok_or_else(|| src.err(&at, "`level` is required", v.span()))?,
        tags: tags.ok_or_else(|| src.err(&at, "`tags` is required", v.span()))?,
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
id = "model-access-2025"
[[clause]]
id = "stateless-on-azure"
text = "Stateless API calls are hosted on Azure."
providers = ["openai"]
required_venues = ["azure"]
effective_from = "2025-10-28"
effective_until = 2026-04-27
[clause.interpretations.session-level]
level = "session"
tags = ["stateless"]
[clause.interpretations.call-level]
level = "call"
tags = ["stateless"]
[clause.interpretations.all-calls]
level = "call"
tags = ["stateless", "stateful"]
"#;

    fn err(text: &str) -> String {
        Contract::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_design_example() {
        let c = Contract::from_toml(BASE).unwrap();
        assert_eq!(c.id, "model-access-2025");
        let cl = &c.clauses[0];
        assert_eq!(cl.providers, ["openai"]);
        let from = calendar::parse_instant("2025-10-28").unwrap();
        let until = calendar::parse_instant("2026-04-27").unwrap();
        assert_eq!(
            (cl.effective_from, cl.effective_until),
            (Some(from), Some(until))
        );
        let names: Vec<_> = cl.interpretations.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["session-level", "call-level", "all-calls"]);
        assert!(cl.interpretations[0].covers(Tag::Stateful, Tag::Stateless));
        assert!(!cl.interpretations[1].covers(Tag::Stateful, Tag::Stateless));
        assert!(cl.interpretations[2].covers(Tag::Stateful, Tag::Stateful));
        assert_eq!(c.slots().len(), 3);
        assert!(c.check_slot("call-level", "stateless-on-azure").is_ok());
        assert!(c.check_slot("call-level", "nope").is_err());
        assert!(c.check_slot("nope", "stateless-on-azure").is_err());
    }

    #[test]
    fn period_edges_are_inclusive_then_exclusive() {
        let c = Contract::from_toml(BASE).unwrap();
        let cl = &c.clauses[0];
        let from = cl.effective_from.unwrap();
        let until = cl.effective_until.unwrap();
        assert!(!cl.in_force(from - 1));
        assert!(cl.in_force(from));
        assert!(cl.in_force(until - 1));
        assert!(!cl.in_force(until));
    }

    #[test]
    fn errors_name_the_field_and_line() {
        let e = err(&BASE.replace("level = \"session\"", "level = \"both\""));
        assert!(
            e.contains("`level` must be \"call\" or \"session\", not \"both\""),
            "{e}"
        );
        assert!(
            e.contains("interpretation `session-level`") && e.contains("(line 11)"),
            "{e}"
        );
        let e = err(&BASE.replace(
            "tags = [\"stateless\"]\n[clause.interpretations.call",
            "tags = [\"stateles\"]\n[clause.interpretations.call",
        ));
        assert!(
            e.contains("unknown tag \"stateles\"") && e.contains("line 12"),
            "{e}"
        );
        let e = err(&BASE.replace("providers = [\"openai\"]", "providers = []"));
        assert!(e.contains("`providers` must not be empty (line 6)"), "{e}");
        let e = err(&BASE.replace(
            "effective_until = 2026-04-27",
            "effective_until = 2025-10-28",
        ));
        assert!(
            e.contains("must be after `effective_from`") && e.contains("line 9"),
            "{e}"
        );
        let e = err(&BASE.replace("text =", "txt ="));
        assert!(
            e.contains("unknown key `txt`") && e.contains("line 5"),
            "{e}"
        );
        let e = err(&BASE.replace("required_venues = [\"azure\"]\n", ""));
        assert!(e.contains("`required_venues` is required"), "{e}");
        let e = err(&BASE.replace(
            "effective_from = \"2025-10-28\"",
            "effective_from = \"2025-02-30\"",
        ));
        assert!(
            e.contains("effective_from") && e.contains("not a valid calendar date"),
            "{e}"
        );
        assert!(err("id = \"x\"").contains("no clauses"));
        let e = err("id = \"x\"\n[[clause]]\ntext = \"t\"");
        assert!(e.contains("clause 1: `id` is required (line 2)"), "{e}");
        let e = err(&BASE.replace("id = \"model-access-2025\"", ""));
        assert!(e.contains("top level: `id` is required"), "{e}");
        assert!(err("id = \"x\"\n[[clause]]\nid = ").contains("line 3"));
    }

    #[test]
    fn versions_of_a_clause_must_not_overlap() {
        let amended = format!(
            "{BASE}\n[[clause]]\nid = \"stateless-on-azure\"\nproviders = [\"openai\"]\nrequired_venues = [\"azure\", \"aws\"]\neffective_from = \"2026-04-27\"\n[clause.interpretations.call-level]\nlevel = \"call\"\ntags = [\"stateless\"]\n"
        );
        let c = Contract::from_toml(&amended).unwrap();
        assert_eq!(c.clauses.len(), 2);
        assert_eq!(c.clause_ids(), ["stateless-on-azure"]);
        assert_eq!(c.slots().len(), 3);
        let overlapping = amended.replace(
            "effective_from = \"2026-04-27\"",
            "effective_from = \"2026-04-26\"",
        );
        let e = err(&overlapping);
        assert!(e.contains("overlaps") && e.contains("line 20"), "{e}");
        // Another clause id may overlap freely.
        let other = amended.replace("id = \"stateless-on-azure\"\nproviders = [\"openai\"]\nrequired_venues = [\"azure\", \"aws\"]\neffective_from = \"2026-04-27\"", "id = \"other\"\nproviders = [\"openai\"]\nrequired_venues = [\"aws\"]");
        assert_eq!(Contract::from_toml(&other).unwrap().clause_ids().len(), 2);
    }

    #[test]
    fn load_names_the_file_in_every_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contract.toml");
        let load = |p: &std::path::Path| match Contract::load(p) {
            Err(Error::Contract(m)) => m,
            other => panic!("expected a contract error, got {other:?}"),
        };
        let shown = path.display().to_string();
        assert!(load(&path).starts_with(&format!("cannot read {shown}: ")));
        std::fs::write(&path, "id = \"x\"").unwrap();
        let m = load(&path);
        assert!(
            m.starts_with(&format!("{shown}: ")) && m.contains("no clauses"),
            "{m}"
        );
        std::fs::write(&path, BASE).unwrap();
        assert_eq!(
            Contract::load(&path).unwrap(),
            Contract::from_toml(BASE).unwrap()
        );
    }
}
