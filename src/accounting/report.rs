//! Contract-compliance reports over [`EventColumns`]: for each interpretation and clause of a
//! contract (and each group of `by`), how many `model_call` events the clause covers, how many
//! of those violate it, their tokens and (with prices) their exact cost.
//!
//! An interpretation that names a ruleset judges by every event classified again under it
//! ([`EventColumns::reading`], computed once per ruleset and cached with the columns); the
//! others judge by the classification stored in the ledger.
//!
//! Semantics are in [`crate::accounting::contract`]; costs in [`crate::accounting::costing`]. Cost cells are the exact
//! sum over priced events, `None` without a price table or when the cell has events and none is
//! priced; the `*_unpriced_events` columns count what the sum misses.

use crate::accounting::contract::{Clause, Contract, Level};
use crate::accounting::costing::{ModelPricer, MODEL_PRICE_COLUMNS};
use crate::accounting::groupby::{Dim, Groups};
use crate::accounting::pricing::PriceTable;
use crate::accounting::result::{Cell, ResultTable};
use crate::accounting::window::Window;
use crate::error::Result;
use crate::event::EventKind;
use crate::event::Recorded;
use crate::event::Tag;
use crate::ledger::Store;
use crate::stored::columns::rows_at;
use crate::stored::columns::{EventColumns, Projection, StrColumn, NULL};
use crate::stored::reading::Reading;
use crate::stored::rows::Row;
use std::sync::Arc;

/// Column names of a report after `interpretation, clause` and the group columns.
pub const REPORT_COLUMNS: &[&str] = &[
    "covered_events",
    "covered_input_tokens",
    "covered_output_tokens",
    "covered_cost_nanos",
    "violating_events",
    "violating_input_tokens",
    "violating_output_tokens",
    "violating_cost_nanos",
    "covered_unpriced_events",
    "violating_unpriced_events",
];

/// The columns [`report_table`] (and the drill-downs of its result) reads: the provider and
/// venue judged, with `priced` what prices model calls, the dimensions' own; every column
/// when an interpretation names a ruleset (the events are classified again from them).
pub fn columns_needed(contract: &Contract, priced: bool, dims: &[Dim]) -> Projection {
    let named = contract
        .clauses
        .iter()
        .flat_map(|c| &c.interpretations)
        .any(|i| i.ruleset.is_some());
    if named {
        return Projection::ALL;
    }
    let mut p = Projection::BASE.with_all(&["provider", "venue"]);
    if priced {
        p = p.with_all(MODEL_PRICE_COLUMNS);
    }
    dims.iter().fold(p, |p, d| p.union(d.columns()))
}

/// Sums for one side (covered or violating) of one report cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Side {
    pub events: u64,
    pub input_tokens: u128,
    pub output_tokens: u128,
    pub priced: u64,
    pub cost: u128,
}

impl Side {
    fn add(&mut self, cols: &EventColumns, row: usize, cost: Option<u128>) {
        self.events += 1;
        self.input_tokens += u128::from(cols.input_tokens[row]);
        self.output_tokens += u128::from(cols.output_tokens[row]);
        if let Some(c) = cost {
            self.priced += 1;
            self.cost += c;
        }
    }

    /// The cost cell: `None` without prices, or with events and none priced.
    pub fn cost_cell(&self, priced: bool) -> Option<u128> {
        (priced && (self.events == 0 || self.priced > 0)).then_some(self.cost)
    }

    pub fn unpriced(&self) -> u64 {
        self.events - self.priced
    }
}

/// Covered and violating sums of one (interpretation, clause, group) cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CellAcc {
    pub covered: Side,
    pub violating: Side,
}

/// One clause version compiled against the columns of one evaluation.
struct Version<'c> {
    clause: &'c Clause,
    providers: Vec<bool>,
    venues: Vec<bool>,
    level: Level,
    tags: [bool; 2],
    /// The events classified under the interpretation's ruleset; `None`: as recorded.
    reading: Option<Arc<Reading>>,
}

/// An (interpretation, clause) pair compiled for fast evaluation.
pub struct Slot<'c> {
    pub interpretation: String,
    pub clause: String,
    versions: Vec<Version<'c>>,
}

impl Slot<'_> {
    /// `None` when row `i` is not covered, else whether it violates.
    #[inline]
    pub fn judge(&self, cols: &EventColumns, venue: &StrColumn, i: usize) -> Option<bool> {
        let p = cols.provider.codes[i];
        if p == NULL {
            return None;
        }
        let ts = cols.ts[i];
        let v = self
            .versions
            .iter()
            .find(|v| v.providers[p as usize] && v.clause.in_force(ts))?;
        let t = match &v.reading {
            None => cols.recorded(),
            Some(r) => r.tags(),
        };
        let judged = match v.level {
            Level::Call => t.tag[i],
            Level::Session => t.session_tag[i],
        };
        if !v.tags[(judged == Tag::Stateful) as usize] {
            return None;
        }
        let code = venue.codes[i];
        Some(code == NULL || !v.venues[code as usize])
    }
}

/// Compiles every (interpretation, clause) slot of `contract` against `cols` and `venue`;
/// the events are classified under each ruleset an interpretation names (once per ruleset,
/// cached with `cols`).
pub fn compile<'c>(
    contract: &'c Contract,
    cols: &EventColumns,
    venue: &StrColumn,
) -> Vec<Slot<'c>> {
    let codes = |col: &StrColumn, names: &[String]| {
        let mut ok = vec![false; col.values.len()];
        for n in names {
            if let Some(c) = col.code(n) {
                ok[c as usize] = true;
            }
        }
        ok
    };
    contract
        .slots()
        .into_iter()
        .map(|(interpretation, clause)| {
            let versions = contract
                .clauses
                .iter()
                .filter(|c| c.id == clause)
                .filter_map(|c| {
                    let i = c.interpretation(&interpretation)?;
                    Some(Version {
                        clause: c,
                        providers: codes(&cols.provider, &c.providers),
                        venues: codes(venue, &c.required_venues),
                        level: i.level,
                        tags: [
                            i.tags.contains(&Tag::Stateless),
                            i.tags.contains(&Tag::Stateful),
                        ],
                        reading: i
                            .ruleset
                            .as_ref()
                            .map(|r| cols.reading_keyed(&r.ruleset, &r.key)),
                    })
                })
                .collect();
            Slot {
                interpretation,
                clause,
                versions,
            }
        })
        .collect()
}

/// The rows a report looks at: `model_call` events inside `window`.
pub fn model_calls(cols: &EventColumns, window: Window) -> Vec<u32> {
    (0..cols.len)
        .filter(|&i| cols.kind[i] == EventKind::ModelCall && window.contains(cols.ts[i]))
        .map(|i| i as u32)
        .collect()
}

/// Per-slot, per-group sums. `costs[k]` is the cost of `rows[k]` (when priced).
pub fn evaluate(
    cols: &EventColumns,
    venue: &StrColumn,
    slots: &[Slot<'_>],
    rows: &[u32],
    costs: Option<&[Option<u128>]>,
    groups: &Groups,
) -> Vec<Vec<CellAcc>> {
    let mut acc = vec![vec![CellAcc::default(); groups.len().max(1)]; slots.len()];
    for (k, &r) in rows.iter().enumerate() {
        let i = r as usize;
        let g = groups.id[k] as usize;
        let cost = costs.and_then(|c| c[k]);
        for (s, slot) in slots.iter().enumerate() {
            if let Some(violates) = slot.judge(cols, venue, i) {
                let cell = &mut acc[s][g];
                cell.covered.add(cols, i, cost);
                if violates {
                    cell.violating.add(cols, i, cost);
                }
            }
        }
    }
    acc
}

/// Model-call costs of `rows`, priced with `tables[table_of(row)]`.
pub fn row_costs(
    cols: &EventColumns,
    venue: &StrColumn,
    tables: &[&PriceTable],
    table_of: &dyn Fn(usize) -> usize,
    rows: &[u32],
) -> Result<Vec<Option<u128>>> {
    let mut pricer = ModelPricer::new(cols, venue, tables);
    rows.iter()
        .map(|&r| pricer.cost(r as usize, table_of(r as usize)))
        .collect()
}

/// The `ledger.report(...)` table.
pub fn report_table(
    cols: &EventColumns,
    contract: &Contract,
    prices: Option<&PriceTable>,
    dims: &[Dim],
    window: Window,
) -> Result<ResultTable> {
    window.check()?;
    let rows = model_calls(cols, window);
    let costs = match prices {
        Some(p) => Some(row_costs(cols, &cols.venue, &[p], &|_| 0, &rows)?),
        None => None,
    };
    let groups = Groups::compute(cols, &cols.venue, dims, &rows);
    let slots = compile(contract, cols, &cols.venue);
    let acc = evaluate(cols, &cols.venue, &slots, &rows, costs.as_deref(), &groups);
    let mut columns = vec!["interpretation".to_owned(), "clause".to_owned()];
    columns.extend(dims.iter().map(|d| d.name().to_owned()));
    columns.extend(REPORT_COLUMNS.iter().map(|c| c.to_string()));
    let priced = prices.is_some();
    // Without `by` there is exactly one group (possibly empty): one row per slot.
    let order = groups.sorted();
    let mut out = Vec::new();
    for (s, slot) in slots.iter().enumerate() {
        for &g in &order {
            let a = &acc[s][g as usize];
            if !dims.is_empty() && a.covered.events == 0 {
                continue;
            }
            let mut row = vec![
                Cell::Text(slot.interpretation.clone()),
                Cell::Text(slot.clause.clone()),
            ];
            row.extend(
                groups.labels[g as usize]
                    .iter()
                    .map(|l| Cell::text(l.clone())),
            );
            row.extend(report_cells(a, priced));
            out.push(row);
        }
    }
    Ok(ResultTable { columns, rows: out })
}

fn report_cells(a: &CellAcc, priced: bool) -> Vec<Cell> {
    let unpriced = |s: &Side| {
        if priced {
            Cell::uint(s.unpriced() as u128)
        } else {
            Cell::Null
        }
    };
    vec![
        Cell::uint(a.covered.events as u128),
        Cell::uint(a.covered.input_tokens),
        Cell::uint(a.covered.output_tokens),
        Cell::money(a.covered.cost_cell(priced)),
        Cell::uint(a.violating.events as u128),
        Cell::uint(a.violating.input_tokens),
        Cell::uint(a.violating.output_tokens),
        Cell::money(a.violating.cost_cell(priced)),
        unpriced(&a.covered),
        unpriced(&a.violating),
    ]
}

/// Rows of the events that violate `clause` under `interpretation` inside `window`.
pub fn violating_rows(
    cols: &EventColumns,
    contract: &Contract,
    interpretation: &str,
    clause: &str,
    window: Window,
) -> Result<Vec<usize>> {
    contract.check_slot(interpretation, clause)?;
    let slots = compile(contract, cols, &cols.venue);
    let slot = slots
        .iter()
        .find(|s| s.interpretation == interpretation && s.clause == clause)
        .expect("checked");
    Ok(model_calls(cols, window)
        .into_iter()
        .map(|r| r as usize)
        .filter(|&i| slot.judge(cols, &cols.venue, i) == Some(true))
        .collect())
}

/// The events that violate `clause` under `interpretation` inside `window`, read back from
/// `store` (for an `EventTable`). Under an interpretation that names a ruleset they are shown
/// as classified under it (tag, evidence and `session_tag` of that reading); their records
/// are what the ledger holds.
pub fn violations(
    store: &Store,
    cols: &EventColumns,
    contract: &Contract,
    interpretation: &str,
    clause: &str,
    window: Window,
) -> Result<Vec<Row>> {
    let idx = violating_rows(cols, contract, interpretation, clause, window)?;
    let mut rows = rows_at(store, cols, &idx)?;
    let named = contract
        .clauses
        .iter()
        .filter_map(|c| c.interpretation(interpretation))
        .find_map(|i| i.ruleset.as_ref());
    if let Some(r) = named {
        let reading = cols.reading_keyed(&r.ruleset, &r.key);
        for (row, &i) in rows.iter_mut().zip(&idx) {
            let rec = &row.rec;
            let c = r.ruleset.classify(&rec.event);
            let seq = rec.seq().unwrap_or(cols.seq[i]);
            *row = Row {
                rec: Arc::new(Recorded::stored(rec.event.clone(), c, seq)),
                session_tag: reading.session_tag[i],
            };
        }
    }
    Ok(rows)
}

#[cfg(test)]
#[path = "report_tests.rs"]
pub(crate) mod tests;
