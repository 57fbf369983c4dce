//! Costs over [`EventColumns`]: which events are billable, what each costs, and the
//! `ledger.costs(prices, by=...)` table.
//!
//! Billable events ("charges"), each attributed to one event for grouping and windows:
//! - every `model_call`: its tokens and per-call fee (`[[price]]`);
//! - when the price table has `[[runtime_price]]` entries: every session with a `runtime` (on
//!   its `session_start` or `session_end`) that has ended, charged on its `session_end` event for
//!   `session_end.ts - session_start.ts`, at the price in force at the start for the session's
//!   runtime and venue (the start's venue, else the end's);
//! - when the table has `[[storage_price]]` entries: every `state_op` `write` with
//!   `holder = "provider"` and `bytes > 0`, charged on the write for the time its bytes are held:
//!   until the next `write` or `delete` of the same object in seq order, capped at the horizon
//!   (the window's `until`, else the ledger's latest `ts`). An object is (`store`, `key`, and the
//!   `session_id` when `scope = "session"`); a write without a `key` is never replaced.
//!
//! A charge with no matching price is unpriced (`None`), never zero.

use std::collections::HashMap;

use crate::accounting::groupby::{Dim, GroupIndex, Groups};
use crate::accounting::pricing::{Period, PriceTable};
use crate::accounting::result::{Cell, ResultTable};
use crate::accounting::window::Window;
use crate::error::Result;
use crate::event::EventKind;
use crate::stored::columns::{EventColumns, Projection, StrColumn, NULL};

/// The columns pricing model calls reads ([`ModelPricer`]) besides those always held.
pub const MODEL_PRICE_COLUMNS: &[&str] = &["provider", "model", "venue", "cached_tokens"];

/// The columns [`costs_table`] reads to group by `dims`: what prices model calls, sessions'
/// runtimes and stored state, and the dimensions' own.
pub fn columns_needed(dims: &[Dim]) -> Projection {
    let p = Projection::BASE
        .with_all(MODEL_PRICE_COLUMNS)
        .with_all(&["runtime", "op", "scope", "key", "store", "holder", "bytes"]);
    dims.iter().fold(p, |p, d| p.union(d.columns()))
}

/// What a charge is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChargeKind {
    Model,
    Runtime,
    Storage,
}

/// Every charge of a ledger, in row order.
#[derive(Clone, Debug, Default)]
pub struct Charges {
    /// The event each charge is attributed to (row index).
    pub row: Vec<u32>,
    pub kind: Vec<ChargeKind>,
    /// Nano-units, `None` when unpriced.
    pub cost: Vec<Option<u128>>,
}

/// Prices every billable event of `cols` in `window`, in row order. `table_of(row)` chooses
/// which of `tables` prices a row (scenarios price a selection with another table); `venue`
/// stands in for `cols.venue`.
pub fn charges(
    cols: &EventColumns,
    venue: &StrColumn,
    tables: &[&PriceTable],
    table_of: &dyn Fn(usize) -> usize,
    window: Window,
) -> Result<Charges> {
    let mut scan = Charges::default();
    let mut storage = Charges::default();
    each_charge(
        cols,
        venue,
        tables,
        table_of,
        window,
        &mut |row, kind, cost| {
            let to = if kind == ChargeKind::Storage {
                &mut storage
            } else {
                &mut scan
            };
            push(to, row, kind, cost);
            Ok(())
        },
    )?;
    if storage.row.is_empty() {
        return Ok(scan);
    }
    // Storage charges come after the scan (their cost needs the next write's time): merged
    // back into row order (each row has at most one charge).
    let mut out = Charges::default();
    let (mut a, mut b) = (0, 0);
    while a < scan.row.len() || b < storage.row.len() {
        let from_scan =
            b == storage.row.len() || (a < scan.row.len() && scan.row[a] < storage.row[b]);
        let (from, k) = if from_scan {
            a += 1;
            (&scan, a - 1)
        } else {
            b += 1;
            (&storage, b - 1)
        };
        push(&mut out, from.row[k] as usize, from.kind[k], from.cost[k]);
    }
    Ok(out)
}

/// Prices every billable event of `cols` in `window` (see [`charges`]), handing each charge
/// to `f` as (row, kind, cost) instead of keeping them: model and runtime charges in row
/// order as the scan meets them, storage charges after the scan (in row order among
/// themselves).
pub fn each_charge(
    cols: &EventColumns,
    venue: &StrColumn,
    tables: &[&PriceTable],
    table_of: &dyn Fn(usize) -> usize,
    window: Window,
    f: &mut dyn FnMut(usize, ChargeKind, Option<u128>) -> Result<()>,
) -> Result<()> {
    let runtime_billable = tables.iter().any(|t| !t.runtime_prices.is_empty());
    let storage_billable = tables.iter().any(|t| !t.storage_prices.is_empty());
    let mut pricer = ModelPricer::new(cols, venue, tables);
    // The row of each session's first `session_start`, by session code (NO_ROW: none yet).
    const NO_ROW: u32 = u32::MAX;
    let mut starts: Vec<u32> = if runtime_billable {
        vec![NO_ROW; cols.session_id.values.len()]
    } else {
        Vec::new()
    };
    let mut objects: HashMap<(u32, u32, u32), usize> = HashMap::new();
    let mut pending_storage: Vec<(usize, i64)> = Vec::new(); // (row, end ts)
    let horizon = window
        .until
        .unwrap_or_else(|| cols.ts.iter().copied().max().unwrap_or(0));
    for i in 0..cols.len {
        let kind = cols.kind[i];
        match kind {
            EventKind::ModelCall if window.contains(cols.ts[i]) => {
                let cost = pricer.cost(i, table_of(i))?;
                f(i, ChargeKind::Model, cost)?;
            }
            EventKind::SessionStart if runtime_billable => {
                if let Some(s) = session(cols, i) {
                    if starts[s as usize] == NO_ROW {
                        starts[s as usize] = i as u32;
                    }
                }
            }
            EventKind::SessionEnd if runtime_billable => {
                let Some(s) = session(cols, i) else { continue };
                let start = match starts[s as usize] {
                    NO_ROW => continue,
                    row => row as usize,
                };
                let runtime = cols.runtime.get(start).or(cols.runtime.get(i));
                let Some(runtime) = runtime else { continue };
                if !window.contains(cols.ts[i]) {
                    continue;
                }
                let v = venue.get(start).or(venue.get(i));
                let t = tables[table_of(i)];
                let dur = (cols.ts[i] - cols.ts[start]).max(0) as u64;
                let cost = match t.runtime_price(runtime, v, cols.ts[start]) {
                    Some(p) => Some(p.cost(dur)?),
                    None => None,
                };
                f(i, ChargeKind::Runtime, cost)?;
            }
            EventKind::StateOp if storage_billable => {
                let op = cols.op.get(i);
                if !matches!(op, Some("write" | "delete")) {
                    continue;
                }
                let session = if cols.scope.get(i) == Some("session") {
                    cols.session_id.codes[i]
                } else {
                    NULL
                };
                let key = cols.key.codes[i];
                let obj = (cols.store.codes[i], key, session);
                if key != NULL {
                    if let Some(prev) = objects.remove(&obj) {
                        pending_storage[prev].1 = cols.ts[i];
                    }
                }
                let is_charged = op == Some("write")
                    && cols.holder.get(i) == Some("provider")
                    && cols.bytes[i] > 0;
                if is_charged && window.contains(cols.ts[i]) {
                    if key != NULL {
                        objects.insert(obj, pending_storage.len());
                    }
                    pending_storage.push((i, horizon));
                }
            }
            _ => {}
        }
    }
    for (i, end) in pending_storage {
        let held = (end.min(horizon) - cols.ts[i]).max(0) as u64;
        let t = tables[table_of(i)];
        let store = cols.store.get(i).unwrap_or_default();
        let cost = match t.storage_price(store, cols.ts[i]) {
            Some(p) => Some(p.cost(cols.bytes[i], held)?),
            None => None,
        };
        f(i, ChargeKind::Storage, cost)?;
    }
    Ok(())
}

/// (provider, model, venue codes, table index).
type PriceKey = (u32, u32, u32, usize);

/// The entries matched so far for one key: (index in the table's prices, the period in
/// which that match holds).
type Matches = Vec<(Option<usize>, Period)>;

/// At most this many (provider, model, venue, table) combinations are cached in a flat array
/// indexed by their codes; more (large dictionaries) go to a hash map.
const DENSE_KEYS: usize = 1 << 16;

/// Prices model calls, caching the matching entry per (provider, model, venue, table) for as
/// long as the event's `ts` stays where no entry starts or ends.
pub struct ModelPricer<'a> {
    cols: &'a EventColumns,
    venue: &'a StrColumn,
    tables: &'a [&'a PriceTable],
    /// Indexed by [`ModelPricer::slot`] when the combinations are few.
    dense: Vec<Matches>,
    cache: HashMap<PriceKey, Matches, foldhash::fast::RandomState>,
    /// Sizes of the provider, model and venue (+ absent) dictionaries.
    dims: (usize, usize, usize),
}

impl<'a> ModelPricer<'a> {
    pub fn new(cols: &'a EventColumns, venue: &'a StrColumn, tables: &'a [&'a PriceTable]) -> Self {
        let dims = (
            cols.provider.values.len(),
            cols.model.values.len(),
            venue.values.len() + 1,
        );
        let keys = dims
            .0
            .checked_mul(dims.1)
            .and_then(|k| k.checked_mul(dims.2))
            .and_then(|k| k.checked_mul(tables.len()))
            .filter(|&k| k <= DENSE_KEYS);
        ModelPricer {
            cols,
            venue,
            tables,
            dense: keys.map_or_else(Vec::new, |k| vec![Vec::new(); k]),
            cache: HashMap::default(),
            dims,
        }
    }

    /// The flat index of a key when the cache is dense.
    fn slot(&self, (p, m, v, t): PriceKey) -> Option<usize> {
        if self.dense.is_empty() {
            return None;
        }
        let v = if v == NULL {
            self.dims.2 - 1
        } else {
            v as usize
        };
        Some(((t * self.dims.0 + p as usize) * self.dims.1 + m as usize) * self.dims.2 + v)
    }

    /// The cost of the model call at row `i` priced with `tables[t]`.
    pub fn cost(&mut self, i: usize, t: usize) -> Result<Option<u128>> {
        let (cols, venue, table) = (self.cols, self.venue, self.tables[t]);
        let (pc, mc) = (cols.provider.codes[i], cols.model.codes[i]);
        if pc == NULL || mc == NULL {
            return Ok(None);
        }
        let ts = cols.ts[i];
        let key = (pc, mc, venue.codes[i], t);
        let entries = match self.slot(key) {
            Some(k) => &mut self.dense[k],
            None => self.cache.entry(key).or_default(),
        };
        let entry = match entries.iter().find(|(_, per)| per.contains(ts)) {
            Some((e, _)) => *e,
            None => {
                let (p, m) = (
                    &*cols.provider.values[pc as usize],
                    &*cols.model.values[mc as usize],
                );
                let found = table.token_price(p, m, venue.get(i), ts);
                let e = found.map(|f| {
                    table
                        .prices
                        .iter()
                        .position(|x| std::ptr::eq(x, f))
                        .expect("an entry of the table")
                });
                entries.push((e, stable_period(table, p, m, ts)));
                e
            }
        };
        match entry {
            Some(e) => table.prices[e]
                .cost(
                    cols.input_tokens[i],
                    cols.cached_tokens[i],
                    cols.output_tokens[i],
                )
                .map(Some),
            None => Ok(None),
        }
    }
}

fn push(out: &mut Charges, row: usize, kind: ChargeKind, cost: Option<u128>) {
    out.row.push(row as u32);
    out.kind.push(kind);
    out.cost.push(cost);
}

fn session(cols: &EventColumns, i: usize) -> Option<u32> {
    match cols.session_id.codes[i] {
        NULL => None,
        c => Some(c),
    }
}

/// The largest period around `ts` in which no price entry of (provider, model) starts or
/// ends: inside it, the matching entry cannot change.
fn stable_period(t: &PriceTable, provider: &str, model: &str, ts: i64) -> Period {
    let mut from = i64::MIN;
    let mut until = i64::MAX;
    for p in t
        .prices
        .iter()
        .filter(|p| p.provider == provider && p.model == model)
    {
        for b in [p.period.from, p.period.until].into_iter().flatten() {
            if b <= ts {
                from = from.max(b);
            } else {
                until = until.min(b);
            }
        }
    }
    Period {
        from: (from != i64::MIN).then_some(from),
        until: (until != i64::MAX).then_some(until),
    }
}

/// Per-group sums of charges.
#[derive(Clone, Debug, Default)]
pub struct CostAcc {
    pub events: u64,
    pub input_tokens: u128,
    pub cached_tokens: u128,
    pub output_tokens: u128,
    pub unpriced: u64,
    /// (charges, priced charges, sum of priced) per [`ChargeKind`].
    pub by_kind: [(u64, u64, u128); 3],
}

impl CostAcc {
    pub fn add(&mut self, cols: &EventColumns, row: usize, kind: ChargeKind, cost: Option<u128>) {
        self.events += 1;
        if kind == ChargeKind::Model {
            self.input_tokens += u128::from(cols.input_tokens[row]);
            self.cached_tokens += u128::from(cols.cached_tokens[row]);
            self.output_tokens += u128::from(cols.output_tokens[row]);
        }
        let slot = &mut self.by_kind[kind as usize];
        slot.0 += 1;
        match cost {
            Some(c) => {
                slot.1 += 1;
                slot.2 += c;
            }
            None => self.unpriced += 1,
        }
    }

    /// The sum for one kind: `None` when the group has charges of that kind but none priced
    /// (0 when it has none of that kind).
    pub fn kind_cost(&self, kind: ChargeKind) -> Option<u128> {
        let (n, priced, s) = self.by_kind[kind as usize];
        (n == 0 || priced > 0).then_some(s)
    }

    /// The total over priced charges: `None` when the group has charges but none priced.
    /// With `unpriced > 0` it is a lower bound.
    pub fn cost(&self) -> Option<u128> {
        let priced: u64 = self.by_kind.iter().map(|k| k.1).sum();
        (self.events == 0 || priced > 0).then(|| self.by_kind.iter().map(|k| k.2).sum())
    }
}

/// Column names of the costs table after the group columns.
pub const COST_COLUMNS: &[&str] = &[
    "events",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "cost_nanos",
    "unpriced_events",
    "model_cost_nanos",
    "runtime_cost_nanos",
    "storage_cost_nanos",
];

/// Sums charges per group.
pub fn accumulate(
    cols: &EventColumns,
    venue: &StrColumn,
    ch: &Charges,
    dims: &[Dim],
) -> (Groups, Vec<CostAcc>) {
    let groups = Groups::compute(cols, venue, dims, &ch.row);
    let mut acc = vec![CostAcc::default(); groups.len()];
    for k in 0..ch.row.len() {
        acc[groups.id[k] as usize].add(cols, ch.row[k] as usize, ch.kind[k], ch.cost[k]);
    }
    (groups, acc)
}

/// The `ledger.costs(prices, by=...)` table: one row per group with at least one charge (one
/// row in all without `by`), sorted by the group values.
pub fn costs_table(
    cols: &EventColumns,
    prices: &PriceTable,
    dims: &[Dim],
    window: Window,
) -> Result<ResultTable> {
    // Each charge summed into its group as it is priced (no list of charges kept).
    let mut index = GroupIndex::new(cols, &cols.venue, dims);
    let mut acc: Vec<CostAcc> = Vec::new();
    each_charge(
        cols,
        &cols.venue,
        &[prices],
        &|_| 0,
        window,
        &mut |row, kind, cost| {
            let g = index.group(row) as usize;
            if g == acc.len() {
                acc.push(CostAcc::default());
            }
            acc[g].add(cols, row, kind, cost);
            Ok(())
        },
    )?;
    if dims.is_empty() && acc.is_empty() {
        acc.push(CostAcc::default());
    }
    let groups = index.into_groups();
    let mut columns: Vec<String> = dims.iter().map(|d| d.name().to_owned()).collect();
    columns.extend(COST_COLUMNS.iter().map(|c| c.to_string()));
    let mut rows = Vec::new();
    // Without `by` there is exactly one group (possibly empty), so always one row.
    for g in groups.sorted() {
        let a = &acc[g as usize];
        let mut row: Vec<Cell> = groups.labels[g as usize]
            .iter()
            .map(|l| Cell::text(l.clone()))
            .collect();
        row.extend(cost_cells(a));
        rows.push(row);
    }
    Ok(ResultTable { columns, rows })
}

fn cost_cells(a: &CostAcc) -> Vec<Cell> {
    vec![
        Cell::uint(a.events as u128),
        Cell::uint(a.input_tokens),
        Cell::uint(a.cached_tokens),
        Cell::uint(a.output_tokens),
        Cell::money(a.cost()),
        Cell::uint(a.unpriced as u128),
        Cell::money(a.kind_cost(ChargeKind::Model)),
        Cell::money(a.kind_cost(ChargeKind::Runtime)),
        Cell::money(a.kind_cost(ChargeKind::Storage)),
    ]
}
