//! Reading a ledger back: stored records become events again.
//!
//! - [`rows`]: whole events read back (`EventTable` rows), their derived `session_tag`, and
//!   the filters (kind, session_id, tag);
//! - [`scalars`]: a record's scalar fields read without building an event, for the loader below;
//! - [`columns`]: a ledger's events as a struct of arrays, scanned by the accounting engines
//!   and the Arrow export; kept up to date incrementally ([`columns::ColumnCache`]);
//! - [`column_store`]: those columns kept on disk beside the ledger, in segments the writer
//!   appends ([`column_store::ColumnWriter`], each whole segment encoded and written on a
//!   thread of its own: [`segment_thread`]), trusted only where they match the chain;
//! - [`lazy_rows`]: whole rows read from the records on demand, selected from the columns
//!   (`ledger.events()`);
//! - [`fields`]: one row of those columns as the rules engine reads it, and [`reading`]: the
//!   events classified again under another ruleset from the columns (cached with them);
//! - [`memo`]: many rows classified at once, each distinct combination of the ruleset's inputs
//!   once (`classify_batch`);
//! - [`sessions`]: the sessions table summarised from those columns.

pub mod column_store;
pub mod columns;
pub mod fields;
pub mod lazy_rows;
pub mod memo;
pub mod reading;
pub mod rows;
pub mod scalars;
mod segment_thread;
pub mod sessions;
