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
//!
//! An interpretation may name the ruleset it reads the calls under (`ruleset = "strict"`,
//! `"default"`, a name given to the parser, or the path of a ruleset file, relative to the
//! contract file): the tags it judges by are then those of every event classified again under
//! that ruleset ([`crate::stored::reading`]), session tags included. Without `ruleset` it
//! judges by the classification stored in the ledger.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::accounting::calendar;
use crate::accounting::source::{self, label, Source};
use crate::classify::Ruleset;
use crate::error::{Error, Result};
use crate::event::Tag;
use crate::stored::reading::fingerprint;

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
    /// The ruleset the calls are read under; `None`: as classified in the ledger.
    pub ruleset: Option<RulesetRef>,
}

/// The ruleset an interpretation names, resolved.
#[derive(Clone, Debug)]
pub struct RulesetRef {
    /// As written in the contract (`"strict"`, `"rulesets/mine.toml"`, ...).
    pub name: String,
    pub ruleset: Arc<Ruleset>,
    /// Its [`fingerprint`]: what readings are cached by.
    pub key: String,
}

impl PartialEq for RulesetRef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.key == other.key
    }
}

impl Eq for RulesetRef {}

/// Where the `ruleset` values of a contract are found: `"default"` and `"strict"` are the
/// built-in rulesets; then the names in `named`; anything else is the path of a ruleset file
/// (it must end in `.toml` or contain a `/`), relative to `base`.
#[derive(Clone, Debug, Default)]
pub struct Rulesets {
    /// The directory relative paths start from: the contract file's for [`Contract::load`];
    /// `None`: the current directory.
    pub base: Option<PathBuf>,
    /// Rulesets given by name (e.g. compiled from text).
    pub named: Vec<(String, Arc<Ruleset>)>,
}

impl Rulesets {
    /// Resolves one `ruleset` value. `Err` is the problem, for the caller to place.
    fn resolve(&self, value: &str, loaded: &mut Vec<(PathBuf, RulesetRef)>) -> Result<RulesetRef> {
        let found = |ruleset: Arc<Ruleset>| RulesetRef {
            name: value.to_owned(),
            key: fingerprint(&ruleset),
            ruleset,
        };
        match value {
            "default" => return Ok(found(Ruleset::builtin_default())),
            "strict" => return Ok(found(Ruleset::builtin_strict())),
            _ => {}
        }
        if let Some((_, r)) = self.named.iter().find(|(n, _)| n == value) {
            return Ok(found(Arc::clone(r)));
        }
        if !(value.ends_with(".toml") || value.contains('/') || value.contains('\\')) {
            let mut names = vec!["\"default\"".to_owned(), "\"strict\"".to_owned()];
            names.extend(self.named.iter().map(|(n, _)| format!("{n:?}")));
            return Err(Error::Contract(format!(
                "unknown ruleset {value:?} (expected {}, or the path of a ruleset file ending in .toml)",
                names.join(", ")
            )));
        }
        let path = match &self.base {
            Some(base) => base.join(value),
            None => PathBuf::from(value),
        };
        if let Some((_, r)) = loaded.iter().find(|(p, _)| *p == path) {
            return Ok(RulesetRef {
                name: value.to_owned(),
                ..r.clone()
            });
        }
        let text = crate::error::read_text(&path, Error::Contract)?;
        let ruleset = Ruleset::from_toml(&text).map_err(|e| {
            Error::caused(
                Error::Contract(format!("{} is not a valid ruleset", path.display())),
                e.map_message(|m| format!("{}: {m}", path.display())),
            )
        })?;
        let r = found(Arc::new(ruleset));
        loaded.push((path, r.clone()));
        Ok(r)
    }
}

impl Interpretation {
    /// The ruleset's name as written, if the interpretation names one.
    pub fn ruleset_name(&self) -> Option<&str> {
        self.ruleset.as_ref().map(|r| r.name.as_str())
    }

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
    /// Parses and validates contract TOML; ruleset paths are relative to the current
    /// directory. Errors are `Error::Contract` naming the clause, the field and the line (a
    /// ruleset file that does not compile is the cause of that error).
    pub fn from_toml(text: &str) -> Result<Contract> {
        parse(text, &Rulesets::default())
    }

    /// [`Contract::from_toml`] with the rulesets found as `rulesets` says.
    pub fn from_toml_with(text: &str, rulesets: &Rulesets) -> Result<Contract> {
        parse(text, rulesets)
    }

    /// Reads and parses a contract file, ruleset paths relative to its directory; errors are
    /// `Error::Contract` naming the file.
    pub fn load(path: &Path) -> Result<Contract> {
        Contract::load_with(path, Vec::new())
    }

    /// [`Contract::load`] with rulesets given by name besides the built-in ones.
    pub fn load_with(path: &Path, named: Vec<(String, Arc<Ruleset>)>) -> Result<Contract> {
        let rulesets = Rulesets {
            base: Some(path.parent().unwrap_or(Path::new("")).to_path_buf()),
            named,
        };
        source::load(path, |text| parse(text, &rulesets))
    }

    /// The distinct rulesets the interpretations name, in order of first appearance.
    pub fn rulesets(&self) -> Vec<&RulesetRef> {
        let mut out: Vec<&RulesetRef> = Vec::new();
        for i in self.clauses.iter().flat_map(|c| &c.interpretations) {
            if let Some(r) = &i.ruleset {
                if !out.iter().any(|o| o.key == r.key) {
                    out.push(r);
                }
            }
        }
        out
    }

    /// Each interpretation's ruleset name as written (`None`: as recorded), in report order.
    /// An interpretation names the same ruleset in every clause (checked when parsing).
    pub fn interpretation_rulesets(&self) -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        for i in self.clauses.iter().flat_map(|c| &c.interpretations) {
            if !out.iter().any(|(n, _)| *n == i.name) {
                out.push((i.name.clone(), i.ruleset_name().map(str::to_owned)));
            }
        }
        out
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

fn parse(text: &str, rulesets: &Rulesets) -> Result<Contract> {
    let (src, doc) = Source::parse("contract", text)?;
    let mut cx = Resolver {
        rulesets,
        loaded: Vec::new(),
    };
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
                    clauses.push(parse_clause(&src, &mut cx, i, item)?);
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
    let mut named: Vec<(&Interpretation, usize)> = Vec::new();
    for c in &clauses {
        for i in &c.interpretations {
            match named.iter().find(|(n, _)| n.name == i.name) {
                Some((first, line)) if first.ruleset != i.ruleset => {
                    let show = |r: Option<&str>| r.map_or("none".to_owned(), |r| format!("{r:?}"));
                    return Err(Error::Contract(format!(
                        "contract: clause `{}`: interpretation `{}`: `ruleset` is {} here but {} at line {} (an interpretation reads every clause under one ruleset) (line {})",
                        c.id,
                        i.name,
                        show(i.ruleset_name()),
                        show(first.ruleset_name()),
                        line,
                        c.line
                    )));
                }
                Some(_) => {}
                None => named.push((i, c.line)),
            }
        }
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

/// Resolves `ruleset` values while parsing, each file loaded once.
struct Resolver<'r> {
    rulesets: &'r Rulesets,
    loaded: Vec<(PathBuf, RulesetRef)>,
}

fn parse_clause(
    src: &Source<'_>,
    cx: &mut Resolver<'_>,
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
                        .push(parse_interpretation(src, cx, &at, name.get_ref(), iv)?);
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
    cx: &mut Resolver<'_>,
    clause_at: &str,
    name: &str,
    v: &crate::accounting::source::Value<'_>,
) -> Result<Interpretation> {
    let at = format!("{clause_at}: interpretation `{name}`");
    let t = src.table(&at, name, v)?;
    let mut level = None;
    let mut tags = None;
    let mut description = None;
    let mut ruleset = None;
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
            "ruleset" => {
                let value = src.str(&at, "ruleset", val)?;
                let place = |m: &str| {
                    src.err(&at, format!("`ruleset`: {m}"), val.span())
                        .to_string()
                };
                ruleset = Some(
                    cx.rulesets
                        .resolve(value, &mut cx.loaded)
                        .map_err(|e| e.map_message(place))?,
                );
            }
            other => {
                return Err(src.err(
                    &at,
                    format!("unknown key `{other}` (expected level, tags, description, ruleset)"),
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
        ruleset,
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

    fn data(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(rel)
    }

    #[test]
    fn interpretations_name_rulesets_relative_to_the_contract() {
        let c = Contract::load(&data("contracts/per-ruleset.toml")).unwrap();
        let names: Vec<(String, Option<String>)> = c.interpretation_rulesets();
        assert_eq!(names[0], ("call-level".into(), None));
        assert_eq!(
            names[2],
            (
                "call-level-chains-strict".into(),
                Some("../rulesets/chains-strict.toml".into())
            )
        );
        let distinct = c.rulesets();
        assert_eq!(distinct.len(), 2, "each file loaded once, named twice");
        assert_eq!(distinct[0].ruleset.name(), "chains");
        assert_eq!(distinct[1].ruleset.name(), "chains-strict");
        // The same text parsed elsewhere resolves relative to the current directory (the crate
        // root under cargo test), or to the given base.
        let text = std::fs::read_to_string(data("contracts/per-ruleset.toml")).unwrap();
        let e = Contract::from_toml(&text).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot read ../rulesets/chains.toml"),
            "{e}"
        );
        let based = Contract::from_toml_with(
            &text,
            &Rulesets {
                base: Some(data("contracts")),
                named: Vec::new(),
            },
        )
        .unwrap();
        assert_eq!(based, c);
    }

    #[test]
    fn builtin_and_named_rulesets() {
        let text = BASE.replace(
            "tags = [\"stateless\"]\n[clause.interpretations.call-level]",
            "tags = [\"stateless\"]\nruleset = \"strict\"\n[clause.interpretations.call-level]",
        );
        let c = Contract::from_toml(&text).unwrap();
        let i = &c.clauses[0].interpretations[0];
        assert_eq!(i.ruleset_name(), Some("strict"));
        assert!(Arc::ptr_eq(
            &i.ruleset.as_ref().unwrap().ruleset,
            &Ruleset::builtin_strict()
        ));
        assert_eq!(c.clauses[0].interpretations[1].ruleset, None);
        let mine = Arc::new(Ruleset::from_toml("name = \"mine\"").unwrap());
        let named = Rulesets {
            base: None,
            named: vec![("mine".into(), Arc::clone(&mine))],
        };
        let c =
            Contract::from_toml_with(&text.replace("\"strict\"\n", "\"mine\"\n"), &named).unwrap();
        let r = c.clauses[0].interpretations[0].ruleset.as_ref().unwrap();
        assert!(Arc::ptr_eq(&r.ruleset, &mine));
        assert_eq!(r.key, fingerprint(&mine));
    }

    #[test]
    fn ruleset_errors_name_the_line_and_chain_the_ruleset_error() {
        let with = |value: &str| {
            BASE.replace(
                "level = \"session\"",
                &format!("level = \"session\"\nruleset = {value}"),
            )
        };
        let e = err(&with("\"lenient\""));
        assert!(
            e.contains("interpretation `session-level`: `ruleset`: unknown ruleset \"lenient\" (expected \"default\", \"strict\", or the path")
                && e.ends_with("(line 12)"),
            "{e}"
        );
        let e = err(&with("3"));
        assert!(
            e.contains("`ruleset` must be a string") && e.contains("line 12"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = Contract::from_toml_with(
            &with("\"missing.toml\""),
            &Rulesets {
                base: Some(dir.path().to_path_buf()),
                named: Vec::new(),
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::Contract(_)), "{e:?}");
        assert!(
            e.to_string().contains("`ruleset`: cannot read ")
                && e.to_string().contains("missing.toml")
                && e.to_string().ends_with("(line 12)"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("bad.toml"),
            "[[rule]]\nid = \"x\"\nstat = 1\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("c.toml"), with("\"bad.toml\"")).unwrap();
        match Contract::load(&dir.path().join("c.toml")).unwrap_err() {
            Error::Caused { error, cause } => {
                let (e, c) = (error.to_string(), cause.to_string());
                assert!(matches!(*error, Error::Contract(_)), "{e}");
                assert!(
                    e.contains("c.toml: contract: clause 1 `stateless-on-azure`: interpretation `session-level`: `ruleset`: ")
                        && e.contains("bad.toml is not a valid ruleset (line 12)"),
                    "{e}"
                );
                assert!(matches!(*cause, Error::Ruleset(_)), "{c}");
                assert!(
                    c.contains("bad.toml: ") && c.contains("unknown key `stat` (line 3)"),
                    "{c}"
                );
            }
            other => panic!("expected a chained error, got {other:?}"),
        }
        // An interpretation reads every clause under one ruleset.
        let two = format!(
            "{}\n[[clause]]\nid = \"b\"\nproviders = [\"openai\"]\nrequired_venues = [\"aws\"]\n[clause.interpretations.session-level]\nlevel = \"session\"\ntags = [\"stateless\"]\n",
            with("\"strict\"")
        );
        let e = err(&two);
        assert!(
            e.contains("clause `b`: interpretation `session-level`: `ruleset` is none here but \"strict\" at line 3")
                && e.ends_with("(line 21)"),
            "{e}"
        );
    }
}
