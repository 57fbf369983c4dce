//! [`Batches`] as a [`RecordBatchReader`] for the C stream interface, and conforming to a
//! consumer's `requested_schema`.
//!
//! The Arrow PyCapsule protocol lets a consumer ask for a schema; a producer that cannot
//! provide it returns its own. statemeter honours the one request consumers commonly make:
//! plain `utf8` (or `large_utf8`) for a column it sends dictionary-encoded. Any other
//! difference (names, order, other types) leaves the data in statemeter's own schema.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, LargeStringArray, RecordBatch, RecordBatchIterator, RecordBatchReader, StringArray,
};
use arrow_schema::{DataType, Field, Schema};

use crate::error::Result;

use super::{internal, Batches};

/// A reader over the batches (for `FFI_ArrowArrayStream::new`).
pub fn reader(b: Batches) -> Box<dyn RecordBatchReader + Send> {
    Box::new(RecordBatchIterator::new(
        b.batches.into_iter().map(Ok),
        b.schema,
    ))
}

fn decodable(ours: &DataType, wanted: &DataType) -> bool {
    matches!(ours, DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8)
        && matches!(wanted, DataType::Utf8 | DataType::LargeUtf8)
}

fn decode(array: &ArrayRef, wanted: &DataType) -> ArrayRef {
    let dict = array.as_dictionary::<Int32Type>();
    let values = dict.values().as_string::<i32>();
    let items = dict
        .keys()
        .iter()
        .map(|k| k.map(|k| values.value(k as usize)));
    match wanted {
        DataType::LargeUtf8 => Arc::new(LargeStringArray::from_iter(items)),
        _ => Arc::new(StringArray::from_iter(items)),
    }
}

/// `b` in the `requested` schema where statemeter can provide it (see the module docs);
/// otherwise `b` unchanged.
pub fn conform(b: Batches, requested: &Schema) -> Result<Batches> {
    let ours = &b.schema;
    if requested.fields().len() != ours.fields().len()
        || ours
            .fields()
            .iter()
            .zip(requested.fields())
            .any(|(o, r)| o.name() != r.name())
    {
        return Ok(b);
    }
    let plan: Vec<Option<DataType>> = ours
        .fields()
        .iter()
        .zip(requested.fields())
        .map(|(o, r)| decodable(o.data_type(), r.data_type()).then(|| r.data_type().clone()))
        .collect();
    if plan.iter().all(Option::is_none) {
        return Ok(b);
    }
    let fields: Vec<Field> = ours
        .fields()
        .iter()
        .zip(&plan)
        .map(|(f, p)| match p {
            Some(t) => Field::new(f.name(), t.clone(), f.is_nullable()),
            None => f.as_ref().clone(),
        })
        .collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, ours.metadata().clone()));
    let batches = b
        .batches
        .iter()
        .map(|batch| {
            let columns = batch
                .columns()
                .iter()
                .zip(&plan)
                .map(|(c, p)| match p {
                    Some(t) => decode(c, t),
                    None => Arc::clone(c),
                })
                .collect();
            RecordBatch::try_new(Arc::clone(&schema), columns).map_err(internal)
        })
        .collect::<Result<_>>()?;
    Ok(Batches { schema, batches })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::result::{Cell, ResultTable};
    use arrow_array::Array;

    fn sample() -> Batches {
        super::super::result::batches(&ResultTable {
            columns: vec!["clause".into(), "covered_events".into()],
            rows: vec![
                vec![Cell::Text("a".into()), Cell::Int(1)],
                vec![Cell::Null, Cell::Int(2)],
            ],
        })
        .unwrap()
    }

    #[test]
    fn a_requested_utf8_column_is_decoded() {
        let want = Schema::new(vec![
            Field::new("clause", DataType::LargeUtf8, true),
            Field::new("covered_events", DataType::Int64, true),
        ]);
        let out = conform(sample(), &want).unwrap();
        assert_eq!(out.schema.field(0).data_type(), &DataType::LargeUtf8);
        let col = out.batches[0].column(0).as_string::<i64>();
        assert_eq!(col.value(0), "a");
        assert!(col.is_null(1));
        let mut r = reader(out);
        assert_eq!(r.next().unwrap().unwrap().num_rows(), 2);
        assert!(r.next().is_none());
    }

    #[test]
    fn other_requests_keep_our_schema() {
        let renamed = Schema::new(vec![
            Field::new("x", DataType::Utf8, true),
            Field::new("covered_events", DataType::Int64, true),
        ]);
        let out = conform(sample(), &renamed).unwrap();
        assert!(matches!(
            out.schema.field(0).data_type(),
            DataType::Dictionary(..)
        ));
        let same = sample();
        let schema = same.schema.clone();
        assert_eq!(conform(same, &schema).unwrap().schema, schema);
    }
}
