//! Classifying a batch of events again under a ruleset: `sm.classify_batch` and
//! `statemeter.spark.classify` (a year of history read under a new ruleset, in parallel).
//!
//! The batch's event columns are read into [`EventColumns`] ([`super::import`]), each row is
//! classified through [`RowFields`] (the same view a report's reading under another ruleset
//! uses: no record is parsed, no Python runs per row), and the classification columns of the
//! batch are replaced (or added, when it has none) in the events schema's types. Every other
//! column is passed through untouched, in its place.
//!
//! `session_tag` is derived over the batch: exact for every session whose events are all in
//! it (`statemeter.spark.classify` derives it again over the whole dataset).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};

use crate::classify::Ruleset;
use crate::error::Result;
use crate::stored::columns::EventColumns;
use crate::stored::fields::RowFields;
use crate::stored::reading::session_tags;

use super::events::{classification_arrays, schema};
use super::internal;

/// `batch` with its classification columns recomputed under `ruleset`.
pub fn classify_batch(batch: &RecordBatch, ruleset: &Ruleset) -> Result<RecordBatch> {
    let mut cols = EventColumns::default();
    super::import::push_batch(&mut cols, batch)?;
    let verdicts: Vec<_> = (0..cols.len)
        .map(|i| ruleset.classify(&RowFields::new(&cols, i)))
        .collect();
    let stateful: Vec<bool> = verdicts.iter().map(|c| c.session_stateful).collect();
    let session = session_tags(&cols.session_id, &stateful);
    let new = classification_arrays(&verdicts, &session)?;
    let events = schema();
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    for (name, array) in new {
        let field = Arc::new(events.field_with_name(name).map_err(internal)?.clone());
        match fields.iter().position(|f| f.name() == name) {
            Some(i) => {
                fields[i] = field;
                arrays[i] = array;
            }
            None => {
                fields.push(field);
                arrays.push(array);
            }
        }
    }
    let schema = Schema::new_with_metadata(fields, batch.schema().metadata().clone());
    RecordBatch::try_new(Arc::new(schema), arrays).map_err(internal)
}
