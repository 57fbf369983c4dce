//! The result of a read-only SQL query ([`crate::ledger::sql`]) as Arrow. Each column's type
//! follows its values, as SQLite stores them: integers `int64`, reals (with or without
//! integers) `float64`, text `utf8`, blobs `binary`; a column with no value at all is `null`.
//! A column mixing text, blobs and numbers has no one Arrow type: the query must `CAST` it.

use std::sync::Arc;

use arrow_array::{new_null_array, ArrayRef, BinaryArray, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use crate::error::{Error, Result};
use crate::ledger::sql::{SqlRows, SqlValue};

use super::build::int64;
use super::{chunks, internal, Batches};

/// The Arrow type of column `j`.
fn column_type(rows: &SqlRows, j: usize) -> Result<DataType> {
    let (mut int, mut real, mut text, mut blob) = (false, false, false, false);
    for r in &rows.rows {
        match r[j] {
            SqlValue::Null => {}
            SqlValue::Integer(_) => int = true,
            SqlValue::Real(_) => real = true,
            SqlValue::Text(_) => text = true,
            SqlValue::Blob(_) => blob = true,
        }
    }
    Ok(match (int || real, text, blob) {
        (false, false, false) => DataType::Null,
        (true, false, false) if real => DataType::Float64,
        (true, false, false) => DataType::Int64,
        (false, true, false) => DataType::Utf8,
        (false, false, true) => DataType::Binary,
        _ => {
            return Err(Error::validation(
                "query",
                format!(
                    "column {:?} mixes text, blobs and numbers, which no one Arrow type holds: \
                     CAST it in the query",
                    rows.columns[j]
                ),
            ))
        }
    })
}

fn array(rows: &[Vec<SqlValue>], j: usize, t: &DataType) -> ArrayRef {
    match t {
        DataType::Int64 => {
            let valid = rows.iter().map(|r| r[j] != SqlValue::Null).collect();
            let values = rows
                .iter()
                .map(|r| match r[j] {
                    SqlValue::Integer(i) => i,
                    _ => 0,
                })
                .collect();
            int64(values, Some(valid))
        }
        DataType::Float64 => Arc::new(Float64Array::from_iter(rows.iter().map(|r| match r[j] {
            SqlValue::Integer(i) => Some(i as f64),
            SqlValue::Real(f) => Some(f),
            _ => None,
        }))),
        DataType::Utf8 => Arc::new(StringArray::from_iter(rows.iter().map(|r| match &r[j] {
            SqlValue::Text(s) => Some(s.as_str()),
            _ => None,
        }))),
        DataType::Binary => Arc::new(BinaryArray::from_iter(rows.iter().map(|r| match &r[j] {
            SqlValue::Blob(b) => Some(b.as_slice()),
            _ => None,
        }))),
        _ => new_null_array(&DataType::Null, rows.len()),
    }
}

/// The record batches of a query result.
pub fn batches(rows: &SqlRows) -> Result<Batches> {
    let types = (0..rows.columns.len())
        .map(|j| column_type(rows, j))
        .collect::<Result<Vec<_>>>()?;
    let schema = Arc::new(Schema::new(
        rows.columns
            .iter()
            .zip(&types)
            .map(|(name, t)| Field::new(name, t.clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batches = chunks(rows.rows.len())
        .map(|(a, b)| {
            let part = &rows.rows[a..b];
            let arrays = types
                .iter()
                .enumerate()
                .map(|(j, t)| array(part, j, t))
                .collect();
            RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(internal)
        })
        .collect::<Result<_>>()?;
    Ok(Batches { schema, batches })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    #[test]
    fn types_follow_the_values() {
        let rows = SqlRows {
            columns: ["i", "f", "t", "b", "n"].map(String::from).to_vec(),
            rows: vec![
                vec![
                    SqlValue::Integer(1),
                    SqlValue::Integer(2),
                    SqlValue::Text("x".into()),
                    SqlValue::Blob(vec![0, 1]),
                    SqlValue::Null,
                ],
                vec![
                    SqlValue::Null,
                    SqlValue::Real(0.5),
                    SqlValue::Null,
                    SqlValue::Null,
                    SqlValue::Null,
                ],
            ],
        };
        let b = batches(&rows).unwrap();
        let types: Vec<_> = b
            .schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            [
                DataType::Int64,
                DataType::Float64,
                DataType::Utf8,
                DataType::Binary,
                DataType::Null
            ]
        );
        assert_eq!(b.num_rows(), 2);
        assert!(b.batches[0].column(0).is_null(1));
        let mixed = SqlRows {
            columns: vec!["m".into()],
            rows: vec![vec![SqlValue::Integer(1)], vec![SqlValue::Text("a".into())]],
        };
        assert!(matches!(batches(&mixed), Err(Error::Validation { .. })));
    }
}
