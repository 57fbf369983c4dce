//! Classification: tag every event stateless or stateful, with the evidence for the tag.
//!
//! The engine ([`Ruleset`], in `rules.rs`) reads an event only through the [`Fields`] trait
//! (`crate::event::fields`). Rules are data: `parse.rs` reads a TOML file into the `spec.rs` types,
//! `rule.rs` compiles each rule, and `index.rs` files them by kind, api and provider so that an
//! event is checked only against the rules that could apply; `inputs.rs` lists every field a
//! ruleset's verdict reads (so rows that agree on them can share one classification). The built-in catalogue
//! (`catalogue/default.toml`, `catalogue/strict.toml`) encodes the providers' public API
//! documentation (each rule's `explain` cites its page); docs/classification.md explains the
//! model, the file format and every built-in rule, and lists those sources.
//!
//! The result types ([`Tag`], [`Holder`], [`Evidence`], [`Classification`]) belong to the
//! event model (`crate::event`): the ledger readers parse them back without the engine.

mod index;
pub mod inputs;
mod parse;
mod rule;
mod rules;
mod spec;
pub mod venue;

#[cfg(test)]
mod catalogue_tests;

pub use inputs::{Input, Read};
pub use rule::RuleInfo;
pub use rules::{Ruleset, Verdict, NO_STATE_SIGNAL};
pub use spec::HolderSource;
