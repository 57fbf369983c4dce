//! Reading contract and price TOML with spans, so every error names the line and the field.
//!
//! Errors are `Error::Contract("<what>: <where>: <field> <problem> (line N)")`, e.g.
//! `contract: clause 1 `stateless-on-azure`: `level` must be "call" or "session", not "both"
//! (line 12)`.

use std::fmt::Display;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::accounting::calendar;
use crate::accounting::money::Decimal;
use crate::error::{read_text, Error, Result};

pub type Value<'i> = Spanned<DeValue<'i>>;

/// Reads a contract or price file and parses it with `parse`; every error is an
/// `Error::Contract` naming the file (`cannot read <path>: ...`, `<path>: <problem>`).
pub fn load<T>(path: &Path, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
    let text = read_text(path, Error::Contract)?;
    parse(&text).map_err(|e| match e {
        // A contract error keeps its cause (a ruleset it names that does not compile).
        e @ Error::Caused { .. } => e.map_message(|m| format!("{}: {m}", path.display())),
        e => Error::Contract(format!("{}: {e}", path.display())),
    })
}

/// A parsed document and its text, for line numbers.
pub struct Source<'t> {
    pub what: &'static str,
    pub text: &'t str,
    /// The byte offset where each line starts (line 1 at 0), found once: [`Source::line`] is a
    /// binary search, so naming the line of every entry stays linear in the file's size.
    line_starts: Vec<usize>,
}

impl<'t> Source<'t> {
    /// Parses `text`; a syntax error names its line.
    pub fn parse(what: &'static str, text: &'t str) -> Result<(Source<'t>, Spanned<DeTable<'t>>)> {
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
            .collect();
        let src = Source {
            what,
            text,
            line_starts,
        };
        let doc = DeTable::parse(text).map_err(|e| {
            let line = e.span().map(|s| format!(" (line {})", src.line(s.start)));
            Error::Contract(format!(
                "{what}: {}{}",
                e.message().trim_end(),
                line.unwrap_or_default()
            ))
        })?;
        Ok((src, doc))
    }

    /// The 1-based line holding byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        // The number of lines starting at or before `end`.
        self.line_starts.partition_point(|&start| start <= end)
    }

    pub fn err(&self, at: &str, msg: impl Display, span: Range<usize>) -> Error {
        Error::Contract(format!(
            "{}: {at}: {msg} (line {})",
            self.what,
            self.line(span.start)
        ))
    }

    /// The entries of a table in the order they were written.
    pub fn entries<'a>(
        &self,
        t: &'a DeTable<'t>,
    ) -> Vec<(&'a Spanned<std::borrow::Cow<'t, str>>, &'a Value<'t>)> {
        let mut entries: Vec<_> = t.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
    }

    pub fn table<'a>(&self, at: &str, key: &str, v: &'a Value<'t>) -> Result<&'a DeTable<'t>> {
        match v.get_ref() {
            DeValue::Table(t) => Ok(t),
            other => Err(self.err(
                at,
                format!("`{key}` must be a table, not {}", other.type_str()),
                v.span(),
            )),
        }
    }

    pub fn array_of_tables<'a>(
        &self,
        at: &str,
        key: &str,
        v: &'a Value<'t>,
    ) -> Result<Vec<&'a Value<'t>>> {
        match v.get_ref() {
            DeValue::Array(items) if items.iter().all(|i| i.get_ref().is_table()) => {
                Ok(items.iter().collect())
            }
            _ => Err(self.err(
                at,
                format!("`{key}` must be an array of tables ([[{key}]])"),
                v.span(),
            )),
        }
    }

    pub fn str<'a>(&self, at: &str, key: &str, v: &'a Value<'t>) -> Result<&'a str> {
        match v.get_ref() {
            DeValue::String(s) if !s.trim().is_empty() => Ok(s.as_ref()),
            DeValue::String(_) => Err(self.err(at, format!("`{key}` must not be empty"), v.span())),
            other => Err(self.err(
                at,
                format!("`{key}` must be a string, not {}", other.type_str()),
                v.span(),
            )),
        }
    }

    /// A non-empty list of non-empty strings, without duplicates.
    pub fn str_list(&self, at: &str, key: &str, v: &Value<'t>) -> Result<Vec<String>> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.err(at, format!("`{key}` must be a list of strings"), v.span()));
        };
        if items.is_empty() {
            return Err(self.err(at, format!("`{key}` must not be empty"), v.span()));
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for item in items.iter() {
            let s = self.str(at, key, item)?;
            if out.iter().any(|o| o == s) {
                return Err(self.err(at, format!("`{key}` lists {s:?} twice"), item.span()));
            }
            out.push(s.to_owned());
        }
        Ok(out)
    }

    /// A UTC date or RFC 3339 time, as a string or a TOML date/datetime, to ns.
    pub fn instant(&self, at: &str, key: &str, v: &Value<'t>) -> Result<i64> {
        let text = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Datetime(d) if d.date.is_some() => d.to_string(),
            other => {
                return Err(self.err(
                    at,
                    format!(
                        "`{key}` must be a date (\"2026-04-27\") or an RFC 3339 time, not {}",
                        other.type_str()
                    ),
                    v.span(),
                ))
            }
        };
        calendar::parse_instant(&text).map_err(|m| self.err(at, format!("`{key}`: {m}"), v.span()))
    }

    /// An exact non-negative decimal amount: a string (`"1.25"`) or an integer; a float is
    /// refused because it is not exact.
    pub fn decimal(&self, at: &str, key: &str, v: &Value<'t>) -> Result<Decimal> {
        let parsed = match v.get_ref() {
            DeValue::String(s) => Decimal::parse(s),
            DeValue::Integer(i) if i.radix() == 10 => Decimal::parse(i.as_str()),
            DeValue::Float(_) => Err(format!(
                "write amounts as strings (\"{}\"), floats are not exact",
                &self.text[v.span()].trim()
            )),
            other => Err(format!(
                "must be a decimal string such as \"1.25\", not {}",
                other.type_str()
            )),
        };
        parsed.map_err(|m| self.err(at, format!("`{key}`: {m}"), v.span()))
    }
}

/// `clause 2 `id`` or `clause 2`.
pub fn label(kind: &str, index: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{kind} {} `{id}`", index + 1),
        None => format!("{kind} {}", index + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_match_a_count_of_newlines() {
        let text = "a = 1\n\nb = 2\r\n[t]\nc = \"x\"\n";
        let (src, _) = Source::parse("test", text).unwrap();
        for offset in 0..=text.len() + 3 {
            let end = offset.min(text.len());
            let expected = text.as_bytes()[..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            assert_eq!(src.line(offset), expected, "offset {offset}");
        }
    }
}
