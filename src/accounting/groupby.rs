//! Group-by dimensions of reports and cost tables, computed over [`EventColumns`].
//!
//! A dimension is an event field (`venue`, `provider`, `model`, `api`, `agent`, `tenant`,
//! `runtime`, `status`, `session_id`, ... any string column; `kind`; `tag`; `session_tag`;
//! `state_holder`) or a UTC time bucket of `ts`: `day` (`2026-04-27`), `week` (ISO 8601, weeks
//! start on Monday: `2026-W18`), `month` (`2026-04`). Group values are strings, or `None` for an
//! absent field. Groups are numbered densely; [`Groups::labels`] gives each group's values.

use std::collections::HashMap;

use crate::accounting::calendar;
use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::stored::columns::{EventColumns, Projection, StrColumn, NULL, STR_FIELDS};

/// One group-by dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A string column, by field name.
    Field(&'static str),
    Kind,
    Tag,
    SessionTag,
    StateHolder,
    Day,
    Week,
    Month,
}

/// Every accepted dimension name, for error messages and docs.
pub fn dim_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = STR_FIELDS.to_vec();
    v.extend([
        "kind",
        "tag",
        "session_tag",
        "state_holder",
        "day",
        "week",
        "month",
    ]);
    v
}

impl Dim {
    pub fn parse(name: &str) -> Result<Dim> {
        Ok(match name {
            "kind" => Dim::Kind,
            "tag" => Dim::Tag,
            "session_tag" => Dim::SessionTag,
            "state_holder" => Dim::StateHolder,
            "day" => Dim::Day,
            "week" => Dim::Week,
            "month" => Dim::Month,
            other => match STR_FIELDS.iter().find(|f| **f == other) {
                Some(f) => Dim::Field(f),
                None => {
                    return Err(Error::validation(
                        "by",
                        format!(
                            "cannot group by {other:?} (expected one of {})",
                            dim_names().join(", ")
                        ),
                    ))
                }
            },
        })
    }

    /// The columns grouping by this dimension reads besides those always held.
    pub fn columns(&self) -> Projection {
        match self {
            Dim::Field(f) => Projection::BASE.with(f),
            _ => Projection::BASE,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Dim::Field(f) => f,
            Dim::Kind => "kind",
            Dim::Tag => "tag",
            Dim::SessionTag => "session_tag",
            Dim::StateHolder => "state_holder",
            Dim::Day => "day",
            Dim::Week => "week",
            Dim::Month => "month",
        }
    }
}

/// Parses a list of dimension names; duplicates are an error.
pub fn parse_dims(names: &[String]) -> Result<Vec<Dim>> {
    let mut dims = Vec::with_capacity(names.len());
    for n in names {
        let d = Dim::parse(n.trim())?;
        if dims.contains(&d) {
            return Err(Error::validation("by", format!("{n:?} is listed twice")));
        }
        dims.push(d);
    }
    Ok(dims)
}

/// Dense group ids for a set of rows, and the values of each group.
#[derive(Clone, Debug, Default)]
pub struct Groups {
    /// `id[k]` is the group of the `k`-th row given to [`Groups::compute`].
    pub id: Vec<u32>,
    /// `labels[g]` are group `g`'s values, one per dimension.
    pub labels: Vec<Vec<Option<String>>>,
}

impl Groups {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Groups `rows` of `cols` by `dims`. `venue` stands in for `cols.venue` (a scenario's
    /// re-venued column).
    pub fn compute(cols: &EventColumns, venue: &StrColumn, dims: &[Dim], rows: &[u32]) -> Groups {
        // Start with one group; refine by one dimension at a time.
        let mut id = vec![0u32; rows.len()];
        // For each group: (parent group, this dimension's label).
        let mut chains: Vec<Vec<Option<String>>> = vec![Vec::new()];
        for dim in dims {
            let (codes, labels) = dim_codes(cols, venue, dim, rows);
            let card = labels.len() as u64;
            let parents = chains.len() as u64;
            let mut next: Vec<Vec<Option<String>>> = Vec::new();
            let assign = |parent: u32, code: u32, next: &mut Vec<Vec<Option<String>>>| {
                let mut l = chains[parent as usize].clone();
                l.push(labels[code as usize].clone());
                next.push(l);
                (next.len() - 1) as u32
            };
            if parents * card <= 1 << 22 {
                let mut table = vec![u32::MAX; (parents * card) as usize];
                for (k, g) in id.iter_mut().enumerate() {
                    let slot = (*g as u64 * card + codes[k] as u64) as usize;
                    if table[slot] == u32::MAX {
                        table[slot] = assign(*g, codes[k], &mut next);
                    }
                    *g = table[slot];
                }
            } else {
                let mut table: HashMap<(u32, u32), u32> = HashMap::new();
                for (k, g) in id.iter_mut().enumerate() {
                    let key = (*g, codes[k]);
                    *g = *table
                        .entry(key)
                        .or_insert_with(|| assign(key.0, key.1, &mut next));
                }
            }
            chains = next;
        }
        if rows.is_empty() && !dims.is_empty() {
            chains.clear();
        }
        Groups { id, labels: chains }
    }

    /// Group ids ordered by their labels (`None` after every value), as pandas sorts groups.
    pub fn sorted(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.labels.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (la, lb) = (&self.labels[a as usize], &self.labels[b as usize]);
            for (x, y) in la.iter().zip(lb) {
                let o = match (x, y) {
                    (Some(x), Some(y)) => x.cmp(y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                };
                if o.is_ne() {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        order
    }
}

/// Dense per-row codes of one dimension (`0..labels.len()`) and the label of each code.
fn dim_codes(
    cols: &EventColumns,
    venue: &StrColumn,
    dim: &Dim,
    rows: &[u32],
) -> (Vec<u32>, Vec<Option<String>>) {
    let tag = |t: crate::event::Tag| t as u32;
    match dim {
        Dim::Field(name) => {
            let col = if *name == "venue" {
                venue
            } else {
                cols.str_column(name).expect("known field")
            };
            let n = col.values.len() as u32;
            let codes = rows
                .iter()
                .map(|&r| match col.codes[r as usize] {
                    NULL => n,
                    c => c,
                })
                .collect();
            let mut labels: Vec<Option<String>> =
                col.values.iter().map(|v| Some(v.to_string())).collect();
            labels.push(None);
            (codes, labels)
        }
        Dim::Kind => {
            let codes = rows.iter().map(|&r| cols.kind[r as usize] as u32).collect();
            (
                codes,
                EventKind::ALL
                    .iter()
                    .map(|k| Some(k.as_str().to_owned()))
                    .collect(),
            )
        }
        Dim::Tag | Dim::SessionTag => {
            let col = if *dim == Dim::Tag {
                &cols.tag
            } else {
                &cols.session_tag
            };
            let codes = rows.iter().map(|&r| tag(col[r as usize])).collect();
            (
                codes,
                vec![Some("stateless".into()), Some("stateful".into())],
            )
        }
        Dim::StateHolder => {
            let codes = rows
                .iter()
                .map(|&r| match cols.state_holder[r as usize] {
                    Some(crate::event::Holder::Provider) => 0,
                    Some(crate::event::Holder::Client) => 1,
                    Some(crate::event::Holder::Unknown) => 2,
                    None => 3,
                })
                .collect();
            (
                codes,
                vec![
                    Some("provider".into()),
                    Some("client".into()),
                    Some("unknown".into()),
                    None,
                ],
            )
        }
        Dim::Day | Dim::Week | Dim::Month => {
            let bucket = |day: i64| match dim {
                Dim::Day => day,
                Dim::Week => calendar::week_monday_of_day(day),
                _ => calendar::month_of_day(day),
            };
            let label = |b: i64| match dim {
                Dim::Day => calendar::format_day(b),
                Dim::Week => calendar::format_week(b),
                _ => calendar::format_month(b),
            };
            let mut dense: HashMap<i64, u32> = HashMap::new();
            let mut labels = Vec::new();
            let mut last: Option<(i64, u32)> = None;
            let codes = rows
                .iter()
                .map(|&r| {
                    let day = calendar::day_of(cols.ts[r as usize]);
                    if let Some((d, c)) = last {
                        if d == day {
                            return c;
                        }
                    }
                    let b = bucket(day);
                    let c = *dense.entry(b).or_insert_with(|| {
                        labels.push(Some(label(b)));
                        (labels.len() - 1) as u32
                    });
                    last = Some((day, c));
                    c
                })
                .collect();
            (codes, labels)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_unknown_or_repeated() {
        let dims = parse_dims(&["venue".into(), "month".into(), "session_tag".into()]).unwrap();
        assert_eq!(dims, [Dim::Field("venue"), Dim::Month, Dim::SessionTag]);
        let e = parse_dims(&["vnue".into()]).unwrap_err().to_string();
        assert!(e.starts_with("by: cannot group by \"vnue\""), "{e}");
        assert!(parse_dims(&["day".into(), "day".into()]).is_err());
    }
}
