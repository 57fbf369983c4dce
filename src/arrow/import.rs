//! Arrow record batches of events read back into [`EventColumns`]: the columns of an exported
//! dataset (docs/scale.md), as pyarrow, Spark's `mapInArrow` or DuckDB hand them over, so the
//! rules engine and the report engine run on them without a ledger.
//!
//! Columns are matched by name; each string column may be `utf8`, `large_utf8`, `utf8_view` or
//! `dictionary<int*, utf8>` (a dataset's own type; Spark sends plain strings), `ts` a
//! timestamp of any unit or `int64` ns, counts any integer type. `kind` and `ts` are required;
//! any other column may be missing (read as null / absent), so a projection of the columns a
//! computation needs is enough. A dictionary column is re-coded once per batch, not per row.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use crate::error::{Error, Result};
use crate::event::{EventKind, Holder, StateKind, StateKinds, Tag};
use crate::stored::columns::{EventColumns, StrColumn, TextColumn, NULL, STR_FIELDS};

fn bad(column: &str, what: impl std::fmt::Display) -> Error {
    Error::validation("batch", format!("column {column:?}: {what}"))
}

/// A string column's values, whatever its Arrow string type.
enum Strs<'a> {
    Plain(Box<dyn Fn(usize) -> Option<&'a str> + 'a>),
    /// Dictionary: the key of a row (`None`: null), the dictionary's values and their count.
    Dict(
        Box<dyn Fn(usize) -> Option<usize> + 'a>,
        Box<dyn Fn(usize) -> Option<&'a str> + 'a>,
        usize,
    ),
}

fn strs<'a>(name: &str, a: &'a ArrayRef) -> Result<Strs<'a>> {
    fn plain<'a>(a: &'a dyn Array) -> Option<Box<dyn Fn(usize) -> Option<&'a str> + 'a>> {
        Some(match a.data_type() {
            DataType::Utf8 => {
                let s = a.as_string::<i32>();
                Box::new(move |i| s.is_valid(i).then(|| s.value(i)))
            }
            DataType::LargeUtf8 => {
                let s = a.as_string::<i64>();
                Box::new(move |i| s.is_valid(i).then(|| s.value(i)))
            }
            DataType::Utf8View => {
                let s = a.as_string_view();
                Box::new(move |i| s.is_valid(i).then(|| s.value(i)))
            }
            _ => return None,
        })
    }
    if let Some(f) = plain(a.as_ref()) {
        return Ok(Strs::Plain(f));
    }
    macro_rules! dict {
        ($t:ty) => {{
            let d = a.as_dictionary::<$t>();
            let values = plain(d.values().as_ref())
                .ok_or_else(|| bad(name, "a dictionary of something other than strings"))?;
            let keys = d.keys();
            let key = move |i: usize| d.is_valid(i).then(|| keys.value(i) as usize);
            Ok(Strs::Dict(Box::new(key), values, d.values().len()))
        }};
    }
    match a.data_type() {
        DataType::Dictionary(k, _) => match **k {
            DataType::Int8 => dict!(Int8Type),
            DataType::Int16 => dict!(Int16Type),
            DataType::Int32 => dict!(Int32Type),
            DataType::Int64 => dict!(Int64Type),
            DataType::UInt32 => dict!(UInt32Type),
            _ => Err(bad(name, "a dictionary with an unsupported key type")),
        },
        other => Err(bad(name, format!("expected strings, got {other}"))),
    }
}

/// Calls `f(row, value)` for every row of a string column.
fn each_str(name: &str, a: &ArrayRef, mut f: impl FnMut(Option<&str>) -> Result<()>) -> Result<()> {
    match strs(name, a)? {
        Strs::Plain(get) => (0..a.len()).try_for_each(|i| f(get(i))),
        Strs::Dict(key, values, _) => (0..a.len()).try_for_each(|i| f(key(i).and_then(&values))),
    }
}

/// Appends a string column to `col`; a dictionary column is interned once per distinct value.
fn push_strs(name: &str, a: &ArrayRef, col: &mut StrColumn) -> Result<()> {
    match strs(name, a)? {
        Strs::Plain(get) => (0..a.len()).for_each(|i| col.push(get(i))),
        Strs::Dict(key, values, n) => {
            // Only the values the rows use are interned (a dataset's dictionary spans the
            // whole table, most of it not in this batch), in order of first use.
            const UNSEEN: u32 = NULL - 1;
            let mut codes = vec![UNSEEN; n];
            col.codes.reserve(a.len());
            for i in 0..a.len() {
                let code = match key(i).and_then(|k| codes.get_mut(k).map(|c| (k, c))) {
                    Some((k, c)) => {
                        if *c == UNSEEN {
                            *c = values(k).map_or(NULL, |v| col.intern(v));
                        }
                        *c
                    }
                    None => NULL,
                };
                col.codes.push(code);
            }
        }
    }
    Ok(())
}

/// An integer column as `i64` values (`None`: null).
fn ints(name: &str, a: &ArrayRef) -> Result<Vec<Option<i64>>> {
    macro_rules! prim {
        ($t:ty) => {
            a.as_primitive::<$t>()
                .iter()
                .map(|v| v.map(|v| v as i64))
                .collect()
        };
    }
    Ok(match a.data_type() {
        DataType::Int64 => prim!(Int64Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int8 => prim!(Int8Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => a
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX)))
            .collect(),
        DataType::Timestamp(unit, _) => {
            let scale = match unit {
                TimeUnit::Second => 1_000_000_000,
                TimeUnit::Millisecond => 1_000_000,
                TimeUnit::Microsecond => 1_000,
                TimeUnit::Nanosecond => 1,
            };
            let raw: Vec<Option<i64>> = match unit {
                TimeUnit::Second => prim!(TimestampSecondType),
                TimeUnit::Millisecond => prim!(TimestampMillisecondType),
                TimeUnit::Microsecond => prim!(TimestampMicrosecondType),
                TimeUnit::Nanosecond => prim!(TimestampNanosecondType),
            };
            raw.into_iter()
                .map(|v| v.map(|v| v.saturating_mul(scale)))
                .collect()
        }
        other => return Err(bad(name, format!("expected integers, got {other}"))),
    })
}

fn bools(name: &str, a: &ArrayRef) -> Result<Vec<bool>> {
    match a.data_type() {
        DataType::Boolean => Ok(a.as_boolean().iter().map(|v| v.unwrap_or(false)).collect()),
        other => Err(bad(name, format!("expected booleans, got {other}"))),
    }
}

fn texts(name: &str, a: &ArrayRef, col: &mut TextColumn) -> Result<()> {
    each_str(name, a, |v| {
        col.push(v.unwrap_or(""));
        Ok(())
    })
}

/// The events of `batch` as columns (appended to `cols`; session tags as the batch gives
/// them, or each event's own `session_stateful` verdict when it has no `session_tag` column —
/// call [`EventColumns::derive_session_tags`] to derive them over the rows read).
pub fn push_batch(cols: &mut EventColumns, batch: &RecordBatch) -> Result<()> {
    push_columns(cols, batch, &|_| true)
}

/// [`push_batch`] reading only the columns `wanted` names, besides `kind` and `ts` (required,
/// always read): the other columns of the batch are neither read nor checked, and their
/// columns in `cols` are left as they were — shorter than `cols.len`, so `cols` is then only
/// for code that reads the wanted columns (a classification reading its ruleset's inputs).
pub fn push_columns(
    cols: &mut EventColumns,
    batch: &RecordBatch,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let n = batch.num_rows();
    // `Some(column)` for a wanted column (`None` inside: missing, read as absent).
    let col = |name: &str| wanted(name).then(|| batch.column_by_name(name));
    let need = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| bad(name, "is missing"))
    };
    let before = cols.len;
    // Kinds and timestamps first: they are required.
    cols.kind.reserve(n);
    push_kinds(need("kind")?, &mut cols.kind)?;
    let ts = ints("ts", need("ts")?)?;
    if ts.iter().any(Option::is_none) {
        return Err(bad("ts", "has a null"));
    }
    cols.ts.extend(ts.into_iter().map(|t| t.unwrap_or(0)));
    match col("seq") {
        Some(Some(a)) => cols.seq.extend(
            ints("seq", a)?
                .into_iter()
                .map(|v| v.unwrap_or(0).max(0) as u64),
        ),
        Some(None) => cols.seq.extend(std::iter::repeat_n(0, n)),
        None => {}
    }
    match col("id") {
        Some(Some(a)) => texts("id", a, &mut cols.id)?,
        Some(None) => (0..n).for_each(|_| cols.id.push("")),
        None => {}
    }
    match col("duration_ns") {
        Some(Some(a)) => cols.duration_ns.extend(ints("duration_ns", a)?),
        Some(None) => cols.duration_ns.extend(std::iter::repeat_n(None, n)),
        None => {}
    }
    for &name in STR_FIELDS {
        let target = str_column_mut(cols, name).expect("a string field");
        match col(name) {
            Some(Some(a)) => push_strs(name, a, target)?,
            Some(None) => target.codes.extend(std::iter::repeat_n(NULL, n)),
            None => {}
        }
    }
    for (name, target) in [
        ("input_tokens", &mut cols.input_tokens),
        ("output_tokens", &mut cols.output_tokens),
        ("cached_tokens", &mut cols.cached_tokens),
        ("bytes", &mut cols.bytes),
    ] {
        match col(name) {
            Some(Some(a)) => {
                let v = ints(name, a)?;
                if v.iter().flatten().any(|&x| x < 0) {
                    return Err(bad(name, "has a negative count"));
                }
                target.extend(v.into_iter().map(|x| x.unwrap_or(0) as u64));
            }
            Some(None) => target.extend(std::iter::repeat_n(0, n)),
            None => {}
        }
    }
    let tags = |a: Option<&ArrayRef>, name: &str, out: &mut Vec<Tag>| -> Result<()> {
        match a {
            Some(a) => each_str(name, a, |v| {
                out.push(match v {
                    Some(t) => Tag::parse(t)?,
                    None => Tag::Stateless,
                });
                Ok(())
            }),
            None => {
                out.extend(std::iter::repeat_n(Tag::Stateless, n));
                Ok(())
            }
        }
    };
    if let Some(a) = col("tag") {
        tags(a, "tag", &mut cols.tag)?;
    }
    for (name, target) in [
        ("consumes_state", &mut cols.consumes_state),
        ("creates_state", &mut cols.creates_state),
        ("session_stateful", &mut cols.session_stateful),
    ] {
        match col(name) {
            Some(Some(a)) => target.extend(bools(name, a)?),
            Some(None) => target.extend(std::iter::repeat_n(false, n)),
            None => {}
        }
    }
    match col("session_tag") {
        Some(Some(a)) => tags(Some(a), "session_tag", &mut cols.session_tag)?,
        // Each event's own verdict, when it was read.
        Some(None) if cols.session_stateful.len() == before + n => {
            let own = &cols.session_stateful[before..];
            let derived: Vec<Tag> = own
                .iter()
                .map(|&s| if s { Tag::Stateful } else { Tag::Stateless })
                .collect();
            cols.session_tag.extend(derived);
        }
        Some(None) => cols
            .session_tag
            .extend(std::iter::repeat_n(Tag::Stateless, n)),
        None => {}
    }
    match col("state_holder") {
        Some(Some(a)) => each_str("state_holder", a, |v| {
            cols.state_holder.push(v.map(Holder::parse).transpose()?);
            Ok(())
        })?,
        Some(None) => cols.state_holder.extend(std::iter::repeat_n(None, n)),
        None => {}
    }
    if let Some(a) = col("state_kinds") {
        cols.state_kinds.extend(state_kinds(a, n)?);
    }
    for (name, target) in [("request", &mut cols.request), ("attrs", &mut cols.attrs)] {
        match col(name) {
            Some(Some(a)) => texts(name, a, target)?,
            Some(None) => (0..n).for_each(|_| target.push("")),
            None => {}
        }
    }
    cols.len += n;
    Ok(())
}

/// Appends the `kind` column (required, never null); a dictionary value is parsed once.
fn push_kinds(a: &ArrayRef, out: &mut Vec<EventKind>) -> Result<()> {
    let null = || bad("kind", "has a null");
    match strs("kind", a)? {
        Strs::Plain(get) => {
            for i in 0..a.len() {
                out.push(EventKind::parse(get(i).ok_or_else(null)?)?);
            }
        }
        Strs::Dict(key, values, n) => {
            let mut parsed: Vec<Option<EventKind>> = vec![None; n];
            for i in 0..a.len() {
                let k = key(i).filter(|&k| k < n).ok_or_else(null)?;
                let kind = match parsed[k] {
                    Some(kind) => kind,
                    None => *parsed[k].insert(EventKind::parse(values(k).ok_or_else(null)?)?),
                };
                out.push(kind);
            }
        }
    }
    Ok(())
}

/// `state_kinds` (a list of kind names per row), when the batch has it.
fn state_kinds(a: Option<&ArrayRef>, n: usize) -> Result<Vec<StateKinds>> {
    let Some(a) = a else {
        return Ok(vec![StateKinds::EMPTY; n]);
    };
    let (offsets, values): (Vec<usize>, &ArrayRef) = match a.data_type() {
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            (
                l.offsets().iter().map(|&o| o as usize).collect(),
                l.values(),
            )
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            (
                l.offsets().iter().map(|&o| o as usize).collect(),
                l.values(),
            )
        }
        other => return Err(bad("state_kinds", format!("expected a list, got {other}"))),
    };
    let mut names = Vec::with_capacity(values.len());
    each_str("state_kinds", values, |v| {
        names.push(v.map(StateKind::parse).transpose()?);
        Ok(())
    })?;
    Ok((0..n)
        .map(|i| {
            let mut k = StateKinds::EMPTY;
            for name in names[offsets[i]..offsets[i + 1]].iter().flatten() {
                k.insert(*name);
            }
            k
        })
        .collect())
}

fn str_column_mut<'a>(cols: &'a mut EventColumns, name: &str) -> Option<&'a mut StrColumn> {
    Some(match name {
        "session_id" => &mut cols.session_id,
        "parent_id" => &mut cols.parent_id,
        "agent" => &mut cols.agent,
        "tenant" => &mut cols.tenant,
        "venue" => &mut cols.venue,
        "status" => &mut cols.status,
        "runtime" => &mut cols.runtime,
        "runtime_session_id" => &mut cols.runtime_session_id,
        "provider" => &mut cols.provider,
        "model" => &mut cols.model,
        "api" => &mut cols.api,
        "endpoint" => &mut cols.endpoint,
        "tool" => &mut cols.tool,
        "tool_kind" => &mut cols.tool_kind,
        "effect" => &mut cols.effect,
        "mcp_session_id" => &mut cols.mcp_session_id,
        "op" => &mut cols.op,
        "store" => &mut cols.store,
        "holder" => &mut cols.holder,
        "scope" => &mut cols.scope,
        "key" => &mut cols.key,
        "ruleset" => &mut cols.ruleset,
        "ruleset_digest" => &mut cols.ruleset_digest,
        _ => return None,
    })
}

/// The events of `batches` as columns, session tags derived over all of them (a session
/// whose events are all in `batches` gets the tag the ledger gives it).
pub fn event_columns(batches: &[RecordBatch]) -> Result<EventColumns> {
    let mut cols = EventColumns::default();
    for b in batches {
        push_batch(&mut cols, b)?;
    }
    cols.derive_session_tags();
    Ok(cols)
}
