//! The sessions table ([`crate::stored::sessions`]) as Arrow record batches.

use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef};

use crate::error::Result;
use crate::event::Tag;
use crate::stored::columns::{StrColumn, TextColumn};
use crate::stored::sessions::SessionRow;

use super::build::{dict_slice, dict_type, dict_values, field, int64, text, timestamps, to_i64};
use super::{chunks, internal, Batches};

const DICTS: &[&str] = &["agent", "tenant", "venue", "runtime"];
const COUNTS: &[&str] = &[
    "events",
    "model_calls",
    "tool_calls",
    "state_ops",
    "tool_errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "stateful_events",
    "inner_model_calls",
    "inner_tool_calls",
    "inner_state_ops",
    "inner_input_tokens",
    "inner_output_tokens",
    "inner_cached_tokens",
];

/// The sessions schema: `session_id`, identity, `start`/`end`/`last_ts` (UTC ns timestamps),
/// `duration_ns`, `status`, counts, `session_tag`, `first_seq`.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut f = vec![field("session_id", DataType::Utf8, false)];
            f.extend(DICTS.iter().map(|n| field(n, dict_type(), true)));
            f.push(field("runtime_session_id", DataType::Utf8, true));
            f.push(field("start", super::build::ts_type(), false));
            f.push(field("end", super::build::ts_type(), true));
            f.push(field("last_ts", super::build::ts_type(), false));
            f.push(field("duration_ns", DataType::Int64, false));
            f.push(field("status", dict_type(), true));
            f.extend(COUNTS.iter().map(|n| field(n, DataType::Int64, false)));
            f.push(field("session_tag", dict_type(), false));
            f.push(field("first_seq", DataType::Int64, false));
            Arc::new(Schema::new(f))
        })
        .clone()
}

fn count(s: &SessionRow, name: &str) -> u64 {
    match name {
        "events" => s.events,
        "model_calls" => s.model_calls,
        "tool_calls" => s.tool_calls,
        "state_ops" => s.state_ops,
        "tool_errors" => s.tool_errors,
        "input_tokens" => s.input_tokens,
        "output_tokens" => s.output_tokens,
        "cached_tokens" => s.cached_tokens,
        "stateful_events" => s.stateful_events,
        "inner_model_calls" => s.inner_model_calls,
        "inner_tool_calls" => s.inner_tool_calls,
        "inner_state_ops" => s.inner_state_ops,
        "inner_input_tokens" => s.inner_input_tokens,
        "inner_output_tokens" => s.inner_output_tokens,
        "inner_cached_tokens" => s.inner_cached_tokens,
        _ => unreachable!("unknown count {name}"),
    }
}

fn ident<'a>(s: &'a SessionRow, name: &str) -> Option<&'a str> {
    match name {
        "agent" => s.agent.as_deref(),
        "tenant" => s.tenant.as_deref(),
        "venue" => s.venue.as_deref(),
        "runtime" => s.runtime.as_deref(),
        "status" => s.status.as_deref(),
        "session_tag" => Some(s.session_tag.as_str()),
        _ => unreachable!("unknown field {name}"),
    }
}

fn texts(
    rows: &[SessionRow],
    get: impl Fn(&SessionRow) -> Option<&str>,
) -> (TextColumn, Vec<bool>) {
    let mut col = TextColumn::default();
    let mut valid = Vec::with_capacity(rows.len());
    for r in rows {
        let v = get(r);
        col.push(v.unwrap_or(""));
        valid.push(v.is_some());
    }
    (col, valid)
}

/// Builds the batches of the sessions table.
pub fn batches(rows: &[SessionRow]) -> Result<Batches> {
    let schema = schema();
    let mut dicts: Vec<(StrColumn, ArrayRef)> = Vec::new();
    for name in DICTS.iter().chain(&["status", "session_tag"]) {
        let mut col = StrColumn::default();
        if *name == "session_tag" {
            // A fixed dictionary, the same as the events table's.
            col.intern(Tag::Stateless.as_str());
            col.intern(Tag::Stateful.as_str());
        }
        for r in rows {
            col.push(ident(r, name));
        }
        let values = dict_values(&col.values);
        dicts.push((col, values));
    }
    let (ids, _) = texts(rows, |r| Some(&r.session_id));
    let (rsids, rsid_valid) = texts(rows, |r| r.runtime_session_id.as_deref());
    let batches = chunks(rows.len())
        .map(|(a, b)| {
            let rs = &rows[a..b];
            let d = |k: usize| dict_slice(&dicts[k].0, &dicts[k].1, a, b);
            let mut arrays: Vec<ArrayRef> = vec![text(&ids.data, &ids.offsets[a..=b], None)?];
            for k in 0..DICTS.len() {
                arrays.push(d(k)?);
            }
            arrays.push(text(
                &rsids.data,
                &rsids.offsets[a..=b],
                Some(&rsid_valid[a..b]),
            )?);
            arrays.push(timestamps(rs.iter().map(|r| r.start).collect(), None));
            arrays.push(timestamps(
                rs.iter().map(|r| r.end.unwrap_or(0)).collect(),
                Some(rs.iter().map(|r| r.end.is_some()).collect()),
            ));
            arrays.push(timestamps(rs.iter().map(|r| r.last_ts).collect(), None));
            arrays.push(int64(
                rs.iter().map(SessionRow::duration_ns).collect(),
                None,
            ));
            arrays.push(d(DICTS.len())?);
            for name in COUNTS {
                arrays.push(int64(
                    rs.iter().map(|r| to_i64(count(r, name))).collect(),
                    None,
                ));
            }
            arrays.push(d(DICTS.len() + 1)?);
            arrays.push(int64(
                rs.iter().map(|r| to_i64(r.first_seq)).collect(),
                None,
            ));
            RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(internal)
        })
        .collect::<Result<_>>()?;
    Ok(Batches { schema, batches })
}
