//! A result [`Table`] (report, costs, scenario) as Arrow: text columns become
//! `dictionary<int32, utf8>` (interpretations, clauses and group labels repeat), integer
//! columns (counts, tokens, `*_cost_nanos`) `int64`. A column with no value at all takes its
//! type from its name: text for the group and label columns, `int64` for counts and money.
//! A numeric column with a value beyond 64 bits (sums can reach 2^127) becomes
//! `decimal128(38, 0)`, still exact.

use std::sync::Arc;

use arrow_array::{ArrayRef, Decimal128Array, RecordBatch};
use arrow_schema::{DataType, Schema};

use crate::accounting::result::{Cell, ResultTable};
use crate::error::{Error, Result};
use crate::stored::columns::StrColumn;

use super::build::{dict_slice, dict_type, dict_values, field, int64};
use super::{chunks, internal, Batches};

/// Whether an all-null column named `name` is numeric (counts, tokens, money).
fn numeric_name(name: &str) -> bool {
    name.ends_with("_nanos")
        || name.ends_with("_events")
        || name.ends_with("_tokens")
        || name == "events"
        || name.ends_with("_calls")
}

enum Col {
    Text(StrColumn, ArrayRef),
    Int(Vec<i64>, Vec<bool>),
    Wide(Vec<i128>, Vec<bool>),
}

/// Builds the batches of a result table.
pub fn batches(table: &ResultTable) -> Result<Batches> {
    let mut cols = Vec::with_capacity(table.columns.len());
    let mut fields = Vec::with_capacity(table.columns.len());
    for (j, name) in table.columns.iter().enumerate() {
        let cells = table.rows.iter().map(|r| &r[j]);
        let has_text = table.rows.iter().any(|r| matches!(r[j], Cell::Text(_)));
        let has_int = table.rows.iter().any(|r| matches!(r[j], Cell::Int(_)));
        if has_text && has_int {
            return Err(Error::Ledger(format!(
                "result column {name:?} mixes text and numbers"
            )));
        }
        let numeric = has_int || (!has_text && numeric_name(name));
        if numeric {
            let mut values = Vec::with_capacity(table.rows.len());
            let mut valid = Vec::with_capacity(table.rows.len());
            for c in cells {
                match c {
                    Cell::Int(v) => {
                        values.push(*v);
                        valid.push(true);
                    }
                    _ => {
                        values.push(0);
                        valid.push(false);
                    }
                }
            }
            if values.iter().all(|&v| i64::try_from(v).is_ok()) {
                fields.push(field(name, DataType::Int64, true));
                cols.push(Col::Int(
                    values.into_iter().map(|v| v as i64).collect(),
                    valid,
                ));
            } else {
                fields.push(field(name, DataType::Decimal128(38, 0), true));
                cols.push(Col::Wide(values, valid));
            }
        } else {
            let mut col = StrColumn::default();
            for c in cells {
                col.push(match c {
                    Cell::Text(s) => Some(s.as_str()),
                    _ => None,
                });
            }
            let values = dict_values(&col.values);
            fields.push(field(name, dict_type(), true));
            cols.push(Col::Text(col, values));
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batches = chunks(table.rows.len())
        .map(|(a, b)| {
            let arrays = cols
                .iter()
                .map(|c| match c {
                    Col::Text(col, values) => dict_slice(col, values, a, b),
                    Col::Int(v, valid) => Ok(int64(v[a..b].to_vec(), Some(valid[a..b].to_vec()))),
                    Col::Wide(v, valid) => wide(&v[a..b], &valid[a..b]),
                })
                .collect::<Result<Vec<ArrayRef>>>()?;
            RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(internal)
        })
        .collect::<Result<_>>()?;
    Ok(Batches { schema, batches })
}

fn wide(values: &[i128], valid: &[bool]) -> Result<ArrayRef> {
    let nulls = valid
        .contains(&false)
        .then(|| arrow_buffer::NullBuffer::from(valid.to_vec()));
    let array = Decimal128Array::new(values.to_vec().into(), nulls)
        .with_precision_and_scale(38, 0)
        .map_err(internal)?;
    Ok(Arc::new(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::Array;

    #[test]
    fn result_tables_type_columns_by_content_and_name() {
        let t = ResultTable {
            columns: vec![
                "interpretation".into(),
                "venue".into(),
                "covered_events".into(),
                "covered_cost_nanos".into(),
            ],
            rows: vec![
                vec![
                    Cell::Text("call-level".into()),
                    Cell::Null,
                    Cell::Int(3),
                    Cell::Null,
                ],
                vec![
                    Cell::Text("session-level".into()),
                    Cell::Null,
                    Cell::Int(i128::from(i64::MAX)),
                    Cell::Null,
                ],
            ],
        };
        let b = batches(&t).unwrap();
        let s = b.schema.clone();
        assert_eq!(s.field(0).data_type(), &dict_type());
        assert_eq!(s.field(1).data_type(), &dict_type());
        assert_eq!(s.field(2).data_type(), &DataType::Int64);
        assert_eq!(s.field(3).data_type(), &DataType::Int64);
        let batch = &b.batches[0];
        assert_eq!(
            batch.column(2).as_primitive::<Int64Type>().value(1),
            i64::MAX
        );
        assert!(batch.column(3).is_null(0));
        assert!(batch.column(1).is_null(1));
        let wide = ResultTable {
            columns: vec!["x_cost_nanos".into()],
            rows: vec![vec![Cell::Int(i128::from(i64::MAX) + 1)], vec![Cell::Null]],
        };
        let w = batches(&wide).unwrap();
        assert_eq!(w.schema.field(0).data_type(), &DataType::Decimal128(38, 0));
        let col = w.batches[0].column(0);
        assert_eq!(
            col.as_primitive::<arrow_array::types::Decimal128Type>()
                .value(0),
            i128::from(i64::MAX) + 1
        );
        assert!(col.is_null(1));
        let empty = batches(&ResultTable {
            columns: vec!["clause".into()],
            rows: vec![],
        })
        .unwrap();
        assert_eq!(empty.num_rows(), 0);
    }
}
