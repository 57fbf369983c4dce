//! What-if scenarios: re-venue and/or re-price a selection of events and compare compliance
//! and cost with the baseline (the ledger as recorded), per interpretation and clause.
//!
//! - The **selection** is a conjunction of conditions, one per field, each a list of accepted
//!   values (`None` matches an absent field): `{"session_tag": "stateful", "provider":
//!   ["openai", "azure.ai.openai"]}`. Fields: any string column of [`EventColumns`], `kind`,
//!   `tag`, `session_tag`, `state_holder`. An empty selection selects every event.
//! - `venue`: selected events that carry a venue (`model_call`, `session_start`,
//!   `session_end`) get this venue in the scenario.
//! - Prices: the baseline is priced with `baseline_prices`; in the scenario, selected events
//!   are priced with `prices` and the others with `baseline_prices` (each defaults to the
//!   other).
//! - Groups (`by`) are computed on the recorded (baseline) values, so each row compares the
//!   same events before and after.

use crate::accounting::contract::Contract;
use crate::accounting::costing::{accumulate, charges};
use crate::accounting::groupby::{Dim, Groups};
use crate::accounting::pricing::PriceTable;
use crate::accounting::report::{compile, evaluate, model_calls, row_costs, Side};
use crate::accounting::result::{Cell, ResultTable};
use crate::accounting::window::Window;
use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::event::{Holder, Tag};
use crate::stored::columns::{EventColumns, StrColumn, NULL, STR_FIELDS};

/// One condition of a selection: the field and the accepted values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub field: String,
    pub values: Vec<Option<String>>,
}

/// Which events a scenario changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub conditions: Vec<Condition>,
}

/// The fields a selection may test.
pub fn selectable_fields() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = STR_FIELDS.to_vec();
    v.extend(["kind", "tag", "session_tag", "state_holder"]);
    v
}

impl Selection {
    /// Checks fields and values; errors name `select.<field>`.
    pub fn new(conditions: Vec<Condition>) -> Result<Selection> {
        for c in &conditions {
            let field = format!("select.{}", c.field);
            if !selectable_fields().contains(&c.field.as_str()) {
                return Err(Error::validation(
                    field,
                    format!(
                        "is not a field a selection can test (expected one of {})",
                        selectable_fields().join(", ")
                    ),
                ));
            }
            if c.values.is_empty() {
                return Err(Error::validation(field, "must list at least one value"));
            }
            for v in &c.values {
                let allowed: &[&str] = match c.field.as_str() {
                    "tag" | "session_tag" => &["stateless", "stateful"],
                    "kind" => &[
                        "session_start",
                        "session_end",
                        "model_call",
                        "tool_call",
                        "state_op",
                    ],
                    "state_holder" => &["provider", "client", "unknown"],
                    _ => &[],
                };
                match v {
                    Some(v) if !allowed.is_empty() && !allowed.contains(&v.as_str()) => {
                        return Err(Error::validation(
                            field,
                            format!("{v:?} is not one of {}", allowed.join(", ")),
                        ))
                    }
                    None if matches!(c.field.as_str(), "tag" | "session_tag" | "kind") => {
                        return Err(Error::validation(
                            field,
                            "cannot be None (every event has one)",
                        ))
                    }
                    _ => {}
                }
            }
        }
        Ok(Selection { conditions })
    }

    /// `mask[i]`: whether row `i` is selected.
    pub fn mask(&self, cols: &EventColumns) -> Vec<bool> {
        let mut mask = vec![true; cols.len];
        for c in &self.conditions {
            let has = |s: &str| c.values.iter().any(|v| v.as_deref() == Some(s));
            let has_none = c.values.iter().any(Option::is_none);
            let keep: Box<dyn Fn(usize) -> bool + '_> = match c.field.as_str() {
                "tag" | "session_tag" => {
                    let col = if c.field == "tag" {
                        &cols.tag
                    } else {
                        &cols.session_tag
                    };
                    let ok = [has(Tag::Stateless.as_str()), has(Tag::Stateful.as_str())];
                    Box::new(move |i| ok[(col[i] == Tag::Stateful) as usize])
                }
                "kind" => {
                    let ok: Vec<bool> = EventKind::ALL.iter().map(|k| has(k.as_str())).collect();
                    Box::new(move |i| ok[cols.kind[i] as usize])
                }
                "state_holder" => {
                    let ok = [
                        has(Holder::Provider.as_str()),
                        has(Holder::Client.as_str()),
                        has(Holder::Unknown.as_str()),
                        has_none,
                    ];
                    Box::new(move |i| {
                        ok[match cols.state_holder[i] {
                            Some(Holder::Provider) => 0,
                            Some(Holder::Client) => 1,
                            Some(Holder::Unknown) => 2,
                            None => 3,
                        }]
                    })
                }
                name => {
                    let col = cols.str_column(name).expect("validated");
                    let ok: Vec<bool> = col.values.iter().map(|v| has(v)).collect();
                    Box::new(move |i| match col.codes[i] {
                        NULL => has_none,
                        code => ok[code as usize],
                    })
                }
            };
            for (i, m) in mask.iter_mut().enumerate() {
                if *m && !keep(i) {
                    *m = false;
                }
            }
        }
        mask
    }
}

/// A scenario to evaluate.
pub struct Scenario<'a> {
    pub name: String,
    pub selection: Selection,
    pub venue: Option<String>,
    pub prices: Option<&'a PriceTable>,
    pub baseline_prices: Option<&'a PriceTable>,
}

/// The two tables of a scenario.
#[derive(Clone, Debug, Default)]
pub struct ScenarioResult {
    /// Per (interpretation, clause, group): compliance and covered cost, baseline vs scenario.
    pub compliance: ResultTable,
    /// Per group: every billable event's cost, baseline vs scenario.
    pub costs: ResultTable,
    /// How many events the selection matched (in the window), and how many got a new venue.
    pub selected_events: u64,
    pub moved_events: u64,
}

pub const COMPLIANCE_COLUMNS: &[&str] = &[
    "covered_events",
    "selected_events",
    "baseline_violating_events",
    "scenario_violating_events",
    "violating_events_delta",
    "baseline_covered_cost_nanos",
    "scenario_covered_cost_nanos",
    "covered_cost_delta_nanos",
    "baseline_violating_cost_nanos",
    "scenario_violating_cost_nanos",
    "violating_cost_delta_nanos",
];

pub const COST_COLUMNS: &[&str] = &[
    "events",
    "selected_events",
    "baseline_cost_nanos",
    "scenario_cost_nanos",
    "cost_delta_nanos",
    "baseline_unpriced_events",
    "scenario_unpriced_events",
];

fn delta(a: Option<u128>, b: Option<u128>) -> Cell {
    match (a, b) {
        (Some(a), Some(b)) => Cell::Int(b as i128 - a as i128),
        _ => Cell::Null,
    }
}

/// Evaluates `scenario` against the baseline.
pub fn run(
    cols: &EventColumns,
    contract: &Contract,
    sc: &Scenario<'_>,
    dims: &[Dim],
    window: Window,
) -> Result<ScenarioResult> {
    window.check()?;
    let selected = sc.selection.mask(cols);
    // The scenario's venue column.
    let mut venue: StrColumn = cols.venue.clone();
    let mut moved = 0u64;
    if let Some(v) = &sc.venue {
        let code = venue.intern(v);
        for (i, &sel) in selected.iter().enumerate() {
            let has_venue = matches!(
                cols.kind[i],
                EventKind::ModelCall | EventKind::SessionStart | EventKind::SessionEnd
            );
            if sel && has_venue && window.contains(cols.ts[i]) {
                if venue.codes[i] != code {
                    moved += 1;
                }
                venue.codes[i] = code;
            }
        }
    }
    let base_table = sc.baseline_prices.or(sc.prices);
    let scen_table = sc.prices.or(sc.baseline_prices);
    let tables: Vec<&PriceTable> = base_table.into_iter().chain(scen_table).collect();
    let priced = !tables.is_empty();
    let base_of = |_: usize| 0usize;
    let scen_of = |i: usize| {
        if selected[i] && tables.len() > 1 {
            1
        } else {
            0
        }
    };

    // Compliance.
    let rows = model_calls(cols, window);
    let groups = Groups::compute(cols, &cols.venue, dims, &rows);
    let (base_costs, scen_costs) = if priced {
        (
            Some(row_costs(cols, &cols.venue, &tables, &base_of, &rows)?),
            Some(row_costs(cols, &venue, &tables, &scen_of, &rows)?),
        )
    } else {
        (None, None)
    };
    let base_slots = compile(contract, cols, &cols.venue);
    let scen_slots = compile(contract, cols, &venue);
    let base = evaluate(
        cols,
        &cols.venue,
        &base_slots,
        &rows,
        base_costs.as_deref(),
        &groups,
    );
    let scen = evaluate(
        cols,
        &venue,
        &scen_slots,
        &rows,
        scen_costs.as_deref(),
        &groups,
    );
    let mut sel_covered = vec![vec![0u64; groups.len().max(1)]; base_slots.len()];
    for (k, &r) in rows.iter().enumerate() {
        if selected[r as usize] {
            for (s, slot) in base_slots.iter().enumerate() {
                if slot.judge(cols, &cols.venue, r as usize).is_some() {
                    sel_covered[s][groups.id[k] as usize] += 1;
                }
            }
        }
    }
    let mut columns = vec!["interpretation".to_owned(), "clause".to_owned()];
    columns.extend(dims.iter().map(|d| d.name().to_owned()));
    columns.extend(COMPLIANCE_COLUMNS.iter().map(|c| c.to_string()));
    let order = groups.sorted();
    let mut compliance = ResultTable {
        columns,
        rows: Vec::new(),
    };
    for (s, slot) in base_slots.iter().enumerate() {
        for &g in &order {
            let (b, n) = (&base[s][g as usize], &scen[s][g as usize]);
            if !dims.is_empty() && b.covered.events == 0 {
                continue;
            }
            let cost = |side: &Side| side.cost_cell(priced);
            let mut row = vec![
                Cell::Text(slot.interpretation.clone()),
                Cell::Text(slot.clause.clone()),
            ];
            row.extend(
                groups.labels[g as usize]
                    .iter()
                    .map(|l| Cell::text(l.clone())),
            );
            row.extend([
                Cell::uint(b.covered.events as u128),
                Cell::uint(sel_covered[s][g as usize] as u128),
                Cell::uint(b.violating.events as u128),
                Cell::uint(n.violating.events as u128),
                Cell::Int(n.violating.events as i128 - b.violating.events as i128),
                Cell::money(cost(&b.covered)),
                Cell::money(cost(&n.covered)),
                delta(cost(&b.covered), cost(&n.covered)),
                Cell::money(cost(&b.violating)),
                Cell::money(cost(&n.violating)),
                delta(cost(&b.violating), cost(&n.violating)),
            ]);
            compliance.rows.push(row);
        }
    }

    // Costs of every billable event.
    let costs = if priced {
        let bc = charges(cols, &cols.venue, &tables, &base_of, window)?;
        let nc = charges(cols, &venue, &tables, &scen_of, window)?;
        debug_assert_eq!(bc.row, nc.row);
        let (groups, bacc) = accumulate(cols, &cols.venue, &bc, dims);
        let (_, nacc) = accumulate(cols, &cols.venue, &nc, dims);
        let mut sel = vec![0u64; groups.len()];
        for (k, &r) in bc.row.iter().enumerate() {
            if selected[r as usize] {
                sel[groups.id[k] as usize] += 1;
            }
        }
        let mut columns: Vec<String> = dims.iter().map(|d| d.name().to_owned()).collect();
        columns.extend(COST_COLUMNS.iter().map(|c| c.to_string()));
        let mut t = ResultTable {
            columns,
            rows: Vec::new(),
        };
        for g in groups.sorted() {
            let (b, n) = (&bacc[g as usize], &nacc[g as usize]);
            let mut row: Vec<Cell> = groups.labels[g as usize]
                .iter()
                .map(|l| Cell::text(l.clone()))
                .collect();
            row.extend([
                Cell::uint(b.events as u128),
                Cell::uint(sel[g as usize] as u128),
                Cell::money(b.cost()),
                Cell::money(n.cost()),
                delta(b.cost(), n.cost()),
                Cell::uint(b.unpriced as u128),
                Cell::uint(n.unpriced as u128),
            ]);
            t.rows.push(row);
        }
        t
    } else {
        let mut columns: Vec<String> = dims.iter().map(|d| d.name().to_owned()).collect();
        columns.extend(COST_COLUMNS.iter().map(|c| c.to_string()));
        ResultTable {
            columns,
            rows: Vec::new(),
        }
    };
    let selected_events = (0..cols.len)
        .filter(|&i| selected[i] && window.contains(cols.ts[i]))
        .count() as u64;
    Ok(ScenarioResult {
        compliance,
        costs,
        selected_events,
        moved_events: moved,
    })
}

#[cfg(test)]
#[path = "scenario_tests.rs"]
mod tests;
