//! Why a clause's violating figure is what it is: the violating calls of one (interpretation,
//! clause) grouped by agent, venue, model and the rule that tagged them (the first evidence
//! whose own tag is the call's tag: its rule id, signal and explanation), with the number of
//! sessions, the exact cost and a few example session ids per group.
//!
//! The calls are those [`report::violations`] returns (classified again under the
//! interpretation's ruleset when it names one); explanations of recorded evidence come from
//! the ruleset catalogues the ledger stores.

use std::collections::HashMap;

use crate::accounting::contract::Contract;
use crate::accounting::pricing::PriceTable;
use crate::accounting::report;
use crate::accounting::result::{Cell, ResultTable};
use crate::accounting::window::Window;
use crate::error::Result;
use crate::ledger::Store;
use crate::stored::columns::EventColumns;
use crate::stored::rows::Catalogues;

/// The columns of an explanation table.
pub const EXPLAIN_COLUMNS: &[&str] = &[
    "agent",
    "venue",
    "model",
    "rule",
    "signal",
    "explanation",
    "violating_events",
    "sessions",
    "violating_cost_nanos",
    "violating_unpriced_events",
    "example_sessions",
];

/// How many session ids a group lists as examples.
pub const EXAMPLE_SESSIONS: usize = 3;

#[derive(Default)]
struct Group {
    events: u64,
    priced: u64,
    cost: u128,
    explanation: String,
    sessions: Vec<String>,
    seen: std::collections::HashSet<String>,
}

type Key = (
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// The explanation table of `clause` under `interpretation` inside `window`: one row per
/// (agent, venue, model, rule, signal), most violating events first. `example_sessions` is
/// the first [`EXAMPLE_SESSIONS`] session ids of the group in ledger order, space-separated.
pub fn explain_table(
    store: &Store,
    cols: &EventColumns,
    contract: &Contract,
    prices: Option<&PriceTable>,
    interpretation: &str,
    clause: &str,
    window: Window,
) -> Result<ResultTable> {
    let idx = report::violating_rows(cols, contract, interpretation, clause, window)?;
    let rows = report::violations(store, cols, contract, interpretation, clause, window)?;
    let costs = match prices {
        Some(p) => {
            let at: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
            Some(report::row_costs(cols, &cols.venue, &[p], &|_| 0, &at)?)
        }
        None => None,
    };
    let catalogues = Catalogues::load(store)?;
    let mut groups: HashMap<Key, Group> = HashMap::new();
    let mut order: Vec<Key> = Vec::new();
    for (k, row) in rows.iter().enumerate() {
        let e = &row.rec.event;
        let c = row.rec.classification();
        let ev = c
            .evidence
            .iter()
            .find(|ev| ev.tag == c.tag)
            .or_else(|| c.evidence.first());
        let (rule, signal, explain) = match ev {
            Some(ev) => {
                let text = if ev.explain.is_empty() {
                    catalogues
                        .explain(&c.ruleset_digest, &ev.rule)
                        .unwrap_or("")
                        .to_owned()
                } else {
                    ev.explain.to_string()
                };
                (ev.rule.to_string(), ev.signal.to_string(), text)
            }
            None => (String::new(), String::new(), String::new()),
        };
        let key: Key = (
            e.agent.as_deref().map(str::to_owned),
            e.venue.as_deref().map(str::to_owned),
            e.model.as_deref().map(str::to_owned),
            rule,
            signal,
        );
        let g = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Group {
                explanation: explain,
                ..Group::default()
            }
        });
        g.events += 1;
        if let Some(cost) = costs.as_ref().and_then(|c| c[k]) {
            g.priced += 1;
            g.cost += cost;
        }
        if let Some(s) = e.session_id.as_deref() {
            if g.seen.insert(s.to_owned()) && g.sessions.len() < EXAMPLE_SESSIONS {
                g.sessions.push(s.to_owned());
            }
        }
    }
    order.sort_by(|a, b| groups[b].events.cmp(&groups[a].events).then(a.cmp(b)));
    let priced = prices.is_some();
    let out = order
        .into_iter()
        .map(|key| {
            let g = &groups[&key];
            let (agent, venue, model, rule, signal) = key;
            vec![
                Cell::text(agent),
                Cell::text(venue),
                Cell::text(model),
                Cell::Text(rule),
                Cell::Text(signal),
                Cell::Text(g.explanation.clone()),
                Cell::uint(u128::from(g.events)),
                Cell::uint(g.seen.len() as u128),
                Cell::money((priced && g.priced > 0).then_some(g.cost)),
                if priced {
                    Cell::uint(u128::from(g.events - g.priced))
                } else {
                    Cell::Null
                },
                Cell::Text(g.sessions.join(" ")),
            ]
        })
        .collect();
    Ok(ResultTable {
        columns: EXPLAIN_COLUMNS.iter().map(|c| c.to_string()).collect(),
        rows: out,
    })
}
