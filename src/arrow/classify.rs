//! Classifying a batch of events again under a ruleset: `sm.classify_batch` and
//! `statemeter.spark.classify` (a year of history read under a new ruleset, in parallel).
//!
//! Only the columns the ruleset reads are read ([`Ruleset::inputs`]: `kind`, `api`,
//! `provider`, `request`, `attrs`, ...), with `ts` (required) and `session_id` (for
//! `session_tag`), into [`EventColumns`] ([`super::import`]); every other column is passed
//! through untouched, in its place, unread. Rows are classified through
//! [`crate::stored::memo`]: a fleet's rows repeat a few combinations of inputs, and each
//! combination is classified once by the engine (the same view a report's reading under
//! another ruleset uses: no record is parsed, no Python runs per row). The classification
//! columns are then built from the few distinct verdicts by index ([`classification_arrays`])
//! and replace the batch's (or are added, when it has none), in the events schema's types.
//!
//! `session_tag` is derived over the batch: exact for every session whose events are all in
//! it (`statemeter.spark.classify` derives it again over the whole dataset).

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};

use crate::classify::Ruleset;
use crate::error::Result;
use crate::stored::columns::EventColumns;
use crate::stored::memo;
use crate::stored::reading::session_tags;

use super::events::{classification_arrays, schema};
use super::internal;

/// `batch` with its classification columns recomputed under `ruleset`.
pub fn classify_batch(batch: &RecordBatch, ruleset: &Ruleset) -> Result<RecordBatch> {
    let read = columns_read(ruleset);
    let mut cols = EventColumns::default();
    super::import::push_columns(&mut cols, batch, &|name| read.contains(name))?;
    let verdicts = memo::classify_rows(&cols, ruleset);
    let stateful: Vec<bool> = verdicts
        .rows
        .iter()
        .map(|&r| verdicts.distinct[r as usize].session_stateful)
        .collect();
    let session = session_tags(&cols.session_id, &stateful);
    let new = classification_arrays(&verdicts.distinct, &verdicts.rows, &session)?;
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

/// The batch columns a classification under `ruleset` reads: `session_id`, and each input's
/// column (`request` and `attrs` for the paths inside them).
pub fn columns_read(ruleset: &Ruleset) -> HashSet<&str> {
    let mut read: HashSet<&str> = ruleset
        .inputs()
        .iter()
        .map(|i| i.path.split_once('.').map_or(&*i.path, |(top, _)| top))
        .collect();
    read.insert("session_id");
    read
}
