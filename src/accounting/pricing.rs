//! Price tables and exact money: which price applies to an event, and what the event costs
//! in integer nano-units of the table's currency (see [`crate::accounting::money`] and docs/contracts.md).
//!
//! - `[[price]]`: a model call's tokens. `(input - cached) × input_per_mtok + cached ×
//!   cached_input_per_mtok + output × output_per_mtok` per million tokens, `+ per_call`.
//! - `[[runtime_price]]`: a provider-managed runtime session (`runtime` on its `session_start`)
//!   per session-hour, for the time from its `session_start` to its `session_end`.
//! - `[[storage_price]]`: provider-held state (`state_op` writes with `holder = "provider"`)
//!   per GB-month (10^9 bytes held for 730 hours), for the time the written bytes are held.
//!
//! Matching: among the entries of the event's key (provider + model; runtime; store) that are
//! in force at the time (`effective_from <= ts < effective_until`, both optional), an entry
//! for the event's venue beats a venue-less one, and then the latest `effective_from` wins.
//! An event no entry matches is unpriced (`None`), never zero. Each event's cost is computed
//! exactly and rounded once, half to even.

use crate::accounting::calendar;
use crate::accounting::money::{pow10, Decimal, Exact, MAX_SCALE};
use crate::accounting::source::{self, label, Source, Value};
use crate::error::{Error, Result};

/// When an entry is in force: `from <= ts < until`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Period {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

impl Period {
    pub fn contains(&self, ts: i64) -> bool {
        self.from.is_none_or(|f| ts >= f) && self.until.is_none_or(|u| ts < u)
    }
}

/// A `[[price]]` entry: token prices of one model, rates normalised to one `scale`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPrice {
    pub provider: String,
    pub model: String,
    pub venue: Option<String>,
    pub period: Period,
    pub input_per_mtok: Decimal,
    pub cached_input_per_mtok: Decimal,
    pub output_per_mtok: Decimal,
    pub per_call: Decimal,
    pub line: usize,
    scale: u32,
    /// The four rates above in units of 10^-`scale` (input, cached input, output, per call),
    /// computed once when the entry is read rather than for every call priced.
    units: [u128; 4],
}

impl TokenPrice {
    /// The exact cost of one call, rounded once (half to even) to nano-units.
    pub fn cost(&self, input: u64, cached: u64, output: u64) -> Result<u128> {
        let s = self.scale;
        let cached = cached.min(input);
        let u = self.units;
        let terms = [
            (input - cached, u[0]),
            (cached, u[1]),
            (output, u[2]),
            (1_000_000, u[3]),
        ];
        match narrow_cost(&terms, s) {
            Some(nanos) => Ok(nanos),
            None => self.wide_cost(&terms),
        }
    }

    /// [`TokenPrice::cost`] in 256-bit arithmetic (any sum of `terms` is exact).
    fn wide_cost(&self, terms: &[(u64, u128); 4]) -> Result<u128> {
        let s = self.scale;
        let mut e = Exact::default();
        for &(n, units) in terms {
            e.add(u128::from(n), units);
        }
        // units/10^s per million tokens -> nanos: × 10^9 / 10^6 = × 1000.
        e.round(1000, pow10(s)).ok_or_else(|| {
            Error::Contract(format!(
                "the cost of a call priced at line {} overflows",
                self.line
            ))
        })
    }
}

/// The cost of `terms` (tokens, units/10^`scale` per million tokens) in nano-units,
/// rounded half to even as [`Exact::round`] does, computed in `u128` (a call's figures fit
/// it by far); `None` when an intermediate value would overflow it.
fn narrow_cost(terms: &[(u64, u128); 4], scale: u32) -> Option<u128> {
    let mut sum: u128 = 0;
    for &(n, units) in terms {
        sum = sum.checked_add(u128::from(n).checked_mul(units)?)?;
    }
    // units/10^scale per million tokens -> nanos: × 10^9 / 10^6 / 10^scale.
    if scale <= 3 {
        return sum.checked_mul(pow10(3 - scale));
    }
    let div = pow10(scale - 3);
    // In 64 bits when it fits (a call's sum mostly does): the same quotient and remainder,
    // without a 128-bit division.
    let (q, r) = match (u64::try_from(sum), u64::try_from(div)) {
        (Ok(s), Ok(d)) => (u128::from(s / d), u128::from(s % d)),
        _ => (sum / div, sum % div),
    };
    Some(match (2 * r).cmp(&div) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
        std::cmp::Ordering::Less => q,
    })
}

/// A `[[runtime_price]]` entry: a provider-managed runtime, per session-hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimePrice {
    pub runtime: String,
    pub venue: Option<String>,
    pub period: Period,
    pub per_session_hour: Decimal,
    pub line: usize,
}

impl RuntimePrice {
    /// The cost of a session that ran `duration_ns`.
    pub fn cost(&self, duration_ns: u64) -> Result<u128> {
        let mut e = Exact::default();
        e.add(u128::from(duration_ns), self.per_session_hour.units);
        // units/10^s per hour of 3.6e12 ns -> nanos: × 10^9 / (3.6e12 × 10^s).
        e.round(1, 3600 * pow10(self.per_session_hour.scale))
            .ok_or_else(|| {
                Error::Contract(format!(
                    "the cost of a runtime session priced at line {} overflows",
                    self.line
                ))
            })
    }
}

/// Nanoseconds in the month of a GB-month (730 hours).
pub const NS_PER_BILLING_MONTH: u128 = 730 * 3600 * 1_000_000_000;
/// Bytes in the GB of a GB-month (decimal).
pub const BYTES_PER_GB: u128 = 1_000_000_000;

/// A `[[storage_price]]` entry: provider-held state in one store, per GB-month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoragePrice {
    pub store: String,
    pub period: Period,
    pub per_gb_month: Decimal,
    pub line: usize,
}

impl StoragePrice {
    /// The cost of holding `bytes` for `held_ns`.
    pub fn cost(&self, bytes: u64, held_ns: u64) -> Result<u128> {
        let mut e = Exact::default();
        let byte_ns = u128::from(bytes) * u128::from(held_ns); // < 2^128
        e.add(byte_ns, self.per_gb_month.units);
        // byte·ns × units/10^s per (GB × month) -> nanos:
        // × 10^9 / (10^9 bytes × 2.628e15 ns × 10^s) = / (2.628e15 × 10^s).
        // (The 10^9 bytes per GB cancel the 10^9 nano-units per unit: BYTES_PER_GB.)
        e.round(1, NS_PER_BILLING_MONTH * pow10(self.per_gb_month.scale))
            .ok_or_else(|| {
                Error::Contract(format!(
                    "the cost of storage priced at line {} overflows",
                    self.line
                ))
            })
    }
}

/// A parsed, validated price table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceTable {
    pub currency: String,
    pub title: Option<String>,
    /// The date the prices were taken (informational).
    pub as_of: Option<String>,
    pub prices: Vec<TokenPrice>,
    pub runtime_prices: Vec<RuntimePrice>,
    pub storage_prices: Vec<StoragePrice>,
}

/// Picks the entry in force at `ts`: venue-specific first, then the latest `from`.
fn best<'a, T>(
    entries: impl Iterator<Item = &'a T>,
    ts: i64,
    venue: Option<&str>,
    get: impl Fn(&T) -> (Option<&str>, Period),
) -> Option<&'a T>
where
    T: 'a,
{
    entries
        .filter(|e| {
            let (v, p) = get(e);
            p.contains(ts) && v.is_none_or(|v| Some(v) == venue)
        })
        .max_by_key(|e| {
            let (v, p) = get(e);
            (v.is_some(), p.from.unwrap_or(i64::MIN))
        })
}

impl PriceTable {
    pub fn from_toml(text: &str) -> Result<PriceTable> {
        parse(text)
    }

    /// Reads and parses a price file; errors are `Error::Contract` naming the file.
    pub fn load(path: &std::path::Path) -> Result<PriceTable> {
        source::load(path, parse)
    }

    /// The token price for a model call, or `None` (unpriced).
    pub fn token_price(
        &self,
        provider: &str,
        model: &str,
        venue: Option<&str>,
        ts: i64,
    ) -> Option<&TokenPrice> {
        best(
            self.prices
                .iter()
                .filter(|p| p.provider == provider && p.model == model),
            ts,
            venue,
            |p| (p.venue.as_deref(), p.period),
        )
    }

    /// The cost of a model call in nano-units, or `None` when no price matches.
    pub fn call_cost(
        &self,
        provider: &str,
        model: &str,
        venue: Option<&str>,
        ts: i64,
        tokens: (u64, u64, u64),
    ) -> Result<Option<u128>> {
        match self.token_price(provider, model, venue, ts) {
            Some(p) => p.cost(tokens.0, tokens.1, tokens.2).map(Some),
            None => Ok(None),
        }
    }

    pub fn runtime_price(
        &self,
        runtime: &str,
        venue: Option<&str>,
        ts: i64,
    ) -> Option<&RuntimePrice> {
        best(
            self.runtime_prices.iter().filter(|p| p.runtime == runtime),
            ts,
            venue,
            |p| (p.venue.as_deref(), p.period),
        )
    }

    pub fn storage_price(&self, store: &str, ts: i64) -> Option<&StoragePrice> {
        best(
            self.storage_prices.iter().filter(|p| p.store == store),
            ts,
            None,
            |p| (None, p.period),
        )
    }
}

fn parse(text: &str) -> Result<PriceTable> {
    let (src, doc) = Source::parse("prices", text)?;
    let mut t = PriceTable {
        currency: String::new(),
        title: None,
        as_of: None,
        prices: Vec::new(),
        runtime_prices: Vec::new(),
        storage_prices: Vec::new(),
    };
    let at = "top level";
    for (k, v) in src.entries(doc.get_ref()) {
        match k.get_ref().as_ref() {
            "currency" => {
                let c = src.str(at, "currency", v)?;
                if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
                    return Err(src.err(at, format!("`currency` must be an ISO 4217 code such as \"USD\", not {c:?}"), v.span()));
                }
                t.currency = c.to_owned();
            }
            "title" => t.title = Some(src.str(at, "title", v)?.to_owned()),
            "as_of" => {
                let ns = src.instant(at, "as_of", v)?;
                t.as_of = Some(calendar::format_day(calendar::day_of(ns)));
            }
            "price" => {
                for (i, item) in src.array_of_tables(at, "price", v)?.into_iter().enumerate() {
                    t.prices.push(parse_token_price(&src, i, item)?);
                }
            }
            "runtime_price" => {
                for (i, item) in src.array_of_tables(at, "runtime_price", v)?.into_iter().enumerate() {
                    t.runtime_prices.push(parse_runtime_price(&src, i, item)?);
                }
            }
            "storage_price" => {
                for (i, item) in src.array_of_tables(at, "storage_price", v)?.into_iter().enumerate() {
                    t.storage_prices.push(parse_storage_price(&src, i, item)?);
                }
            }
            other => {
                return Err(src.err(
                    at,
                    format!("unknown key `{other}` (expected currency, title, as_of, price, runtime_price, storage_price)"),
                    k.span(),
                ))
            }
        }
    }
    if t.currency.is_empty() {
        return Err(Error::Contract(
            "prices: top level: `currency` is required (e.g. currency = \"USD\")".into(),
        ));
    }
    let key = |p: &TokenPrice| {
        (
            format!("{} {}", p.provider, p.model),
            p.venue.clone(),
            p.period.from,
            p.line,
        )
    };
    check_unique(t.prices.iter().map(key).collect(), "price")?;
    let key = |p: &RuntimePrice| (p.runtime.clone(), p.venue.clone(), p.period.from, p.line);
    check_unique(t.runtime_prices.iter().map(key).collect(), "runtime_price")?;
    let key = |p: &StoragePrice| (p.store.clone(), None, p.period.from, p.line);
    check_unique(t.storage_prices.iter().map(key).collect(), "storage_price")?;
    Ok(t)
}

/// Two entries for the same key, venue and `effective_from` would make the choice ambiguous.
fn check_unique(keys: Vec<(String, Option<String>, Option<i64>, usize)>, what: &str) -> Result<()> {
    // One pass with a map from key to its first line: linear in the number of entries.
    let mut seen: std::collections::HashMap<(&str, Option<&str>, Option<i64>), usize> =
        std::collections::HashMap::with_capacity(keys.len());
    for b in &keys {
        if let Some(&first) = seen.get(&(b.0.as_str(), b.1.as_deref(), b.2)) {
            let venue =
                b.1.as_deref()
                    .map_or("no venue".to_owned(), |v| format!("venue {v:?}"));
            let from = b.2.map_or("no effective_from".to_owned(), |f| {
                format!("effective_from {}", calendar::format_ts(f))
            });
            return Err(Error::Contract(format!(
                "prices: {what} `{}` ({venue}, {from}) is already priced at line {}: which one applies would be ambiguous (line {})",
                b.0, first, b.3
            )));
        }
        seen.insert((b.0.as_str(), b.1.as_deref(), b.2), b.3);
    }
    Ok(())
}

/// Reads the keys of one entry table, calling `field` for each; unknown keys are errors.
fn entry_fields<'t>(
    src: &Source<'t>,
    at: &str,
    v: &Value<'t>,
    allowed: &[&str],
    mut field: impl FnMut(&str, &Value<'t>) -> Result<()>,
) -> Result<()> {
    let t = src.table(at, "entry", v)?;
    for (k, val) in src.entries(t) {
        let name = k.get_ref().as_ref();
        if !allowed.contains(&name) {
            return Err(src.err(
                at,
                format!("unknown key `{name}` (expected {})", allowed.join(", ")),
                k.span(),
            ));
        }
        field(name, val)?;
    }
    Ok(())
}

/// Reads `effective_from` / `effective_until` into `p`; `Ok(false)` for other keys. An
/// inverted or empty period is an error on the line of the bound written second.
fn period(src: &Source<'_>, at: &str, name: &str, val: &Value<'_>, p: &mut Period) -> Result<bool> {
    match name {
        "effective_from" => p.from = Some(src.instant(at, name, val)?),
        "effective_until" => p.until = Some(src.instant(at, name, val)?),
        _ => return Ok(false),
    }
    if let (Some(f), Some(u)) = (p.from, p.until) {
        if u <= f {
            return Err(src.err(
                at,
                format!(
                    "`effective_until` ({}) must be after `effective_from` ({})",
                    calendar::format_ts(u),
                    calendar::format_ts(f)
                ),
                val.span(),
            ));
        }
    }
    Ok(true)
}

fn required<T>(src: &Source<'_>, at: &str, key: &str, v: &Value<'_>, x: Option<T>) -> Result<T> {
    x.ok_or_else(|| src.err(at, format!("`{key}` is required"), v.span()))
}

fn parse_token_price(src: &Source<'_>, i: usize, v: &Value<'_>) -> Result<TokenPrice> {
    let at = label("price", i, None);
    let (mut provider, mut model, mut venue) = (None, None, None);
    let (mut input, mut cached, mut output, mut per_call) = (None, None, None, None);
    let mut p = Period::default();
    entry_fields(
        src,
        &at,
        v,
        &[
            "provider",
            "model",
            "venue",
            "effective_from",
            "effective_until",
            "input_per_mtok",
            "cached_input_per_mtok",
            "output_per_mtok",
            "per_call",
        ],
        |name, val| {
            if period(src, &at, name, val, &mut p)? {
                return Ok(());
            }
            match name {
                "provider" => provider = Some(src.str(&at, name, val)?.to_owned()),
                "model" => model = Some(src.str(&at, name, val)?.to_owned()),
                "venue" => venue = Some(src.str(&at, name, val)?.to_owned()),
                "input_per_mtok" => input = Some(src.decimal(&at, name, val)?),
                "cached_input_per_mtok" => cached = Some(src.decimal(&at, name, val)?),
                "output_per_mtok" => output = Some(src.decimal(&at, name, val)?),
                _ => per_call = Some(src.decimal(&at, name, val)?),
            }
            Ok(())
        },
    )?;
    let provider = required(src, &at, "provider", v, provider)?;
    let model = required(src, &at, "model", v, model)?;
    let at = format!("{at} `{provider} {model}`");
    let input_per_mtok = required(src, &at, "input_per_mtok", v, input)?;
    let output_per_mtok = required(src, &at, "output_per_mtok", v, output)?;
    let cached_input_per_mtok = cached.unwrap_or(input_per_mtok);
    let per_call = per_call.unwrap_or(Decimal::ZERO);
    let scale = [
        input_per_mtok,
        cached_input_per_mtok,
        output_per_mtok,
        per_call,
    ]
    .iter()
    .map(|d| d.scale)
    .max()
    .unwrap_or(0)
    .min(MAX_SCALE);
    Ok(TokenPrice {
        provider,
        model,
        venue,
        period: p,
        input_per_mtok,
        cached_input_per_mtok,
        output_per_mtok,
        per_call,
        line: src.line(v.span().start),
        scale,
        units: [
            input_per_mtok.units_at(scale),
            cached_input_per_mtok.units_at(scale),
            output_per_mtok.units_at(scale),
            per_call.units_at(scale),
        ],
    })
}

fn parse_runtime_price(src: &Source<'_>, i: usize, v: &Value<'_>) -> Result<RuntimePrice> {
    let at = label("runtime_price", i, None);
    let (mut runtime, mut venue, mut rate) = (None, None, None);
    let mut p = Period::default();
    entry_fields(
        src,
        &at,
        v,
        &[
            "runtime",
            "venue",
            "effective_from",
            "effective_until",
            "per_session_hour",
        ],
        |name, val| {
            if period(src, &at, name, val, &mut p)? {
                return Ok(());
            }
            match name {
                "runtime" => runtime = Some(src.str(&at, name, val)?.to_owned()),
                "venue" => venue = Some(src.str(&at, name, val)?.to_owned()),
                _ => rate = Some(src.decimal(&at, name, val)?),
            }
            Ok(())
        },
    )?;
    Ok(RuntimePrice {
        runtime: required(src, &at, "runtime", v, runtime)?,
        venue,
        period: p,
        per_session_hour: required(src, &at, "per_session_hour", v, rate)?,
        line: src.line(v.span().start),
    })
}

fn parse_storage_price(src: &Source<'_>, i: usize, v: &Value<'_>) -> Result<StoragePrice> {
    let at = label("storage_price", i, None);
    let (mut store, mut rate) = (None, None);
    let mut p = Period::default();
    entry_fields(
        src,
        &at,
        v,
        &["store", "effective_from", "effective_until", "per_gb_month"],
        |name, val| {
            if period(src, &at, name, val, &mut p)? {
                return Ok(());
            }
            match name {
                "store" => store = Some(src.str(&at, name, val)?.to_owned()),
                _ => rate = Some(src.decimal(&at, name, val)?),
            }
            Ok(())
        },
    )?;
    Ok(StoragePrice {
        store: required(src, &at, "store", v, store)?,
        period: p,
        per_gb_month: required(src, &at, "per_gb_month", v, rate)?,
        line: src.line(v.span().start),
    })
}

#[cfg(test)]
#[path = "pricing_tests.rs"]
mod tests;
