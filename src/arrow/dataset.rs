//! Computations over parts of an exported dataset (docs/scale.md), as a distributed engine
//! hands them to a task: a contract report of the events of whole sessions, and the chain of
//! one ledger re-derived from its `record` and `hash` columns.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::accounting::contract::Contract;
use crate::accounting::groupby::Dim;
use crate::accounting::pricing::PriceTable;
use crate::accounting::report::report_table;
use crate::accounting::result::ResultTable;
use crate::accounting::window::Window;
use crate::error::{Error, Result};
use crate::ledger::{verify_rows, Head, Verification};

/// The columns [`report`] reads to judge, price and group the events (the rest may be left
/// out of the batches: a missing column reads as null): the recorded classification, the
/// judged and priced fields, the `by` dimensions, and the columns each ruleset an
/// interpretation reads the calls under classifies them from
/// ([`super::classify::columns_read`]). What a distributed engine needs to move to the task,
/// in the dataset's column names.
pub fn report_columns(contract: &Contract, dims: &[Dim]) -> Vec<String> {
    let mut cols: Vec<&str> = vec![
        "kind",
        "ts",
        "session_id",
        "session_stateful",
        "tag",
        "provider",
        "model",
        "venue",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
    ];
    for r in contract
        .clauses
        .iter()
        .flat_map(|c| &c.interpretations)
        .filter_map(|i| i.ruleset.as_ref())
    {
        let mut read: Vec<&str> = super::classify::columns_read(&r.ruleset)
            .into_iter()
            .collect();
        read.sort_unstable();
        cols.extend(read);
    }
    for d in dims {
        cols.push(match d {
            Dim::Field(f) => f,
            Dim::Kind => "kind",
            Dim::Day | Dim::Week | Dim::Month => "ts",
            Dim::Tag | Dim::SessionTag => "tag",
            Dim::StateHolder => "state_holder",
        });
    }
    let mut seen = std::collections::HashSet::new();
    cols.retain(|c| seen.insert(*c));
    cols.into_iter().map(str::to_owned).collect()
}

/// `ledger.report(...)` of the events in `batches` (every event of each session among them
/// must be there: session tags are derived over the batches, as the ledger derives them).
pub fn report(
    batches: &[RecordBatch],
    contract: &Contract,
    prices: Option<&PriceTable>,
    dims: &[Dim],
    window: Window,
) -> Result<ResultTable> {
    let cols = super::import::event_columns(batches)?;
    report_table(&cols, contract, prices, dims, window)
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::validation("batch", what.to_string())
}

/// Re-derives the chain of one ledger from the `seq`, `record` and `hash` columns of
/// `batches` (any order; the rows are sorted by seq), checked against `head` when given.
pub fn verify(batches: &[RecordBatch], head: Option<&Head>) -> Result<Verification> {
    let mut rows: Vec<(i64, &[u8], &[u8])> = Vec::new();
    for b in batches {
        let col = |name: &str| {
            b.column_by_name(name).ok_or_else(|| {
                bad(format!(
                    "column {name:?} is missing (export with include_records=True)"
                ))
            })
        };
        let (seq, record, hash) = (col("seq")?, col("record")?, col("hash")?);
        let seqs = seq
            .as_primitive_opt::<arrow_array::types::Int64Type>()
            .ok_or_else(|| bad("column \"seq\" must be int64"))?;
        let records: Vec<&[u8]> = match record.data_type() {
            DataType::Utf8 => record.as_string::<i32>().iter().map(bytes).collect(),
            DataType::LargeUtf8 => record.as_string::<i64>().iter().map(bytes).collect(),
            DataType::Utf8View => record.as_string_view().iter().map(bytes).collect(),
            DataType::Binary => record
                .as_binary::<i32>()
                .iter()
                .map(|v| v.unwrap_or(b""))
                .collect(),
            other => {
                return Err(bad(format!(
                    "column \"record\": expected text, got {other}"
                )))
            }
        };
        let hashes: Vec<&[u8]> = match hash.data_type() {
            DataType::FixedSizeBinary(_) => hash
                .as_fixed_size_binary()
                .iter()
                .map(|v| v.unwrap_or(b""))
                .collect(),
            DataType::Binary => hash
                .as_binary::<i32>()
                .iter()
                .map(|v| v.unwrap_or(b""))
                .collect(),
            DataType::LargeBinary => hash
                .as_binary::<i64>()
                .iter()
                .map(|v| v.unwrap_or(b""))
                .collect(),
            DataType::BinaryView => hash
                .as_binary_view()
                .iter()
                .map(|v| v.unwrap_or(b""))
                .collect(),
            other => return Err(bad(format!("column \"hash\": expected bytes, got {other}"))),
        };
        if seqs.null_count() > 0 {
            return Err(bad("column \"seq\" has a null"));
        }
        rows.extend(
            seqs.values()
                .iter()
                .zip(records)
                .zip(hashes)
                .map(|((&s, r), h)| (s, r, h)),
        );
    }
    rows.sort_by_key(|r| r.0);
    Ok(verify_rows(rows, head))
}

fn bytes(v: Option<&str>) -> &[u8] {
    v.map_or(b"", str::as_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::result::Cell;
    use crate::classify::Ruleset;
    use crate::event::{Event, EventKind, Recorded, Tag};
    use crate::stored::rows::Row;
    use std::sync::Arc;

    const RULESETS: &str = include_str!("../../examples/contracts/model-access-2025-rulesets.toml");
    const PLAIN: &str = include_str!("../../examples/contracts/model-access-2025.toml");
    const PRICES: &str = include_str!("../../examples/prices/illustrative.toml");

    fn call(seq: u64, session: &str, venue: &str, request: Option<serde_json::Value>) -> Row {
        let mut e = Event::new(EventKind::ModelCall);
        e.session_id = Some(session.into());
        e.agent = Some(if seq % 2 == 0 { "a" } else { "b" }.into());
        e.venue = Some(venue.into());
        e.provider = Some("openai".into());
        e.model = Some("gpt-5".into());
        e.api = Some("responses".into());
        e.input_tokens = Some(100 * seq);
        e.cached_tokens = Some(seq);
        e.output_tokens = Some(7 * seq);
        e.request = request.and_then(|r| r.as_object().cloned());
        let pending = Recorded::pending(e.finish().unwrap(), Ruleset::builtin_default());
        let class = pending.classification().clone();
        Row {
            session_tag: Tag::Stateless,
            rec: Arc::new(Recorded::stored(pending.event, class, seq)),
        }
    }

    #[test]
    fn a_report_over_its_columns_alone_equals_the_report_over_every_column() {
        // A stored response (stateful only under the strict ruleset), a continued one
        // (stateful as recorded) and plain calls, on two venues.
        let rows = vec![
            call(1, "s1", "azure", Some(serde_json::json!({"store": true}))),
            call(2, "s1", "azure", None),
            call(
                3,
                "s2",
                "aws",
                Some(serde_json::json!({"previous_response_id": "r"})),
            ),
            call(4, "s3", "aws", None),
            call(5, "s4", "azure", None),
        ];
        let all = crate::arrow::events::batches(&rows).unwrap().batches;
        let prices = PriceTable::from_toml(PRICES).unwrap();
        for (text, reclassifies) in [(RULESETS, true), (PLAIN, false)] {
            let contract = Contract::from_toml(text).unwrap();
            for by in [
                vec![],
                vec![Dim::Field("agent"), Dim::Month, Dim::SessionTag],
            ] {
                let names = report_columns(&contract, &by);
                let has = |c: &str| names.iter().any(|n| n == c);
                assert_eq!(has("request"), reclassifies);
                assert!(!has("ledger_id") && !has("evidence") && !has("seq"));
                let projected: Vec<RecordBatch> = all
                    .iter()
                    .map(|b| {
                        let idx: Vec<usize> = names
                            .iter()
                            .map(|n| b.schema().index_of(n).unwrap())
                            .collect();
                        b.project(&idx).unwrap()
                    })
                    .collect();
                assert!(projected[0].num_columns() < all[0].num_columns());
                let w = Window::default();
                let want = report(&all, &contract, Some(&prices), &by, w).unwrap();
                let got = report(&projected, &contract, Some(&prices), &by, w).unwrap();
                assert_eq!(got.columns, want.columns);
                assert_eq!(got.rows, want.rows);
                // Not a report of nothing: some calls are covered, priced and violating.
                let cells = |c: &str| {
                    let k = want.columns.iter().position(|x| x == c).unwrap();
                    want.rows.iter().map(move |r| r[k].clone())
                };
                assert!(cells("violating_events").any(|c| !matches!(c, Cell::Int(0))));
                assert!(cells("covered_cost_nanos").any(|c| matches!(c, Cell::Int(v) if v > 0)));
            }
        }
    }
}
