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
    let mut coder = DimCoder::new(cols, venue, dim);
    let codes = rows.iter().map(|&r| coder.code(r as usize)).collect();
    (codes, coder.labels)
}

/// Codes one dimension row by row: each row's dense code (`0..labels.len()`), with the label
/// of each code (fixed for fields and verdicts, growing for time buckets as rows meet them).
struct DimCoder<'a> {
    cols: &'a EventColumns,
    /// The string column of a field dimension (`venue` stands in for `cols.venue`).
    field: Option<&'a StrColumn>,
    dim: Dim,
    labels: Vec<Option<String>>,
    /// Time buckets: code of each bucket met, and the last row's (day, code).
    dense: HashMap<i64, u32>,
    last: Option<(i64, u32)>,
}

impl<'a> DimCoder<'a> {
    fn new(cols: &'a EventColumns, venue: &'a StrColumn, dim: &Dim) -> Self {
        let mut field = None;
        let labels: Vec<Option<String>> = match dim {
            Dim::Field(name) => {
                let col = if *name == "venue" {
                    venue
                } else {
                    cols.str_column(name).expect("known field")
                };
                field = Some(col);
                let mut labels: Vec<Option<String>> =
                    col.values.iter().map(|v| Some(v.to_string())).collect();
                labels.push(None);
                labels
            }
            Dim::Kind => EventKind::ALL
                .iter()
                .map(|k| Some(k.as_str().to_owned()))
                .collect(),
            Dim::Tag | Dim::SessionTag => vec![Some("stateless".into()), Some("stateful".into())],
            Dim::StateHolder => vec![
                Some("provider".into()),
                Some("client".into()),
                Some("unknown".into()),
                None,
            ],
            Dim::Day | Dim::Week | Dim::Month => Vec::new(),
        };
        DimCoder {
            cols,
            field,
            dim: dim.clone(),
            labels,
            dense: HashMap::new(),
            last: None,
        }
    }

    #[inline]
    fn code(&mut self, r: usize) -> u32 {
        let cols = self.cols;
        match self.dim {
            Dim::Field(_) => {
                let col = self.field.expect("a field dimension");
                match col.codes[r] {
                    NULL => col.values.len() as u32,
                    c => c,
                }
            }
            Dim::Kind => cols.kind[r] as u32,
            Dim::Tag => cols.tag[r] as u32,
            Dim::SessionTag => cols.session_tag[r] as u32,
            Dim::StateHolder => match cols.state_holder[r] {
                Some(crate::event::Holder::Provider) => 0,
                Some(crate::event::Holder::Client) => 1,
                Some(crate::event::Holder::Unknown) => 2,
                None => 3,
            },
            Dim::Day | Dim::Week | Dim::Month => {
                let day = calendar::day_of(cols.ts[r]);
                if let Some((d, c)) = self.last {
                    if d == day {
                        return c;
                    }
                }
                let dim = &self.dim;
                let b = match dim {
                    Dim::Day => day,
                    Dim::Week => calendar::week_monday_of_day(day),
                    _ => calendar::month_of_day(day),
                };
                let labels = &mut self.labels;
                let c = *self.dense.entry(b).or_insert_with(|| {
                    labels.push(Some(match dim {
                        Dim::Day => calendar::format_day(b),
                        Dim::Week => calendar::format_week(b),
                        _ => calendar::format_month(b),
                    }));
                    (labels.len() - 1) as u32
                });
                self.last = Some((day, c));
                c
            }
        }
    }
}

/// Groups rows one at a time, as they are met (no list of rows kept): the same dense group
/// ids and labels as [`Groups::compute`] over the same rows in the same order.
pub struct GroupIndex<'a> {
    coders: Vec<DimCoder<'a>>,
    /// Per dimension: the id of each (group by the dimensions before it, this code).
    levels: Vec<HashMap<(u32, u32), u32, foldhash::fast::RandomState>>,
    /// Per dimension: the (parent, code) of each id, in the order the ids were given.
    keys: Vec<Vec<(u32, u32)>>,
    /// The last row's codes and group.
    last: Option<(Vec<u32>, u32)>,
    codes: Vec<u32>,
}

impl<'a> GroupIndex<'a> {
    /// An index grouping rows of `cols` by `dims` (`venue` stands in for `cols.venue`).
    pub fn new(cols: &'a EventColumns, venue: &'a StrColumn, dims: &[Dim]) -> Self {
        GroupIndex {
            coders: dims.iter().map(|d| DimCoder::new(cols, venue, d)).collect(),
            levels: dims.iter().map(|_| HashMap::default()).collect(),
            keys: dims.iter().map(|_| Vec::new()).collect(),
            last: None,
            codes: vec![0; dims.len()],
        }
    }

    /// The group of row `r`.
    #[inline]
    pub fn group(&mut self, r: usize) -> u32 {
        for (c, coder) in self.codes.iter_mut().zip(&mut self.coders) {
            *c = coder.code(r);
        }
        if let Some((codes, g)) = &self.last {
            if *codes == self.codes {
                return *g;
            }
        }
        let mut g = 0u32;
        for ((level, keys), &code) in self.levels.iter_mut().zip(&mut self.keys).zip(&self.codes) {
            let next = keys.len() as u32;
            g = *level.entry((g, code)).or_insert_with(|| {
                keys.push((g, code));
                next
            });
        }
        match &mut self.last {
            Some((codes, last)) => {
                codes.copy_from_slice(&self.codes);
                *last = g;
            }
            None => self.last = Some((self.codes.clone(), g)),
        }
        g
    }

    /// How many groups so far (one without dimensions).
    pub fn len(&self) -> usize {
        self.keys.last().map_or(1, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each group's labels, one per dimension, by group id.
    pub fn labels(&self) -> Vec<Vec<Option<String>>> {
        let mut chains: Vec<Vec<Option<String>>> = vec![Vec::new()];
        for (keys, coder) in self.keys.iter().zip(&self.coders) {
            chains = keys
                .iter()
                .map(|&(parent, code)| {
                    let mut l = chains[parent as usize].clone();
                    l.push(coder.labels[code as usize].clone());
                    l
                })
                .collect();
        }
        chains
    }

    /// The groups met so far as [`Groups`] without per-row ids (`id` empty).
    pub fn into_groups(self) -> Groups {
        Groups {
            id: Vec::new(),
            labels: self.labels(),
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

    #[test]
    fn grouping_row_by_row_gives_the_groups_of_a_whole_list() {
        use crate::classify::Ruleset;
        use crate::event::Event;
        let mut cols = EventColumns::default();
        let venues = [Some("azure"), None, Some("aws"), Some("azure")];
        for i in 0..40u64 {
            let kind = if i % 5 == 0 {
                EventKind::ToolCall
            } else {
                EventKind::ModelCall
            };
            let mut e = Event::new(kind);
            e.session_id = Some(format!("s{}", i / 7).into());
            e.ts = 1_777_000_000_000_000_000 + (i as i64) * 86_400_000_000_000 * 3;
            e.venue = venues[(i % 4) as usize].map(Into::into);
            if kind == EventKind::ModelCall {
                e.provider = Some("openai".into());
                e.model = Some("gpt-5".into());
                e.api = Some("chat.completions".into());
            } else {
                e.tool = Some("t".into());
            }
            let e = e.finish().unwrap();
            let c = Ruleset::builtin_default().classify(&e);
            cols.push(i + 1, &e, &c);
        }
        cols.derive_session_tags();
        let rows: Vec<u32> = (0..40).filter(|r| r % 3 != 1).collect();
        let all = [
            vec![],
            vec![Dim::Field("venue")],
            vec![Dim::Month, Dim::Field("venue")],
            vec![Dim::Field("venue"), Dim::Week, Dim::Kind],
            vec![Dim::Day, Dim::SessionTag, Dim::StateHolder, Dim::Tag],
        ];
        for dims in all {
            let whole = Groups::compute(&cols, &cols.venue, &dims, &rows);
            let mut index = GroupIndex::new(&cols, &cols.venue, &dims);
            let ids: Vec<u32> = rows.iter().map(|&r| index.group(r as usize)).collect();
            assert_eq!(ids, whole.id, "{dims:?}");
            assert_eq!(index.len(), whole.len(), "{dims:?}");
            assert_eq!(index.into_groups().labels, whole.labels, "{dims:?}");
        }
        // No rows: no groups when grouping, one (empty) group without dimensions.
        let dims = [Dim::Field("venue")];
        assert_eq!(GroupIndex::new(&cols, &cols.venue, &dims).len(), 0);
        assert!(Groups::compute(&cols, &cols.venue, &dims, &[]).is_empty());
        assert_eq!(
            GroupIndex::new(&cols, &cols.venue, &[]).labels(),
            [Vec::<Option<String>>::new()]
        );
    }
}
