//! Compliance and cost accounting over the events a ledger holds.
//!
//! - [`contract`]: clauses, interpretations and which events they cover;
//! - [`pricing`]: price tables; [`money`]: exact decimal prices and integer nano-unit costs;
//! - [`calendar`]: UTC dates, months and ISO weeks, and time parsing;
//! - [`source`]: contract and price TOML read with spans, so errors name the line;
//! - [`window`]: the `[since, until)` period a result reads; [`groupby`]: the `by=` dimensions;
//! - [`report`], [`costing`], [`scenario`]: the engines, each returning a [`result::ResultTable`];
//!   [`explain`]: a clause's violating calls grouped by agent, venue, model and rule.

pub mod calendar;
pub mod contract;
pub mod costing;
pub mod explain;
pub mod groupby;
pub mod money;
pub mod pricing;
pub mod report;
pub mod result;
pub mod scenario;
pub mod source;
pub mod window;
