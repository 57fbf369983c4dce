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
use std::sync::Arc;

use parking_lot::Mutex;

use crate::accounting::groupby::{Dim, GroupIndex, Groups};
use crate::accounting::pricing::{Period, PriceTable};
use crate::accounting::result::{Cell, ResultTable};
use crate::accounting::window::Window;
use crate::error::Result;
use crate::event::EventKind;
use crate::ledger::Store;
use crate::stored::columns::{
    stream_stored, ColumnCache, EventColumns, Projection, StrColumn, NULL,
};

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
    struct Rows<'f>(&'f mut dyn FnMut(usize, ChargeKind, Option<u128>) -> Result<()>);
    impl ChargeSink for Rows<'_> {
        fn charge(&mut self, row: usize, kind: ChargeKind, cost: Option<u128>) -> Result<()> {
            (self.0)(row, kind, cost)
        }
        fn tag(&mut self, _row: usize) -> u32 {
            0
        }
    }
    let mut scan = ChargeScan::new(tables, window);
    scan.add(cols, venue, table_of, &mut Rows(&mut *f))?;
    scan.finish(&mut |row, _, cost| f(row, ChargeKind::Storage, cost))
}

/// Where [`ChargeScan::add`] hands the charges of a part of the ledger.
pub trait ChargeSink {
    /// A model or runtime charge of row `row` of the part.
    fn charge(&mut self, row: usize, kind: ChargeKind, cost: Option<u128>) -> Result<()>;
    /// What to remember with a storage charge of row `row` of the part, whose cost is known
    /// only at [`ChargeScan::finish`] (a group, say).
    fn tag(&mut self, row: usize) -> u32;
}

/// The first `session_start` of a session: what its runtime charge reads.
#[derive(Debug)]
struct Start {
    runtime: Option<Arc<str>>,
    venue: Option<Arc<str>>,
    ts: i64,
}

/// A provider-held write whose cost waits for the next write or delete of its object.
#[derive(Debug)]
struct PendingWrite {
    /// Row in the ledger (over every part added).
    row: usize,
    tag: u32,
    ts: i64,
    bytes: u64,
    store: Option<Arc<str>>,
    table: usize,
    /// When the bytes stop being held (`i64::MAX`: at the horizon).
    end: i64,
}

/// What identifies a stored object: (`store`, `key`, the `session_id` when scoped to the
/// session).
type Object = (Option<Arc<str>>, Arc<str>, Option<Arc<str>>);

/// The charge rules (see the module documentation) applied to a ledger a part at a time, in
/// seq order: [`ChargeScan::add`] each part (a whole ledger's columns, or the segments
/// [`crate::stored::columns::stream_stored`] hands over, each with dictionaries of its own),
/// then [`ChargeScan::finish`]. Between parts it keeps only what later events need: each
/// session's first start (when runtimes are billable) and the provider-held writes not yet
/// priced (when storage is).
pub struct ChargeScan<'t> {
    tables: &'t [&'t PriceTable],
    window: Window,
    runtime_billable: bool,
    storage_billable: bool,
    starts: HashMap<Arc<str>, Start, foldhash::fast::RandomState>,
    objects: HashMap<Object, usize, foldhash::fast::RandomState>,
    pending: Vec<PendingWrite>,
    /// Rows added so far, and the latest `ts` among them.
    rows: usize,
    latest: Option<i64>,
}

impl<'t> ChargeScan<'t> {
    pub fn new(tables: &'t [&'t PriceTable], window: Window) -> Self {
        ChargeScan {
            tables,
            window,
            runtime_billable: tables.iter().any(|t| !t.runtime_prices.is_empty()),
            storage_billable: tables.iter().any(|t| !t.storage_prices.is_empty()),
            starts: HashMap::default(),
            objects: HashMap::default(),
            pending: Vec::new(),
            rows: 0,
            latest: None,
        }
    }

    /// Storage charges waiting for [`ChargeScan::finish`] so far.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Replaces the tags of the waiting storage charges from the `from`-th on by
    /// `map[tag]`.
    pub fn retag(&mut self, from: usize, map: &[u32]) {
        for p in &mut self.pending[from..] {
            p.tag = map[p.tag as usize];
        }
    }

    /// Prices the billable events of `cols`, the part of the ledger after the rows added so
    /// far: model and runtime charges go to `sink` in row order; storage charges wait for
    /// [`ChargeScan::finish`], each with its `sink.tag`. `table_of(row)` chooses which table
    /// prices a row; `venue` stands in for `cols.venue`.
    pub fn add(
        &mut self,
        cols: &EventColumns,
        venue: &StrColumn,
        table_of: &dyn Fn(usize) -> usize,
        sink: &mut dyn ChargeSink,
    ) -> Result<()> {
        let (tables, window) = (self.tables, self.window);
        let mut pricer = ModelPricer::new(cols, venue, tables);
        let value = |col: &StrColumn, i: usize| match col.codes[i] {
            NULL => None,
            c => Some(Arc::clone(&col.values[c as usize])),
        };
        if window.until.is_none() {
            if let Some(&m) = cols.ts.iter().max() {
                self.latest = Some(self.latest.map_or(m, |l| l.max(m)));
            }
        }
        for i in 0..cols.len {
            let kind = cols.kind[i];
            match kind {
                EventKind::ModelCall if window.contains(cols.ts[i]) => {
                    let cost = pricer.cost(i, table_of(i))?;
                    sink.charge(i, ChargeKind::Model, cost)?;
                }
                EventKind::SessionStart if self.runtime_billable => {
                    if let Some(s) = session(cols, i) {
                        let id = &cols.session_id.values[s as usize];
                        if !self.starts.contains_key(id) {
                            let start = Start {
                                runtime: value(&cols.runtime, i),
                                venue: value(venue, i),
                                ts: cols.ts[i],
                            };
                            self.starts.insert(Arc::clone(id), start);
                        }
                    }
                }
                EventKind::SessionEnd if self.runtime_billable => {
                    let Some(s) = session(cols, i) else { continue };
                    let Some(start) = self.starts.get(&cols.session_id.values[s as usize]) else {
                        continue;
                    };
                    let runtime = start.runtime.as_deref().or(cols.runtime.get(i));
                    let Some(runtime) = runtime else { continue };
                    if !window.contains(cols.ts[i]) {
                        continue;
                    }
                    let v = start.venue.as_deref().or(venue.get(i));
                    let t = tables[table_of(i)];
                    let dur = (cols.ts[i] - start.ts).max(0) as u64;
                    let cost = match t.runtime_price(runtime, v, start.ts) {
                        Some(p) => Some(p.cost(dur)?),
                        None => None,
                    };
                    sink.charge(i, ChargeKind::Runtime, cost)?;
                }
                EventKind::StateOp if self.storage_billable => {
                    let op = cols.op.get(i);
                    if !matches!(op, Some("write" | "delete")) {
                        continue;
                    }
                    let obj = value(&cols.key, i).map(|key| {
                        let session = if cols.scope.get(i) == Some("session") {
                            value(&cols.session_id, i)
                        } else {
                            None
                        };
                        (value(&cols.store, i), key, session)
                    });
                    if let Some(obj) = &obj {
                        if let Some(prev) = self.objects.remove(obj) {
                            self.pending[prev].end = cols.ts[i];
                        }
                    }
                    let is_charged = op == Some("write")
                        && cols.holder.get(i) == Some("provider")
                        && cols.bytes[i] > 0;
                    if is_charged && window.contains(cols.ts[i]) {
                        if let Some(obj) = obj {
                            self.objects.insert(obj, self.pending.len());
                        }
                        self.pending.push(PendingWrite {
                            row: self.rows + i,
                            tag: sink.tag(i),
                            ts: cols.ts[i],
                            bytes: cols.bytes[i],
                            store: value(&cols.store, i),
                            table: table_of(i),
                            end: i64::MAX,
                        });
                    }
                }
                _ => {}
            }
        }
        self.rows += cols.len;
        Ok(())
    }

    /// Prices the storage charges, in row order, handing each to `f` as (row in the ledger,
    /// tag, cost): held until the next write or delete of the object, capped at the horizon
    /// (the window's `until`, else the latest `ts` added).
    pub fn finish(self, f: &mut dyn FnMut(usize, u32, Option<u128>) -> Result<()>) -> Result<()> {
        let horizon = self.window.until.unwrap_or(self.latest.unwrap_or(0));
        for p in self.pending {
            let held = (p.end.min(horizon) - p.ts).max(0) as u64;
            let t = self.tables[p.table];
            let store = p.store.as_deref().unwrap_or_default();
            let cost = match t.storage_price(store, p.ts) {
                Some(price) => Some(price.cost(p.bytes, held)?),
                None => None,
            };
            f(p.row, p.tag, cost)?;
        }
        Ok(())
    }
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
        if kind == ChargeKind::Model {
            self.input_tokens += u128::from(cols.input_tokens[row]);
            self.cached_tokens += u128::from(cols.cached_tokens[row]);
            self.output_tokens += u128::from(cols.output_tokens[row]);
        }
        self.add_charge(kind, cost);
    }

    /// Counts a charge without its tokens (those of a model call are added by
    /// [`CostAcc::add`]).
    pub fn add_charge(&mut self, kind: ChargeKind, cost: Option<u128>) {
        self.events += 1;
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

    /// Adds the sums of `other`.
    pub fn merge(&mut self, other: &CostAcc) {
        self.events += other.events;
        self.input_tokens += other.input_tokens;
        self.cached_tokens += other.cached_tokens;
        self.output_tokens += other.output_tokens;
        self.unpriced += other.unpriced;
        for (a, b) in self.by_kind.iter_mut().zip(&other.by_kind) {
            a.0 += b.0;
            a.1 += b.1;
            a.2 += b.2;
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
            if g >= acc.len() {
                acc.resize(g + 1, CostAcc::default());
            }
            acc[g].add(cols, row, kind, cost);
            Ok(())
        },
    )?;
    if dims.is_empty() && acc.is_empty() {
        acc.push(CostAcc::default());
    }
    Ok(table_of_groups(dims, &index.into_groups(), &acc))
}

/// [`costs_table`] of the ledger of `store`, from its columns a part at a time
/// ([`stream_stored`]: no column is held whole, nor kept after). Each part's groups are
/// summed apart, then added into the ledger's by their values. Not for grouping by
/// `session_tag` (derived over the whole ledger: [`costs_of`] loads every column for it).
pub fn costs_streamed(
    store: &Store,
    prices: &PriceTable,
    dims: &[Dim],
    window: Window,
) -> Result<ResultTable> {
    assert!(
        !dims.contains(&Dim::SessionTag),
        "session tags need every event"
    );
    /// One part's groups and sums.
    struct Part<'a> {
        cols: &'a EventColumns,
        index: GroupIndex<'a>,
        acc: Vec<CostAcc>,
    }
    impl ChargeSink for Part<'_> {
        fn charge(&mut self, row: usize, kind: ChargeKind, cost: Option<u128>) -> Result<()> {
            let g = self.tag(row) as usize;
            self.acc[g].add(self.cols, row, kind, cost);
            Ok(())
        }
        fn tag(&mut self, row: usize) -> u32 {
            let g = self.index.group(row);
            if g as usize >= self.acc.len() {
                self.acc.resize(g as usize + 1, CostAcc::default());
            }
            g
        }
    }
    let tables = [prices];
    let mut scan = ChargeScan::new(&tables, window);
    let mut ids: HashMap<Vec<Option<String>>, u32> = HashMap::new();
    let mut groups = Groups::default();
    let mut acc: Vec<CostAcc> = Vec::new();
    stream_stored(store, columns_needed(dims), &mut |cols| {
        let mut part = Part {
            cols,
            index: GroupIndex::new(cols, &cols.venue, dims),
            acc: Vec::new(),
        };
        let from = scan.pending();
        scan.add(cols, &cols.venue, &|_| 0, &mut part)?;
        // This part's groups → the ledger's.
        let labels = part.index.labels();
        let map: Vec<u32> = labels
            .into_iter()
            .take(part.acc.len())
            .map(|l| {
                *ids.entry(l).or_insert_with_key(|l| {
                    groups.labels.push(l.clone());
                    acc.push(CostAcc::default());
                    (acc.len() - 1) as u32
                })
            })
            .collect();
        for (a, &g) in part.acc.iter().zip(&map) {
            acc[g as usize].merge(a);
        }
        scan.retag(from, &map);
        Ok(())
    })?;
    scan.finish(&mut |_, g, cost| {
        acc[g as usize].add_charge(ChargeKind::Storage, cost);
        Ok(())
    })?;
    if dims.is_empty() && acc.is_empty() {
        groups.labels.push(Vec::new());
        acc.push(CostAcc::default());
    }
    Ok(table_of_groups(dims, &groups, &acc))
}

/// The costs table of a ledger as of its head: from `columns` when they hold its current
/// columns, else a part at a time ([`costs_streamed`]) when the store is a file, else (an
/// in-memory ledger, or grouping by `session_tag`) from every column, loaded into `columns`.
pub fn costs_of(
    store: &Arc<Mutex<Store>>,
    columns: &ColumnCache,
    prices: &PriceTable,
    dims: &[Dim],
    window: Window,
) -> Result<ResultTable> {
    let need = columns_needed(dims);
    if let Some(cols) = columns.current(store, need)? {
        return costs_table(&cols, prices, dims, window);
    }
    let streamed = !dims.contains(&Dim::SessionTag) && store.lock().path().is_some();
    if streamed {
        return costs_streamed(&store.lock(), prices, dims, window);
    }
    costs_table(&*columns.columns_for(store, need)?, prices, dims, window)
}

/// The table of per-group sums `acc` (by group id of `groups`), sorted by the group values.
fn table_of_groups(dims: &[Dim], groups: &Groups, acc: &[CostAcc]) -> ResultTable {
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
    ResultTable { columns, rows }
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
